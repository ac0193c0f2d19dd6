package certstore

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/directdl/directdl/internal/netguard"
)

// aiaFingerprints lists the certificates' fingerprints, to compare chains.
func aiaFingerprints(certs []*x509.Certificate) []string {
	out := make([]string, len(certs))
	for i, c := range certs {
		out[i] = Fingerprint(c)
	}
	return out
}

func aiaPEM(certs ...*x509.Certificate) []byte { return EncodePEM(certs...) }

func aiaPEMPKCS7(t testing.TB, certs ...*x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "PKCS7", Bytes: aiaPKCS7(t, certs...)})
}

// Responses in each format complete a leaf-only chain to its root.
func TestCompleteFormats(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		encode func(t testing.TB, c *x509.Certificate) []byte
	}{
		{"DER", func(_ testing.TB, c *x509.Certificate) []byte { return c.Raw }},
		{"PEM", func(_ testing.TB, c *x509.Certificate) []byte { return aiaPEM(c) }},
		{"PEM with text around it", func(_ testing.TB, c *x509.Certificate) []byte {
			return append([]byte("subject="+c.Subject.String()+"\n"), aiaPEM(c)...)
		}},
		{"PKCS7", func(t testing.TB, c *x509.Certificate) []byte { return aiaPKCS7(t, c) }},
		{"PEM PKCS7", func(t testing.TB, c *x509.Certificate) []byte { return aiaPEMPKCS7(t, c) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			aia := aiaStart(t, "127.0.0.3")
			pki := probeNewPKI(t, "formats", []string{aia.url("/int")}, []string{aia.url("/root")})
			aia.set("/int", tc.encode(t, pki.int.cert))
			aia.set("/root", tc.encode(t, pki.root.cert))

			completed, fetched, err := Complete(context.Background(), pki.leafOnly(), CompleteOptions{Policy: probeLoopback})
			if err != nil {
				t.Fatal(err)
			}
			want := []*x509.Certificate{pki.leaf.cert, pki.int.cert, pki.root.cert}
			if !slices.Equal(aiaFingerprints(completed), aiaFingerprints(want)) {
				t.Errorf("completed %v, want leaf, intermediate, root", aiaFingerprints(completed))
			}
			if !slices.Equal(aiaFingerprints(fetched), aiaFingerprints(want[1:])) {
				t.Errorf("fetched %v, want intermediate and root", aiaFingerprints(fetched))
			}

			// With the root trusted, the walk stops at the intermediate.
			completed, fetched, err = Complete(context.Background(), pki.leafOnly(), CompleteOptions{Policy: probeLoopback, Roots: pki.roots()})
			if err != nil || len(completed) != 2 || len(fetched) != 1 || aia.hitsOf("/root") != 1 {
				t.Errorf("with Roots: %d completed, %d fetched, root fetched %d times, %v; want 2, 1, once (by the first call)", len(completed), len(fetched), aia.hitsOf("/root"), err)
			}
		})
	}
}

