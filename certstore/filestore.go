package certstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pavlo-v-chernykh/keystore-go/v4"

	"github.com/directdl/directdl/internal/atomicfile"
)

// ErrNeedsKeytool: the store holds what certstore cannot write back
// without losing it (a PKCS12 store with a private key, as CloudStack's
// cloud.jks is on Java 9 and later); change it with a KeytoolStore.
var ErrNeedsKeytool = errors.New("certstore: store must be changed with keytool")

// FileStore is a TrustStore kept in a local file: a JKS or PKCS12 key
// store, a PEM bundle, or a directory of PEM files. Make one with
// OpenFileStore.
//
// Every call reads the store afresh, so Entries reports what the file
// holds now, whoever changed it. Import and Delete read, change and
// replace the file under an exclusive lock on a sidecar file (PATH.lock
// beside the store, .certstore.lock inside a PEM directory; the data file
// itself cannot be locked, since it is replaced), so that FileStores in
// any number of processes serialize their changes and none is lost; the
// new file is written beside the old one, synced and renamed over it
// (keeping its permissions), so a reader or a crash sees the old store or
// the new one, never a mix. KeytoolStore takes the same lock.
//
// A FileStore is safe for concurrent use. The zero FileStore is not
// usable.
type FileStore struct {
	path     string
	password string
	kind     storeKind
	format   Format // for a store that does not exist yet

	mu    sync.Mutex
	stamp string
	file  fs.FileInfo
	pool  *x509.CertPool
}

var _ TrustStore = (*FileStore)(nil)

// storeKind is how a FileStore keeps its entries.
type storeKind int

const (
	kindFile storeKind = iota // a JKS, PKCS12 or PEM bundle file
	kindDir                   // a directory of PEM files
)

// FileStoreOption configures OpenFileStore.
type FileStoreOption func(*FileStore) error

// WithFileFormat sets the format of a store that does not exist yet
// (otherwise taken from its name: .p12 and .pfx are PKCS12, .pem and .crt
// a PEM bundle, anything else JKS; FormatPEM for a name without those
// extensions is a directory of PEM files). An existing store keeps the
// format its bytes show, and must match the option if given.
func WithFileFormat(f Format) FileStoreOption {
	return func(s *FileStore) error {
		if f != FormatJKS && f != FormatPKCS12 && f != FormatPEM {
			return fmt.Errorf("certstore: %v is not a store format", f)
		}
		s.format = f
		return nil
	}
}

