package certstore

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/directdl/directdl/download"
	"github.com/directdl/directdl/internal/faultserver"
)

// ksLayouts are the kinds of FileStore, by the name of a store that does
// not exist yet.
var ksLayouts = []struct {
	name   string // file name in a new directory
	format Format
}{
	{"trust.jks", FormatJKS},
	{"trust.p12", FormatPKCS12},
	{"trust.pem", FormatPEM},
	{"certs.d", FormatPEM}, // a directory, with WithFileFormat(FormatPEM)
}

func ksOpen(t testing.TB, path string, format Format) *FileStore {
	t.Helper()
	var opts []FileStoreOption
	if strings.HasSuffix(path, ".d") {
		opts = append(opts, WithFileFormat(format))
	}
	s, err := OpenFileStore(path, "changeit", opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestFileStoreImportDelete(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p, other := ksTestPKI(t, 0), ksTestPKI(t, 1)
	for _, l := range ksLayouts {
		t.Run(l.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), l.name)
			s := ksOpen(t, path, l.format)
			if got, err := s.Entries(ctx); err != nil || len(got) != 0 {
				t.Fatalf("new store: %v, %v; want no entries", got, err)
			}
			for _, e := range []Entry{{"root", p.Root}, {"inter", p.Intermediate}} {
				if err := s.Import(ctx, e); err != nil {
					t.Fatalf("Import %s: %v", e.Alias, err)
				}
			}
			// A replacement, and a repeat that changes nothing.
			if err := s.Import(ctx, Entry{"inter", other.Intermediate}); err != nil {
				t.Fatal(err)
			}
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Import(ctx, Entry{"inter", other.Intermediate}); err != nil {
				t.Fatal(err)
			}
			if fi2, err := os.Stat(path); err != nil || !os.SameFile(fi, fi2) && !fi.IsDir() {
				t.Errorf("importing what the store holds rewrote it")
			}
			want := []string{"inter=" + Fingerprint(other.Intermediate), "root=" + Fingerprint(p.Root)}
			got, err := s.Entries(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(ksSummary(got), want) {
				t.Errorf("entries %q, want %q", ksSummary(got), want)
			}
			// A store opened anew, and the file read directly, agree.
			if got, err := ksOpen(t, path, l.format).Entries(ctx); err != nil || !slices.Equal(ksSummary(got), want) {
				t.Errorf("reopened: %q, %v", ksSummary(got), err)
			}
			if !fi.IsDir() {
				data, _ := os.ReadFile(path)
				got, f, err := ReadStore(data, "changeit")
				if err != nil || f != l.format || !slices.Equal(ksSummary(got), want) {
					t.Errorf("ReadStore of the file: %q, %v, %v", ksSummary(got), f, err)
				}
			}

			if err := s.Delete(ctx, "root"); err != nil {
				t.Fatal(err)
			}
			if err := s.Delete(ctx, "root"); !errors.Is(err, ErrNotFound) {
				t.Errorf("deleting again: %v, want ErrNotFound", err)
			}
			for _, bad := range []Entry{{"Root", p.Root}, {"cloud", p.Root}, {"cloudca-1", p.Root}, {"x", nil}} {
				if err := s.Import(ctx, bad); err == nil {
					t.Errorf("Import %q succeeded", bad.Alias)
				}
			}
			if got, _ := s.Entries(ctx); !slices.Equal(ksSummary(got), want[:1]) {
				t.Errorf("after Delete: %q, want %q", ksSummary(got), want[:1])
			}

			// Deleting the last entry leaves an empty store that can be
			// read, opened anew and imported into (an empty PEM bundle is
			// an empty file, which once read as "the store is empty" and
			// broke every later call).
			if err := s.Delete(ctx, "inter"); err != nil {
				t.Fatal(err)
			}
			if got, err := s.Entries(ctx); err != nil || len(got) != 0 {
				t.Fatalf("after deleting the last entry: %q, %v; want no entries", ksSummary(got), err)
			}
			again := ksOpen(t, path, l.format)
			if got, err := again.Entries(ctx); err != nil || len(got) != 0 {
				t.Fatalf("reopened empty store: %q, %v; want no entries", ksSummary(got), err)
			}
			if err := again.Import(ctx, Entry{"root", p.Root}); err != nil {
				t.Fatalf("importing into the emptied store: %v", err)
			}
			if got, err := s.Entries(ctx); err != nil || !slices.Equal(ksSummary(got), want[1:]) {
				t.Errorf("after importing again: %q, %v; want %q", ksSummary(got), err, want[1:])
			}
		})
	}
}

