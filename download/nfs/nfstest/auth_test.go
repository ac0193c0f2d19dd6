package nfstest

import (
	"encoding/binary"
	"testing"
)

// authBody is an AUTH_UNIX body: stamp, machine name, uid, gid, no gids.
func authBody(machine string, uid, gid uint32) []byte {
	b := binary.BigEndian.AppendUint32(nil, 7)
	b = binary.BigEndian.AppendUint32(b, uint32(len(machine)))
	b = append(b, machine...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	b = binary.BigEndian.AppendUint32(b, uid)
	b = binary.BigEndian.AppendUint32(b, gid)
	return binary.BigEndian.AppendUint32(b, 0)
}

// FuzzAuthUnix checks that authUnixOf reads any body a client sends
// without panicking, and reads a well-formed one right. Seeds are below.
func FuzzAuthUnix(f *testing.F) {
	f.Add(uint32(1), authBody("host", 1000, 1001))
	f.Add(uint32(1), authBody("", 0, 0))
	f.Add(uint32(1), authBody("abcde", 65534, 65534)[:12])
	f.Add(uint32(0), []byte{})
	f.Add(uint32(1), []byte{0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, flavor uint32, body []byte) {
		a := authUnixOf(flavor, body)
		if a.Flavor != flavor {
			t.Fatalf("flavor %d read as %d", flavor, a.Flavor)
		}
		if flavor != 1 && (a.UID != 0 || a.GID != 0) {
			t.Fatalf("flavor %d gave ids %d/%d", flavor, a.UID, a.GID)
		}
	})
}

func TestAuthUnixOf(t *testing.T) {
	for _, machine := range []string{"", "h", "four", "fives"} {
		if a := authUnixOf(1, authBody(machine, 1000, 1001)); a.UID != 1000 || a.GID != 1001 {
			t.Errorf("machine %q: read %+v, want 1000/1001", machine, a)
		}
	}
	if a := authUnixOf(1, authBody("host", 1000, 1001)[:15]); a.UID != 0 || a.GID != 0 {
		t.Errorf("a cut body gave %+v", a)
	}
}
