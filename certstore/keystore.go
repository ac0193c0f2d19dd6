package certstore

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"hash"
	"io"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/pavlo-v-chernykh/keystore-go/v4"
	"software.sslmate.com/src/go-pkcs12"

	"github.com/directdl/directdl/internal/rc2"
)

// Errors of reading and writing key stores.
var (
	// ErrWrongPassword: the store's integrity check failed with the
	// password given. JKS and PKCS12 cannot tell a wrong password from a
	// damaged file, so the message says both.
	ErrWrongPassword = errors.New("certstore: wrong store password, or a damaged store")

	// ErrUnsupportedFormat: the data is not a JKS, PKCS12 or PEM store
	// certstore can read (a JCEKS store, say, or a PKCS12 store protected by
	// an algorithm it does not implement), or it cannot be rewritten
	// without losing what it holds.
	ErrUnsupportedFormat = errors.New("certstore: unsupported store format")

	// ErrInvalidStore: the data claims to be a JKS or PKCS12 store but its
	// structure is broken (truncated, lengths that point past the end).
	ErrInvalidStore = errors.New("certstore: invalid key store")
)

// MaxStoreSize bounds the stores ReadStore reads, so that a hostile or
// mistaken file cannot make it allocate without limit: Java's cacerts, with
// about 150 roots, is under 200 KiB.
const MaxStoreSize = 8 << 20

// Format is the format of a trust store file. The zero Format is none.
type Format int

// The store formats certstore reads and writes.
const (
	// FormatJKS is Java's JKS (magic 0xFEEDFEED), keytool's default
	// before Java 9 and what CloudStack's agent opens cloud.jks as.
	FormatJKS Format = iota + 1
	// FormatPKCS12 is PKCS #12 (a DER SEQUENCE), keytool's default since
	// Java 9 (so CloudStack's cloud.jks is PKCS12 on current agents).
	FormatPKCS12
	// FormatPEM is a bundle of PEM CERTIFICATE blocks, as OpenSSL, curl
	// and Go read, with "# alias: NAME" comment lines naming the entries.
	FormatPEM
)

// String returns "JKS", "PKCS12" or "PEM".
func (f Format) String() string {
	switch f {
	case FormatJKS:
		return "JKS"
	case FormatPKCS12:
		return "PKCS12"
	case FormatPEM:
		return "PEM"
	}
	return "Format(" + strconv.Itoa(int(f)) + ")"
}

// Magic numbers at the start of Java key stores.
const (
	jksMagic   = 0xFEEDFEED
	jceksMagic = 0xCECECECE
)

// DetectFormat tells the format of a store from its first bytes: JKS by
// its magic number 0xFEEDFEED; PKCS12 by the DER SEQUENCE it starts with
// (0x30 and a long-form length); PEM by a "-----BEGIN" line after optional
// whitespace or comment text. A JCEKS store (0xCECECECE) is refused with
// the keytool command that converts it. Errors wrap ErrUnsupportedFormat.
func DetectFormat(data []byte) (Format, error) {
	switch {
	case len(data) == 0:
		return 0, fmt.Errorf("%w: the store is empty", ErrUnsupportedFormat)
	case len(data) >= 4 && binary.BigEndian.Uint32(data) == jksMagic:
		return FormatJKS, nil
	case len(data) >= 4 && binary.BigEndian.Uint32(data) == jceksMagic:
		return 0, fmt.Errorf("%w: a JCEKS store, which certstore does not read; convert it with keytool -importkeystore -srcstoretype JCEKS -deststoretype PKCS12 (or JKS)", ErrUnsupportedFormat)
	case len(data) >= 2 && data[0] == 0x30 && data[1] >= 0x80:
		// Every PKCS12 file is longer than 127 bytes, so its length is in
		// long form; this also keeps a text file starting with "0" a text
		// file.
		return FormatPKCS12, nil
	case looksLikePEM(data):
		return FormatPEM, nil
	}
	return 0, fmt.Errorf("%w: neither JKS (FEEDFEED), PKCS12 (DER) nor PEM (-----BEGIN); it starts with % x", ErrUnsupportedFormat, data[:min(len(data), 4)])
}

// looksLikePEM reports whether data has a BEGIN line with only text
// before it.
func looksLikePEM(data []byte) bool {
	i := bytes.Index(data, []byte("-----BEGIN"))
	if i < 0 {
		return false
	}
	pre := data[:i]
	if !utf8.Valid(pre) {
		return false
	}
	for _, r := range string(pre) {
		if r != '\n' && r != '\r' && r != '\t' && !unicode.IsPrint(r) && !unicode.IsSpace(r) {
			return false
		}
	}
	return true
}

// KeyEntry is a private key entry of a key store, without the key: its
// alias and its certificate chain, leaf first.
type KeyEntry struct {
	Alias string
	Chain []*x509.Certificate
}

// StoreContents is what a key store holds, as ReadStoreContents reads it.
type StoreContents struct {
	Format Format
	// Trusted are the trusted certificate entries (keytool's
	// trustedCertEntry): what Java trusts.
	Trusted []Entry
	// Keys are the private key entries (keytool's PrivateKeyEntry), with
	// their chains but never their keys. A PEM store has none.
	Keys []KeyEntry

	// derived are the aliases of a PKCS12 store's entries that have no
	// friendly name, made up by certstore where Java names them "1",
	// "2", ...: keytool would list them otherwise.
	derived []string
}

// Certificates returns the certificates of every trusted entry, then of
// every key entry's chain: what a client that trusts all of a store's
// certificates, as ddctl download -truststore does, adds to its pool.
func (s *StoreContents) Certificates() []*x509.Certificate {
	var out []*x509.Certificate
	for _, e := range s.Trusted {
		out = append(out, e.Cert)
	}
	for _, k := range s.Keys {
		out = append(out, k.Chain...)
	}
	return out
}

// ReadStore returns the trusted certificate entries of a JKS, PKCS12 or
// PEM store, in the store's order (JKS: sorted by alias), and its format,
// detected from data (see DetectFormat). Private key entries are not
// trust entries and are not returned: use ReadStoreContents for their
// chains.
//
// A JKS entry's alias is as stored, and its certificate type may be
// "X.509" (keytool's) or "X509" (keystore-go's default). A PKCS12 entry's
// alias is its friendly name in lowercase, as Java and keytool name it,
// whatever protects the store: PBES2 with AES (Java 12 and later, OpenSSL
// 3), triple DES (Java 11), RC2 (Java 8, OpenSSL 1.x), a PBMAC1 MAC (Java
// 26, OpenSSL 3.4); a store protected otherwise is refused. An entry
// without a friendly name gets the alias derived from its fingerprint
// that a PEM block without an alias line gets (see WritePEM), where Java
// numbers it; FileStore will not write such a store back. A PEM bundle's
// blocks other than certificates (a key) are skipped, as a key store's
// key entries are.
//
// password is ignored for PEM. For JKS it must be Latin-1 text (as
// keystore-go encodes each byte as one UTF-16 unit) and, unlike Java, an
// empty password does not skip the integrity check. A PKCS12 store
// without a MAC is read with any password, as Java reads it.
//
// data may hold at most MaxStoreSize bytes, and lengths, counts and key
// derivation iterations claimed inside it are checked against it before
// anything is allocated. Errors wrap ErrWrongPassword,
// ErrUnsupportedFormat, ErrInvalidStore, ErrInvalidCertificate or
// ErrDuplicateAlias (two PEM blocks with the same alias line, two PKCS12
// certificates with the same name). ReadStore is safe for concurrent use.
func ReadStore(data []byte, password string) ([]Entry, Format, error) {
	s, err := ReadStoreContents(data, password)
	if err != nil {
		return nil, 0, err
	}
	return s.Trusted, s.Format, nil
}