// OpenFileStore returns the store at path, protected by password
// (ignored for PEM). An existing store is read once, so that a wrong
// password or an unreadable file is reported now; a missing one is an
// empty store that the first Import creates (a file with mode 0644, a
// directory with mode 0755, less the umask), in the directory path names,
// which must exist.
func OpenFileStore(path, password string, opts ...FileStoreOption) (*FileStore, error) {
	s := &FileStore{path: path, password: password}
	for _, o := range opts {
		if err := o(s); err != nil {
			return nil, err
		}
	}
	fi, err := os.Stat(path)
	switch {
	case err == nil && fi.IsDir():
		if s.format != 0 && s.format != FormatPEM {
			return nil, fmt.Errorf("certstore: %s is a directory, which can only be a PEM store, not %v", path, s.format)
		}
		s.kind, s.format = kindDir, FormatPEM
	case err == nil:
		data, err := readStoreFile(path)
		if err != nil {
			return nil, err
		}
		if emptyPEMBundle(path, data) && (s.format == 0 || s.format == FormatPEM) {
			s.format = FormatPEM
			break
		}
		got, err := DetectFormat(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if s.format != 0 && s.format != got {
			return nil, fmt.Errorf("%w: %s is a %v store, not %v", ErrUnsupportedFormat, path, got, s.format)
		}
		s.format = got
		if _, err := ReadStoreContents(data, password); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	case errors.Is(err, fs.ErrNotExist):
		if fi, err := os.Stat(filepath.Dir(path)); err != nil || !fi.IsDir() {
			return nil, fmt.Errorf("certstore: %s: its directory does not exist", path)
		}
		ext := strings.ToLower(filepath.Ext(path))
		if s.format == 0 {
			switch ext {
			case ".p12", ".pfx":
				s.format = FormatPKCS12
			case ".pem", ".crt":
				s.format = FormatPEM
			default:
				s.format = FormatJKS
			}
		}
		if s.format == FormatPEM && ext != ".pem" && ext != ".crt" {
			s.kind = kindDir
		}
	default:
		return nil, fmt.Errorf("certstore: %w", err)
	}
	return s, nil
}

// emptyPEMBundle reports whether data, the content of the store file at
// path, is an empty PEM bundle: a .pem or .crt file with nothing but
// white space, as deleting a bundle's last entry leaves it. (JKS and
// PKCS12 stores are never empty files, so an empty file of another name
// stays an error.)
func emptyPEMBundle(path string, data []byte) bool {
	ext := strings.ToLower(filepath.Ext(path))
	return (ext == ".pem" || ext == ".crt") && len(bytes.TrimSpace(data)) == 0
}

// Path returns the path the store was opened with.
func (s *FileStore) Path() string { return s.path }

// readStoreFile reads a store file of at most MaxStoreSize bytes.
func readStoreFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("certstore: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxStoreSize+1))
	if err != nil {
		return nil, fmt.Errorf("certstore: reading %s: %w", path, err)
	}
	if len(data) > MaxStoreSize {
		return nil, fmt.Errorf("%w: %s is more than the %d bytes certstore reads", ErrInvalidStore, path, MaxStoreSize)
	}
	return data, nil
}

// Entries returns the store's trusted certificate entries, read from the
// file now; a store that does not exist yet has none. In a PEM directory,
// each .pem and .crt file gives its certificates the aliases of its
// "# alias:" lines, or else its name without the extension (NAME, then
// NAME-2, NAME-3, ... for a file holding several); files holding no
// certificate (a key) are skipped.
func (s *FileStore) Entries(ctx context.Context) ([]Entry, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if s.kind == kindDir {
		entries, _, err := s.readDir()
		return entries, err
	}
	c, _, err := s.readFile()
	if err != nil {
		return nil, err
	}
	return c.Trusted, nil
}

// fileContents is a store file as read for a change: what ReadStore
// reports, and what a writer must keep.
type fileContents struct {
	StoreContents
	exists bool
	jks    keystore.KeyStore // the JKS store as loaded, private keys encrypted as they were
	other  []string          // what a PKCS12 or PEM store holds besides trusted certificates
}

// readFile reads the store file; a missing one is an empty store of the
// configured format.
func (s *FileStore) readFile() (*fileContents, []byte, error) {
	data, err := readStoreFile(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		c := &fileContents{StoreContents: StoreContents{Format: s.format}}
		if s.format == FormatJKS {
			c.jks = keystore.New(keystore.WithOrderedAliases(), keystore.WithCaseExactAliases())
		}
		return c, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	if s.format == FormatPEM && emptyPEMBundle(s.path, data) {
		return &fileContents{exists: true, StoreContents: StoreContents{Format: FormatPEM}}, data, nil
	}
	f, err := DetectFormat(data)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", s.path, err)
	}
	c := &fileContents{exists: true, StoreContents: StoreContents{Format: f}}
	switch f {
	case FormatJKS:
		if c.jks, err = loadJKS(data, s.password); err == nil {
			var sc *StoreContents
			if sc, err = jksContents(c.jks); err == nil {
				c.StoreContents = *sc
			}
		}
	case FormatPKCS12:
		var p *p12Contents
		if p, err = readPKCS12(data, s.password); err == nil {
			c.Trusted, c.Keys, c.other, c.derived = p.trusted, p.keys, p.other, p.derived
		}
	case FormatPEM:
		var skipped int
		c.Trusted, skipped, err = readPEMBlocks(data)
		if skipped > 0 {
			c.other = append(c.other, fmt.Sprintf("%d PEM blocks that are not certificates", skipped))
		}
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", s.path, err)
	}
	return c, data, nil
}

// Import adds e to the store, or replaces the certificate of the trusted
// entry with its alias; the alias must pass ValidateAlias, which keeps
// CloudStack's reserved "cloud" and "cloudca..." aliases out, and must not
// name a private key entry. Importing what the store already holds
// changes nothing. Every other entry is kept: a JKS store's private key
// entries byte for byte (still encrypted, so no key password is needed).
// A PKCS12 store holding a private key, or entries without a friendly
// name (which certstore would rename by writing them back), or anything
// else certstore would drop by writing the store back, is refused with an
// error wrapping ErrNeedsKeytool; use a KeytoolStore for it. A PKCS12
// store is written back as WritePKCS12 writes (AES-256, HMAC-SHA-256),
// whatever protected it before.
func (s *FileStore) Import(ctx context.Context, e Entry) error {
	if err := ValidateAlias(e.Alias); err != nil {
		return err
	}
	if e.Cert == nil || len(e.Cert.Raw) == 0 {
		return fmt.Errorf("%w: entry %q has no certificate", ErrInvalidCertificate, e.Alias)
	}
	return s.change(ctx, e.Alias, e.Cert)
}

// Delete removes the trusted entry alias from the store; an error wrapping
// ErrNotFound if it has none, and one wrapping ErrInvalidAlias if alias
// names a private key entry, which Delete never removes. Other entries are
// kept as Import keeps them.
func (s *FileStore) Delete(ctx context.Context, alias string) error {
	if alias == "" {
		return fmt.Errorf("%w: empty alias", ErrInvalidAlias)
	}
	return s.change(ctx, alias, nil)
}

// change sets the trusted entry alias to cert, or removes it when cert is
// nil, under the lock, and writes the store back if that changes it.
func (s *FileStore) change(ctx context.Context, alias string, cert *x509.Certificate) error {
	unlock, err := lockSidecar(ctx, s.lockPath())
	if err != nil {
		return err
	}
	defer unlock()
	if s.kind == kindDir {
		return s.changeDir(alias, cert)
	}
	c, _, err := s.readFile()
	if err != nil {
		return err
	}
	for _, k := range c.Keys {
		if k.Alias == alias {
			return fmt.Errorf("%w: %q is a private key entry of %s, not a trusted certificate; choose another alias", ErrInvalidAlias, alias, s.path)
		}
	}
	i := slices.IndexFunc(c.Trusted, func(t Entry) bool { return t.Alias == alias })
	switch {
	case cert == nil && i < 0:
		return fmt.Errorf("%w: %s has no trusted certificate entry %q", ErrNotFound, s.path, alias)
	case cert != nil && i >= 0 && bytes.Equal(c.Trusted[i].Cert.Raw, cert.Raw):
		return nil // already there
	}
	if c.Format == FormatPKCS12 && len(c.Keys) > 0 {
		return fmt.Errorf("%w: %s is a PKCS12 store holding the private key %q, which certstore cannot write back without losing it; change it with a KeytoolStore (keytool -importcert, -delete)", ErrNeedsKeytool, s.path, c.Keys[0].Alias)
	}
	if len(c.other) > 0 {
		return fmt.Errorf("%w: %s holds %s, which certstore cannot write back; change it with a KeytoolStore or by hand", ErrNeedsKeytool, s.path, strings.Join(c.other, ", "))
	}
	if len(c.derived) > 0 {
		// Written back, they would get these made-up names as friendly
		// names: renamed for Java, which numbers them now.
		return fmt.Errorf("%w: %s is a PKCS12 store with entries that have no friendly name (certstore calls them %s, Java numbers them), which certstore cannot write back without renaming them; change it with a KeytoolStore (keytool -importcert, -delete)", ErrNeedsKeytool, s.path, strings.Join(c.derived, ", "))
	}
	switch {
	case cert == nil:
		c.Trusted = slices.Delete(c.Trusted, i, i+1)
	case i >= 0:
		c.Trusted[i].Cert = cert
	default:
		c.Trusted = append(c.Trusted, Entry{Alias: alias, Cert: cert})
	}
	var out bytes.Buffer
	switch c.Format {
	case FormatJKS:
		// Change the store as loaded, so that every other entry is
		// written back as it was read.
		if cert == nil {
			c.jks.DeleteEntry(alias)
		} else if err = c.jks.SetTrustedCertificateEntry(alias, jksTrustedEntry(cert)); err != nil {
			return fmt.Errorf("certstore: JKS entry %q: %w", alias, err)
		}
		err = storeJKS(&out, c.jks, s.password)
	case FormatPKCS12:
		err = storePKCS12(&out, c.Trusted, s.password)
	case FormatPEM:
		err = writePEMEntries(&out, c.Trusted)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", s.path, err)
	}
	return writeAtomic(s.path, out.Bytes())
}

// writePEMEntries is WritePEM without the alias checks, for entries read
// from a store.
func writePEMEntries(w *bytes.Buffer, entries []Entry) error {
	for _, e := range entries {
		if strings.ContainsAny(e.Alias, "\r\n") {
			return fmt.Errorf("%w: alias %q has a line break", ErrInvalidAlias, e.Alias)
		}
		fmt.Fprintf(w, "%s %s\n", pemAliasPrefix, e.Alias)
		w.Write(EncodePEM(e.Cert))
	}
	return nil
}

// writeAtomic replaces path with data (see internal/atomicfile).
func writeAtomic(path string, data []byte) error {
	err := atomicfile.Write(path, 0o644, func(f *os.File) error {
		_, err := f.Write(data)
		return err
	})
	if err != nil {
		return fmt.Errorf("certstore: writing %s: %w", path, err)
	}
	return nil
}

// lockPath is the sidecar file locked while the store changes, beside the
// file a symbolic link points to, so that stores opened through different
// links share it.
func (s *FileStore) lockPath() string {
	if s.kind == kindDir {
		return filepath.Join(s.path, ".certstore.lock")
	}
	return sidecarLockPath(s.path)
}

func sidecarLockPath(path string) string {
	if real, err := filepath.EvalSymlinks(path); err == nil {
		path = real
	}
	return path + ".lock"
}

// lockSidecar takes the exclusive lock on the sidecar file at path,
// creating it if needed, and waits for it until ctx ends. The sidecar is
// never removed: a process would otherwise lock a file another had just
// unlinked.
func lockSidecar(ctx context.Context, path string) (func(), error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("certstore: lock: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("certstore: lock: %w", err)
	}
	delay := time.Millisecond
	for {
		ok, err := tryLockFile(f)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("certstore: locking %s: %w", path, err)
		}
		if ok {
			return func() {
				_ = unlockFile(f)
				f.Close()
			}, nil
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			f.Close()
			return nil, fmt.Errorf("certstore: waiting for the lock %s: %w", path, ctx.Err())
		case <-t.C:
		}
		delay = min(2*delay, 50*time.Millisecond)
	}
}

