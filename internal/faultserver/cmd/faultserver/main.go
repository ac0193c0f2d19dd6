// Command faultserver serves one resource over HTTP or HTTPS on loopback
// addresses, with the faults of package faultserver set by flags, for
// benchmark scripts that compare whole download programs (directdl, aria2c,
// curl) against the same server.
//
// Usage:
//
//	faultserver [flags]
//
// By default it serves 1 GiB of generated content (seed 1) at /file on
// 127.0.0.1 at a free port. Once it listens it prints, on stdout, lines a
// shell can evaluate:
//
//	URL=http://127.0.0.1:41234/file
//	SIZE=1073741824
//	SHA256=...   (with -digest; computed before listening)
//	MD5=...      (with -digest)
//
// and serves until interrupted (SIGINT or SIGTERM). Sizes and rates accept
// plain bytes or the suffixes K, M, G, T, P, E (powers of 1024), optionally
// followed by B or iB: -rate 20M is 20 MiB/s per connection, -server-rate
// 15MiB caps all connections together, as a mirror's uplink would.
// -corrupt-at and -corrupt-len flip that range of the content in every
// response (the ETag stays that of the true content): with several
// servers of the same -seed, a mirror with a bad piece.
//
// With -control the server also answers, on every listener:
//
//	GET /_stats    {"requests":N,"bytes_served":N}
//	POST /_reset   clears those counters and installs the faults again,
//	               which restarts the counted ones (204 No Content)
//
// and these requests are not counted themselves, so a script can reset
// the counters, run a download and read what it cost.
//
// With -tls-gen DIR it makes a test CA, intermediate and leaf for the
// loopback addresses, writes them to DIR (root.pem for curl --cacert and
// aria2c --ca-certificate; see faultserver.PKI.WritePEM) and serves HTTPS;
// -tls-cert and -tls-key serve given PEM files instead. Errors print one
// line "faultserver: MESSAGE" on stderr; usage errors exit with status 2,
// other failures with 1.
package main

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/directdl/directdl/internal/faultserver"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// sizeFlag is a flag.Value for a size in bytes.
type sizeFlag int64

func (s *sizeFlag) String() string { return strconv.FormatInt(int64(*s), 10) }

func (s *sizeFlag) Set(v string) error {
	n, err := faultserver.ParseSize(v)
	*s = sizeFlag(n)
	return err
}

