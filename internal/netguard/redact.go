package netguard

import (
	"errors"
	"log/slog"
	"net/url"
	"strings"
)

// Redacted replaces every secret that Redact removes.
const Redacted = "xxxxx"

// secretNames are query parameter names whose values are secrets, compared
// case-insensitively.
var secretNames = map[string]bool{
	"sig": true, "signature": true, "key": true, "auth": true, "token": true,
	"password": true, "passwd": true, "pass": true, "pwd": true, "secret": true,
	"apikey": true, "api_key": true, "api-key": true, "access_token": true,
	"refresh_token": true, "id_token": true, "client_secret": true,
	"x-amz-signature": true, "x-amz-credential": true, "x-amz-security-token": true,
	"x-goog-signature": true, "x-goog-credential": true, "awsaccesskeyid": true,
	"authorization": true, "session": true, "sessionid": true,
	// go-getter's: a private SSH key, and an AWS key id (its secret and
	// token are caught by secretParts).
	"sshkey": true, "aws_access_key_id": true,
}

// secretParts catch the many spellings of the same idea
// (X-Amz-Security-Token, sessionToken, upload_secret, x-ms-signature...).
var secretParts = []string{"token", "secret", "password", "passwd", "signature", "credential", "apikey", "api_key", "api-key"}

// IsSecretParam reports whether Redact hides the value of a query parameter
// (or fragment parameter) with this name: signature, sig, token,
// access_token, key, password, secret, auth, apikey, X-Amz-Signature,
// X-Amz-Credential, X-Amz-Security-Token, X-Goog-Signature and similar
// names, and any name containing token, secret, password, signature,
// credential or apikey, all case-insensitive. The name may be
// percent-encoded.
func IsSecretParam(name string) bool {
	if isSecretName(strings.ToLower(name)) {
		return true
	}
	if u, err := url.QueryUnescape(name); err == nil {
		return isSecretName(strings.ToLower(u))
	}
	return false
}

func isSecretName(n string) bool {
	if secretNames[n] {
		return true
	}
	for _, p := range secretParts {
		if strings.Contains(n, p) {
			return true
		}
	}
	return false
}

// Redact returns u as a string with its secrets replaced by Redacted:
//
//   - userinfo: the password is replaced and the user name kept
//     (https://alice:xxxxx@host/). A user name without a password is
//     replaced too (https://xxxxx@host/), because that position often holds
//     an access token.
//   - the value of every query parameter named as IsSecretParam describes
//     (?X-Amz-Signature=xxxxx), keeping the other parameters, their order
//     and their encoding as they were;
//   - the same for name=value pairs in the fragment (#access_token=xxxxx).
//
// The path is kept. Redact(nil) returns "". u is not modified.
func Redact(u *url.URL) string {
	if u == nil {
		return ""
	}
	c := *u
	if c.User != nil {
		if _, has := c.User.Password(); has {
			c.User = url.UserPassword(c.User.Username(), Redacted)
		} else {
			c.User = url.User(Redacted)
		}
	}
	c.RawQuery = redactParams(c.RawQuery)
	if c.Fragment != "" || c.RawFragment != "" {
		f := redactParams(c.EscapedFragment())
		if uf, err := url.PathUnescape(f); err == nil {
			c.Fragment, c.RawFragment = uf, f
		} else {
			c.Fragment, c.RawFragment = f, ""
		}
	}
	if c.Opaque != "" {
		c.Opaque = redactLenientAuthority(c.Opaque)
	}
	return c.String()
}