// pemDirFile is one file of a PEM directory and the entries it gives.
type pemDirFile struct {
	name    string // base name
	entries []Entry
	other   int // PEM blocks that are not certificates (a key)
}

// readDir reads a PEM directory's .pem and .crt files in name order.
func (s *FileStore) readDir() ([]Entry, []pemDirFile, error) {
	des, err := os.ReadDir(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("certstore: %w", err)
	}
	var entries []Entry
	var files []pemDirFile
	from := map[string]string{} // alias -> file
	for _, de := range des {
		name := de.Name()
		ext := strings.ToLower(filepath.Ext(name))
		if (ext != ".pem" && ext != ".crt") || strings.HasPrefix(name, ".") {
			continue
		}
		p := filepath.Join(s.path, name)
		if fi, err := os.Stat(p); err != nil || !fi.Mode().IsRegular() {
			continue
		}
		data, err := readStoreFile(p)
		if err != nil {
			return nil, nil, err
		}
		fe, other, err := readPEMDirFile(name, data)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", p, err)
		}
		for _, e := range fe {
			if other, dup := from[e.Alias]; dup {
				return nil, nil, fmt.Errorf("%w: %s and %s both give alias %q", ErrDuplicateAlias, filepath.Join(s.path, other), p, e.Alias)
			}
			from[e.Alias] = name
		}
		entries = append(entries, fe...)
		files = append(files, pemDirFile{name: name, entries: fe, other: other})
	}
	return entries, files, nil
}

