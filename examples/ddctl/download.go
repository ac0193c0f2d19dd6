package main

// ddctl download: one file, or a batch of files, through download.Client.
//
// Exit codes: 0 when every file was downloaded (and verified, where a
// checksum was given); 1 when a download failed; 2 on a usage error
// (including a bad -checksum, a bad CIDR and a malformed batch file); 4
// when a checksum did not match (nothing is then left at the destination)
// and, in a batch, every failure was such a mismatch.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"

	"github.com/directdl/directdl/certstore"
	"github.com/directdl/directdl/download"
	"github.com/directdl/directdl/download/metalink"
	"github.com/directdl/directdl/qcow2"
)

const downloadUsage = "[flags] -o DEST URL | [flags] -metalink FILE -o DEST | [flags] -batch FILE [-parallel N] -o DIR"

// downloadFlags are the flags of ddctl download.
type downloadFlags struct {
	dest, checksum                                string
	connections                                   int
	connectTimeout, socketTimeout, requestTimeout time.Duration
	retries, maxRedirects                         int
	minSplit                                      sizeValue
	caFiles                                       stringList
	truststore, storepass                         string
	allow, deny                                   prefixList
	onlyAllowed                                   bool
	noResume, json, quiet                         bool
	batch                                         string
	parallel                                      int
	metalink, metalinkFile                        string
	mirrorConnections                             int
	noMetalinkHTTP                                bool
}

func (f *downloadFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.dest, "o", "", "destination `DEST`: a file path, or an existing directory (the file is then named after the URL)")
	fs.StringVar(&f.checksum, "checksum", "", "expected `checksum`: {SHA-256}HEX, sha256:HEX, bare HEX (MD5), ...")
	fs.IntVar(&f.connections, "connections", download.DefaultConnections, "`N` parallel connections per file, 1 to 64")
	fs.DurationVar(&f.connectTimeout, "connect-timeout", download.DefaultConnectTimeout, "bound on each connection's dial and TLS handshake")
	fs.DurationVar(&f.socketTimeout, "socket-timeout", download.DefaultSocketTimeout, "how long a response may send nothing before it is retried")
	fs.DurationVar(&f.requestTimeout, "request-timeout", download.DefaultConnectionRequestTimeout, "how long to wait for a free connection to the host")
	fs.IntVar(&f.retries, "retries", download.DefaultRetries, "`N` retries of a failed request (0: none)")
	fs.IntVar(&f.maxRedirects, "max-redirects", download.DefaultMaxRedirects, "`N` redirects to follow at most (0: none)")
	fs.Var(&f.minSplit, "min-split", "smallest range split off for another connection, a `SIZE` such as 4M (default 1M)")
	fs.Var(&f.caFiles, "ca-file", "`PEM` file of CA certificates to trust besides the system's (repeatable)")
	fs.StringVar(&f.truststore, "truststore", "", "JKS or PKCS12 trust store `FILE` of CA certificates to trust besides the system's")
	fs.StringVar(&f.storepass, "storepass", "", "`password` of -truststore")
	fs.Var(&f.allow, "allow-cidr", "`CIDR` (or IP) to allow even if special, such as 127.0.0.0/8 (repeatable, or comma-separated)")
	fs.Var(&f.deny, "deny-cidr", "`CIDR` (or IP) to refuse, whatever -allow-cidr says (repeatable, or comma-separated)")
	fs.BoolVar(&f.onlyAllowed, "only-allowed", false, "refuse every address outside the -allow-cidr prefixes")
	fs.BoolVar(&f.noResume, "no-resume", false, "start from zero instead of resuming an interrupted download")
	fs.BoolVar(&f.json, "json", false, "print the result as JSON on stdout")
	fs.BoolVar(&f.quiet, "quiet", false, "print no progress and no summary, only errors")
	fs.StringVar(&f.batch, "batch", "", "`FILE` of \"URL [CHECKSUM]\" lines, downloaded into the directory -o")
	fs.IntVar(&f.parallel, "parallel", 2, "with -batch, `N` files downloaded at once")
	fs.StringVar(&f.metalink, "metalink", "", "download the file a local Metalink `FILE` describes, from its mirrors (instead of a URL)")
	fs.StringVar(&f.metalinkFile, "metalink-file", "", "the file to get from a Metalink (-metalink or a .metalink/.meta4 URL) that describes several, by `NAME`")
	fs.IntVar(&f.mirrorConnections, "mirror-connections", 0, "at most `N` connections to one mirror (default: -connections shared evenly among the mirrors)")
	fs.BoolVar(&f.noMetalinkHTTP, "no-metalink-http", false, "ignore Link rel=duplicate mirrors and Digest headers of plain HTTP URLs")
}

