package certstore_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/directdl/directdl/certstore"
)

// regKeytool finds keytool: missing fails the test under CI, which
// installs it, and skips it elsewhere.
func regKeytool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("keytool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("keytool not found; CI installs openjdk-17-jre-headless")
		}
		t.Skip("keytool not found (Debian package openjdk-17-jre-headless)")
	}
	return p
}

// regKeytoolList returns what keytool says of alias in store: its
// "alias, date, type," line, or "" when keytool says it is absent.
func regKeytoolList(t *testing.T, keytool, store, alias string) string {
	t.Helper()
	cmd := exec.Command(keytool, "-list", "-keystore", store, "-storepass", "changeit", "-alias", alias)
	out, err := cmd.CombinedOutput()
	if err != nil {
		if strings.Contains(string(out), "does not exist") {
			return ""
		}
		t.Fatalf("keytool -list %s: %v\n%s", store, err, out)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, alias+",") {
			return l
		}
	}
	t.Fatalf("keytool -list -alias %s printed no entry line:\n%s", alias, out)
	return ""
}

// TestSyncToAgentKeystores syncs to the stores agents really have, and
// asks keytool, not certstore, what they hold: two JKS files written by
// FileStore and a CloudStack-style cloud.jks (a PKCS12 file with the
// agent's private key, made by keytool) changed through KeytoolStore.
func TestSyncToAgentKeystores(t *testing.T) {
	t.Parallel()
	keytool := regKeytool(t)
	ctx := context.Background()
	dir := t.TempDir()

	cloudJKS := filepath.Join(dir, "cloud.jks")
	if out, err := exec.Command(keytool, "-genkeypair", "-keystore", cloudJKS, "-storetype", "PKCS12", "-storepass", "changeit",
		"-alias", "cloud", "-keyalg", "EC", "-groupname", "secp256r1", "-dname", "CN=agent", "-validity", "30").CombinedOutput(); err != nil {
		t.Fatalf("keytool -genkeypair: %v\n%s", err, out)
	}
	paths := []string{filepath.Join(dir, "host1.jks"), filepath.Join(dir, "host2.jks"), cloudJKS}
	var hosts certstore.HostList
	for i, p := range paths {
		var store certstore.TrustStore
		var err error
		if p == cloudJKS {
			store, err = certstore.NewKeytoolStore(p, "changeit")
		} else {
			store, err = certstore.OpenFileStore(p, "changeit")
		}
		if err != nil {
			t.Fatal(err)
		}
		hosts = append(hosts, certstore.Host{ID: certstore.HostID(i + 1), Zone: 1, Up: true, Store: store})
	}
	reg, err := certstore.NewRegistry(certstore.NewMemoryDB(), hosts)
	if err != nil {
		t.Fatal(err)
	}
	ca := regCA(t, "Mirror CA")
	res, err := reg.Upload(ctx, certstore.Upload{Alias: "mirror-ca", PEM: regPEM(ca), Zone: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range res.Hosts {
		if h.Err != nil || h.Synced != 1 {
			t.Errorf("host %d: %+v", h.Host, h)
		}
	}
	for _, p := range paths {
		if l := regKeytoolList(t, keytool, p, "mirror-ca"); !strings.Contains(l, "trustedCertEntry") {
			t.Errorf("keytool on %s: %q, want a trustedCertEntry", filepath.Base(p), l)
		}
	}
	if l := regKeytoolList(t, keytool, cloudJKS, "cloud"); !strings.Contains(l, "PrivateKeyEntry") {
		t.Errorf("the agent's own key is gone from cloud.jks: %q", l)
	}

	// Revoke from host 2, then from the zone.
	if _, err := reg.RevokeFromHost(ctx, res.Certificate.ID, 2); err != nil {
		t.Fatal(err)
	}
	if regKeytoolList(t, keytool, paths[1], "mirror-ca") != "" || regKeytoolList(t, keytool, paths[0], "mirror-ca") == "" {
		t.Error("revoking from host 2 did not change exactly host 2")
	}
	if _, err := reg.Revoke(ctx, res.Certificate.ID, 1); err != nil {
		t.Fatal(err)
	}
	for _, p := range paths {
		if l := regKeytoolList(t, keytool, p, "mirror-ca"); l != "" {
			t.Errorf("%s still holds the revoked certificate: %q", filepath.Base(p), l)
		}
	}
	if l := regKeytoolList(t, keytool, cloudJKS, "cloud"); !strings.Contains(l, "PrivateKeyEntry") {
		t.Errorf("the agent's own key is gone from cloud.jks after revoking: %q", l)
	}
}
