package netguard

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
)

// DefaultMaxRedirects is the redirect limit CheckRedirect applies when given
// zero, the same as net/http's default.
const DefaultMaxRedirects = 10

// Errors a redirect check returns, wrapped in a *RedirectError (and by
// net/http in a *url.Error).
var (
	// ErrTooManyRedirects: the redirect limit was reached.
	ErrTooManyRedirects = errors.New("netguard: too many redirects")
	// ErrDowngrade: a redirect from an HTTPS URL to an HTTP one.
	ErrDowngrade = errors.New("netguard: redirect downgrades HTTPS to HTTP")
	// ErrScheme: a URL whose scheme is not http or https.
	ErrScheme = errors.New("netguard: URL scheme is not http or https")
)

// RedirectError is a refused redirect. From and To are redacted.
type RedirectError struct {
	From, To string
	// Hop counts redirects: 1 for the first Location followed.
	Hop int
	// Err is ErrTooManyRedirects, ErrDowngrade or ErrScheme.
	Err error
	// max is the limit, for the message of ErrTooManyRedirects.
	max int
}

// Error names both URLs and the rule.
func (e *RedirectError) Error() string {
	var why string
	switch e.Err {
	case ErrTooManyRedirects:
		if e.max == 0 {
			why = "redirects are not followed"
		} else {
			why = fmt.Sprintf("stopped after %d redirects; raise the limit if the chain is expected", e.max)
		}
	case ErrDowngrade:
		why = "it downgrades HTTPS to HTTP"
	case ErrScheme:
		why = "only http and https are followed"
	default:
		why = fmt.Sprint(e.Err)
	}
	return fmt.Sprintf("netguard: redirect %d from %s to %s refused: %s", e.Hop, e.From, e.To, why)
}

// Unwrap returns Err.
func (e *RedirectError) Unwrap() error { return e.Err }

// CheckRedirect returns a function for http.Client.CheckRedirect that
// follows at most max redirects (zero means DefaultMaxRedirects, a negative
// max follows none), refuses a redirect to a scheme other than http or
// https, and refuses a redirect to an http URL once any earlier URL of the
// chain was https (once secure, the chain stays secure). It records the
// chain in the request context's Chain, if any (see WithChain).
//
// The addresses of each hop are not checked here: the guarded Dialer checks
// them when the hop is connected to, after resolution, so a redirect to a
// denied address fails at connect with a *DeniedError.
//
// The returned function is safe for concurrent use.
func CheckRedirect(max int) func(req *http.Request, via []*http.Request) error {
	switch {
	case max == 0:
		max = DefaultMaxRedirects
	case max < 0:
		max = 0
	}
	return func(req *http.Request, via []*http.Request) error {
		if len(via) == 0 {
			return nil
		}
		prev := via[len(via)-1]
		if c := ChainFrom(req.Context()); c != nil {
			c.record(via[0], req)
		}
		e := &RedirectError{From: Redact(prev.URL), To: Redact(req.URL), Hop: len(via), max: max}
		switch scheme := strings.ToLower(req.URL.Scheme); {
		case scheme != "http" && scheme != "https":
			e.Err = ErrScheme
		case scheme == "http" && anyHTTPS(via):
			e.Err = ErrDowngrade
		case len(via) > max:
			e.Err = ErrTooManyRedirects
		default:
			return nil
		}
		return e
	}
}

// anyHTTPS reports whether any request of the chain was https.
func anyHTTPS(via []*http.Request) bool {
	for _, r := range via {
		if strings.EqualFold(r.URL.Scheme, "https") {
			return true
		}
	}
	return false
}

// Chain records the redacted URLs of one request's redirect chain: the
// first URL, then every Location that CheckRedirect was asked to follow,
// including a refused last one. It stays empty when the request was not
// redirected. A Chain is safe for concurrent use; its zero value is empty
// and ready.
type Chain struct {
	mu   sync.Mutex
	urls []string
}

// URLs returns a copy of the recorded URLs, oldest first.
func (c *Chain) URLs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.urls...)
}

// String returns the URLs joined by " -> ".
func (c *Chain) String() string { return strings.Join(c.URLs(), " -> ") }

// record adds req, and first the chain's start when nothing is recorded.
func (c *Chain) record(first, req *http.Request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.urls) == 0 {
		c.urls = append(c.urls, Redact(first.URL))
	}
	c.urls = append(c.urls, Redact(req.URL))
}

type chainKey struct{}

// WithChain returns a context that makes CheckRedirect record into c, so a
// client shared by many requests can report each request's chain: pass the
// context to http.NewRequestWithContext and read c after Client.Do returns.
func WithChain(ctx context.Context, c *Chain) context.Context {
	return context.WithValue(ctx, chainKey{}, c)
}

// ChainFrom returns the Chain that WithChain put in ctx, or nil.
func ChainFrom(ctx context.Context) *Chain {
	c, _ := ctx.Value(chainKey{}).(*Chain)
	return c
}
