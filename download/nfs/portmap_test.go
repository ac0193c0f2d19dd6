package nfs_test

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"slices"
	"sync"
	"testing"

	"github.com/directdl/directdl/download/nfs"
	"github.com/directdl/directdl/download/nfs/nfstest"
)

// fakePortmapper answers PMAPPROC_GETPORT with port for every program it
// is asked about, and records the programs.
type fakePortmapper struct {
	Port  int
	mu    sync.Mutex
	progs []uint32
}

func newFakePortmapper(t *testing.T, port int) *fakePortmapper {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	pm := &fakePortmapper{Port: l.Addr().(*net.TCPAddr).Port}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go pm.serve(c, uint32(port))
		}
	}()
	return pm
}

func (pm *fakePortmapper) serve(c net.Conn, port uint32) {
	defer c.Close()
	for {
		var hdr [4]byte
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			return
		}
		body := make([]byte, binary.BigEndian.Uint32(hdr[:])&0x7fffffff)
		if _, err := io.ReadFull(c, body); err != nil || len(body) < 40 {
			return
		}
		// The GETPORT arguments are the last 16 bytes: prog, vers, prot, port.
		args := body[len(body)-16:]
		pm.mu.Lock()
		pm.progs = append(pm.progs, binary.BigEndian.Uint32(args))
		pm.mu.Unlock()
		reply := binary.BigEndian.AppendUint32(nil, 0)
		for _, v := range []uint32{binary.BigEndian.Uint32(body), 1, 0, 0, 0, 0, port} {
			reply = binary.BigEndian.AppendUint32(reply, v)
		}
		binary.BigEndian.PutUint32(reply, 0x80000000|uint32(len(reply)-4))
		if _, err := c.Write(reply); err != nil {
			return
		}
	}
}

func TestPortmapper(t *testing.T) {
	srv := nfstest.New(t, map[string][]byte{"f": []byte("via portmap")})
	pm := newFakePortmapper(t, srv.Port)
	f := open(t, "nfs://127.0.0.1"+nfstest.Export+"/f", nfs.WithPortmapperPort(pm.Port))
	buf := make([]byte, f.Size())
	if _, err := f.ReadAt(buf, 0); err != nil || string(buf) != "via portmap" {
		t.Fatalf("ReadAt = %q, %v", buf, err)
	}
	pm.mu.Lock()
	progs := slices.Clone(pm.progs)
	pm.mu.Unlock()
	if !slices.Equal(progs, []uint32{100005, 100003}) {
		t.Errorf("portmapper asked for %v, want MOUNT (100005) then NFS (100003)", progs)
	}
}

func TestPortmapperUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close() // nothing listens there now
	_, err = nfs.Open(context.Background(), "nfs://127.0.0.1/srv/export/f", nfs.WithPortmapperPort(port))
	var ne *nfs.Error
	if !errorsAs(err, &ne) || ne.Op != "portmap" {
		t.Fatalf("Open = %v, want a portmap *nfs.Error", err)
	}
}
