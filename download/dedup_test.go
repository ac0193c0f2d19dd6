package download_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/directdl/directdl/download"
	"github.com/directdl/directdl/internal/faultserver"
)

// TestJoinAfterCancel guards against a bug found in review: once the last waiter of a shared
// download has gone and cancelled it, the call stays in c.inflight until
// the transfer has unwound (final checkpoint with two fsyncs, the final
// progress event, closing connections). A new Get for the same URL and
// path in that window joins the cancelled call and fails with the other
// caller's context.Canceled, although its own context is fine.
func TestJoinAfterCancel(t *testing.T) {
	t.Parallel()
	s := faultserver.StartTest(t, faultserver.WithResource(faultserver.PatternResource("/a", 1, 8<<20)),
		faultserver.WithFaults(faultserver.Faults{Rate: 1 << 20}))
	// A progress sink that takes a little time for the final event widens
	// the window; a slow disk does the same through the final fsyncs.
	cl := newClient(t, download.WithProgress(func(p download.Progress) {
		if p.Final {
			time.Sleep(300 * time.Millisecond)
		}
	}, time.Second))
	dest := filepath.Join(t.TempDir(), "a")
	ctxA, cancelA := context.WithCancel(context.Background())
	doneA := make(chan error, 1)
	go func() {
		_, err := cl.Get(ctxA, download.Request{URL: s.URL("/a"), Path: dest})
		doneA <- err
	}()
	time.Sleep(200 * time.Millisecond)
	cancelA()
	time.Sleep(50 * time.Millisecond)
	s.SetFaults(faultserver.Faults{})
	_, errB := cl.Get(context.Background(), download.Request{URL: s.URL("/a"), Path: dest})
	<-doneA
	if errB != nil {
		t.Errorf("a Get with a live context failed with %v (joined a transfer another caller had cancelled)", errB)
	}
	if errors.Is(errB, context.Canceled) {
		t.Log("the error is the other caller's cancellation")
	}
}