// A PKCS #7 bundle from openssl, the tool CAs make them with.
func TestCompleteOpenSSLPKCS7(t *testing.T) {
	t.Parallel()
	openssl := ksTool(t, "openssl", "openssl")
	dir := t.TempDir()
	pki := probeNewPKI(t, "openssl", nil, nil)
	in := filepath.Join(dir, "int.pem")
	if err := os.WriteFile(in, aiaPEM(pki.int.cert, pki.root.cert), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, form := range []string{"DER", "PEM"} {
		out, err := exec.Command(openssl, "crl2pkcs7", "-nocrl", "-certfile", in, "-outform", form).Output()
		if err != nil {
			t.Fatalf("openssl crl2pkcs7 -outform %s: %v", form, err)
		}
		certs, err := parseAIAResponse(out)
		if err != nil {
			t.Fatalf("%s: %v", form, err)
		}
		if got, want := aiaFingerprints(certs), aiaFingerprints([]*x509.Certificate{pki.int.cert, pki.root.cert}); !slices.Equal(got, want) {
			t.Errorf("%s: got %v, want %v", form, got, want)
		}
	}
}

// The failures: each must end the walk with ErrIncompleteChain and an
// AIAError that says what was wrong.
func TestCompleteFailures(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("loop", func(t *testing.T) {
		t.Parallel()
		// X and Y cross-sign each other, each pointing at the other's
		// certificate: the walk must end.
		aia := aiaStart(t, "127.0.0.3")
		root := probeMake(t, probeSpec{cn: "loop root"}, nil)
		xTmp := probeMake(t, probeSpec{cn: "X"}, root)
		yTmp := probeMake(t, probeSpec{cn: "Y"}, root)
		x := probeMake(t, probeSpec{cn: "X", key: xTmp.key, aia: []string{aia.url("/y")}}, yTmp)
		y := probeMake(t, probeSpec{cn: "Y", key: yTmp.key, aia: []string{aia.url("/x")}}, x)
		aia.set("/x", x.cert.Raw)
		aia.set("/y", y.cert.Raw)
		leaf := probeMake(t, probeSpec{cn: "leaf", hosts: probeHosts, aia: []string{aia.url("/x")}}, x)

		completed, fetched, err := Complete(ctx, []*x509.Certificate{leaf.cert}, CompleteOptions{Policy: probeLoopback})
		if !errors.Is(err, ErrIncompleteChain) {
			t.Fatalf("err %v, want ErrIncompleteChain", err)
		}
		if aia.hitsOf("/x") != 1 || aia.hitsOf("/y") != 1 {
			t.Errorf("fetched /x %d and /y %d times, want once each", aia.hitsOf("/x"), aia.hitsOf("/y"))
		}
		if len(completed) != 3 || len(fetched) != 2 {
			t.Errorf("completed %d, fetched %d; want leaf, X, Y and the two fetched", len(completed), len(fetched))
		}
	})

	t.Run("points at itself", func(t *testing.T) {
		t.Parallel()
		aia := aiaStart(t, "127.0.0.3")
		root := probeMake(t, probeSpec{cn: "self root"}, nil)
		in := probeMake(t, probeSpec{cn: "self intermediate", aia: []string{aia.url("/self")}}, root)
		aia.set("/self", in.cert.Raw)
		completed, _, err := Complete(ctx, []*x509.Certificate{in.cert}, CompleteOptions{Policy: probeLoopback})
		var ae *AIAError
		if !errors.Is(err, ErrIncompleteChain) || !errors.As(err, &ae) || !strings.Contains(err.Error(), "no certificate in the response signed it") {
			t.Fatalf("err %v; want an incomplete chain, the fetched certificate rejected", err)
		}
		if len(completed) != 1 || aia.hitsOf("/self") != 1 {
			t.Errorf("completed %d, fetched %d times; want the certificate alone, one fetch", len(completed), aia.hitsOf("/self"))
		}
	})

	t.Run("depth", func(t *testing.T) {
		t.Parallel()
		aia := aiaStart(t, "127.0.0.3")
		root := probeMake(t, probeSpec{cn: "depth root"}, nil)
		i1 := probeMake(t, probeSpec{cn: "depth 1"}, root)
		i2 := probeMake(t, probeSpec{cn: "depth 2", aia: []string{aia.url("/1")}}, i1)
		i3 := probeMake(t, probeSpec{cn: "depth 3", aia: []string{aia.url("/2")}}, i2)
		leaf := probeMake(t, probeSpec{cn: "leaf", hosts: probeHosts, aia: []string{aia.url("/3")}}, i3)
		aia.set("/3", i3.cert.Raw)
		aia.set("/2", i2.cert.Raw)
		aia.set("/1", i1.cert.Raw)
		completed, fetched, err := Complete(ctx, []*x509.Certificate{leaf.cert}, CompleteOptions{Policy: probeLoopback, MaxDepth: 2})
		if !errors.Is(err, ErrIncompleteChain) || !strings.Contains(err.Error(), "depth limit") {
			t.Fatalf("err %v, want the depth limit", err)
		}
		if len(completed) != 3 || len(fetched) != 2 || aia.hitsOf("/1") != 0 {
			t.Errorf("completed %d, fetched %d, /1 fetched %d times; want 3, 2, never", len(completed), len(fetched), aia.hitsOf("/1"))
		}
		// The default depth reaches the root.
		if completed, _, err := Complete(ctx, []*x509.Certificate{leaf.cert}, CompleteOptions{Policy: probeLoopback, Roots: probePool(root.cert)}); err != nil || len(completed) != 4 {
			t.Errorf("default depth: %d certificates, %v; want leaf and three intermediates", len(completed), err)
		}
	})

	t.Run("oversize", func(t *testing.T) {
		t.Parallel()
		aia := aiaStart(t, "127.0.0.3")
		pki := probeNewPKI(t, "oversize", []string{aia.url("/big")}, nil)
		aia.set("/big", append(bytes.Repeat([]byte{' '}, 2000), aiaPEM(pki.int.cert)...))
		_, _, err := Complete(ctx, pki.leafOnly(), CompleteOptions{Policy: probeLoopback, MaxSize: 1000})
		if !errors.Is(err, ErrIncompleteChain) || !errors.Is(err, ErrAIA) || !strings.Contains(err.Error(), "more than the 1000") {
			t.Errorf("err %v, want the size limit", err)
		}
		// The same body fits the default 1 MiB.
		if _, _, err := Complete(ctx, pki.leafOnly(), CompleteOptions{Policy: probeLoopback, Roots: pki.roots()}); err != nil {
			t.Errorf("default size: %v", err)
		}
	})

	t.Run("slow", func(t *testing.T) {
		t.Parallel()
		aia := aiaStart(t, "127.0.0.3")
		pki := probeNewPKI(t, "slow", []string{aia.url("/slow")}, nil)
		aia.setBlocking("/slow")
		_, _, err := Complete(ctx, pki.leafOnly(), CompleteOptions{Policy: probeLoopback, Timeout: 200 * time.Millisecond})
		if !errors.Is(err, ErrIncompleteChain) || !strings.Contains(err.Error(), "timed out after 200ms") || aia.hitsOf("/slow") != 1 {
			t.Errorf("err %v (%d requests); want a timeout of one request", err, aia.hitsOf("/slow"))
		}
	})

	t.Run("denied address", func(t *testing.T) {
		t.Parallel()
		aia := aiaStart(t, "127.0.0.3")
		pki := probeNewPKI(t, "denied", []string{aia.url("/int")}, nil)
		aia.set("/int", pki.int.cert.Raw)
		only1 := Policy{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}
		_, _, err := Complete(ctx, pki.leafOnly(), CompleteOptions{Policy: only1})
		if !errors.Is(err, netguard.ErrDenied) || !strings.Contains(err.Error(), aia.url("/int")) {
			t.Errorf("err %v; want the URL denied by the policy", err)
		}
		if aia.Requests() != 0 {
			t.Errorf("the denied server got %d requests", aia.Requests())
		}
		// The zero Policy denies loopback too.
		if _, _, err := Complete(ctx, pki.leafOnly(), CompleteOptions{}); !errors.Is(err, netguard.ErrDenied) || aia.Requests() != 0 {
			t.Errorf("zero policy: err %v, %d requests; want denied, none", err, aia.Requests())
		}
	})

	t.Run("redirect to a denied address", func(t *testing.T) {
		t.Parallel()
		target := aiaStart(t, "127.0.0.3")
		front := probeHTTP(t, "127.0.0.1", probeRedirect(target.url("/int")))
		pki := probeNewPKI(t, "redirect", []string{front.URL + "/int"}, nil)
		target.set("/int", pki.int.cert.Raw)
		only1 := Policy{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}
		_, _, err := Complete(ctx, pki.leafOnly(), CompleteOptions{Policy: only1})
		if !errors.Is(err, netguard.ErrDenied) || front.Requests() != 1 || target.Requests() != 0 {
			t.Errorf("err %v, %d and %d requests; want the redirect's target denied", err, front.Requests(), target.Requests())
		}
	})

	t.Run("not the signer", func(t *testing.T) {
		t.Parallel()
		aia := aiaStart(t, "127.0.0.3")
		pki := probeNewPKI(t, "signer", []string{aia.url("/int")}, nil)
		// Same name, another key: a substitute the leaf was not signed by.
		impostor := probeMake(t, probeSpec{cn: "signer intermediate"}, pki.root)
		aia.set("/int", impostor.cert.Raw)
		completed, fetched, err := Complete(ctx, pki.leafOnly(), CompleteOptions{Policy: probeLoopback})
		if !errors.Is(err, ErrIncompleteChain) || !strings.Contains(err.Error(), "did not sign") || len(completed) != 1 || len(fetched) != 0 {
			t.Errorf("err %v, %d completed, %d fetched; want the impostor rejected", err, len(completed), len(fetched))
		}
	})

	t.Run("bad responses", func(t *testing.T) {
		t.Parallel()
		aia := aiaStart(t, "127.0.0.3")
		pki := probeNewPKI(t, "bad", []string{"ldap://127.0.0.3/cn=int", aia.url("/html"), aia.url("/missing"), aia.url("/junk")}, nil)
		aia.set("/html", []byte("<html>not here</html>"))
		aia.set("/junk", []byte{0x30, 0x03, 0x02, 0x01, 0x01})
		_, _, err := Complete(ctx, pki.leafOnly(), CompleteOptions{Policy: probeLoopback})
		for _, want := range []string{`scheme "ldap"`, "HTML", "404", "neither a DER certificate"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("the error does not say %q: %v", want, err)
			}
		}
	})

	t.Run("no AIA", func(t *testing.T) {
		t.Parallel()
		pki := probeNewPKI(t, "none", nil, nil)
		completed, _, err := Complete(ctx, pki.leafOnly(), CompleteOptions{})
		if !errors.Is(err, ErrIncompleteChain) || !strings.Contains(err.Error(), "no AIA caIssuers URL") || len(completed) != 1 {
			t.Errorf("err %v; want an incomplete chain naming the missing URL", err)
		}
	})
}

