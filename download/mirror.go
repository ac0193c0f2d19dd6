package download

import (
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/directdl/directdl/download/nfs"
	"github.com/directdl/directdl/internal/netguard"
)

// MirrorReport is what one source of a download did: the requested URL, a
// Metalink mirror, a mirror a server named in a Link header, or an NFS
// file.
type MirrorReport struct {
	// URL is the source, redacted.
	URL string `json:"url"`
	// Priority is the Metalink priority (1 is best); 0 for the requested
	// URL.
	Priority int `json:"priority,omitempty"`
	// Bytes counts the body bytes received from it, including bytes that
	// were discarded.
	Bytes int64 `json:"bytes"`
	// BadPieces counts the pieces it served that failed their piece hash.
	BadPieces int `json:"bad_pieces,omitempty"`
	// Failures counts its failed requests (errors, bad answers, stalls).
	Failures int `json:"failures,omitempty"`
	// Demoted is set when it was slow enough, next to the others, to be
	// used only as a last resort.
	Demoted bool `json:"demoted,omitempty"`
	// Dropped says why it was no longer used, or is empty.
	Dropped string `json:"dropped,omitempty"`
}

type sourceKind int

const (
	kindHTTP sourceKind = iota
	kindNFS
)

// mirror is one source of a download's bytes. The fields after the line
// are guarded by the transfer's mu.
type mirror struct {
	idx      int
	kind     sourceKind
	u        *url.URL // as given
	safe     string
	priority int
	// link: named by a Link header (RFC 6249), which allows one request
	// at a time.
	link bool
	nfs  *nfs.File

	cur                *url.URL // where ranges are asked (after redirects)
	etag, lastModified string   // validators as this mirror gave them
	known              bool     // etag and lastModified were learned
	active             int
	bytes              int64
	bad, failures      int
	consecutive        int // failures since the last success
	retryAt            time.Time
	demoted            bool
	out                error
	// rate is the mean per-connection rate of its finished requests, in
	// bytes per second; samples counts them.
	rate    float64
	samples int
}

func (m *mirror) report() MirrorReport {
	r := MirrorReport{URL: m.safe, Priority: m.priority, Bytes: m.bytes, BadPieces: m.bad, Failures: m.failures, Demoted: m.demoted}
	if m.out != nil {
		r.Dropped = netguard.RedactText(m.out.Error())
	}
	return r
}

// hostKeyOf is the key of m's connection slots.
func (m *mirror) hostKey() *url.URL {
	if m.cur != nil {
		return m.cur
	}
	return m.u
}

// usable reports whether m may be given work now (ready), and whether it
// may be, now or once its backoff ends (alive). Called with t.mu held.
func (m *mirror) usable(now time.Time) (ready, alive bool) {
	if m.out != nil {
		return false, false
	}
	return !now.Before(m.retryAt), true
}

// othersUsable reports whether a source other than m is still in use, so
// that m's work can be left to the others when it fails. Called with t.mu
// held.
func (t *transfer) othersUsable(m *mirror) bool {
	for _, o := range t.mirrors {
		if o != m && o.out == nil {
			return true
		}
	}
	return false
}

// capOf is how many connections m may have at once. Called with t.mu held.
func (t *transfer) capOf(m *mirror) int {
	if m.link || m.demoted {
		return 1
	}
	links, others := 0, 0
	for _, o := range t.mirrors {
		if o.out != nil {
			continue
		}
		switch {
		case o.link || o.demoted:
			links++
		default:
			others++
		}
	}
	if others <= 1 {
		return max(1, t.j.conns-links)
	}
	c := max(1, (t.j.conns-links+others-1)/others)
	if t.c.cfg.mirrorConns > 0 {
		c = t.c.cfg.mirrorConns
	}
	return c
}

// better reports whether a is preferred to b for the next connection.
func better(a, b *mirror) bool {
	if a.demoted != b.demoted {
		return !a.demoted
	}
	if a.priority != b.priority {
		return a.priority < b.priority
	}
	if (a.samples > 0 && b.samples > 0) && a.rate != b.rate {
		return a.rate > b.rate
	}
	return a.active < b.active
}