// ReadStoreContents is ReadStore with the private key entries' chains
// as well. A PKCS12 key's chain is its certificate (matched by local key
// id) followed by the store's other untrusted certificates that issued
// it, one after the other, as Java rebuilds it.
func ReadStoreContents(data []byte, password string) (*StoreContents, error) {
	if len(data) > MaxStoreSize {
		return nil, fmt.Errorf("%w: the store is %d bytes, more than the %d certstore reads", ErrInvalidStore, len(data), MaxStoreSize)
	}
	f, err := DetectFormat(data)
	if err != nil {
		return nil, err
	}
	switch f {
	case FormatJKS:
		ks, err := loadJKS(data, password)
		if err != nil {
			return nil, err
		}
		return jksContents(ks)
	case FormatPKCS12:
		c, err := readPKCS12(data, password)
		if err != nil {
			return nil, err
		}
		return &StoreContents{Format: FormatPKCS12, Trusted: c.trusted, Keys: c.keys, derived: c.derived}, nil
	default:
		trusted, err := readPEMStore(data)
		if err != nil {
			return nil, err
		}
		return &StoreContents{Format: FormatPEM, Trusted: trusted}, nil
	}
}

// jksPassword is password as keystore-go takes it: keystore-go turns each
// byte into one UTF-16 unit, where Java takes each char, so the bytes must
// be the Latin-1 encoding for both to agree.
func jksPassword(password string) ([]byte, error) {
	b := make([]byte, 0, len(password))
	for _, r := range password {
		if r > 0xFF {
			return nil, fmt.Errorf("%w: the password has %q, which a JKS store's password cannot have here (only Latin-1 characters); use a PKCS12 store", ErrUnsupportedFormat, r)
		}
		b = append(b, byte(r))
	}
	return b, nil
}

// JKS structure limits that checkJKS enforces: no chain Java writes
// comes near maxJKSChain certificates, and no X.509 certificate is
// shorter than minJKSCert bytes (its validity alone takes 30).
const (
	maxJKSChain = 64
	minJKSCert  = 64
)

// checkJKS walks the structure of a JKS store and checks that every
// length and count fits in data, that no private key entry's chain is
// longer than maxJKSChain and no certificate shorter than minJKSCert.
// keystore-go allocates what the lengths claim before it reads, and its
// own structures besides: about 40 bytes for each certificate and 100 for
// each entry. With these checks it allocates at most about five times
// data's size: for a store of MaxStoreSize bytes, 37 MiB when it holds
// the smallest private key entries without chains, 14 to 20 MiB when it
// holds the smallest certificates. Without the last two checks, a chain
// of empty certificates (6 bytes each) made it allocate 64 MiB.
func checkJKS(data []byte) error {
	r := jksWalker{b: data}
	if r.u32() != jksMagic {
		return fmt.Errorf("%w: no JKS magic number", ErrInvalidStore)
	}
	version := r.u32()
	if r.err == nil && version != 1 && version != 2 {
		return fmt.Errorf("%w: JKS version %d, want 1 or 2", ErrInvalidStore, version)
	}
	// An entry takes at least 4 (tag) + 2 (alias) + 8 (date) + 4 bytes.
	n := r.u32()
	if r.err == nil && uint64(n) > uint64(len(data))/18 {
		return fmt.Errorf("%w: JKS header claims %d entries, more than its %d bytes can hold", ErrInvalidStore, n, len(data))
	}
	cert := func() {
		if version == 2 {
			r.skip(int(r.u16()))
		}
		off := r.off
		if size := r.u32(); r.err == nil && size < minJKSCert {
			r.err = fmt.Errorf("a certificate of %d bytes at offset %d, shorter than any X.509 certificate", size, off)
		} else {
			r.skip(int(size))
		}
	}
	for i := uint32(0); i < n && r.err == nil; i++ {
		tag := r.u32()
		r.skip(int(r.u16())) // alias
		r.skip(8)            // creation date
		switch tag {
		case 1: // private key
			r.skip(int(r.u32()))
			certs := r.u32()
			if r.err == nil && certs > maxJKSChain {
				return fmt.Errorf("%w: JKS entry %d claims a chain of %d certificates, more than the %d certstore reads", ErrInvalidStore, i+1, certs, maxJKSChain)
			}
			for j := uint32(0); j < certs && r.err == nil; j++ {
				cert()
			}
		case 2: // trusted certificate
			cert()
		default:
			if r.err == nil {
				return fmt.Errorf("%w: JKS entry %d has the unknown tag %d (a JCEKS secret key?)", ErrInvalidStore, i+1, tag)
			}
		}
	}
	r.skip(20) // SHA-1 digest
	if r.err != nil {
		return fmt.Errorf("%w: JKS store is truncated or a length in it is wrong (%v)", ErrInvalidStore, r.err)
	}
	return nil
}

// jksWalker reads big-endian fields of a JKS store, remembering the first
// overrun.
type jksWalker struct {
	b   []byte
	off int
	err error
}

func (r *jksWalker) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b)-r.off {
		r.err = fmt.Errorf("%d bytes claimed at offset %d, %d left", n, r.off, len(r.b)-r.off)
		return nil
	}
	p := r.b[r.off : r.off+n]
	r.off += n
	return p
}

func (r *jksWalker) skip(n int) { r.take(n) }

func (r *jksWalker) u16() uint16 {
	if p := r.take(2); p != nil {
		return binary.BigEndian.Uint16(p)
	}
	return 0
}

func (r *jksWalker) u32() uint32 {
	if p := r.take(4); p != nil {
		return binary.BigEndian.Uint32(p)
	}
	return 0
}

// loadJKS checks and loads a JKS store, keeping aliases as stored (with
// their case) and private keys encrypted as they are, so that a store
// written back from it keeps them byte for byte.
func loadJKS(data []byte, password string) (keystore.KeyStore, error) {
	ks := keystore.New(keystore.WithOrderedAliases(), keystore.WithCaseExactAliases())
	if err := checkJKS(data); err != nil {
		return ks, err
	}
	pw, err := jksPassword(password)
	if err != nil {
		return ks, err
	}
	if err := ks.Load(bytes.NewReader(data), pw); err != nil {
		// keystore-go reports a failed integrity check only by this text.
		if strings.Contains(err.Error(), "invalid digest") {
			return ks, ErrWrongPassword
		}
		return ks, fmt.Errorf("%w: JKS: %v", ErrInvalidStore, err)
	}
	return ks, nil
}

// jksCertificate parses one certificate of a JKS entry.
func jksCertificate(alias string, c keystore.Certificate) (*x509.Certificate, error) {
	if c.Type != "X.509" && c.Type != "X509" {
		return nil, fmt.Errorf("%w: JKS entry %q holds a certificate of type %q, not X.509", ErrInvalidCertificate, alias, c.Type)
	}
	cert, err := x509.ParseCertificate(c.Content)
	if err != nil {
		return nil, fmt.Errorf("%w: JKS entry %q: %v", ErrInvalidCertificate, alias, err)
	}
	return cert, nil
}