// downloadCmd is ddctl download.
func downloadCmd(ctx context.Context, e env, args []string) error {
	fs := newFlags("download")
	var f downloadFlags
	f.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })

	// Everything that is a usage error is found before anything is read
	// or fetched.
	if f.dest == "" {
		return usageErr("-o DEST required")
	}
	if set["truststore"] != set["storepass"] {
		return usageErr("-truststore and -storepass go together: give the trust store's password (keytool's default is changeit)")
	}
	if f.onlyAllowed && len(f.allow) == 0 {
		return usageErr("-only-allowed needs at least one -allow-cidr")
	}
	var single *singleDownload
	var items []batchItem
	if set["mirror-connections"] && (f.mirrorConnections < 1 || f.mirrorConnections > 64) {
		return usageErr("-mirror-connections %d: want 1 to 64", f.mirrorConnections)
	}
	if f.metalink != "" {
		if f.batch != "" || fs.NArg() != 0 {
			return usageErr("-metalink FILE names the download: no URL and no -batch with it")
		}
		s, err := prepareMetalinkFile(f)
		if err != nil {
			return err
		}
		single = s
	} else if f.batch == "" {
		if set["parallel"] {
			return usageErr("-parallel needs -batch")
		}
		if fs.NArg() != 1 {
			return usageErr("want exactly one URL after the flags, got %d arguments", fs.NArg())
		}
		s, err := prepareSingle(f, fs.Arg(0))
		if err != nil {
			return err
		}
		single = s
	} else {
		if fs.NArg() != 0 {
			return usageErr("-batch takes its URLs from FILE: no URL arguments (got %q)", fs.Arg(0))
		}
		if f.metalinkFile != "" {
			return usageErr("-metalink-file cannot go with -batch")
		}
		if f.checksum != "" {
			return usageErr("-checksum cannot go with -batch: put each checksum after its URL in FILE")
		}
		if f.parallel < 1 {
			return usageErr("-parallel %d: want at least 1", f.parallel)
		}
		var err error
		if items, err = readBatch(f.batch, f.dest); err != nil {
			return err
		}
	}

	pool, err := trustPool(f.caFiles, f.truststore, f.storepass)
	if err != nil {
		return err
	}
	var bar *progressBar
	if !f.quiet && isTerminal(e.stderr) {
		bar = newProgressBar(e.stderr)
	}
	c, err := newDownloadClient(f, pool, bar)
	if err != nil {
		return usageErr("%v", err)
	}
	defer c.CloseIdleConnections()

	if single != nil {
		return runSingle(ctx, e, c, f, bar, single)
	}
	return runBatch(ctx, e, c, f, bar, items)
}

// newDownloadClient turns the flags into a download.Client. Its errors are
// bad flag values.
func newDownloadClient(f downloadFlags, pool *x509.CertPool, bar *progressBar) (*download.Client, error) {
	opts := []download.Option{
		download.WithConnections(f.connections),
		download.WithConnectTimeout(f.connectTimeout),
		download.WithSocketTimeout(f.socketTimeout),
		download.WithConnectionRequestTimeout(f.requestTimeout),
		download.WithRetries(f.retries),
		download.WithMaxRedirects(f.maxRedirects),
		download.WithResume(!f.noResume),
		download.WithPolicy(download.Policy{Allow: f.allow, Deny: f.deny, OnlyAllowed: f.onlyAllowed}),
	}
	if f.minSplit.set {
		opts = append(opts, download.WithMinSplit(f.minSplit.n))
	}
	if f.mirrorConnections > 0 {
		opts = append(opts, download.WithMirrorConnections(f.mirrorConnections))
	}
	if f.noMetalinkHTTP {
		opts = append(opts, download.WithMetalinkHTTP(false))
	}
	if pool != nil {
		opts = append(opts, download.WithRootCAs(pool))
	}
	if bar != nil {
		opts = append(opts, download.WithProgress(bar.update, 200*time.Millisecond))
	}
	return download.New(opts...)
}

