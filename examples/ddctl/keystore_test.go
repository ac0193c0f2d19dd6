package main

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/directdl/directdl/internal/faultserver"
)

// ksKeytoolList runs keytool -list on store and returns its entries as
// "alias type sha256" lines, sorted, and the store type keytool saw.
func ksKeytoolList(t *testing.T, kt, store, pass string) ([]string, string) {
	t.Helper()
	out, err := exec.Command(kt, "-J-Duser.language=en", "-list", "-keystore", store, "-storepass", pass).CombinedOutput()
	if err != nil {
		t.Fatalf("keytool -list %s: %v\n%s", store, err, out)
	}
	re := regexp.MustCompile(`(?m)^(.+), [^,]+ \d+, \d+, (\w+),\s*\nCertificate fingerprint \(SHA-256\): ([0-9A-F:]+)`)
	var got []string
	for _, m := range re.FindAllStringSubmatch(string(out), -1) {
		got = append(got, m[1]+" "+m[2]+" "+strings.ToLower(strings.ReplaceAll(m[3], ":", "")))
	}
	slices.Sort(got)
	typ := regexp.MustCompile(`Keystore type: (\w+)`).FindStringSubmatch(string(out))
	if typ == nil {
		t.Fatalf("keytool -list printed no store type:\n%s", out)
	}
	return got, typ[1]
}

func ksSHA256(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return hex.EncodeToString(sum[:])
}

// ksPKI makes a PKI and writes its PEM files (root.pem, chain.pem, ...)
// to a new directory.
func ksPKI(t *testing.T) (*faultserver.PKI, string) {
	t.Helper()
	p, err := faultserver.NewPKI(0)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := p.WritePEM(dir); err != nil {
		t.Fatal(err)
	}
	return p, dir
}

func TestKeystoreImportListDelete(t *testing.T) {
	kt := keytool(t)
	t.Parallel()
	p, pemDir := ksPKI(t)
	root, chain := filepath.Join(pemDir, "root.pem"), filepath.Join(pemDir, "chain.pem")
	for _, name := range []string{"agent.jks", "agent.p12"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			store := filepath.Join(t.TempDir(), name)
			ks := func(args ...string) (int, string, string) {
				return ddctl(t, append(append([]string{"keystore"}, args...), "-keystore", store, "-storepass", "changeit")...)
			}
			code, stdout, stderr := ks("import", "-alias", "mirror", "-file", root)
			if code != 0 || stdout != "mirror\n" {
				t.Fatalf("import: exit %d, stdout %q, stderr %q", code, stdout, stderr)
			}
			if strings.Contains(stderr, "warning") {
				t.Errorf("importing a root CA warned: %q", stderr)
			}
			got, typ := ksKeytoolList(t, kt, store, "changeit")
			wantType := map[string]string{"agent.jks": "JKS", "agent.p12": "PKCS12"}[name]
			if typ != wantType || !slices.Equal(got, []string{"mirror trustedCertEntry " + ksSHA256(p.Root)}) {
				t.Errorf("keytool: %s %q", typ, got)
			}

			// Like keytool, an alias is not imported twice, unless -force.
			code, _, stderr = ks("import", "-alias", "mirror", "-file", chain)
			if code != 1 || !strings.Contains(stderr, `already has the alias "mirror"`) {
				t.Errorf("import of an existing alias: exit %d, %q", code, stderr)
			}
			code, stdout, stderr = ks("import", "-alias", "cdn", "-file", chain)
			if code != 0 || stdout != "cdn\ncdn-2\n" {
				t.Fatalf("import of a bundle: exit %d, stdout %q, stderr %q", code, stdout, stderr)
			}
			// The leaf is not a CA: its issuer is named as the better anchor.
			if !strings.Contains(stderr, "warning: cdn (") || !strings.Contains(stderr, p.Intermediate.Subject.String()+" (also in -file) is the better anchor") {
				t.Errorf("no warning about pinning the leaf: %q", stderr)
			}
			code, _, stderr = ks("import", "-force", "-alias", "mirror", "-file", filepath.Join(pemDir, "intermediate.pem"))
			if code != 0 {
				t.Fatalf("import -force: exit %d: %s", code, stderr)
			}
			want := []string{
				"cdn trustedCertEntry " + ksSHA256(p.Leaf),
				"cdn-2 trustedCertEntry " + ksSHA256(p.Intermediate),
				"mirror trustedCertEntry " + ksSHA256(p.Intermediate),
			}
			if got, _ := ksKeytoolList(t, kt, store, "changeit"); !slices.Equal(got, want) {
				t.Errorf("keytool after imports: %q, want %q", got, want)
			}

			code, stdout, stderr = ks("list", "-json")
			if code != 0 {
				t.Fatalf("list -json: exit %d: %s", code, stderr)
			}
			var list []map[string]any
			if err := json.Unmarshal([]byte(stdout), &list); err != nil {
				t.Fatalf("list -json: %v\n%s", err, stdout)
			}
			var fromJSON []string
			for _, m := range list {
				keys := slices.Sorted(func(yield func(string) bool) {
					for k := range m {
						if !yield(k) {
							return
						}
					}
				})
				if !slices.Equal(keys, []string{"alias", "days_left", "expiry", "is_ca", "issuer", "not_after", "not_before", "sha256", "subject"}) {
					t.Errorf("list -json keys %q", keys)
				}
				fromJSON = append(fromJSON, m["alias"].(string)+" trustedCertEntry "+m["sha256"].(string))
				if m["alias"] == "cdn" && (m["is_ca"] != false || m["subject"] != p.Leaf.Subject.String() || m["issuer"] != p.Intermediate.Subject.String()) {
					t.Errorf("list -json entry cdn: %v", m)
				}
			}
			slices.Sort(fromJSON)
			if !slices.Equal(fromJSON, want) {
				t.Errorf("list -json: %q, want %q", fromJSON, want)
			}
			code, stdout, stderr = ks("list")
			if code != 0 || stdout != "" || !strings.Contains(stderr, "ALIAS") || !strings.Contains(stderr, "cdn-2") {
				t.Errorf("list: exit %d, stdout %q, stderr %q", code, stdout, stderr)
			}
			code, stdout, _ = ks("list", "-alias", "cdn", "-json")
			if code != 0 || !strings.Contains(stdout, ksSHA256(p.Leaf)) || strings.Contains(stdout, ksSHA256(p.Root)) {
				t.Errorf("list -alias cdn: exit %d, %s", code, stdout)
			}

			code, stdout, stderr = ks("delete", "-alias", "cdn-2", "-json")
			if code != 0 || !strings.Contains(stdout, `"alias": "cdn-2"`) {
				t.Fatalf("delete: exit %d, stdout %q, stderr %q", code, stdout, stderr)
			}
			if got, _ := ksKeytoolList(t, kt, store, "changeit"); !slices.Equal(got, []string{want[0], want[2]}) {
				t.Errorf("keytool after delete: %q", got)
			}
			code, _, stderr = ks("delete", "-alias", "cdn-2")
			if code != 1 || !strings.Contains(stderr, `no trusted certificate entry "cdn-2"`) {
				t.Errorf("delete of an absent alias: exit %d, %q", code, stderr)
			}

			code, _, stderr = ddctl(t, "keystore", "list", "-keystore", store, "-storepass", "wrong")
			if code != 1 || !strings.Contains(stderr, "wrong store password") || !strings.Contains(stderr, "-storepass") {
				t.Errorf("wrong password: exit %d, %q", code, stderr)
			}
			oneErrorLine(t, stderr, store)
		})
	}
}