func jksContents(ks keystore.KeyStore) (*StoreContents, error) {
	s := &StoreContents{Format: FormatJKS}
	for _, alias := range ks.Aliases() {
		switch {
		case ks.IsTrustedCertificateEntry(alias):
			e, err := ks.GetTrustedCertificateEntry(alias)
			if err != nil {
				return nil, fmt.Errorf("%w: JKS entry %q: %v", ErrInvalidStore, alias, err)
			}
			c, err := jksCertificate(alias, e.Certificate)
			if err != nil {
				return nil, err
			}
			s.Trusted = append(s.Trusted, Entry{Alias: alias, Cert: c})
		case ks.IsPrivateKeyEntry(alias):
			chain, err := ks.GetPrivateKeyEntryCertificateChain(alias)
			if err != nil {
				return nil, fmt.Errorf("%w: JKS entry %q: %v", ErrInvalidStore, alias, err)
			}
			k := KeyEntry{Alias: alias}
			for _, cc := range chain {
				c, err := jksCertificate(alias, cc)
				if err != nil {
					return nil, err
				}
				k.Chain = append(k.Chain, c)
			}
			s.Keys = append(s.Keys, k)
		}
	}
	return s, nil
}

// checkWriteEntries checks the entries a writer is given: a certificate
// each, and distinct aliases that Java finds (lowercase, as Java ignores
// JKS entries whose alias is not) and that fit on a PEM comment line.
func checkWriteEntries(entries []Entry) error {
	seen := make(map[string]bool, len(entries))
	for i, e := range entries {
		if e.Cert == nil || len(e.Cert.Raw) == 0 {
			return fmt.Errorf("%w: entry %d (alias %q) has no certificate", ErrInvalidCertificate, i+1, e.Alias)
		}
		if err := checkStoreAlias(e.Alias); err != nil {
			return err
		}
		if seen[e.Alias] {
			return fmt.Errorf("%w: alias %q is given twice", ErrDuplicateAlias, e.Alias)
		}
		seen[e.Alias] = true
	}
	return nil
}

// checkStoreAlias checks an alias for a store file. It is looser than
// ValidateAlias (keytool allows "my_ca.1"), but an alias must be
// lowercase, printable, and without leading or trailing space.
func checkStoreAlias(alias string) error {
	switch {
	case alias == "":
		return fmt.Errorf("%w: empty alias", ErrInvalidAlias)
	case len(alias) > 255:
		return fmt.Errorf("%w: alias of %d bytes, more than 255", ErrInvalidAlias, len(alias))
	case !utf8.ValidString(alias):
		return fmt.Errorf("%w: alias %q is not UTF-8", ErrInvalidAlias, alias)
	case strings.ToLower(alias) != alias:
		return fmt.Errorf("%w: %q has uppercase letters; Java ignores JKS entries whose alias is not lowercase, use %q", ErrInvalidAlias, alias, strings.ToLower(alias))
	case strings.TrimSpace(alias) != alias:
		return fmt.Errorf("%w: %q starts or ends with white space", ErrInvalidAlias, alias)
	}
	for _, r := range alias {
		if !unicode.IsPrint(r) {
			return fmt.Errorf("%w: %q has the unprintable %q", ErrInvalidAlias, alias, r)
		}
	}
	return nil
}

// WriteJKS writes entries as a JKS trust store that keytool and Java
// read, protected by password (Latin-1 text; see ReadStore). Entries are
// written sorted by alias, with the certificate type "X.509" (keytool's,
// which every reader accepts) and the certificate's NotBefore as the
// entry's creation date, so the same entries and password always give the
// same bytes. Aliases must be distinct and lowercase: Java ignores JKS
// entries whose alias is not (an error wrapping ErrInvalidAlias says so).
func WriteJKS(w io.Writer, entries []Entry, password string) error {
	if err := checkWriteEntries(entries); err != nil {
		return err
	}
	ks := keystore.New(keystore.WithOrderedAliases(), keystore.WithCaseExactAliases())
	for _, e := range entries {
		if err := ks.SetTrustedCertificateEntry(e.Alias, jksTrustedEntry(e.Cert)); err != nil {
			return fmt.Errorf("certstore: JKS entry %q: %w", e.Alias, err)
		}
	}
	return storeJKS(w, ks, password)
}

func jksTrustedEntry(c *x509.Certificate) keystore.TrustedCertificateEntry {
	return keystore.TrustedCertificateEntry{
		CreationTime: c.NotBefore,
		Certificate:  keystore.Certificate{Type: "X.509", Content: c.Raw},
	}
}

func storeJKS(w io.Writer, ks keystore.KeyStore, password string) error {
	pw, err := jksPassword(password)
	if err != nil {
		return err
	}
	if err := ks.Store(w, pw); err != nil {
		return fmt.Errorf("certstore: writing JKS: %w", err)
	}
	return nil
}

// WritePKCS12 writes entries as a PKCS12 trust store (go-pkcs12's
// Modern2023: AES-256 and HMAC-SHA-256, read by Java 12 and later and
// OpenSSL 1.1.1 and later) whose certificates carry Java's trusted
// certificate attribute and the alias as friendly name, so that keytool
// lists them as trustedCertEntry under their aliases, sorted by alias as
// WriteJKS sorts them. The output differs at each call (random salts). Aliases as for WriteJKS. The password must
// be ASCII, as Java's PKCS12 requires.
func WritePKCS12(w io.Writer, entries []Entry, password string) error {
	if err := checkWriteEntries(entries); err != nil {
		return err
	}
	sorted := slices.Clone(entries)
	slices.SortFunc(sorted, func(a, b Entry) int { return strings.Compare(a.Alias, b.Alias) })
	return storePKCS12(w, sorted, password)
}

func storePKCS12(w io.Writer, entries []Entry, password string) error {
	for _, r := range password {
		if r >= utf8.RuneSelf {
			// Java 17 derives PBES2 keys from ASCII passwords only
			// ("getSecretKey failed: Password is not ASCII").
			return fmt.Errorf("%w: the password has %q; Java cannot open a PKCS12 store whose password is not ASCII", ErrUnsupportedFormat, r)
		}
	}
	list := make([]pkcs12.TrustStoreEntry, len(entries))
	for i, e := range entries {
		list[i] = pkcs12.TrustStoreEntry{Cert: e.Cert, FriendlyName: e.Alias}
	}
	data, err := pkcs12.Modern2023.EncodeTrustStoreEntries(list, password)
	if err != nil {
		return fmt.Errorf("certstore: writing PKCS12: %w", err)
	}
	_, err = w.Write(data)
	return err
}

// pemAliasPrefix starts the comment line that names a PEM block's alias.
const pemAliasPrefix = "# alias:"

// WritePEM writes entries as a PEM bundle in their order, each CERTIFICATE
// block preceded by a comment line "# alias: NAME", so that ReadStore
// gives the same aliases back; OpenSSL, curl and Go skip such lines.
//
// When ReadStore reads a block without an alias line, it derives the
// alias "cert-" followed by the first 16 hex digits of the certificate's
// SHA-256 fingerprint (see Fingerprint), and reads a certificate repeated
// without alias lines once. Aliases as for WriteJKS.
func WritePEM(w io.Writer, entries []Entry) error {
	if err := checkWriteEntries(entries); err != nil {
		return err
	}
	var b bytes.Buffer
	for _, e := range entries {
		fmt.Fprintf(&b, "%s %s\n", pemAliasPrefix, e.Alias)
		_ = pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: e.Cert.Raw})
	}
	_, err := w.Write(b.Bytes())
	return err
}

