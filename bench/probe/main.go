// Command probe-servers serves a three-hop HTTPS redirect chain on loopback
// for bench/probe.sh: 127.0.0.1 redirects (302) to 127.0.0.2, which
// redirects to 127.0.0.3, which answers with a few bytes (206 to a Range
// request). Every server sends the full chain (leaf and intermediate) of
// a throwaway CA made at start; the leaf is valid for mirror.test and the
// three addresses.
//
// Usage:
//
//	probe-servers -dir DIR
//
// It writes the root to DIR/root.pem and, once all three listen, prints
// lines a shell can evaluate:
//
//	ROOT=DIR/root.pem
//	HOP1=https://127.0.0.1:PORT/1  ADDR1=127.0.0.1:PORT   (and 2, 3)
//
// then serves until SIGINT or SIGTERM. It is its own module, with no
// dependencies, so that it builds apart from the SDK it measures.
package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"
)

func main() {
	dir := flag.String("dir", "", "`directory` to write root.pem to")
	flag.Parse()
	if *dir == "" || flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "usage: probe-servers -dir DIR")
		os.Exit(2)
	}
	if err := run(*dir); err != nil {
		fmt.Fprintf(os.Stderr, "probe-servers: %v\n", err)
		os.Exit(1)
	}
}

func run(dir string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root, rootKey, err := makeCert("probe bench root", nil, nil, false)
	if err != nil {
		return err
	}
	inter, interKey, err := makeCert("probe bench intermediate", root, rootKey, false)
	if err != nil {
		return err
	}
	leaf, leafKey, err := makeCert("mirror.test", inter, interKey, true)
	if err != nil {
		return err
	}
	rootFile := filepath.Join(dir, "root.pem")
	if err := os.WriteFile(rootFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: root.Raw}), 0o644); err != nil {
		return err
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{leaf.Raw, inter.Raw}, PrivateKey: leafKey}}}

	ips := []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"}
	listeners := make([]net.Listener, len(ips))
	for i, ip := range ips {
		if listeners[i], err = net.Listen("tcp", ip+":0"); err != nil {
			return err
		}
	}
	urls := make([]string, len(ips))
	for i, l := range listeners {
		urls[i] = fmt.Sprintf("https://%s/%d", l.Addr(), i+1)
	}
	content := []byte("QFI\xfb probe bench content")
	for i, l := range listeners {
		var h http.Handler
		if i+1 < len(listeners) {
			next := urls[i+1]
			h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, next, http.StatusFound)
			})
		} else {
			h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.ServeContent(w, r, "img.qcow2", time.Unix(0, 0), bytes.NewReader(content))
			})
		}
		// s_client closes without a request; that is not news.
		srv := &http.Server{Handler: h, ErrorLog: log.New(io.Discard, "", 0)}
		go func() { _ = srv.Serve(tls.NewListener(l, cfg)) }()
		defer srv.Close()
	}
	fmt.Printf("ROOT=%s\n", rootFile)
	for i, l := range listeners {
		fmt.Printf("HOP%d=%s\nADDR%d=%s\n", i+1, urls[i], i+1, l.Addr())
	}
	<-ctx.Done()
	return nil
}

// makeCert makes a CA (or, with leaf, a server certificate for mirror.test
// and the three addresses) signed by parent, or self-signed when parent is
// nil.
func makeCert(cn string, parent *x509.Certificate, parentKey crypto.Signer, leaf bool) (*x509.Certificate, crypto.Signer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(7 * 24 * time.Hour),
		BasicConstraintsValid: true,
	}
	if leaf {
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.DNSNames = []string{"mirror.test"}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv4(127, 0, 0, 2), net.IPv4(127, 0, 0, 3)}
	} else {
		tmpl.IsCA = true
		tmpl.KeyUsage = x509.KeyUsageCertSign
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), parentKey)
	if err != nil {
		return nil, nil, err
	}
	c, err := x509.ParseCertificate(der)
	return c, key, err
}
