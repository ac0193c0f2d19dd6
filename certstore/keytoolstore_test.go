package certstore

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestKeytoolStore changes, through keytool, a PKCS12 store holding a
// private key, as CloudStack's cloud.jks is: entries come and go, the key
// stays.
func TestKeytoolStore(t *testing.T) {
	kt := ksTool(t, "keytool", "openjdk-17-jre-headless")
	t.Parallel()
	ctx := context.Background()
	p, other := ksTestPKI(t, 0), ksTestPKI(t, 1)
	dir := t.TempDir()
	ksKeytool(t, dir, "-genkeypair", "-keyalg", "EC", "-groupname", "secp256r1", "-alias", "cloud", "-dname", "CN=agent",
		"-validity", "2", "-keystore", "cloud.jks", "-storepass", "agentpass", "-keypass", "agentpass")
	path := filepath.Join(dir, "cloud.jks")
	if data, _ := os.ReadFile(path); len(data) == 0 || data[0] != 0x30 {
		t.Fatal("keytool did not make a PKCS12 cloud.jks")
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	keyLine := keytoolListed(t, ksKeytool(t, dir, "-list", "-keystore", path, "-storepass", "agentpass"))

	s, err := NewKeytoolStore(path, "agentpass", WithKeytool(kt))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.Entries(ctx); err != nil || len(got) != 0 {
		t.Fatalf("Entries of a key-only store: %q, %v", ksSummary(got), err)
	}
	if err := s.Import(ctx, Entry{"mirror", p.Intermediate}); err != nil {
		t.Fatal(err)
	}
	if err := s.Import(ctx, Entry{"mirror", other.Intermediate}); err != nil { // replaces
		t.Fatal(err)
	}
	if err := s.Import(ctx, Entry{"lab", p.Root}); err != nil {
		t.Fatal(err)
	}
	want := []string{"lab=" + Fingerprint(p.Root), "mirror=" + Fingerprint(other.Intermediate)}
	if got, err := s.Entries(ctx); err != nil || !slices.Equal(ksSummary(got), want) {
		t.Errorf("Entries %q, %v; want %q", ksSummary(got), err, want)
	}
	listed := keytoolListed(t, ksKeytool(t, dir, "-list", "-keystore", path, "-storepass", "agentpass"))
	wantListed := slices.Sorted(slices.Values(append(slices.Clone(keyLine),
		"lab=trustedCertEntry="+Fingerprint(p.Root), "mirror=trustedCertEntry="+Fingerprint(other.Intermediate))))
	if !slices.Equal(listed, wantListed) {
		t.Errorf("keytool lists %q, want %q", listed, wantListed)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("store mode after Import: %v, %v; want 0600", fi.Mode().Perm(), err)
	}
	// ReadStore reads what keytool wrote, key and all.
	data, _ := os.ReadFile(path)
	if c, err := ReadStoreContents(data, "agentpass"); err != nil || !slices.Equal(ksSummary(c.Trusted), want) || len(c.Keys) != 1 {
		t.Errorf("ReadStoreContents: %+v, %v", c, err)
	}

	if err := s.Delete(ctx, "lab"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "lab"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Delete of an absent alias: %v, want ErrNotFound", err)
	}
	if err := s.Delete(ctx, "cloud"); !errors.Is(err, ErrInvalidAlias) {
		t.Errorf("Delete of the key: %v, want ErrInvalidAlias", err)
	}
	if err := s.Import(ctx, Entry{"cloud", p.Root}); !errors.Is(err, ErrInvalidAlias) {
		t.Errorf("Import over the key: %v, want ErrInvalidAlias", err)
	}
	after := keytoolListed(t, ksKeytool(t, dir, "-list", "-keystore", path, "-storepass", "agentpass"))
	if want := slices.Sorted(slices.Values(append(slices.Clone(keyLine), "mirror=trustedCertEntry="+Fingerprint(other.Intermediate)))); !slices.Equal(after, want) {
		t.Errorf("after Delete, keytool lists %q, want %q", after, want)
	}

	wrong, err := NewKeytoolStore(path, "wrongpass", WithKeytool(kt))
	if err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)
	if _, err := wrong.Entries(ctx); !errors.Is(err, ErrWrongPassword) {
		t.Errorf("Entries with a wrong password: %v, want ErrWrongPassword", err)
	}
	if err := wrong.Import(ctx, Entry{"x", p.Root}); !errors.Is(err, ErrWrongPassword) {
		t.Errorf("Import with a wrong password: %v, want ErrWrongPassword", err)
	}
	if now, _ := os.ReadFile(path); !bytes.Equal(before, now) {
		t.Error("a failed Import changed the store")
	}
	// Nothing is left beside the store but its lock.
	names, _ := filepath.Glob(filepath.Join(dir, ".cloud.jks*"))
	if len(names) != 0 {
		t.Errorf("left behind: %q", names)
	}
}

