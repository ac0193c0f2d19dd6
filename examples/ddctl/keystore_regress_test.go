package main

// Regression tests from a review of ddctl keystore
// (examples/ddctl/keystore.go) against ../shared/CLI.md and the command's
// doc comment.

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// keystore.go's doc: "A FILE that does not exist yet is created by import,
// with or without -keytool: PKCS12 when its name ends in .p12 or .pfx (or
// with -storetype PKCS12), JKS otherwise." With -keytool, keytool's own
// default would make a new agent.jks a PKCS12 file.
func TestKeystoreImportKeytoolNewJKS(t *testing.T) {
	keytool(t)
	t.Parallel()
	_, pemDir := ksPKI(t)
	dir := t.TempDir()
	for _, tc := range []struct {
		name  string
		extra []string
		magic []byte
	}{
		{"agent.jks", nil, []byte{0xfe, 0xed, 0xfe, 0xed}},
		{"agent.p12", nil, []byte{0x30, 0x82}},
		{"agent.store", []string{"-storetype", "PKCS12"}, []byte{0x30, 0x82}},
	} {
		store := filepath.Join(dir, tc.name)
		args := append([]string{"keystore", "import", "-keytool", "-keystore", store, "-storepass", "changeit",
			"-alias", "mirror", "-file", filepath.Join(pemDir, "root.pem")}, tc.extra...)
		code, stdout, stderr := ddctl(t, args...)
		if code != 0 {
			t.Fatalf("import -keytool %s: exit %d, stdout %q, stderr %q", tc.name, code, stdout, stderr)
		}
		b, err := os.ReadFile(store)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(b, tc.magic) {
			t.Errorf("import -keytool %v created %s starting with % x, want % x as without -keytool", tc.extra, tc.name, b[:min(len(b), 4)], tc.magic)
		}
	}
}

// CLI.md: "ddctl keystore import|list|delete -keystore FILE ...: JKS (or
// PKCS12 when the file is PKCS12); files written here are readable by
// keytool -list." Given an existing PEM bundle, import must not take it
// as a PEM store and rewrite it as PEM, which keytool -list cannot read:
// the command refuses a FILE that is neither JKS nor PKCS12, and leaves
// it as it was.
func TestKeystoreImportIntoPEMFile(t *testing.T) {
	kt := keytool(t)
	t.Parallel()
	_, pemDir := ksPKI(t)
	store := filepath.Join(t.TempDir(), "trust.pem")
	chain, err := os.ReadFile(filepath.Join(pemDir, "chain.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(store, chain, 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := ddctl(t, "keystore", "import", "-keystore", store, "-storepass", "changeit",
		"-alias", "mirror", "-file", filepath.Join(pemDir, "root.pem"))
	if code == 0 {
		out, err := exec.Command(kt, "-J-Duser.language=en", "-list", "-keystore", store, "-storepass", "changeit").CombinedOutput()
		if err != nil {
			t.Errorf("import into a PEM bundle succeeded (stderr %q), and keytool -list cannot read what it wrote: %v: %s", stderr, err, bytes.TrimSpace(out))
		}
	}
	if code != 1 || !strings.Contains(stderr, "not a JKS or PKCS12 store") {
		t.Errorf("import into a PEM bundle: exit %d, stderr %q; want 1 and an error saying it is not a JKS or PKCS12 store", code, stderr)
	}
	if got, _ := os.ReadFile(store); !bytes.Equal(got, chain) {
		t.Error("the PEM bundle was changed")
	}
	// list and delete refuse it as well.
	for _, sub := range []string{"list", "delete"} {
		if code, _, stderr := ddctl(t, "keystore", sub, "-keystore", store, "-storepass", "changeit", "-alias", "mirror"); code != 1 || !strings.Contains(stderr, "not a JKS or PKCS12 store") {
			t.Errorf("%s of a PEM bundle: exit %d, stderr %q", sub, code, stderr)
		}
	}
}
