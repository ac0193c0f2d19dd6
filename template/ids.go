package template

import (
	"crypto/rand"
	"fmt"
	"slices"
)

// ZoneSet returns zones ascending without duplicates, as Register takes
// them; ErrInvalid for none or an ID below 1. Implementations share it.
func ZoneSet(zones []ZoneID) ([]ZoneID, error) {
	if len(zones) == 0 {
		return nil, fmt.Errorf("%w: a template must be registered in at least one zone", ErrInvalid)
	}
	for _, z := range zones {
		if z <= 0 {
			return nil, fmt.Errorf("%w: zone ID %d; zone IDs start at 1", ErrInvalid, z)
		}
	}
	zs := slices.Clone(zones)
	slices.Sort(zs)
	return slices.Compact(zs), nil
}

// NewUUID returns a random (version 4) UUID in its canonical form.
func NewUUID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails since Go 1.24
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
