package main

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/directdl/directdl/download"
	"github.com/directdl/directdl/internal/faultserver"
)

// fast are the flags of every network test: loopback allowed (the default
// policy refuses it) and few retries, so failures fail quickly.
var fast = []string{"-allow-cidr", "127.0.0.0/8", "-retries", "1"}

// resultKeys are the keys of a download's -json result: ddctl's contract.
var resultKeys = []string{"bytes_transferred", "connections", "digest", "duration_ms", "path", "pieces_refetched", "redirects", "resumed_from", "size", "sources", "verified"}

// ddctlCtx runs the CLI in-process with ctx.
func ddctlCtx(ctx context.Context, t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(ctx, args, &out, &errb)
	return code, out.String(), errb.String()
}

// dl runs ddctl download with the fast flags and args.
func dl(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	return ddctl(t, append(append([]string{"download"}, fast...), args...)...)
}

// content is a resource served by a test server, with its digests.
type content struct {
	url          string
	size         int64
	sha256, md5  string // hex
	sha256Digest string // "sha256:hex"
}

// serve starts a server with one Pattern resource at path and returns it
// with the resource's digests.
func serve(t *testing.T, path string, seed uint64, size int64, opts ...faultserver.Option) (*faultserver.Server, content) {
	t.Helper()
	s := faultserver.StartTest(t, append(opts, faultserver.WithResource(faultserver.PatternResource(path, seed, size)))...)
	return s, describeResource(t, s, path)
}

// describeResource returns the URL and digests of the resource at path.
func describeResource(t *testing.T, s *faultserver.Server, path string) content {
	t.Helper()
	v, ok := s.Version(path)
	if !ok {
		t.Fatalf("no resource at %s", path)
	}
	hs, hm := sha256.New(), md5.New()
	if err := faultserver.Hash(context.Background(), v.Content, v.Content.Size(), hs, hm); err != nil {
		t.Fatal(err)
	}
	c := content{url: s.URL(path), size: v.Content.Size(), sha256: hex.EncodeToString(hs.Sum(nil)), md5: hex.EncodeToString(hm.Sum(nil))}
	c.sha256Digest = "sha256:" + c.sha256
	return c
}

// fileSHA256 returns the SHA-256 of the file at path, in hex.
func fileSHA256(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading the downloaded file: %v", err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// decodeResult parses stdout as one JSON object and checks its keys are
// exactly want.
func decodeResult(t *testing.T, stdout string, want []string) map[string]any {
	t.Helper()
	var m map[string]any
	dec := json.NewDecoder(strings.NewReader(stdout))
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("stdout is not a JSON object: %v\n%s", err, stdout)
	}
	if dec.More() {
		t.Fatalf("stdout holds more than one JSON document:\n%s", stdout)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if !slices.Equal(keys, want) {
		t.Errorf("JSON keys %v, want exactly %v", keys, want)
	}
	return m
}

// mustNotExist fails t if path exists.
func mustNotExist(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s exists (or cannot be checked: %v), want nothing there", path, err)
	}
}

// oneErrorLine checks stderr is one "ddctl: " line containing want.
func oneErrorLine(t *testing.T, stderr, want string) {
	t.Helper()
	if !strings.HasPrefix(stderr, "ddctl: ") || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
		t.Errorf("stderr %q is not one line starting with ddctl:", stderr)
	}
	if !strings.Contains(stderr, want) {
		t.Errorf("stderr %q lacks %q", stderr, want)
	}
}

