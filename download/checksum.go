package download

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"net/url"
	"strings"

	"github.com/opencontainers/go-digest"
)

// Algorithm is a checksum algorithm, named as in go-digest ("sha256").
type Algorithm string

// The algorithms CloudStack accepts for a template checksum.
const (
	MD5    Algorithm = "md5"
	SHA1   Algorithm = "sha1"
	SHA224 Algorithm = "sha224"
	SHA256 Algorithm = "sha256"
	SHA384 Algorithm = "sha384"
	SHA512 Algorithm = "sha512"
)

type algInfo struct {
	alg        Algorithm
	cloudstack string // the name in {ALG}hex
	hexLen     int
	new        func() hash.Hash
}

var algorithms = []algInfo{
	{MD5, "MD5", 32, md5.New},
	{SHA1, "SHA-1", 40, sha1.New},
	{SHA224, "SHA-224", 56, sha256.New224},
	{SHA256, "SHA-256", 64, sha256.New},
	{SHA384, "SHA-384", 96, sha512.New384},
	{SHA512, "SHA-512", 128, sha512.New},
}

// lookup finds an algorithm by any accepted spelling: "SHA-256", "sha256",
// "Sha-256" (case and a hyphen after "sha" do not matter).
func lookup(name string) (algInfo, bool) {
	n := strings.ReplaceAll(strings.ToLower(name), "-", "")
	for _, a := range algorithms {
		if n == string(a.alg) {
			return a, true
		}
	}
	return algInfo{}, false
}

func infoOf(a Algorithm) algInfo {
	i, _ := lookup(string(a))
	return i
}

// Sentinels for checksum strings that cannot be parsed; a
// [*ChecksumFormatError] wraps one of them.
var (
	ErrChecksumAlgorithm = errors.New("unknown checksum algorithm (want MD5, SHA-1, SHA-224, SHA-256, SHA-384 or SHA-512)")
	ErrChecksumLength    = errors.New("checksum has the wrong length for its algorithm")
	ErrChecksumHex       = errors.New("checksum is not hexadecimal")
	ErrChecksumForm      = errors.New("checksum form not supported")
)

// ChecksumFormatError reports a checksum string that cannot be parsed. It
// wraps one of ErrChecksumAlgorithm, ErrChecksumLength, ErrChecksumHex or
// ErrChecksumForm.
type ChecksumFormatError struct {
	Input  string // the string as given
	Reason string // what is wrong and how to fix it
	Err    error  // the sentinel
}

func (e *ChecksumFormatError) Error() string {
	return fmt.Sprintf("download: checksum %q: %s", e.Input, e.Reason)
}

func (e *ChecksumFormatError) Unwrap() error { return e.Err }

// Checksum is an expected digest: an algorithm and its value. The zero
// value means "no checksum": nothing is verified. Checksums are comparable
// values; make them with [ParseChecksum] or [NewChecksum].
type Checksum struct {
	alg Algorithm
	sum string // lowercase hex
}

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
	in := strings.TrimSpace(s)
	bad := func(err error, format string, args ...any) (Checksum, error) {
		return Checksum{}, &ChecksumFormatError{Input: s, Reason: fmt.Sprintf(format, args...), Err: err}
	}
	var name, value string
	switch {
	case in == "":
		return Checksum{}, nil
	case strings.HasPrefix(in, "{"):
		end := strings.IndexByte(in, '}')
		if end < 0 {
			return bad(ErrChecksumForm, "no closing brace; write {SHA-256}HEX")
		}
		name, value = in[1:end], in[end+1:]
	case strings.HasPrefix(strings.ToLower(in), "file:"):
		return bad(ErrChecksumForm, "checksum files (file:URL) are not supported; give the checksum itself")
	case strings.Contains(in, ":"):
		name, value, _ = strings.Cut(in, ":")
	default:
		value = in
		name = "MD5"
		if cfg.inferByLength {
			for _, a := range algorithms {
				if len(value) == a.hexLen {
					name = string(a.alg)
				}
			}
		}
	}
	a, ok := lookup(name)
	if !ok {
		return bad(ErrChecksumAlgorithm, "unknown algorithm %q (want MD5, SHA-1, SHA-224, SHA-256, SHA-384 or SHA-512)", name)
	}
	value = strings.ToLower(value)
	if value == "" || strings.Trim(value, "0123456789abcdef") != "" {
		return bad(ErrChecksumHex, "%q is not a hexadecimal %s value", value, a.cloudstack)
	}
	if len(value) != a.hexLen {
		hint := ""
		if name == "MD5" && !strings.ContainsAny(in, "{:") {
			hint = "; bare hex means MD5 (CloudStack's rule): prefix it, e.g. {SHA-256}HEX or sha256:HEX"
			for _, b := range algorithms {
				if b.hexLen == len(value) {
					hint = fmt.Sprintf("; bare hex means MD5 (CloudStack's rule): for %s write {%s}%s…", b.cloudstack, b.cloudstack, value[:8])
				}
			}
		}
		return bad(ErrChecksumLength, "%s needs %d hex digits, got %d%s", a.cloudstack, a.hexLen, len(value), hint)
	}
	switch a.alg {
	case SHA256, SHA384, SHA512:
		if err := digest.Digest(string(a.alg) + ":" + value).Validate(); err != nil {
			return bad(ErrChecksumHex, "%v", err)
		}
	}
	return Checksum{alg: a.alg, sum: value}, nil
}

// NewChecksum returns the checksum sum (raw bytes) of algorithm a.
func NewChecksum(a Algorithm, sum []byte) (Checksum, error) {
	i, ok := lookup(string(a))
	if !ok {
		return Checksum{}, &ChecksumFormatError{Input: string(a), Reason: "unknown algorithm", Err: ErrChecksumAlgorithm}
	}
	if len(sum)*2 != i.hexLen {
		return Checksum{}, &ChecksumFormatError{Input: hex.EncodeToString(sum), Reason: fmt.Sprintf("%s needs %d bytes, got %d", i.cloudstack, i.hexLen/2, len(sum)), Err: ErrChecksumLength}
	}
	return Checksum{alg: i.alg, sum: hex.EncodeToString(sum)}, nil
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
	return "{" + infoOf(c.alg).cloudstack + "}" + c.sum
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
	return infoOf(c.alg).new()
}

// Verify compares sum, a finished hash of c's algorithm, with c. It
// returns nil on a match (or for the zero Checksum) and a *ChecksumError
// otherwise.
func (c Checksum) Verify(sum []byte) error {
	if c.IsZero() {
		return nil
	}
	want, _ := hex.DecodeString(c.sum)
	if subtle.ConstantTimeCompare(want, sum) == 1 {
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

func (e *ChecksumError) Error() string {
	src := ""
	if e.URL != "" {
		src = " for " + e.URL
	}
	return fmt.Sprintf("download: checksum mismatch%s: want %s, got %s; the source's content is wrong: do not retry it on another host", src, e.Want, e.Got)
}

func (e *ChecksumError) Unwrap() error { return ErrChecksumMismatch }

// RetryElsewhere reports whether trying the same source from another host
// could succeed: never, for a checksum mismatch.
func (e *ChecksumError) RetryElsewhere() bool { return false }
