package main

import (
	"bufio"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseSize(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true}, {"123", 123, true}, {"1K", 1024, true}, {"20M", 20 << 20, true},
		{"2G", 2 << 30, true}, {"2GiB", 2 << 30, true}, {"2gb", 2 << 30, true}, {"1E", 1 << 60, true},
		{"7B", 7, true}, {"1iB", 0, false}, {"1I", 0, false}, {"8E", 0, false}, {"", 0, false}, {"-1", 0, false}, {"1X", 0, false}, {"K", 0, false}, {"1KK", 0, false},
	} {
		got, err := parseSize(tt.in)
		if got != tt.want || (err == nil) != tt.ok {
			t.Errorf("parseSize(%q) = %d, %v; want %d, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

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
	} {
		if code := run(context.Background(), args, io.Discard, io.Discard); code != 2 {
			t.Errorf("%q: exit status %d, want 2", args, code)
		}
	}
	if code := run(context.Background(), []string{"-addr", "10.0.0.1"}, io.Discard, io.Discard); code != 1 {
		t.Errorf("non-loopback address: exit status %d, want 1", code)
	}
}