// derivedAlias is the alias of a certificate whose store gives it none.
func derivedAlias(c *x509.Certificate) string {
	return "cert-" + Fingerprint(c)[:16]
}

// readPEMStore reads the CERTIFICATE blocks of a PEM bundle with their
// aliases. Blocks of other types (a private key) are not trust entries
// and are skipped, as a JKS store's key entries are; OpenSSL's "TRUSTED
// CERTIFICATE" blocks are refused, as Go cannot parse them.
func readPEMStore(data []byte) ([]Entry, error) {
	entries, _, err := readPEMBlocks(data)
	return entries, err
}

// readPEMBlocks is readPEMStore that also counts the blocks it skipped.
func readPEMBlocks(data []byte) ([]Entry, int, error) {
	var out []Entry
	skipped := 0
	seen := map[string]string{} // alias -> fingerprint
	rest := data
	for n := 1; ; n++ {
		i := bytes.Index(rest, []byte("-----BEGIN"))
		if i < 0 {
			break
		}
		pre := rest[:i]
		block, after := pem.Decode(rest[i:])
		consumed := rest[i : len(rest)-len(after)]
		if block == nil || bytes.Count(consumed, []byte("-----BEGIN")) != 1 {
			return nil, 0, fmt.Errorf("%w: PEM block %d is malformed (a BEGIN line without a matching END line, or bad base64)", ErrInvalidCertificate, n)
		}
		rest = after
		switch block.Type {
		case "CERTIFICATE":
		case "TRUSTED CERTIFICATE", "X509 CERTIFICATE":
			return nil, 0, fmt.Errorf("%w: PEM block %d is OpenSSL's %q; convert it with openssl x509 -in FILE -out NEW.pem", ErrInvalidCertificate, n, block.Type)
		default:
			skipped++
			continue
		}
		if len(block.Headers) != 0 {
			return nil, 0, fmt.Errorf("%w: PEM block %d has headers, which a certificate never has", ErrInvalidCertificate, n)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, 0, fmt.Errorf("%w: PEM block %d: %v", ErrInvalidCertificate, n, err)
		}
		alias, named := pemAlias(pre)
		if !named {
			alias = derivedAlias(c)
		}
		if fp, dup := seen[alias]; dup {
			if !named && fp == Fingerprint(c) {
				continue
			}
			return nil, 0, fmt.Errorf("%w: PEM block %d has the alias %q of an earlier block", ErrDuplicateAlias, n, alias)
		}
		seen[alias] = Fingerprint(c)
		out = append(out, Entry{Alias: alias, Cert: c})
	}
	if len(out) == 0 {
		return nil, 0, fmt.Errorf("%w: no CERTIFICATE block in PEM input", ErrInvalidCertificate)
	}
	return out, skipped, nil
}

// pemAlias finds the last "# alias: NAME" line in the text before a PEM
// block.
func pemAlias(pre []byte) (string, bool) {
	alias, named := "", false
	for _, line := range strings.Split(string(pre), "\n") {
		line = strings.TrimSpace(line)
		if a, ok := strings.CutPrefix(line, pemAliasPrefix); ok {
			if a = strings.TrimSpace(a); a != "" {
				alias, named = a, true
			}
		}
	}
	return alias, named
}

// PKCS12 reading. go-pkcs12 v0.7.4 reads a trust store's certificates but
// neither their friendly names (the aliases) nor a store that also holds a
// private key, as keytool writes cloud.jks; so certstore walks the
// structure itself, with the standard library's ciphers and internal/rc2,
// and reads every protection go-pkcs12 reads (and some more): PBES2 with
// PBKDF2 and AES, PKCS12's SHA-1 based triple DES, two-key triple DES and
// RC2 (40 and 128 bits, as Java 8 and OpenSSL 1.x wrote), and MACs with
// the PKCS12 key derivation or PBMAC1 (RFC 9579, as Java 26, OpenSSL 3.4
// and go-pkcs12's Modern2026 write). A store protected otherwise is
// refused, never read with aliases made up: a store written back from
// such a read would rename its entries.

// kdfLimit bounds the iteration count of one key derivation (Java's
// PKCS12KeyStore refuses more) and kdfBudget the work of all of a store's
// derivations, so that a hostile store cannot make a read spin. The work
// is counted in hash iterations: the iteration count times the passes a
// derivation makes (one per hash output of key or IV it derives, an HMAC
// counting as two hashes, and the MAC twice when an empty password is
// retried as none). Java 17's keytool uses 10000 iterations, and a store
// it writes takes 30,000 of this budget (an HMAC-SHA-256 MAC, PBKDF2 with
// HMAC-SHA-256 for an AES-256 key); keys, which certstore never decrypts,
// take none.
const (
	kdfLimit  = 5_000_000
	kdfBudget = 10_000_000
)

var (
	oidData                   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
	oidEncryptedData          = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 6}
	oidKeyBag                 = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 10, 1, 1}
	oidShroudedKeyBag         = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 10, 1, 2}
	oidCertBag                = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 10, 1, 3}
	oidX509Certificate        = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 22, 1}
	oidFriendlyName           = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 20}
	oidLocalKeyID             = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 21}
	oidJavaTrusted            = asn1.ObjectIdentifier{2, 16, 840, 1, 113894, 746875, 1, 1}
	oidPBES2                  = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 13}
	oidPBKDF2                 = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 12}
	oidPBMAC1                 = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 14}
	oidPBEWithSHAAnd3DES      = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 1, 3}
	oidPBEWithSHAAnd2DES      = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 1, 4}
	oidPBEWithSHAAnd128BitRC2 = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 1, 5}
	oidPBEWithSHAAnd40BitRC2  = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 1, 6}
	oidAES128CBC              = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 2}
	oidAES192CBC              = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 22}
	oidAES256CBC              = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 42}
)

// p12Hashes are the digests of PKCS12 MACs and PBKDF2 PRFs, by the OIDs
// of the digest and of its HMAC, with the block size the PKCS12 key
// derivation needs.
var p12Hashes = []struct {
	digest, hmac asn1.ObjectIdentifier
	new          func() hash.Hash
	blockSize    int
}{
	{asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}, asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 7}, sha1.New, 64},
	{asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 4}, asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 8}, sha256.New224, 64},
	{asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}, asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 9}, sha256.New, 64},
	{asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2}, asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 10}, sha512.New384, 128},
	{asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 3}, asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 11}, sha512.New, 128},
}

type p12PFX struct {
	Version  int
	AuthSafe p12ContentInfo
	MacData  p12MacData `asn1:"optional"`
}

type p12ContentInfo struct {
	ContentType asn1.ObjectIdentifier
	Content     asn1.RawValue `asn1:"tag:0,explicit,optional"`
}

type p12MacData struct {
	Mac        p12DigestInfo
	MacSalt    []byte
	Iterations int `asn1:"optional,default:1"`
}

type p12DigestInfo struct {
	Algorithm pkix.AlgorithmIdentifier
	Digest    []byte
}

type p12EncryptedData struct {
	Version              int
	EncryptedContentInfo p12EncryptedContentInfo
}

type p12EncryptedContentInfo struct {
	ContentType                asn1.ObjectIdentifier
	ContentEncryptionAlgorithm pkix.AlgorithmIdentifier
	EncryptedContent           []byte `asn1:"tag:0,optional"`
}

