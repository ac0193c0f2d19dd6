// Command agent is a small KVM-side direct download agent built only on
// the directdl SDK's public packages: it takes "download this template
// into the pool", "import/revoke this certificate", "report the pool" and
// "prepare this migration" commands over an authenticated HTTP JSON API.
// Package agent is the part to embed or copy; package agentclient is its
// Go client. See README.md for the API.
//
// Usage:
//
//	agent -pool DIR -token-file FILE -truststore FILE [flags]
//
// Flags:
//
//	-listen ADDR         address to serve on (default 127.0.0.1:8250)
//	-pool DIR            primary storage directory (required)
//	-token-file FILE     file holding the bearer token (required)
//	-truststore FILE     JKS, PKCS12 (.p12, .pfx) or PEM (.pem, .crt, or a
//	                     directory) trust store, created on the first import
//	                     (required)
//	-storepass PASS      trust store password (default "changeit")
//	-parallel N          downloads at once; more are queued (default 2)
//	-connections N       connections per download (default 8)
//	-allow-cidr CIDR     allow downloads from this prefix even if it is
//	                     loopback or link-local (repeatable)
//	-deny-cidr CIDR      refuse downloads from this prefix (repeatable)
//	-callback URL        POST job events to URL with the bearer token
//	-tls-cert, -tls-key  serve HTTPS with these PEM files
//	-v                   log progress events too
//
// It logs to stderr, prints "agent: listening on URL" once it serves, and
// stops on SIGINT or SIGTERM: it stops accepting requests, cancels the
// downloads (what they fetched is kept, so the same request resumes after
// a restart) and exits 0. It exits 2 on a usage error and 1 when it
// cannot start.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/directdl/directdl/certstore"
	"github.com/directdl/directdl/download"
	"github.com/directdl/directdl/examples/agent/agent"
)

// version is reported by GET /v1/health.
const version = "0.1.0"

// shutdownTimeout bounds the wait for requests and downloads to end.
const shutdownTimeout = 10 * time.Second

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// prefixList is a repeatable flag of CIDR prefixes or IP addresses.
type prefixList []netip.Prefix

func (l *prefixList) String() string {
	s := make([]string, len(*l))
	for i, p := range *l {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

func (l *prefixList) Set(v string) error {
	for _, part := range strings.Split(v, ",") {
		part = strings.TrimSpace(part)
		if p, err := netip.ParsePrefix(part); err == nil {
			*l = append(*l, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(part)
		if err != nil {
			return fmt.Errorf("%q is neither a CIDR prefix nor an IP address", part)
		}
		*l = append(*l, netip.PrefixFrom(a, a.BitLen()))
	}
	return nil
}

type options struct {
	listen, pool, tokenFile, truststore, storepass string
	parallel, connections                          int
	allow, deny                                    prefixList
	callback, tlsCert, tlsKey                      string
	verbose                                        bool
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	var o options
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.listen, "listen", "127.0.0.1:8250", "`ADDR` to serve the API on")
	fs.StringVar(&o.pool, "pool", "", "primary storage `DIR` templates go to (required)")
	fs.StringVar(&o.tokenFile, "token-file", "", "`FILE` holding the bearer token (required)")
	fs.StringVar(&o.truststore, "truststore", "", "trust store `FILE`: JKS, PKCS12 (.p12, .pfx) or PEM (.pem, .crt, or a directory); created on the first import (required)")
	fs.StringVar(&o.storepass, "storepass", "changeit", "trust store `PASSWORD`")
	fs.IntVar(&o.parallel, "parallel", agent.DefaultParallel, "downloads at once; more are queued")
	fs.IntVar(&o.connections, "connections", download.DefaultConnections, "connections per download, 1 to 64")
	fs.Var(&o.allow, "allow-cidr", "`CIDR` (or IP) downloads may come from even if loopback or link-local (repeatable)")
	fs.Var(&o.deny, "deny-cidr", "`CIDR` (or IP) downloads may not come from (repeatable)")
	fs.StringVar(&o.callback, "callback", "", "`URL` job events are POSTed to, with the bearer token")
	fs.StringVar(&o.tlsCert, "tls-cert", "", "serve HTTPS with this PEM certificate `FILE` (leaf first)")
	fs.StringVar(&o.tlsKey, "tls-key", "", "PEM private key `FILE` of -tls-cert")
	fs.BoolVar(&o.verbose, "v", false, "log progress events too")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	switch {
	case fs.NArg() > 0:
		return nil, fmt.Errorf("unexpected argument %q; the agent takes flags only", fs.Arg(0))
	case o.pool == "":
		return nil, errors.New("-pool is required: the primary storage directory")
	case o.tokenFile == "":
		return nil, errors.New("-token-file is required: the file holding the bearer token")
	case o.truststore == "":
		return nil, errors.New("-truststore is required: the trust store file (created on the first import)")
	case o.parallel < 1:
		return nil, fmt.Errorf("-parallel %d: give 1 or more", o.parallel)
	case (o.tlsCert == "") != (o.tlsKey == ""):
		return nil, errors.New("-tls-cert and -tls-key go together")
	}
	return &o, nil
}

// readToken reads the bearer token: the file's content without
// surrounding white space.
func readToken(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("token file: %w", err)
	}
	tok := strings.TrimSpace(string(data))
	switch {
	case tok == "":
		return "", fmt.Errorf("token file %s is empty; put the bearer token in it", path)
	case strings.ContainsAny(tok, " \t\r\n"):
		return "", fmt.Errorf("token file %s holds more than one word; put only the bearer token in it", path)
	}
	return tok, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "agent: %v\n", err)
		return 2
	}
	if err := serve(ctx, o, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "agent: %v\n", err)
		return 1
	}
	return 0
}

