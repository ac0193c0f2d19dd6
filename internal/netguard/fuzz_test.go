package netguard

import (
	"net/netip"
	"net/url"
	"strings"
	"testing"
)

func FuzzRedact(f *testing.F) {
	for _, tt := range redactTests {
		f.Add(tt.in)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out := RedactString(in)
		checkRedacted(t, in, out)
		// A lone URL in text is redacted as by RedactString.
		if i := strings.Index(in, "://"); i >= 0 && strings.IndexFunc(in, func(r rune) bool {
			return r < 0x80 && isURLEnd(byte(r))
		}) < 0 && strings.TrimLeftFunc(in[:i], func(r rune) bool { return r < 0x80 && isSchemeByte(byte(r)) }) == "" {
			if got := RedactText(in); got != out {
				t.Fatalf("RedactText(%q) = %q, RedactString = %q", in, got, out)
			}
		} else {
			RedactText(in)
		}
		if u, err := url.Parse(in); err == nil {
			checkRedacted(t, u.String(), Redact(u))
		}
	})
}

// checkRedacted fails t if out, the redacted form of in, still holds a
// password, a user name used as a token, or the value of a secret
// parameter. It checks with the standard library's parsers where they
// accept the string, and by structure where they do not.
func checkRedacted(t *testing.T, in, out string) {
	t.Helper()
	rest, frag, _ := strings.Cut(out, "#")
	rest, query, _ := strings.Cut(rest, "?")
	for _, part := range []string{query, frag} {
		for _, pair := range strings.FieldsFunc(part, func(r rune) bool { return r == '&' || r == ';' }) {
			if name, v, ok := strings.Cut(pair, "="); ok && IsSecretParam(name) && v != Redacted {
				t.Fatalf("RedactString(%q) = %q: %s keeps its value", in, out, name)
			}
		}
		vals, _ := url.ParseQuery(part)
		for k, vs := range vals {
			for _, v := range vs {
				if IsSecretParam(k) && v != Redacted && v != "" {
					t.Fatalf("RedactString(%q) = %q: url.ParseQuery sees %s=%q", in, out, k, v)
				}
			}
		}
	}

	uin, err := url.Parse(in)
	if err != nil {
		// Lenient: everything between "//" and the last '@' is gone.
		// Lenient: everything between "//" (or, without one, the
		// scheme's ':') and the last '@' is gone.
		if i := strings.Index(rest, "//"); i >= 0 {
			if at := strings.LastIndexByte(rest[i+2:], '@'); at >= 0 && rest[i+2:i+2+at] != Redacted {
				t.Fatalf("RedactString(%q) = %q: userinfo %q kept", in, out, rest[i+2:i+2+at])
			}
		} else if at := strings.LastIndexByte(rest, '@'); at >= 0 {
			if ui := rest[:at]; ui != Redacted && !strings.HasSuffix(ui, ":"+Redacted) || strings.Count(ui, ":") > 1 {
				t.Fatalf("RedactString(%q) = %q: userinfo %q kept", in, out, ui)
			}
		}
		return
	}
	uout, err := url.Parse(out)
	if err != nil {
		t.Fatalf("RedactString(%q) = %q, which url.Parse rejects: %v", in, out, err)
	}
	if (uin.User == nil) != (uout.User == nil) {
		t.Fatalf("RedactString(%q) = %q: userinfo %v became %v", in, out, uin.User, uout.User)
	}
	if uout.User != nil {
		if pw, has := uout.User.Password(); has && pw != Redacted {
			t.Fatalf("RedactString(%q) = %q: password %q kept", in, out, pw)
		} else if !has && uout.User.Username() != Redacted {
			t.Fatalf("RedactString(%q) = %q: user name %q kept", in, out, uout.User.Username())
		}
	}
	// A distinctive secret that occurs once in the input must be gone.
	var secrets []string
	if uin.User != nil {
		if pw, has := uin.User.Password(); has {
			secrets = append(secrets, pw)
		} else {
			secrets = append(secrets, uin.User.Username())
		}
	}
	vals, _ := url.ParseQuery(uin.RawQuery)
	for k, vs := range vals {
		if IsSecretParam(k) {
			secrets = append(secrets, vs...)
		}
	}
	for _, s := range secrets {
		if len(s) >= 6 && isAlnum(s) && strings.Count(in, s) == 1 && strings.Contains(out, s) {
			t.Fatalf("RedactString(%q) = %q: secret %q kept", in, out, s)
		}
	}
}

func isAlnum(s string) bool {
	for _, c := range []byte(s) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

func FuzzParsePrefixes(f *testing.F) {
	for _, s := range []string{"", "10.0.0.0/8", "10.0.0.0/8, 192.168.1.5 fd00::/8", "10.1.2.3/8",
		"::ffff:127.0.0.0/104", "fe80::1%eth0", "0.0.0.0/0,::/0", "1.2.3.4/32\t\n::1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		ps, err := ParsePrefixes(in)
		if err != nil {
			return
		}
		for _, p := range ps {
			if !p.IsValid() || p.Masked() != p {
				t.Fatalf("ParsePrefixes(%q) returned %v", in, p)
			}
		}
		if err := (Policy{Allow: ps, Deny: ps}).Validate(); err != nil {
			t.Fatalf("ParsePrefixes(%q) = %v, which Validate rejects: %v", in, ps, err)
		}
		again, err := ParsePrefixes(ps.String())
		if err != nil || again.String() != ps.String() {
			t.Fatalf("ParsePrefixes(%q).String() = %q reparses as %v, %v", in, ps, again, err)
		}
		// Whatever the lists, the check must not panic and a denied
		// address must stay denied when it is also in Allow.
		for _, p := range ps {
			a := p.Addr()
			if err := (Policy{Allow: ps, Deny: Prefixes{netip.PrefixFrom(a, a.BitLen())}}).CheckAddr(a); err == nil {
				t.Fatalf("%s allowed although denied", a)
			}
		}
	})
}
