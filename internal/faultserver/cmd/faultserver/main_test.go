package main

import (
	"bufio"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// start runs the program with args until the test ends and returns the
// values it printed.
func start(t *testing.T, args ...string) map[string]string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan int)
	go func() {
		code := run(ctx, args, pw, os.Stderr)
		pw.Close()
		done <- code
	}()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("exit status %d, want 0", code)
		}
	})
	out := map[string]string{}
	sc := bufio.NewScanner(pr)
	for len(out) < 2 || (strings.Contains(strings.Join(args, " "), "-digest") && len(out) < 4) {
		if !sc.Scan() {
			t.Fatalf("output ended after %v", out)
		}
		k, v, _ := strings.Cut(sc.Text(), "=")
		out[k] = v
	}
	go io.Copy(io.Discard, pr)
	return out
}

func TestServe(t *testing.T) {
	t.Parallel()
	out := start(t, "-size", "3M", "-seed", "9", "-path", "/x.img", "-digest", "-rate", "100M", "-hosts", "127.0.0.2")
	if out["SIZE"] != "3145728" || !strings.HasSuffix(out["URL"], "/x.img") {
		t.Fatalf("output %v", out)
	}
	resp, err := http.Get(out["URL"])
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || len(body) != 3<<20 {
		t.Fatalf("read %d bytes, %v", len(body), err)
	}
	if got := fmt.Sprintf("%x", sha256.Sum256(body)); got != out["SHA256"] {
		t.Errorf("sha256 of the body %s, printed %s", got, out["SHA256"])
	}
	if got := fmt.Sprintf("%x", md5.Sum(body)); got != out["MD5"] {
		t.Errorf("md5 of the body %s, printed %s", got, out["MD5"])
	}
}

