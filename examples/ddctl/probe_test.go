package main

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// probeAllow lets the probe reach the loopback test servers.
var probeAllow = []string{"-allow-cidr", "127.0.0.0/8"}

// probeCA is a test certificate with its key.
type probeCA struct {
	cert *x509.Certificate
	key  crypto.Signer
}

// probeMakeCert makes cn signed by parent (nil: self-signed): a CA, or
// with leaf a server certificate for the loopback addresses. aia lists
// caIssuers URLs.
func probeMakeCert(t *testing.T, cn string, parent *probeCA, leaf bool, aia ...string) *probeCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		BasicConstraintsValid: true,
		IssuingCertificateURL: aia,
	}
	if leaf {
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv4(127, 0, 0, 2)}
	} else {
		tmpl.IsCA = true
		tmpl.KeyUsage = x509.KeyUsageCertSign
	}
	signer, issuer := crypto.Signer(key), tmpl
	if parent != nil {
		signer, issuer = parent.key, parent.cert
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, key.Public(), signer)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &probeCA{cert: c, key: key}
}

// probePKI is a root, an intermediate and a leaf whose AIA points at an
// HTTP server on 127.0.0.3 that publishes the intermediate and the root,
// and the root's PEM file for -ca-file.
type probePKI struct {
	root, int, leaf *probeCA
	rootFile        string
	aiaRequests     func() int
}

func probeNewPKI(t *testing.T) *probePKI {
	t.Helper()
	p := &probePKI{}
	bodies := &probeBodies{m: map[string][]byte{}}
	aia := probeServer(t, "127.0.0.3", nil, nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if b := bodies.get(r.URL.Path); b != nil {
			_, _ = w.Write(b)
			return
		}
		http.NotFound(w, r)
	}))
	p.aiaRequests = bodies.requests
	p.root = probeMakeCert(t, "ddctl test root", nil, false)
	p.int = probeMakeCert(t, "ddctl test intermediate", p.root, false, aia+"/root.cer")
	p.leaf = probeMakeCert(t, "ddctl test leaf", p.int, true, aia+"/int.cer")
	bodies.set("/int.cer", p.int.cert.Raw)
	bodies.set("/root.cer", p.root.cert.Raw)
	p.rootFile = filepath.Join(t.TempDir(), "root.pem")
	if err := os.WriteFile(p.rootFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.root.cert.Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// probeBodies are the responses of the AIA server, by path, and the
// requests it got.
type probeBodies struct {
	mu sync.Mutex
	m  map[string][]byte
	n  int
}

func (b *probeBodies) set(path string, body []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.m[path] = body
}

// get counts a request and returns the body of path.
func (b *probeBodies) get(path string) []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.n++
	return b.m[path]
}

func (b *probeBodies) requests() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.n
}

// probeServer serves h on ip, over TLS when chain is given, until the test
// ends, and returns its base URL.
func probeServer(t *testing.T, ip string, chain []*x509.Certificate, key crypto.Signer, h http.Handler) string {
	t.Helper()
	l, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	scheme := "http"
	if chain != nil {
		cert := tls.Certificate{PrivateKey: key}
		for _, c := range chain {
			cert.Certificate = append(cert.Certificate, c.Raw)
		}
		l = tls.NewListener(l, &tls.Config{Certificates: []tls.Certificate{cert}})
		scheme = "https"
	}
	srv := &http.Server{Handler: h, ErrorLog: log.New(io.Discard, "", 0)}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return scheme + "://" + l.Addr().String()
}

func probeFP(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return hex.EncodeToString(sum[:])
}

func probeOK() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "x") })
}

