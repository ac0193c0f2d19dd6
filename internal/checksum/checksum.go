package checksum

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
	"strings"

	"github.com/opencontainers/go-digest"
)

// The names of the algorithms, as go-digest spells them; [Sum.Alg] is one of
// these.
const (
	MD5    = "md5"
	SHA1   = "sha1"
	SHA224 = "sha224"
	SHA256 = "sha256"
	SHA384 = "sha384"
	SHA512 = "sha512"
)

// Algorithm describes one checksum algorithm. The values [Lookup] and
// [Algorithms] return are copies: changing one changes nothing else.
type Algorithm struct {
	Name       string           // go-digest's name: "sha256"
	CloudStack string           // the name in CloudStack's {ALG}HEX: "SHA-256"
	HexLen     int              // hex digits of a value: 64 for SHA-256
	New        func() hash.Hash // a new hash of the algorithm
}

// algorithms are weakest first: callers that pick the strongest of several
// digests rely on the order.
var algorithms = [...]Algorithm{
	{MD5, "MD5", 32, md5.New},
	{SHA1, "SHA-1", 40, sha1.New},
	{SHA224, "SHA-224", 56, sha256.New224},
	{SHA256, "SHA-256", 64, sha256.New},
	{SHA384, "SHA-384", 96, sha512.New384},
	{SHA512, "SHA-512", 128, sha512.New},
}

// Algorithms returns every supported algorithm, weakest first (MD5, SHA-1,
// SHA-224, SHA-256, SHA-384, SHA-512), in a new slice.
func Algorithms() []Algorithm {
	out := algorithms
	return out[:]
}

// Lookup finds an algorithm by any accepted spelling: "SHA-256", "sha256",
// "Sha-256" (case and hyphens do not matter). ok is false for any other name.
func Lookup(name string) (a Algorithm, ok bool) {
	n := strings.ReplaceAll(strings.ToLower(name), "-", "")
	for _, a := range algorithms {
		if n == a.Name {
			return a, true
		}
	}
	return Algorithm{}, false
}

// Sentinels of the strings Parse and New refuse; a [*FormatError] wraps one.
var (
	ErrAlgorithm = errors.New("unknown checksum algorithm (want MD5, SHA-1, SHA-224, SHA-256, SHA-384 or SHA-512)")
	ErrLength    = errors.New("checksum has the wrong length for its algorithm")
	ErrHex       = errors.New("checksum is not hexadecimal")
	ErrForm      = errors.New("checksum form not supported")
)

// FormatError reports a checksum that cannot be read. It wraps one of
// ErrAlgorithm, ErrLength, ErrHex or ErrForm. Its message has no package
// prefix: callers that report it under their own name take Input and Reason.
type FormatError struct {
	Input  string // the string as given
	Reason string // what is wrong and how to fix it
	Err    error  // the sentinel
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("checksum %q: %s", e.Input, e.Reason)
}

func (e *FormatError) Unwrap() error { return e.Err }

// Sum is an expected digest: an algorithm and its value. Alg is one of the
// names MD5 to SHA512 and Hex the value in lowercase hex, as [Parse] and [New]
// make them; the zero Sum means "no checksum". Sums are comparable with ==.
type Sum struct {
	Alg string
	Hex string
}