// singleDownload is the one file of ddctl download without -batch.
type singleDownload struct {
	url  string
	path string
	sum  download.Checksum
	// file is the Metalink file to get (-metalink).
	file *metalink.File
	// intoDir: the URL names a Metalink document and -o a directory,
	// where the file goes under the name the document gives it.
	intoDir string
}

// prepareSingle checks the checksum, the URL and the destination of a
// single download; its errors are usage errors.
func prepareSingle(f downloadFlags, rawURL string) (*singleDownload, error) {
	sum, err := download.ParseChecksum(f.checksum)
	if err != nil {
		return nil, usageErr("-checksum: %v", err)
	}
	u, err := parseURL(rawURL)
	if err != nil {
		return nil, usageErr("%v", err)
	}
	if f.metalinkFile != "" && !download.IsMetalinkURL(u) {
		return nil, usageErr("-metalink-file needs -metalink or a URL ending in .metalink or .meta4")
	}
	path := f.dest
	if fi, err := os.Stat(f.dest); err == nil && fi.IsDir() && download.IsMetalinkURL(u) {
		// The file goes in as a parsed Metalink file, whose request
		// reads no ?checksum= from the URL: take it here.
		usum, _, err := download.ChecksumFromURL(u)
		if err != nil {
			return nil, usageErr("%v", err)
		}
		if !usum.IsZero() && !sum.IsZero() && usum != sum {
			return nil, usageErr("-checksum %s and the URL's checksum %s differ", sum, usum)
		}
		if sum.IsZero() {
			sum = usum
		}
		return &singleDownload{url: rawURL, sum: sum, intoDir: f.dest}, nil
	} else if err == nil && fi.IsDir() {
		name, err := fileNameFromURL(u)
		if err != nil {
			return nil, usageErr("%v; give -o a file path", err)
		}
		path = filepath.Join(f.dest, name)
	} else if strings.HasSuffix(f.dest, "/") || strings.HasSuffix(f.dest, string(filepath.Separator)) {
		return nil, usageErr("-o %s: no such directory; create it first, or give a file path", f.dest)
	}
	return &singleDownload{url: rawURL, path: path, sum: sum}, nil
}

func runSingle(ctx context.Context, e env, c *download.Client, f downloadFlags, bar *progressBar, s *singleDownload) error {
	req := download.Request{URL: s.url, Path: s.path, Sum: s.sum, Metalink: s.file}
	var made []string // directories made for the file, removed if it fails
	if s.intoDir != "" {
		file := s.file
		if file == nil {
			doc, err := c.FetchMetalink(ctx, s.url)
			if err != nil {
				return downloadError(ctx, f, err)
			}
			if file, err = doc.Pick(f.metalinkFile); err != nil {
				return usageErr("%s: %v; choose with -metalink-file", download.RedactURL(s.url), err)
			}
		}
		var err error
		if req.Path, made, err = metalinkPath(*file, s.intoDir); err != nil {
			removeDirs(made)
			return err
		}
		req.Metalink = file
	} else if s.file == nil {
		req.MetalinkFile = f.metalinkFile
	}
	res, err := c.Get(ctx, req)
	if err != nil {
		removeDirs(made)
	}
	bar.finish()
	if err != nil {
		return downloadError(ctx, f, err)
	}
	if f.json {
		return writeJSON(e, resultJSON(res))
	}
	if !f.quiet {
		fmt.Fprintln(e.stderr, summary(res))
	}
	return nil
}