// readPEMDirFile reads one file of a PEM directory, and counts its blocks
// that are not certificates: no certificate (a key file) gives no entry.
func readPEMDirFile(name string, data []byte) ([]Entry, int, error) {
	if !bytes.Contains(data, []byte("-----BEGIN")) {
		return nil, 0, nil
	}
	fe, other, err := readPEMBlocks(data)
	if err != nil {
		if !bytes.Contains(data, []byte("CERTIFICATE-----")) {
			return nil, 0, nil
		}
		return nil, 0, err
	}
	base := strings.TrimSuffix(name, filepath.Ext(name))
	hasAliasLine := bytes.Contains(data, []byte(pemAliasPrefix))
	for i := range fe {
		if hasAliasLine {
			continue // the file names its entries
		}
		fe[i].Alias = base
		if i > 0 {
			fe[i].Alias = fmt.Sprintf("%s-%d", base, i+1)
		}
	}
	return fe, other, nil
}

// changeDir sets or removes the entry alias of a PEM directory: a
// replaced entry is written over its file, a removed one's file removed,
// and a new entry gets a file of its own, ALIAS.pem or, when a file of
// that name exists (another entry's, a key, anything), the first free of
// ALIAS-2.pem, ALIAS-3.pem, ..., with an alias line naming the entry. The
// new file is created without ever replacing one (see writeNewFile), so
// that no file the store did not write, and no other entry, is lost. An
// entry from a file that also holds other certificates or blocks that are
// not certificates (a key) is refused: changing it would mean rewriting
// or removing them.
func (s *FileStore) changeDir(alias string, cert *x509.Certificate) error {
	_, files, err := s.readDir()
	if err != nil {
		return err
	}
	var own *pemDirFile
	for i, f := range files {
		for _, e := range f.entries {
			if e.Alias != alias {
				continue
			}
			if len(f.entries) != 1 || f.other != 0 {
				return fmt.Errorf("%w: alias %q comes from %s, which holds %d certificates and %d other PEM blocks; edit that file by hand", ErrNeedsKeytool, alias, filepath.Join(s.path, f.name), len(f.entries), f.other)
			}
			own = &files[i]
		}
	}
	switch {
	case cert == nil && own == nil:
		return fmt.Errorf("%w: %s has no certificate with alias %q", ErrNotFound, s.path, alias)
	case cert == nil:
		if err := os.Remove(filepath.Join(s.path, own.name)); err != nil {
			return fmt.Errorf("certstore: %w", err)
		}
		return atomicfile.SyncDir(s.path)
	case own != nil && bytes.Equal(own.entries[0].Cert.Raw, cert.Raw):
		return nil
	}
	if err := os.MkdirAll(s.path, 0o755); err != nil {
		return fmt.Errorf("certstore: %w", err)
	}
	var out bytes.Buffer
	if err := writePEMEntries(&out, []Entry{{Alias: alias, Cert: cert}}); err != nil {
		return err
	}
	if own != nil {
		// A replaced entry keeps its file (ALIAS.crt, say), so that no
		// reader sees it missing or twice.
		return writeAtomic(filepath.Join(s.path, own.name), out.Bytes())
	}
	for n := 1; n <= maxPEMNames; n++ {
		name := alias + ".pem"
		if n > 1 {
			name = fmt.Sprintf("%s-%d.pem", alias, n)
		}
		if _, err := os.Lstat(filepath.Join(s.path, name)); !errors.Is(err, fs.ErrNotExist) {
			continue // taken, or not to be touched
		}
		err := writeNewFile(s.path, name, out.Bytes())
		if errors.Is(err, fs.ErrExist) {
			continue // created since, by a process that does not lock
		}
		return err
	}
	return fmt.Errorf("%w: %s has files %s.pem to %s-%d.pem already; remove some", ErrNeedsKeytool, s.path, alias, alias, maxPEMNames)
}

