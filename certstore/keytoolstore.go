package certstore

import (
	"bufio"
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"slices"
	"strings"

	"github.com/directdl/directdl/internal/atomicfile"
)

// KeytoolStore is a TrustStore changed by running Java's keytool, for the
// stores certstore cannot write itself without losing something:
// CloudStack's agent keystore cloud.jks, which on Java 9 and later is a
// PKCS12 file holding the agent's private key. keytool keeps every entry
// it is not asked to change.
//
// Entries runs keytool -list (a JVM start, about half a second) on the
// store as it is now. Import and Delete run keytool -delete and
// -importcert on a copy beside the store, read the copy back to check
// that it holds what they meant (with ReadStoreContents, which needs no
// JVM and reads what Java 17's keytool writes, or with keytool -list when
// it cannot, or when the store has entries without a friendly name, which
// keytool numbers), and only then rename the copy over the store, so a
// failure at any step leaves the store as it was. They take the same
// sidecar lock as FileStore, so the two serialize. The password reaches
// keytool through its environment (-storepass:env), never its command
// line, which other users can read. keytool runs with an English locale,
// as certstore reads its output.
//
// A KeytoolStore is safe for concurrent use. The zero KeytoolStore is not
// usable.
type KeytoolStore struct {
	path, password string
	keytool        string
	newType        string // -storetype of a store that does not exist yet
}

var _ TrustStore = (*KeytoolStore)(nil)

// keytoolJVMFlags make keytool speak English, which certstore parses, and
// start faster: a short run gains nothing from the optimizing compiler.
var keytoolJVMFlags = []string{"-J-Duser.language=en", "-J-Duser.country=US", "-J-XX:TieredStopAtLevel=1", "-J-XX:+UseSerialGC"}

// keytoolPassEnv carries the store password to keytool.
const keytoolPassEnv = "CERTSTORE_KEYTOOL_STOREPASS"

// KeytoolOption configures NewKeytoolStore.
type KeytoolOption func(*KeytoolStore) error

// WithKeytool runs the keytool at path instead of the one found in PATH.
func WithKeytool(path string) KeytoolOption {
	return func(s *KeytoolStore) error {
		s.keytool = path
		return nil
	}
}

// WithKeytoolFormat sets the type of a store that does not exist yet:
// FormatJKS or FormatPKCS12 (keytool's default, when not given). An
// existing store keeps its type.
func WithKeytoolFormat(f Format) KeytoolOption {
	return func(s *KeytoolStore) error {
		if f != FormatJKS && f != FormatPKCS12 {
			return fmt.Errorf("%w: keytool writes JKS or PKCS12, not %v", ErrUnsupportedFormat, f)
		}
		s.newType = f.String()
		return nil
	}
}

// NewKeytoolStore returns the store at path (which need not exist yet),
// opened with password. It finds keytool, but does not run it.
func NewKeytoolStore(path, password string, opts ...KeytoolOption) (*KeytoolStore, error) {
	s := &KeytoolStore{path: path, password: password, keytool: "keytool"}
	for _, o := range opts {
		if err := o(s); err != nil {
			return nil, err
		}
	}
	p, err := exec.LookPath(s.keytool)
	if err != nil {
		return nil, fmt.Errorf("certstore: keytool not found (%v); install a Java runtime (Debian: openjdk-17-jre-headless)", err)
	}
	s.keytool = p
	return s, nil
}

// keytoolEntry is one entry of keytool -list -rfc.
type keytoolEntry struct {
	alias, typ string // typ: trustedCertEntry, PrivateKeyEntry, SecretKeyEntry
	certs      []*x509.Certificate
}

// run runs keytool with args on the store at path, returning its output.
func (s *KeytoolStore) run(ctx context.Context, path string, args ...string) ([]byte, error) {
	full := append(slices.Clone(keytoolJVMFlags), args...)
	full = append(full, "-keystore", path, "-storepass:env", keytoolPassEnv)
	cmd := exec.CommandContext(ctx, s.keytool, full...)
	cmd.Env = append(os.Environ(), keytoolPassEnv+"="+s.password)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err == nil {
		return stdout.Bytes(), nil
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("certstore: keytool %s %s: %w", args[0], path, ctx.Err())
	}
	// keytool prints its errors on stdout.
	var msg []string
	for _, l := range strings.Split(stdout.String()+"\n"+stderr.String(), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "-----") {
			msg = append(msg, l)
		}
	}
	text := strings.Join(msg, "; ")
	if len(text) > 1000 {
		text = text[:1000] + "..."
	}
	if strings.Contains(text, "password was incorrect") {
		return nil, fmt.Errorf("%w: keytool %s %s: %s", ErrWrongPassword, args[0], s.path, text)
	}
	return nil, fmt.Errorf("certstore: keytool %s %s: %v: %s", args[0], s.path, err, text)
}

