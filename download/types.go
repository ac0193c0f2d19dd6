package download

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/directdl/directdl/download/metalink"
	"github.com/directdl/directdl/internal/netguard"
)

// Request is one file to download.
type Request struct {
	// URL is the http or https URL to get. A go-getter style ?checksum=
	// parameter is taken as the checksum (and not sent to the server) when
	// Checksum and Sum are empty.
	URL string
	// Path is where the file goes. Its directory must exist. A file
	// already there is replaced, atomically, only by a complete and
	// verified download.
	Path string
	// Checksum is the expected checksum in any form ParseChecksum reads:
	// "{SHA-256}hex", "sha256:hex", bare hex (MD5, as CloudStack reads it).
	Checksum string
	// Sum is the expected checksum as a parsed value; it takes precedence
	// over Checksum, which must then be empty or the same.
	Sum Checksum
	// Size, when positive, is the size the file must have; a server that
	// announces another fails the download before any data is written.
	Size int64
	// Connections, when positive, overrides the Client's connections per
	// download for this request (at most 64).
	Connections int
	// Metalink, when not nil, is the file to download as a Metalink
	// describes it: its size, whole-file hash, piece hashes and mirrors
	// (http and https ones are used). URL is then optional and only names
	// the download in results. Pick one from a parsed document, and make
	// Path with File.SafeJoin when the name comes from the document.
	Metalink *metalink.File
	// AsMetalink says URL names a Metalink document even though its path
	// does not end in ".metalink" or ".meta4" (see IsMetalinkURL).
	AsMetalink bool
	// MetalinkFile names the file to download when the Metalink document
	// at URL describes several.
	MetalinkFile string
}

// Result describes a finished download.
type Result struct {
	// URL is the requested URL, with credentials and signatures redacted.
	URL string
	// Path is the destination file.
	Path string
	// Size is the file's size in bytes.
	Size int64
	// Digest is the file's checksum in the requested algorithm, or SHA-256
	// when none was requested, as "alg:hex" (e.g. "sha256:ab12...").
	Digest string
	// Sum is Digest as a value.
	Sum Checksum
	// Verified is true when a checksum was given and the file matches it.
	Verified bool
	// BytesTransferred counts the body bytes received from the network in
	// this call, including any that were discarded and fetched again.
	BytesTransferred int64
	// ResumedFrom is how many bytes of the file an earlier, interrupted
	// download had already fetched and verified into its hash state.
	ResumedFrom int64
	// Connections is the largest number of connections used at once.
	Connections int
	// Redirects is the redirect chain of the first request, redacted:
	// the requested URL then every Location followed. Empty when there was
	// no redirect.
	Redirects []string
	// Ranges reports whether the server served byte ranges; without them
	// the file came in one stream.
	Ranges bool
	// Restarts counts how often the download started again from zero
	// because the remote file changed or its ranges could not be trusted.
	Restarts int
	// Duration is the wall time of the call.
	Duration time.Duration
	// Sources reports what each source did: the requested URL, or the
	// mirrors of a Metalink or of Link headers, or the NFS file.
	Sources []MirrorReport
	// PiecesRefetched counts the Metalink pieces that failed their hash
	// and were fetched again.
	PiecesRefetched int
}

// Progress is a snapshot of one download, sent to the sink given with
// WithProgress.
type Progress struct {
	// URL is the requested URL, redacted; Path the destination.
	URL, Path string
	// Done counts the bytes of the file written so far (resumed bytes
	// included); Total is the size, or -1 while unknown.
	Done, Total int64
	// Rate is the recent transfer rate in bytes per second.
	Rate float64
	// ETA estimates the time left; zero when unknown.
	ETA time.Duration
	// Connections is the number of connections transferring now.
	Connections int
	// Final is set on the last event of a download, sent when it ends;
	// Err is its error, if it failed.
	Final bool
	Err   error
}

// Errors a download can fail with, for errors.Is. The error returned wraps
// one of them, or an *HTTPError, a *SpaceError, a *ChecksumError or a
// network error.
var (
	// ErrRemoteChanged: the file changed on the server (another ETag,
	// Last-Modified or size) too often while it was being downloaded.
	ErrRemoteChanged = errors.New("download: remote file keeps changing")
	// ErrSizeMismatch: the server's size differs from Request.Size, or
	// the body was longer or shorter than announced.
	ErrSizeMismatch = errors.New("download: size mismatch")
	// ErrBusy: another download (in this process with another URL, or in
	// another process) is writing the same destination.
	ErrBusy = errors.New("download: destination is being downloaded by someone else")
	// ErrStalled: no byte arrived for the socket timeout, on every retry.
	ErrStalled = errors.New("download: connection stalled")
	// ErrNoConnection: no connection slot to the host became free within
	// the connection request timeout.
	ErrNoConnection = errors.New("download: no free connection to host")
	// ErrRequest: the Request itself is unusable (bad URL, scheme,
	// checksum or path).
	ErrRequest = errors.New("download: invalid request")
	// ErrBadResponse: the server answered in a way that cannot be used
	// (wrong Content-Range, a compressed body, a missing length where one
	// is needed).
	ErrBadResponse = errors.New("download: unusable response")

	// ErrDenied: the URL policy refused an address (the URL's or a
	// redirect target's, as resolved when connecting).
	ErrDenied = netguard.ErrDenied
	// ErrTooManyRedirects: the redirect limit was reached.
	ErrTooManyRedirects = netguard.ErrTooManyRedirects
	// ErrDowngrade: a redirect from HTTPS to HTTP, which is never followed.
	ErrDowngrade = netguard.ErrDowngrade
)

// HTTPError is a response with a status that ends the download (after
// retries for statuses that may pass: 408, 429 and 5xx).
type HTTPError struct {
	// Status is the HTTP status code; URL the URL asked, redacted.
	Status int
	URL    string
}

// Error names the redacted URL and the status.
func (e *HTTPError) Error() string {
	return fmt.Sprintf("download: %s: server answered %d %s", e.URL, e.Status, statusText(e.Status))
}

// Temporary reports whether a later attempt may succeed (408, 429, 5xx).
func (e *HTTPError) Temporary() bool {
	return e.Status == 408 || e.Status == 429 || e.Status >= 500
}

// SpaceError reports a file system with too little free space for the file.
type SpaceError struct {
	Dir         string
	Need, Avail int64
}

// Error names the directory and both sizes.
func (e *SpaceError) Error() string {
	return fmt.Sprintf("download: not enough free space in %s: need %d bytes, %d available", e.Dir, e.Need, e.Avail)
}

func statusText(code int) string {
	if t := http.StatusText(code); t != "" {
		return t
	}
	return "(unknown status)"
}

// RedactURL returns the URL s with its password, a user name standing for
// a token, and the values of secret query parameters (signatures, tokens,
// keys: X-Amz-Signature, token, sig, ...) replaced by "xxxxx", leaving the
// rest as it was. Everything this package reports or logs is redacted so;
// use it for URLs a program prints itself.
func RedactURL(s string) string { return netguard.RedactString(s) }