func TestFileStoreKeepsMode(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "trust.jks")
	s := ksOpen(t, path, FormatJKS)
	if err := s.Import(ctx, Entry{"root", ksTestPKI(t, 0).Root}); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := s.Import(ctx, Entry{"inter", ksTestPKI(t, 0).Intermediate}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v after Import, want 0640", fi.Mode().Perm())
	}
	// No temporary file is left beside the store.
	names, _ := filepath.Glob(filepath.Join(filepath.Dir(path), "*"))
	for _, n := range names {
		if b := filepath.Base(n); b != "trust.jks" && b != "trust.jks.lock" {
			t.Errorf("left behind: %s", b)
		}
	}
}

func TestOpenFileStore(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var jks bytes.Buffer
	if err := WriteJKS(&jks, ksEntries(t), "changeit"); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "store.p12") // a JKS, whatever its name
	if err := os.WriteFile(path, jks.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if s, err := OpenFileStore(path, "changeit"); err != nil {
		t.Errorf("JKS named .p12: %v", err)
	} else if got, _ := s.Entries(context.Background()); len(got) != 3 {
		t.Errorf("JKS named .p12: %d entries", len(got))
	}
	if _, err := OpenFileStore(path, "wrong"); !errors.Is(err, ErrWrongPassword) || !strings.Contains(err.Error(), path) {
		t.Errorf("wrong password: %v, want ErrWrongPassword naming the file", err)
	}
	if _, err := OpenFileStore(path, "changeit", WithFileFormat(FormatPKCS12)); !errors.Is(err, ErrUnsupportedFormat) {
		t.Errorf("format mismatch: %v", err)
	}
	if _, err := OpenFileStore(filepath.Join(dir, "no", "such.jks"), "x"); err == nil {
		t.Error("a store in a missing directory was opened")
	}
	if _, err := OpenFileStore(dir, "x", WithFileFormat(FormatJKS)); err == nil {
		t.Error("a directory was opened as JKS")
	}
	if _, err := OpenFileStore(filepath.Join(dir, "x"), "x", WithFileFormat(Format(9))); err == nil {
		t.Error("Format(9) accepted")
	}
}

// TestFileStorePEMDirectory checks the aliases of a PEM directory that
// other tools filled, and what Import and Delete do there.
func TestFileStorePEMDirectory(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p, other := ksTestPKI(t, 0), ksTestPKI(t, 1)
	dir := t.TempDir()
	write := func(name string, data []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("lab.crt", EncodePEM(p.Root))
	write("bundle.pem", EncodePEM(p.Intermediate, p.Leaf))
	write("key.pem", []byte("-----BEGIN PRIVATE KEY-----\nMAA=\n-----END PRIVATE KEY-----\n"))
	write("README", []byte("not a certificate"))
	s, err := OpenFileStore(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Entries(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"lab=" + Fingerprint(p.Root), "bundle-2=" + Fingerprint(p.Leaf), "bundle=" + Fingerprint(p.Intermediate)}
	slices.Sort(want)
	if !slices.Equal(ksSummary(got), want) {
		t.Errorf("entries %q, want %q", ksSummary(got), want)
	}
	if err := s.Delete(ctx, "bundle-2"); !errors.Is(err, ErrNeedsKeytool) {
		t.Errorf("deleting one certificate of a bundle file: %v", err)
	}
	// A replaced entry keeps its file.
	if err := s.Import(ctx, Entry{"lab", other.Intermediate}); err != nil {
		t.Fatal(err)
	}
	if c, err := ParseCertificates(ksReadFile(t, filepath.Join(dir, "lab.crt"))); err != nil || !c[0].Equal(other.Intermediate) {
		t.Errorf("lab.crt after Import: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "lab.pem")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Import of lab made lab.pem beside lab.crt: %v", err)
	}
	if err := s.Delete(ctx, "lab"); err != nil {
		t.Errorf("Delete lab: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "lab.crt")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("lab.crt not removed: %v", err)
	}
	if err := s.Import(ctx, Entry{"mirror", other.Root}); err != nil {
		t.Fatal(err)
	}
	if c, err := ParseCertificates(ksReadFile(t, filepath.Join(dir, "mirror.pem"))); err != nil || len(c) != 1 || !c[0].Equal(other.Root) {
		t.Errorf("mirror.pem holds %v, %v", c, err)
	}
	// Go's own loader reads the directory.
	pool := s.RootCAs()
	if _, err := other.Root.Verify(x509.VerifyOptions{Roots: pool}); err != nil {
		t.Errorf("RootCAs of the directory does not trust the imported root: %v", err)
	}
}

// TestFileStoreConcurrentImports imports from many goroutines, each with
// its own FileStore, as many processes would: every import lands.
func TestFileStoreConcurrentImports(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := ksTestPKI(t, 0)
	certs := []*x509.Certificate{p.Root, p.Intermediate, p.Leaf}
	const n = 12
	for _, l := range ksLayouts {
		t.Run(l.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), l.name)
			var wg sync.WaitGroup
			errs := make(chan error, n)
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					s, err := OpenFileStore(path, "changeit", WithFileFormat(l.format))
					if err == nil {
						err = s.Import(ctx, Entry{fmt.Sprintf("ca-%d", i), certs[i%len(certs)]})
					}
					errs <- err
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Error(err)
				}
			}
			got, err := ksOpen(t, path, l.format).Entries(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != n {
				t.Errorf("%d entries after %d concurrent imports: %q", len(got), n, ksSummary(got))
			}
		})
	}
}