// list runs keytool -list -rfc on the store at path.
func (s *KeytoolStore) list(ctx context.Context, path string) ([]keytoolEntry, error) {
	out, err := s.run(ctx, path, "-list", "-rfc")
	if err != nil {
		return nil, err
	}
	return parseKeytoolList(out)
}

// parseKeytoolList reads the output of keytool -list -rfc (English).
func parseKeytoolList(out []byte) ([]keytoolEntry, error) {
	var entries []keytoolEntry
	var cur *keytoolEntry
	var block []byte
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		switch {
		case strings.HasPrefix(line, "Alias name: "):
			entries = append(entries, keytoolEntry{alias: strings.TrimPrefix(line, "Alias name: ")})
			cur = &entries[len(entries)-1]
		case cur != nil && strings.HasPrefix(line, "Entry type: "):
			cur.typ = strings.TrimSpace(strings.TrimPrefix(line, "Entry type: "))
		case strings.HasPrefix(line, "-----BEGIN CERTIFICATE-----"):
			block = append(block[:0], line...)
			block = append(block, '\n')
		case block != nil && strings.HasPrefix(line, "-----END CERTIFICATE-----"):
			block = append(block, line...)
			b, _ := pem.Decode(block)
			block = nil
			if b == nil || cur == nil {
				return nil, fmt.Errorf("certstore: keytool -list printed a malformed certificate")
			}
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("%w: keytool entry %q: %v", ErrInvalidCertificate, cur.alias, err)
			}
			cur.certs = append(cur.certs, c)
		case block != nil:
			block = append(block, line...)
			block = append(block, '\n')
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("certstore: reading keytool -list: %w", err)
	}
	return entries, nil
}

// inspect lists the entries of the store at path as keytool -list would,
// reading it with ReadStoreContents, which needs no JVM, or with keytool
// when the store uses what certstore does not read, or when certstore
// would name its entries otherwise than keytool: a PKCS12 store's entries
// without a friendly name, which certstore names by fingerprint and Java
// numbers.
func (s *KeytoolStore) inspect(ctx context.Context, path string) ([]keytoolEntry, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("certstore: %w", err)
	}
	c, err := ReadStoreContents(data, s.password)
	switch {
	case errors.Is(err, ErrWrongPassword):
		return nil, fmt.Errorf("%s: %w", s.path, err)
	case err != nil || c.Format == FormatPEM || len(c.derived) > 0:
		return s.list(ctx, path)
	}
	var out []keytoolEntry
	for _, e := range c.Trusted {
		out = append(out, keytoolEntry{alias: e.Alias, typ: "trustedCertEntry", certs: []*x509.Certificate{e.Cert}})
	}
	for _, k := range c.Keys {
		out = append(out, keytoolEntry{alias: k.Alias, typ: "PrivateKeyEntry", certs: k.Chain})
	}
	return out, nil
}

// Entries runs keytool -list and returns the trustedCertEntry entries; a
// store that does not exist yet has none.
func (s *KeytoolStore) Entries(ctx context.Context) ([]Entry, error) {
	if _, err := os.Stat(s.path); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	list, err := s.list(ctx, s.path)
	if err != nil {
		return nil, err
	}
	var out []Entry
	for _, e := range list {
		if e.typ == "trustedCertEntry" && len(e.certs) > 0 {
			out = append(out, Entry{Alias: e.alias, Cert: e.certs[0]})
		}
	}
	return out, nil
}

// Import adds e with keytool -importcert (deleting a trusted entry of the
// same alias first, as keytool will not replace one), then checks that
// the alias holds e's certificate. The alias must pass
// ValidateAlias and must not name another kind of entry (the agent's
// key). Importing what the store already holds changes nothing.
func (s *KeytoolStore) Import(ctx context.Context, e Entry) error {
	if err := ValidateAlias(e.Alias); err != nil {
		return err
	}
	if e.Cert == nil || len(e.Cert.Raw) == 0 {
		return fmt.Errorf("%w: entry %q has no certificate", ErrInvalidCertificate, e.Alias)
	}
	return s.change(ctx, e.Alias, e.Cert)
}

