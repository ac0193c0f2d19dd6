package metalink

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/directdl/directdl/internal/netguard"
)

// maxLinks bounds the links ParseLinkHeaders looks at in one call.
const maxLinks = 1000

// ParseLinkHeaders returns the mirrors an RFC 6249 (Metalink/HTTP)
// response advertises in its Link headers:
//
//	Link: <http://mirror.example/f.iso>; rel=duplicate; pri=1; geo=de; pref
//
// Every Link header and every comma-separated link in it is read; values
// may be quoted; rel may list several relations ("duplicate" must be one
// of them; links with other relations, such as rel=describedby, are
// ignored). pri (1..999999, default 999999) becomes Priority, geo (two
// letters) Location, pref Preferred; depth is checked and otherwise
// ignored. A relative reference is resolved against base; credentials in
// base are never carried to a mirror (curl's CVE-2021-22923): the
// reference is resolved against base without its user information.
// Mirrors must pass the URL rules of Validate.
//
// A malformed link, or one with a bad parameter, is skipped and the rest
// are kept: the result holds every good mirror, in header order and
// without duplicates, and err, when not nil, lists what was skipped (it
// matches ErrInvalid). At most 1000 links are read. Safe for concurrent
// use.
func ParseLinkHeaders(h http.Header, base *url.URL) ([]URL, error) {
	var out []URL
	var errs []error
	seen := map[string]bool{}
	var b *url.URL
	if base != nil {
		c := *base
		c.User = nil
		b = &c
	}
	o := buildOptions(nil)
	count := 0
	for _, v := range h.Values("Link") {
		for _, l := range splitLinks(v) {
			count++
			if count > maxLinks {
				errs = append(errs, newError(ErrLimit, "", "Link", "more than %d links; the rest are ignored", maxLinks))
				return out, errors.Join(errs...)
			}
			u, ok, err := linkMirror(o, l, b)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if ok && !seen[u.URL] {
				seen[u.URL] = true
				out = append(out, u)
			}
		}
	}
	return out, errors.Join(errs...)
}

// link is one parsed link-value: the reference and its parameters with
// names lowercased (the first occurrence of a name wins, as RFC 8288
// says for rel).
type link struct {
	ref    string
	params map[string]string
	flags  map[string]bool
	err    string
}

// splitLinks splits one Link header value into its links. A link that
// breaks the grammar comes back with err set; scanning goes on after the
// next comma that is outside <...> and quotes.
func splitLinks(v string) []link {
	var out []link
	i := 0
	for i < len(v) {
		for i < len(v) && (v[i] == ' ' || v[i] == '\t' || v[i] == ',') {
			i++
		}
		if i >= len(v) {
			break
		}
		l := link{params: map[string]string{}, flags: map[string]bool{}}
		if v[i] != '<' {
			l.err = "a link must start with <URI>"
			i = skipToComma(v, i)
			out = append(out, l)
			continue
		}
		end := strings.IndexByte(v[i:], '>')
		if end < 0 {
			l.err = "no closing > after the URI"
			out = append(out, l)
			break
		}
		l.ref = strings.TrimSpace(v[i+1 : i+end])
		i += end + 1
		for {
			for i < len(v) && (v[i] == ' ' || v[i] == '\t') {
				i++
			}
			if i >= len(v) || v[i] == ',' {
				break
			}
			if v[i] != ';' {
				l.err = fmt.Sprintf("unexpected %q after the URI or a parameter", v[i])
				i = skipToComma(v, i)
				break
			}
			i++
			for i < len(v) && (v[i] == ' ' || v[i] == '\t') {
				i++
			}
			start := i
			for i < len(v) && isTokenChar(v[i]) {
				i++
			}
			name := strings.ToLower(v[start:i])
			if name == "" {
				if i >= len(v) || v[i] == ',' {
					break // a trailing ";" is harmless
				}
				l.err = "a parameter without a name"
				i = skipToComma(v, i)
				break
			}
			for i < len(v) && (v[i] == ' ' || v[i] == '\t') {
				i++
			}
			if i >= len(v) || v[i] != '=' {
				if _, dup := l.params[name]; !dup && !l.flags[name] {
					l.flags[name] = true
				}
				continue
			}
			i++
			for i < len(v) && (v[i] == ' ' || v[i] == '\t') {
				i++
			}
			var val string
			if i < len(v) && v[i] == '"' {
				var b strings.Builder
				i++
				closed := false
				for i < len(v) {
					c := v[i]
					i++
					if c == '\\' && i < len(v) {
						b.WriteByte(v[i])
						i++
						continue
					}
					if c == '"' {
						closed = true
						break
					}
					b.WriteByte(c)
				}
				if !closed {
					l.err = "unterminated quoted string"
					break
				}
				val = b.String()
			} else {
				start := i
				for i < len(v) && isTokenChar(v[i]) {
					i++
				}
				val = v[start:i]
			}
			if _, dup := l.params[name]; !dup && !l.flags[name] {
				l.params[name] = val
			}
		}
		out = append(out, l)
	}
	return out
}

// skipToComma returns the index after the next comma outside quotes and
// angle brackets, or len(v).
func skipToComma(v string, i int) int {
	inQuote, inAngle := false, false
	for ; i < len(v); i++ {
		switch c := v[i]; {
		case inQuote && c == '\\':
			i++
		case c == '"' && !inAngle:
			inQuote = !inQuote
		case c == '<' && !inQuote:
			inAngle = true
		case c == '>' && !inQuote:
			inAngle = false
		case c == ',' && !inQuote && !inAngle:
			return i + 1
		}
	}
	return i
}

