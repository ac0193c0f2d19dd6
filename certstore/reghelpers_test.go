package certstore_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/directdl/directdl/certstore"
)

// regCert makes a certificate named cn, signed by parent (self-signed when
// nil), valid from notBefore to notAfter.
type regCert struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func regMake(t testing.TB, cn string, isCA bool, parent *regCert, notBefore, notAfter time.Time) *regCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"directdl test"}},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		BasicConstraintsValid: true,
		IsCA:                  isCA,
	}
	if isCA {
		tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	} else {
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.DNSNames = []string{cn}
	}
	signer, signerKey := tmpl, key
	if parent != nil {
		signer, signerKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signerKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &regCert{cert: c, key: key}
}

// regCA makes a CA valid from an hour ago for a year.
func regCA(t testing.TB, cn string) *regCert {
	now := time.Now()
	return regMake(t, cn, true, nil, now.Add(-time.Hour), now.AddDate(1, 0, 0))
}

func regPEM(cs ...*regCert) []byte {
	var certs []*x509.Certificate
	for _, c := range cs {
		certs = append(certs, c.cert)
	}
	return certstore.EncodePEM(certs...)
}

// regStore is a host's trust store in memory, with faults: a TrustStore
// as an agent's API would offer it.
type regStore struct {
	mu      sync.Mutex
	entries map[string]*x509.Certificate
	latency time.Duration
	calls   int
	// failRead fails Entries; failWrite fails Import and Delete;
	// lieImport makes Import report success without storing anything
	// (CloudStack's agent did this for two years).
	failRead, failWrite, lieImport bool
}

func newRegStore() *regStore { return &regStore{entries: map[string]*x509.Certificate{}} }

var errRegDown = errors.New("agent unreachable")

func (s *regStore) wait(ctx context.Context) error {
	s.mu.Lock()
	s.calls++
	d := s.latency
	s.mu.Unlock()
	if d == 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *regStore) Entries(ctx context.Context) ([]certstore.Entry, error) {
	if err := s.wait(ctx); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failRead {
		return nil, errRegDown
	}
	var out []certstore.Entry
	for a, c := range s.entries {
		out = append(out, certstore.Entry{Alias: a, Cert: c})
	}
	slices.SortFunc(out, func(a, b certstore.Entry) int {
		if a.Alias < b.Alias {
			return -1
		}
		return 1
	})
	return out, nil
}

func (s *regStore) Import(ctx context.Context, e certstore.Entry) error {
	if err := s.wait(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failWrite {
		return errRegDown
	}
	if !s.lieImport {
		s.entries[e.Alias] = e.Cert
	}
	return nil
}

func (s *regStore) Delete(ctx context.Context, alias string) error {
	if err := s.wait(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failWrite {
		return errRegDown
	}
	if _, ok := s.entries[alias]; !ok {
		return fmt.Errorf("%w: alias %q", certstore.ErrNotFound, alias)
	}
	delete(s.entries, alias)
	return nil
}

func (s *regStore) set(f func(*regStore)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

// holds returns the fingerprint under alias, "" when absent.
func (s *regStore) holds(alias string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.entries[alias]; c != nil {
		return certstore.Fingerprint(c)
	}
	return ""
}

// regHosts is an inventory that can change between syncs.
type regHosts struct {
	mu    sync.Mutex
	hosts []certstore.Host
}

func (h *regHosts) Hosts(context.Context) ([]certstore.Host, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.hosts), nil
}

func (h *regHosts) add(id certstore.HostID, zone certstore.ZoneID, up bool) *regStore {
	s := newRegStore()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.hosts = append(h.hosts, certstore.Host{ID: id, Zone: zone, Up: up, Store: s})
	return s
}

func (h *regHosts) setUp(id certstore.HostID, up bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i := range h.hosts {
		if h.hosts[i].ID == id {
			h.hosts[i].Up = up
		}
	}
}
