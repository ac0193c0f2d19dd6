package certstore

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/pavlo-v-chernykh/keystore-go/v4"
	"software.sslmate.com/src/go-pkcs12"

	"github.com/directdl/directdl/internal/faultserver"
)

// ksTool returns the path of an external program the test needs. Without
// it the test is skipped, except in CI (env CI set), which must install it.
func ksTool(t testing.TB, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s not found, but CI must run this test: install the Debian package %s", name, pkg)
		}
		t.Skipf("%s not found (Debian package %s)", name, pkg)
	}
	return p
}

// ksKeytool runs keytool with args in dir and returns its output; it
// fails t if keytool fails.
func ksKeytool(t testing.TB, dir string, args ...string) string {
	t.Helper()
	kt := ksTool(t, "keytool", "openjdk-17-jre-headless")
	cmd := exec.Command(kt, append(slices.Clone(keytoolJVMFlags), args...)...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("keytool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

var (
	ksPKIOnce sync.Once
	ksPKIs    [2]*faultserver.PKI
	ksPKIErr  error
)

// ksTestPKI returns one of two test hierarchies (0 or 1), shared by the
// tests of this file.
func ksTestPKI(t testing.TB, i int) *faultserver.PKI {
	t.Helper()
	ksPKIOnce.Do(func() {
		for j := range ksPKIs {
			if ksPKIs[j], ksPKIErr = faultserver.NewPKI(0); ksPKIErr != nil {
				return
			}
		}
	})
	if ksPKIErr != nil {
		t.Fatal(ksPKIErr)
	}
	return ksPKIs[i]
}

// ksEntries are three entries of distinct certificates.
func ksEntries(t testing.TB) []Entry {
	p := ksTestPKI(t, 0)
	return []Entry{{"root", p.Root}, {"intermediate", p.Intermediate}, {"mirror-leaf", p.Leaf}}
}

// ksSummary lists entries as "alias=fingerprint", sorted.
func ksSummary(entries []Entry) []string {
	var out []string
	for _, e := range entries {
		out = append(out, e.Alias+"="+Fingerprint(e.Cert))
	}
	slices.Sort(out)
	return out
}

// keytoolListed parses `keytool -list` (without -rfc) into
// "alias=type=fingerprint" strings, sorted.
func keytoolListed(t testing.TB, out string) []string {
	t.Helper()
	re := regexp.MustCompile(`(?m)^(.+), [^,]+ \d+, \d+, (\w+),\s*\nCertificate fingerprint \(SHA-256\): ([0-9A-F:]+)`)
	var got []string
	for _, m := range re.FindAllStringSubmatch(out, -1) {
		got = append(got, m[1]+"="+m[2]+"="+strings.ToLower(strings.ReplaceAll(m[3], ":", "")))
	}
	slices.Sort(got)
	return got
}

func TestDetectFormat(t *testing.T) {
	t.Parallel()
	var jks, p12 bytes.Buffer
	if err := WriteJKS(&jks, ksEntries(t)[:1], "changeit"); err != nil {
		t.Fatal(err)
	}
	if err := WritePKCS12(&p12, ksEntries(t)[:1], "changeit"); err != nil {
		t.Fatal(err)
	}
	pemData := EncodePEM(ksTestPKI(t, 0).Root)
	for _, tc := range []struct {
		name    string
		data    []byte
		want    Format
		wantErr string
	}{
		{"jks", jks.Bytes(), FormatJKS, ""},
		{"pkcs12", p12.Bytes(), FormatPKCS12, ""},
		{"pem", pemData, FormatPEM, ""},
		{"pem after text", append([]byte("# alias: root\nSubject: CN=x\n\n"), pemData...), FormatPEM, ""},
		{"pem after blank lines", append([]byte("\r\n\t \n"), pemData...), FormatPEM, ""},
		{"jceks", []byte{0xce, 0xce, 0xce, 0xce, 0, 0, 0, 2}, 0, "keytool -importkeystore"},
		{"empty", nil, 0, "empty"},
		{"text starting with 0", []byte("0 certificates\n"), 0, "neither JKS"},
		{"binary before BEGIN", append([]byte{0, 1, 2}, pemData...), 0, "neither JKS"},
		{"garbage", []byte("hello"), 0, "neither JKS"},
	} {
		got, err := DetectFormat(tc.data)
		switch {
		case tc.wantErr == "" && (err != nil || got != tc.want):
			t.Errorf("%s: DetectFormat = %v, %v; want %v", tc.name, got, err, tc.want)
		case tc.wantErr != "" && (err == nil || !errors.Is(err, ErrUnsupportedFormat) || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%s: DetectFormat error %v, want ErrUnsupportedFormat saying %q", tc.name, err, tc.wantErr)
		}
	}
	for f, s := range map[Format]string{FormatJKS: "JKS", FormatPKCS12: "PKCS12", FormatPEM: "PEM", 0: "Format(0)"} {
		if f.String() != s {
			t.Errorf("Format(%d).String() = %q, want %q", int(f), f.String(), s)
		}
	}
}

// ksWriters are the three writers, as functions of the same shape.
var ksWriters = []struct {
	format Format
	write  func(w *bytes.Buffer, entries []Entry, password string) error
}{
	{FormatJKS, func(w *bytes.Buffer, e []Entry, p string) error { return WriteJKS(w, e, p) }},
	{FormatPKCS12, func(w *bytes.Buffer, e []Entry, p string) error { return WritePKCS12(w, e, p) }},
	{FormatPEM, func(w *bytes.Buffer, e []Entry, _ string) error { return WritePEM(w, e) }},
}

func TestWriteReadRoundTrip(t *testing.T) {
	t.Parallel()
	entries := ksEntries(t)
	for _, w := range ksWriters {
		for _, password := range []string{"changeit", "", "pässwörd"} {
			var b bytes.Buffer
			err := w.write(&b, entries, password)
			if w.format == FormatPKCS12 && password == "pässwörd" {
				// Java cannot open such a store.
				if !errors.Is(err, ErrUnsupportedFormat) {
					t.Errorf("PKCS12 with a non-ASCII password: %v, want ErrUnsupportedFormat", err)
				}
				continue
			}
			if err != nil {
				t.Fatalf("%v %q: %v", w.format, password, err)
			}
			got, f, err := ReadStore(b.Bytes(), password)
			if err != nil {
				t.Fatalf("%v %q: ReadStore: %v", w.format, password, err)
			}
			if f != w.format {
				t.Errorf("%v: ReadStore says %v", w.format, f)
			}
			if !slices.Equal(ksSummary(got), ksSummary(entries)) {
				t.Errorf("%v %q: read %q, want %q", w.format, password, ksSummary(got), ksSummary(entries))
			}
			if w.format == FormatPEM {
				continue
			}
			if _, _, err := ReadStore(b.Bytes(), password+"x"); !errors.Is(err, ErrWrongPassword) {
				t.Errorf("%v %q: ReadStore with a wrong password: %v, want ErrWrongPassword", w.format, password, err)
			}
		}
	}
}

func TestWriteJKSReproducible(t *testing.T) {
	t.Parallel()
	entries := ksEntries(t)
	var a, b bytes.Buffer
	if err := WriteJKS(&a, entries, "changeit"); err != nil {
		t.Fatal(err)
	}
	reversed := slices.Clone(entries)
	slices.Reverse(reversed)
	if err := WriteJKS(&b, reversed, "changeit"); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Error("WriteJKS wrote different bytes for the same entries")
	}
	// The entries are sorted, and their creation date is NotBefore.
	ks, err := loadJKS(a.Bytes(), "changeit")
	if err != nil {
		t.Fatal(err)
	}
	if got := ks.Aliases(); !slices.Equal(got, []string{"intermediate", "mirror-leaf", "root"}) {
		t.Errorf("aliases %q, want sorted", got)
	}
	e, err := ks.GetTrustedCertificateEntry("root")
	if err != nil {
		t.Fatal(err)
	}
	if !e.CreationTime.Equal(entries[0].Cert.NotBefore) || e.Certificate.Type != "X.509" {
		t.Errorf("entry written with date %v and type %q, want %v and X.509", e.CreationTime, e.Certificate.Type, entries[0].Cert.NotBefore)
	}
}

func TestWriteRefusesBadEntries(t *testing.T) {
	t.Parallel()
	root := ksTestPKI(t, 0).Root
	for _, tc := range []struct {
		name    string
		entries []Entry
		want    error
	}{
		{"uppercase", []Entry{{"MyCA", root}}, ErrInvalidAlias},
		{"empty alias", []Entry{{"", root}}, ErrInvalidAlias},
		{"line break", []Entry{{"a\nb", root}}, ErrInvalidAlias},
		{"space", []Entry{{" a", root}}, ErrInvalidAlias},
		{"duplicate", []Entry{{"a", root}, {"a", root}}, ErrDuplicateAlias},
		{"no certificate", []Entry{{"a", nil}}, ErrInvalidCertificate},
	} {
		for _, w := range ksWriters {
			var b bytes.Buffer
			if err := w.write(&b, tc.entries, "changeit"); !errors.Is(err, tc.want) {
				t.Errorf("%s, %v: %v, want %v", tc.name, w.format, err, tc.want)
			}
			if b.Len() != 0 {
				t.Errorf("%s, %v: wrote %d bytes despite the error", tc.name, w.format, b.Len())
			}
		}
	}
	// Aliases keytool makes but ValidateAlias refuses are fine in a file.
	var b bytes.Buffer
	if err := WriteJKS(&b, []Entry{{"my_ca.1", root}}, "changeit"); err != nil {
		t.Error(err)
	}
	if err := WriteJKS(&b, []Entry{{"a", root}}, "ĉ"); !errors.Is(err, ErrUnsupportedFormat) {
		t.Errorf("JKS password beyond Latin-1: %v, want ErrUnsupportedFormat", err)
	}
}

func TestReadPEMStore(t *testing.T) {
	t.Parallel()
	p := ksTestPKI(t, 0)
	block := func(c *x509.Certificate) string { return string(EncodePEM(c)) }
	key := "-----BEGIN PRIVATE KEY-----\nMAA=\n-----END PRIVATE KEY-----\n"
	for _, tc := range []struct {
		name, data string
		want       []Entry
		wantErr    error
	}{
		{"aliases", "# alias: one\n" + block(p.Root) + "\n# alias: two\n" + block(p.Intermediate),
			[]Entry{{"one", p.Root}, {"two", p.Intermediate}}, nil},
		{"last alias line counts", "# alias: old\n# alias:  new \n" + block(p.Root),
			[]Entry{{"new", p.Root}}, nil},
		{"derived", "subject=CN=x\n" + block(p.Root) + block(p.Leaf),
			[]Entry{{derivedAlias(p.Root), p.Root}, {derivedAlias(p.Leaf), p.Leaf}}, nil},
		{"repeated without aliases", block(p.Root) + block(p.Root), []Entry{{derivedAlias(p.Root), p.Root}}, nil},
		{"key skipped", key + "# alias: r\n" + block(p.Root), []Entry{{"r", p.Root}}, nil},
		{"duplicate alias", "# alias: a\n" + block(p.Root) + "# alias: a\n" + block(p.Leaf), nil, ErrDuplicateAlias},
		{"only a key", key, nil, ErrInvalidCertificate},
		{"openssl trusted", "-----BEGIN TRUSTED CERTIFICATE-----\nMAA=\n-----END TRUSTED CERTIFICATE-----\n", nil, ErrInvalidCertificate},
		{"truncated", block(p.Root)[:100], nil, ErrInvalidCertificate},
		{"not a certificate", "-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n", nil, ErrInvalidCertificate},
	} {
		got, f, err := ReadStore([]byte(tc.data), "ignored")
		if tc.wantErr != nil {
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("%s: error %v, want %v", tc.name, err, tc.wantErr)
			}
			continue
		}
		if err != nil || f != FormatPEM {
			t.Errorf("%s: %v, %v", tc.name, f, err)
			continue
		}
		if !slices.Equal(ksSummary(got), ksSummary(tc.want)) {
			t.Errorf("%s: %q, want %q", tc.name, ksSummary(got), ksSummary(tc.want))
		}
	}
}

func TestReadStoreHostileJKS(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	if err := WriteJKS(&b, ksEntries(t), "changeit"); err != nil {
		t.Fatal(err)
	}
	good := b.Bytes()
	patch := func(off int, v uint32) []byte {
		d := bytes.Clone(good)
		binary.BigEndian.PutUint32(d[off:], v)
		return d
	}
	// The first entry: tag at 12, alias length at 16 ("intermediate", 12
	// bytes), date at 30, type length at 38 ("X.509", 5 bytes), then the
	// certificate length at 45.
	if binary.BigEndian.Uint16(good[16:]) != 12 || string(good[18:30]) != "intermediate" {
		t.Fatalf("unexpected JKS layout: % x", good[:48])
	}
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"4G entries", patch(8, 0xFFFFFFFF)},
		{"4G certificate", patch(45, 0xFFFFFFF0)},
		{"10-byte certificate", patch(45, 10)},
		{"unknown tag", patch(12, 3)},
		{"version 7", patch(4, 7)},
		{"truncated", good[:len(good)-21]},
		{"header only", good[:12]},
	} {
		_, _, err := ReadStore(tc.data, "changeit")
		if !errors.Is(err, ErrInvalidStore) {
			t.Errorf("%s: %v, want ErrInvalidStore", tc.name, err)
		}
	}
	// A private key entry claiming 4G certificates in its chain.
	key := []byte{0xfe, 0xed, 0xfe, 0xed, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 1, 0, 1, 'k', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xAA, 0xFF, 0xFF, 0xFF, 0xFF}
	key = append(key, make([]byte, 40)...)
	if _, _, err := ReadStore(key, "x"); !errors.Is(err, ErrInvalidStore) {
		t.Errorf("4G chain: %v, want ErrInvalidStore", err)
	}
	// A chain of 65 empty certificates, which the data could hold:
	// keystore-go would allocate 40 bytes for each 6 bytes of it.
	chain := []byte{0xfe, 0xed, 0xfe, 0xed, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 1, 0, 1, 'k', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xAA, 0, 0, 0, maxJKSChain + 1}
	chain = append(chain, make([]byte, 6*(maxJKSChain+1)+20)...)
	if _, _, err := ReadStore(chain, "x"); !errors.Is(err, ErrInvalidStore) || !strings.Contains(err.Error(), "chain of 65") {
		t.Errorf("chain of %d: %v, want ErrInvalidStore", maxJKSChain+1, err)
	}
	if _, _, err := ReadStore(make([]byte, MaxStoreSize+1), "x"); !errors.Is(err, ErrInvalidStore) {
		t.Errorf("oversized store: %v, want ErrInvalidStore", err)
	}
}

