package certstore_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/directdl/directdl/certstore"
)

func TestExpiryLevels(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	for _, c := range []struct {
		name      string
		from, to  time.Time
		want      certstore.Level
		wantDays  int
		th        certstore.Thresholds
		inMessage string
	}{
		{"fine", now.Add(-day), now.Add(90 * day), certstore.LevelOK, 90, certstore.Thresholds{}, "ok, expires 2027-02-22 (90 days left)"},
		{"warning at 30 days", now.Add(-day), now.Add(30 * day), certstore.LevelWarning, 30, certstore.Thresholds{}, "warning"},
		{"ok at 31 days", now.Add(-day), now.Add(31 * day), certstore.LevelOK, 31, certstore.Thresholds{}, "ok"},
		{"critical at 7 days", now.Add(-day), now.Add(7 * day), certstore.LevelCritical, 7, certstore.Thresholds{}, "critical"},
		{"custom thresholds", now.Add(-day), now.Add(40 * day), certstore.LevelCritical, 40, certstore.Thresholds{Warning: 60 * day, Critical: 45 * day}, "critical"},
		{"expired", now.Add(-10 * day), now.Add(-time.Hour), certstore.LevelExpired, -1, certstore.Thresholds{}, "expired on 2026-11-24"},
		{"not yet valid", now.Add(time.Hour), now.Add(90 * day), certstore.LevelNotYetValid, 90, certstore.Thresholds{}, "not valid before"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cert := regMake(t, "Some CA", true, nil, c.from, c.to).cert
			if got := certstore.ExpiryLevel(cert, now, c.th); got != c.want {
				t.Errorf("level %s, want %s", got, c.want)
			}
			r := certstore.CheckExpiry("x", []certstore.Entry{{Alias: "a", Cert: cert}}, now, c.th)
			if r.Level != c.want || r.Certs[0].DaysLeft != c.wantDays {
				t.Errorf("report level %s days %d, want %s %d", r.Level, r.Certs[0].DaysLeft, c.want, c.wantDays)
			}
			if s := r.Certs[0].String(); !strings.Contains(s, c.inMessage) || !strings.Contains(s, `"a"`) {
				t.Errorf("line %q lacks %q or the alias", s, c.inMessage)
			}
		})
	}
}

func TestChainExpiryIsTheSoonest(t *testing.T) {
	now := time.Now()
	root := regMake(t, "Root", true, nil, now.Add(-time.Hour), now.AddDate(5, 0, 0))
	inter := regMake(t, "Intermediate", true, root, now.Add(-time.Hour), now.AddDate(0, 0, 10))
	leaf := regMake(t, "leaf.test", false, inter, now.Add(-time.Hour), now.AddDate(0, 2, 0))
	r := certstore.CheckExpiry("mirror", []certstore.Entry{{Cert: leaf.cert}, {Cert: inter.cert}, {Cert: root.cert}}, now, certstore.Thresholds{})
	if r.Soonest.Subject != inter.cert.Subject.String() || r.Level != certstore.LevelWarning {
		t.Errorf("soonest %s level %s, want the intermediate, warning", r.Soonest.Subject, r.Level)
	}
	if len(r.Certs) != 3 || r.Certs[0].Level != certstore.LevelOK {
		t.Errorf("per-certificate levels %+v", r.Certs)
	}
}

func TestRegistryExpiryReport(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	reg, _, _ := regSetup(t)
	long := regMake(t, "Long CA", true, nil, now.Add(-time.Hour), now.AddDate(2, 0, 0))
	soon := regMake(t, "Soon CA", true, nil, now.Add(-time.Hour), now.AddDate(0, 0, 5))
	mid := regMake(t, "Mid CA", true, nil, now.Add(-time.Hour), now.AddDate(0, 0, 20))
	if _, err := certstore.NewRegistry(nil, nil); err == nil {
		t.Fatal("NewRegistry without a database accepted")
	}
	for alias, c := range map[string]*regCert{"long": long, "soon": soon, "mid": mid} {
		if _, err := reg.Upload(ctx, certstore.Upload{Alias: alias, PEM: regPEM(c), Zone: 1}); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := reg.ExpiryReport(ctx, certstore.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, r := range rep {
		order = append(order, string(r.Level)+":"+r.Name)
	}
	if got := strings.Join(order, ","); got != "critical:soon (zone 1),warning:mid (zone 1),ok:long (zone 1)" {
		t.Errorf("report order %s", got)
	}
}

func TestCheckAnchors(t *testing.T) {
	now := time.Now()
	root := regMake(t, "Root", true, nil, now.Add(-time.Hour), now.AddDate(5, 0, 0))
	leaf := regMake(t, "leaf.test", false, root, now.Add(-time.Hour), now.AddDate(1, 0, 0))
	warns, err := certstore.CheckAnchors(nil, now, certstore.Thresholds{})
	if err != nil || len(warns) != 0 {
		t.Errorf("no certificates: %v %v", warns, err)
	}
	warns, err = certstore.CheckAnchors(regCerts(root), now, certstore.Thresholds{})
	if err != nil || len(warns) != 0 {
		t.Errorf("a good root: %v %v", warns, err)
	}
	warns, err = certstore.CheckAnchors(regCerts(leaf), now, certstore.Thresholds{})
	if err != nil || len(warns) != 1 || warns[0].Code != certstore.WarnNotCA || !strings.Contains(warns[0].Message, "trust its issuer CN=Root") {
		t.Errorf("a leaf: %v %v", warns, err)
	}
	weak := regWeak(t, now)
	warns, err = certstore.CheckAnchors([]*x509.Certificate{weak}, now, certstore.Thresholds{})
	codes := map[string]bool{}
	for _, w := range warns {
		codes[w.Code] = true
	}
	if err != nil || !codes[certstore.WarnWeakSignature] || !codes[certstore.WarnWeakKey] || codes[certstore.WarnNotCA] {
		t.Errorf("SHA-1, 1024-bit CA: %v %v", warns, err)
	}
	if _, err := certstore.CheckAnchors(regCerts(root), now.AddDate(6, 0, 0), certstore.Thresholds{}); !errors.Is(err, certstore.ErrExpired) || !strings.Contains(err.Error(), "CN=Root") {
		t.Errorf("expired root: %v", err)
	}
}

func regCerts(cs ...*regCert) []*x509.Certificate {
	out := make([]*x509.Certificate, len(cs))
	for i, c := range cs {
		out[i] = c.cert
	}
	return out
}

// regWeak makes a CA with a 1024-bit RSA key, signed with SHA-1 by a root.
func regWeak(t *testing.T, now time.Time) *x509.Certificate {
	t.Helper()
	rootKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	key, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	root := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Old Root"}, NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(1, 0, 0),
		BasicConstraintsValid: true, IsCA: true, KeyUsage: x509.KeyUsageCertSign}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "Old Intermediate"}, NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(1, 0, 0),
		BasicConstraintsValid: true, IsCA: true, KeyUsage: x509.KeyUsageCertSign, SignatureAlgorithm: x509.SHA1WithRSA}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, root, &key.PublicKey, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