// RedactString is Redact for a URL in text form. It changes only the
// secrets and leaves the rest of s byte for byte as it was (Redact, which
// goes through url.URL.String, may re-encode). A string that url.Parse
// rejects is redacted leniently: everything between "//" and the last '@'
// before the query is replaced, and secret parameters after '?' and '#' are
// hidden as usual, so even a malformed URL in an error message leaks no
// password or signature.
func RedactString(s string) string {
	head, tail := splitTail(s)
	u, err := url.Parse(s)
	if err != nil || u.Opaque != "" {
		return redactLenientAuthority(head) + redactTail(tail)
	}
	if u.User != nil {
		// url.Parse found the authority right after the first "//" (a
		// scheme cannot contain '/'), ending at the next '/', with the
		// userinfo up to its last '@'.
		start := strings.Index(head, "//") + 2
		end := len(head)
		if i := strings.IndexByte(head[start:], '/'); i >= 0 {
			end = start + i
		}
		at := start + strings.LastIndexByte(head[start:end], '@')
		repl := Redacted
		if _, has := u.User.Password(); has {
			user, _, _ := strings.Cut(head[start:at], ":")
			repl = user + ":" + Redacted
		}
		head = head[:start] + repl + head[at:]
	}
	return head + redactTail(tail)
}

// splitTail splits s where url.Parse ends the path: at the first '?' or
// '#'.
func splitTail(s string) (head, tail string) {
	if i := strings.IndexAny(s, "?#"); i >= 0 {
		return s[:i], s[i:]
	}
	return s, ""
}

// redactTail redacts the "?query#fragment" (or "#fragment") part of a URL.
func redactTail(tail string) string {
	if tail == "" {
		return ""
	}
	var query, frag string
	hasFrag := false
	if tail[0] == '?' {
		query, frag, hasFrag = strings.Cut(tail[1:], "#")
	} else {
		frag, hasFrag = tail[1:], true
	}
	var b strings.Builder
	if tail[0] == '?' {
		b.WriteByte('?')
		b.WriteString(redactParams(query))
	}
	if hasFrag {
		b.WriteByte('#')
		b.WriteString(redactParams(frag))
	}
	return b.String()
}

// redactLenientAuthority replaces the userinfo of "scheme://userinfo@host/path",
// "//userinfo@host" or an opaque "scheme:userinfo@host", taking everything
// up to the last '@' so that a password containing '/' or '@' is covered
// too.
func redactLenientAuthority(s string) string {
	start := 0
	if i := strings.Index(s, "//"); i >= 0 {
		start = i + 2
	} else if i := strings.IndexByte(s, ':'); i > 0 && isScheme(s[:i]) {
		start = i + 1
	}
	at := strings.LastIndexByte(s[start:], '@')
	if at < 0 {
		return s
	}
	return s[:start] + Redacted + s[start+at:]
}

// redactParams hides the values of secret parameters in a query string (or
// a fragment written like one), splitting on '&' and ';' as servers do.
func redactParams(q string) string {
	if q == "" {
		return q
	}
	var b strings.Builder
	b.Grow(len(q))
	for i := 0; ; {
		j := strings.IndexAny(q[i:], "&;")
		end := len(q)
		if j >= 0 {
			end = i + j
		}
		pair := q[i:end]
		if name, _, ok := strings.Cut(pair, "="); ok && IsSecretParam(name) {
			b.WriteString(name)
			b.WriteByte('=')
			b.WriteString(Redacted)
		} else if dec, err := url.QueryUnescape(pair); !ok && err == nil && strings.Contains(dec, "=") && IsSecretParam(strings.SplitN(dec, "=", 2)[0]) {
			// "token%3Dvalue" reaches servers that decode before
			// splitting as token=value.
			b.WriteString(url.QueryEscape(strings.SplitN(dec, "=", 2)[0]))
			b.WriteByte('=')
			b.WriteString(Redacted)
		} else {
			b.WriteString(pair)
		}
		if end == len(q) {
			return b.String()
		}
		b.WriteByte(q[end])
		i = end + 1
	}
}