func TestReadStoreHostilePKCS12(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	if err := WritePKCS12(&b, ksEntries(t), "changeit"); err != nil {
		t.Fatal(err)
	}
	var pfx p12PFX
	if err := p12Unmarshal(b.Bytes(), &pfx); err != nil {
		t.Fatal(err)
	}
	pfx.MacData.Iterations = kdfLimit + 1
	data, err := asn1.Marshal(pfx)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := ReadStore(data, "changeit"); !errors.Is(err, ErrInvalidStore) || !strings.Contains(err.Error(), "iterations") {
		t.Errorf("MAC with %d iterations: %v, want ErrInvalidStore about iterations", kdfLimit+1, err)
	}
	pfx.MacData.Iterations = 0
	if data, err = asn1.Marshal(pfx); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ReadStore(data, "changeit"); !errors.Is(err, ErrInvalidStore) {
		t.Errorf("MAC with 0 iterations: %v, want ErrInvalidStore", err)
	}
	// A DER certificate is not taken for a store.
	if _, _, err := ReadStore(ksTestPKI(t, 0).Root.Raw, ""); !errors.Is(err, ErrUnsupportedFormat) || !strings.Contains(err.Error(), "DER certificate") {
		t.Errorf("DER certificate: %v", err)
	}
	if _, _, err := ReadStore(append([]byte{0x30, 0x82, 0x10, 0}, make([]byte, 50)...), ""); !errors.Is(err, ErrInvalidStore) {
		t.Errorf("truncated DER: %v, want ErrInvalidStore", err)
	}
}