func TestDownloadJSON(t *testing.T) {
	t.Parallel()
	s, c := serve(t, "/disk.img", 7, 3<<20+123)
	dir := t.TempDir()

	t.Run("sha256", func(t *testing.T) {
		dest := filepath.Join(dir, "a.img")
		code, stdout, stderr := dl(t, "-json", "-checksum", c.sha256Digest, "-o", dest, c.url)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		if stderr != "" {
			t.Errorf("stderr %q, want nothing with -json on a non-terminal", stderr)
		}
		m := decodeResult(t, stdout, resultKeys)
		want := map[string]any{
			"path": dest, "size": float64(c.size), "digest": c.sha256Digest, "verified": true,
			"bytes_transferred": float64(c.size), "resumed_from": float64(0), "redirects": []any{},
		}
		for k, v := range want {
			if !reflect.DeepEqual(m[k], v) {
				t.Errorf("%s = %#v, want %#v", k, m[k], v)
			}
		}
		if n, _ := m["connections"].(float64); n < 1 || n > download.DefaultConnections {
			t.Errorf("connections = %v, want 1 to %d", m["connections"], download.DefaultConnections)
		}
		if d, ok := m["duration_ms"].(float64); !ok || d < 0 {
			t.Errorf("duration_ms = %#v, want a number >= 0", m["duration_ms"])
		}
		if got := fileSHA256(t, dest); got != c.sha256 {
			t.Errorf("file's SHA-256 %s, want %s", got, c.sha256)
		}
	})

	t.Run("md5-one-connection", func(t *testing.T) {
		// A bare hex checksum is MD5, and the digest is given in it.
		dest := filepath.Join(dir, "b.img")
		code, stdout, stderr := dl(t, "-json", "-connections", "1", "-checksum", strings.ToUpper(c.md5), "-o", dest, c.url)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		m := decodeResult(t, stdout, resultKeys)
		if m["digest"] != "md5:"+c.md5 || m["verified"] != true || m["connections"] != float64(1) {
			t.Errorf("digest %v, verified %v, connections %v; want md5:%s, true, 1", m["digest"], m["verified"], m["connections"], c.md5)
		}
	})

	t.Run("no-checksum", func(t *testing.T) {
		dest := filepath.Join(dir, "c.img")
		code, stdout, stderr := dl(t, "-json", "-no-resume", "-o", dest, c.url)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		m := decodeResult(t, stdout, resultKeys)
		if m["digest"] != c.sha256Digest || m["verified"] != false {
			t.Errorf("digest %v, verified %v; want %s, false", m["digest"], m["verified"], c.sha256Digest)
		}
	})

	t.Run("human", func(t *testing.T) {
		dest := filepath.Join(dir, "d.img")
		code, stdout, stderr := dl(t, "-checksum", "{SHA-256}"+strings.ToUpper(c.sha256), "-o", dest, c.url)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		if stdout != "" {
			t.Errorf("stdout %q, want nothing without -json", stdout)
		}
		line := strings.TrimSuffix(stderr, "\n")
		if strings.ContainsAny(line, "\r\n\x1b") || !strings.Contains(line, dest) || !strings.Contains(line, c.sha256Digest+" verified") {
			t.Errorf("summary %q: want one line naming %s and %s verified, and no progress", stderr, dest, c.sha256Digest)
		}
		code, stdout, stderr = dl(t, "-quiet", "-o", dest, c.url)
		if code != 0 || stdout != "" || stderr != "" {
			t.Errorf("-quiet: exit %d, stdout %q, stderr %q; want 0 and nothing printed", code, stdout, stderr)
		}
	})

	if st := s.Stats(); st.Requests == 0 {
		t.Error("the server saw no request")
	}
}

func TestDownloadChecksumMismatch(t *testing.T) {
	t.Parallel()
	_, c := serve(t, "/disk.img", 8, 2<<20)
	wrong := sha256.Sum256([]byte("other content"))
	dir := t.TempDir()
	for _, asJSON := range []bool{false, true} {
		dest := filepath.Join(dir, "disk.img")
		args := []string{"-checksum", "sha256:" + hex.EncodeToString(wrong[:]), "-o", dest, c.url}
		if asJSON {
			args = append([]string{"-json"}, args...)
		}
		code, stdout, stderr := dl(t, args...)
		if code != 4 {
			t.Errorf("-json=%v: exit %d, want 4 (stderr %q)", asJSON, code, stderr)
		}
		if stdout != "" {
			t.Errorf("-json=%v: stdout %q, want nothing for a failed download", asJSON, stdout)
		}
		oneErrorLine(t, stderr, "checksum mismatch")
		mustNotExist(t, dest)
	}
}

func TestDownloadToDirectory(t *testing.T) {
	t.Parallel()
	s := faultserver.StartTest(t,
		faultserver.WithResource(faultserver.PatternResource("/images/disk.img", 9, 1<<20)),
		faultserver.WithResource(faultserver.PatternResource("/images/my disk.qcow2", 10, 100<<10)))
	dir := t.TempDir()
	for _, tc := range []struct{ path, url, name string }{
		{"/images/disk.img", s.URL("/images/disk.img?v=2"), "disk.img"},
		{"/images/my disk.qcow2", s.URL("/images/my%20disk.qcow2"), "my disk.qcow2"},
	} {
		c := describeResource(t, s, tc.path)
		code, stdout, stderr := dl(t, "-json", "-o", dir, tc.url)
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", tc.url, code, stderr)
		}
		want := filepath.Join(dir, tc.name)
		if m := decodeResult(t, stdout, resultKeys); m["path"] != want {
			t.Errorf("%s: path %v, want %s", tc.url, m["path"], want)
		}
		if got := fileSHA256(t, want); got != c.sha256 {
			t.Errorf("%s: content differs", want)
		}
	}
}

