package download

import (
	"errors"
	"fmt"
	"hash"
	"net/url"

	"github.com/directdl/directdl/internal/checksum"
	"github.com/opencontainers/go-digest"
)

// Algorithm is a checksum algorithm, named as in go-digest ("sha256").
type Algorithm string

// The algorithms CloudStack accepts for a template checksum.
const (
	MD5    Algorithm = checksum.MD5
	SHA1   Algorithm = checksum.SHA1
	SHA224 Algorithm = checksum.SHA224
	SHA256 Algorithm = checksum.SHA256
	SHA384 Algorithm = checksum.SHA384
	SHA512 Algorithm = checksum.SHA512
)

type algInfo struct {
	alg        Algorithm
	cloudstack string // the name in {ALG}hex
	hexLen     int
	new        func() hash.Hash
}

func infoFrom(a checksum.Algorithm) algInfo {
	return algInfo{Algorithm(a.Name), a.CloudStack, a.HexLen, a.New}
}

// algorithms are weakest first, as internal/checksum lists them: strength
// and strongest rely on the order.
var algorithms = func() []algInfo {
	var out []algInfo
	for _, a := range checksum.Algorithms() {
		out = append(out, infoFrom(a))
	}
	return out
}()

// lookup finds an algorithm by any accepted spelling: "SHA-256", "sha256",
// "Sha-256" (case and a hyphen after "sha" do not matter).
func lookup(name string) (algInfo, bool) {
	a, ok := checksum.Lookup(name)
	if !ok {
		return algInfo{}, false
	}
	return infoFrom(a), true
}

func infoOf(a Algorithm) algInfo {
	i, _ := lookup(string(a))
	return i
}

// Sentinels for checksum strings that cannot be parsed; a
// [*ChecksumFormatError] wraps one of them. They are internal/checksum's
// sentinels, so errors.Is matches whichever package reported the error.
var (
	ErrChecksumAlgorithm = checksum.ErrAlgorithm
	ErrChecksumLength    = checksum.ErrLength
	ErrChecksumHex       = checksum.ErrHex
	ErrChecksumForm      = checksum.ErrForm
)

// ChecksumFormatError reports a checksum string that cannot be parsed. It
// wraps one of ErrChecksumAlgorithm, ErrChecksumLength, ErrChecksumHex or
// ErrChecksumForm.
type ChecksumFormatError struct {
	Input  string // the string as given
	Reason string // what is wrong and how to fix it
	Err    error  // the sentinel
}

// Error names the input, what is wrong with it and how to write it.
func (e *ChecksumFormatError) Error() string {
	return fmt.Sprintf("download: checksum %q: %s", e.Input, e.Reason)
}

// Unwrap returns Err: ErrChecksumAlgorithm, ErrChecksumLength,
// ErrChecksumHex or ErrChecksumForm.
func (e *ChecksumFormatError) Unwrap() error { return e.Err }

// formatError gives err, from internal/checksum, this package's error type
// and prefix.
func formatError(err error) error {
	var fe *checksum.FormatError
	if errors.As(err, &fe) {
		return &ChecksumFormatError{Input: fe.Input, Reason: fe.Reason, Err: fe.Err}
	}
	return err
}

// Checksum is an expected digest: an algorithm and its value. The zero
// value means "no checksum": nothing is verified. Checksums are comparable
// values; make them with [ParseChecksum] or [NewChecksum].
type Checksum struct {
	alg Algorithm
	sum string // lowercase hex
}

// fromSum converts a Sum of internal/checksum.
func fromSum(s checksum.Sum) Checksum { return Checksum{alg: Algorithm(s.Alg), sum: s.Hex} }

// core is c as internal/checksum knows it.
func (c Checksum) core() checksum.Sum { return checksum.Sum{Alg: string(c.alg), Hex: c.sum} }

// ParseOption changes how [ParseChecksum] reads a string.
type ParseOption func(*parseConfig)

type parseConfig struct{ inferByLength bool }

// InferByLength makes a bare hex string name its algorithm by its length
// (32 MD5, 40 SHA-1, 56 SHA-224, 64 SHA-256, 96 SHA-384, 128 SHA-512)
// instead of always meaning MD5, which is CloudStack's rule.
func InferByLength() ParseOption { return func(c *parseConfig) { c.inferByLength = true } }

