package agent

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/directdl/directdl/certstore"
	"github.com/directdl/directdl/download"
)

// Defaults of a Config's zero fields.
const (
	// DefaultParallel is how many downloads run at once; more are queued.
	DefaultParallel = 2
	// DefaultProgressInterval is how often a running job's progress is
	// updated and, with a callback, reported.
	DefaultProgressInterval = time.Second
	// DefaultMaxFinishedJobs is how many finished jobs are remembered;
	// the oldest are forgotten first.
	DefaultMaxFinishedJobs = 1000
	// IncomingDir is the hidden directory in the pool where downloads
	// land until they are vetted; the download engine keeps its partial
	// files (.NAME.ddpart, .NAME.ddctl) there for a resume.
	IncomingDir = ".agent-incoming"
)

// TrustStore is the agent's trust store: listed, changed through the API,
// and consulted by the download client for every new TLS connection, so
// that an imported certificate is trusted by the next download. A
// *certstore.FileStore is one.
type TrustStore interface {
	certstore.TrustStore
	download.TrustSource
}

// Config configures an Agent. Pool, Token and TrustStore are required;
// every other zero field means the default its comment gives.
type Config struct {
	// Pool is the primary storage directory templates are downloaded to.
	// It must exist.
	Pool string
	// Token is the bearer token every request but GET /v1/health must
	// carry.
	Token string
	// TrustStore holds the certificates the agent trusts besides the
	// system roots.
	TrustStore TrustStore
	// Parallel is how many downloads run at once. Default
	// DefaultParallel (2).
	Parallel int
	// Connections is the number of connections per download. Default:
	// download.DefaultConnections (8).
	Connections int
	// Policy is the URL policy of downloads (download.WithPolicy). The
	// zero Policy refuses loopback, link-local and metadata addresses.
	Policy download.Policy
	// DownloadOptions are more options for the download client, after the
	// agent's own (trust source, policy, connections, progress).
	DownloadOptions []download.Option
	// Callback, when set, is the URL job events are POSTed to as JSON
	// Events, with the same bearer token. Delivery is best effort: a few
	// retries, and events are dropped rather than delay a download.
	Callback string
	// CallbackClient sends the events. Default: a client with a 10s
	// timeout.
	CallbackClient *http.Client
	// ProgressInterval is how often running jobs report progress.
	// Default DefaultProgressInterval (1s).
	ProgressInterval time.Duration
	// MaxFinishedJobs bounds the finished jobs kept for GET
	// /v1/downloads. Default DefaultMaxFinishedJobs (1000).
	MaxFinishedJobs int
	// Logger gets a line per job event and per failed request. Default:
	// no logging. The token is never logged.
	Logger *slog.Logger
	// Version is reported by GET /v1/health. Default "devel".
	Version string
	// QEMU is the QEMU version reported in the inventory. Default: the
	// first line of `qemu-img --version`, asked once, if installed.
	QEMU string
}

// ErrClosed: the agent was closed and takes no new jobs.
var ErrClosed = errors.New("agent: closed")

// Agent is a KVM-side direct download agent: an http.Handler serving the
// API over a pool directory, a trust store and a download client. Make one
// with New, serve it with any http.Server, and Close it when done. It is
// safe for concurrent use.
type Agent struct {
	cfg      Config
	pool     string
	incoming string
	token    [sha256.Size]byte
	client   *download.Client
	store    TrustStore
	log      *slog.Logger
	mux      *http.ServeMux
	// unmatched answers requests no endpoint takes.
	unmatched http.Handler
	notify    *notifier
	files     *fileCache

	slots chan struct{}
	wg    sync.WaitGroup

	mu       sync.Mutex
	closed   bool
	jobs     map[string]*job
	order    []*job          // every remembered job, oldest first
	active   map[string]*job // queued and running jobs by name
	byPath   map[string]*job // running jobs by download destination
	finished int

	qemuOnce sync.Once
	qemu     string
}

