package agentclient

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/directdl/directdl/certstore"
	"github.com/directdl/directdl/examples/agent/agent"
)

// A prepare fetches a template (gigabytes) and an inventory may hash a
// pool: the default client must not cut a call short whatever its ctx
// allows (it once gave every request 60s, and the agent, seeing the
// request gone, rolled the fetch back). A review found it with a prepare
// that ran past a minute; this checks the cause directly, and that ctx
// still bounds a call.
func TestReview10NoClientWideTimeout(t *testing.T) {
	c, err := New("http://127.0.0.1:1", "token")
	if err != nil {
		t.Fatal(err)
	}
	if c.http.Timeout != 0 {
		t.Errorf("the default client cuts every call at %v; only ctx should bound a call", c.http.Timeout)
	}

	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	c, err = New(srv.URL, "token")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := c.Inventory(ctx, true); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a call on a server that does not answer, with a 50ms ctx: %v, want the ctx's deadline", err)
	}
}

// A 404 means "absent" to a certstore.Registry only when the agent says
// so of an alias: a client pointed at the wrong URL (a path the agent does
// not serve, or a proxy's 404) once made Delete look like a revocation
// that had already happened.
func TestReview10NotFoundOnlyFromTheAgent(t *testing.T) {
	pool := t.TempDir()
	store, err := certstore.OpenFileStore(filepath.Join(t.TempDir(), "trust.jks"), "changeit")
	if err != nil {
		t.Fatal(err)
	}
	a, err := agent.New(agent.Config{Pool: pool, Token: "token", TrustStore: store})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close(context.Background())
	srv := httptest.NewServer(a)
	defer srv.Close()
	proxy := httptest.NewServer(http.NotFoundHandler())
	defer proxy.Close()

	for _, tc := range []struct {
		name, base string
		absent     bool
	}{
		{"the agent, an absent alias", srv.URL, true},
		{"a path the agent does not serve", srv.URL + "/wrong-prefix", false},
		{"a proxy's 404", proxy.URL, false},
	} {
		c, err := New(tc.base, "token")
		if err != nil {
			t.Fatal(err)
		}
		err = c.Delete(context.Background(), "mirror-ca")
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("%s: %v, want a 404", tc.name, err)
		}
		if got := errors.Is(err, certstore.ErrNotFound); got != tc.absent {
			t.Errorf("%s: errors.Is(err, certstore.ErrNotFound) = %v, want %v (%v)", tc.name, got, tc.absent, err)
		}
	}
}
