package download

import (
	"encoding"
	"encoding/binary"
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

// stateLength returns how many bytes the saved state has consumed: the
// standard library's MD5, SHA-1, SHA-2 states end with that count as a
// big-endian uint64. An empty state has consumed nothing.
func stateLength(state []byte) (int64, bool) {
	if len(state) == 0 {
		return 0, true
	}
	if len(state) < 8 {
		return 0, false
	}
	n := binary.BigEndian.Uint64(state[len(state)-8:])
	if n > 1<<62 {
		return 0, false
	}
	return int64(n), true
}
