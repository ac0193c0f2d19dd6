package download_test

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/directdl/directdl/download"
	"github.com/directdl/directdl/internal/faultserver"
)

func TestPolicy(t *testing.T) {
	t.Parallel()
	pki, err := faultserver.NewPKI(0)
	if err != nil {
		t.Fatal(err)
	}
	s := faultserver.StartTest(t, faultserver.WithTLS(pki.Certificate(true)))
	if err := s.Redirect("/to-metadata", "/file", faultserver.Hop{URL: "https://169.254.169.254/latest/meta-data/"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Redirect("/to-http", "/file", faultserver.Hop{Scheme: "http"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Redirect("/two-hops", "/file", faultserver.Hop{}, faultserver.Hop{}); err != nil {
		t.Fatal(err)
	}
	trust := download.WithRootCAs(pki.RootPool())
	cases := []struct {
		name string
		opts []download.Option
		path string
		want error
	}{
		{"loopback denied by default", []download.Option{trust}, "/file", download.ErrDenied},
		{"loopback allowed", []download.Option{trust, download.WithPolicy(loopback)}, "/file", nil},
		{"deny beats allow", []download.Option{trust, download.WithPolicy(download.Policy{
			Allow: loopback.Allow, Deny: loopback.Allow})}, "/file", download.ErrDenied},
		{"redirect to metadata", []download.Option{trust, download.WithPolicy(loopback)}, "/to-metadata", download.ErrDenied},
		{"https to http", []download.Option{trust, download.WithPolicy(loopback)}, "/to-http", download.ErrDowngrade},
		{"redirect limit", []download.Option{trust, download.WithPolicy(loopback), download.WithMaxRedirects(1)}, "/two-hops", download.ErrTooManyRedirects},
		{"no redirects", []download.Option{trust, download.WithPolicy(loopback), download.WithMaxRedirects(0)}, "/two-hops", download.ErrTooManyRedirects},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			cl, err := download.New(append(c.opts, download.WithRetries(0))...)
			if err != nil {
				t.Fatal(err)
			}
			dest := filepath.Join(t.TempDir(), "f")
			_, err = cl.Get(context.Background(), download.Request{URL: s.URL(c.path), Path: dest})
			if c.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			assertClean(t, filepath.Dir(dest))
		})
	}
	t.Run("denied before any request", func(t *testing.T) {
		before := s.Stats().Requests
		cl, _ := download.New(trust)
		cl.Get(context.Background(), download.Request{URL: s.URL("/file"), Path: filepath.Join(t.TempDir(), "f")})
		if n := s.Stats().Requests - before; n != 0 {
			t.Errorf("server saw %d requests from a client that may not connect", n)
		}
	})
}

func TestRedaction(t *testing.T) {
	t.Parallel()
	s := faultserver.StartTest(t)
	s.SetFaults(faultserver.Faults{Status: map[string]int{"/secret": 404}})
	u := strings.Replace(s.URL("/secret"), "http://", "http://alice:hunter2@", 1) + "?X-Amz-Signature=deadbeef&part=1"
	var logs strings.Builder
	var mu sync.Mutex
	cl := newClient(t, download.WithLogger(newTextLogger(&logs, &mu)))
	_, err := cl.Get(context.Background(), download.Request{URL: u, Path: filepath.Join(t.TempDir(), "f")})
	if err == nil {
		t.Fatal("want a 404 error")
	}
	mu.Lock()
	all := err.Error() + "\n" + logs.String()
	mu.Unlock()
	for _, secret := range []string{"hunter2", "deadbeef"} {
		if strings.Contains(all, secret) {
			t.Errorf("%q leaked into the error or the logs:\n%s", secret, all)
		}
	}
	if !strings.Contains(all, "part=1") {
		t.Errorf("the harmless query parameter was removed too:\n%s", all)
	}
}

func TestSameDownloadTwice(t *testing.T) {
	t.Parallel()
	const size = 4 << 20
	s := faultserver.StartTest(t, faultserver.WithResource(faultserver.PatternResource("/a", 1, size)),
		faultserver.WithResource(faultserver.PatternResource("/b", 2, size)),
		faultserver.WithFaults(faultserver.Faults{Rate: 1 << 20})) // 8 connections: 0.5s
	cl := newClient(t)
	dest := filepath.Join(t.TempDir(), "f")
	var wg sync.WaitGroup
	results := make([]*download.Result, 3)
	errs := make([]error, 3)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = cl.Get(context.Background(), download.Request{URL: s.URL("/a"), Path: dest})
		}()
	}
	time.Sleep(50 * time.Millisecond)
	_, errs[2] = cl.Get(context.Background(), download.Request{URL: s.URL("/b"), Path: dest})
	wg.Wait()
	for i := range 2 {
		if errs[i] != nil {
			t.Fatalf("caller %d: %v", i, errs[i])
		}
	}
	if !errors.Is(errs[2], download.ErrBusy) {
		t.Errorf("same destination, other URL: err = %v, want ErrBusy", errs[2])
	}
	if results[0].Digest != results[1].Digest {
		t.Error("the two callers got different results")
	}
	if sent := s.Stats().BytesServed; sent > size+size/4 {
		t.Errorf("server sent %d bytes for two callers of one %d-byte file: the file was fetched twice", sent, size)
	}
}

