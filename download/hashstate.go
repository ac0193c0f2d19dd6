package download

import (
	"encoding"
	"errors"
	"hash"
)

func marshalHash(h hash.Hash) ([]byte, error) {
	m, ok := h.(encoding.BinaryMarshaler)
	if !ok {
		return nil, errors.New("hash cannot be saved")
	}
	return m.MarshalBinary()
}

// unmarshalHash restores h from state; an empty state leaves h new.
func unmarshalHash(h hash.Hash, state []byte) error {
	if len(state) == 0 {
		h.Reset()
		return nil
	}
	u, ok := h.(encoding.BinaryUnmarshaler)
	if !ok {
		return errors.New("hash cannot be restored")
	}
	return u.UnmarshalBinary(state)
}