// TestReadPKCS12Encoders reads the stores go-pkcs12's other encoders
// write, with their friendly names as aliases: SHA-1 MACs and triple DES
// (LegacyDES), RC2 (LegacyRC2), PBMAC1 (Modern2026) and no protection at
// all (Passwordless).
func TestReadPKCS12Encoders(t *testing.T) {
	t.Parallel()
	entries := ksEntries(t)
	list := make([]pkcs12.TrustStoreEntry, len(entries))
	for i, e := range entries {
		list[i] = pkcs12.TrustStoreEntry{Cert: e.Cert, FriendlyName: e.Alias}
	}
	for _, tc := range []struct {
		name     string
		enc      *pkcs12.Encoder
		password string
		want     []Entry
	}{
		{"LegacyDES", pkcs12.LegacyDES, "changeit", entries},
		{"LegacyRC2", pkcs12.LegacyRC2, "changeit", entries},
		{"Modern2026", pkcs12.Modern2026, "changeit", entries},
		{"Modern2026, empty password", pkcs12.Modern2026, "", entries},
		{"Passwordless", pkcs12.Passwordless, "", entries},
	} {
		data, err := tc.enc.EncodeTrustStoreEntries(list, tc.password)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		got, _, err := ReadStore(data, tc.password)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if !slices.Equal(ksSummary(got), ksSummary(tc.want)) {
			t.Errorf("%s: %q, want %q", tc.name, ksSummary(got), ksSummary(tc.want))
		}
		if tc.password != "" {
			if _, _, err := ReadStore(data, "wrong"); !errors.Is(err, ErrWrongPassword) {
				t.Errorf("%s with a wrong password: %v, want ErrWrongPassword", tc.name, err)
			}
		}
	}
	// A store of a key and its chain (as openssl pkcs12 -export writes)
	// has no trusted entry, and one key entry.
	p := ksTestPKI(t, 0)
	data, err := pkcs12.Modern2023.Encode(p.LeafKey, p.Leaf, []*x509.Certificate{p.Intermediate}, "changeit")
	if err != nil {
		t.Fatal(err)
	}
	c, err := ReadStoreContents(data, "changeit")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Trusted) != 0 || len(c.Keys) != 1 || len(c.Keys[0].Chain) != 2 ||
		!c.Keys[0].Chain[0].Equal(p.Leaf) || !c.Keys[0].Chain[1].Equal(p.Intermediate) {
		t.Errorf("key store read as %+v", c)
	}
	if got := c.Certificates(); len(got) != 2 {
		t.Errorf("Certificates() gives %d, want 2", len(got))
	}
}