func isTokenChar(c byte) bool {
	return c > 0x20 && c < 0x7f && !strings.ContainsRune("()<>@,;:\\\"/[]?={}", rune(c))
}

// linkMirror turns one link into a mirror; ok is false for a link that is
// well formed but not a duplicate.
func linkMirror(o *options, l link, base *url.URL) (URL, bool, error) {
	bad := func(format string, args ...any) error {
		return newError(ErrInvalid, "", "Link <"+clip(strings.ToValidUTF8(netguard.RedactString(l.ref), "?"))+">", format, args...)
	}
	if l.err != "" {
		return URL{}, false, bad("%s", l.err)
	}
	rel, ok := l.params["rel"]
	if !ok || !hasWord(rel, "duplicate") {
		return URL{}, false, nil
	}
	u := URL{Priority: DefaultPriority, Preferred: l.flags["pref"]}
	if s, ok := l.params["pri"]; ok {
		n, err := strconv.Atoi(s)
		if err != nil || n < MinPriority || n > MaxPriority || s[0] == '+' {
			return URL{}, false, bad("pri=%q is not an integer in %d..%d", s, MinPriority, MaxPriority)
		}
		u.Priority = n
	}
	if s, ok := l.params["geo"]; ok {
		if !isCountry(s) {
			return URL{}, false, bad("geo=%q is not a two-letter country code", s)
		}
		u.Location = strings.ToLower(s)
	}
	if s, ok := l.params["depth"]; ok {
		if n, err := strconv.Atoi(s); err != nil || n < 0 || s[0] == '+' {
			return URL{}, false, bad("depth=%q is not a non-negative integer", s)
		}
	}
	ref, err := url.Parse(l.ref)
	if err != nil {
		return URL{}, false, bad("the URI does not parse")
	}
	if ref.User != nil {
		return URL{}, false, bad("the mirror URL carries credentials")
	}
	if base != nil {
		ref = base.ResolveReference(ref)
	}
	u.URL = ref.String()
	if err := checkURL(o, "", "Link", u.URL); err != nil {
		return URL{}, false, err
	}
	return u, true, nil
}

func hasWord(list, w string) bool {
	for f := range strings.FieldsSeq(list) {
		if strings.EqualFold(f, w) {
			return true
		}
	}
	return false
}

// ParseDigest returns the whole-file hashes a response announces, in the
// same form as the Metalink hashes (IANA type, lowercase hex): the RFC
// 9530 Repr-Digest header (sha-256=:base64:, structured-field byte
// sequences, parameters ignored) and the RFC 3230 Digest header that RFC
// 6249 uses (SHA-256=base64, names case-insensitive, SHA meaning sha-1).
// Content-Digest is not read: it describes the bytes of one response,
// which for a range request is not the file.
//
// Algorithms this package does not know (unixsum, adler, crc32c, ...) are
// skipped silently. A malformed entry, a digest of the wrong length for
// its type, or two different values for one type (the type is then
// dropped: neither can be trusted) is reported in err, matching
// ErrInvalid, while the good hashes are still returned, in header order
// (Repr-Digest first). Safe for concurrent use.
func ParseDigest(h http.Header) ([]Hash, error) {
	var out []Hash
	var errs []error
	conflict := map[string]bool{}
	add := func(hdr, name, b64 string, sf bool) {
		t := CanonicalHashType(name)
		info, known := hashTypes[t]
		if !known {
			return
		}
		raw, err := base64.StdEncoding.DecodeString(b64)
		if err != nil && !sf {
			raw, err = base64.RawStdEncoding.DecodeString(b64)
		}
		if err != nil {
			errs = append(errs, newError(ErrHash, "", hdr, "%s value is not base64", t))
			return
		}
		if len(raw)*2 != info.hexLen {
			errs = append(errs, newError(ErrHash, "", hdr, "%s value has %d bytes, want %d", t, len(raw), info.hexLen/2))
			return
		}
		v := hex.EncodeToString(raw)
		for i, have := range out {
			if have.Type == t {
				if have.Value != v && !conflict[t] {
					conflict[t] = true
					errs = append(errs, newError(ErrHash, "", hdr, "two different %s values; both dropped", t))
					out = append(out[:i], out[i+1:]...)
				}
				return
			}
		}
		if !conflict[t] {
			out = append(out, Hash{Type: t, Value: v})
		}
	}
	for _, v := range h.Values("Repr-Digest") {
		for item := range strings.SplitSeq(v, ",") {
			item = strings.TrimSpace(item)
			if item == "" {
				continue
			}
			name, val, ok := strings.Cut(item, "=")
			if ok {
				val, _, _ = strings.Cut(val, ";")
				val = strings.TrimSpace(val)
			}
			if !ok || len(val) < 2 || val[0] != ':' || val[len(val)-1] != ':' {
				errs = append(errs, newError(ErrHash, "", "Repr-Digest", "entry %q is not name=:base64:", clip(item)))
				continue
			}
			add("Repr-Digest", strings.TrimSpace(name), val[1:len(val)-1], true)
		}
	}
	for _, v := range h.Values("Digest") {
		for item := range strings.SplitSeq(v, ",") {
			item = strings.TrimSpace(item)
			if item == "" {
				continue
			}
			name, val, ok := strings.Cut(item, "=")
			if !ok {
				errs = append(errs, newError(ErrHash, "", "Digest", "entry %q is not ALGORITHM=value", clip(item)))
				continue
			}
			add("Digest", strings.TrimSpace(name), strings.TrimSpace(val), false)
		}
	}
	if len(conflict) > 0 {
		kept := out[:0]
		for _, h := range out {
			if !conflict[h.Type] {
				kept = append(kept, h)
			}
		}
		out = kept
	}
	return out, errors.Join(errs...)
}
