package download_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/directdl/directdl/download"
	"github.com/directdl/directdl/internal/faultserver"
)

// TestThirdDownloadGetsConnection guards against a bug found in review: every download's extra connections hold
// their host slots until the download ends, so with the defaults (16 per
// host, 8 per download) a third concurrent download from the same host
// cannot get even its first connection and fails with ErrNoConnection
// after the connection request timeout.
func TestThirdDownloadGetsConnection(t *testing.T) {
	t.Parallel()
	s := faultserver.StartTest(t,
		faultserver.WithResource(faultserver.PatternResource("/a", 1, 16<<20)),
		faultserver.WithResource(faultserver.PatternResource("/b", 2, 16<<20)),
		faultserver.WithResource(faultserver.PatternResource("/c", 3, 16<<20)),
		faultserver.WithFaults(faultserver.Faults{Rate: 1 << 20}))
	cl := newClient(t, download.WithConnectionRequestTimeout(500*time.Millisecond))
	dir := t.TempDir()
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i, p := range []string{"/a", "/b", "/c"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(i) * 100 * time.Millisecond)
			_, errs[i] = cl.Get(context.Background(), download.Request{URL: s.URL(p), Path: filepath.Join(dir, p[1:])})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if errors.Is(err, download.ErrNoConnection) {
			t.Errorf("download %d of 3 to one host failed: %v", i, err)
		} else if err != nil {
			t.Errorf("download %d: %v", i, err)
		}
	}
}