// TestKeytoolReadsWrittenStores checks with keytool -list that the
// stores WriteJKS and WritePKCS12 write hold the entries as
// trustedCertEntry under their aliases, with the right fingerprints, also
// with a non-ASCII password.
func TestKeytoolReadsWrittenStores(t *testing.T) {
	ksTool(t, "keytool", "openjdk-17-jre-headless")
	t.Parallel()
	dir := t.TempDir()
	entries := ksEntries(t)
	var want []string
	for _, e := range entries {
		want = append(want, e.Alias+"=trustedCertEntry="+Fingerprint(e.Cert))
	}
	slices.Sort(want)
	for _, w := range ksWriters[:2] {
		for _, password := range []string{"changeit", "pässwörd"} {
			if w.format == FormatPKCS12 && password != "changeit" {
				continue // Java 17's PKCS12 takes ASCII passwords only
			}
			var b bytes.Buffer
			if err := w.write(&b, entries, password); err != nil {
				t.Fatal(err)
			}
			name := filepath.Join(dir, w.format.String()+".store")
			if err := os.WriteFile(name, b.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			out := ksKeytool(t, dir, "-list", "-keystore", name, "-storepass", password)
			if !strings.Contains(out, "Keystore type: "+w.format.String()) {
				t.Errorf("%v: keytool says %q", w.format, out)
			}
			if got := keytoolListed(t, out); !slices.Equal(got, want) {
				t.Errorf("%v %q: keytool lists %q, want %q", w.format, password, got, want)
			}
		}
	}
}

// TestReadKeytoolStores reads stores keytool made, with a private key
// entry and trusted certificates, in both types.
func TestReadKeytoolStores(t *testing.T) {
	ksTool(t, "keytool", "openjdk-17-jre-headless")
	t.Parallel()
	dir := t.TempDir()
	p := ksTestPKI(t, 0)
	if err := p.WritePEM(dir); err != nil {
		t.Fatal(err)
	}
	for _, typ := range []string{"JKS", "PKCS12"} {
		t.Run(typ, func(t *testing.T) {
			t.Parallel()
			store := "ks." + typ
			ksKeytool(t, dir, "-genkeypair", "-keyalg", "EC", "-groupname", "secp256r1", "-alias", "agent", "-dname", "CN=agent-"+typ,
				"-validity", "2", "-keystore", store, "-storetype", typ, "-storepass", "changeit", "-keypass", "changeit")
			ksKeytool(t, dir, "-importcert", "-noprompt", "-alias", "Lab-Root", "-file", "root.pem", "-keystore", store, "-storepass", "changeit")
			ksKeytool(t, dir, "-importcert", "-noprompt", "-alias", "inter", "-file", "intermediate.pem", "-keystore", store, "-storepass", "changeit")
			data, err := os.ReadFile(filepath.Join(dir, store))
			if err != nil {
				t.Fatal(err)
			}
			c, err := ReadStoreContents(data, "changeit")
			if err != nil {
				t.Fatal(err)
			}
			if c.Format.String() != typ {
				t.Errorf("format %v, want %s", c.Format, typ)
			}
			// keytool lowercases aliases.
			want := []string{"inter=" + Fingerprint(p.Intermediate), "lab-root=" + Fingerprint(p.Root)}
			if got := ksSummary(c.Trusted); !slices.Equal(got, want) {
				t.Errorf("trusted %q, want %q", got, want)
			}
			if len(c.Keys) != 1 || c.Keys[0].Alias != "agent" || len(c.Keys[0].Chain) != 1 || c.Keys[0].Chain[0].Subject.CommonName != "agent-"+typ {
				t.Errorf("keys %+v, want agent with its certificate", c.Keys)
			}
			if _, _, err := ReadStore(data, "wrongpass"); !errors.Is(err, ErrWrongPassword) {
				t.Errorf("wrong password: %v", err)
			}
		})
	}
}

// TestP12KDF checks the PKCS12 key derivation against the vectors of
// golang.org/x/crypto/pkcs12 (kept by go-pkcs12): 24 bytes, longer than
// one SHA-1 output, so the block arithmetic of RFC 7292 B.2 step 6C runs,
// once with a result that starts with a zero byte.
func TestP12KDF(t *testing.T) {
	t.Parallel()
	sesame, _ := bmpPassword("sesame")
	for _, tc := range []struct {
		salt, password []byte
		want           string
	}{
		{[]byte("\xff\xff\xff\xff\xff\xff\xff\xff"), sesame, "\x7c\xd9\xfd\x3e\x2b\x3b\xe7\x69\x1a\x44\xe3\xbe\xf0\xf9\xea\x0f\xb9\xb8\x97\xd4\xe3\x25\xd9\xd1"},
		{[]byte("\xf3\x7e\x05\xb5\x18\x32\x4b\x4b"), []byte{0, 0}, "\x00\xf7\x59\xff\x47\xd1\x4d\xd0\x36\x65\xd5\x94\x3c\xb3\xc4\xa3\x9a\x25\x55\xc0\x2a\xed\x66\xe1"},
	} {
		if got := p12KDF(sha1.New, 64, tc.salt, tc.password, 2048, 1, 24); string(got) != tc.want {
			t.Errorf("p12KDF(salt % x) = % x, want % x", tc.salt, got, tc.want)
		}
	}
}

// TestReadJKSCertificateTypes reads entries of type "X509", as
// keystore-go's README and trust-manager write them, and refuses others.
func TestReadJKSCertificateTypes(t *testing.T) {
	t.Parallel()
	root := ksTestPKI(t, 0).Root
	for _, tc := range []struct {
		typ string
		ok  bool
	}{{"X509", true}, {"X.509", true}, {"PGP", false}} {
		ks := keystore.New()
		if err := ks.SetTrustedCertificateEntry("root", keystore.TrustedCertificateEntry{
			CreationTime: root.NotBefore,
			Certificate:  keystore.Certificate{Type: tc.typ, Content: root.Raw},
		}); err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		if err := ks.Store(&b, []byte("changeit")); err != nil {
			t.Fatal(err)
		}
		got, _, err := ReadStore(b.Bytes(), "changeit")
		switch {
		case tc.ok && (err != nil || len(got) != 1 || !got[0].Cert.Equal(root)):
			t.Errorf("type %q: %v, %v", tc.typ, got, err)
		case !tc.ok && !errors.Is(err, ErrInvalidCertificate):
			t.Errorf("type %q: %v, want ErrInvalidCertificate", tc.typ, err)
		}
	}
}

// PKCS12 stores built bag by bag, for the tests of many bags.

// ksP12Set is an attribute value: a SET holding the DER value v.
func ksP12Set(v []byte) asn1.RawValue {
	return asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSet, IsCompound: true, Bytes: v}
}

