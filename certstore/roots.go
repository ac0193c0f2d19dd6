package certstore

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// ErrNoSystemRoots: SystemRoots found no root certificate to load.
var ErrNoSystemRoots = errors.New("certstore: no system root certificates")

// systemRootFiles and systemRootDirs are where Linux distributions keep
// their root bundles, in the order Go's crypto/x509 tries them.
var (
	systemRootFiles = []string{
		"/etc/ssl/certs/ca-certificates.crt",                // Debian, Ubuntu, Gentoo
		"/etc/pki/tls/certs/ca-bundle.crt",                  // Fedora, RHEL 6
		"/etc/ssl/ca-bundle.pem",                            // openSUSE
		"/etc/pki/tls/cacert.pem",                           // OpenELEC
		"/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem", // CentOS, RHEL 7
		"/etc/ssl/cert.pem",                                 // Alpine
	}
	systemRootDirs = []string{"/etc/ssl/certs", "/etc/pki/tls/certs"}
)

// SystemRoots returns a new pool holding the system's root certificates,
// read from files the way Go reads them on Linux: the file SSL_CERT_FILE
// names, or else the first of the distributions' bundle files that exists
// (/etc/ssl/certs/ca-certificates.crt, /etc/pki/tls/certs/ca-bundle.crt,
// ...), plus every PEM file in the directories SSL_CERT_DIR lists
// (colon-separated), or else in /etc/ssl/certs and /etc/pki/tls/certs.
// Files that do not parse are skipped.
//
// Probe uses it when no Roots are given. It exists, rather than
// x509.SystemCertPool, because a pool from x509.SystemCertPool (or a nil
// Roots) makes Certificate.Verify hand the decision to the platform
// verifier on macOS and Windows, which fetches missing intermediates
// through AIA behind the caller's back: a probe on an operator's laptop
// would then say "verified" for a server that every Linux agent rejects.
// A pool built here is an ordinary pool, so Go's own verifier runs on
// every platform.
//
// The error wraps ErrNoSystemRoots when nothing was found. It is safe for
// concurrent use; every call reads the files again.
func SystemRoots() (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	n := 0
	// Distributions keep each root twice, in the bundle and as a file of
	// the directory: the seen set spares parsing it twice.
	seen := map[[sha256.Size]byte]bool{}
	files := systemRootFiles
	if f := os.Getenv("SSL_CERT_FILE"); f != "" {
		files = []string{f}
	}
	var bundle fs.FileInfo // not read again from a directory
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		n += rootsAppendPEM(pool, data, seen)
		bundle, _ = os.Stat(f)
		break
	}
	dirs := systemRootDirs
	if d := os.Getenv("SSL_CERT_DIR"); d != "" {
		dirs = filepath.SplitList(d)
	}
	for _, d := range dirs {
		n += rootsAppendDir(pool, d, bundle, seen)
	}
	if n == 0 {
		return nil, fmt.Errorf("%w: none in %s or %s (set SSL_CERT_FILE or SSL_CERT_DIR, or give the roots explicitly)",
			ErrNoSystemRoots, strings.Join(files, ", "), strings.Join(dirs, ", "))
	}
	return pool, nil
}

// rootsAppendDir adds the certificates of the files in dir, skipping the
// links that point to another file of the same directory (c_rehash's
// HASH.0 names) and the bundle already read (Debian keeps it there), which
// would only be parsed twice.
func rootsAppendDir(pool *x509.CertPool, dir string, bundle fs.FileInfo, seen map[[sha256.Size]byte]bool) int {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		if e.Type()&fs.ModeSymlink != 0 {
			if target, err := os.Readlink(p); err == nil && !strings.Contains(target, "/") {
				continue
			}
		}
		fi, err := os.Stat(p)
		if err != nil || !fi.Mode().IsRegular() || fi.Size() > maxCertificateInput || bundle != nil && os.SameFile(fi, bundle) {
			continue
		}
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		n += rootsAppendPEM(pool, data, seen)
	}
	return n
}

// rootsAppendPEM adds every CERTIFICATE block of data that parses and is
// not in seen, and returns how many it added.
func rootsAppendPEM(pool *x509.CertPool, data []byte, seen map[[sha256.Size]byte]bool) int {
	n := 0
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return n
		}
		if b.Type != "CERTIFICATE" || len(b.Headers) != 0 {
			continue
		}
		sum := sha256.Sum256(b.Bytes)
		if seen[sum] {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			continue
		}
		seen[sum] = true
		pool.AddCert(c)
		n++
	}
}