func TestBusyAcrossClients(t *testing.T) {
	t.Parallel()
	s := faultserver.StartTest(t, faultserver.WithResource(faultserver.PatternResource("/a", 1, 4<<20)),
		faultserver.WithFaults(faultserver.Faults{Rate: 1 << 20})) // 8 connections: 0.5s
	dest := filepath.Join(t.TempDir(), "f")
	done := make(chan error, 1)
	go func() {
		_, err := newClient(t).Get(context.Background(), download.Request{URL: s.URL("/a"), Path: dest})
		done <- err
	}()
	time.Sleep(100 * time.Millisecond)
	// A second client stands for a second process: the part file is locked.
	_, err := newClient(t).Get(context.Background(), download.Request{URL: s.URL("/a"), Path: dest})
	if !errors.Is(err, download.ErrBusy) {
		t.Errorf("err = %v, want ErrBusy", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestResumeAfterCancel(t *testing.T) {
	t.Parallel()
	const size = 16 << 20
	s := faultserver.StartTest(t, faultserver.WithResource(faultserver.PatternResource("/r", 5, size)),
		faultserver.WithFaults(faultserver.Faults{Rate: 8 << 20}))
	want := sha256Of(t, s, "/r")
	dest := filepath.Join(t.TempDir(), "r")
	stop, ctx := cancelAfter(t, 2<<20)
	cl := newClient(t, download.WithConnections(4), stop)
	_, err := cl.Get(ctx, download.Request{URL: s.URL("/r"), Path: dest, Checksum: want})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want the cancellation", err)
	}
	assertAbsent(t, dest)
	if !leftovers(t, dest) {
		t.Fatal("nothing kept to resume from")
	}
	waitIdle(t, s)
	s.ResetStats()
	s.SetFaults(faultserver.Faults{})
	res, err := cl.Get(context.Background(), download.Request{URL: s.URL("/r"), Path: dest, Checksum: want})
	if err != nil {
		t.Fatal(err)
	}
	if res.ResumedFrom < 1<<20 || !res.Verified {
		t.Errorf("resumed from %d, verified %v: want a verified resume", res.ResumedFrom, res.Verified)
	}
	missing := size - res.ResumedFrom
	if sent := s.Stats().BytesServed; sent > missing+(512<<10) || res.BytesTransferred < missing || res.BytesTransferred > missing+(256<<10) {
		t.Errorf("second run: server sent %d, result says %d, for %d missing bytes", sent, res.BytesTransferred, missing)
	}
	if fileSHA256(t, dest) != want {
		t.Error("resumed file differs")
	}
}

func TestResumeRemoteChanged(t *testing.T) {
	t.Parallel()
	const size = 16 << 20
	s := faultserver.StartTest(t, faultserver.WithResource(faultserver.PatternResource("/r", 5, size)),
		faultserver.WithFaults(faultserver.Faults{Rate: 8 << 20}))
	dest := filepath.Join(t.TempDir(), "r")
	stop, ctx := cancelAfter(t, 2<<20)
	cl := newClient(t, download.WithConnections(4), stop)
	if _, err := cl.Get(ctx, download.Request{URL: s.URL("/r"), Path: dest}); err == nil {
		t.Fatal("want the cancellation")
	}
	if !leftovers(t, dest) {
		t.Fatal("nothing kept to resume from")
	}
	if err := s.Change("/r", true); err != nil {
		t.Fatal(err)
	}
	s.SetFaults(faultserver.Faults{})
	res, err := cl.Get(context.Background(), download.Request{URL: s.URL("/r"), Path: dest})
	if err != nil {
		t.Fatal(err)
	}
	if want := sha256Of(t, s, "/r"); fileSHA256(t, dest) != want || res.Digest != want {
		t.Fatalf("file after a remote change is not the new content")
	}
	if res.ResumedFrom != 0 || res.Restarts != 1 {
		t.Errorf("resumed from %d with %d restarts, want 0 and 1: the old bytes must be dropped", res.ResumedFrom, res.Restarts)
	}
}

func TestNoResume(t *testing.T) {
	t.Parallel()
	s := faultserver.StartTest(t, faultserver.WithResource(faultserver.PatternResource("/r", 5, 8<<20)),
		faultserver.WithFaults(faultserver.Faults{Rate: 1 << 20}))
	dest := filepath.Join(t.TempDir(), "r")
	stop, ctx := cancelAfter(t, 1<<20)
	if _, err := newClient(t, stop).Get(ctx, download.Request{URL: s.URL("/r"), Path: dest}); err == nil {
		t.Fatal("the first download finished before it was cancelled")
	}
	if !leftovers(t, dest) {
		t.Fatal("nothing kept that -no-resume could ignore")
	}
	s.SetFaults(faultserver.Faults{})
	res, err := newClient(t, download.WithResume(false)).Get(context.Background(), download.Request{URL: s.URL("/r"), Path: dest})
	if err != nil {
		t.Fatal(err)
	}
	if res.ResumedFrom != 0 || res.BytesTransferred < 8<<20 {
		t.Errorf("resumed from %d, transferred %d: want a fresh download", res.ResumedFrom, res.BytesTransferred)
	}
}

// TestCorruptControlFile: a damaged control file means starting afresh,
// never trusting it.
func TestCorruptControlFile(t *testing.T) {
	t.Parallel()
	s := faultserver.StartTest(t, faultserver.WithResource(faultserver.PatternResource("/r", 5, 4<<20)))
	dir := t.TempDir()
	dest := filepath.Join(dir, "r")
	os.WriteFile(filepath.Join(dir, ".r"+download.PartSuffix), make([]byte, 4<<20), 0o644)
	os.WriteFile(filepath.Join(dir, ".r"+download.ControlSuffix), []byte(`{"version":1,"size":4194304,"algorithm":"sha256","latest":{"done":[{"start":0,"end":4194304}],"hashed":0}}`), 0o644)
	res, err := newClient(t).Get(context.Background(), download.Request{URL: s.URL("/r"), Path: dest})
	if err != nil {
		t.Fatal(err)
	}
	// The control file claimed every byte done (of zeros), with no boot
	// id: only its durable part, which is empty, may be trusted.
	if fileSHA256(t, dest) != sha256Of(t, s, "/r") || res.ResumedFrom != 0 {
		t.Errorf("resumed from %d: the control file from an unknown boot was trusted", res.ResumedFrom)
	}
}

type staticTrust struct{ pool atomic.Pointer[x509.CertPool] }

func (s *staticTrust) RootCAs() *x509.CertPool { return s.pool.Load() }

// TestTrustSourceChanges: a certificate added to the trust source is used
// by the next download of the same Client.
func TestTrustSourceChanges(t *testing.T) {
	t.Parallel()
	pki, err := faultserver.NewPKI(0)
	if err != nil {
		t.Fatal(err)
	}
	s := faultserver.StartTest(t, faultserver.WithTLS(pki.Certificate(true)))
	src := &staticTrust{}
	cl := newClient(t, download.WithTrustSource(src), download.WithRetries(0))
	dest := filepath.Join(t.TempDir(), "f")
	if _, err := cl.Get(context.Background(), download.Request{URL: s.URL("/file"), Path: dest}); err == nil {
		t.Fatal("untrusted server: want an error")
	}
	src.pool.Store(pki.RootPool())
	if _, err := cl.Get(context.Background(), download.Request{URL: s.URL("/file"), Path: dest}); err != nil {
		t.Fatalf("after adding the root: %v", err)
	}
}

func TestProgress(t *testing.T) {
	t.Parallel()
	const size = 4 << 20
	s := faultserver.StartTest(t, faultserver.WithResource(faultserver.PatternResource("/p", 1, size)),
		faultserver.WithFaults(faultserver.Faults{Rate: 8 << 20}))
	var mu sync.Mutex
	var events []download.Progress
	cl := newClient(t, download.WithProgress(func(p download.Progress) {
		mu.Lock()
		events = append(events, p)
		mu.Unlock()
	}, 20*time.Millisecond))
	if _, err := cl.Get(context.Background(), download.Request{URL: s.URL("/p"), Path: filepath.Join(t.TempDir(), "p")}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(events) < 3 {
		t.Fatalf("%d progress events, want several", len(events))
	}
	last := events[len(events)-1]
	if !last.Final || last.Done != size || last.Total != size || last.Err != nil {
		t.Errorf("last event %+v, want final with all bytes", last)
	}
	var sawRate bool
	for i, e := range events[:len(events)-1] {
		if e.Final || e.Total != size || (i > 0 && e.Done < events[i-1].Done) {
			t.Errorf("event %d: %+v", i, e)
		}
		sawRate = sawRate || (e.Rate > 0 && e.ETA > 0)
	}
	if !sawRate {
		t.Error("no event had a rate and an ETA")
	}
}

func TestBatch(t *testing.T) {
	t.Parallel()
	s := faultserver.StartTest(t, faultserver.WithResource(faultserver.PatternResource("/a", 1, 1<<20)),
		faultserver.WithResource(faultserver.PatternResource("/b", 2, 2<<20)))
	s.SetFaults(faultserver.Faults{Status: map[string]int{"/gone": 404}})
	dir := t.TempDir()
	reqs := []download.Request{
		{URL: s.URL("/a"), Path: filepath.Join(dir, "a")},
		{URL: s.URL("/gone"), Path: filepath.Join(dir, "gone")},
		{URL: s.URL("/b"), Path: filepath.Join(dir, "b"), Checksum: sha256Of(t, s, "/b")},
	}
	out := newClient(t).Batch(context.Background(), reqs, 2)
	if out[0].Err != nil || out[2].Err != nil || out[1].Err == nil {
		t.Fatalf("errors %v, %v, %v: want only the second to fail", out[0].Err, out[1].Err, out[2].Err)
	}
	if out[0].Result.Size != 1<<20 || out[2].Result.Size != 2<<20 || !out[2].Result.Verified {
		t.Error("results out of order or wrong")
	}
	assertClean(t, dir, "a", "b")
}

func TestConnectionRequestTimeout(t *testing.T) {
	t.Parallel()
	s := faultserver.StartTest(t, faultserver.WithResource(faultserver.PatternResource("/a", 1, 2<<20)),
		faultserver.WithResource(faultserver.PatternResource("/b", 2, 2<<20)),
		faultserver.WithFaults(faultserver.Faults{Rate: 1 << 20}))
	cl := newClient(t, download.WithHostConnections(1), download.WithConnectionRequestTimeout(100*time.Millisecond))
	dir := t.TempDir()
	done := make(chan error, 1)
	go func() {
		_, err := cl.Get(context.Background(), download.Request{URL: s.URL("/a"), Path: filepath.Join(dir, "a")})
		done <- err
	}()
	time.Sleep(100 * time.Millisecond)
	_, err := cl.Get(context.Background(), download.Request{URL: s.URL("/b"), Path: filepath.Join(dir, "b")})
	if !errors.Is(err, download.ErrNoConnection) {
		t.Errorf("err = %v, want ErrNoConnection", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if p := s.Stats().PeakConns; p != 1 {
		t.Errorf("peak %d connections, want the per-host cap of 1", p)
	}
	assertClean(t, dir, "a")
}

func TestEmptyFile(t *testing.T) {
	t.Parallel()
	s := faultserver.StartTest(t, faultserver.WithResource(faultserver.PatternResource("/empty", 1, 0)))
	dest := filepath.Join(t.TempDir(), "e")
	res, err := newClient(t).Get(context.Background(), download.Request{URL: s.URL("/empty"), Path: dest,
		Checksum: "{SHA-256}E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"})
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(dest); err != nil || fi.Size() != 0 || res.Size != 0 || !res.Verified {
		t.Errorf("stat %v %v, result %+v", fi, err, res)
	}
}

// TestUnknownLength: a chunked response without ranges or length comes in
// one stream and is still verified and committed.
func TestUnknownLength(t *testing.T) {
	t.Parallel()
	body := strings.Repeat("directdl ", 200000)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i < len(body); i += 100000 {
			w.Write([]byte(body[i:min(i+100000, len(body))]))
			w.(http.Flusher).Flush()
		}
	}))
	defer srv.Close()
	sum := sha256.Sum256([]byte(body))
	dest := filepath.Join(t.TempDir(), "u")
	res, err := newClient(t).Get(context.Background(), download.Request{URL: srv.URL + "/u?checksum=sha256:" + hex.EncodeToString(sum[:]), Path: dest})
	if err != nil {
		t.Fatal(err)
	}
	if res.Size != int64(len(body)) || !res.Verified || res.Ranges {
		t.Errorf("result %+v", res)
	}
}

func TestSizeMismatch(t *testing.T) {
	t.Parallel()
	s := faultserver.StartTest(t)
	dir := t.TempDir()
	_, err := newClient(t).Get(context.Background(), download.Request{URL: s.URL("/file"), Path: filepath.Join(dir, "f"), Size: 12345})
	if !errors.Is(err, download.ErrSizeMismatch) {
		t.Fatalf("err = %v, want ErrSizeMismatch", err)
	}
	assertClean(t, dir)
}

// TestRetryAfter: a 503 with Retry-After: 1 is retried no sooner.
func TestRetryAfter(t *testing.T) {
	t.Parallel()
	s := faultserver.StartTest(t, faultserver.WithFaults(faultserver.Faults{FailRequests: 1, RetryAfter: time.Second}))
	cl := newClient(t, download.WithBackoff(time.Millisecond, 5*time.Second))
	if _, err := cl.Get(context.Background(), download.Request{URL: s.URL("/file"), Path: filepath.Join(t.TempDir(), "f")}); err != nil {
		t.Fatal(err)
	}
	reqs := s.Requests()
	if len(reqs) < 2 || reqs[0].Status != 503 {
		t.Fatalf("requests %+v", reqs)
	}
	if gap := reqs[1].Start.Sub(reqs[0].Start); gap < time.Second {
		t.Errorf("retried after %v, want at least the 1s of Retry-After", gap)
	}
}

func TestBadRequests(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cl := newClient(t)
	for _, r := range []download.Request{
		{URL: "ftp://example.com/x", Path: filepath.Join(dir, "x")},
		{URL: "http:///nohost", Path: filepath.Join(dir, "x")},
		{URL: "http://127.0.0.1/x", Path: ""},
		{URL: "http://127.0.0.1/x", Path: dir},
		{URL: "http://127.0.0.1/x", Path: filepath.Join(dir, "missing", "x")},
		{URL: "http://127.0.0.1/x", Path: filepath.Join(dir, "x"), Checksum: "{SHA-256}abc"},
		{URL: "http://127.0.0.1/x", Path: filepath.Join(dir, "x"), Size: -1},
	} {
		if _, err := cl.Get(context.Background(), r); !errors.Is(err, download.ErrRequest) {
			t.Errorf("%+v: err = %v, want ErrRequest", r, err)
		}
	}
	assertClean(t, dir)
}

func TestOptionsValidate(t *testing.T) {
	t.Parallel()
	for i, o := range []download.Option{
		download.WithConnections(0), download.WithConnections(65), download.WithHostConnections(0),
		download.WithRetries(-1), download.WithBackoff(0, time.Second), download.WithBackoff(time.Second, time.Millisecond),
		download.WithConnectTimeout(0), download.WithSocketTimeout(-1), download.WithConnectionRequestTimeout(0),
		download.WithMinSplit(1), download.WithRootCAs(nil), download.WithTransport(nil), download.WithLogger(nil),
		download.WithProgress(nil, 0), download.WithMaxRedirects(-1),
	} {
		if _, err := download.New(o); !errors.Is(err, download.ErrOption) {
			t.Errorf("option %d: err = %v, want ErrOption", i, err)
		}
	}
	if _, err := download.New(); err != nil {
		t.Errorf("New() = %v", err)
	}
}

// TestHostCap: a download never holds more connections to a host than the
// per-host cap, the first connection included.
func TestHostCap(t *testing.T) {
	t.Parallel()
	s := faultserver.StartTest(t, faultserver.WithResource(faultserver.PatternResource("/a", 1, 6<<20)),
		faultserver.WithFaults(faultserver.Faults{Rate: 8 << 20}))
	cl := newClient(t, download.WithConnections(8), download.WithHostConnections(2))
	res, err := cl.Get(context.Background(), download.Request{URL: s.URL("/a"), Path: filepath.Join(t.TempDir(), "a")})
	if err != nil {
		t.Fatal(err)
	}
	if p := s.Stats().PeakRequests; p > 2 || res.Connections != 2 {
		t.Errorf("server saw %d requests at once, result says %d connections; want 2, the cap", p, res.Connections)
	}
}

// TestResumeOtherAlgorithm: resuming with a checksum of another algorithm
// keeps the bytes and hashes them again.
func TestResumeOtherAlgorithm(t *testing.T) {
	t.Parallel()
	const size = 8 << 20
	s := faultserver.StartTest(t, faultserver.WithResource(faultserver.PatternResource("/r", 9, size)),
		faultserver.WithFaults(faultserver.Faults{Rate: 2 << 20}))
	v, _ := s.Version("/r")
	h := md5.New()
	if err := faultserver.Hash(context.Background(), v.Content, size, h); err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(t.TempDir(), "r")
	stop, ctx := cancelAfter(t, 1<<20)
	cl := newClient(t, download.WithConnections(4), stop)
	if _, err := cl.Get(ctx, download.Request{URL: s.URL("/r"), Path: dest, Checksum: sha256Of(t, s, "/r")}); err == nil {
		t.Fatal("the first download finished before it was cancelled")
	}
	if !leftovers(t, dest) {
		t.Fatal("nothing kept to resume from")
	}
	s.SetFaults(faultserver.Faults{})
	res, err := cl.Get(context.Background(), download.Request{URL: s.URL("/r"), Path: dest, Checksum: hex.EncodeToString(h.Sum(nil))})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Verified || res.ResumedFrom == 0 || !strings.HasPrefix(res.Digest, "md5:") {
		t.Errorf("verified %v, resumed from %d, digest %s: want an MD5-verified resume", res.Verified, res.ResumedFrom, res.Digest)
	}
}

// TestNoSpace: a file larger than the free space fails before any data is
// written, naming both numbers.
func TestNoSpace(t *testing.T) {
	t.Parallel()
	const huge = 1 << 60
	s := faultserver.StartTest(t, faultserver.WithResource(faultserver.PatternResource("/huge", 1, huge)))
	dir := t.TempDir()
	_, err := newClient(t).Get(context.Background(), download.Request{URL: s.URL("/huge"), Path: filepath.Join(dir, "h")})
	var se *download.SpaceError
	if !errors.As(err, &se) || se.Need != huge || se.Avail <= 0 || se.Dir != dir {
		t.Fatalf("err = %v, want a *SpaceError for %d bytes in %s", err, int64(huge), dir)
	}
	if !strings.Contains(err.Error(), fmt.Sprint(se.Avail)) {
		t.Errorf("message %q does not name the free space", err)
	}
	assertClean(t, dir)
}

// TestConnectTimeout: a server that accepts but never completes the TLS
// handshake is given up on after the connect timeout, not hung on.
func TestConnectTimeout(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var accepted atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			defer c.Close() // hold the connection open, say nothing
		}
	}()
	cl := newClient(t, download.WithConnectTimeout(200*time.Millisecond), download.WithRetries(2))
	_, err = cl.Get(context.Background(), download.Request{URL: "https://" + ln.Addr().String() + "/f", Path: filepath.Join(t.TempDir(), "f")})
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("err = %v, want a timeout", err)
	}
	if n := accepted.Load(); n != 3 {
		t.Errorf("%d connections, want 3: a connect timeout is retried", n)
	}
}

// TestNotRetried: 404 and 403 end the download at the first answer.
func TestNotRetried(t *testing.T) {
	t.Parallel()
	for _, status := range []int{403, 404, 410} {
		s := faultserver.StartTest(t)
		s.SetFaults(faultserver.Faults{Status: map[string]int{"/file": status}})
		_, err := newClient(t).Get(context.Background(), download.Request{URL: s.URL("/file"), Path: filepath.Join(t.TempDir(), "f")})
		var he *download.HTTPError
		if !errors.As(err, &he) || he.Status != status || he.Temporary() {
			t.Errorf("%d: err = %v", status, err)
		}
		if n := s.Stats().Requests; n != 1 {
			t.Errorf("%d: %d requests, want 1: not retried", status, n)
		}
	}
}