type p12SafeBag struct {
	ID         asn1.ObjectIdentifier
	Value      asn1.RawValue  `asn1:"tag:0,explicit"`
	Attributes []p12Attribute `asn1:"set,optional"`
}

type p12Attribute struct {
	ID    asn1.ObjectIdentifier
	Value asn1.RawValue `asn1:"set"`
}

type p12CertBag struct {
	ID   asn1.ObjectIdentifier
	Data []byte `asn1:"tag:0,explicit"`
}

type p12PBEParams struct {
	Salt       []byte
	Iterations int
}

type p12PBES2Params struct {
	KDF    pkix.AlgorithmIdentifier
	Scheme pkix.AlgorithmIdentifier
}

type p12PBKDF2Params struct {
	Salt       asn1.RawValue
	Iterations int
	KeyLength  int                      `asn1:"optional"`
	PRF        pkix.AlgorithmIdentifier `asn1:"optional"`
}

type p12PBMAC1Params struct {
	KDF pkix.AlgorithmIdentifier
	MAC pkix.AlgorithmIdentifier
}

// p12Unmarshal is asn1.Unmarshal refusing trailing data.
func p12Unmarshal(in []byte, out any) error {
	rest, err := asn1.Unmarshal(in, out)
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		return errors.New("trailing data")
	}
	return nil
}

// p12Unsupported is the error of a store protected by an algorithm
// certstore does not implement: what says which.
func p12Unsupported(what string) error {
	return fmt.Errorf("%w: this PKCS12 store %s, which certstore does not read; convert it with a current keytool: keytool -importkeystore -srckeystore OLD -destkeystore NEW -deststoretype PKCS12", ErrUnsupportedFormat, what)
}

// p12Contents is what readPKCS12 finds.
type p12Contents struct {
	trusted []Entry
	keys    []KeyEntry
	// other describes what the store holds besides trusted certificates
	// and keys' chains (certificates that are neither, CRLs, secrets), for
	// the error of a writer that would drop it.
	other []string
	// derived are the aliases made up for entries without a friendly
	// name, which Java names otherwise ("1", "2", ...).
	derived []string
}

func readPKCS12(data []byte, password string) (*p12Contents, error) {
	var pfx p12PFX
	if err := p12Unmarshal(data, &pfx); err != nil {
		if _, cerr := x509.ParseCertificate(data); cerr == nil {
			return nil, fmt.Errorf("%w: this is a DER certificate, not a PKCS12 store", ErrUnsupportedFormat)
		}
		return nil, fmt.Errorf("%w: PKCS12: %v", ErrInvalidStore, err)
	}
	if pfx.Version != 3 {
		return nil, fmt.Errorf("%w: PKCS12 version %d, want 3", ErrUnsupportedFormat, pfx.Version)
	}
	if !pfx.AuthSafe.ContentType.Equal(oidData) {
		return nil, fmt.Errorf("%w: a PKCS12 store protected by a public key (content type %v), not by a password", ErrUnsupportedFormat, pfx.AuthSafe.ContentType)
	}
	var authSafe []byte
	if err := p12Unmarshal(pfx.AuthSafe.Content.Bytes, &authSafe); err != nil {
		return nil, fmt.Errorf("%w: PKCS12 content: %v", ErrInvalidStore, err)
	}
	var safes []p12ContentInfo
	if err := p12Unmarshal(authSafe, &safes); err != nil {
		return nil, fmt.Errorf("%w: PKCS12 authenticated safe: %v", ErrInvalidStore, err)
	}
	if err := p12CheckWork(&pfx, safes, password); err != nil {
		return nil, err
	}

	bmp, err := bmpPassword(password)
	if err != nil {
		return nil, err
	}
	if alg := pfx.MacData.Mac.Algorithm.Algorithm; len(alg) != 0 {
		ok, err := p12VerifyMAC(&pfx.MacData, authSafe, password, bmp)
		if err == nil && !ok && password == "" && !alg.Equal(oidPBMAC1) {
			// Some writers take an empty password as no bytes at all
			// rather than a lone terminator.
			bmp = nil
			ok, err = p12VerifyMAC(&pfx.MacData, authSafe, password, bmp)
		}
		switch {
		case err != nil:
			return nil, err
		case !ok:
			return nil, ErrWrongPassword
		}
	}

	var bags []p12SafeBag
	for i, ci := range safes {
		var content []byte
		switch {
		case ci.ContentType.Equal(oidData):
			if err := p12Unmarshal(ci.Content.Bytes, &content); err != nil {
				return nil, fmt.Errorf("%w: PKCS12 safe %d: %v", ErrInvalidStore, i+1, err)
			}
		case ci.ContentType.Equal(oidEncryptedData):
			var ed p12EncryptedData
			if err := p12Unmarshal(ci.Content.Bytes, &ed); err != nil {
				return nil, fmt.Errorf("%w: PKCS12 safe %d: %v", ErrInvalidStore, i+1, err)
			}
			content, err = p12Decrypt(ed.EncryptedContentInfo.ContentEncryptionAlgorithm, ed.EncryptedContentInfo.EncryptedContent, password, bmp)
			if err != nil {
				return nil, fmt.Errorf("PKCS12 safe %d: %w", i+1, err)
			}
		default:
			return nil, fmt.Errorf("%w: PKCS12 safe %d has content type %v (public-key encrypted?)", ErrUnsupportedFormat, i+1, ci.ContentType)
		}
		var sc []p12SafeBag
		if err := p12Unmarshal(content, &sc); err != nil {
			if ci.ContentType.Equal(oidEncryptedData) && len(pfx.MacData.Mac.Algorithm.Algorithm) == 0 {
				// Without a MAC, a wrong password shows only here.
				return nil, ErrWrongPassword
			}
			return nil, fmt.Errorf("%w: PKCS12 safe %d contents: %v", ErrInvalidStore, i+1, err)
		}
		bags = append(bags, sc...)
	}
	return p12Entries(bags)
}

// p12CheckWork checks every iteration count in the store, and the work
// of all its key derivations (see kdfBudget), before any derivation runs.
func p12CheckWork(pfx *p12PFX, safes []p12ContentInfo, password string) error {
	total := 0
	add := func(what string, iterations, passes int) error {
		if passes == 0 {
			return nil // an algorithm certstore refuses before deriving
		}
		if iterations < 1 || iterations > kdfLimit {
			return fmt.Errorf("%w: PKCS12 %s has %d iterations; Java accepts 1 to %d", ErrInvalidStore, what, iterations, kdfLimit)
		}
		if total += iterations * passes; total > kdfBudget {
			return fmt.Errorf("%w: PKCS12 store needs more than %d hash iterations of key derivation in all", ErrInvalidStore, kdfBudget)
		}
		return nil
	}
	if alg := pfx.MacData.Mac.Algorithm; len(alg.Algorithm) != 0 {
		if alg.Algorithm.Equal(oidPBMAC1) {
			_, k, prf, err := p12PBMAC1(alg)
			if err != nil {
				return err
			}
			if err := add("MAC", k.Iterations, 2*p12Blocks(k.KeyLength, prf().Size())); err != nil {
				return err
			}
		} else if h := p12Hash(alg.Algorithm); h != nil {
			// The MAC key is one hash output: one pass, and a second
			// when an empty password is retried as none.
			passes := 1
			if password == "" {
				passes = 2
			}
			if err := add("MAC", pfx.MacData.Iterations, passes); err != nil {
				return err
			}
		}
	}
	for i, ci := range safes {
		if !ci.ContentType.Equal(oidEncryptedData) {
			continue
		}
		var ed p12EncryptedData
		if err := p12Unmarshal(ci.Content.Bytes, &ed); err != nil {
			return fmt.Errorf("%w: PKCS12 safe %d: %v", ErrInvalidStore, i+1, err)
		}
		n, passes, err := p12DecryptWork(ed.EncryptedContentInfo.ContentEncryptionAlgorithm)
		if err != nil {
			return fmt.Errorf("PKCS12 safe %d: %w", i+1, err)
		}
		if err := add(fmt.Sprintf("safe %d", i+1), n, passes); err != nil {
			return err
		}
	}
	return nil
}

