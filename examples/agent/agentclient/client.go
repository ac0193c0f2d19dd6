// Package agentclient is a typed Go client of the directdl example agent's
// HTTP API (package agent), for an orchestrator that drives agents.
//
// A *Client is a certstore.TrustStore over the agent's /v1/truststore
// endpoints, so a certstore.Registry syncs certificates to agents as it
// does to local stores:
//
//	c, err := agentclient.New("https://kvm1.example:8250", token)
//	hosts := certstore.HostList{{ID: 1, Zone: 1, Up: true, Store: c}}
//	reg, err := certstore.NewRegistry(certstore.NewMemoryDB(), hosts)
//
// and an agent's inventory is what migrate.Spec.Destination needs:
//
//	inv, err := c.Inventory(ctx, false)
//	spec.Destination = inv.Destination()
//
// Errors from the agent are *APIError values that match ErrBadRequest,
// ErrUnauthorized, ErrNotFound or ErrConflict (and certstore.ErrNotFound
// for a 404) with errors.Is.
package agentclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/directdl/directdl/certstore"
	"github.com/directdl/directdl/examples/agent/agent"
	"github.com/directdl/directdl/migrate"
)

// Client calls one agent. It is safe for concurrent use.
type Client struct {
	base  *url.URL
	token string
	http  *http.Client
}

var _ certstore.TrustStore = (*Client)(nil)

// Option configures New.
type Option func(*Client)

// WithHTTPClient sends requests through hc, for an agent served over
// HTTPS with a private CA (set hc's Transport's TLSClientConfig) or for
// a timeout per request. Default: a client with no timeout of its own;
// each call's ctx bounds it.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) { c.http = hc }
}

// New returns a client of the agent at baseURL (such as
// "http://127.0.0.1:8250") that sends token as its bearer token.
func New(baseURL, token string, opts ...Option) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("agentclient: base URL %q: give http(s)://HOST:PORT", baseURL)
	}
	if token == "" {
		return nil, errors.New("agentclient: empty token")
	}
	// No client-wide timeout: a prepare that fetches a template, or an
	// inventory that hashes a pool, takes as long as it takes; each call's
	// ctx bounds it.
	c := &Client{base: u, token: token, http: &http.Client{}}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// Sentinels an *APIError matches, by HTTP status.
var (
	ErrBadRequest   = errors.New("agentclient: bad request")  // 400
	ErrUnauthorized = errors.New("agentclient: unauthorized") // 401
	ErrNotFound     = errors.New("agentclient: not found")    // 404
	ErrConflict     = errors.New("agentclient: conflict")     // 409
	ErrServer       = errors.New("agentclient: agent failed") // 5xx
)

// APIError is an error response of the agent.
type APIError struct {
	Method, Path string
	Status       int
	agent.ErrorBody
	foreign bool // the body is not the agent's JSON error
}

func (e *APIError) Error() string {
	return fmt.Sprintf("agentclient: %s %s: %d %s: %s", e.Method, e.Path, e.Status, http.StatusText(e.Status), e.ErrorBody.Error)
}

// Unwrap returns the sentinel of the status; the agent's 404 for an
// absent job or alias matches certstore.ErrNotFound too, as a TrustStore's
// Delete must. A 404 for a path the agent does not serve, or one without
// the agent's error body (a proxy's), matches ErrNotFound only: a registry
// must not record a certificate as revoked from a host it never reached.
func (e *APIError) Unwrap() []error {
	switch {
	case e.Status == http.StatusBadRequest:
		return []error{ErrBadRequest}
	case e.Status == http.StatusUnauthorized:
		return []error{ErrUnauthorized}
	case e.Status == http.StatusNotFound && (e.NoEndpoint || e.foreign):
		return []error{ErrNotFound}
	case e.Status == http.StatusNotFound:
		return []error{ErrNotFound, certstore.ErrNotFound}
	case e.Status == http.StatusConflict:
		return []error{ErrConflict}
	case e.Status >= 500:
		return []error{ErrServer}
	}
	return nil
}

// do sends a request with body (JSON-encoded unless nil) and decodes a
// 2xx answer into out (unless nil).
func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	return c.doQuery(ctx, method, path, nil, body, out)
}