// pick chooses the source for a connection that is not on one, and counts
// the connection on it. It returns nil and the time to try again when every
// usable source is busy or waiting out a failure, and nil and a zero time
// when none is left. Called with t.mu held.
func (t *transfer) pick(now time.Time) (*mirror, time.Time) {
	var best *mirror
	var next time.Time
	for _, m := range t.mirrors {
		ok, later := m.usable(now)
		if !later {
			continue
		}
		if !ok {
			if next.IsZero() || m.retryAt.Before(next) {
				next = m.retryAt
			}
			continue
		}
		if m.active >= t.capOf(m) || !t.hasWorkFor(m, now) {
			continue
		}
		if best == nil || better(m, best) {
			best = m
		}
	}
	if best != nil {
		best.active++
		return best, time.Time{}
	}
	return nil, next
}

// hasWorkFor reports whether m could be given work: anything but bad
// pieces that m served (which go to the others). pick and stay must agree
// on it, or a connection moves between two sources forever. Called with
// t.mu held.
func (t *transfer) hasWorkFor(m *mirror, now time.Time) bool {
	if len(t.pending) > 0 || t.pieces == nil || len(t.pieces.redo) == 0 {
		return true
	}
	return t.canRedo(m, now)
}

// stay reports whether a connection on m should keep to it for its next
// range: m is still usable and no clearly better source has room. Called
// with t.mu held.
func (t *transfer) stay(m *mirror, now time.Time) bool {
	if ok, _ := m.usable(now); !ok {
		return false
	}
	if m.active > t.capOf(m) {
		return false
	}
	for _, o := range t.mirrors {
		if o == m || o.out != nil || now.Before(o.retryAt) || o.active >= t.capOf(o) || !t.hasWorkFor(o, now) {
			continue
		}
		if (!o.demoted && m.demoted) || (o.demoted == m.demoted && o.priority < m.priority) {
			return false
		}
	}
	return true
}

// failed records a failed request on m and decides whether m stays in
// use: after more consecutive failures than the retries allow, or at once
// for a failure another attempt cannot fix, it is dropped. Called with
// t.mu held.
func (t *transfer) failed(m *mirror, err error, permanentErr bool) {
	m.failures++
	m.consecutive++
	if permanentErr || m.consecutive > t.c.cfg.retries {
		t.drop(m, err)
		return
	}
	d := t.backoff(m.consecutive, err)
	m.retryAt = time.Now().Add(d)
	t.log.Warn("source failed; moving its work to the others", slog.String("source", m.safe),
		slog.Int("failures", m.consecutive), slog.Duration("retry_after", d),
		slog.String("error", netguard.RedactText(err.Error())))
}

// drop stops using m. Called with t.mu held.
func (t *transfer) drop(m *mirror, err error) {
	if m.out != nil {
		return
	}
	m.out = err
	t.log.Warn("source dropped", slog.String("source", m.safe), slog.String("error", netguard.RedactText(err.Error())))
}

// sampled records a finished request's rate on m, and demotes m when its
// connections run at under a quarter of the best source's. Called with
// t.mu held.
func (t *transfer) sampled(m *mirror, n int64, d time.Duration) {
	m.consecutive = 0
	if n < t.c.cfg.minSplit || d <= 0 {
		return // too short to tell a rate
	}
	r := float64(n) / d.Seconds()
	m.samples++
	m.rate += (r - m.rate) / float64(min(m.samples, 8))
	if len(t.mirrors) < 2 || m.demoted || m.samples < 2 {
		return
	}
	for _, o := range t.mirrors {
		if o != m && o.out == nil && !o.demoted && o.samples >= 2 && m.rate*4 < o.rate {
			m.demoted = true
			t.log.Warn("source demoted: much slower than another", slog.String("source", m.safe),
				slog.Float64("rate", m.rate), slog.String("faster", o.safe), slog.Float64("faster_rate", o.rate))
			return
		}
	}
}

// noSourceError is the failure of a download whose every source was
// dropped: it matches ErrNoSource and each source's error. Called with t.mu
// held.
func (t *transfer) noSourceError() error {
	var b strings.Builder
	errs := []error{ErrNoSource}
	for _, m := range t.mirrors {
		if m.out == nil {
			continue
		}
		fmt.Fprintf(&b, "; %s: %v", m.safe, netguard.RedactText(m.out.Error()))
		errs = append(errs, m.out)
	}
	return &sourcesError{msg: "download: every source failed" + b.String(), errs: errs}
}

type sourcesError struct {
	msg  string
	errs []error
}

func (e *sourcesError) Error() string   { return e.msg }
func (e *sourcesError) Unwrap() []error { return e.errs }