// downloadError gives a failed download's error its exit code: 4 for a
// checksum mismatch, 1 for anything else.
func downloadError(ctx context.Context, f downloadFlags, err error) error {
	switch {
	case ctx.Err() != nil:
		hint := "run the same command again to resume"
		if f.noResume {
			hint = "nothing was kept, as -no-resume asked"
		}
		return fmt.Errorf("interrupted: %v (%s)", err, hint)
	case errors.Is(err, download.ErrChecksumMismatch):
		return &exitError{code: 4, msg: err.Error()}
	}
	return errors.New(withHint(err))
}

// withHint is err's message with the ddctl flag that addresses it, for the
// failures whose fix is a flag.
func withHint(err error) string {
	msg := oneLine(err.Error())
	var unknownCA x509.UnknownAuthorityError
	switch {
	case errors.Is(err, download.ErrDenied):
		msg += " (ddctl: see -allow-cidr, -deny-cidr)"
	case errors.Is(err, download.ErrTooManyRedirects):
		msg += " (ddctl: see -max-redirects)"
	case errors.As(err, &unknownCA):
		msg += " (ddctl: trust its CA with -ca-file or -truststore)"
	}
	return msg
}

// downloadResult is the -json result of one download. Its keys are part of
// ddctl's contract.
type downloadResult struct {
	Path             string   `json:"path"`
	Size             int64    `json:"size"`
	Digest           string   `json:"digest"`
	Verified         bool     `json:"verified"`
	BytesTransferred int64    `json:"bytes_transferred"`
	ResumedFrom      int64    `json:"resumed_from"`
	Connections      int      `json:"connections"`
	Redirects        []string `json:"redirects"`
	DurationMS       int64    `json:"duration_ms"`
	// Sources and PiecesRefetched are beyond CLI.md's keys: what each
	// source (URL, mirror) did, and the Metalink pieces fetched again.
	Sources         []download.MirrorReport `json:"sources"`
	PiecesRefetched int                     `json:"pieces_refetched"`
}

// batchResult is one element of the -batch -json list: the result of one
// download, with its URL and, when it failed, the error (and zero or null
// result fields).
type batchResult struct {
	URL string `json:"url"`
	downloadResult
	Error *string `json:"error"`
}

func resultJSON(r *download.Result) downloadResult {
	redirects := r.Redirects
	if redirects == nil {
		redirects = []string{} // a list in JSON, never null, on success
	}
	return downloadResult{
		Path:             r.Path,
		Size:             r.Size,
		Digest:           r.Digest,
		Verified:         r.Verified,
		BytesTransferred: r.BytesTransferred,
		ResumedFrom:      r.ResumedFrom,
		Connections:      r.Connections,
		Redirects:        redirects,
		DurationMS:       r.Duration.Milliseconds(),
		Sources:          r.Sources,
		PiecesRefetched:  r.PiecesRefetched,
	}
}

// summary is the human line about a finished download.
func summary(r *download.Result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s in %s", r.Path, humanBytes(r.Size), r.Duration.Round(time.Millisecond))
	if secs := r.Duration.Seconds(); secs > 0 && r.BytesTransferred > 0 {
		fmt.Fprintf(&b, " (%s/s", humanBytes(int64(float64(r.BytesTransferred)/secs)))
		if r.Connections == 1 {
			b.WriteString(", 1 connection)")
		} else {
			fmt.Fprintf(&b, ", %d connections)", r.Connections)
		}
	}
	if r.ResumedFrom > 0 {
		fmt.Fprintf(&b, ", resumed from %s", humanBytes(r.ResumedFrom))
	}
	if n := len(r.Redirects) - 1; n == 1 {
		b.WriteString(", after 1 redirect")
	} else if n > 1 {
		fmt.Fprintf(&b, ", after %d redirects", n)
	}
	if len(r.Sources) > 1 {
		dropped := 0
		for _, s := range r.Sources {
			if s.Dropped != "" {
				dropped++
			}
		}
		fmt.Fprintf(&b, ", from %d sources", len(r.Sources))
		if dropped > 0 {
			fmt.Fprintf(&b, " (%d dropped)", dropped)
		}
	}
	if r.PiecesRefetched == 1 {
		b.WriteString(", 1 bad piece fetched again")
	} else if r.PiecesRefetched > 1 {
		fmt.Fprintf(&b, ", %d bad pieces fetched again", r.PiecesRefetched)
	}
	if r.Verified {
		fmt.Fprintf(&b, "; %s verified", r.Digest)
	} else {
		fmt.Fprintf(&b, "; %s (not verified: no checksum given)", r.Digest)
	}
	return b.String()
}