func TestProbeCommand(t *testing.T) {
	t.Parallel()
	p := probeNewPKI(t)
	good := probeServer(t, "127.0.0.1", []*x509.Certificate{p.leaf.cert, p.int.cert}, p.leaf.key, probeOK())
	leafOnly := probeServer(t, "127.0.0.2", []*x509.Certificate{p.leaf.cert}, p.leaf.key, probeOK())
	redirect := probeServer(t, "127.0.0.1", []*x509.Certificate{p.leaf.cert, p.int.cert}, p.leaf.key, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, leafOnly+"/img.qcow2", http.StatusFound)
	}))

	t.Run("ok", func(t *testing.T) {
		code, out, errOut := ddctl(t, append(append([]string{"probe", "-json", "-ca-file", p.rootFile}, probeAllow...), good+"/img.qcow2")...)
		if code != 0 || errOut != "" {
			t.Fatalf("exit %d, stderr %q; want 0 and nothing", code, errOut)
		}
		var rep map[string]any
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("stdout is not one JSON document: %v\n%s", err, out)
		}
		for _, k := range []string{"hops", "final_url", "ok"} {
			if _, ok := rep[k]; !ok {
				t.Errorf("no %q in %s", k, out)
			}
		}
		hop := rep["hops"].([]any)[0].(map[string]any)
		for _, k := range []string{"url", "status", "location", "addresses", "tls"} {
			if _, ok := hop[k]; !ok {
				t.Errorf("hop has no %q", k)
			}
		}
		tl := hop["tls"].(map[string]any)
		if tl["verified"] != true || tl["problem"] != "" || len(tl["chain"].([]any)) != 2 || rep["ok"] != true {
			t.Errorf("want a verified 2-certificate chain and ok: %s", out)
		}
		code, out, errOut = ddctl(t, append(append([]string{"probe", "-ca-file", p.rootFile}, probeAllow...), good+"/img.qcow2")...)
		if code != 0 || out != "" || !strings.Contains(errOut, "verified   yes") || !strings.Contains(errOut, "ok: every hop verifies") {
			t.Errorf("human output: exit %d, stdout %q, stderr:\n%s", code, out, errOut)
		}
	})

	t.Run("redirect to a missing intermediate", func(t *testing.T) {
		code, out, errOut := ddctl(t, append(append([]string{"probe", "-json", "-ca-file", p.rootFile}, probeAllow...), redirect+"/start")...)
		if code != 1 {
			t.Fatalf("exit %d, want 1; stderr %s", code, errOut)
		}
		if errOut != "ddctl: probe: not every hop verifies (hop 2: missing-intermediate)\n" {
			t.Errorf("stderr %q", errOut)
		}
		var rep struct {
			Hops []struct {
				URL string `json:"url"`
				TLS struct {
					Verified bool   `json:"verified"`
					Problem  string `json:"problem"`
				} `json:"tls"`
			} `json:"hops"`
			OK bool `json:"ok"`
		}
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatal(err)
		}
		if len(rep.Hops) != 2 || !rep.Hops[0].TLS.Verified || rep.Hops[1].TLS.Problem != "missing-intermediate" || rep.Hops[1].URL != leafOnly+"/img.qcow2" || rep.OK {
			t.Errorf("want hop 1 fine and hop 2 missing its intermediate: %s", out)
		}

		// With -aia, the explanation names the intermediate to trust.
		code, _, errOut = ddctl(t, append(append([]string{"probe", "-aia", "-ca-file", p.rootFile}, probeAllow...), redirect+"/start")...)
		t.Logf("ddctl probe -aia:\n%s", errOut)
		if code != 1 || !strings.Contains(errOut, "hop 2 ("+leafOnly+"/img.qcow2)") || !strings.Contains(errOut, "trust the intermediate CN=ddctl test intermediate (sha256 "+probeFP(p.int.cert)+")") {
			t.Errorf("-aia: exit %d, stderr:\n%s", code, errOut)
		}
	})

	t.Run("policy", func(t *testing.T) {
		code, _, errOut := ddctl(t, "probe", "-ca-file", p.rootFile, good+"/img.qcow2")
		if code != 1 || !strings.Contains(errOut, "loopback") {
			t.Errorf("without -allow-cidr: exit %d, stderr:\n%s", code, errOut)
		}
	})

	t.Run("only the given roots", func(t *testing.T) {
		other := probeMakeCert(t, "other root", nil, false)
		otherFile := filepath.Join(t.TempDir(), "other.pem")
		if err := os.WriteFile(otherFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: other.cert.Raw}), 0o644); err != nil {
			t.Fatal(err)
		}
		code, out, _ := ddctl(t, append(append([]string{"probe", "-json", "-no-system-roots", "-ca-file", otherFile}, probeAllow...), good+"/img.qcow2")...)
		if code != 1 || !strings.Contains(out, `"problem": "missing-intermediate"`) {
			t.Errorf("exit %d; want the chain unverified against another root:\n%s", code, out)
		}
	})
}

