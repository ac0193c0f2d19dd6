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

// TestExpiredSignedURLKeepsProgress guards against a bug found in review: useless() treats every
// non-temporary 4xx as "the fetched data cannot serve a later download" and
// run() removes the part and control files. A signed URL that expires in
// the middle of a long download (or a redirect target such as a release
// asset's short-lived signed URL, which every range request after the
// first goes to) answers 403: everything fetched so far is deleted, so the
// retry with a freshly signed URL, which would resume under the same
// validators, starts from zero, and a download longer than the URL's
// lifetime can never complete.
func TestExpiredSignedURLKeepsProgress(t *testing.T) {
	t.Parallel()
	const size = 16 << 20
	s := faultserver.StartTest(t, faultserver.WithResource(faultserver.PatternResource("/img", 4, size)),
		faultserver.WithFaults(faultserver.Faults{Rate: 4 << 20}))
	dest := filepath.Join(t.TempDir(), "img")
	done := make(chan error, 1)
	go func() {
		_, err := newClient(t, download.WithConnections(4)).Get(context.Background(), download.Request{URL: s.URL("/img"), Path: dest})
		done <- err
	}()
	time.Sleep(700 * time.Millisecond)
	s.SetFaults(faultserver.Faults{Status: map[string]int{"/img": 403}, Rate: 4 << 20}) // the signature expired
	err := <-done
	var he *download.HTTPError
	if !errors.As(err, &he) || he.Status != 403 {
		t.Fatalf("err = %v, want 403", err)
	}
	// The operator gets a new signed URL; the object and its ETag are the same.
	s.SetFaults(faultserver.Faults{})
	res, err := newClient(t).Get(context.Background(), download.Request{URL: s.URL("/img"), Path: dest})
	if err != nil {
		t.Fatal(err)
	}
	if res.ResumedFrom == 0 {
		t.Errorf("a 403 after several MiB deleted them: the retry with a valid URL resumed from 0 and fetched %d bytes again", res.BytesTransferred)
	}
}