// parseURL checks that raw is an http, https or nfs URL with a host.
func parseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("URL %s: %v", download.RedactURL(raw), download.RedactURL(errors.Unwrap(err).Error()))
	}
	if u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "nfs" {
		return nil, fmt.Errorf("URL %s: scheme %q is not http, https or nfs", download.RedactURL(u.String()), u.Scheme)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("URL %s has no host", download.RedactURL(u.String()))
	}
	return u, nil
}

// fileNameFromURL is the last segment of u's path, unescaped: the name of
// the file when -o is a directory.
func fileNameFromURL(u *url.URL) (string, error) {
	p := u.EscapedPath()
	name, err := url.PathUnescape(p[strings.LastIndex(p, "/")+1:])
	if err != nil || name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\\\x00") {
		return "", fmt.Errorf("cannot name a file from URL %s: its path does not end in a usable file name", download.RedactURL(u.String()))
	}
	return name, nil
}

// batchItem is one line of a -batch file.
type batchItem struct {
	url  string
	path string
	sum  download.Checksum
}

// readBatch reads a -batch file: one "URL [CHECKSUM]" a line, with blank
// lines and lines starting with # ignored. Each file goes into dir, named
// after its URL. A file that cannot be read fails the command (exit 1); a
// malformed one is a usage error, reported with its line number.
func readBatch(name, dir string) ([]batchItem, error) {
	fi, err := os.Stat(dir)
	if err != nil || !fi.IsDir() {
		return nil, usageErr("-o %s: with -batch, -o must be an existing directory", dir)
	}
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("batch file: %w", err)
	}
	var items []batchItem
	lineOf := map[string]int{} // destination -> line
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		if len(fields) > 2 {
			return nil, usageErr("%s:%d: want URL [CHECKSUM], got %d fields", name, n, len(fields))
		}
		u, err := parseURL(fields[0])
		if err != nil {
			return nil, usageErr("%s:%d: %v", name, n, err)
		}
		if download.IsMetalinkURL(u) {
			// Its file is named by the document, which is not read yet;
			// one run with -o DIR names it so.
			return nil, usageErr("%s:%d: a Metalink URL cannot go in a batch: download it on its own with -o DIR", name, n)
		}
		it := batchItem{url: fields[0]}
		if len(fields) == 2 {
			if it.sum, err = download.ParseChecksum(fields[1]); err != nil {
				return nil, usageErr("%s:%d: %v", name, n, err)
			}
		}
		base, err := fileNameFromURL(u)
		if err != nil {
			return nil, usageErr("%s:%d: %v", name, n, err)
		}
		it.path = filepath.Join(dir, base)
		if prev, ok := lineOf[it.path]; ok {
			return nil, usageErr("%s:%d: file name %q is also that of line %d; download one of them separately with -o FILE", name, n, base, prev)
		}
		lineOf[it.path] = n
		items = append(items, it)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("batch file %s: %w", name, err)
	}
	if len(items) == 0 {
		return nil, usageErr("batch file %s lists no URL", name)
	}
	return items, nil
}

