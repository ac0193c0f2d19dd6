package download_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/directdl/directdl/download"
	"github.com/directdl/directdl/internal/faultserver"
)

// BenchmarkGet downloads 256 MiB from a loopback server with SHA-256
// verification, with one and with eight connections. The server shares the
// machine's cores, so this measures the engine's overhead more than any
// network.
func BenchmarkGet(b *testing.B) {
	const size = 256 << 20
	s := faultserver.StartTest(b, faultserver.WithResource(faultserver.PatternResource("/b", 1, size)))
	sum := sha256Of(b, s, "/b")
	for _, conns := range []int{1, 8} {
		b.Run(fmt.Sprintf("conns=%d", conns), func(b *testing.B) {
			cl := newClient(b, download.WithConnections(conns), download.WithMinSplit(download.DefaultMinSplit))
			dest := filepath.Join(b.TempDir(), "b")
			b.SetBytes(size)
			for b.Loop() {
				if _, err := cl.Get(context.Background(), download.Request{URL: s.URL("/b"), Path: dest, Checksum: sum}); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				os.Remove(dest)
				b.StartTimer()
			}
		})
	}
}