// ksP12Explicit is the [0] EXPLICIT wrapping of the DER value v.
func ksP12Explicit(v []byte) asn1.RawValue {
	return asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: v}
}

// ksP12Attrs are the attributes of a bag: a friendly name (a BMPString)
// when name is not empty, a local key id when keyID is not nil, and
// Java's trusted certificate attribute when trusted.
func ksP12Attrs(t testing.TB, name string, keyID []byte, trusted bool) []p12Attribute {
	t.Helper()
	var attrs []p12Attribute
	if name != "" {
		var bmp []byte
		for _, c := range utf16.Encode([]rune(name)) {
			bmp = append(bmp, byte(c>>8), byte(c))
		}
		v, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagBMPString, Bytes: bmp})
		if err != nil {
			t.Fatal(err)
		}
		attrs = append(attrs, p12Attribute{ID: oidFriendlyName, Value: ksP12Set(v)})
	}
	if keyID != nil {
		v, err := asn1.Marshal(keyID)
		if err != nil {
			t.Fatal(err)
		}
		attrs = append(attrs, p12Attribute{ID: oidLocalKeyID, Value: ksP12Set(v)})
	}
	if trusted {
		v, err := asn1.Marshal(asn1.ObjectIdentifier{2, 5, 29, 37, 0}) // anyExtendedKeyUsage, as Java writes
		if err != nil {
			t.Fatal(err)
		}
		attrs = append(attrs, p12Attribute{ID: oidJavaTrusted, Value: ksP12Set(v)})
	}
	return attrs
}

// ksP12CertBag is a certificate bag holding c.
func ksP12CertBag(t testing.TB, c *x509.Certificate, name string, keyID []byte, trusted bool) p12SafeBag {
	t.Helper()
	cb, err := asn1.Marshal(p12CertBag{ID: oidX509Certificate, Data: c.Raw})
	if err != nil {
		t.Fatal(err)
	}
	return p12SafeBag{ID: oidCertBag, Value: ksP12Explicit(cb), Attributes: ksP12Attrs(t, name, keyID, trusted)}
}

// ksP12KeyBag is a key bag; its content (a NULL) is never read.
func ksP12KeyBag(t testing.TB, name string, keyID []byte) p12SafeBag {
	t.Helper()
	null, _ := asn1.Marshal(asn1.NullRawValue)
	return p12SafeBag{ID: oidKeyBag, Value: ksP12Explicit(null), Attributes: ksP12Attrs(t, name, keyID, false)}
}