// TestKeytoolStoreNew creates stores with keytool, of either type.
func TestKeytoolStoreNew(t *testing.T) {
	kt := ksTool(t, "keytool", "openjdk-17-jre-headless")
	t.Parallel()
	ctx := context.Background()
	p := ksTestPKI(t, 0)
	for _, tc := range []struct {
		format Format
		magic  []byte
	}{{FormatJKS, []byte{0xfe, 0xed, 0xfe, 0xed}}, {FormatPKCS12, []byte{0x30}}} {
		t.Run(tc.format.String(), func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "new.store")
			s, err := NewKeytoolStore(path, "changeit", WithKeytool(kt), WithKeytoolFormat(tc.format))
			if err != nil {
				t.Fatal(err)
			}
			if got, err := s.Entries(ctx); err != nil || len(got) != 0 {
				t.Fatalf("missing store: %q, %v", ksSummary(got), err)
			}
			if err := s.Import(ctx, Entry{"root", p.Root}); err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(path)
			if err != nil || !bytes.HasPrefix(data, tc.magic) {
				t.Fatalf("new store starts with % x (%v), want % x", data[:min(len(data), 4)], err, tc.magic)
			}
			got, f, err := ReadStore(data, "changeit")
			if err != nil || f != tc.format || !slices.Equal(ksSummary(got), []string{"root=" + Fingerprint(p.Root)}) {
				t.Errorf("ReadStore: %q, %v, %v", ksSummary(got), f, err)
			}
		})
	}
	if _, err := NewKeytoolStore("x", "y", WithKeytool(filepath.Join(t.TempDir(), "no-keytool"))); err == nil || !strings.Contains(err.Error(), "keytool not found") {
		t.Errorf("missing keytool: %v", err)
	}
	if _, err := NewKeytoolStore("x", "y", WithKeytoolFormat(FormatPEM)); !errors.Is(err, ErrUnsupportedFormat) {
		t.Errorf("PEM through keytool: %v", err)
	}
}

// TestKeytoolStoreSerializesWithFileStore imports through a KeytoolStore
// and FileStores into one JKS at once: the shared sidecar lock keeps every
// import.
func TestKeytoolStoreSerializesWithFileStore(t *testing.T) {
	kt := ksTool(t, "keytool", "openjdk-17-jre-headless")
	t.Parallel()
	ctx := context.Background()
	p := ksTestPKI(t, 0)
	path := filepath.Join(t.TempDir(), "shared.jks")
	ks, err := NewKeytoolStore(path, "changeit", WithKeytool(kt), WithKeytoolFormat(FormatJKS))
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 4)
	go func() { errs <- ks.Import(ctx, Entry{"via-keytool", p.Root}) }()
	for _, a := range []string{"file-1", "file-2", "file-3"} {
		go func() {
			fs, err := OpenFileStore(path, "changeit", WithFileFormat(FormatJKS))
			if err == nil {
				err = fs.Import(ctx, Entry{a, p.Intermediate})
			}
			errs <- err
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	got, err := ks.Entries(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var aliases []string
	for _, e := range got {
		aliases = append(aliases, e.Alias)
	}
	slices.Sort(aliases)
	if want := []string{"file-1", "file-2", "file-3", "via-keytool"}; !slices.Equal(aliases, want) {
		t.Errorf("aliases %q, want %q", aliases, want)
	}
}

// TestKeytoolStoreWithoutFriendlyNames changes a PKCS12 store with a
// trusted certificate that has no friendly name, which Java numbers
// ("1") where ReadStoreContents derives "cert-..." from its fingerprint:
// the store is checked with keytool -list, so that the alias keytool
// shows is the one Import and Delete find.
func TestKeytoolStoreWithoutFriendlyNames(t *testing.T) {
	kt := ksTool(t, "keytool", "openjdk-17-jre-headless")
	t.Parallel()
	ctx := context.Background()
	p := ksTestPKI(t, 0)
	path := filepath.Join(t.TempDir(), "unnamed.p12")
	data := ksP12Store(t, []p12SafeBag{ksP12CertBag(t, p.Root, "", nil, true), ksP12CertBag(t, p.Intermediate, "inter", nil, true)})
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := NewKeytoolStore(path, "changeit", WithKeytool(kt))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"1=" + Fingerprint(p.Root), "inter=" + Fingerprint(p.Intermediate)}
	if got, err := s.Entries(ctx); err != nil || !slices.Equal(ksSummary(got), want) {
		t.Fatalf("Entries %q, %v; want %q", ksSummary(got), err, want)
	}
	// Delete first: keytool, rewriting the store, writes "1" as its
	// friendly name.
	if err := s.Delete(ctx, "1"); err != nil {
		t.Errorf("Delete of the alias keytool shows: %v", err)
	}
	if err := s.Import(ctx, Entry{"leaf", p.Leaf}); err != nil {
		t.Errorf("Import: %v", err)
	}
	want = []string{"inter=" + Fingerprint(p.Intermediate), "leaf=" + Fingerprint(p.Leaf)}
	if got, err := s.Entries(ctx); err != nil || !slices.Equal(ksSummary(got), want) {
		t.Errorf("after Import and Delete: %q, %v; want %q", ksSummary(got), err, want)
	}
}