var _ http.Handler = (*Agent)(nil)

// New checks cfg and returns an Agent ready to serve. It creates the
// staging directory IncomingDir in the pool. Call Close when done: it ends
// the goroutines the Agent starts.
func New(cfg Config) (*Agent, error) {
	if cfg.Pool == "" {
		return nil, errors.New("agent: no pool directory; give the primary storage directory")
	}
	pool, err := filepath.Abs(cfg.Pool)
	if err != nil {
		return nil, fmt.Errorf("agent: pool %s: %w", cfg.Pool, err)
	}
	if fi, err := os.Stat(pool); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("agent: pool %s is not an existing directory", pool)
	}
	if strings.TrimSpace(cfg.Token) == "" {
		return nil, errors.New("agent: empty token; give the bearer token clients must send")
	}
	if cfg.TrustStore == nil {
		return nil, errors.New("agent: no trust store")
	}
	if cfg.Parallel == 0 {
		cfg.Parallel = DefaultParallel
	}
	if cfg.Parallel < 0 {
		return nil, fmt.Errorf("agent: parallel %d; give 1 or more", cfg.Parallel)
	}
	if cfg.ProgressInterval <= 0 {
		cfg.ProgressInterval = DefaultProgressInterval
	}
	if cfg.MaxFinishedJobs <= 0 {
		cfg.MaxFinishedJobs = DefaultMaxFinishedJobs
	}
	if cfg.Version == "" {
		cfg.Version = "devel"
	}
	a := &Agent{
		cfg:      cfg,
		pool:     pool,
		incoming: filepath.Join(pool, IncomingDir),
		token:    sha256.Sum256([]byte(cfg.Token)),
		store:    cfg.TrustStore,
		log:      cfg.Logger,
		files:    newFileCache(),
		slots:    make(chan struct{}, cfg.Parallel),
		jobs:     map[string]*job{},
		active:   map[string]*job{},
		byPath:   map[string]*job{},
		qemu:     cfg.QEMU,
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if cfg.QEMU != "" {
		a.qemuOnce.Do(func() {})
	}
	opts := []download.Option{
		download.WithTrustSource(cfg.TrustStore),
		download.WithPolicy(cfg.Policy),
		download.WithProgress(a.onProgress, cfg.ProgressInterval),
	}
	if cfg.Connections != 0 {
		opts = append(opts, download.WithConnections(cfg.Connections))
	}
	a.client, err = download.New(append(opts, cfg.DownloadOptions...)...)
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	if err := os.Mkdir(a.incoming, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("agent: %w", err)
	}
	// Downloads land here before they are vetted: a symbolic link would
	// put them outside the pool.
	if fi, err := os.Lstat(a.incoming); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("agent: the staging directory %s must be a directory of the pool, not a symbolic link or a file; remove it", a.incoming)
	}
	// Last: the notifier starts the goroutine Close ends.
	if cfg.Callback != "" {
		if a.notify, err = newNotifier(cfg.Callback, cfg.Token, cfg.CallbackClient, a.log); err != nil {
			return nil, err
		}
	}
	a.routes()
	return a, nil
}

// Client returns the agent's download client, for an embedder that wants
// other downloads to share its trust, policy and connection limits.
func (a *Agent) Client() *download.Client { return a.client }

// Pool returns the pool directory, absolute.
func (a *Agent) Pool() string { return a.pool }

// Close stops taking jobs, cancels the queued and running ones (what they
// fetched stays in the pool's staging directory, so the same request
// resumes after a restart), waits for them to end, and then delivers the
// events still queued for the callback until ctx ends. It returns ctx's
// error if ctx ended first.
func (a *Agent) Close(ctx context.Context) error {
	a.mu.Lock()
	a.closed = true
	for _, j := range a.active {
		if j != preparing {
			j.cancel()
		}
	}
	a.mu.Unlock()
	done := make(chan struct{})
	go func() { a.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		// The callback's sender ends too; events of jobs still ending
		// are dropped.
		if a.notify != nil {
			a.notify.close(ctx)
		}
		return ctx.Err()
	}
	a.client.CloseIdleConnections()
	if a.notify != nil {
		return a.notify.close(ctx)
	}
	return nil
}