// ksP12Store is a PKCS12 store of one unencrypted safe holding bags and
// no MAC, so that it reads with any password.
func ksP12Store(t testing.TB, bags []p12SafeBag) []byte {
	t.Helper()
	sc, err := asn1.Marshal(bags)
	if err != nil {
		t.Fatal(err)
	}
	oct, _ := asn1.Marshal(sc)
	safes, _ := asn1.Marshal([]p12ContentInfo{{ContentType: oidData, Content: ksP12Explicit(oct)}})
	authSafe, _ := asn1.Marshal(safes)
	data, err := asn1.Marshal(struct {
		Version  int
		AuthSafe p12ContentInfo
	}{3, p12ContentInfo{ContentType: oidData, Content: ksP12Explicit(authSafe)}})
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// ksManyBags is a store of keys key-0, key-1, ... each with its leaf
// (matched by local key id) and its own copy of the leaves' issuer, as
// Java writes each key's chain, and trusted certificates ca-0, ca-1, ...
// It returns the leaves and the issuer too.
func ksManyBags(t testing.TB, keys, trusted int) (data []byte, leaves, cas []*x509.Certificate, issuer *x509.Certificate) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	mk := func(serial int64, cn string, parent *x509.Certificate, isCA bool) *x509.Certificate {
		tmpl := &x509.Certificate{
			SerialNumber:          big.NewInt(serial),
			Subject:               pkix.Name{CommonName: cn},
			NotBefore:             time.Now().Add(-time.Hour),
			NotAfter:              time.Now().Add(time.Hour),
			BasicConstraintsValid: true,
			IsCA:                  isCA,
		}
		if parent == nil {
			parent = tmpl
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, priv)
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	root := mk(1, "many-bags root", nil, true)
	issuer = mk(2, "many-bags issuer", root, true)
	var bags []p12SafeBag
	for i := range keys {
		leaf := mk(int64(100+i), fmt.Sprintf("leaf %d", i), issuer, false)
		leaves = append(leaves, leaf)
		id := []byte(fmt.Sprintf("Time %d", i))
		bags = append(bags, ksP12KeyBag(t, fmt.Sprintf("key-%d", i), id),
			ksP12CertBag(t, leaf, fmt.Sprintf("key-%d", i), id, false),
			ksP12CertBag(t, issuer, "", nil, false))
	}
	for i := range trusted {
		ca := mk(int64(1_000_000+i), fmt.Sprintf("ca %d", i), nil, true)
		cas = append(cas, ca)
		bags = append(bags, ksP12CertBag(t, ca, fmt.Sprintf("ca-%d", i), nil, true))
	}
	return ksP12Store(t, bags), leaves, cas, issuer
}

// TestReadPKCS12ManyBags reads a store of thousands of bags: every key
// gets its own leaf and issuer, every trusted certificate its alias, and
// nothing is left over.
func TestReadPKCS12ManyBags(t *testing.T) {
	t.Parallel()
	const keys, trusted = 2000, 1000
	data, leaves, cas, issuer := ksManyBags(t, keys, trusted)
	c, err := readPKCS12(data, "any")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.other) != 0 {
		t.Errorf("left over: %q", c.other[:min(len(c.other), 3)])
	}
	if len(c.trusted) != trusted {
		t.Fatalf("%d trusted entries, want %d", len(c.trusted), trusted)
	}
	for i, e := range c.trusted {
		if want := fmt.Sprintf("ca-%d", i); e.Alias != want || !e.Cert.Equal(cas[i]) {
			t.Fatalf("trusted entry %d is %q (%s), want %q (%s)", i, e.Alias, e.Cert.Subject, want, cas[i].Subject)
		}
	}
	if len(c.keys) != keys {
		t.Fatalf("%d keys, want %d", len(c.keys), keys)
	}
	for i, k := range c.keys {
		if want := fmt.Sprintf("key-%d", i); k.Alias != want || len(k.Chain) != 2 || !k.Chain[0].Equal(leaves[i]) || !k.Chain[1].Equal(issuer) {
			t.Fatalf("key %d is %q with a chain of %d, want %q with its leaf and issuer", i, k.Alias, len(k.Chain), want)
		}
	}
}