// Delete removes the trusted entry alias with keytool -delete; an error
// wrapping ErrNotFound if the store has none, and one wrapping
// ErrInvalidAlias if alias names another kind of entry, which Delete
// never removes.
func (s *KeytoolStore) Delete(ctx context.Context, alias string) error {
	if alias == "" {
		return fmt.Errorf("%w: empty alias", ErrInvalidAlias)
	}
	return s.change(ctx, alias, nil)
}

// change sets the trusted entry alias to cert, or deletes it when cert is
// nil, on a copy of the store that replaces it once checked.
func (s *KeytoolStore) change(ctx context.Context, alias string, cert *x509.Certificate) error {
	unlock, err := lockSidecar(ctx, sidecarLockPath(s.path))
	if err != nil {
		return err
	}
	defer unlock()

	original, err := readStoreFile(s.path)
	exists := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	var current *keytoolEntry
	if exists {
		list, err := s.inspect(ctx, s.path)
		if err != nil {
			return err
		}
		for i := range list {
			// keytool matches aliases without regard to case.
			if strings.EqualFold(list[i].alias, alias) {
				current = &list[i]
			}
		}
	}
	switch {
	case current != nil && current.typ != "trustedCertEntry":
		kind := map[string]string{"PrivateKeyEntry": "private key entry", "SecretKeyEntry": "secret key entry"}[current.typ]
		if kind == "" {
			kind = "entry of type " + current.typ
		}
		return fmt.Errorf("%w: %q is a %s of %s, not a trusted certificate; choose another alias", ErrInvalidAlias, alias, kind, s.path)
	case cert == nil && current == nil:
		return fmt.Errorf("%w: %s has no trusted certificate entry %q", ErrNotFound, s.path, alias)
	case cert != nil && current != nil && len(current.certs) > 0 && bytes.Equal(current.certs[0].Raw, cert.Raw):
		return nil
	}

	err = atomicfile.Write(s.path, 0o644, func(f *os.File) error {
		tmp := f.Name()
		if exists {
			if _, err := f.Write(original); err != nil {
				return err
			}
		} else if err := os.Remove(tmp); err != nil {
			// keytool refuses an empty file, but creates a missing one.
			return err
		}
		if current != nil {
			if _, err := s.run(ctx, tmp, "-delete", "-alias", current.alias); err != nil {
				return err
			}
		}
		if cert != nil {
			if err := s.importCert(ctx, tmp, alias, cert, exists); err != nil {
				return err
			}
		}
		if err := s.check(ctx, tmp, alias, cert); err != nil {
			return err
		}
		// keytool rewrote the file; when it created it, f is not it.
		g, err := os.Open(tmp)
		if err != nil {
			return err
		}
		defer g.Close()
		return g.Sync()
	})
	if err != nil {
		return fmt.Errorf("%s unchanged: %w", s.path, err)
	}
	return nil
}

// importCert runs keytool -importcert of cert, from a temporary PEM file
// only the caller can read, into the store at path.
func (s *KeytoolStore) importCert(ctx context.Context, path, alias string, cert *x509.Certificate, exists bool) error {
	f, err := os.CreateTemp("", "certstore-import-*.pem")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	_, err = f.Write(EncodePEM(cert))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	args := []string{"-importcert", "-noprompt", "-alias", alias, "-file", f.Name()}
	if !exists && s.newType != "" {
		args = append(args, "-storetype", s.newType)
	}
	_, err = s.run(ctx, path, args...)
	return err
}

// check confirms with keytool -list that the store at path holds cert as
// the trusted entry alias, or no entry alias when cert is nil.
func (s *KeytoolStore) check(ctx context.Context, path, alias string, cert *x509.Certificate) error {
	list, err := s.inspect(ctx, path)
	if err != nil {
		return err
	}
	for _, e := range list {
		if !strings.EqualFold(e.alias, alias) {
			continue
		}
		switch {
		case cert == nil:
			return fmt.Errorf("certstore: keytool -delete left the entry %q in place", alias)
		case e.typ != "trustedCertEntry" || len(e.certs) == 0:
			return fmt.Errorf("certstore: after keytool -importcert, %q is a %s, not a trustedCertEntry", alias, e.typ)
		case Fingerprint(e.certs[0]) != Fingerprint(cert):
			return fmt.Errorf("certstore: after keytool -importcert, %q holds the certificate %s, not %s", alias, Fingerprint(e.certs[0]), Fingerprint(cert))
		}
		return nil
	}
	if cert != nil {
		return fmt.Errorf("certstore: keytool -importcert did not add %q", alias)
	}
	return nil
}
