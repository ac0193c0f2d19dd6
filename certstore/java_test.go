package certstore

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestJavaTrustsWrittenStores proves with Java itself that the stores
// certstore writes are what Java trusts. A Go server on loopback serves
// its leaf without the intermediate, as a misconfigured mirror does. A
// store holding only the root cannot complete that chain, and Java fails
// with "PKIX path building failed", as CloudStack's agent does; once
// FileStore has imported the intermediate (which Java takes as an
// anchor), Java connects. The same for a JKS and a PKCS12 store, each
// read by Java as its own type.
func TestJavaTrustsWrittenStores(t *testing.T) {
	ksTool(t, "javac", "openjdk-17-jdk-headless") // the source launcher compiles
	java := ksTool(t, "java", "openjdk-17-jdk-headless")
	t.Parallel()
	p := ksTestPKI(t, 1)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{p.Certificate(false)}}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // Java's refusals are expected
	srv.StartTLS()
	t.Cleanup(srv.Close)
	if !strings.HasPrefix(srv.URL, "https://127.0.0.1:") {
		t.Fatalf("server at %s, want 127.0.0.1", srv.URL)
	}
	src, err := filepath.Abs(filepath.Join("testdata", "TrustCheck.java"))
	if err != nil {
		t.Fatal(err)
	}

	// check runs TrustCheck against the server with the given store.
	check := func(t *testing.T, store, typ string) (string, bool) {
		t.Helper()
		cmd := exec.Command(java, "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Duser.language=en",
			"-Djavax.net.ssl.trustStore="+store, "-Djavax.net.ssl.trustStorePassword=changeit",
			"-Djavax.net.ssl.trustStoreType="+typ, src, srv.URL+"/")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		if _, exited := err.(*exec.ExitError); err != nil && !exited {
			t.Fatalf("java: %v", err)
		}
		return out.String(), err == nil
	}

	for _, tc := range []struct {
		format Format
		write  func(*bytes.Buffer, []Entry, string) error
	}{
		{FormatJKS, func(b *bytes.Buffer, e []Entry, pw string) error { return WriteJKS(b, e, pw) }},
		{FormatPKCS12, func(b *bytes.Buffer, e []Entry, pw string) error { return WritePKCS12(b, e, pw) }},
	} {
		t.Run(tc.format.String(), func(t *testing.T) {
			t.Parallel()
			store := filepath.Join(t.TempDir(), "agent-trust")
			var b bytes.Buffer
			if err := tc.write(&b, []Entry{{"lab-root", p.Root}}, "changeit"); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(store, b.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			out, ok := check(t, store, tc.format.String())
			if ok || !strings.Contains(out, "PKIX path building failed") {
				t.Fatalf("with the root only, Java said (ok %v):\n%s\nwant PKIX path building failed", ok, out)
			}

			s, err := OpenFileStore(store, "changeit")
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Import(context.Background(), Entry{"mirror-intermediate", p.Intermediate}); err != nil {
				t.Fatal(err)
			}
			out, ok = check(t, store, tc.format.String())
			if !ok || !strings.Contains(out, "HTTP 200") {
				t.Errorf("after importing the intermediate, Java said (ok %v):\n%s\nwant HTTP 200", ok, out)
			}
		})
	}
}