// maxPEMNames is how many names changeDir tries for a new entry's file.
const maxPEMNames = 100

// writeNewFile creates the file name in dir holding data (mode 0644 less
// the umask), failing with an error wrapping fs.ErrExist if name exists,
// as O_EXCL does, and crash-safe as writeAtomic: the data is written and
// synced under a hidden temporary name (".NAME.tmp-RANDOM", which readDir
// skips), which is then hard-linked to name (link(2) never replaces a
// file) and removed. Where the file system has no hard links, name is
// created with O_EXCL and written in place.
func writeNewFile(dir, name string, data []byte) error {
	target := filepath.Join(dir, name)
	f, err := createHiddenTemp(dir, name)
	if err != nil {
		return fmt.Errorf("certstore: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := writeSyncClose(f, data); err != nil {
		return fmt.Errorf("certstore: writing %s: %w", tmp, err)
	}
	err = os.Link(tmp, target)
	switch {
	case errors.Is(err, fs.ErrExist):
		return fmt.Errorf("certstore: %s: %w", target, err)
	case err != nil:
		f, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return fmt.Errorf("certstore: %w", err)
		}
		if err := writeSyncClose(f, data); err != nil {
			os.Remove(target)
			return fmt.Errorf("certstore: writing %s: %w", target, err)
		}
	}
	if err := os.Remove(tmp); err != nil {
		return fmt.Errorf("certstore: %w", err)
	}
	if err := atomicfile.SyncDir(dir); err != nil {
		return fmt.Errorf("certstore: %s written, but not yet durable: %w", target, err)
	}
	return nil
}

