package template

import (
	"crypto/rand"
	"fmt"
	"maps"
	"slices"
	"time"
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

// Record returns the Template that registering n in zones (as ZoneSet
// returns them) makes, with n's details copied (an empty map for none);
// implementations fill in ID and, when n has none, UUID.
func (n NewTemplate) Record(zones []ZoneID, created time.Time) Template {
	details := maps.Clone(n.Details)
	if details == nil {
		details = map[string]string{}
	}
	return Template{
		UUID:           n.UUID,
		Name:           n.Name,
		DisplayText:    n.DisplayText,
		Format:         n.Format,
		Type:           n.Type,
		Hypervisor:     n.Hypervisor,
		URL:            n.URL,
		Checksum:       n.Checksum,
		DirectDownload: n.DirectDownload,
		Size:           n.Size,
		PhysicalSize:   n.PhysicalSize,
		Owner:          n.Owner,
		Created:        created,
		Details:        details,
		Zones:          slices.Clone(zones),
	}
}