// RedactText redacts every URL written as scheme://... inside s, such as
// the URLs that net/http and url.Parse quote in error messages. A URL
// that follows a double quote ends at the next unescaped double quote, as
// Go's %q writes it; any other URL ends at white space or at one of the
// characters " ' ` < >.
func RedactText(s string) string {
	var b strings.Builder
	for {
		i := strings.Index(s, "://")
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		start := i
		for start > 0 && isSchemeByte(s[start-1]) {
			start--
		}
		end := i + 3
		if start > 0 && s[start-1] == '"' {
			// Quoted with %q, as net/http and net/url quote URLs: the
			// URL ends at the closing quote, and may contain spaces
			// and escaped quotes.
			for end < len(s) && !(s[end] == '"' && !escaped(s[start:end])) {
				end++
			}
		} else {
			for end < len(s) && !isURLEnd(s[end]) {
				end++
			}
		}
		b.WriteString(s[:start])
		b.WriteString(RedactString(s[start:end]))
		s = s[end:]
	}
}

// escaped reports whether s ends in an odd number of backslashes, so that
// the quote after it is escaped.
func escaped(s string) bool {
	n := 0
	for n < len(s) && s[len(s)-1-n] == '\\' {
		n++
	}
	return n%2 == 1
}

// isScheme reports whether s has the form of a URL scheme.
func isScheme(s string) bool {
	if s == "" || !('a' <= s[0] && s[0] <= 'z' || 'A' <= s[0] && s[0] <= 'Z') {
		return false
	}
	for i := range len(s) {
		if !isSchemeByte(s[i]) {
			return false
		}
	}
	return true
}

func isSchemeByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'
}

func isURLEnd(c byte) bool {
	switch c {
	case ' ', '\t', '\n', '\r', '"', '\'', '`', '<', '>':
		return true
	}
	return false
}

// RedactError returns an error whose message has every URL redacted (see
// RedactText) and that wraps err, so errors.Is and errors.As still find
// ErrDenied, *DeniedError, *RedirectError and the like. A *url.Error, which
// net/http returns with the request URL (only the password stripped), is
// returned as a *url.Error with a redacted URL, so its Timeout and
// Temporary methods keep working. RedactError(nil) returns nil.
//
// The original error stays reachable through Unwrap: print the returned
// error, not fields of the errors inside it.
func RedactError(err error) error {
	if err == nil {
		return nil
	}
	if ue, ok := err.(*url.Error); ok {
		return &url.Error{Op: ue.Op, URL: RedactString(ue.URL), Err: RedactError(ue.Err)}
	}
	if _, ok := err.(*redactedError); ok {
		return err
	}
	return &redactedError{err: err}
}

// redactedError prints err with its URLs redacted.
type redactedError struct{ err error }

func (e *redactedError) Error() string { return RedactText(e.err.Error()) }
func (e *redactedError) Unwrap() error { return e.err }

// Timeout reports whether the error is a timeout, as the error it redacts
// says, so that a *url.Error around it (whose Timeout asks only its direct
// Err) still reports timeouts.
func (e *redactedError) Timeout() bool {
	var t interface{ Timeout() bool }
	return errors.As(e.err, &t) && t.Timeout()
}

// Temporary is Timeout's counterpart for the deprecated net.Error method.
func (e *redactedError) Temporary() bool {
	var t interface{ Temporary() bool }
	return errors.As(e.err, &t) && t.Temporary()
}

// SafeURL is a URL that prints and logs in redacted form: use it as a slog
// attribute value (slog.Any("url", netguard.SafeURL{u})) or with %v.
type SafeURL struct{ URL *url.URL }

// LogValue returns the redacted URL as a string value.
func (s SafeURL) LogValue() slog.Value { return slog.StringValue(Redact(s.URL)) }

// String returns Redact(s.URL).
func (s SafeURL) String() string { return Redact(s.URL) }

// URLAttr returns a slog attribute holding u redacted.
func URLAttr(key string, u *url.URL) slog.Attr { return slog.Any(key, SafeURL{u}) }

// StringAttr returns a slog attribute holding the URL s redacted (see
// RedactString).
func StringAttr(key, s string) slog.Attr { return slog.String(key, RedactString(s)) }