// BenchmarkReadStorePKCS12ManyBags reads stores of many bags: "keys" is
// ksManyBags with 2000 keys and 1000 trusted certificates (1.5 MB);
// "hostile" is 15,000 certificate bags that no key matches and 50,000
// key bags (7.5 MB, under MaxStoreSize), which a reader that matches every key
// against every certificate takes quadratic time over.
func BenchmarkReadStorePKCS12ManyBags(b *testing.B) {
	keyed, _, _, _ := ksManyBags(b, 2000, 1000)
	_, _, _, c := ksManyBags(b, 0, 0) // a small certificate
	var bags []p12SafeBag
	for range 15000 {
		bags = append(bags, ksP12CertBag(b, c, "", []byte{1}, false))
	}
	for range 50000 {
		bags = append(bags, ksP12KeyBag(b, "", []byte{2}))
	}
	hostile := ksP12Store(b, bags)
	for _, bc := range []struct {
		name string
		data []byte
	}{{"keys", keyed}, {"hostile", hostile}} {
		b.Run(bc.name, func(b *testing.B) {
			if len(bc.data) > MaxStoreSize {
				b.Fatalf("store of %d bytes, more than MaxStoreSize", len(bc.data))
			}
			b.SetBytes(int64(len(bc.data)))
			for b.Loop() {
				if _, err := ReadStoreContents(bc.data, "any"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestReadLegacyPKCS12Tools reads, with their aliases, the PKCS12 stores
// of the legacy ciphers as the tools write them: keytool with Java 8's
// protection (RC2-40 certificates and a SHA-1 MAC, which Java 17's keytool
// keeps when it rewrites such a store), RC2-128 or triple DES; and
// openssl pkcs12 -legacy (OpenSSL 1.x's default) with each of its
// certificate ciphers, two-key triple DES among them.
func TestReadLegacyPKCS12Tools(t *testing.T) {
	p := ksTestPKI(t, 0)
	dir := t.TempDir()
	if err := p.WritePEM(dir); err != nil {
		t.Fatal(err)
	}
	t.Run("keytool", func(t *testing.T) {
		ksTool(t, "keytool", "openjdk-17-jre-headless")
		t.Parallel()
		for _, alg := range []string{"PBEWithSHA1AndRC2_40", "PBEWithSHA1AndRC2_128", "PBEWithSHA1AndDESede"} {
			store := alg + ".p12"
			props := []string{"-J-Dkeystore.pkcs12.certProtectionAlgorithm=" + alg, "-J-Dkeystore.pkcs12.macAlgorithm=HmacPBESHA1"}
			ksKeytool(t, dir, append(props, "-genkeypair", "-keyalg", "EC", "-groupname", "secp256r1", "-alias", "agent", "-dname", "CN=agent",
				"-validity", "2", "-keystore", store, "-storetype", "PKCS12", "-storepass", "changeit")...)
			ksKeytool(t, dir, append(props, "-importcert", "-noprompt", "-alias", "Lab-Root", "-file", "root.pem", "-keystore", store, "-storepass", "changeit")...)
			ksKeytool(t, dir, append(props, "-importcert", "-noprompt", "-alias", "inter", "-file", "intermediate.pem", "-keystore", store, "-storepass", "changeit")...)
			data := ksReadFile(t, filepath.Join(dir, store))
			c, err := ReadStoreContents(data, "changeit")
			if err != nil {
				t.Errorf("%s: %v", alg, err)
				continue
			}
			want := []string{"inter=" + Fingerprint(p.Intermediate), "lab-root=" + Fingerprint(p.Root)}
			if got := ksSummary(c.Trusted); !slices.Equal(got, want) {
				t.Errorf("%s: trusted %q, want %q", alg, got, want)
			}
			if len(c.Keys) != 1 || c.Keys[0].Alias != "agent" || len(c.Keys[0].Chain) != 1 {
				t.Errorf("%s: keys %+v, want agent with its certificate", alg, c.Keys)
			}
			if _, err := ReadStoreContents(data, "wrong"); !errors.Is(err, ErrWrongPassword) {
				t.Errorf("%s with a wrong password: %v, want ErrWrongPassword", alg, err)
			}
		}
	})
	t.Run("openssl", func(t *testing.T) {
		openssl := ksTool(t, "openssl", "openssl")
		t.Parallel()
		for _, pbe := range []string{"PBE-SHA1-RC2-40", "PBE-SHA1-RC2-128", "PBE-SHA1-2DES", "PBE-SHA1-3DES"} {
			store := filepath.Join(dir, pbe+".p12")
			out, err := exec.Command(openssl, "pkcs12", "-export", "-legacy", "-certpbe", pbe, "-macalg", "sha1", "-name", "Agent",
				"-inkey", filepath.Join(dir, "leaf-key.pem"), "-in", filepath.Join(dir, "chain.pem"),
				"-passout", "pass:changeit", "-out", store).CombinedOutput()
			if err != nil {
				t.Fatalf("openssl pkcs12 -export -certpbe %s: %v\n%s", pbe, err, out)
			}
			c, err := ReadStoreContents(ksReadFile(t, store), "changeit")
			if err != nil {
				t.Errorf("%s: %v", pbe, err)
				continue
			}
			if len(c.Trusted) != 0 || len(c.Keys) != 1 || c.Keys[0].Alias != "agent" || len(c.Keys[0].Chain) != 2 ||
				!c.Keys[0].Chain[0].Equal(p.Leaf) || !c.Keys[0].Chain[1].Equal(p.Intermediate) {
				t.Errorf("%s: read as %+v, want the key agent with the leaf and the intermediate", pbe, c)
			}
			if _, err := ReadStoreContents(ksReadFile(t, store), "wrong"); !errors.Is(err, ErrWrongPassword) {
				t.Errorf("%s with a wrong password: %v, want ErrWrongPassword", pbe, err)
			}
		}
	})
}

// TestReadPKCS12PBMAC1Vectors reads the PBMAC1 stores of RFC 9579,
// appendix A (password "1234"): A.1 to A.3 are good (HMAC-SHA-256 and
// -512 over PBKDF2 with SHA-256 and -512), A.4 and A.5 have a wrong
// iteration count and a wrong salt, so their MAC fails as with a wrong
// password, and A.6 lacks the key length RFC 9579 requires.
func TestReadPKCS12PBMAC1Vectors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		file string
		want error
	}{
		{"rfc9579-a1.b64", nil},
		{"rfc9579-a2.b64", nil},
		{"rfc9579-a3.b64", nil},
		{"rfc9579-a4.b64", ErrWrongPassword},
		{"rfc9579-a5.b64", ErrWrongPassword},
		{"rfc9579-a6.b64", ErrInvalidStore},
	} {
		b64 := ksReadFile(t, filepath.Join("testdata", "pkcs12", tc.file))
		data, err := base64.StdEncoding.DecodeString(string(bytes.TrimSpace(b64)))
		if err != nil {
			t.Fatalf("%s: %v", tc.file, err)
		}
		c, err := ReadStoreContents(data, "1234")
		if tc.want != nil {
			if !errors.Is(err, tc.want) {
				t.Errorf("%s: %v, want %v", tc.file, err, tc.want)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.file, err)
			continue
		}
		if len(c.Keys) != 1 || len(c.Keys[0].Chain) != 1 || len(c.Trusted) != 0 {
			t.Errorf("%s: read as %+v, want a key and its certificate", tc.file, c)
		}
		if _, err := ReadStoreContents(data, "4321"); !errors.Is(err, ErrWrongPassword) {
			t.Errorf("%s with a wrong password: %v, want ErrWrongPassword", tc.file, err)
		}
	}
}

// ksRewriteMAC returns data, a store, with its MAC algorithm changed by
// edit.
func ksRewriteMAC(t *testing.T, data []byte, edit func(p *p12PBMAC1Params, k *p12PBKDF2Params)) []byte {
	t.Helper()
	var pfx p12PFX
	if err := p12Unmarshal(data, &pfx); err != nil {
		t.Fatal(err)
	}
	var p p12PBMAC1Params
	var k p12PBKDF2Params
	if err := p12Unmarshal(pfx.MacData.Mac.Algorithm.Parameters.FullBytes, &p); err != nil {
		t.Fatal(err)
	}
	if err := p12Unmarshal(p.KDF.Parameters.FullBytes, &k); err != nil {
		t.Fatal(err)
	}
	edit(&p, &k)
	var err error
	if p.KDF.Parameters.FullBytes, err = asn1.Marshal(k); err != nil {
		t.Fatal(err)
	}
	if pfx.MacData.Mac.Algorithm.Parameters.FullBytes, err = asn1.Marshal(p); err != nil {
		t.Fatal(err)
	}
	out, err := asn1.Marshal(pfx)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestReadPKCS12PBMAC1Refused refuses PBMAC1 parameters a forger could
// exploit or that only cost work: a key shorter than 20 bytes (which has
// few enough values for a salt to be found under which another password
// gives the same key), longer than 64, or too many iterations; and an
// unknown MAC as unsupported.
func TestReadPKCS12PBMAC1Refused(t *testing.T) {
	t.Parallel()
	good, err := pkcs12.Modern2026.EncodeTrustStoreEntries([]pkcs12.TrustStoreEntry{{Cert: ksTestPKI(t, 0).Root, FriendlyName: "root"}}, "changeit")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		edit func(p *p12PBMAC1Params, k *p12PBKDF2Params)
		want error
	}{
		{"1-byte key", func(_ *p12PBMAC1Params, k *p12PBKDF2Params) { k.KeyLength = 1 }, ErrInvalidStore},
		{"65-byte key", func(_ *p12PBMAC1Params, k *p12PBKDF2Params) { k.KeyLength = 65 }, ErrInvalidStore},
		{"no key length", func(_ *p12PBMAC1Params, k *p12PBKDF2Params) { k.KeyLength = 0 }, ErrInvalidStore},
		{"too many iterations", func(_ *p12PBMAC1Params, k *p12PBKDF2Params) { k.Iterations = kdfLimit + 1 }, ErrInvalidStore},
		{"unknown MAC", func(p *p12PBMAC1Params, _ *p12PBKDF2Params) { p.MAC.Algorithm = asn1.ObjectIdentifier{1, 2, 3} }, ErrUnsupportedFormat},
		{"unknown PRF", func(_ *p12PBMAC1Params, k *p12PBKDF2Params) { k.PRF.Algorithm = asn1.ObjectIdentifier{1, 2, 3} }, ErrUnsupportedFormat},
	} {
		if _, err := ReadStoreContents(ksRewriteMAC(t, good, tc.edit), "changeit"); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	// The same store unchanged reads.
	if _, err := ReadStoreContents(ksRewriteMAC(t, good, func(*p12PBMAC1Params, *p12PBKDF2Params) {}), "changeit"); err != nil {
		t.Errorf("unchanged: %v", err)
	}
}

// TestPKCS12Work checks the key derivation work counted for a store:
// every pass of every derivation.
func TestPKCS12Work(t *testing.T) {
	t.Parallel()
	pbe := func(alg asn1.ObjectIdentifier, iterations int) pkix.AlgorithmIdentifier {
		params, _ := asn1.Marshal(p12PBEParams{Salt: []byte{1, 2, 3, 4, 5, 6, 7, 8}, Iterations: iterations})
		return pkix.AlgorithmIdentifier{Algorithm: alg, Parameters: asn1.RawValue{FullBytes: params}}
	}
	pbes2 := func(prf asn1.ObjectIdentifier, cipher asn1.ObjectIdentifier, iterations int) pkix.AlgorithmIdentifier {
		salt, _ := asn1.Marshal([]byte{1, 2, 3, 4, 5, 6, 7, 8})
		k := p12PBKDF2Params{Salt: asn1.RawValue{FullBytes: salt}, Iterations: iterations, PRF: pkix.AlgorithmIdentifier{Algorithm: prf}}
		kp, _ := asn1.Marshal(k)
		iv, _ := asn1.Marshal(make([]byte, 16))
		params, _ := asn1.Marshal(p12PBES2Params{
			KDF:    pkix.AlgorithmIdentifier{Algorithm: oidPBKDF2, Parameters: asn1.RawValue{FullBytes: kp}},
			Scheme: pkix.AlgorithmIdentifier{Algorithm: cipher, Parameters: asn1.RawValue{FullBytes: iv}},
		})
		return pkix.AlgorithmIdentifier{Algorithm: oidPBES2, Parameters: asn1.RawValue{FullBytes: params}}
	}
	hmacSHA1, hmacSHA256 := asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 7}, asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 9}
	for _, tc := range []struct {
		name             string
		alg              pkix.AlgorithmIdentifier
		iterations, work int
	}{
		// Key (24 bytes: two SHA-1 outputs) and IV (one).
		{"3DES", pbe(oidPBEWithSHAAnd3DES, 1000), 1000, 3000},
		{"RC2-40", pbe(oidPBEWithSHAAnd40BitRC2, 1000), 1000, 2000},
		{"RC2-128", pbe(oidPBEWithSHAAnd128BitRC2, 1000), 1000, 2000},
		// Two SHA-1 blocks of HMAC for a 32-byte key; one of SHA-256.
		{"AES-256, HMAC-SHA-1", pbes2(hmacSHA1, oidAES256CBC, 1000), 1000, 4000},
		{"AES-256, HMAC-SHA-256", pbes2(hmacSHA256, oidAES256CBC, 1000), 1000, 2000},
		{"AES-128, HMAC-SHA-1", pbes2(hmacSHA1, oidAES128CBC, 1000), 1000, 2000},
		{"unknown", pbe(asn1.ObjectIdentifier{1, 2, 3}, 1000), 0, 0},
	} {
		n, passes, err := p12DecryptWork(tc.alg)
		if err != nil || n*passes != tc.work || (passes != 0 && n != tc.iterations) {
			t.Errorf("%s: %d iterations × %d passes, %v; want %d work", tc.name, n, passes, err, tc.work)
		}
	}
	// A MAC of the most iterations Java allows, with the safe's work,
	// fits; twice, as for an empty password, does not.
	var b bytes.Buffer
	if err := WritePKCS12(&b, ksEntries(t)[:1], ""); err != nil {
		t.Fatal(err)
	}
	var pfx p12PFX
	if err := p12Unmarshal(b.Bytes(), &pfx); err != nil {
		t.Fatal(err)
	}
	var safes []p12ContentInfo
	var authSafe []byte
	if err := p12Unmarshal(pfx.AuthSafe.Content.Bytes, &authSafe); err != nil {
		t.Fatal(err)
	}
	if err := p12Unmarshal(authSafe, &safes); err != nil {
		t.Fatal(err)
	}
	pfx.MacData.Iterations = kdfLimit // half the budget
	if err := p12CheckWork(&pfx, safes, "changeit"); err != nil {
		t.Errorf("MAC of %d iterations: %v", pfx.MacData.Iterations, err)
	}
	if err := p12CheckWork(&pfx, safes, ""); !errors.Is(err, ErrInvalidStore) {
		t.Errorf("MAC of %d iterations, retried for the empty password: %v, want ErrInvalidStore", pfx.MacData.Iterations, err)
	}
}
