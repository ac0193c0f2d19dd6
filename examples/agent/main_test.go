package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/directdl/directdl/certstore"
	"github.com/directdl/directdl/examples/agent/agentclient"
	"github.com/directdl/directdl/internal/faultserver"
)

func TestFlags(t *testing.T) {
	dir := t.TempDir()
	pool := filepath.Join(dir, "pool")
	if err := os.Mkdir(pool, 0o755); err != nil {
		t.Fatal(err)
	}
	token := filepath.Join(dir, "token")
	if err := os.WriteFile(token, []byte("abc123\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte(" \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	twoWords := filepath.Join(dir, "two")
	if err := os.WriteFile(twoWords, []byte("abc def\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	trust := filepath.Join(dir, "trust.jks")
	base := func(extra ...string) []string {
		return append([]string{"-listen", "127.0.0.1:0", "-pool", pool, "-token-file", token, "-truststore", trust}, extra...)
	}
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no flags", nil, 2, "-pool is required"},
		{"no token file", []string{"-pool", pool, "-truststore", trust}, 2, "-token-file is required"},
		{"no trust store", []string{"-pool", pool, "-token-file", token}, 2, "-truststore is required"},
		{"argument", append(base(), "extra"), 2, `unexpected argument "extra"`},
		{"parallel", base("-parallel", "0"), 2, "-parallel 0"},
		{"bad cidr", base("-allow-cidr", "10.0.0.0/33"), 2, "neither a CIDR prefix nor an IP address"},
		{"tls half", base("-tls-cert", "x.pem"), 2, "go together"},
		{"unknown flag", base("-bogus"), 2, "bogus"},
		{"token file missing", []string{"-listen", "127.0.0.1:0", "-pool", pool, "-token-file", filepath.Join(dir, "nope"), "-truststore", trust}, 1, "token file"},
		{"token file empty", []string{"-listen", "127.0.0.1:0", "-pool", pool, "-token-file", empty, "-truststore", trust}, 1, "is empty"},
		{"token file two words", []string{"-listen", "127.0.0.1:0", "-pool", pool, "-token-file", twoWords, "-truststore", trust}, 1, "more than one word"},
		{"pool missing", []string{"-listen", "127.0.0.1:0", "-pool", filepath.Join(dir, "nope"), "-token-file", token, "-truststore", trust}, 1, "not an existing directory"},
		{"trust store in pool", []string{"-listen", "127.0.0.1:0", "-pool", pool, "-token-file", token, "-truststore", filepath.Join(pool, "trust.jks")}, 1, "inside the pool"},
		{"trust store dir missing", []string{"-listen", "127.0.0.1:0", "-pool", pool, "-token-file", token, "-truststore", filepath.Join(dir, "no", "trust.jks")}, 1, "directory does not exist"},
		{"bad callback", base("-callback", "ftp://127.0.0.1/x"), 1, "callback"},
		{"bad tls files", base("-tls-cert", filepath.Join(dir, "nope.pem"), "-tls-key", filepath.Join(dir, "nope.key")), 1, "-tls-cert"},
		{"listen", []string{"-listen", "127.0.0.1:99999", "-pool", pool, "-token-file", token, "-truststore", trust}, 1, "99999"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr strings.Builder
			code := run(context.Background(), tt.args, &stdout, &stderr)
			if code != tt.code {
				t.Fatalf("exit %d, want %d; stderr: %s", code, tt.code, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("stderr %q, want it to mention %q", stderr.String(), tt.want)
			}
			if strings.Contains(stderr.String(), "abc123") {
				t.Error("the token was printed")
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout %q, want nothing", stdout.String())
			}
		})
	}
}

// startRun runs the agent with args until the test ends, and returns the
// URL it serves.
func startRun(t *testing.T, args []string) (string, func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	code := make(chan int, 1)
	var stderr syncBuilder
	go func() {
		code <- run(ctx, args, pw, &stderr)
		pw.Close()
	}()
	lines := bufio.NewScanner(pr)
	if !lines.Scan() {
		cancel()
		t.Fatalf("the agent printed nothing; exit %d, stderr: %s", <-code, stderr.String())
	}
	line := lines.Text()
	go io.Copy(io.Discard, pr)
	url, ok := strings.CutPrefix(line, "agent: listening on ")
	if !ok {
		cancel()
		t.Fatalf("first line %q, want the URL", line)
	}
	stop := func() int {
		cancel()
		select {
		case c := <-code:
			if strings.Contains(stderr.String(), "abc123") {
				t.Error("the token was logged")
			}
			return c
		case <-time.After(time.Minute):
			t.Fatal("the agent did not stop")
			return -1
		}
	}
	return url, stop
}

// syncBuilder is a strings.Builder safe for concurrent use.
type syncBuilder struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuilder) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuilder) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func httpsClient(cfg *tls.Config) *http.Client {
	return &http.Client{Timeout: time.Minute, Transport: &http.Transport{TLSClientConfig: cfg}}
}

func TestRunServesAndStops(t *testing.T) {
	for _, scheme := range []string{"http", "https"} {
		t.Run(scheme, func(t *testing.T) {
			dir := t.TempDir()
			pool := filepath.Join(dir, "pool")
			if err := os.Mkdir(pool, 0o755); err != nil {
				t.Fatal(err)
			}
			token := filepath.Join(dir, "token")
			if err := os.WriteFile(token, []byte("abc123\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			trust := filepath.Join(dir, "trust.pem")
			args := []string{"-listen", "127.0.0.1:0", "-pool", pool, "-token-file", token, "-truststore", trust, "-allow-cidr", "127.0.0.0/8"}
			var opts []agentclient.Option
			if scheme == "https" {
				pki, err := faultserver.NewPKI(0)
				if err != nil {
					t.Fatal(err)
				}
				if err := pki.WritePEM(dir); err != nil {
					t.Fatal(err)
				}
				args = append(args, "-tls-cert", filepath.Join(dir, "chain.pem"), "-tls-key", filepath.Join(dir, "leaf-key.pem"))
				cfg, err := certstore.NewTLSConfig([]certstore.Entry{{Alias: "root", Cert: pki.Root}})
				if err != nil {
					t.Fatal(err)
				}
				opts = append(opts, agentclient.WithHTTPClient(httpsClient(cfg)))
			}
			url, stop := startRun(t, args)
			if !strings.HasPrefix(url, scheme+"://127.0.0.1:") {
				t.Fatalf("URL %s", url)
			}
			c, err := agentclient.New(url, "abc123", opts...)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			h, err := c.Health(ctx)
			if err != nil || !h.OK || h.Version != version {
				t.Fatalf("health: %+v, %v", h, err)
			}
			inv, err := c.Inventory(ctx, false)
			if err != nil {
				t.Fatal(err)
			}
			if inv.Pool != pool {
				t.Errorf("pool %s, want %s", inv.Pool, pool)
			}
			// The trust store file is created on the first import.
			pki, err := faultserver.NewPKI(0)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Import(ctx, certstore.Entry{Alias: "mirror-ca", Cert: pki.Root}); err != nil {
				t.Fatal(err)
			}
			store, err := certstore.OpenFileStore(trust, "")
			if err != nil {
				t.Fatal(err)
			}
			if e, err := store.Entries(ctx); err != nil || len(e) != 1 || e[0].Alias != "mirror-ca" {
				t.Errorf("trust store file holds %v, %v", e, err)
			}
			if code := stop(); code != 0 {
				t.Fatalf("exit %d after the context ended, want 0", code)
			}
			if _, err := c.Health(ctx); err == nil {
				t.Error("the agent still answers after it stopped")
			}
		})
	}
}
