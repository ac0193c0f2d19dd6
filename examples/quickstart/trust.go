package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/directdl/directdl/certstore"
	"github.com/directdl/directdl/download"
	"github.com/directdl/directdl/internal/faultserver"
)

// trust publishes the template over HTTPS the way CDNs break it: the
// mirror (127.0.0.1) answers 302 to a CDN host (127.0.0.2) that sends its
// leaf certificate without the intermediate, so an agent trusting the
// mirror's root CA fails with what Java calls "PKIX path building failed".
// The probe names the hop and the missing certificate; importing that
// certificate into the agent's JKS trust store fixes the next download
// without a restart.
func trust(ctx context.Context, step, say func(string, ...any), dir, file, sum string) error {
	step("serve it over HTTPS: the mirror redirects to a CDN host that omits its intermediate certificate")
	pki, err := faultserver.NewPKI(90 * 24 * time.Hour)
	if err != nil {
		return err
	}
	cdn, err := tlsServer("127.0.0.2", pki.Certificate(false), http.FileServer(http.Dir(dir)))
	if err != nil {
		return err
	}
	defer cdn.Close()
	mirror, err := tlsServer("127.0.0.1", pki.Certificate(true), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, cdn.URL+r.URL.Path, http.StatusFound)
	}))
	if err != nil {
		return err
	}
	defer mirror.Close()
	u := mirror.URL + "/" + file

	// The agent's trust store: a JKS file (keytool can read it) holding
	// the mirror's private root CA, as an operator would have set it up.
	store, err := certstore.OpenFileStore(filepath.Join(dir, "agent-trust.jks"), "changeit")
	if err != nil {
		return err
	}
	if err := store.Import(ctx, certstore.Entry{Alias: "mirror-root", Cert: pki.Root}); err != nil {
		return err
	}
	loopback := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	dl, err := download.New(download.WithPolicy(download.Policy{Allow: loopback}), download.WithTrustSource(store))
	if err != nil {
		return err
	}
	defer dl.CloseIdleConnections()
	primary := filepath.Join(dir, "primary", "9a1e-template.qcow2")
	_, err = dl.Get(ctx, download.Request{URL: u, Path: primary, Checksum: "{SHA-256}" + sum})
	var verr *tls.CertificateVerificationError
	if !errors.As(err, &verr) {
		return fmt.Errorf("download through the broken CDN: got %v, want a certificate verification error", err)
	}
	say("download with the mirror's root CA trusted: refused (%v)", verr.Err)

	step("probe the URL hop by hop to see which certificate is missing")
	rep, err := certstore.Probe(ctx, u, certstore.ProbeOptions{Roots: store.RootCAs(), Policy: certstore.Policy{Allow: loopback}})
	if err != nil {
		return err
	}
	for _, h := range rep.Hops {
		host, _ := url.Parse(h.URL)
		if h.TLS.Verified {
			say("hop %d %s: %d certificate(s) served, verified, answered %d", h.Index, host.Host, len(h.TLS.Chain), h.Status)
		} else {
			// The request, whose URL may carry a signed secret, is not sent
			// to a server whose certificate did not verify.
			say("hop %d %s: %d certificate(s) served, %s, request withheld", h.Index, host.Host, len(h.TLS.Chain), h.TLS.Problem)
		}
	}
	bad := rep.Final()
	if bad == nil || bad.TLS == nil || bad.TLS.Problem != certstore.ProblemMissingIntermediate {
		return fmt.Errorf("probe: the last hop is not reported as missing its intermediate:\n%+v", rep)
	}

	// The intermediate the CDN omits is the one the mirror serves: take it
	// from hop 1's chain, once it proves to be the CDN leaf's issuer.
	step("trust the intermediate that signed the CDN's certificate, in the agent's JKS store")
	good, leaf := rep.Hops[0].TLS.Certificates, bad.TLS.Certificates[0]
	if len(good) < 2 || leaf.CheckSignatureFrom(good[1]) != nil {
		return errors.New("hop 1 does not serve the issuer of hop 2's certificate")
	}
	if err := store.Import(ctx, certstore.Entry{Alias: "cdn-intermediate", Cert: good[1]}); err != nil {
		return err
	}
	entries, err := store.Entries(ctx)
	if err != nil {
		return err
	}
	var aliases []string
	for _, e := range entries {
		aliases = append(aliases, e.Alias)
	}
	say("agent-trust.jks now holds %s (sha256 %s... added)", strings.Join(aliases, ", "), certstore.Fingerprint(good[1])[:16])

	step("download again: the new certificate is trusted on the next connection, no restart")
	res, err := dl.Get(ctx, download.Request{URL: u, Path: primary, Checksum: "{SHA-256}" + sum})
	if err != nil {
		return err
	}
	say("%s: %d bytes, verified %v, %d redirect(s)", filepath.Base(res.Path), res.Size, res.Verified, len(res.Redirects)-1)
	return nil
}

// tlsServer starts an HTTPS server on addr (a loopback address) with cert.
func tlsServer(addr string, cert tls.Certificate, h http.Handler) (*httptest.Server, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(addr, "0"))
	if err != nil {
		return nil, err
	}
	s := httptest.NewUnstartedServer(h)
	s.Listener.Close()
	s.Listener = l
	// A client refusing the certificate is the point here, not news.
	s.Config.ErrorLog = log.New(io.Discard, "", 0)
	s.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	s.StartTLS()
	return s, nil
}