func TestFileNameFromURL(t *testing.T) {
	t.Parallel()
	for raw, want := range map[string]string{
		"http://h/a/b.img":                  "b.img",
		"http://h/b.img?checksum=sha256:00": "b.img",
		"https://h/x/my%20disk.qcow2#frag":  "my disk.qcow2",
		"http://h/a/%2e%2e.img":             "...img",
		"http://h":                          "",
		"http://h/":                         "",
		"http://h/a/":                       "",
		"http://h/a/.":                      "",
		"http://h/a/..":                     "",
		"http://h/a/%2e%2e":                 "",
		"http://h/a%2Fb":                    "",
		"http://h/a%5Cb":                    "",
		"http://h/a%00b":                    "",
	} {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		got, err := fileNameFromURL(u)
		if want == "" {
			if err == nil || !strings.Contains(err.Error(), "cannot name a file from URL") {
				t.Errorf("%s: got %q, %v; want a cannot-name error", raw, got, err)
			}
		} else if got != want || err != nil {
			t.Errorf("%s: got %q, %v; want %q", raw, got, err, want)
		}
	}
}

func TestDownloadUsage(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	u := "http://127.0.0.1:9/disk.img"
	dup := write("dup.txt", u+"\nhttp://127.0.0.2:9/x/disk.img\n")
	badSum := write("badsum.txt", "# images\n\n"+u+" sha256:1234\n")
	fields := write("fields.txt", u+" md5:00 extra\n")
	empty := write("empty.txt", "# nothing\n\n")
	noName := write("noname.txt", "http://127.0.0.1:9/\n")
	file := filepath.Join(dir, "out.img")
	cases := []struct {
		name string
		args []string
		msg  string
	}{
		{"bad-flag", []string{"-nope", "-o", file, u}, "flag provided but not defined: -nope"},
		{"no-o", []string{u}, "-o DEST required"},
		{"no-url", []string{"-o", file}, "want exactly one URL"},
		{"two-urls", []string{"-o", file, u, u}, "want exactly one URL"},
		{"flag-after-url", []string{"-o", file, u, "-json"}, "want exactly one URL"},
		{"bad-checksum", []string{"-checksum", "sha256:xyz", "-o", file, u}, `-checksum: download: checksum "sha256:xyz"`},
		{"sha256-as-bare-hex", []string{"-checksum", strings.Repeat("ab", 32), "-o", file, u}, "-checksum"},
		{"bad-cidr", []string{"-allow-cidr", "127.0.0/8", "-o", file, u}, `invalid value "127.0.0/8" for flag -allow-cidr`},
		{"cidr-host-bits", []string{"-deny-cidr", "10.1.2.3/8", "-o", file, u}, "did you mean 10.0.0.0/8"},
		{"cidr-not-ip", []string{"-allow-cidr", "localhost", "-o", file, u}, `"localhost" is not an IP address`},
		{"only-allowed-alone", []string{"-only-allowed", "-o", file, u}, "-only-allowed needs"},
		{"bad-connections", []string{"-connections", "0", "-o", file, u}, "connections must be 1 to 64"},
		{"bad-timeout", []string{"-socket-timeout", "0s", "-o", file, u}, "socket timeout must be positive"},
		{"bad-duration", []string{"-connect-timeout", "5", "-o", file, u}, "-connect-timeout"},
		{"bad-min-split", []string{"-min-split", "1k", "-o", file, u}, "min split"},
		{"ftp", []string{"-o", file, "ftp://127.0.0.1/disk.img"}, `scheme "ftp" is not http, https or nfs`},
		{"no-host", []string{"-o", file, "http:///disk.img"}, "has no host"},
		{"unnamable", []string{"-o", dir, "http://127.0.0.1:9/"}, "cannot name a file from URL http://127.0.0.1:9/: its path does not end in a usable file name; give -o a file path"},
		{"missing-dir", []string{"-o", filepath.Join(dir, "nodir") + "/", u}, "no such directory"},
		{"storepass-alone", []string{"-storepass", "changeit", "-o", file, u}, "-truststore and -storepass go together"},
		{"truststore-alone", []string{"-truststore", "ts.jks", "-o", file, u}, "-truststore and -storepass go together"},
		{"parallel-alone", []string{"-parallel", "3", "-o", file, u}, "-parallel needs -batch"},
		{"batch-with-url", []string{"-batch", dup, "-o", dir, u}, "no URL arguments"},
		{"batch-with-checksum", []string{"-batch", dup, "-checksum", "md5:00", "-o", dir}, "-checksum cannot go with -batch"},
		{"batch-bad-parallel", []string{"-batch", dup, "-parallel", "0", "-o", dir}, "-parallel 0"},
		{"batch-o-file", []string{"-batch", dup, "-o", dup}, "must be an existing directory"},
		{"batch-duplicate", []string{"-batch", dup, "-o", dir}, dup + `:2: file name "disk.img" is also that of line 1`},
		{"batch-bad-checksum", []string{"-batch", badSum, "-o", dir}, badSum + `:3: download: checksum "sha256:1234"`},
		{"batch-fields", []string{"-batch", fields, "-o", dir}, fields + ":1: want URL [CHECKSUM], got 3 fields"},
		{"batch-empty", []string{"-batch", empty, "-o", dir}, "lists no URL"},
		{"batch-unnamable", []string{"-batch", noName, "-o", dir}, noName + ":1: cannot name a file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			code, stdout, stderr := ddctl(t, append([]string{"download"}, c.args...)...)
			if code != 2 {
				t.Errorf("exit %d, want 2 (stderr %q)", code, stderr)
			}
			if stdout != "" {
				t.Errorf("stdout %q, want nothing", stdout)
			}
			oneErrorLine(t, stderr, c.msg)
			if !strings.Contains(stderr, "(usage: ddctl download [flags] -o DEST URL") {
				t.Errorf("stderr %q lacks the usage", stderr)
			}
		})
	}
	mustNotExist(t, file)

	code, stdout, stderr := ddctl(t, "download", "-h")
	if code != 0 || stdout != "" || !strings.Contains(stderr, "usage: ddctl download") || !strings.Contains(stderr, "-allow-cidr CIDR") {
		t.Errorf("download -h: exit %d, stdout %q, stderr %q; want 0 and the flags on stderr", code, stdout, stderr)
	}
	code, _, stderr = ddctl(t, "help")
	if code != 0 || !strings.Contains(stderr, "  ddctl download [flags] -o DEST URL") || !strings.Contains(stderr, "  ddctl qcow2 create") {
		t.Errorf("help: exit %d, stderr %q; want download and qcow2 listed", code, stderr)
	}
}