// Parse reads a checksum in any of the forms the package documentation lists.
// inferByLength makes bare hex name its algorithm by its length (32 MD5, 40
// SHA-1, 56 SHA-224, 64 SHA-256, 96 SHA-384, 128 SHA-512), go-getter's rule,
// instead of always meaning MD5, CloudStack's rule. Errors are
// [*FormatError]s.
func Parse(s string, inferByLength bool) (Sum, error) {
	in := strings.TrimSpace(s)
	bad := func(err error, format string, args ...any) (Sum, error) {
		return Sum{}, &FormatError{Input: s, Reason: fmt.Sprintf(format, args...), Err: err}
	}
	var name, value string
	switch {
	case in == "":
		return Sum{}, nil
	case strings.HasPrefix(in, "{"):
		end := strings.IndexByte(in, '}')
		if end < 0 {
			return bad(ErrForm, "no closing brace; write {SHA-256}HEX")
		}
		name, value = in[1:end], in[end+1:]
	case strings.HasPrefix(strings.ToLower(in), "file:"):
		return bad(ErrForm, "checksum files (file:URL) are not supported; give the checksum itself")
	case strings.Contains(in, ":"):
		name, value, _ = strings.Cut(in, ":")
	default:
		value = in
		name = "MD5"
		if inferByLength {
			for _, a := range algorithms {
				if len(value) == a.HexLen {
					name = a.Name
				}
			}
		}
	}
	a, ok := Lookup(name)
	if !ok {
		return bad(ErrAlgorithm, "unknown algorithm %q (want MD5, SHA-1, SHA-224, SHA-256, SHA-384 or SHA-512)", name)
	}
	value = strings.ToLower(value)
	if value == "" || strings.Trim(value, "0123456789abcdef") != "" {
		return bad(ErrHex, "%q is not a hexadecimal %s value", value, a.CloudStack)
	}
	if len(value) != a.HexLen {
		hint := ""
		// Only bare hex gets the hint: it is the form where MD5 was not
		// what the writer meant.
		if name == "MD5" && !strings.ContainsAny(in, "{:") {
			hint = "; bare hex means MD5 (CloudStack's rule): prefix it, e.g. {SHA-256}HEX or sha256:HEX"
			for _, b := range algorithms {
				if b.HexLen == len(value) {
					hint = fmt.Sprintf("; bare hex means MD5 (CloudStack's rule): for %s write {%s}%s…", b.CloudStack, b.CloudStack, value[:8])
				}
			}
		}
		return bad(ErrLength, "%s needs %d hex digits, got %d%s", a.CloudStack, a.HexLen, len(value), hint)
	}
	switch a.Name {
	case SHA256, SHA384, SHA512:
		// Whatever go-digest refuses, an OCI registry would refuse later.
		if err := digest.Digest(a.Name + ":" + value).Validate(); err != nil {
			return bad(ErrHex, "%v", err)
		}
	}
	return Sum{Alg: a.Name, Hex: value}, nil
}

// New returns the Sum of a finished digest: sum is the raw bytes of a hash of
// algorithm alg (any spelling [Lookup] accepts). Errors are [*FormatError]s
// wrapping ErrAlgorithm or ErrLength.
func New(alg string, sum []byte) (Sum, error) {
	a, ok := Lookup(alg)
	if !ok {
		return Sum{}, &FormatError{Input: alg, Reason: "unknown algorithm", Err: ErrAlgorithm}
	}
	if len(sum)*2 != a.HexLen {
		return Sum{}, &FormatError{Input: hex.EncodeToString(sum), Reason: fmt.Sprintf("%s needs %d bytes, got %d", a.CloudStack, a.HexLen/2, len(sum)), Err: ErrLength}
	}
	return Sum{Alg: a.Name, Hex: hex.EncodeToString(sum)}, nil
}

// IsZero reports whether s is the zero Sum (no checksum).
func (s Sum) IsZero() bool { return s.Alg == "" }

// String returns s in go-digest's form, "sha256:HEX" ("md5:HEX" and so on
// for the others), or "" for the zero Sum.
func (s Sum) String() string {
	if s.IsZero() {
		return ""
	}
	return s.Alg + ":" + s.Hex
}

// CloudStack returns s in CloudStack's form, "{SHA-256}HEX", or "" for the
// zero Sum.
func (s Sum) CloudStack() string {
	if s.IsZero() {
		return ""
	}
	a, _ := Lookup(s.Alg)
	return "{" + a.CloudStack + "}" + s.Hex
}

// NewHash returns a new hash of s's algorithm, or nil for the zero Sum or an
// algorithm Lookup does not know. The standard library's hashes implement
// encoding.BinaryMarshaler, so a partial hash can be saved and resumed.
func (s Sum) NewHash() hash.Hash {
	a, ok := Lookup(s.Alg)
	if !ok {
		return nil
	}
	return a.New()
}

// Equal reports whether s and o are the same checksum: the same algorithm
// and value. The values are compared in constant time, so a caller checking
// a checksum someone supplied does not reveal how much of it matched.
func (s Sum) Equal(o Sum) bool {
	return s.Alg == o.Alg && subtle.ConstantTimeCompare([]byte(s.Hex), []byte(o.Hex)) == 1
}

// Match reports, in constant time, whether sum, the raw bytes of a finished
// hash of s's algorithm, is s's value. It is false for the zero Sum: a
// caller with nothing to check must not treat that as a match.
func (s Sum) Match(sum []byte) bool {
	if s.IsZero() {
		return false
	}
	want, err := hex.DecodeString(s.Hex)
	return err == nil && subtle.ConstantTimeCompare(want, sum) == 1
}