// ksChildEnv names the store a re-executed test binary imports into.
const ksChildEnv = "CERTSTORE_TEST_CHILD_STORE"

// TestMain runs the child of TestFileStoreProcesses when the test binary
// is re-executed as one, and the tests otherwise.
func TestMain(m *testing.M) {
	if path := os.Getenv(ksChildEnv); path != "" {
		if err := ksChildImport(path, os.Getenv(ksChildEnv+"_PREFIX")); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// ksChildImport imports five aliases into the store at path, each through
// a FileStore of its own, as another process would.
func ksChildImport(path, prefix string) error {
	der, err := os.ReadFile(path + ".cert")
	if err != nil {
		return err
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return err
	}
	for i := range 5 {
		s, err := OpenFileStore(path, "changeit")
		if err != nil {
			return err
		}
		if err := s.Import(context.Background(), Entry{prefix + strconv.Itoa(i), c}); err != nil {
			return err
		}
	}
	return nil
}

// TestFileStoreProcesses has several processes import into one store at
// once: the sidecar lock serializes them, so no import is lost.
func TestFileStoreProcesses(t *testing.T) {
	t.Parallel()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "shared.jks")
	if err := os.WriteFile(path+".cert", ksTestPKI(t, 0).Root.Raw, 0o644); err != nil {
		t.Fatal(err)
	}
	const children = 3
	var cmds []*exec.Cmd
	outs := make([]bytes.Buffer, children)
	for i := range children {
		cmd := exec.Command(exe)
		cmd.Env = append(os.Environ(), ksChildEnv+"="+path, fmt.Sprintf("%s_PREFIX=p%d-", ksChildEnv, i))
		cmd.Stdout, cmd.Stderr = &outs[i], &outs[i]
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	// The parent imports too, meanwhile.
	s := ksOpen(t, path, FormatJKS)
	for i := range 5 {
		if err := s.Import(context.Background(), Entry{"parent-" + strconv.Itoa(i), ksTestPKI(t, 0).Intermediate}); err != nil {
			t.Error(err)
		}
	}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Errorf("child %d: %v\n%s", i, err, outs[i].String())
		}
	}
	got, err := s.Entries(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if want := (children + 1) * 5; len(got) != want {
		t.Errorf("%d entries, want %d: %q", len(got), want, ksSummary(got))
	}
}

func TestFileStoreLockWaitsForContext(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "busy.jks")
	s := ksOpen(t, path, FormatJKS)
	unlock, err := lockSidecar(context.Background(), s.lockPath())
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Import(ctx, Entry{"root", ksTestPKI(t, 0).Root}); !errors.Is(err, context.Canceled) {
		t.Errorf("Import while another holds the lock, with a cancelled context: %v", err)
	}
}