// doQuery is do with a query string.
func (c *Client) doQuery(ctx context.Context, method, path string, query url.Values, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("agentclient: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	u := c.base.JoinPath(path)
	u.RawQuery = query.Encode()
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return fmt.Errorf("agentclient: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("agentclient: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("agentclient: %s %s: reading the answer: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		e := &APIError{Method: method, Path: path, Status: resp.StatusCode}
		if json.Unmarshal(data, &e.ErrorBody) != nil || e.ErrorBody.Error == "" {
			e.ErrorBody.Error = strings.TrimSpace(string(data))
			e.foreign = true
		}
		return e
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("agentclient: %s %s: the answer is not the expected JSON: %w", method, path, err)
	}
	return nil
}

// Health calls GET /v1/health.
func (c *Client) Health(ctx context.Context) (agent.Health, error) {
	var h agent.Health
	return h, c.do(ctx, http.MethodGet, "/v1/health", nil, &h)
}

// Download queues a download job (POST /v1/downloads) and returns it.
func (c *Client) Download(ctx context.Context, req agent.DownloadRequest) (agent.Job, error) {
	var j agent.Job
	return j, c.do(ctx, http.MethodPost, "/v1/downloads", req, &j)
}

// Job returns the job with the id (GET /v1/downloads/{id}).
func (c *Client) Job(ctx context.Context, id string) (agent.Job, error) {
	var j agent.Job
	return j, c.do(ctx, http.MethodGet, "/v1/downloads/"+url.PathEscape(id), nil, &j)
}

// Jobs lists the agent's jobs, oldest first (GET /v1/downloads).
func (c *Client) Jobs(ctx context.Context) ([]agent.Job, error) {
	var l agent.JobList
	return l.Jobs, c.do(ctx, http.MethodGet, "/v1/downloads", nil, &l)
}

// Cancel cancels a queued or running job (DELETE /v1/downloads/{id}) and
// returns it once it has stopped. What it fetched is kept: Download with
// the same name resumes it.
func (c *Client) Cancel(ctx context.Context, id string) (agent.Job, error) {
	var j agent.Job
	return j, c.do(ctx, http.MethodDelete, "/v1/downloads/"+url.PathEscape(id), nil, &j)
}

// Wait polls the job every interval (default 200ms) until it reaches a
// final state, and returns it; a job that ends Failed or Canceled is not
// an error of Wait.
func (c *Client) Wait(ctx context.Context, id string, interval time.Duration) (agent.Job, error) {
	if interval <= 0 {
		interval = 200 * time.Millisecond
	}
	for {
		j, err := c.Job(ctx, id)
		if err != nil || j.State.Final() {
			return j, err
		}
		select {
		case <-ctx.Done():
			return j, ctx.Err()
		case <-time.After(interval):
		}
	}
}

// Inventory returns the agent's pool (GET /v1/inventory); with compute,
// the agent hashes the files it has no recorded digest for (once: it
// keeps the result while the file is unchanged).
func (c *Client) Inventory(ctx context.Context, compute bool) (*agent.Inventory, error) {
	var q url.Values
	if compute {
		q = url.Values{"digests": {"compute"}}
	}
	var inv agent.Inventory
	if err := c.doQuery(ctx, http.MethodGet, "/v1/inventory", q, nil, &inv); err != nil {
		return nil, err
	}
	return &inv, nil
}

// Prepare sends a migration plan to the agent of the destination host
// (POST /v1/migrations/prepare), which runs migrate.Prepare there.
func (c *Client) Prepare(ctx context.Context, plan *migrate.Plan) (*migrate.Prepared, error) {
	var p migrate.Prepared
	if err := c.do(ctx, http.MethodPost, "/v1/migrations/prepare", plan, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// Certificates returns the agent's trust store entries with their details
// (GET /v1/truststore).
func (c *Client) Certificates(ctx context.Context) ([]agent.CertEntry, error) {
	var l agent.CertList
	return l.Entries, c.do(ctx, http.MethodGet, "/v1/truststore", nil, &l)
}

// Entries implements certstore.TrustStore: the agent's trusted
// certificates as its store holds them now.
func (c *Client) Entries(ctx context.Context) ([]certstore.Entry, error) {
	list, err := c.Certificates(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]certstore.Entry, 0, len(list))
	for _, e := range list {
		certs, err := certstore.ParseCertificates([]byte(e.PEM))
		if err != nil || len(certs) != 1 {
			return nil, fmt.Errorf("agentclient: entry %q of the agent's trust store: not one certificate: %v", e.Alias, err)
		}
		out = append(out, certstore.Entry{Alias: e.Alias, Cert: certs[0]})
	}
	return out, nil
}

// Import implements certstore.TrustStore (PUT /v1/truststore/{alias}).
func (c *Client) Import(ctx context.Context, e certstore.Entry) error {
	if e.Cert == nil {
		return fmt.Errorf("%w: entry %q has no certificate", certstore.ErrInvalidCertificate, e.Alias)
	}
	return c.do(ctx, http.MethodPut, "/v1/truststore/"+url.PathEscape(e.Alias), agent.ImportRequest{PEM: string(certstore.EncodePEM(e.Cert))}, nil)
}

// Delete implements certstore.TrustStore (DELETE /v1/truststore/{alias});
// an alias the agent does not hold gives an error wrapping
// certstore.ErrNotFound.
func (c *Client) Delete(ctx context.Context, alias string) error {
	return c.do(ctx, http.MethodDelete, "/v1/truststore/"+url.PathEscape(alias), nil, nil)
}
