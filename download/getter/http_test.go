package getter_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/directdl/directdl/download"
	"github.com/directdl/directdl/download/getter"
)

// recorder serves fixed files and records each request's method, path and
// headers.
type recorder struct {
	files map[string][]byte
	extra http.Header // added to every response

	mu   sync.Mutex
	reqs []*http.Request
}

func (rc *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rc.mu.Lock()
	rc.reqs = append(rc.reqs, r.Clone(context.Background()))
	rc.mu.Unlock()
	b, ok := rc.files[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	for k, v := range rc.extra {
		w.Header()[k] = v
	}
	http.ServeContent(w, r, r.URL.Path, zeroTime, strings.NewReader(string(b)))
}

func (rc *recorder) requests() []*http.Request {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]*http.Request(nil), rc.reqs...)
}

// http and https URLs are the engine's: its requests (its User-Agent, its
// Range requests) reach the server, never go-getter's HttpGetter, and a
// go-getter header like X-Terraform-Get means nothing.
func TestHTTPGoesToEngine(t *testing.T) {
	content := []byte(strings.Repeat("0123456789abcdef", 1<<14)) // 256 KiB
	rc := &recorder{
		files: map[string][]byte{"/disk.img": content, "/elsewhere.img": []byte("redirected\n")},
		extra: http.Header{"X-Terraform-Get": {"/elsewhere.img"}},
	}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	g := newGetter(t)
	for _, u := range []string{
		srv.URL + "/disk.img?checksum=" + sumOf(content),
		"http::" + srv.URL + "/disk.img?checksum=" + sumOf(content),
	} {
		dir := t.TempDir()
		dest := filepath.Join(dir, "disk.img")
		res, err := g.Get(context.Background(), download.Request{URL: u, Path: dest, Size: int64(len(content))})
		if err != nil {
			t.Fatalf("%s: %v", u, err)
		}
		assertRegular(t, dest, content)
		if !res.Verified {
			t.Errorf("%s: not verified", u)
		}
	}
	reqs := rc.requests()
	if len(reqs) == 0 {
		t.Fatal("the server saw no request")
	}
	ranged := 0
	for _, r := range reqs {
		if r.URL.Path != "/disk.img" {
			t.Errorf("request for %s: X-Terraform-Get was followed", r.URL.Path)
		}
		if r.URL.Query().Has("checksum") || r.URL.Query().Has("terraform-get") {
			t.Errorf("request %s carries go-getter's parameters", r.URL)
		}
		if ua := r.UserAgent(); ua != "directdl" {
			t.Errorf("request with User-Agent %q, want the engine's", ua)
		}
		if r.Header.Get("Range") != "" {
			ranged++
		}
	}
	if ranged == 0 {
		t.Error("no Range request: the engine did not download")
	}
}

func TestRefused(t *testing.T) {
	g := newGetter(t)
	tests := []struct {
		url     string
		wantErr error
		text    string
	}{
		{"hg::https://example.com/repo//disk.img", getter.ErrScheme, `WithSchemes("hg"`},
		{"ftp::ftp://example.com/disk.img", getter.ErrScheme, `"ftp" is not supported`},
		{"smb://example.com/share/disk.img", getter.ErrScheme, `"smb" is not supported`},
		{"s3::https://s3.amazonaws.com/b/k.tar.gz?archive=tar.gz", getter.ErrSource, "archive="},
		{"https://example.com/k.tar.gz?archive=false", getter.ErrSource, "archive="},
		{"s3::https://s3.amazonaws.com/b/k?checksum=file:https://example.com/SHA256SUMS", getter.ErrSource, "checksum files"},
		{"git::https://example.com/repo.git//../../etc/passwd", getter.ErrSource, ".."},
		{"gcs::https://storage.example.com/b/o", getter.ErrSource, "www.googleapis.com"},
	}
	for _, tt := range tests {
		dir := t.TempDir()
		_, err := g.Get(context.Background(), download.Request{URL: tt.url, Path: filepath.Join(dir, "out")})
		if !errors.Is(err, tt.wantErr) || !errors.Is(err, download.ErrRequest) && !errors.Is(err, download.ErrDenied) {
			t.Errorf("%s: error %v, want %v", tt.url, err, tt.wantErr)
			continue
		}
		if !strings.Contains(err.Error(), tt.text) {
			t.Errorf("%s: error %q does not mention %q", tt.url, err, tt.text)
		}
		assertOnly(t, dir)
	}
}

func TestOptions(t *testing.T) {
	c, err := download.New()
	if err != nil {
		t.Fatal(err)
	}
	for name, opts := range map[string][]getter.Option{
		"http scheme":    {getter.WithSchemes("s3", "https")},
		"unknown scheme": {getter.WithSchemes("ftp")},
		"idle timeout":   {getter.WithIdleTimeout(0)},
		"nil resolver":   {getter.WithResolver(nil)},
	} {
		if _, err := getter.New(c, opts...); !errors.Is(err, download.ErrOption) {
			t.Errorf("%s: error %v, want ErrOption", name, err)
		}
	}
	if _, err := getter.New(nil); !errors.Is(err, download.ErrOption) {
		t.Errorf("New(nil): error %v, want ErrOption", err)
	}
	g, err := getter.New(c, getter.WithSchemes("GIT", "file"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(g.Schemes(), ","); got != "file,git" {
		t.Errorf("Schemes() = %s, want file,git", got)
	}
	g, err = getter.New(c)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(g.Schemes(), ","); got != "gcs,git,s3" {
		t.Errorf("default Schemes() = %s, want gcs,git,s3", got)
	}
}

var zeroTime = time.Time{}
