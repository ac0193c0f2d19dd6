package download_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/directdl/directdl/download"
	"github.com/directdl/directdl/internal/faultserver"
)

// TestCommitChecksPartFileIdentity guards against a bug found in review: commit renames whatever is at the part
// file's path, not the file it locked, wrote and verified. If the part
// file is unlinked while a download runs (a cleanup job, an operator's rm,
// RemovePartial), a second process creates and locks a new one and the
// first process's commit moves the second's incomplete file onto the
// destination, reporting a verified success.
func TestCommitChecksPartFileIdentity(t *testing.T) {
	t.Parallel()
	const size = 4 << 20
	fast := faultserver.StartTest(t, faultserver.WithResource(faultserver.PatternResource("/a", 21, size)),
		faultserver.WithFaults(faultserver.Faults{Rate: 2 << 20}))
	slow := faultserver.StartTest(t, faultserver.WithResource(faultserver.PatternResource("/a", 21, size)),
		faultserver.WithFaults(faultserver.Faults{Rate: 64 << 10}))
	want := sha256Of(t, fast, "/a")
	dir := t.TempDir()
	dest := filepath.Join(dir, "img")
	part := filepath.Join(dir, ".img"+download.PartSuffix)

	doneA := make(chan error, 1)
	var resA *download.Result
	go func() {
		var err error
		resA, err = newClient(t, download.WithConnections(2)).Get(context.Background(),
			download.Request{URL: fast.URL("/a"), Path: dest, Checksum: want})
		doneA <- err
	}()
	time.Sleep(300 * time.Millisecond)
	if err := os.Remove(part); err != nil {
		t.Fatal(err)
	}
	// A second process (a second Client stands for it) starts the same
	// download: the lock is on the unlinked inode, so it is not busy.
	ctxB, cancelB := context.WithCancel(context.Background())
	defer cancelB()
	doneB := make(chan error, 1)
	go func() {
		_, err := newClient(t, download.WithConnections(1)).Get(ctxB, download.Request{URL: slow.URL("/a"), Path: dest, Checksum: want})
		doneB <- err
	}()
	errA := <-doneA
	if errA == nil {
		got := fileSHA256(t, dest)
		if got != want {
			t.Errorf("A reported a verified download, but the destination holds %s, not %s: B's incomplete part file was renamed into place", got, want)
		}
	} else if !errors.Is(errA, download.ErrBusy) {
		t.Errorf("A: err = %v, want ErrBusy (its part file was replaced)", errA)
	}
	cancelB()
	<-doneB
	if errA != nil {
		assertAbsent(t, dest)
	}
	_ = resA
}
