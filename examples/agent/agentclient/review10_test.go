package agentclient

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
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