// TestKeystoreCloudJKS changes a store like CloudStack's cloud.jks: a
// PKCS12 file holding the agent's key, which only keytool can change.
func TestKeystoreCloudJKS(t *testing.T) {
	kt := keytool(t)
	t.Parallel()
	p, pemDir := ksPKI(t)
	dir := t.TempDir()
	runKeytool(t, kt, dir, "-genkeypair", "-keyalg", "EC", "-groupname", "secp256r1", "-alias", "cloud", "-dname", "CN=agent",
		"-validity", "2", "-keystore", "cloud.jks", "-storepass", "agentpass", "-keypass", "agentpass")
	store := filepath.Join(dir, "cloud.jks")
	hasMagic(t, store, []byte{0x30})
	before, _ := os.ReadFile(store)
	args := []string{"keystore", "import", "-keystore", store, "-storepass", "agentpass", "-alias", "mirror", "-file", filepath.Join(pemDir, "root.pem")}
	code, _, stderr := ddctl(t, args...)
	if code != 1 || !strings.Contains(stderr, "(ddctl: add -keytool to change it through keytool)") {
		t.Errorf("import into cloud.jks without -keytool: exit %d, %q", code, stderr)
	}
	if after, _ := os.ReadFile(store); !bytes.Equal(before, after) {
		t.Error("the refused import changed cloud.jks")
	}
	code, stdout, stderr := ddctl(t, append(args, "-keytool")...)
	if code != 0 || stdout != "mirror\n" {
		t.Fatalf("import -keytool: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	got, typ := ksKeytoolList(t, kt, store, "agentpass")
	if typ != "PKCS12" || len(got) != 2 || !strings.HasPrefix(got[0], "cloud PrivateKeyEntry ") || got[1] != "mirror trustedCertEntry "+ksSHA256(p.Root) {
		t.Errorf("keytool after import -keytool: %s %q", typ, got)
	}
	// Listing needs no keytool, and shows the trusted entries only.
	code, stdout, _ = ddctl(t, "keystore", "list", "-json", "-keystore", store, "-storepass", "agentpass")
	if code != 0 || strings.Count(stdout, `"alias"`) != 1 || !strings.Contains(stdout, `"alias": "mirror"`) {
		t.Errorf("list: exit %d, %s", code, stdout)
	}
	code, _, stderr = ddctl(t, "keystore", "delete", "-keytool", "-keystore", store, "-storepass", "agentpass", "-alias", "cloud")
	if code != 1 || !strings.Contains(stderr, "private key") {
		t.Errorf("delete of the agent's key: exit %d, %q", code, stderr)
	}
	code, _, stderr = ddctl(t, "keystore", "delete", "-keytool", "-keystore", store, "-storepass", "agentpass", "-alias", "mirror")
	if code != 0 {
		t.Errorf("delete -keytool: exit %d, %q", code, stderr)
	}
	if got, _ := ksKeytoolList(t, kt, store, "agentpass"); len(got) != 1 || !strings.HasPrefix(got[0], "cloud PrivateKeyEntry ") {
		t.Errorf("keytool after delete: %q", got)
	}
}

func TestKeystoreUsage(t *testing.T) {
	t.Parallel()
	_, pemDir := ksPKI(t)
	store := filepath.Join(t.TempDir(), "t.jks")
	file := filepath.Join(pemDir, "root.pem")
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no keystore", []string{"list", "-storepass", "x"}, 2, "-keystore FILE required"},
		{"no storepass", []string{"list", "-keystore", store}, 2, "-storepass P required"},
		{"no alias", []string{"import", "-keystore", store, "-storepass", "x", "-file", file}, 2, "-alias A required"},
		{"no file", []string{"import", "-keystore", store, "-storepass", "x", "-alias", "a"}, 2, "-file PEM required"},
		{"uppercase alias", []string{"import", "-keystore", store, "-storepass", "x", "-alias", "Mirror", "-file", file}, 2, "uppercase"},
		{"reserved alias", []string{"import", "-keystore", store, "-storepass", "x", "-alias", "cloud", "-file", file}, 2, "reserved"},
		{"bad storetype", []string{"import", "-keystore", store, "-storepass", "x", "-alias", "a", "-file", file, "-storetype", "JCEKS"}, 2, "-storetype"},
		{"argument", []string{"list", "-keystore", store, "-storepass", "x", "extra"}, 2, "unexpected argument"},
		{"delete without alias", []string{"delete", "-keystore", store, "-storepass", "x"}, 2, "-alias A required"},
		{"missing store", []string{"list", "-keystore", store, "-storepass", "x"}, 1, "no such file"},
		{"key as -file", []string{"import", "-keystore", store, "-storepass", "x", "-alias", "a", "-file", filepath.Join(pemDir, "leaf-key.pem")}, 1, "not a CERTIFICATE"},
	} {
		code, stdout, stderr := ddctl(t, append([]string{"keystore"}, tc.args...)...)
		if code != tc.code || stdout != "" || !strings.Contains(stderr, tc.want) {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want exit %d saying %q", tc.name, code, stdout, stderr, tc.code, tc.want)
		}
	}
	if _, err := os.Stat(store); err == nil {
		t.Error("a failed command created the store")
	}
}

// keystore list reports each entry's expiry at the default thresholds and
// warns about those close to it.
func TestKeystoreListExpiry(t *testing.T) {
	t.Parallel()
	p, err := faultserver.NewPKI(10 * 24 * time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := p.WritePEM(dir); err != nil {
		t.Fatal(err)
	}
	store := filepath.Join(dir, "trust.p12")
	ks := func(args ...string) (int, string, string) {
		return ddctl(t, append(append([]string{"keystore"}, args...), "-keystore", store, "-storepass", "changeit")...)
	}
	if code, _, stderr := ks("import", "-alias", "int", "-file", filepath.Join(dir, "intermediate.pem")); code != 0 {
		t.Fatalf("import: %d %s", code, stderr)
	}
	code, stdout, stderr := ks("list", "-json")
	var got []struct {
		Alias    string `json:"alias"`
		DaysLeft int    `json:"days_left"`
		Expiry   string `json:"expiry"`
	}
	if err := json.Unmarshal([]byte(stdout), &got); code != 0 || err != nil {
		t.Fatalf("list -json: exit %d, %v, %q %q", code, err, stdout, stderr)
	}
	if len(got) != 1 || got[0].Expiry != "warning" || got[0].DaysLeft < 9 || got[0].DaysLeft > 10 {
		t.Errorf("list -json: %+v, want int with warning and 9-10 days left", got)
	}
	code, _, stderr = ks("list")
	if code != 0 || !strings.Contains(stderr, "ddctl: warning: \"int\"") || !strings.Contains(stderr, "days left") {
		t.Errorf("list: exit %d, stderr %q; want a warning line for int", code, stderr)
	}
}