// ParseChecksum parses a checksum in any of the forms orchestrators use:
//
//   - "{SHA-256}9f86d0…": CloudStack's form. The algorithm is one of MD5,
//     SHA-1, SHA-224, SHA-256, SHA-384 and SHA-512, in any case, with or
//     without the hyphen; the hex digits may be upper or lower case.
//   - "sha256:9f86d0…": go-digest's (OCI) form, also go-getter's
//     ?checksum= value; md5, sha1 and sha224 are accepted too. sha256,
//     sha384 and sha512 values are validated by go-digest.
//   - "9f86d0…": bare hex is MD5, as in CloudStack (which never infers the
//     algorithm), unless the [InferByLength] option is given.
//   - "": no checksum (the zero Checksum).
//
// Errors are [*ChecksumFormatError]s that say what is wrong and how to
// write the checksum instead. "file:URL" checksum files (go-getter) are
// not supported.
func ParseChecksum(s string, opts ...ParseOption) (Checksum, error) {
	var cfg parseConfig
	for _, o := range opts {
		o(&cfg)
	}
	sum, err := checksum.Parse(s, cfg.inferByLength)
	if err != nil {
		return Checksum{}, formatError(err)
	}
	return fromSum(sum), nil
}

// NewChecksum returns the checksum sum (raw bytes) of algorithm a.
func NewChecksum(a Algorithm, sum []byte) (Checksum, error) {
	c, err := checksum.New(string(a), sum)
	if err != nil {
		return Checksum{}, formatError(err)
	}
	return fromSum(c), nil
}

// ChecksumFromURL takes go-getter's checksum query parameter out of u:
// "?checksum=sha256:HEX" (or a bare HEX, whose algorithm go-getter infers
// from its length). It returns the checksum (zero when there is none) and
// a copy of u without the parameter, which is what the server is asked for.
func ChecksumFromURL(u *url.URL) (Checksum, *url.URL, error) {
	q := u.Query()
	v := q.Get("checksum")
	if v == "" {
		return Checksum{}, u, nil
	}
	c, err := ParseChecksum(v, InferByLength())
	if err != nil {
		return Checksum{}, u, err
	}
	q.Del("checksum")
	out := *u
	out.RawQuery = q.Encode()
	return c, &out, nil
}

// IsZero reports whether c is the zero Checksum (nothing to verify).
func (c Checksum) IsZero() bool { return c.alg == "" }

// Algorithm returns c's algorithm, "" for the zero Checksum.
func (c Checksum) Algorithm() Algorithm { return c.alg }

// Hex returns c's value in lowercase hex.
func (c Checksum) Hex() string { return c.sum }

// String returns c as "sha256:HEX" (go-digest's form; "md5:HEX" and so on
// for the others), or "" for the zero Checksum.
func (c Checksum) String() string {
	if c.IsZero() {
		return ""
	}
	return string(c.alg) + ":" + c.sum
}

// CloudStack returns c in CloudStack's form, "{SHA-256}HEX".
func (c Checksum) CloudStack() string {
	if c.IsZero() {
		return ""
	}
	return c.core().CloudStack()
}

// Digest returns c as a go-digest Digest, for sha256, sha384 and sha512
// (the algorithms go-digest knows); ok is false for the others.
func (c Checksum) Digest() (d digest.Digest, ok bool) {
	switch c.alg {
	case SHA256, SHA384, SHA512:
		return digest.Digest(c.String()), true
	}
	return "", false
}

// NewHash returns a new hash of c's algorithm, or nil for the zero
// Checksum. The standard library's hashes implement
// encoding.BinaryMarshaler, so a partial hash can be saved and resumed.
func (c Checksum) NewHash() hash.Hash {
	if c.IsZero() {
		return nil
	}
	return c.core().NewHash()
}

// Verify compares sum, a finished hash of c's algorithm, with c. It
// returns nil on a match (or for the zero Checksum) and a *ChecksumError
// otherwise.
func (c Checksum) Verify(sum []byte) error {
	if c.IsZero() {
		return nil
	}
	if c.core().Match(sum) {
		return nil
	}
	got, _ := NewChecksum(c.alg, sum)
	return &ChecksumError{Want: c, Got: got}
}

// ErrChecksumMismatch is wrapped by every [*ChecksumError].
var ErrChecksumMismatch = errors.New("checksum mismatch")

// ChecksumError reports content whose digest is not the expected one. The
// source served wrong (or changed) content, so retrying the same URL from
// another host will not help: CloudStack's retryOnOtherHosts=false. When a
// download fails this way, nothing is left at the destination.
type ChecksumError struct {
	URL  string // the source, credentials redacted; may be empty
	Want Checksum
	Got  Checksum
}

// Error names the source and both digests, and says not to retry the
// source elsewhere.
func (e *ChecksumError) Error() string {
	src := ""
	if e.URL != "" {
		src = " for " + e.URL
	}
	return fmt.Sprintf("download: checksum mismatch%s: want %s, got %s; the source's content is wrong: do not retry it on another host", src, e.Want, e.Got)
}

// Unwrap returns ErrChecksumMismatch.
func (e *ChecksumError) Unwrap() error { return ErrChecksumMismatch }

// RetryElsewhere reports whether trying the same source from another host
// could succeed: never, for a checksum mismatch.
func (e *ChecksumError) RetryElsewhere() bool { return false }