// createHiddenTemp creates a new file ".NAME.tmp-RANDOM" in dir.
func createHiddenTemp(dir, name string) (*os.File, error) {
	for {
		var r [6]byte
		if _, err := rand.Read(r[:]); err != nil {
			return nil, err
		}
		p := filepath.Join(dir, atomicfile.TempPrefix+name+".tmp-"+hex.EncodeToString(r[:]))
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if !errors.Is(err, fs.ErrExist) {
			return f, err
		}
	}
}

func writeSyncClose(f *os.File, data []byte) error {
	_, err := f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// RootCAs returns a pool of the store's trusted certificates as the file
// holds them now, so that a FileStore is a trust source for the download
// package (download.WithTrustSource), asked at every new connection. The
// pool is cached until the file changes (another inode, size or
// modification time; in a PEM directory, any of its files), so asking is
// cheap. When the store cannot be read, RootCAs returns nil, adding no
// trust; Entries returns the error. Safe for concurrent use.
func (s *FileStore) RootCAs() *x509.CertPool {
	s.mu.Lock()
	defer s.mu.Unlock()
	stamp, fi, err := s.statStamp()
	if err != nil {
		s.pool, s.file, s.stamp = nil, nil, ""
		return nil
	}
	if s.pool != nil && stamp == s.stamp && (fi == nil || s.file != nil && os.SameFile(fi, s.file)) {
		return s.pool
	}
	entries, err := s.Entries(context.Background())
	if err != nil {
		s.pool, s.file, s.stamp = nil, nil, ""
		return nil
	}
	s.pool, s.file, s.stamp = NewCertPool(entries), fi, stamp
	return s.pool
}

// statStamp describes the store's files' identity, for the RootCAs cache.
func (s *FileStore) statStamp() (string, fs.FileInfo, error) {
	if s.kind != kindDir {
		fi, err := os.Stat(s.path)
		if errors.Is(err, fs.ErrNotExist) {
			return "missing", nil, nil
		}
		if err != nil {
			return "", nil, err
		}
		return fmt.Sprintf("%d %d", fi.Size(), fi.ModTime().UnixNano()), fi, nil
	}
	des, err := os.ReadDir(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return "missing", nil, nil
	}
	if err != nil {
		return "", nil, err
	}
	var b strings.Builder
	for _, de := range des {
		fi, err := os.Stat(filepath.Join(s.path, de.Name()))
		if err != nil {
			continue
		}
		fmt.Fprintf(&b, "%s %d %d\n", de.Name(), fi.Size(), fi.ModTime().UnixNano())
	}
	return b.String(), nil, nil
}

// tryLockFile takes an exclusive flock on f without waiting; false when
// another open file holds it. (certstore, as internal/atomicfile, builds
// on Unix systems.)
func tryLockFile(f *os.File) (bool, error) {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, syscall.EWOULDBLOCK):
			return false, nil
		case errors.Is(err, syscall.EINTR):
			continue
		}
		return false, err
	}
}

func unlockFile(f *os.File) error {
	return syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
}