func TestDownloadPolicy(t *testing.T) {
	t.Parallel()
	s, c := serve(t, "/disk.img", 11, 64<<10)
	dest := filepath.Join(t.TempDir(), "disk.img")

	// The default policy refuses loopback.
	code, stdout, stderr := ddctl(t, "download", "-retries", "1", "-json", "-o", dest, c.url)
	if code != 1 || stdout != "" {
		t.Errorf("without -allow-cidr: exit %d, stdout %q; want 1 and nothing", code, stdout)
	}
	oneErrorLine(t, stderr, "loopback")
	if !strings.HasSuffix(stderr, "(ddctl: see -allow-cidr, -deny-cidr)\n") {
		t.Errorf("stderr %q does not name the flags", stderr)
	}
	// Deny wins over allow; several prefixes in one flag value.
	code, _, stderr = dl(t, "-deny-cidr", "10.0.0.0/8,127.0.0.1", "-o", dest, c.url)
	if code != 1 {
		t.Errorf("with -deny-cidr 127.0.0.1: exit %d, want 1", code)
	}
	oneErrorLine(t, stderr, "deny CIDR 127.0.0.1/32")
	// With -only-allowed, the allow list is all there is.
	code, _, stderr = ddctl(t, "download", "-retries", "1", "-only-allowed", "-allow-cidr", "10.0.0.0/8", "-o", dest, c.url)
	if code != 1 {
		t.Errorf("with -only-allowed: exit %d, want 1", code)
	}
	oneErrorLine(t, stderr, "not in any allow CIDR")
	mustNotExist(t, dest)
	if n := s.Stats().Requests; n != 0 {
		t.Errorf("the server saw %d requests; refused addresses must not be connected to", n)
	}
	if code, _, stderr := dl(t, "-only-allowed", "-o", dest, c.url); code != 0 {
		t.Errorf("-only-allowed -allow-cidr 127.0.0.0/8: exit %d: %s", code, stderr)
	}
}