func TestProbeCommandUsage(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"probe"},
		{"probe", "https://a.test/", "https://b.test/"},
		{"probe", "-allow-cidr", "10.1.2.3/8", "https://a.test/"},
		{"probe", "-only-allowed", "https://a.test/"},
		{"probe", "-no-system-roots", "https://a.test/"},
		{"probe", "-max-redirects", "-1", "https://a.test/"},
		{"probe", "ftp://a.test/"},
		{"certs", "fetch", "https://a.test/"},
		{"certs", "fetch", "-o", "x.pem"},
		{"certs", "nope"},
	} {
		code, out, errOut := ddctl(t, args...)
		if code != 2 || out != "" || !strings.HasPrefix(errOut, "ddctl: ") {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want a usage error", args, code, out, errOut)
		}
	}
}

func TestCertsFetch(t *testing.T) {
	t.Parallel()
	p := probeNewPKI(t)
	leafOnly := probeServer(t, "127.0.0.2", []*x509.Certificate{p.leaf.cert}, p.leaf.key, probeOK())
	plain := probeServer(t, "127.0.0.1", nil, nil, probeOK())
	dir := t.TempDir()

	readChain := func(t *testing.T, path string) []string {
		t.Helper()
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var fps []string
		for {
			var b *pem.Block
			b, data = pem.Decode(data)
			if b == nil {
				break
			}
			sum := sha256.Sum256(b.Bytes)
			fps = append(fps, hex.EncodeToString(sum[:]))
		}
		return fps
	}

	served := filepath.Join(dir, "served.pem")
	code, _, errOut := ddctl(t, append(append([]string{"certs", "fetch", "-ca-file", p.rootFile}, probeAllow...), "-o", served, leafOnly+"/img")...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if got := readChain(t, served); !slices.Equal(got, []string{probeFP(p.leaf.cert)}) {
		t.Errorf("without -aia: %v, want the leaf as served", got)
	}
	if !strings.Contains(errOut, "warning") {
		t.Errorf("no warning that the hop did not verify: %s", errOut)
	}

	completed := filepath.Join(dir, "completed.pem")
	code, _, errOut = ddctl(t, append(append([]string{"certs", "fetch", "-aia", "-ca-file", p.rootFile}, probeAllow...), "-o", completed, leafOnly+"/img")...)
	if code != 0 {
		t.Fatalf("-aia: exit %d: %s", code, errOut)
	}
	want := []string{probeFP(p.leaf.cert), probeFP(p.int.cert), probeFP(p.root.cert)}
	if got := readChain(t, completed); !slices.Equal(got, want) {
		t.Errorf("-aia: %v, want leaf, intermediate, root %v", got, want)
	}

	// A failed fetch leaves an existing file as it was.
	keep := []byte("keep me\n")
	if err := os.WriteFile(completed, keep, 0o644); err != nil {
		t.Fatal(err)
	}
	before := p.aiaRequests()
	code, _, errOut = ddctl(t, "certs", "fetch", "-aia", "-ca-file", p.rootFile, "-allow-cidr", "127.0.0.2/32", "-o", completed, leafOnly+"/img")
	if code != 1 || !strings.Contains(errOut, "nothing written") || !strings.Contains(errOut, "127.0.0.3 is loopback") || p.aiaRequests() != before {
		t.Errorf("AIA denied: exit %d, %d AIA requests: %s", code, p.aiaRequests()-before, errOut)
	}
	if got, _ := os.ReadFile(completed); !bytes.Equal(got, keep) {
		t.Errorf("the file was changed to %q", got)
	}

	code, _, errOut = ddctl(t, append(append([]string{"certs", "fetch"}, probeAllow...), "-o", filepath.Join(dir, "plain.pem"), plain+"/img")...)
	if code != 1 || !strings.Contains(errOut, "plain HTTP") {
		t.Errorf("plain HTTP: exit %d: %s", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(dir, "plain.pem")); err == nil {
		t.Error("plain HTTP: a file was written")
	}
}
