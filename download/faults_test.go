package download_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/directdl/directdl/download"
	"github.com/directdl/directdl/internal/faultserver"
)

// faultSize is odd so that no range lines up with a power of two.
const faultSize = 3<<20 + 4321

// TestFaults runs a download against every fault the test server can
// show, with and without a checksum. Each ends with the right file at the
// destination and nothing else, or with the expected typed error and
// nothing at the destination.
func TestFaults(t *testing.T) {
	t.Parallel()
	pki, err := faultserver.NewPKI(0)
	if err != nil {
		t.Fatal(err)
	}
	type tc struct {
		name    string
		faults  faultserver.Faults
		server  []faultserver.Option
		opts    []download.Option
		setup   func(t *testing.T, s *faultserver.Server) string // returns the URL path to get
		wantErr func(error) bool
		// check runs on success; the file's content is always checked.
		check func(t *testing.T, s *faultserver.Server, r *download.Result)
		// changes: the server's content changes, so a checksum of the
		// original no longer matches.
		changes bool
		// retryable: the error is one a later Get may get past, so what
		// was fetched stays beside the destination.
		retryable bool
	}
	isHTTP := func(status int) func(error) bool {
		return func(err error) bool {
			var he *download.HTTPError
			return errors.As(err, &he) && he.Status == status
		}
	}
	oneStream := func(t *testing.T, s *faultserver.Server, r *download.Result) {
		if r.Ranges || r.Connections != 1 {
			t.Errorf("ranges %v, connections %d: want one stream", r.Ranges, r.Connections)
		}
	}
	parallel := func(t *testing.T, s *faultserver.Server, r *download.Result) {
		if !r.Ranges || r.Connections < 2 {
			t.Errorf("ranges %v, connections %d: want ranges over several connections", r.Ranges, r.Connections)
		}
	}
	cases := []tc{
		{name: "clean", check: parallel},
		{name: "no-ranges", faults: faultserver.Faults{NoRanges: true}, check: oneStream},
		{name: "always-200", faults: faultserver.Faults{Always200: true}, check: oneStream},
		{name: "wrong-content-range", faults: faultserver.Faults{WrongContentRange: true}, check: oneStream},
		{name: "gzip-offered", faults: faultserver.Faults{Gzip: true}, check: func(t *testing.T, s *faultserver.Server, r *download.Result) {
			for _, q := range s.Requests() {
				if q.Fault == "gzip" || q.AcceptEncoding != "identity" {
					t.Errorf("request with Accept-Encoding %q got fault %q", q.AcceptEncoding, q.Fault)
				}
			}
		}},
		{name: "rate-capped", faults: faultserver.Faults{Rate: 8 << 20}, check: parallel},
		{name: "latency", faults: faultserver.Faults{Latency: 30 * time.Millisecond}, check: parallel},
		{name: "reset", faults: faultserver.Faults{ResetAfter: 300 << 10}},
		{name: "reset-no-ranges", faults: faultserver.Faults{ResetAfter: 1 << 20, NoRanges: true, BodyFaultResponses: 2}, check: oneStream},
		{name: "reset-every-stream-no-ranges", faults: faultserver.Faults{ResetAfter: 1 << 20, NoRanges: true},
			opts: []download.Option{download.WithRetries(2)}, retryable: true,
			wantErr: func(err error) bool { return errors.Is(err, syscall.ECONNRESET) }},
		{name: "truncate", faults: faultserver.Faults{TruncateAfter: 200 << 10}},
		{name: "stall", faults: faultserver.Faults{StallAfter: 100 << 10, BodyFaultResponses: 2},
			opts: []download.Option{download.WithSocketTimeout(200 * time.Millisecond)}},
		{name: "stall-always", faults: faultserver.Faults{StallAfter: 100 << 10, NoRanges: true},
			opts:      []download.Option{download.WithSocketTimeout(200 * time.Millisecond), download.WithRetries(1)},
			retryable: true, wantErr: func(err error) bool { return errors.Is(err, download.ErrStalled) }},
		{name: "503-burst", faults: faultserver.Faults{FailRequests: 3, RetryAfter: time.Second}},
		{name: "503-forever", faults: faultserver.Faults{FailRequests: 1000},
			opts: []download.Option{download.WithRetries(2)}, wantErr: isHTTP(503), retryable: true},
		{name: "404", setup: func(t *testing.T, s *faultserver.Server) string {
			s.SetFaults(faultserver.Faults{Status: map[string]int{"/f": 404}})
			return "/f"
		}, wantErr: isHTTP(404)},
		{name: "403", setup: func(t *testing.T, s *faultserver.Server) string {
			s.SetFaults(faultserver.Faults{Status: map[string]int{"/f": 403}})
			return "/f"
		}, wantErr: isHTTP(403)},
		{name: "change-after-requests", faults: faultserver.Faults{ChangeAfterRequests: 3, ChangeContent: true}, changes: true},
		{name: "change-mid-body", faults: faultserver.Faults{ChangeAfterBytes: 1 << 20, ChangeContent: true}, changes: true},
		{name: "redirect-across-hosts", server: []faultserver.Option{faultserver.WithHosts("127.0.0.1", "127.0.0.2", "127.0.0.3")},
			setup: func(t *testing.T, s *faultserver.Server) string {
				if err := s.Redirect("/start", "/f", faultserver.Hop{Host: "127.0.0.2", Status: 301}, faultserver.Hop{Host: "127.0.0.3"}); err != nil {
					t.Fatal(err)
				}
				return "/start"
			},
			check: func(t *testing.T, s *faultserver.Server, r *download.Result) {
				if len(r.Redirects) != 3 {
					t.Errorf("redirects %q, want the start and two hops", r.Redirects)
				}
				for _, q := range s.Requests() {
					if q.Path == "/f" && q.Host != "127.0.0.3" {
						t.Errorf("range request went to %s, want the last hop's host", q.Host)
					}
				}
			}},
		{name: "tls", server: []faultserver.Option{faultserver.WithTLS(pki.Certificate(true))},
			opts: []download.Option{download.WithRootCAs(pki.RootPool())}, check: parallel},
		{name: "tls-missing-intermediate", server: []faultserver.Option{faultserver.WithTLS(pki.Certificate(false))},
			opts: []download.Option{download.WithRootCAs(pki.RootPool())},
			wantErr: func(err error) bool {
				var ua x509.UnknownAuthorityError
				var cv *tls.CertificateVerificationError
				return errors.As(err, &ua) || errors.As(err, &cv)
			}},
		{name: "tls-untrusted", server: []faultserver.Option{faultserver.WithTLS(pki.Certificate(true))},
			wantErr: func(err error) bool {
				var ua x509.UnknownAuthorityError
				var cv *tls.CertificateVerificationError
				return errors.As(err, &ua) || errors.As(err, &cv)
			}},
	}
	for _, c := range cases {
		for _, withSum := range []bool{false, true} {
			name := c.name
			if withSum {
				name += "/checksum"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				sopts := append([]faultserver.Option{faultserver.WithResource(faultserver.PatternResource("/f", 3, faultSize))}, c.server...)
				s := faultserver.StartTest(t, sopts...)
				original := sha256Of(t, s, "/f")
				path := "/f"
				if c.setup != nil {
					path = c.setup(t, s)
				}
				if c.setup == nil {
					s.SetFaults(c.faults)
				}
				req := download.Request{URL: s.URL(path), Path: filepath.Join(t.TempDir(), "disk.img")}
				if withSum {
					req.Checksum = original
				}
				cl := newClient(t, append([]download.Option{download.WithConnections(4)}, c.opts...)...)
				res, err := cl.Get(context.Background(), req)
				wantErr := c.wantErr
				if c.changes && withSum {
					wantErr = func(err error) bool { return errors.Is(err, download.ErrChecksumMismatch) }
				}
				if wantErr != nil {
					if err == nil || !wantErr(err) {
						t.Fatalf("err = %v (%T), want the case's typed error", err, err)
					}
					assertAbsent(t, req.Path)
					if !leftovers(t, req.Path) {
						return
					}
					// What a retryable failure keeps is resumed when the
					// source recovers.
					if !c.retryable {
						t.Fatalf("%v left a partial download, want it removed", err)
					}
					s.SetFaults(faultserver.Faults{})
					res, err := cl.Get(context.Background(), req)
					if err != nil {
						t.Fatalf("resume after the fault: %v", err)
					}
					if got, want := fileSHA256(t, req.Path), sha256Of(t, s, "/f"); got != want {
						t.Fatalf("resumed file %s, want %s", got, want)
					}
					if res.ResumedFrom == 0 {
						t.Error("ResumedFrom = 0, want the bytes kept from the failed attempt")
					}
					assertClean(t, filepath.Dir(req.Path), "disk.img")
					return
				}
				if err != nil {
					t.Fatalf("Get: %v", err)
				}
				want := sha256Of(t, s, "/f")
				if got := fileSHA256(t, req.Path); got != want || res.Digest != want {
					t.Fatalf("file %s, result %s, want %s", got, res.Digest, want)
				}
				if c.changes && want == original {
					t.Fatal("the fault did not change the content")
				}
				if res.Verified != withSum || res.Size != faultSize {
					t.Errorf("verified %v size %d, want %v %d", res.Verified, res.Size, withSum, faultSize)
				}
				if c.check != nil {
					c.check(t, s, res)
				}
				assertClean(t, filepath.Dir(req.Path), "disk.img")
			})
		}
	}
}