func TestDownloadRedirects(t *testing.T) {
	t.Parallel()
	s, c := serve(t, "/disk.img", 12, 256<<10)
	if err := s.Redirect("/r/disk.img", "/disk.img", faultserver.Hop{Status: 301}, faultserver.Hop{Status: 302}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	from := s.URL("/r/disk.img")

	code, stdout, stderr := dl(t, "-json", "-max-redirects", "0", "-o", dir, from)
	if code != 1 || stdout != "" {
		t.Errorf("-max-redirects 0: exit %d, stdout %q; want 1 and nothing", code, stdout)
	}
	oneErrorLine(t, stderr, "redirect")
	if !strings.HasSuffix(stderr, "(ddctl: see -max-redirects)\n") {
		t.Errorf("stderr %q does not name the flag", stderr)
	}
	mustNotExist(t, filepath.Join(dir, "disk.img"))

	code, stdout, stderr = dl(t, "-json", "-max-redirects", "1", "-o", dir, from)
	if code != 1 || stdout != "" {
		t.Errorf("-max-redirects 1 with two hops: exit %d, stdout %q; want 1 and nothing", code, stdout)
	}
	oneErrorLine(t, stderr, "redirect")

	code, stdout, stderr = dl(t, "-json", "-checksum", c.sha256Digest, "-o", dir, from)
	if code != 0 {
		t.Fatalf("default -max-redirects: exit %d: %s", code, stderr)
	}
	m := decodeResult(t, stdout, resultKeys)
	chain, _ := m["redirects"].([]any)
	if len(chain) != 3 || chain[0] != from || !strings.HasSuffix(chain[2].(string), "/disk.img") {
		t.Errorf("redirects %v, want [%s, hop, .../disk.img]", m["redirects"], from)
	}
	if m["verified"] != true || m["path"] != filepath.Join(dir, "disk.img") {
		t.Errorf("verified %v, path %v", m["verified"], m["path"])
	}
}

// tlsServer starts an HTTPS server with a fresh PKI, and writes its PEM
// files (root.pem, ...) to a new directory, which it returns.
func tlsServer(t *testing.T) (*faultserver.Server, content, *faultserver.PKI, string) {
	t.Helper()
	pki, err := faultserver.NewPKI(0)
	if err != nil {
		t.Fatal(err)
	}
	pemDir := t.TempDir()
	if err := pki.WritePEM(pemDir); err != nil {
		t.Fatal(err)
	}
	s, c := serve(t, "/disk.img", 13, 512<<10, faultserver.WithTLS(pki.Certificate(true)))
	return s, c, pki, pemDir
}

func TestDownloadCAFile(t *testing.T) {
	t.Parallel()
	_, c, _, pemDir := tlsServer(t)
	if !strings.HasPrefix(c.url, "https://") {
		t.Fatalf("URL %s is not https", c.url)
	}
	dir := t.TempDir()

	code, _, stderr := dl(t, "-o", dir, c.url)
	if code != 1 {
		t.Errorf("without -ca-file: exit %d, want 1", code)
	}
	oneErrorLine(t, stderr, "certificate")
	if !strings.HasSuffix(stderr, "(ddctl: trust its CA with -ca-file or -truststore)\n") {
		t.Errorf("stderr %q does not name the flags", stderr)
	}
	mustNotExist(t, filepath.Join(dir, "disk.img"))

	code, stdout, stderr := dl(t, "-json", "-ca-file", filepath.Join(pemDir, "root.pem"), "-checksum", c.sha256Digest, "-o", dir, c.url)
	if code != 0 {
		t.Fatalf("with -ca-file root.pem: exit %d: %s", code, stderr)
	}
	if m := decodeResult(t, stdout, resultKeys); m["verified"] != true {
		t.Errorf("verified %v", m["verified"])
	}

	// A PEM file without certificates, and a missing one, fail before any
	// connection.
	for _, f := range []string{"leaf-key.pem", "missing.pem"} {
		code, _, stderr = dl(t, "-ca-file", filepath.Join(pemDir, f), "-o", dir, c.url)
		if code != 1 {
			t.Errorf("-ca-file %s: exit %d, want 1", f, code)
		}
		oneErrorLine(t, stderr, "-ca-file")
	}
	if !strings.Contains(stderr, "no such file") {
		t.Errorf("missing -ca-file: %q does not say so", stderr)
	}
	_, _, stderr = dl(t, "-ca-file", filepath.Join(pemDir, "leaf-key.pem"), "-o", dir, c.url)
	if !strings.Contains(stderr, "holds no PEM CERTIFICATE block") {
		t.Errorf("-ca-file leaf-key.pem: %q does not say it holds no certificate", stderr)
	}
}

// keytool returns the path of Java's keytool. Without it the test is
// skipped, except in CI (env CI set), which installs it and must run it.
func keytool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("keytool")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("keytool not found, but CI must run this test: .ci/run installs it (Debian package openjdk-17-jre-headless)")
		}
		t.Skip("keytool not found (Debian package openjdk-17-jre-headless)")
	}
	return p
}