// p12Blocks is the number of hash outputs of size u that make n bytes.
func p12Blocks(n, u int) int { return (n + u - 1) / u }

// p12DecryptWork is the iteration count of decrypting with alg and the
// passes its key derivation makes; no passes for an algorithm p12Decrypt
// refuses.
func p12DecryptWork(alg pkix.AlgorithmIdentifier) (iterations, passes int, err error) {
	if alg.Algorithm.Equal(oidPBES2) {
		p, k, prf, err := p12PBES2(alg)
		var unsupported *errP12Unsupported
		switch {
		case errors.As(err, &unsupported):
			return 0, 0, nil
		case err != nil:
			return 0, 0, err
		}
		keyLen, _ := p12AESKeyLen(p.Scheme.Algorithm)
		if keyLen == 0 {
			return 0, 0, nil
		}
		// PBKDF2 computes one HMAC (two hashes) per iteration and block.
		return k.Iterations, 2 * p12Blocks(keyLen, prf().Size()), nil
	}
	c := p12PBECipher(alg.Algorithm)
	if c == nil {
		return 0, 0, nil
	}
	var p p12PBEParams
	if err := p12Unmarshal(alg.Parameters.FullBytes, &p); err != nil {
		return 0, 0, fmt.Errorf("%w: PBE parameters: %v", ErrInvalidStore, err)
	}
	// The key, then the 8-byte IV, in SHA-1 outputs of 20 bytes.
	return p.Iterations, p12Blocks(c.keyLen, sha1.Size) + 1, nil
}

// bmpPassword is password as PKCS12's MAC and legacy ciphers take it:
// UTF-16 big-endian with a terminating zero.
func bmpPassword(password string) ([]byte, error) {
	if !utf8.ValidString(password) {
		return nil, fmt.Errorf("%w: the password is not UTF-8 text", ErrWrongPassword)
	}
	u := utf16.Encode([]rune(password))
	b := make([]byte, 0, 2*len(u)+2)
	for _, c := range u {
		b = append(b, byte(c>>8), byte(c))
	}
	return append(b, 0, 0), nil
}

// p12Hash is the digest of p12Hashes whose OID is alg, or nil.
func p12Hash(alg asn1.ObjectIdentifier) func() hash.Hash {
	for _, h := range p12Hashes {
		if alg.Equal(h.digest) {
			return h.new
		}
	}
	return nil
}

// p12HMAC is the digest of p12Hashes whose HMAC's OID is alg, or nil.
func p12HMAC(alg asn1.ObjectIdentifier) func() hash.Hash {
	for _, h := range p12Hashes {
		if alg.Equal(h.hmac) {
			return h.new
		}
	}
	return nil
}

// p12VerifyMAC checks the store's MAC: HMAC with a key from the PKCS12
// key derivation of the BMP password (RFC 7292, appendix B), or PBMAC1.
// The error of a MAC it cannot check wraps ErrUnsupportedFormat or
// ErrInvalidStore.
func p12VerifyMAC(md *p12MacData, message []byte, password string, bmp []byte) (bool, error) {
	alg := md.Mac.Algorithm.Algorithm
	if alg.Equal(oidPBMAC1) {
		return p12VerifyPBMAC1(md, message, password)
	}
	for _, h := range p12Hashes {
		if !alg.Equal(h.digest) {
			continue
		}
		size := h.new().Size()
		key := p12KDF(h.new, h.blockSize, md.MacSalt, bmp, md.Iterations, 3, size)
		mac := hmac.New(h.new, key)
		mac.Write(message)
		return hmac.Equal(mac.Sum(nil), md.Mac.Digest), nil
	}
	return false, p12Unsupported(fmt.Sprintf("has a MAC of algorithm %v", alg))
}

// p12VerifyPBMAC1 checks a PBMAC1 MAC (RFC 9579): an HMAC keyed by PBKDF2
// of the password as UTF-8 (without PKCS12's BMP encoding, as RFC 9579's
// erratum 7974 and every writer have it), with the salt and iteration
// count of the PBKDF2 parameters; MacData's own are ignored.
func p12VerifyPBMAC1(md *p12MacData, message []byte, password string) (bool, error) {
	p, k, prf, err := p12PBMAC1(md.Mac.Algorithm)
	if err != nil {
		return false, err
	}
	newMAC := p12HMAC(p.MAC.Algorithm)
	if newMAC == nil {
		return false, p12Unsupported(fmt.Sprintf("has a PBMAC1 MAC of algorithm %v", p.MAC.Algorithm))
	}
	key, err := pbkdf2.Key(prf, password, k.Salt.Bytes, k.Iterations, k.KeyLength)
	if err != nil {
		return false, fmt.Errorf("%w: PBMAC1: %v", ErrUnsupportedFormat, err)
	}
	mac := hmac.New(newMAC, key)
	mac.Write(message)
	return hmac.Equal(mac.Sum(nil), md.Mac.Digest), nil
}

// p12PBMAC1 parses PBMAC1 parameters. RFC 9579 requires the PBKDF2 key
// length, and a key shorter than 20 bytes would let a forger guess it
// (OpenSSL's CVE-2026-34181); a key longer than 64 bytes, longer than any
// HMAC's output, only costs work.
func p12PBMAC1(alg pkix.AlgorithmIdentifier) (p12PBMAC1Params, p12PBKDF2Params, func() hash.Hash, error) {
	var p p12PBMAC1Params
	if err := p12Unmarshal(alg.Parameters.FullBytes, &p); err != nil {
		return p, p12PBKDF2Params{}, nil, fmt.Errorf("%w: PKCS12 PBMAC1 parameters do not parse: %v", ErrInvalidStore, err)
	}
	k, prf, err := p12PBKDF2(p.KDF)
	var unsupported *errP12Unsupported
	switch {
	case errors.As(err, &unsupported):
		return p, k, nil, p12Unsupported("has a PBMAC1 MAC that " + unsupported.what)
	case err != nil:
		return p, k, nil, err
	case k.KeyLength == 0:
		return p, k, nil, fmt.Errorf("%w: PKCS12 PBMAC1 parameters without the PBKDF2 key length RFC 9579 requires", ErrInvalidStore)
	case k.KeyLength < 20 || k.KeyLength > 64:
		return p, k, nil, fmt.Errorf("%w: PKCS12 PBMAC1 key of %d bytes, want 20 to 64", ErrInvalidStore, k.KeyLength)
	}
	return p, k, prf, nil
}

// errP12Unsupported is an algorithm that p12PBKDF2 or p12PBES2 does not
// implement, for the caller to name in its error.
type errP12Unsupported struct{ what string }

func (e *errP12Unsupported) Error() string { return e.what }