func serve(ctx context.Context, o *options, stdout, stderr io.Writer) error {
	level := slog.LevelInfo
	if o.verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	token, err := readToken(o.tokenFile)
	if err != nil {
		return err
	}
	if fi, err := os.Stat(o.tokenFile); err == nil && fi.Mode().Perm()&0o077 != 0 {
		log.Warn("token file is readable by other users; chmod 600 it", slog.String("file", o.tokenFile))
	}
	if err := outsidePool(o.truststore, o.pool); err != nil {
		return err
	}
	store, err := certstore.OpenFileStore(o.truststore, o.storepass)
	if err != nil {
		return err
	}
	a, err := agent.New(agent.Config{
		Pool:        o.pool,
		Token:       token,
		TrustStore:  store,
		Parallel:    o.parallel,
		Connections: o.connections,
		Policy:      download.Policy{Allow: o.allow, Deny: o.deny},
		Callback:    o.callback,
		Logger:      log,
		Version:     version,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		a.Close(context.Background())
		return err
	}
	// Requests run under reqCtx, cancelled at shutdown, so that a long
	// migration prepare rolls back instead of holding the shutdown up.
	reqCtx, cancelRequests := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelRequests()
	srv := &http.Server{
		Handler:           a,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		BaseContext:       func(net.Listener) context.Context { return reqCtx },
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	scheme := "http"
	if o.tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(o.tlsCert, o.tlsKey)
		if err != nil {
			ln.Close()
			a.Close(context.Background())
			return fmt.Errorf("-tls-cert, -tls-key: %w", err)
		}
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		scheme = "https"
	}
	errc := make(chan error, 1)
	go func() {
		if scheme == "https" {
			errc <- srv.ServeTLS(ln, "", "")
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	fmt.Fprintf(stdout, "agent: listening on %s://%s\n", scheme, ln.Addr())
	log.Info("serving", slog.String("addr", ln.Addr().String()), slog.String("pool", a.Pool()), slog.String("truststore", store.Path()))

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown(sctx) }()
	cancelRequests()
	closeErr := a.Close(sctx)
	if err := <-shut; err != nil && serveErr == nil {
		serveErr = err
	}
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return serveErr
	}
	return closeErr
}

// outsidePool refuses a trust store inside the pool, where a download
// could replace it.
// Both are compared as the kernel resolves them: the pool, the store's
// directory and the store itself (when it is a symbolic link, even a
// dangling one) with their symbolic links followed.
func outsidePool(store, pool string) error {
	p, err := filepath.EvalSymlinks(pool)
	if err != nil {
		return nil // no pool: the agent's own checks say so
	}
	p, err = filepath.Abs(p)
	if err != nil {
		return err
	}
	dir, err := filepath.EvalSymlinks(filepath.Dir(store))
	if err != nil {
		return nil // OpenFileStore names the missing directory
	}
	s, err := filepath.Abs(filepath.Join(dir, filepath.Base(store)))
	if err != nil {
		return err
	}
	for range 40 { // as the kernel's limit on links followed
		target, err := os.Readlink(s)
		if err != nil {
			break // not a link (or absent): s is where the store is
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(filepath.Dir(s), target)
		}
		if d, err := filepath.EvalSymlinks(filepath.Dir(target)); err == nil {
			target = filepath.Join(d, filepath.Base(target))
		}
		s = target
	}
	if rel, err := filepath.Rel(p, s); err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return fmt.Errorf("trust store %s is inside the pool %s, where a download could replace it; keep it elsewhere", store, pool)
	}
	return nil
}
