package certstore_test

// Regression tests for the Registry and Sync (registry.go, manage.go,
// sync.go). Each test states the promise it checks; a failure is a bug
// in the code, not in the test.

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/pavlo-v-chernykh/keystore-go/v4"

	"github.com/directdl/directdl/certstore"
)

// rvMoveHost changes the zone of host id in the inventory.
func rvMoveHost(h *regHosts, id certstore.HostID, zone certstore.ZoneID) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i := range h.hosts {
		if h.hosts[i].ID == id {
			h.hosts[i].Zone = zone
		}
	}
}

// A certificate revoked while a host was down, then uploaded again (same
// alias, same certificate: the operator undoing a mistaken revoke) before
// the host came back. The host holds exactly what the registry wants, so
// Sync must succeed and must not record the revoked certificate as Failed
// ("still in the trust store after deleting it") because the active
// certificate legitimately holds its alias with the same bytes.
func TestReuploadAfterRevokeWhileHostDown(t *testing.T) {
	ctx := context.Background()
	reg, hosts, db := regSetup(t)
	h1 := hosts.add(1, 1, true)
	ca := regCA(t, "Mirror CA")
	first, err := reg.Upload(ctx, certstore.Upload{Alias: "mirror", PEM: regPEM(ca), Zone: 1})
	if err != nil {
		t.Fatal(err)
	}
	hosts.setUp(1, false)
	if _, err := reg.Revoke(ctx, first.Certificate.ID, 1); err != nil {
		t.Fatal(err)
	}
	second, err := reg.Upload(ctx, certstore.Upload{Alias: "mirror", PEM: regPEM(ca), Zone: 1})
	if err != nil {
		t.Fatal(err)
	}
	hosts.setUp(1, true)
	for i := 1; i <= 2; i++ {
		rep, err := reg.Sync(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := rep.Err(); err != nil {
			t.Errorf("sync %d: host 1 holds what the registry wants, but the sync failed: %v", i, err)
		}
	}
	if h1.holds("mirror") != certstore.Fingerprint(ca.cert) {
		t.Fatal("host 1 lost the re-uploaded certificate")
	}
	if s := regState(t, db, second.Certificate.ID, 1); s.Status != certstore.Synced {
		t.Errorf("re-uploaded certificate on host 1: %+v, want synced", s)
	}
	if s := regState(t, db, first.Certificate.ID, 1); s.Status == certstore.Failed {
		t.Errorf("revoked certificate on host 1 is Failed for ever (%q) although the host holds exactly what the registry wants", s.Error)
	}
}

// Revoke's doc: "Revoking a revoked certificate removes it from hosts
// that still hold it." A host whose state is Removed but whose store got
// the certificate back (a keystore restored from a backup) must be looked
// at again: a second Revoke and Sync remove it.
func TestRevokeAgainRemovesFromHostStillHoldingIt(t *testing.T) {
	ctx := context.Background()
	reg, hosts, db := regSetup(t)
	h1 := hosts.add(1, 1, true)
	ca := regCA(t, "Revoked CA")
	res, err := reg.Upload(ctx, certstore.Upload{Alias: "gone", PEM: regPEM(ca), Zone: 1})
	if err != nil {
		t.Fatal(err)
	}
	id := res.Certificate.ID
	if _, err := reg.Revoke(ctx, id, 1); err != nil {
		t.Fatal(err)
	}
	if h1.holds("gone") != "" || regState(t, db, id, 1).Status != certstore.Removed {
		t.Fatal("setup: revoke did not remove the certificate")
	}
	// The host's store comes back from a backup holding it again.
	h1.set(func(s *regStore) { s.entries["gone"] = ca.cert })

	if _, err := reg.Revoke(ctx, id, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if h1.holds("gone") != "" {
		t.Errorf("host 1 still holds the revoked certificate after a second Revoke and a Sync; recorded state %q",
			regState(t, db, id, 1).Status)
	}
}

// A host that moves to another zone must lose the certificates the
// registry installed for its old zone, and their recorded state must
// follow: Sync looks at every certificate the host has a state for, not
// only the new zone's, so the host never keeps trusting a revoked
// certificate recorded as Synced.
func TestHostChangingZoneLosesOldZoneCertificates(t *testing.T) {
	ctx := context.Background()
	reg, hosts, db := regSetup(t)
	h1 := hosts.add(1, 1, true)
	ca := regCA(t, "Zone One CA")
	res, err := reg.Upload(ctx, certstore.Upload{Alias: "zone1", PEM: regPEM(ca), Zone: 1})
	if err != nil {
		t.Fatal(err)
	}
	id := res.Certificate.ID
	if h1.holds("zone1") == "" {
		t.Fatal("setup: not installed")
	}

	rvMoveHost(hosts, 1, 2)
	if _, err := reg.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if h1.holds("zone1") != "" {
		t.Errorf("host 1 moved to zone 2 but still trusts zone 1's certificate after Sync")
	}

	if _, err := reg.Revoke(ctx, id, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	s := regState(t, db, id, 1)
	if h1.holds("zone1") != "" {
		t.Errorf("certificate revoked from zone 1 is still in the store of host 1 (now in zone 2); recorded state %q", s.Status)
	}
	if s.Status == certstore.Synced {
		t.Errorf("revoked certificate recorded as Synced on host 1")
	}
}

// Upload.Host "scopes the certificate to one host of the zone". A host the
// inventory lists in another zone is refused: the certificate would be
// registered and installed nowhere, and the operator would believe the
// upload worked.
func TestUploadHostScopedToHostOfAnotherZone(t *testing.T) {
	ctx := context.Background()
	reg, hosts, _ := regSetup(t)
	hosts.add(1, 1, true)
	h2 := hosts.add(2, 2, true) // zone 2
	ca := regCA(t, "Wrong Zone")
	res, err := reg.Upload(ctx, certstore.Upload{Alias: "wz", PEM: regPEM(ca), Zone: 1, Host: 2})
	if err == nil {
		t.Errorf("upload scoped to host 2 of zone 2 into zone 1 succeeded (installed on %d hosts, host 2 holds it: %v)",
			len(res.Hosts), h2.holds("wz") != "")
	}
}

// rvWriteCaseExactJKS writes a JKS holding cert under alias exactly as
// given (keystore-go with WithCaseExactAliases, as other Go tools write
// it).
func rvWriteCaseExactJKS(t *testing.T, path, alias string, c *regCert) {
	t.Helper()
	ks := keystore.New(keystore.WithCaseExactAliases())
	if err := ks.SetTrustedCertificateEntry(alias, keystore.TrustedCertificateEntry{
		CreationTime: time.Unix(1700000000, 0),
		Certificate:  keystore.Certificate{Type: "X.509", Content: c.cert.Raw},
	}); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := ks.Store(&b, []byte("changeit")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// A JKS entry "Mirror" holding the certificate must not count as the
// registry's "mirror": Java looks JKS aliases up in lower case and ignores
// an entry whose alias is not (keytool -list -alias mirror says the alias
// does not exist), so Sync imports "mirror" rather than record the host
// Synced for a certificate Java does not trust.
func TestSyncCountsNonLowercaseJKSAliasAsHeld(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "agent.jks")
	ca := regCA(t, "Mirror CA")
	rvWriteCaseExactJKS(t, path, "Mirror", ca)
	fs, err := certstore.OpenFileStore(path, "changeit")
	if err != nil {
		t.Fatal(err)
	}
	db := certstore.NewMemoryDB()
	reg, err := certstore.NewRegistry(db, certstore.HostList{{ID: 1, Zone: 1, Up: true, Store: fs}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := reg.Upload(ctx, certstore.Upload{Alias: "mirror", PEM: regPEM(ca), Zone: 1})
	if err != nil {
		t.Fatal(err)
	}
	st := regState(t, db, res.Certificate.ID, 1)
	entries, err := fs.Entries(ctx)
	if err != nil {
		t.Fatal(err)
	}
	lower := false
	for _, e := range entries {
		if e.Alias == "mirror" && certstore.Fingerprint(e.Cert) == certstore.Fingerprint(ca.cert) {
			lower = true
		}
	}
	if st.Status == certstore.Synced && !lower {
		msg := "host recorded Synced, but the store holds the certificate only under \"Mirror\", which Java ignores"
		if kt, err := exec.LookPath("keytool"); err == nil {
			out, _ := exec.Command(kt, "-J-Duser.language=en", "-list", "-keystore", path, "-storepass", "changeit", "-alias", "mirror").CombinedOutput()
			msg += "; keytool -list -alias mirror: " + string(bytes.TrimSpace(out))
		}
		t.Error(msg)
	}
}