// p12PBKDF2 parses PBKDF2 parameters and finds their PRF (HMAC-SHA-1 when
// none is given). A KDF other than PBKDF2, a salt that is not an octet
// string or an unknown PRF is an *errP12Unsupported.
func p12PBKDF2(kdf pkix.AlgorithmIdentifier) (p12PBKDF2Params, func() hash.Hash, error) {
	var k p12PBKDF2Params
	if !kdf.Algorithm.Equal(oidPBKDF2) {
		return k, nil, &errP12Unsupported{fmt.Sprintf("uses the key derivation %v", kdf.Algorithm)}
	}
	if err := p12Unmarshal(kdf.Parameters.FullBytes, &k); err != nil {
		return k, nil, fmt.Errorf("%w: PBKDF2 parameters do not parse: %v", ErrInvalidStore, err)
	}
	if k.Salt.Tag != asn1.TagOctetString || k.Salt.Class != asn1.ClassUniversal || k.Salt.IsCompound {
		return k, nil, &errP12Unsupported{"uses a PBKDF2 salt that is not an octet string"}
	}
	prf := sha1.New
	if len(k.PRF.Algorithm) != 0 {
		if prf = p12HMAC(k.PRF.Algorithm); prf == nil {
			return k, nil, &errP12Unsupported{fmt.Sprintf("uses the PBKDF2 function %v", k.PRF.Algorithm)}
		}
	}
	return k, prf, nil
}

// p12PBES2 parses PBES2 parameters (RFC 8018).
func p12PBES2(alg pkix.AlgorithmIdentifier) (p12PBES2Params, p12PBKDF2Params, func() hash.Hash, error) {
	var p p12PBES2Params
	if err := p12Unmarshal(alg.Parameters.FullBytes, &p); err != nil {
		return p, p12PBKDF2Params{}, nil, fmt.Errorf("%w: PBES2 parameters do not parse: %v", ErrInvalidStore, err)
	}
	k, prf, err := p12PBKDF2(p.KDF)
	return p, k, prf, err
}

// p12AESKeyLen is the key length of the PBES2 cipher alg, or 0 for a
// cipher other than AES-CBC.
func p12AESKeyLen(alg asn1.ObjectIdentifier) (int, bool) {
	switch {
	case alg.Equal(oidAES128CBC):
		return 16, true
	case alg.Equal(oidAES192CBC):
		return 24, true
	case alg.Equal(oidAES256CBC):
		return 32, true
	}
	return 0, false
}

// p12PBECiphers are PKCS12's own password-based ciphers (RFC 7292,
// appendix C), whose key and IV come from the PKCS12 key derivation with
// SHA-1.
var p12PBECiphers = []p12PBECipherSpec{
	{oidPBEWithSHAAnd3DES, 24, des.NewTripleDESCipher},
	{oidPBEWithSHAAnd2DES, 16, func(k []byte) (cipher.Block, error) {
		// Two-key triple DES is K1, K2, K1.
		return des.NewTripleDESCipher(append(k[:16:16], k[:8]...))
	}},
	{oidPBEWithSHAAnd128BitRC2, 16, func(k []byte) (cipher.Block, error) { return rc2.New(k, 128) }},
	{oidPBEWithSHAAnd40BitRC2, 5, func(k []byte) (cipher.Block, error) { return rc2.New(k, 40) }},
}

// p12PBECipherSpec is a cipher of p12PBECiphers: keyLen bytes of key for
// newCipher.
type p12PBECipherSpec struct {
	oid       asn1.ObjectIdentifier
	keyLen    int
	newCipher func(key []byte) (cipher.Block, error)
}

// p12PBECipher is the entry of p12PBECiphers for alg, or nil.
func p12PBECipher(alg asn1.ObjectIdentifier) *p12PBECipherSpec {
	for i := range p12PBECiphers {
		if p12PBECiphers[i].oid.Equal(alg) {
			return &p12PBECiphers[i]
		}
	}
	return nil
}

// p12KDF is the PKCS12 key derivation (RFC 7292, appendix B.2) of size
// bytes for purpose id (1 key, 2 IV, 3 MAC key), where v is the hash's
// block size.
func p12KDF(newHash func() hash.Hash, v int, salt, password []byte, iterations int, id byte, size int) []byte {
	fill := func(p []byte) []byte {
		if len(p) == 0 {
			return nil
		}
		n := v * ((len(p) + v - 1) / v)
		out := make([]byte, n)
		for i := range out {
			out[i] = p[i%len(p)]
		}
		return out
	}
	d := bytes.Repeat([]byte{id}, v)
	in := append(fill(salt), fill(password)...)
	h := newHash()
	u := h.Size()
	out := make([]byte, 0, size+u)
	for len(out) < size {
		h.Reset()
		h.Write(d)
		h.Write(in)
		a := h.Sum(nil)
		for r := 1; r < iterations; r++ {
			h.Reset()
			h.Write(a)
			a = h.Sum(a[:0])
		}
		out = append(out, a...)
		if len(out) >= size {
			break
		}
		// I_j = (I_j + B + 1) mod 2^(8v) for each v-byte block of I,
		// where B is A repeated to v bytes.
		b := make([]byte, v)
		for i := range b {
			b[i] = a[i%len(a)]
		}
		for j := 0; j < len(in); j += v {
			carry := 1
			for k := v - 1; k >= 0; k-- {
				s := int(in[j+k]) + int(b[k]) + carry
				in[j+k] = byte(s)
				carry = s >> 8
			}
		}
	}
	return out[:size]
}

// p12Decrypt decrypts a password-encrypted safe: PBES2 (PBKDF2 and AES,
// as Java 12+, OpenSSL 3 and go-pkcs12's Modern2023 write) or one of
// PKCS12's own ciphers (p12PBECiphers: triple DES, as Java 11 wrote, and
// RC2, as Java 8 and OpenSSL 1.x did). Other ciphers are refused with an
// error wrapping ErrUnsupportedFormat.
func p12Decrypt(alg pkix.AlgorithmIdentifier, enc []byte, password string, bmp []byte) ([]byte, error) {
	var block cipher.Block
	var iv []byte
	if alg.Algorithm.Equal(oidPBES2) {
		p, k, prf, err := p12PBES2(alg)
		var unsupported *errP12Unsupported
		switch {
		case errors.As(err, &unsupported):
			return nil, p12Unsupported("encrypts its certificates with PBES2 that " + unsupported.what)
		case err != nil:
			return nil, err
		}
		keyLen, ok := p12AESKeyLen(p.Scheme.Algorithm)
		if !ok {
			return nil, p12Unsupported(fmt.Sprintf("encrypts its certificates with the PBES2 cipher %v", p.Scheme.Algorithm))
		}
		if k.KeyLength != 0 && k.KeyLength != keyLen {
			return nil, fmt.Errorf("%w: PBKDF2 key length %d for a %d-byte AES key", ErrInvalidStore, k.KeyLength, keyLen)
		}
		if err := p12Unmarshal(p.Scheme.Parameters.FullBytes, &iv); err != nil || len(iv) != aes.BlockSize {
			return nil, fmt.Errorf("%w: PBES2 AES IV is not %d bytes", ErrInvalidStore, aes.BlockSize)
		}
		key, err := pbkdf2.Key(prf, password, k.Salt.Bytes, k.Iterations, keyLen)
		if err != nil {
			return nil, fmt.Errorf("%w: PBKDF2: %v", ErrUnsupportedFormat, err)
		}
		if block, err = aes.NewCipher(key); err != nil {
			return nil, err
		}
	} else {
		c := p12PBECipher(alg.Algorithm)
		if c == nil {
			return nil, p12Unsupported(fmt.Sprintf("encrypts its certificates with %v", alg.Algorithm))
		}
		var p p12PBEParams
		if err := p12Unmarshal(alg.Parameters.FullBytes, &p); err != nil {
			return nil, fmt.Errorf("%w: PBE parameters: %v", ErrInvalidStore, err)
		}
		key := p12KDF(sha1.New, 64, p.Salt, bmp, p.Iterations, 1, c.keyLen)
		iv = p12KDF(sha1.New, 64, p.Salt, bmp, p.Iterations, 2, 8)
		var err error
		if block, err = c.newCipher(key); err != nil {
			return nil, err
		}
	}
	bs := block.BlockSize()
	if len(enc) == 0 || len(enc)%bs != 0 {
		return nil, fmt.Errorf("%w: encrypted safe of %d bytes, not a positive multiple of %d", ErrInvalidStore, len(enc), bs)
	}
	out := make([]byte, len(enc))
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(out, enc)
	pad := int(out[len(out)-1])
	if pad == 0 || pad > bs || !bytes.Equal(out[len(out)-pad:], bytes.Repeat([]byte{byte(pad)}, pad)) {
		// With a verified MAC, the password is right and the data bad;
		// without one, this is how a wrong password shows.
		return nil, ErrWrongPassword
	}
	return out[:len(out)-pad], nil
}

