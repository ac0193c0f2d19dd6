package getter_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/directdl/directdl/download"
	"github.com/directdl/directdl/download/getter"
)

// fakeS3 answers GetObject (GET /bucket/key) and HeadObject for the
// objects it holds, path-style, as an S3-compatible store on loopback.
type fakeS3 struct {
	t       *testing.T
	objects map[string][]byte // "bucket/key" -> content
	// mode changes how an object's body is sent: "" as is; "chunked"
	// without a length; "stall" half the body, then nothing.
	mode    string
	release chan struct{}

	mu    sync.Mutex
	auths []string // Authorization headers seen
	paths []string
}

func newFakeS3(t *testing.T, objects map[string][]byte) (*fakeS3, *httptest.Server) {
	f := &fakeS3{t: t, objects: objects, release: make(chan struct{})}
	srv := httptest.NewServer(f) // listens on 127.0.0.1
	t.Cleanup(func() { close(f.release); srv.Close() })
	// The SDK reads its configuration from the environment and ~/.aws:
	// point it at nothing, and keep it off the instance metadata service.
	dir := t.TempDir()
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	for _, k := range []string{"AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	return f, srv
}

func (f *fakeS3) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.auths = append(f.auths, r.Header.Get("Authorization"))
	f.paths = append(f.paths, r.Method+" "+r.URL.Path)
	mode := f.mode
	f.mu.Unlock()
	body, ok := f.objects[strings.TrimPrefix(r.URL.Path, "/")]
	if !ok {
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>`))
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("ETag", `"fake"`)
	switch mode {
	case "chunked":
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			w.Write(body)
		}
	case "stall":
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			w.Write(body[:len(body)/2])
			w.(http.Flusher).Flush()
			select {
			case <-f.release:
			case <-r.Context().Done():
			}
		}
	default:
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			w.Write(body)
		}
	}
}

func (f *fakeS3) seen() (auths, paths []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.auths...), append([]string(nil), f.paths...)
}

const s3Creds = "region=eu-test-1&aws_access_key_id=AKIDTESTKEY&aws_access_key_secret=s3cr3t-value"

func TestS3(t *testing.T) {
	content := []byte(strings.Repeat("object bytes from a bucket\n", 1000))
	archive := tarGz(t, "inner.img", content)
	f, srv := newFakeS3(t, map[string][]byte{
		"bucket/images/disk.img": content,
		"bucket/bundle.tar.gz":   archive,
	})
	g := newGetter(t, getter.WithIdleTimeout(300*time.Millisecond))
	obj := "s3::" + srv.URL + "/bucket/images/disk.img?" + s3Creds

	tests := []struct {
		name    string
		mode    string
		req     download.Request
		want    []byte
		wantErr error
		errText string
	}{
		{name: "verified", req: download.Request{URL: obj + "&checksum=" + sumOf(content), Size: int64(len(content))}, want: content},
		{name: "no checksum", req: download.Request{URL: obj}, want: content},
		{name: "archive stored as is", req: download.Request{URL: "s3::" + srv.URL + "/bucket/bundle.tar.gz?" + s3Creds}, want: archive},
		{name: "checksum mismatch", req: download.Request{URL: obj, Checksum: sumOf([]byte("x"))}, wantErr: download.ErrChecksumMismatch},
		{name: "announced too large", req: download.Request{URL: obj, Size: 100}, wantErr: download.ErrSizeMismatch, errText: "announces"},
		{name: "streams too much", mode: "chunked", req: download.Request{URL: obj, Size: 100}, wantErr: download.ErrSizeMismatch, errText: "more than the 100 bytes"},
		{name: "stall", mode: "stall", req: download.Request{URL: obj}, wantErr: download.ErrStalled},
		{name: "no such key", req: download.Request{URL: "s3::" + srv.URL + "/bucket/nope?" + s3Creds}, errText: "NoSuchKey"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.mu.Lock()
			f.mode = tt.mode
			f.mu.Unlock()
			res, err := runGet(t, g, getCase{name: tt.name, req: tt.req, want: tt.want, wantErr: tt.wantErr, errText: tt.errText})
			if err != nil && strings.Contains(err.Error(), "s3cr3t-value") {
				t.Errorf("error %q shows the secret key", err)
			}
			if res != nil && (strings.Contains(res.URL, "s3cr3t-value") || strings.Contains(res.URL, "checksum=")) {
				t.Errorf("result URL %q shows the secret or the checksum", res.URL)
			}
		})
	}
	auths, paths := f.seen()
	for _, a := range auths {
		if !strings.Contains(a, "AWS4-HMAC-SHA256 Credential=AKIDTESTKEY/") || !strings.Contains(a, "/eu-test-1/s3/") {
			t.Errorf("request signed as %q, want the URL's key and region", a)
		}
	}
	for _, p := range paths {
		if !strings.HasPrefix(p, "GET /bucket/") {
			t.Errorf("fake S3 got %q; GetObject only was expected", p)
		}
	}
}

// The host of an S3 URL must pass the policy: the default one refuses
// loopback, so nothing is asked of the server.
func TestS3Policy(t *testing.T) {
	f, srv := newFakeS3(t, map[string][]byte{"bucket/k": []byte("x")})
	c, err := download.New()
	if err != nil {
		t.Fatal(err)
	}
	g, err := getter.New(c)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	_, err = g.Get(context.Background(), download.Request{URL: "s3::" + srv.URL + "/bucket/k?" + s3Creds, Path: filepath.Join(dir, "k")})
	if !errors.Is(err, download.ErrDenied) {
		t.Errorf("error %v, want ErrDenied", err)
	}
	if _, paths := f.seen(); len(paths) != 0 {
		t.Errorf("the fake S3 was asked %q", paths)
	}
	assertOnly(t, dir)
}