func runBatch(ctx context.Context, e env, c *download.Client, f downloadFlags, bar *progressBar, items []batchItem) error {
	reqs := make([]download.Request, len(items))
	for i, it := range items {
		reqs[i] = download.Request{URL: it.url, Path: it.path, Sum: it.sum}
	}
	bar.expect(len(reqs))
	started := time.Now()
	outs := c.Batch(ctx, reqs, f.parallel)
	bar.finish()

	results := make([]batchResult, len(outs))
	failed, mismatched := 0, 0
	for i, o := range outs {
		results[i].URL = download.RedactURL(items[i].url)
		if o.Err != nil {
			failed++
			if errors.Is(o.Err, download.ErrChecksumMismatch) {
				mismatched++
			}
			msg := oneLine(o.Err.Error())
			results[i].Error = &msg
			if !f.json {
				fmt.Fprintf(e.stderr, "failed: %s: %s\n", results[i].URL, withHint(o.Err))
			}
			continue
		}
		results[i].downloadResult = resultJSON(o.Result)
		if !f.json && !f.quiet {
			fmt.Fprintln(e.stderr, summary(o.Result))
		}
	}
	if f.json {
		if err := writeJSON(e, results); err != nil {
			return err
		}
	}
	switch {
	case failed == 0:
		if !f.json && !f.quiet {
			var bytes int64
			for _, o := range outs {
				bytes += o.Result.BytesTransferred
			}
			fmt.Fprintf(e.stderr, "%d of %d downloads done, %s transferred in %s\n", len(outs), len(outs), humanBytes(bytes), time.Since(started).Round(time.Millisecond))
		}
		return nil
	case ctx.Err() != nil:
		return fmt.Errorf("interrupted: %d of %d downloads did not finish", failed, len(outs))
	case mismatched == failed:
		return &exitError{code: 4, msg: fmt.Sprintf("%d of %d downloads failed: checksum mismatch", failed, len(outs))}
	}
	msg := fmt.Sprintf("%d of %d downloads failed", failed, len(outs))
	if mismatched > 0 {
		msg += fmt.Sprintf(", %d by checksum mismatch", mismatched)
	}
	return errors.New(msg)
}

// trustPool loads the -ca-file PEM files and the -truststore into one
// pool, trusted besides the system roots; nil when neither is given.
func trustPool(caFiles []string, store, pass string) (*x509.CertPool, error) {
	if len(caFiles) == 0 && store == "" {
		return nil, nil
	}
	var certs []*x509.Certificate
	for _, name := range caFiles {
		c, err := readPEMCerts(name)
		if err != nil {
			return nil, err
		}
		certs = append(certs, c...)
	}
	if store != "" {
		c, err := readTruststore(store, pass)
		if err != nil {
			return nil, err
		}
		certs = append(certs, c...)
	}
	entries := make([]certstore.Entry, len(certs))
	for i, c := range certs {
		entries[i] = certstore.Entry{Cert: c}
	}
	return certstore.NewCertPool(entries), nil
}

// readPEMCerts reads every CERTIFICATE block of a PEM file; other blocks,
// such as a private key, are skipped.
func readPEMCerts(name string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("-ca-file: %w", err)
	}
	noPEM := fmt.Errorf("-ca-file %s holds no PEM CERTIFICATE block; give CA certificates as PEM (-----BEGIN CERTIFICATE-----), or a JKS or PKCS12 store with -truststore", name)
	if f, err := certstore.DetectFormat(data); err != nil || f != certstore.FormatPEM {
		return nil, noPEM
	}
	entries, _, err := certstore.ReadStore(data, "")
	if err != nil {
		if !bytes.Contains(data, []byte("CERTIFICATE-----")) {
			return nil, noPEM
		}
		return nil, fmt.Errorf("-ca-file %s: %w", name, err)
	}
	certs := make([]*x509.Certificate, len(entries))
	for i, e := range entries {
		certs[i] = e.Cert
	}
	return certs, nil
}

// readTruststore reads the certificates of a JKS or PKCS12 store, told
// apart by their first bytes: the trusted certificate entries, and the
// chains of private key entries (a client that is given a store trusts
// all of it).
func readTruststore(name, pass string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("-truststore: %w", err)
	}
	if f, err := certstore.DetectFormat(data); err == nil && f == certstore.FormatPEM {
		return nil, fmt.Errorf("-truststore %s is PEM, not a JKS or PKCS12 store; give it with -ca-file", name)
	}
	c, err := certstore.ReadStoreContents(data, pass)
	switch {
	case errors.Is(err, certstore.ErrWrongPassword):
		return nil, fmt.Errorf("-truststore %s could not be opened with this -storepass: the password is wrong or the file is damaged", name)
	case err != nil:
		return nil, fmt.Errorf("-truststore %s: %w", name, err)
	}
	certs := c.Certificates()
	if len(certs) == 0 {
		return nil, fmt.Errorf("-truststore %s holds no certificate", name)
	}
	return certs, nil
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