// p12Entries sorts a store's bags into trusted certificates and key
// entries with their chains. It takes time linear in the number of bags:
// certificates are found by local key id and by subject through maps.
func p12Entries(bags []p12SafeBag) (*p12Contents, error) {
	type p12Cert struct {
		cert    *x509.Certificate
		name    string
		keyID   []byte
		trusted bool
		used    bool
	}
	type p12Key struct {
		name  string
		keyID []byte
	}
	var certs []*p12Cert
	var keys []p12Key
	c := &p12Contents{}
	for i, bag := range bags {
		var name string
		var keyID []byte
		trusted := false
		for _, a := range bag.Attributes {
			switch {
			case a.ID.Equal(oidFriendlyName):
				n, err := p12FriendlyName(a.Value.Bytes)
				if err != nil {
					return nil, fmt.Errorf("%w: PKCS12 bag %d: friendly name: %v", ErrInvalidStore, i+1, err)
				}
				name = n
			case a.ID.Equal(oidLocalKeyID):
				var id []byte
				if _, err := asn1.Unmarshal(a.Value.Bytes, &id); err == nil {
					keyID = id
				}
			case a.ID.Equal(oidJavaTrusted):
				trusted = true
			}
		}
		switch {
		case bag.ID.Equal(oidCertBag):
			var cb p12CertBag
			if err := p12Unmarshal(bag.Value.Bytes, &cb); err != nil {
				return nil, fmt.Errorf("%w: PKCS12 certificate bag %d: %v", ErrInvalidStore, i+1, err)
			}
			if !cb.ID.Equal(oidX509Certificate) {
				c.other = append(c.other, fmt.Sprintf("a certificate of type %v", cb.ID))
				continue
			}
			cert, err := x509.ParseCertificate(cb.Data)
			if err != nil {
				return nil, fmt.Errorf("%w: PKCS12 certificate bag %d (%q): %v", ErrInvalidCertificate, i+1, name, err)
			}
			certs = append(certs, &p12Cert{cert: cert, name: name, keyID: keyID, trusted: trusted})
		case bag.ID.Equal(oidKeyBag), bag.ID.Equal(oidShroudedKeyBag):
			keys = append(keys, p12Key{name: name, keyID: keyID})
		default:
			c.other = append(c.other, fmt.Sprintf("a safe bag of type %v", bag.ID))
		}
	}

	seen := map[string]bool{}
	// The untrusted certificates: the first of each local key id, and
	// all of each subject in store order.
	byKeyID := map[string]*p12Cert{}
	bySubject := map[string][]*p12Cert{}
	for _, pc := range certs {
		if !pc.trusted {
			if _, ok := byKeyID[string(pc.keyID)]; !ok {
				byKeyID[string(pc.keyID)] = pc
			}
			bySubject[string(pc.cert.RawSubject)] = append(bySubject[string(pc.cert.RawSubject)], pc)
			continue
		}
		pc.used = true
		alias := strings.ToLower(pc.name)
		if alias == "" {
			alias = derivedAlias(pc.cert)
			c.derived = append(c.derived, alias)
		}
		if seen[alias] {
			return nil, fmt.Errorf("%w: PKCS12 store has two trusted certificates named %q", ErrDuplicateAlias, alias)
		}
		seen[alias] = true
		c.trusted = append(c.trusted, Entry{Alias: alias, Cert: pc.cert})
	}
	// issuer is the first unused untrusted certificate whose subject is
	// name. Used certificates never become unused, so each subject's list
	// is trimmed from the front at most once per certificate.
	issuer := func(name []byte) *p12Cert {
		list := bySubject[string(name)]
		if len(list) == 0 {
			return nil
		}
		for len(list) > 0 && list[0].used {
			list = list[1:]
		}
		bySubject[string(name)] = list
		if len(list) == 0 {
			return nil
		}
		return list[0]
	}
	for _, k := range keys {
		ke := KeyEntry{Alias: strings.ToLower(k.name)}
		var leaf *p12Cert
		if k.keyID != nil {
			leaf = byKeyID[string(k.keyID)]
		}
		// Java keeps a key's chain as certificates without attributes and
		// rebuilds it by issuer; so does this.
		for cur := leaf; cur != nil && len(ke.Chain) < 10; {
			cur.used = true
			ke.Chain = append(ke.Chain, cur.cert)
			if ke.Alias == "" {
				ke.Alias = strings.ToLower(cur.name)
			}
			next := (*p12Cert)(nil)
			if !bytes.Equal(cur.cert.RawIssuer, cur.cert.RawSubject) {
				next = issuer(cur.cert.RawIssuer)
			}
			cur = next
		}
		if ke.Alias == "" && len(ke.Chain) > 0 {
			ke.Alias = derivedAlias(ke.Chain[0])
		}
		if k.name == "" {
			c.derived = append(c.derived, ke.Alias)
		}
		c.keys = append(c.keys, ke)
	}
	for _, pc := range certs {
		if !pc.used {
			c.other = append(c.other, fmt.Sprintf("the certificate %q, neither trusted nor in a key's chain", pc.cert.Subject))
		}
	}
	return c, nil
}

// p12FriendlyName decodes the value of a friendlyName attribute: a
// BMPString (or, from some writers, a UTF8String).
func p12FriendlyName(set []byte) (string, error) {
	var v asn1.RawValue
	if _, err := asn1.Unmarshal(set, &v); err != nil {
		return "", err
	}
	switch {
	case v.Class == asn1.ClassUniversal && v.Tag == asn1.TagBMPString:
		if len(v.Bytes)%2 != 0 {
			return "", errors.New("odd-length BMPString")
		}
		u := make([]uint16, len(v.Bytes)/2)
		for i := range u {
			u[i] = uint16(v.Bytes[2*i])<<8 | uint16(v.Bytes[2*i+1])
		}
		return string(utf16.Decode(u)), nil
	case v.Class == asn1.ClassUniversal && v.Tag == asn1.TagUTF8String && utf8.Valid(v.Bytes):
		return string(v.Bytes), nil
	}
	return "", fmt.Errorf("of ASN.1 tag %d, not a string", v.Tag)
}