// Served certificates come first, in path order, whatever the order sent.
func TestCompleteUsesServed(t *testing.T) {
	t.Parallel()
	pki := probeNewPKI(t, "served", nil, nil)
	stray := probeMake(t, probeSpec{cn: "unrelated"}, nil)
	completed, fetched, err := Complete(context.Background(), []*x509.Certificate{pki.leaf.cert, pki.root.cert, stray.cert, pki.int.cert}, CompleteOptions{})
	want := []*x509.Certificate{pki.leaf.cert, pki.int.cert, pki.root.cert}
	if err != nil || len(fetched) != 0 || !slices.Equal(aiaFingerprints(completed), aiaFingerprints(want)) {
		t.Errorf("completed %v, fetched %d, %v; want leaf, intermediate, root and nothing fetched", aiaFingerprints(completed), len(fetched), err)
	}
	if _, _, err := Complete(context.Background(), nil, CompleteOptions{}); !errors.Is(err, ErrInvalidCertificate) {
		t.Errorf("empty chain: %v", err)
	}
	if _, _, err := Complete(context.Background(), pki.leafOnly(), CompleteOptions{Timeout: -1}); !errors.Is(err, ErrInvalidOptions) {
		t.Errorf("negative timeout: %v", err)
	}
}

func TestParsePKCS7Errors(t *testing.T) {
	t.Parallel()
	pki := probeNewPKI(t, "p7", nil, nil)
	good := aiaPKCS7(t, pki.int.cert)
	if certs, err := parsePKCS7Certs(good); err != nil || len(certs) != 1 {
		t.Fatalf("good bundle: %d certificates, %v", len(certs), err)
	}
	// BER's indefinite length: 0x80 in place of the outer length.
	ber := append([]byte{0x30, 0x80}, good[4:]...)
	ber = append(ber, 0, 0)
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"trailing", append(append([]byte(nil), good...), 0), "trailing"},
		{"BER", ber, "indefinite"},
		{"no certificates", aiaPKCS7NoCerts(), "no certificates"},
		{"other content type", []byte{0x30, 0x0b, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01}, "not signedData"},
	} {
		if _, err := parsePKCS7Certs(tc.data); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want %q", tc.name, err, tc.want)
		}
	}
}

// aiaPKCS7NoCerts is a signedData without a certificates field: version,
// digestAlgorithms, encapContentInfo, signerInfos.
func aiaPKCS7NoCerts() []byte {
	encap := []byte{0x30, 0x0b, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01}
	body := append([]byte{0x02, 0x01, 0x01, 0x31, 0x00}, encap...)
	body = append(body, 0x31, 0x00)
	sd := append([]byte{0x30, byte(len(body))}, body...)
	content := append([]byte{0xa0, byte(len(sd))}, sd...)
	ci := append([]byte{0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02}, content...)
	return append([]byte{0x30, byte(len(ci))}, ci...)
}