func (l *stringList) Set(s string) error { *l = append(*l, s); return nil }

// prefixList is a repeatable flag of CIDR prefixes; each value may also
// list several, separated by commas. A bare IP address stands for itself.
type prefixList []netip.Prefix

func (l *prefixList) String() string {
	s := make([]string, len(*l))
	for i, p := range *l {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

func (l *prefixList) Set(v string) error {
	for _, f := range strings.Split(v, ",") {
		f = strings.TrimSpace(f)
		p, err := parsePrefix(f)
		if err != nil {
			return err
		}
		*l = append(*l, p)
	}
	return nil
}

// parsePrefix parses a CIDR prefix such as 10.0.0.0/8, or an IP address
// as the prefix of that one address.
func parsePrefix(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("%q is not an IP address or a CIDR prefix such as 10.0.0.0/8 or fd00::/8", s)
		}
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not a CIDR prefix such as 10.0.0.0/8 or fd00::/8", s)
	}
	if m := p.Masked(); m != p {
		return netip.Prefix{}, fmt.Errorf("%s has host bits set; did you mean %s or %s?", p, m, netip.PrefixFrom(p.Addr(), p.Addr().BitLen()))
	}
	return p, nil
}

// sizeValue is a flag of a size in bytes, with qemu-img's suffixes (4M).
type sizeValue struct {
	n   int64
	set bool
}

func (v *sizeValue) String() string {
	if v == nil || !v.set {
		return ""
	}
	return fmt.Sprint(v.n)
}

func (v *sizeValue) Set(s string) error {
	n, err := qcow2.ParseSize(s)
	if err != nil {
		return err
	}
	v.n, v.set = n, true
	return nil
}

// isTerminal reports whether w is a terminal, where a progress bar may be
// drawn.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// progressBar draws one status line for the downloads of a command,
// redrawn in place. It is only used on a terminal. A nil *progressBar
// draws nothing.
type progressBar struct {
	mu     sync.Mutex
	w      io.Writer
	files  map[string]download.Progress // the latest event of each download, by destination
	count  int                          // the number of downloads, when more than one
	drawn  bool
	closed bool
}

func newProgressBar(w io.Writer) *progressBar {
	return &progressBar{w: w, files: map[string]download.Progress{}}
}

// expect says how many downloads the bar covers.
func (b *progressBar) expect(n int) {
	if b == nil {
		return
	}
	b.mu.Lock()
	b.count = n
	b.mu.Unlock()
}

// update is the download.WithProgress sink.
func (b *progressBar) update(p download.Progress) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	b.files[p.Path] = p
	fmt.Fprintf(b.w, "\r%s\x1b[K", b.line())
	b.drawn = true
}

// finish clears the bar, so that what follows starts on a clean line, and
// ignores later events.
func (b *progressBar) finish() {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.drawn {
		fmt.Fprint(b.w, "\r\x1b[K")
	}
	b.closed = true
}

// line renders the status of all downloads together.
func (b *progressBar) line() string {
	var done, total int64
	var rate float64
	conns, finished := 0, 0
	known := true
	for _, p := range b.files {
		done += p.Done
		if p.Total < 0 {
			known = false
		} else {
			total += p.Total
		}
		if p.Final {
			finished++
		} else {
			rate += p.Rate
			conns += p.Connections
		}
	}
	var s strings.Builder
	if b.count > 1 {
		fmt.Fprintf(&s, "%d/%d files ", finished, b.count)
	}
	const width = 24
	if known && total > 0 {
		filled := int(float64(width) * float64(done) / float64(total))
		filled = min(max(filled, 0), width)
		fmt.Fprintf(&s, "[%s%s] %3d%% %s/%s", strings.Repeat("=", filled), strings.Repeat(" ", width-filled),
			int(100*done/total), humanBytes(done), humanBytes(total))
	} else {
		s.WriteString(humanBytes(done))
	}
	fmt.Fprintf(&s, " %s/s", humanBytes(int64(rate)))
	if known && rate > 0 && total > done {
		eta := time.Duration(float64(total-done) / rate * float64(time.Second))
		fmt.Fprintf(&s, " ETA %s", eta.Round(time.Second))
	}
	if conns > 0 {
		fmt.Fprintf(&s, " %d conn", conns)
	}
	return s.String()
}