func TestServeTLSGen(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	out := start(t, "-size", "1000", "-tls-gen", dir, "-always-200")
	root, err := os.ReadFile(filepath.Join(dir, "root.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(root)
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	req, _ := http.NewRequest("GET", out["URL"], nil)
	req.Header.Set("Range", "bytes=0-9")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !strings.HasPrefix(out["URL"], "https://") || resp.StatusCode != 200 {
		t.Errorf("%s: status %d, want https and 200", out["URL"], resp.StatusCode)
	}
}

func TestServeFile(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "img")
	if err := os.WriteFile(file, []byte("0123456789"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := start(t, "-file", file)
	req, _ := http.NewRequest("GET", out["URL"], nil)
	req.Header.Set("Range", "bytes=-3")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if out["SIZE"] != "10" || resp.StatusCode != 206 || string(body) != "789" {
		t.Errorf("size %s, %d %q; want 10, 206 \"789\"", out["SIZE"], resp.StatusCode, body)
	}
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"-size", "1Q"},
		{"extra"},
		{"-tls-cert", "x"},
		{"-tls-gen", "d", "-tls-cert", "x", "-tls-key", "y"},
		{"-server-rate", "-1"},
		{"-corrupt-at", "5"},
		{"-corrupt-first-piece", "1M"},
		{"-corrupt-len", "1Q"},
		{"-control", "-path", "/_stats"},
	} {
		if code := run(context.Background(), args, io.Discard, io.Discard); code != 2 {
			t.Errorf("%q: exit status %d, want 2", args, code)
		}
	}
	if code := run(context.Background(), []string{"-addr", "10.0.0.1"}, io.Discard, io.Discard); code != 1 {
		t.Errorf("non-loopback address: exit status %d, want 1", code)
	}
}

// call does a request and returns the status and body.
func call(t *testing.T, method, url string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return resp.StatusCode, body
}

func TestControl(t *testing.T) {
	t.Parallel()
	out := start(t, "-size", "100K", "-control", "-addr", "127.0.0.3")
	base := strings.TrimSuffix(out["URL"], "/file")
	getStats := func() stats {
		t.Helper()
		code, body := call(t, "GET", base+"/_stats")
		var st stats
		if err := json.Unmarshal(body, &st); code != 200 || err != nil {
			t.Fatalf("GET /_stats: %d %q, %v", code, body, err)
		}
		return st
	}
	if st := getStats(); st != (stats{}) {
		t.Errorf("stats before any download: %+v, want zeros", st)
	}
	for range 2 {
		if code, body := call(t, "GET", out["URL"]); code != 200 || len(body) != 100<<10 {
			t.Fatalf("GET %s: %d, %d bytes", out["URL"], code, len(body))
		}
	}
	call(t, "GET", base+"/missing")
	// A response's last bytes are counted just after the client has them:
	// wait for them (and only them) to be counted. The stats requests
	// themselves are not counted, however many.
	want := stats{Requests: 3, BytesServed: 2 * 100 << 10}
	st := getStats()
	for i := 0; i < 500 && st.BytesServed < want.BytesServed; i++ {
		time.Sleep(10 * time.Millisecond)
		st = getStats()
	}
	if st != want || getStats() != want {
		t.Errorf("stats after two downloads and a 404: %+v, want %+v", st, want)
	}
	for _, tt := range []struct {
		method, path string
		code         int
	}{
		{"POST", "/_stats", 405},
		{"GET", "/_reset", 405},
		{"POST", "/_reset", 204},
	} {
		if code, body := call(t, tt.method, base+tt.path); code != tt.code {
			t.Errorf("%s %s: %d %q, want %d", tt.method, tt.path, code, body, tt.code)
		}
	}
	if st := getStats(); st != (stats{}) {
		t.Errorf("stats after POST /_reset: %+v, want zeros", st)
	}
}

func TestNoControl(t *testing.T) {
	t.Parallel()
	out := start(t, "-size", "1K")
	url := strings.TrimSuffix(out["URL"], "/file") + "/_stats"
	if code, _ := call(t, "GET", url); code != 404 {
		t.Errorf("GET %s without -control: %d, want 404", url, code)
	}
}

func TestCorruptFlags(t *testing.T) {
	t.Parallel()
	const at, n = 5000, 300
	out := start(t, "-size", "64K", "-digest", "-corrupt-at", fmt.Sprint(at), "-corrupt-len", fmt.Sprint(n))
	code, body := call(t, "GET", out["URL"])
	if code != 200 || len(body) != 64<<10 {
		t.Fatalf("GET: %d, %d bytes", code, len(body))
	}
	if got := fmt.Sprintf("%x", sha256.Sum256(body)); got == out["SHA256"] {
		t.Fatal("the body has the true content's sha256; nothing was corrupted")
	}
	for i := at; i < at+n; i++ {
		body[i] ^= 0xff
	}
	if got := fmt.Sprintf("%x", sha256.Sum256(body)); got != out["SHA256"] {
		t.Errorf("with bytes [%d, %d) flipped back, sha256 %s, want the true %s", at, at+n, got, out["SHA256"])
	}
}

func TestServerRateFlag(t *testing.T) {
	t.Parallel()
	// Two 1 MiB downloads at once, on two connections to a server capped
	// at 2 MiB/s in all, cannot end before about a second: the bucket
	// holds a hundredth of a second's worth at the start. Without the cap
	// they take milliseconds.
	const size, rate = 1 << 20, 2 << 20
	out := start(t, "-size", fmt.Sprint(size), "-server-rate", "2M")
	begin := time.Now()
	errs := make(chan error, 2)
	for range 2 {
		go func() {
			resp, err := http.Get(out["URL"])
			if err != nil {
				errs <- err
				return
			}
			n, err := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err == nil && n != size {
				err = fmt.Errorf("read %d bytes, want %d", n, size)
			}
			errs <- err
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	d := time.Since(begin)
	if minD := time.Duration(2*size-rate/100) * time.Second / rate * 95 / 100; d < minD {
		t.Errorf("two %d-byte downloads at -server-rate %d took %v, want at least %v", size, rate, d, minD)
	}
}
