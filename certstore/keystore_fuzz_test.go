package certstore

import (
	"bytes"
	"encoding/base64"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// The seeds in testdata/keystore are small stores, password "changeit":
// go.jks, go.p12 and go.pem written by WriteJKS, WritePKCS12 and WritePEM
// (entries "root" and "intermediate"), and keytool.jks and keytool.p12
// made by keytool (a private key entry "agent" and a trusted entry
// "root"). Regenerate them with
//
//	go test ./certstore -run TestKeystoreSeeds -update-keystore-seeds
var updateKeystoreSeeds = flag.Bool("update-keystore-seeds", false, "rewrite the fuzz seeds in testdata/keystore")

const ksSeedDir = "testdata/keystore"

// TestKeystoreSeeds checks that the seeds read as described (and
// rewrites them with -update-keystore-seeds).
func TestKeystoreSeeds(t *testing.T) {
	if *updateKeystoreSeeds {
		ksWriteSeeds(t)
	}
	for _, tc := range []struct {
		file          string
		format        Format
		trusted, keys []string
	}{
		{"go.jks", FormatJKS, []string{"intermediate", "root"}, nil},
		{"go.p12", FormatPKCS12, []string{"intermediate", "root"}, nil},
		{"go.pem", FormatPEM, []string{"root", "intermediate"}, nil},
		{"keytool.jks", FormatJKS, []string{"root"}, []string{"agent"}},
		{"keytool.p12", FormatPKCS12, []string{"root"}, []string{"agent"}},
	} {
		data, err := os.ReadFile(filepath.Join(ksSeedDir, tc.file))
		if err != nil {
			t.Fatal(err)
		}
		c, err := ReadStoreContents(data, "changeit")
		if err != nil {
			t.Errorf("%s: %v", tc.file, err)
			continue
		}
		var trusted, keys []string
		for _, e := range c.Trusted {
			trusted = append(trusted, e.Alias)
		}
		for _, k := range c.Keys {
			keys = append(keys, k.Alias)
		}
		if c.Format != tc.format || !slices.Equal(trusted, tc.trusted) || !slices.Equal(keys, tc.keys) {
			t.Errorf("%s: %v with trusted %q and keys %q, want %v with %q and %q", tc.file, c.Format, trusted, keys, tc.format, tc.trusted, tc.keys)
		}
	}
}

func ksWriteSeeds(t *testing.T) {
	p := ksTestPKI(t, 0)
	entries := []Entry{{"root", p.Root}, {"intermediate", p.Intermediate}}
	for _, w := range ksWriters {
		var b bytes.Buffer
		if err := w.write(&b, entries, "changeit"); err != nil {
			t.Fatal(err)
		}
		name := map[Format]string{FormatJKS: "go.jks", FormatPKCS12: "go.p12", FormatPEM: "go.pem"}[w.format]
		if err := os.WriteFile(filepath.Join(ksSeedDir, name), b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	if err := p.WritePEM(dir); err != nil {
		t.Fatal(err)
	}
	for typ, name := range map[string]string{"JKS": "keytool.jks", "PKCS12": "keytool.p12"} {
		ksKeytool(t, dir, "-genkeypair", "-keyalg", "EC", "-groupname", "secp256r1", "-alias", "agent", "-dname", "CN=agent",
			"-validity", "3650", "-keystore", name, "-storetype", typ, "-storepass", "changeit", "-keypass", "changeit")
		ksKeytool(t, dir, "-importcert", "-noprompt", "-alias", "root", "-file", "root.pem", "-keystore", name, "-storepass", "changeit")
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(ksSeedDir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// ksSeeds returns the seed stores.
func ksSeeds(f *testing.F) [][]byte {
	names, err := filepath.Glob(filepath.Join(ksSeedDir, "*"))
	if err != nil || len(names) == 0 {
		f.Fatalf("no seeds in %s: %v", ksSeedDir, err)
	}
	var out [][]byte
	for _, n := range names {
		data, err := os.ReadFile(n)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, data)
	}
	return out
}

func FuzzParseCertificates(f *testing.F) {
	for _, s := range ksSeeds(f) {
		f.Add(s)
	}
	data, err := os.ReadFile(filepath.Join(ksSeedDir, "go.pem"))
	if err != nil {
		f.Fatal(err)
	}
	certs, err := ParseCertificates(data)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(certs[0].Raw)
	f.Add([]byte(base64.StdEncoding.EncodeToString(certs[0].Raw)))
	f.Add([]byte("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		certs, err := ParseCertificates(data)
		if err != nil {
			return
		}
		if len(certs) == 0 {
			t.Fatal("no certificates and no error")
		}
		// What was parsed reads back the same through PEM.
		again, err := ParseCertificates(EncodePEM(certs...))
		if err != nil || len(again) != len(certs) {
			t.Fatalf("PEM of the parsed certificates: %d, %v", len(again), err)
		}
		for i := range certs {
			if !again[i].Equal(certs[i]) {
				t.Fatalf("certificate %d differs after PEM", i+1)
			}
		}
	})
}

func FuzzReadStore(f *testing.F) {
	for _, s := range ksSeeds(f) {
		f.Add(s, "changeit")
		f.Add(s, "wrong")
	}
	f.Fuzz(func(t *testing.T, data []byte, password string) {
		c, err := ReadStoreContents(data, password)
		if err != nil {
			return
		}
		if c.Format < FormatJKS || c.Format > FormatPEM {
			t.Fatalf("format %v", c.Format)
		}
		for _, e := range c.Trusted {
			if e.Cert == nil || e.Alias == "" {
				t.Fatalf("entry %+v", e)
			}
		}
		for _, k := range c.Keys {
			for _, cert := range k.Chain {
				if cert == nil {
					t.Fatalf("key entry %q has a nil certificate", k.Alias)
				}
			}
		}
		// Entries a writer accepts read back the same from what it writes.
		if checkWriteEntries(c.Trusted) != nil {
			return
		}
		var b bytes.Buffer
		switch c.Format {
		case FormatJKS:
			err = WriteJKS(&b, c.Trusted, password)
		case FormatPKCS12:
			err = WritePKCS12(&b, c.Trusted, password)
		case FormatPEM:
			err = WritePEM(&b, c.Trusted)
		}
		if err != nil {
			return // a password the format cannot take
		}
		got, f, err := ReadStore(b.Bytes(), password)
		if err != nil || f != c.Format || !slices.Equal(ksSummary(got), ksSummary(c.Trusted)) {
			t.Fatalf("written and read back: %q, %v, %v; want %q", ksSummary(got), f, err, ksSummary(c.Trusted))
		}
	})
}