// humanBytes formats n bytes with binary units: 512 B, 1.5 KiB, 8.0 MiB.
func humanBytes(n int64) string {
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	v := float64(n)
	for _, u := range []string{"KiB", "MiB", "GiB", "TiB", "PiB"} {
		v /= 1024
		if v < 1024 {
			return fmt.Sprintf("%.1f %s", v, u)
		}
	}
	return fmt.Sprintf("%.1f EiB", v/1024)
}

// prepareMetalinkFile reads the local Metalink document of -metalink and
// picks the file to download; its errors are usage errors.
func prepareMetalinkFile(f downloadFlags) (*singleDownload, error) {
	sum, err := download.ParseChecksum(f.checksum)
	if err != nil {
		return nil, usageErr("-checksum: %v", err)
	}
	fh, err := os.Open(f.metalink)
	if err != nil {
		return nil, usageErr("-metalink: %v", err)
	}
	defer fh.Close()
	doc, err := metalink.Parse(fh, metalink.RequireSize())
	if err != nil {
		return nil, usageErr("-metalink %s: %v", f.metalink, err)
	}
	file, err := doc.Pick(f.metalinkFile)
	if err != nil {
		return nil, usageErr("-metalink %s: %v; choose with -metalink-file", f.metalink, err)
	}
	s := &singleDownload{url: "metalink:" + file.Name, path: f.dest, sum: sum, file: file}
	if fi, err := os.Stat(f.dest); err == nil && fi.IsDir() {
		if _, err := file.SafeJoin(f.dest); err != nil {
			return nil, usageErr("%v", err)
		}
		s.path, s.intoDir = "", f.dest // named, and its directories made, only when it runs
	} else if strings.HasSuffix(f.dest, "/") || strings.HasSuffix(f.dest, string(filepath.Separator)) {
		return nil, usageErr("-o %s: no such directory; create it first, or give a file path", f.dest)
	}
	return s, nil
}

// metalinkPath is where a Metalink file goes in dir: under the name the
// document gives it, which may hold subdirectories. SafeJoin keeps the
// path inside dir; the subdirectories are made one at a time, refusing any
// that is a symbolic link, so that nothing lands outside dir. It returns
// the directories it made, in order. (Another user who can write to dir
// could still swap a checked directory for a link before the download
// opens its file; dir is expected to be the agent's own.)
func metalinkPath(f metalink.File, dir string) (string, []string, error) {
	p, err := f.SafeJoin(dir)
	if err != nil {
		return "", nil, usageErr("%v", err)
	}
	rel, err := filepath.Rel(dir, filepath.Dir(p))
	if err != nil {
		return "", nil, err
	}
	var made []string
	at := dir
	for _, part := range strings.Split(rel, string(filepath.Separator)) {
		if part == "." {
			continue
		}
		at = filepath.Join(at, part)
		err := os.Mkdir(at, 0o755)
		if err == nil {
			made = append(made, at)
		} else if !errors.Is(err, os.ErrExist) {
			return "", made, err
		}
		fi, err := os.Lstat(at)
		if err != nil {
			return "", made, err
		}
		if !fi.IsDir() {
			return "", made, fmt.Errorf("%s is not a directory (a symbolic link or a file); the Metalink's file %q cannot go there", at, f.Name)
		}
	}
	return p, made, nil
}

// removeDirs removes the directories metalinkPath made, deepest first, if
// they are empty: a partial download in one stays there to resume.
func removeDirs(made []string) {
	for i := len(made) - 1; i >= 0; i-- {
		os.Remove(made[i])
	}
}

// defaultDownloadFlags returns download's flags at their defaults, for
// commands that fetch with a few of them (ddctl migrate prepare).
func defaultDownloadFlags() downloadFlags {
	var f downloadFlags
	f.register(flag.NewFlagSet("defaults", flag.ContinueOnError))
	return f
}
