package certstore

import (
	"cmp"
	"crypto/x509"
	"fmt"
	"slices"
	"time"
)

// Thresholds are how close to expiry a certificate is worth a warning.
// Zero fields take the defaults: Warning 30 days, Critical 7 days (cfssl's
// bundler warns at 30 days; a week leaves time for one change window).
type Thresholds struct {
	Warning  time.Duration
	Critical time.Duration
}

// Default thresholds.
const (
	DefaultWarning  = 30 * 24 * time.Hour
	DefaultCritical = 7 * 24 * time.Hour
)

func (t Thresholds) withDefaults() Thresholds {
	if t.Warning <= 0 {
		t.Warning = DefaultWarning
	}
	if t.Critical <= 0 {
		t.Critical = DefaultCritical
	}
	return t
}

// Level is how urgent a certificate's expiry is.
type Level string

// Levels, from least to most urgent.
const (
	LevelOK          Level = "ok"
	LevelWarning     Level = "warning"
	LevelCritical    Level = "critical"
	LevelExpired     Level = "expired"
	LevelNotYetValid Level = "not-yet-valid"
)

var levelRank = map[Level]int{LevelOK: 0, LevelWarning: 1, LevelCritical: 2, LevelNotYetValid: 3, LevelExpired: 4}

// ExpiryLevel classifies c at now: expired after NotAfter, not yet valid
// before NotBefore, critical or warning when NotAfter is within the
// thresholds, ok otherwise.
func ExpiryLevel(c *x509.Certificate, now time.Time, t Thresholds) Level {
	t = t.withDefaults()
	left := c.NotAfter.Sub(now)
	switch {
	case now.After(c.NotAfter):
		return LevelExpired
	case now.Before(c.NotBefore):
		return LevelNotYetValid
	case left <= t.Critical:
		return LevelCritical
	case left <= t.Warning:
		return LevelWarning
	}
	return LevelOK
}

// Expiry is one certificate's expiry, in an ExpiryReport.
type Expiry struct {
	CertInfo
	// Alias is the trust store alias, when the certificate has one.
	Alias string `json:"alias,omitempty"`
	// Left is the time until NotAfter (negative once expired), in whole
	// seconds; DaysLeft is the same in whole days, rounded down.
	Left     time.Duration `json:"-"`
	DaysLeft int           `json:"days_left"`
	Level    Level         `json:"level"`
}

func daysLeft(left time.Duration) int {
	d := left / (24 * time.Hour)
	if left < 0 && left%(24*time.Hour) != 0 {
		d--
	}
	return int(d)
}

// String is a line such as `"mirror-ca" CN=Mirror CA: warning, expires
// 2026-12-01 (12 days left)`.
func (e Expiry) String() string {
	name := e.Subject
	if e.Alias != "" {
		name = fmt.Sprintf("%q %s", e.Alias, e.Subject)
	}
	switch e.Level {
	case LevelExpired:
		return fmt.Sprintf("%s: expired on %s", name, e.NotAfter.Format(time.DateOnly))
	case LevelNotYetValid:
		return fmt.Sprintf("%s: not valid before %s", name, e.NotBefore.Format(time.RFC3339))
	}
	return fmt.Sprintf("%s: %s, expires %s (%d days left)", name, e.Level, e.NotAfter.Format(time.DateOnly), e.DaysLeft)
}

// ChainExpiry is the expiry of a chain or bundle: it lasts only as long as
// its soonest-expiring certificate.
type ChainExpiry struct {
	// Name identifies the chain: an alias, a URL or a file name.
	Name  string   `json:"name"`
	Certs []Expiry `json:"certificates"`
	// Soonest is the certificate that expires first; Level is its level,
	// or the most urgent level of any certificate of the chain (a
	// not-yet-valid intermediate, say).
	Soonest Expiry `json:"soonest"`
	Level   Level  `json:"level"`
}

// CheckExpiry reports the expiry of each certificate of chain at now, and
// the chain's soonest. An empty chain gives a report with no certificates
// and LevelOK.
func CheckExpiry(name string, chain []Entry, now time.Time, t Thresholds) ChainExpiry {
	r := ChainExpiry{Name: name, Level: LevelOK}
	for i, e := range chain {
		left := e.Cert.NotAfter.Sub(now).Truncate(time.Second)
		x := Expiry{CertInfo: Describe(e.Cert), Alias: e.Alias, Left: left, DaysLeft: daysLeft(left), Level: ExpiryLevel(e.Cert, now, t)}
		r.Certs = append(r.Certs, x)
		if i == 0 || x.NotAfter.Before(r.Soonest.NotAfter) {
			r.Soonest = x
		}
		if levelRank[x.Level] > levelRank[r.Level] {
			r.Level = x.Level
		}
	}
	return r
}

// SortExpiries orders reports most urgent first, then soonest first, then
// by name, which is how an operator wants to read them.
func SortExpiries(rs []ChainExpiry) {
	slices.SortStableFunc(rs, func(a, b ChainExpiry) int {
		if c := cmp.Compare(levelRank[b.Level], levelRank[a.Level]); c != 0 {
			return c
		}
		if c := a.Soonest.NotAfter.Compare(b.Soonest.NotAfter); c != 0 {
			return c
		}
		return cmp.Compare(a.Name, b.Name)
	})
}