// runKeytool runs keytool with args in dir.
func runKeytool(t *testing.T, kt, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command(kt, args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("keytool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// hasMagic fails t unless the file at path starts with magic.
func hasMagic(t *testing.T, path string, magic []byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, magic) {
		t.Fatalf("%s starts with % x, want % x: keytool made another store type", path, b[:min(len(b), 4)], magic)
	}
}

func TestDownloadTruststore(t *testing.T) {
	kt := keytool(t)
	t.Parallel()
	_, c, _, pemDir := tlsServer(t)
	other, err := faultserver.NewPKI(0)
	if err != nil {
		t.Fatal(err)
	}
	otherDir := t.TempDir()
	if err := other.WritePEM(otherDir); err != nil {
		t.Fatal(err)
	}
	// keytool's default store type is PKCS12 since Java 9, so -storetype
	// JKS is needed for a JKS file.
	runKeytool(t, kt, pemDir, "-importcert", "-noprompt", "-alias", "root", "-file", "root.pem", "-keystore", "ts.jks", "-storetype", "JKS", "-storepass", "changeit")
	runKeytool(t, kt, pemDir, "-importcert", "-noprompt", "-alias", "root", "-file", "root.pem", "-keystore", "ts.p12", "-storetype", "PKCS12", "-storepass", "changeit")
	runKeytool(t, kt, otherDir, "-importcert", "-noprompt", "-alias", "other", "-file", "root.pem", "-keystore", "other.jks", "-storetype", "JKS", "-storepass", "secret")
	jks, p12 := filepath.Join(pemDir, "ts.jks"), filepath.Join(pemDir, "ts.p12")
	otherJKS := filepath.Join(otherDir, "other.jks")
	hasMagic(t, jks, []byte{0xfe, 0xed, 0xfe, 0xed})
	hasMagic(t, p12, []byte{0x30})

	for _, store := range []string{jks, p12} {
		dir := t.TempDir()
		code, stdout, stderr := dl(t, "-json", "-truststore", store, "-storepass", "changeit", "-checksum", c.sha256Digest, "-o", dir, c.url)
		if code != 0 {
			t.Errorf("-truststore %s: exit %d: %s", filepath.Base(store), code, stderr)
			continue
		}
		if m := decodeResult(t, stdout, resultKeys); m["verified"] != true {
			t.Errorf("-truststore %s: verified %v", filepath.Base(store), m["verified"])
		}

		code, _, stderr = dl(t, "-truststore", store, "-storepass", "wrong", "-o", filepath.Join(dir, "x.img"), c.url)
		if code != 1 {
			t.Errorf("-truststore %s with a wrong -storepass: exit %d, want 1", filepath.Base(store), code)
		}
		oneErrorLine(t, stderr, "-truststore "+store+" could not be opened with this -storepass")
		mustNotExist(t, filepath.Join(dir, "x.img"))
	}

	// Another CA's store alone does not trust the server; with -ca-file
	// for the right root, both are trusted together.
	dir := t.TempDir()
	code, _, stderr := dl(t, "-truststore", otherJKS, "-storepass", "secret", "-o", dir, c.url)
	if code != 1 {
		t.Errorf("another CA's trust store: exit %d, want 1", code)
	}
	oneErrorLine(t, stderr, "certificate")
	code, _, stderr = dl(t, "-truststore", otherJKS, "-storepass", "secret", "-ca-file", filepath.Join(pemDir, "root.pem"), "-o", dir, c.url)
	if code != 0 {
		t.Errorf("-truststore (another CA) with -ca-file (the right one): exit %d: %s", code, stderr)
	}

	// A PEM file given as a trust store is named for what it is.
	code, _, stderr = dl(t, "-truststore", filepath.Join(pemDir, "root.pem"), "-storepass", "x", "-o", dir, c.url)
	if code != 1 {
		t.Errorf("-truststore root.pem: exit %d, want 1", code)
	}
	oneErrorLine(t, stderr, "is PEM, not a JKS or PKCS12 store; give it with -ca-file")
}

// TestReadTruststoreKeyEntries checks that the certificates of private key
// entries are read as well as trusted certificate entries.
func TestReadTruststoreKeyEntries(t *testing.T) {
	kt := keytool(t)
	t.Parallel()
	dir := t.TempDir()
	pki, err := faultserver.NewPKI(0)
	if err != nil {
		t.Fatal(err)
	}
	if err := pki.WritePEM(dir); err != nil {
		t.Fatal(err)
	}
	for _, typ := range []string{"JKS", "PKCS12"} {
		store := "ks-" + typ
		runKeytool(t, kt, dir, "-genkeypair", "-keyalg", "EC", "-groupname", "secp256r1", "-alias", "me", "-dname", "CN=ddctl-test-"+typ,
			"-validity", "2", "-keystore", store, "-storetype", typ, "-storepass", "changeit", "-keypass", "changeit")
		want := []string{"CN=ddctl-test-" + typ}
		if typ == "JKS" {
			// PKCS12 key stores are read as one key and its chain, so
			// a second entry is added to the JKS one only.
			runKeytool(t, kt, dir, "-importcert", "-noprompt", "-alias", "root", "-file", "root.pem", "-keystore", store, "-storetype", typ, "-storepass", "changeit")
			want = []string{"CN=ddctl-test-JKS", pki.Root.Subject.String()}
		}
		certs, err := readTruststore(filepath.Join(dir, store), "changeit")
		if err != nil {
			t.Errorf("%s: %v", typ, err)
			continue
		}
		var got []string
		for _, c := range certs {
			got = append(got, c.Subject.String())
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s: certificates %q, want %q", typ, got, want)
		}
	}
	if _, err := trustPool(nil, "", ""); err != nil {
		t.Error(err)
	}
	pool, err := trustPool([]string{filepath.Join(dir, "root.pem"), filepath.Join(dir, "chain.pem")}, "", "")
	if err != nil || pool == nil {
		t.Fatalf("trustPool: %v", err)
	}
	if _, err := pki.Leaf.Verify(x509.VerifyOptions{Roots: pool}); err != nil {
		t.Errorf("the leaf does not verify against the -ca-file pool: %v", err)
	}
}

// batchKeys are the keys of an element of a -batch -json list.
var batchKeys = append([]string{"error", "url"}, resultKeys...)

// decodeBatch parses stdout as one JSON list of n objects with the batch
// keys.
func decodeBatch(t *testing.T, stdout string, n int) []map[string]any {
	t.Helper()
	var list []json.RawMessage
	if err := json.Unmarshal([]byte(stdout), &list); err != nil {
		t.Fatalf("stdout is not one JSON list: %v\n%s", err, stdout)
	}
	if len(list) != n {
		t.Fatalf("%d results, want %d:\n%s", len(list), n, stdout)
	}
	want := slices.Sorted(slices.Values(batchKeys))
	out := make([]map[string]any, n)
	for i, raw := range list {
		out[i] = decodeResult(t, string(raw), want)
	}
	return out
}

func TestDownloadBatch(t *testing.T) {
	t.Parallel()
	s := faultserver.StartTest(t,
		faultserver.WithResource(faultserver.PatternResource("/a/one.img", 14, 1<<20+1)),
		faultserver.WithResource(faultserver.PatternResource("/b/two.img", 15, 700<<10)))
	one, two := describeResource(t, s, "/a/one.img"), describeResource(t, s, "/b/two.img")
	wrong := strings.Repeat("0", 32)
	missing := s.URL("/c/three.img")
	batch := func(lines ...string) string {
		p := filepath.Join(t.TempDir(), "batch.txt")
		if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}

	t.Run("ok", func(t *testing.T) {
		dir := t.TempDir()
		f := batch("# two images", "", one.url+" "+one.sha256Digest, "  "+two.url+"  ")
		code, stdout, stderr := dl(t, "-json", "-parallel", "2", "-batch", f, "-o", dir)
		if code != 0 || stderr != "" {
			t.Fatalf("exit %d, stderr %q; want 0 and nothing", code, stderr)
		}
		res := decodeBatch(t, stdout, 2)
		for i, tc := range []struct {
			c        content
			name     string
			verified bool
		}{{one, "one.img", true}, {two, "two.img", false}} {
			m := res[i]
			want := filepath.Join(dir, tc.name)
			if m["url"] != tc.c.url || m["error"] != nil || m["path"] != want || m["digest"] != tc.c.sha256Digest ||
				m["verified"] != tc.verified || m["size"] != float64(tc.c.size) {
				t.Errorf("result %d: %v", i, m)
			}
			if got := fileSHA256(t, want); got != tc.c.sha256 {
				t.Errorf("%s: content differs", want)
			}
		}
	})

	t.Run("mismatch", func(t *testing.T) {
		dir := t.TempDir()
		f := batch(one.url+" "+one.sha256Digest, two.url+" "+wrong)
		code, stdout, stderr := dl(t, "-json", "-batch", f, "-o", dir)
		if code != 4 {
			t.Errorf("exit %d, want 4", code)
		}
		oneErrorLine(t, stderr, "1 of 2 downloads failed: checksum mismatch")
		res := decodeBatch(t, stdout, 2)
		if res[0]["error"] != nil || res[0]["verified"] != true {
			t.Errorf("result 0: %v", res[0])
		}
		m := res[1]
		e, _ := m["error"].(string)
		if !strings.Contains(e, "checksum mismatch") || m["url"] != two.url || m["path"] != "" || m["size"] != float64(0) ||
			m["digest"] != "" || m["verified"] != false || m["redirects"] != nil {
			t.Errorf("failed result: %v", m)
		}
		mustNotExist(t, filepath.Join(dir, "two.img"))
	})

	t.Run("mismatch-and-404", func(t *testing.T) {
		dir := t.TempDir()
		f := batch(two.url+" "+wrong, missing, one.url)
		code, stdout, stderr := dl(t, "-batch", f, "-o", dir)
		if code != 1 || stdout != "" {
			t.Errorf("exit %d, stdout %q; want 1 and nothing without -json", code, stdout)
		}
		lines := strings.Split(strings.TrimSpace(stderr), "\n")
		if len(lines) != 4 {
			t.Fatalf("stderr has %d lines, want a summary, two failures and the error:\n%s", len(lines), stderr)
		}
		var failures, summaries int
		for _, l := range lines[:3] {
			switch {
			case strings.HasPrefix(l, "failed: "+two.url+": ") && strings.Contains(l, "checksum mismatch"),
				strings.HasPrefix(l, "failed: "+missing+": ") && strings.Contains(l, "404"):
				failures++
			case strings.HasPrefix(l, filepath.Join(dir, "one.img")+": "):
				summaries++
			}
		}
		if failures != 2 || summaries != 1 {
			t.Errorf("stderr:\n%s\nwant two failed: lines and one summary", stderr)
		}
		if lines[3] != "ddctl: 2 of 3 downloads failed, 1 by checksum mismatch" {
			t.Errorf("last line %q", lines[3])
		}
	})

	t.Run("summary", func(t *testing.T) {
		dir := t.TempDir()
		code, stdout, stderr := dl(t, "-batch", batch(one.url, two.url), "-o", dir)
		lines := strings.Split(strings.TrimSpace(stderr), "\n")
		if code != 0 || stdout != "" || len(lines) != 3 || !strings.HasPrefix(lines[2], "2 of 2 downloads done, ") {
			t.Errorf("exit %d, stdout %q, stderr:\n%s\nwant two summaries and a total", code, stdout, stderr)
		}
	})

	t.Run("missing-file", func(t *testing.T) {
		code, _, stderr := dl(t, "-batch", filepath.Join(t.TempDir(), "none.txt"), "-o", t.TempDir())
		if code != 1 {
			t.Errorf("exit %d, want 1", code)
		}
		oneErrorLine(t, stderr, "no such file")
	})
}

// TestDownloadInterrupt cancels a slow download, as SIGINT does, and runs
// it again.
func TestDownloadInterrupt(t *testing.T) {
	t.Parallel()
	s, c := serve(t, "/disk.img", 16, 4<<20, faultserver.WithFaults(faultserver.Faults{Rate: 256 << 10}))
	dest := filepath.Join(t.TempDir(), "disk.img")
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	start := time.Now()
	code, stdout, stderr := ddctlCtx(ctx, t, append(append([]string{"download"}, fast...), "-json", "-connections", "2", "-o", dest, c.url)...)
	if code != 1 || stdout != "" {
		t.Errorf("interrupted: exit %d, stdout %q; want 1 and nothing", code, stdout)
	}
	oneErrorLine(t, stderr, "interrupted")
	if !strings.Contains(stderr, "run the same command again to resume") {
		t.Errorf("stderr %q does not say how to resume", stderr)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v to stop after the interrupt", d)
	}
	mustNotExist(t, dest)

	s.SetFaults(faultserver.Faults{})
	code, stdout, stderr = dl(t, "-json", "-checksum", c.sha256Digest, "-o", dest, c.url)
	if code != 0 {
		t.Fatalf("again: exit %d: %s", code, stderr)
	}
	m := decodeResult(t, stdout, resultKeys)
	resumed, _ := m["resumed_from"].(float64)
	got, _ := m["bytes_transferred"].(float64)
	if m["verified"] != true || resumed < 0 || resumed+got < float64(c.size) {
		t.Errorf("again: %v", m)
	}
	t.Logf("resumed from %v bytes, transferred %v", resumed, got)
}

func TestProgressBar(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	if isTerminal(&buf) {
		t.Error("a buffer counts as a terminal")
	}
	if isTerminal(os.NewFile(^uintptr(0), "invalid")) {
		t.Error("an invalid file counts as a terminal")
	}
	f, err := os.CreateTemp(t.TempDir(), "stderr")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if isTerminal(f) {
		t.Error("a regular file counts as a terminal")
	}

	b := newProgressBar(&buf)
	b.expect(2)
	b.update(download.Progress{Path: "/a", Done: 1 << 20, Total: 4 << 20, Rate: 1 << 20, Connections: 4})
	b.update(download.Progress{Path: "/b", Done: 1 << 20, Total: 4 << 20, Rate: 1 << 20, Connections: 2})
	out := buf.String()
	last := out[strings.LastIndex(out, "\r")+1:]
	for _, want := range []string{"0/2 files", " 25% 2.0 MiB/8.0 MiB", "2.0 MiB/s", "ETA 3s", "6 conn", "\x1b[K"} {
		if !strings.Contains(last, want) {
			t.Errorf("line %q lacks %q", last, want)
		}
	}
	if strings.Contains(out, "\n") {
		t.Errorf("the bar wrote a newline: %q", out)
	}
	b.update(download.Progress{Path: "/a", Done: 4 << 20, Total: 4 << 20, Final: true})
	if out := buf.String(); !strings.Contains(out[strings.LastIndex(out, "\r"):], "1/2 files") {
		t.Errorf("a finished file is not counted: %q", out)
	}
	b.finish()
	if !strings.HasSuffix(buf.String(), "\r\x1b[K") {
		t.Errorf("finish did not clear the line: %q", buf.String())
	}
	n := buf.Len()
	b.update(download.Progress{Path: "/b", Done: 2 << 20, Total: 4 << 20})
	if buf.Len() != n {
		t.Error("the bar drew after finish")
	}

	// Unknown size: no bar, bytes so far.
	buf.Reset()
	b = newProgressBar(&buf)
	b.update(download.Progress{Path: "/c", Done: 1536, Total: -1, Rate: 100})
	if got := buf.String(); got != "\r1.5 KiB 100 B/s\x1b[K" {
		t.Errorf("unknown size: %q", got)
	}
	var nilBar *progressBar
	nilBar.expect(1)
	nilBar.finish()
}

func TestHumanBytes(t *testing.T) {
	t.Parallel()
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 3 << 19: "1.5 MiB", 8 << 30: "8.0 GiB", 1 << 62: "4.0 EiB"} {
		if got := humanBytes(n); got != want {
			t.Errorf("humanBytes(%d) = %q, want %q", n, got, want)
		}
	}
}