func (a *Agent) routes() {
	m := http.NewServeMux()
	m.HandleFunc("GET /v1/health", a.health)
	m.Handle("POST /v1/downloads", a.auth(a.postDownload))
	m.Handle("GET /v1/downloads", a.auth(a.listDownloads))
	m.Handle("GET /v1/downloads/{id}", a.auth(a.getDownload))
	m.Handle("DELETE /v1/downloads/{id}", a.auth(a.cancelDownload))
	m.Handle("GET /v1/truststore", a.auth(a.listCerts))
	m.Handle("PUT /v1/truststore/{alias}", a.auth(a.importCert))
	m.Handle("DELETE /v1/truststore/{alias}", a.auth(a.deleteCert))
	m.Handle("GET /v1/inventory", a.auth(a.inventory))
	m.Handle("POST /v1/migrations/prepare", a.auth(a.prepare))
	a.mux = m
	a.unmatched = a.auth(func(w http.ResponseWriter, r *http.Request) {
		// The mux knows whether another method would match (405, with
		// Allow) or nothing does (404); the answer is put in JSON.
		h, _ := m.Handler(r)
		rec := &statusRecorder{header: http.Header{}}
		h.ServeHTTP(rec, r)
		if allow := rec.header.Get("Allow"); allow != "" {
			w.Header().Set("Allow", allow)
		}
		status := rec.status
		if status == 0 || status == http.StatusOK {
			status = http.StatusNotFound
		}
		msg := fmt.Sprintf("no endpoint %s %s; see the API documentation", r.Method, r.URL.Path)
		if status == http.StatusMethodNotAllowed {
			msg = fmt.Sprintf("%s %s: method not allowed; use %s", r.Method, r.URL.Path, rec.header.Get("Allow"))
		}
		writeError(w, status, &ErrorBody{Error: msg, NoEndpoint: status == http.StatusNotFound})
	})
}

// ServeHTTP serves the API. The token is checked before anything else
// but GET /v1/health, so that without it no answer (a 404, or the mux's
// redirect of an unclean path) tells which routes exist.
func (a *Agent) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !(r.URL.Path == "/v1/health" && (r.Method == http.MethodGet || r.Method == http.MethodHead)) && !a.authorized(w, r) {
		return
	}
	if _, pattern := a.mux.Handler(r); pattern == "" {
		a.unmatched.ServeHTTP(w, r)
		return
	}
	a.mux.ServeHTTP(w, r)
}

// statusRecorder keeps the status and headers the mux's own 404 and 405
// handlers set, and drops their plain text body.
type statusRecorder struct {
	header http.Header
	status int
}

func (r *statusRecorder) Header() http.Header         { return r.header }
func (r *statusRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (r *statusRecorder) WriteHeader(status int)      { r.status = status }

// auth lets a request through only with the right bearer token, compared
// in constant time (of hashes, so that the length does not leak either).
func (a *Agent) auth(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.authorized(w, r) {
			h(w, r)
		}
	})
}

// authorized reports whether r carries the token, and answers 401 when it
// does not.
func (a *Agent) authorized(w http.ResponseWriter, r *http.Request) bool {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	sum := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	if ok && subtle.ConstantTimeCompare(sum[:], a.token[:]) == 1 {
		return true
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="directdl-agent"`)
	msg := "missing bearer token; send Authorization: Bearer TOKEN"
	if ok {
		msg = "wrong bearer token"
	}
	a.log.Warn("unauthorized request", slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.String("remote", r.RemoteAddr))
	writeError(w, http.StatusUnauthorized, &ErrorBody{Error: msg})
	return false
}

func (a *Agent) health(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, Health{OK: true, Version: a.cfg.Version})
}

// newID returns a random job id.
func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