// run is the program; it returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("faultserver", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		f              faultserver.Faults
		size           = sizeFlag(1 << 30)
		rate           sizeFlag
		resetAfter     sizeFlag
		truncateAfter  sizeFlag
		stallAfter     sizeFlag
		changeAfterB   sizeFlag
		addr           = fs.String("addr", "127.0.0.1", "loopback `IP[:PORT]` to listen on (HTTPS with TLS; plain HTTP then takes a free port)")
		hosts          = fs.String("hosts", "", "more loopback `IPs`, comma-separated, e.g. 127.0.0.2,127.0.0.3")
		path           = fs.String("path", faultserver.DefaultResourcePath, "URL `path` of the resource")
		seed           = fs.Uint64("seed", 1, "`seed` of the generated content")
		file           = fs.String("file", "", "serve this `file` instead of generated content")
		etag           = fs.String("etag", "", "ETag of the resource (default derived from path, size and seed)")
		tlsCert        = fs.String("tls-cert", "", "serve HTTPS with this PEM certificate `file` (leaf first, then intermediates)")
		tlsKey         = fs.String("tls-key", "", "PEM private key `file` of -tls-cert")
		tlsGen         = fs.String("tls-gen", "", "make a test CA and leaf, write their PEM files to `dir`, and serve HTTPS")
		noIntermediate = fs.Bool("no-intermediate", false, "with -tls-gen, serve the leaf without its intermediate")
		digest         = fs.Bool("digest", false, "print the content's SHA256 and MD5 (reads all of it first)")
		verbose        = fs.Bool("v", false, "log every request on stderr")
		control        = fs.Bool("control", false, "answer GET "+statsPath+" and POST "+resetPath+" (not counted themselves)")
		serverRate     sizeFlag
		corruptAt      sizeFlag
		corruptLen     sizeFlag
		corruptFirst   sizeFlag
	)
	fs.Var(&size, "size", "`size` of the generated content")
	fs.Var(&rate, "rate", "cap each connection at this many `bytes` per second (0: none)")
	fs.Var(&serverRate, "server-rate", "cap all connections together at this many `bytes` per second (0: none)")
	fs.Var(&corruptAt, "corrupt-at", "content `offset` of the first byte -corrupt-len flips")
	fs.Var(&corruptLen, "corrupt-len", "flip (XOR 0xFF) this many `bytes` of the content from -corrupt-at in every response (0: none)")
	fs.Var(&corruptFirst, "corrupt-first-piece", "place the -corrupt-at/-corrupt-len range in the piece of this `length` where the first response starts (-corrupt-at is then from that piece's start); POST /_reset places it anew")
	fs.DurationVar(&f.Latency, "latency", 0, "delay every response's headers by `duration`")
	fs.BoolVar(&f.NoRanges, "no-ranges", false, "ignore Range; no Accept-Ranges")
	fs.BoolVar(&f.Always200, "always-200", false, "answer ranges with 200 and the whole content while claiming Accept-Ranges")
	fs.BoolVar(&f.WrongContentRange, "wrong-content-range", false, "answer ranges with a Content-Range other than asked")
	fs.BoolVar(&f.Gzip, "gzip", false, "compress for clients that accept gzip")
	fs.Var(&resetAfter, "reset-after", "reset the connection after this many body `bytes` of a response")
	fs.Var(&truncateAfter, "truncate-after", "close the connection after this many body `bytes`, short of Content-Length")
	fs.Var(&stallAfter, "stall-after", "stop sending after this many body `bytes` of a response")
	fs.DurationVar(&f.StallFor, "stall-for", 0, "how long a stall lasts (0: until the client goes)")
	fs.IntVar(&f.BodyFaultResponses, "body-fault-responses", 0, "limit -reset-after, -truncate-after and -stall-after to the first `N` responses (0: all)")
	fs.IntVar(&f.FailRequests, "fail", 0, "fail the first `N` requests")
	fs.IntVar(&f.FailStatus, "fail-status", 503, "`status` of failed requests")
	fs.DurationVar(&f.RetryAfter, "retry-after", 0, "send Retry-After with failures")
	fs.IntVar(&f.ChangeAfterRequests, "change-after-requests", 0, "change the resource's ETag when `N` requests have started")
	fs.Var(&changeAfterB, "change-after-bytes", "change the resource's ETag when this many `bytes` have been sent")
	fs.BoolVar(&f.ChangeContent, "change-content", false, "change the content too, with the ETag")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	usage := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "faultserver: "+format+"\n", a...)
		return 2
	}
	if fs.NArg() > 0 {
		return usage("unexpected arguments %q", fs.Args())
	}
	if (*tlsCert == "") != (*tlsKey == "") {
		return usage("-tls-cert and -tls-key go together")
	}
	if *tlsCert != "" && *tlsGen != "" {
		return usage("-tls-gen and -tls-cert exclude each other")
	}
	f.Rate, f.ResetAfter, f.TruncateAfter = int64(rate), int64(resetAfter), int64(truncateAfter)
	f.StallAfter, f.ChangeAfterBytes = int64(stallAfter), int64(changeAfterB)
	f.ServerRate, f.CorruptOffset, f.CorruptLength = int64(serverRate), int64(corruptAt), int64(corruptLen)
	f.CorruptFirstPiece = int64(corruptFirst)
	if corruptFirst > 0 && corruptLen == 0 {
		return usage("-corrupt-first-piece needs -corrupt-len")
	}
	if corruptAt > 0 && corruptLen == 0 {
		return usage("-corrupt-at needs -corrupt-len")
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "faultserver: %v\n", err)
		return 1
	}

	res := faultserver.PatternResource(*path, *seed, int64(size))
	res.ETag = *etag
	if *file != "" {
		fh, err := os.Open(*file)
		if err != nil {
			return fail(err)
		}
		defer fh.Close()
		fi, err := fh.Stat()
		if err != nil {
			return fail(err)
		}
		res.Content, res.Size, res.ModTime = fh, fi.Size(), fi.ModTime()
	}
	opts := []faultserver.Option{faultserver.WithResource(res), faultserver.WithFaults(f)}
	all := []string{*addr}
	if *hosts != "" {
		all = append(all, strings.Split(*hosts, ",")...)
	}
	opts = append(opts, faultserver.WithHosts(all...))
	switch {
	case *tlsCert != "":
		cert, err := tls.LoadX509KeyPair(*tlsCert, *tlsKey)
		if err != nil {
			return fail(err)
		}
		opts = append(opts, faultserver.WithTLS(cert))
	case *tlsGen != "":
		pki, err := faultserver.NewPKI(0)
		if err != nil {
			return fail(err)
		}
		if err := pki.WritePEM(*tlsGen); err != nil {
			return fail(err)
		}
		opts = append(opts, faultserver.WithTLS(pki.Certificate(!*noIntermediate)))
	}
	// The control handlers need the server, which exists only once Start
	// has returned; a request before that (none is expected: the URL is
	// printed after) gets 503.
	var started atomic.Pointer[faultserver.Server]
	if *control {
		if *path == statsPath || *path == resetPath {
			return usage("-path %s is taken by -control; choose another", *path)
		}
		opts = append(opts, faultserver.WithHandler(statsPath, statsHandler(&started)),
			faultserver.WithHandler(resetPath, resetHandler(&started)))
	}
	if *verbose {
		opts = append(opts, faultserver.WithLogger(slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	}

	var sums string
	if *digest {
		s, m := sha256.New(), md5.New()
		if err := faultserver.Hash(ctx, res.Content, res.Size, s, m); err != nil {
			return fail(err)
		}
		sums = fmt.Sprintf("SHA256=%x\nMD5=%x\n", s.Sum(nil), m.Sum(nil))
	}
	srv, err := faultserver.Start(opts...)
	if err != nil {
		return fail(err)
	}
	defer srv.Close()
	started.Store(srv)
	fmt.Fprintf(stdout, "URL=%s\nSIZE=%d\n%s", srv.URL(*path), res.Size, sums)
	<-ctx.Done()
	return 0
}

// Paths of the -control endpoints.
const (
	statsPath = "/_stats"
	resetPath = "/_reset"
)

// stats is the JSON of GET /_stats.
type stats struct {
	Requests    int64 `json:"requests"`
	BytesServed int64 `json:"bytes_served"`
}

// statsHandler answers GET /_stats with the counters of the server in srv.
func statsHandler(srv *atomic.Pointer[faultserver.Server]) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := controlServer(w, r, srv, http.MethodGet)
		if s == nil {
			return
		}
		st := s.Stats()
		b, _ := json.Marshal(stats{Requests: st.Requests, BytesServed: st.BytesServed})
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.Write(append(b, '\n'))
	})
}

// resetHandler answers POST /_reset by resetting the counters of the
// server in srv and installing its faults again, which restarts the
// counted faults and lets -corrupt-first-piece place its range anew.
func resetHandler(srv *atomic.Pointer[faultserver.Server]) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := controlServer(w, r, srv, http.MethodPost)
		if s == nil {
			return
		}
		s.SetFaults(s.Faults())
		s.ResetStats()
		w.WriteHeader(http.StatusNoContent)
	})
}

// controlServer returns the server for a control request with the given
// method, or answers the request with an error and returns nil.
func controlServer(w http.ResponseWriter, r *http.Request, srv *atomic.Pointer[faultserver.Server], method string) *faultserver.Server {
	if r.Method != method {
		w.Header().Set("Allow", method)
		http.Error(w, r.URL.Path+" takes "+method+" only", http.StatusMethodNotAllowed)
		return nil
	}
	s := srv.Load()
	if s == nil {
		http.Error(w, "faultserver is starting", http.StatusServiceUnavailable)
	}
	return s
}