// TestFileStoreKeytoolStores changes stores that keytool made with a
// private key: a JKS keeps its key entry; a PKCS12 is refused.
func TestFileStoreKeytoolStores(t *testing.T) {
	ksTool(t, "keytool", "openjdk-17-jre-headless")
	t.Parallel()
	ctx := context.Background()
	p := ksTestPKI(t, 0)
	dir := t.TempDir()
	for _, typ := range []string{"JKS", "PKCS12"} {
		ksKeytool(t, dir, "-genkeypair", "-keyalg", "EC", "-groupname", "secp256r1", "-alias", "cloud", "-dname", "CN=agent",
			"-validity", "2", "-keystore", "cloud."+typ, "-storetype", typ, "-storepass", "changeit", "-keypass", "changeit")
	}
	jksPath := filepath.Join(dir, "cloud.JKS")
	before := keytoolListed(t, ksKeytool(t, dir, "-list", "-keystore", jksPath, "-storepass", "changeit"))
	s, err := OpenFileStore(jksPath, "changeit")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Import(ctx, Entry{"mirror-ca", p.Root}); err != nil {
		t.Fatal(err)
	}
	after := keytoolListed(t, ksKeytool(t, dir, "-list", "-keystore", jksPath, "-storepass", "changeit"))
	want := slices.Sorted(slices.Values(append(slices.Clone(before), "mirror-ca=trustedCertEntry="+Fingerprint(p.Root))))
	if len(before) != 1 || !strings.HasPrefix(before[0], "cloud=PrivateKeyEntry=") || !slices.Equal(after, want) {
		t.Errorf("keytool lists %q after Import, want %q", after, want)
	}
	// The key itself is intact: keytool can still use it.
	ksKeytool(t, dir, "-certreq", "-alias", "cloud", "-keystore", jksPath, "-storepass", "changeit", "-keypass", "changeit", "-file", "req.csr")
	// The key entry is neither replaced nor deleted.
	if err := s.Delete(ctx, "cloud"); !errors.Is(err, ErrInvalidAlias) {
		t.Errorf("Delete of the key entry: %v, want ErrInvalidAlias", err)
	}
	if err := s.Import(ctx, Entry{"agent-key", p.Root}); err != nil {
		t.Fatal(err)
	}

	p12Path := filepath.Join(dir, "cloud.PKCS12")
	p12Before, _ := os.ReadFile(p12Path)
	s2, err := OpenFileStore(p12Path, "changeit")
	if err != nil {
		t.Fatal(err)
	}
	err = s2.Import(ctx, Entry{"mirror-ca", p.Root})
	if !errors.Is(err, ErrNeedsKeytool) || !strings.Contains(err.Error(), p12Path) || !strings.Contains(err.Error(), "KeytoolStore") {
		t.Errorf("Import into a PKCS12 with a key: %v, want ErrNeedsKeytool naming the file and KeytoolStore", err)
	}
	if p12After, _ := os.ReadFile(p12Path); !bytes.Equal(p12Before, p12After) {
		t.Error("the refused PKCS12 store was changed")
	}
}

