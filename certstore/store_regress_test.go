package certstore_test

// Regression tests from a review of the store implementations
// (filestore.go, keystore.go, keytoolstore.go). Each test states the
// promise it checks. The review's test of reading PKCS12 stores of many
// bags is TestReadPKCS12ManyBags, with BenchmarkReadStorePKCS12ManyBags,
// in keystore_test.go.

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"software.sslmate.com/src/go-pkcs12"

	"github.com/directdl/directdl/certstore"
)

// rvKeyPEM returns a PEM EC private key.
func rvKeyPEM(t *testing.T) []byte {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// FileStore's PEM directory writes a new entry as ALIAS.pem. When
// ALIAS.pem already exists but gives another alias (its "# alias:" line
// names it "bar"), Import must not write over it: the entry "bar", which
// the caller never asked to change, would be gone, and TrustStore
// promises that Import keeps every other entry.
func TestPEMDirImportKeepsFileOfAnotherAlias(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	bar, foo := regCA(t, "Bar CA"), regCA(t, "Foo CA")
	if err := os.WriteFile(filepath.Join(dir, "foo.pem"), append([]byte("# alias: bar\n"), regPEM(bar)...), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := certstore.OpenFileStore(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	before, err := s.Entries(ctx)
	if err != nil || len(before) != 1 || before[0].Alias != "bar" {
		t.Fatalf("setup: entries %v, %v", before, err)
	}
	// The new entry goes to a file of its own.
	if err := s.Import(ctx, certstore.Entry{Alias: "foo", Cert: foo.cert}); err != nil {
		t.Errorf("Import: %v", err)
	}
	after, err := s.Entries(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !rvHas(after, "bar", bar.cert) {
		t.Errorf("importing \"foo\" destroyed the entry \"bar\" (file foo.pem); entries now %v", rvAliases(after))
	}
	if !rvHas(after, "foo", foo.cert) {
		t.Errorf("the entry \"foo\" was not imported; entries now %v", rvAliases(after))
	}
	// It is replaced, and removed, in its file.
	if err := s.Import(ctx, certstore.Entry{Alias: "foo", Cert: bar.cert}); err != nil {
		t.Errorf("replacing foo: %v", err)
	}
	if err := s.Delete(ctx, "foo"); err != nil {
		t.Errorf("deleting foo: %v", err)
	}
	if after, err = s.Entries(ctx); err != nil || len(after) != 1 || !rvHas(after, "bar", bar.cert) {
		t.Errorf("after replacing and deleting foo: %v, %v; want bar alone", rvAliases(after), err)
	}
}

// rvHas reports whether es has the entry alias holding c.
func rvHas(es []certstore.Entry, alias string, c *x509.Certificate) bool {
	for _, e := range es {
		if e.Alias == alias && certstore.Fingerprint(e.Cert) == certstore.Fingerprint(c) {
			return true
		}
	}
	return false
}

// The same with a foo.pem that holds no certificate at all (a private
// key, as certbot's privkey.pem): readDir skips it, and Import "foo" must
// not replace the key file with a certificate.
func TestPEMDirImportKeepsKeyFile(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	key := rvKeyPEM(t)
	keyPath := filepath.Join(dir, "privkey.pem")
	if err := os.WriteFile(keyPath, key, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := certstore.OpenFileStore(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	ca := regCA(t, "Some CA")
	if err := s.Import(ctx, certstore.Entry{Alias: "privkey", Cert: ca.cert}); err != nil {
		t.Errorf("Import: %v", err)
	}
	got, err := os.ReadFile(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, key) {
		t.Errorf("Import \"privkey\" overwrote the private key file privkey.pem with:\n%s", got)
	}
	if es, err := s.Entries(ctx); err != nil || len(es) != 1 || !rvHas(es, "privkey", ca.cert) {
		t.Errorf("entries %v, %v; want privkey", rvAliases(es), err)
	}
}

func rvAliases(es []certstore.Entry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Alias)
	}
	return out
}

// rvHolds reports the aliases under which the store at path holds c.
func rvHolds(t *testing.T, path, password string, c *x509.Certificate) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	es, _, err := certstore.ReadStore(data, password)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		if certstore.Fingerprint(e.Cert) == certstore.Fingerprint(c) {
			out = append(out, e.Alias)
		}
	}
	return out
}

// A PKCS12 trust store whose certificates are RC2-encrypted (Java 8's
// keytool, OpenSSL 1.x; go-pkcs12's LegacyRC2) or whose MAC is PBMAC1
// (go-pkcs12's Modern2026, Java 26) must be read with its friendly names.
// Read with aliases made up from fingerprints ("cert-..."), as go-pkcs12
// alone reads it, FileStore.Import would write the store back with those
// aliases: the other entries renamed (Import promises to keep them), and
// an entry the registry owns ("mirror") duplicated under "cert-...", so
// that after a revocation Sync deletes "mirror", reads back, sees no
// "mirror", and records Removed while the store still trusts the revoked
// certificate under "cert-...".
func TestLegacyPKCS12RewriteKeepsAliases(t *testing.T) {
	for _, enc := range []struct {
		name string
		enc  *pkcs12.Encoder
	}{{"LegacyRC2", pkcs12.LegacyRC2}, {"Modern2026", pkcs12.Modern2026}} {
		t.Run(enc.name, func(t *testing.T) {
			ctx := context.Background()
			path := filepath.Join(t.TempDir(), "agent.p12")
			corp, mirror := regCA(t, "Corp CA"), regCA(t, "Mirror CA")
			data, err := enc.enc.EncodeTrustStoreEntries([]pkcs12.TrustStoreEntry{
				{Cert: corp.cert, FriendlyName: "corp-ca"},
				{Cert: mirror.cert, FriendlyName: "mirror"},
			}, "changeit")
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
			fs, err := certstore.OpenFileStore(path, "changeit")
			if err != nil {
				t.Fatal(err)
			}
			db := certstore.NewMemoryDB()
			reg, err := certstore.NewRegistry(db, certstore.HostList{{ID: 1, Zone: 1, Up: true, Store: fs}})
			if err != nil {
				t.Fatal(err)
			}
			res, err := reg.Upload(ctx, certstore.Upload{Alias: "mirror", PEM: regPEM(mirror), Zone: 1})
			if err != nil {
				t.Fatal(err)
			}
			if got := rvHolds(t, path, "changeit", corp.cert); len(got) != 1 || got[0] != "corp-ca" {
				t.Errorf("the entry \"corp-ca\", which the registry does not own, is now %q", got)
			}
			if _, err := reg.Revoke(ctx, res.Certificate.ID, 1); err != nil {
				t.Fatal(err)
			}
			st := regState(t, db, res.Certificate.ID, 1)
			if got := rvHolds(t, path, "changeit", mirror.cert); len(got) != 0 {
				t.Errorf("revoked certificate still trusted under %q; recorded state %q", got, st.Status)
			}
		})
	}
}

// KeytoolStore on a PKCS12 trust store with RC2-encrypted certificates
// (Java 8's keytool, OpenSSL 1.x): keytool -list (Entries) shows the
// entry "mirror", and change() must find the same aliases when it checks
// the store before and after keytool runs. Read with "cert-<fingerprint>"
// aliases, Delete("mirror") would say ErrNotFound (which Sync takes as
// "already gone"), and Import of any alias would fail after keytool did
// import it. Java 17's keytool keeps the store's RC2 protection when it
// rewrites it.
func TestKeytoolStoreLegacyPKCS12(t *testing.T) {
	if _, err := exec.LookPath("keytool"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("keytool not found; CI installs openjdk-17-jre-headless")
		}
		t.Skip("keytool not found")
	}
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "legacy.p12")
	mirror, other := regCA(t, "Mirror CA"), regCA(t, "Other CA")
	data, err := pkcs12.LegacyRC2.EncodeTrustStoreEntries([]pkcs12.TrustStoreEntry{{Cert: mirror.cert, FriendlyName: "mirror"}}, "changeit")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	ks, err := certstore.NewKeytoolStore(path, "changeit")
	if err != nil {
		t.Fatal(err)
	}
	es, err := ks.Entries(ctx)
	if err != nil || len(es) != 1 || es[0].Alias != "mirror" {
		t.Fatalf("setup: keytool lists %v, %v", rvAliases(es), err)
	}
	if err := ks.Import(ctx, certstore.Entry{Alias: "other", Cert: other.cert}); err != nil {
		t.Errorf("Import into a store keytool reads and writes: %v", err)
	}
	if err := ks.Delete(ctx, "mirror"); err != nil {
		t.Errorf("Delete of the alias keytool -list shows: %v", err)
	}
}