// TestFileStoreTrustSource uses a FileStore as the download package's
// trust source: a download fails until the store trusts the server's CA,
// then succeeds with the same client.
func TestFileStoreTrustSource(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := ksTestPKI(t, 1)
	srv := faultserver.StartTest(t, faultserver.WithTLS(p.Certificate(true)),
		faultserver.WithResource(faultserver.PatternResource("/t.img", 3, 64<<10)))
	store := ksOpen(t, filepath.Join(t.TempDir(), "trust.jks"), FormatJKS)
	if store.RootCAs() == nil {
		t.Fatal("RootCAs of an empty store is nil, want an empty pool")
	}
	var src download.TrustSource = store
	c, err := download.New(download.WithTrustSource(src), download.WithRetries(0),
		download.WithPolicy(download.Policy{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseIdleConnections()
	dest := filepath.Join(t.TempDir(), "t.img")
	if _, err := c.Get(ctx, download.Request{URL: srv.URL("/t.img"), Path: dest}); err == nil {
		t.Fatal("downloaded from a server whose CA the store does not hold")
	}
	pool := store.RootCAs()
	if store.RootCAs() != pool {
		t.Error("RootCAs built a new pool for an unchanged file")
	}
	if err := store.Import(ctx, Entry{"lab-root", p.Root}); err != nil {
		t.Fatal(err)
	}
	if store.RootCAs() == pool {
		t.Error("RootCAs kept its pool after the file changed")
	}
	if _, err := c.Get(ctx, download.Request{URL: srv.URL("/t.img"), Path: dest}); err != nil {
		t.Errorf("after importing the root: %v", err)
	}
	// A store that cannot be read adds no trust.
	if err := os.WriteFile(store.Path(), []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if store.RootCAs() != nil {
		t.Error("RootCAs of an unreadable store is not nil")
	}
}

func ksReadFile(t testing.TB, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestFileStorePKCS12WithoutFriendlyNames lists a PKCS12 store whose
// trusted certificate has no friendly name under the alias derived from
// its fingerprint, but changes nothing in it: written back, the entry
// would get that alias as its friendly name, and Java, which numbers it
// now ("1"), would see it renamed.
func TestFileStorePKCS12WithoutFriendlyNames(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := ksTestPKI(t, 0)
	path := filepath.Join(t.TempDir(), "unnamed.p12")
	data := ksP12Store(t, []p12SafeBag{ksP12CertBag(t, p.Root, "", nil, true), ksP12CertBag(t, p.Intermediate, "inter", nil, true)})
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := OpenFileStore(path, "changeit")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{derivedAlias(p.Root) + "=" + Fingerprint(p.Root), "inter=" + Fingerprint(p.Intermediate)}
	if got, err := s.Entries(ctx); err != nil || !slices.Equal(ksSummary(got), want) {
		t.Fatalf("Entries %q, %v; want %q", ksSummary(got), err, want)
	}
	if err := s.Import(ctx, Entry{"leaf", p.Leaf}); !errors.Is(err, ErrNeedsKeytool) || !strings.Contains(err.Error(), path) {
		t.Errorf("Import: %v, want ErrNeedsKeytool naming %s", err, path)
	}
	if err := s.Delete(ctx, "inter"); !errors.Is(err, ErrNeedsKeytool) {
		t.Errorf("Delete: %v, want ErrNeedsKeytool", err)
	}
	if got := ksReadFile(t, path); !bytes.Equal(got, data) {
		t.Error("the store was rewritten")
	}
}

// TestFileStorePEMDirectoryKeyAndCertificate refuses to change an entry
// whose file also holds a key (a server's key and certificate in one
// file): writing or removing the file would lose the key.
func TestFileStorePEMDirectoryKeyAndCertificate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p, other := ksTestPKI(t, 0), ksTestPKI(t, 1)
	dir := t.TempDir()
	path := filepath.Join(dir, "server.pem")
	data := append([]byte("-----BEGIN PRIVATE KEY-----\nMAA=\n-----END PRIVATE KEY-----\n"), EncodePEM(p.Leaf)...)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := OpenFileStore(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.Entries(ctx); err != nil || !slices.Equal(ksSummary(got), []string{"server=" + Fingerprint(p.Leaf)}) {
		t.Fatalf("Entries %q, %v", ksSummary(got), err)
	}
	if err := s.Import(ctx, Entry{"server", other.Leaf}); !errors.Is(err, ErrNeedsKeytool) {
		t.Errorf("Import over a key file's certificate: %v, want ErrNeedsKeytool", err)
	}
	if err := s.Delete(ctx, "server"); !errors.Is(err, ErrNeedsKeytool) {
		t.Errorf("Delete of a key file's certificate: %v, want ErrNeedsKeytool", err)
	}
	if got := ksReadFile(t, path); !bytes.Equal(got, data) {
		t.Error("server.pem was changed")
	}
}

// TestWriteNewFile never replaces a file, and leaves no temporary file.
func TestWriteNewFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := writeNewFile(dir, "a.pem", []byte("new")); err != nil {
		t.Fatal(err)
	}
	if got := ksReadFile(t, filepath.Join(dir, "a.pem")); string(got) != "new" {
		t.Errorf("a.pem holds %q", got)
	}
	if err := writeNewFile(dir, "a.pem", []byte("newer")); !errors.Is(err, fs.ErrExist) {
		t.Errorf("writing over a.pem: %v, want fs.ErrExist", err)
	}
	if got := ksReadFile(t, filepath.Join(dir, "a.pem")); string(got) != "new" {
		t.Errorf("a.pem holds %q after a refused write", got)
	}
	if names, _ := filepath.Glob(filepath.Join(dir, "*")); len(names) != 1 {
		t.Errorf("files %q, want a.pem alone", names)
	}
	if names, _ := filepath.Glob(filepath.Join(dir, ".*")); len(names) != 0 {
		t.Errorf("left behind: %q", names)
	}
}
