package netguard

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"testing"
)

var redactTests = []struct {
	in, want string
}{
	{"", ""},
	{"not a url", "not a url"},
	{"https://mirror.example/templates/centos.qcow2", "https://mirror.example/templates/centos.qcow2"},
	{"https://alice:pw@mirror.example/x", "https://alice:xxxxx@mirror.example/x"},
	{"https://alice:@mirror.example/x", "https://alice:xxxxx@mirror.example/x"},
	{"https://ghp_0123456789@github.com/o/r", "https://xxxxx@github.com/o/r"},
	{"https://b.s3.amazonaws.com/k.qcow2?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIA%2F20260101&X-Amz-Date=20260101T000000Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Security-Token=FwoG&X-Amz-Signature=abcdef",
		"https://b.s3.amazonaws.com/k.qcow2?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=xxxxx&X-Amz-Date=20260101T000000Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Security-Token=xxxxx&X-Amz-Signature=xxxxx"},
	{"https://storage.googleapis.com/b/o?X-Goog-Algorithm=GOOG4-RSA-SHA256&X-Goog-Credential=sa%40p.iam&X-Goog-Signature=0a1b",
		"https://storage.googleapis.com/b/o?X-Goog-Algorithm=GOOG4-RSA-SHA256&X-Goog-Credential=xxxxx&X-Goog-Signature=xxxxx"},
	{"https://acct.blob.core.windows.net/c/img.vhd?sv=2022-11-02&se=2026-01-01&sp=r&sig=AbC%3D",
		"https://acct.blob.core.windows.net/c/img.vhd?sv=2022-11-02&se=2026-01-01&sp=r&sig=xxxxx"},
	{"https://d.cloudfront.net/i?Expires=1&Signature=s&Key-Pair-Id=K", "https://d.cloudfront.net/i?Expires=1&Signature=xxxxx&Key-Pair-Id=K"},
	{"http://h/?TOKEN=a&Sig=b&Key=c&PASSWORD=d&secret=e&auth=f&apikey=g&access_token=h",
		"http://h/?TOKEN=xxxxx&Sig=xxxxx&Key=xxxxx&PASSWORD=xxxxx&secret=xxxxx&auth=xxxxx&apikey=xxxxx&access_token=xxxxx"},
	{"http://h/?sessionToken=a&client_secret=b&monkey=c&keyring=d", "http://h/?sessionToken=xxxxx&client_secret=xxxxx&monkey=c&keyring=d"},
	{"http://h/?to%6Ben=a&b=2", "http://h/?to%6Ben=xxxxx&b=2"},
	{"http://h/?a=1;token=x;b=2", "http://h/?a=1;token=xxxxx;b=2"},
	{"http://h/?token&token=", "http://h/?token&token=xxxxx"},
	{"http://h/?token%3Dabc&a=1", "http://h/?token=xxxxx&a=1"},
	{"http://h/?b=2&a=1&b=3", "http://h/?b=2&a=1&b=3"},
	{"http://h/token/abc?x=token", "http://h/token/abc?x=token"},
	{"https://app.example/cb#access_token=abc&state=1", "https://app.example/cb#access_token=xxxxx&state=1"},
	{"https://h/p#section-2", "https://h/p#section-2"},
	{"http://user:pass@host:badport/?sig=x", "http://xxxxx@host:badport/?sig=xxxxx"},
	{"http://user:pa/ss@host/?a=1", "http://xxxxx@host/?a=1"},
	{"http://u:p@h/\x7f?token=t", "http://xxxxx@h/\x7f?token=xxxxx"},
	{"//alice:pw@h/x", "//alice:xxxxx@h/x"},
	{"HTTP://Alice:P%40ss@H/x y", "HTTP://Alice:xxxxx@H/x y"},
	{"http://a@b:c@h/", "http://a@b:xxxxx@h/"},
	{"mailto:alice@example.com?token=1", "mailto:xxxxx@example.com?token=xxxxx"},
}

func TestRedactString(t *testing.T) {
	t.Parallel()
	for _, tt := range redactTests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			if got := RedactString(tt.in); got != tt.want {
				t.Errorf("RedactString(%q)\n got %q\nwant %q", tt.in, got, tt.want)
			}
			// Redact goes through url.URL.String, so compare it where
			// that gives the input back.
			if u, err := url.Parse(tt.in); err == nil && u.String() == tt.in {
				before := u.String()
				if got := Redact(u); got != tt.want {
					t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
				}
				if u.String() != before {
					t.Errorf("Redact modified its argument: %q, was %q", u, before)
				}
			}
		})
	}
	if got := Redact(nil); got != "" {
		t.Errorf("Redact(nil) = %q, want empty", got)
	}
}

func TestRedactText(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{`Get "https://u:p@h/x?sig=1": dial tcp 127.0.0.1:443: connect: refused`,
			`Get "https://u:xxxxx@h/x?sig=xxxxx": dial tcp 127.0.0.1:443: connect: refused`},
		// A trailing '.' may belong to the value, so it goes with it.
		{"from http://a/?token=1 to https://b/?token=2.", "from http://a/?token=xxxxx to https://b/?token=xxxxx"},
		{"no urls here: a=b token=c", "no urls here: a=b token=c"},
		{`parse "http://u:p@h:x/": invalid port ":x" after host`, `parse "http://xxxxx@h:x/": invalid port ":x" after host`},
		{"://", "://"},
		{`Get "http://h/?token=a b\"c&x=1": EOF`, `Get "http://h/?token=xxxxx&x=1": EOF`},
		{`Get "http://h/?a=\\": EOF http://x/?sig=1`, `Get "http://h/?a=\\": EOF http://x/?sig=xxxxx`},
		{"<s3+https://k:s@b/o>", "<s3+https://k:xxxxx@b/o>"},
	}
	for _, tt := range tests {
		if got := RedactText(tt.in); got != tt.want {
			t.Errorf("RedactText(%q)\n got %q\nwant %q", tt.in, got, tt.want)
		}
	}
}

func TestRedactError(t *testing.T) {
	t.Parallel()
	if RedactError(nil) != nil {
		t.Error("RedactError(nil) != nil")
	}
	inner := &DeniedError{Reason: "loopback", Host: "h"}
	ue := &url.Error{Op: "Get", URL: "https://h/x?X-Amz-Signature=sekrit", Err: fmt.Errorf("following https://h/y?token=sekrit2: %w", inner)}
	err := RedactError(ue)
	msg := err.Error()
	if strings.Contains(msg, "sekrit") {
		t.Errorf("message %q leaks a secret", msg)
	}
	var got *url.Error
	if !errors.As(err, &got) || got.URL != "https://h/x?X-Amz-Signature=xxxxx" {
		t.Errorf("redacted error is not a *url.Error with a redacted URL: %#v", err)
	}
	var de *DeniedError
	if !errors.As(err, &de) || de != inner || !errors.Is(err, ErrDenied) {
		t.Errorf("errors.As/Is lost the *DeniedError through RedactError")
	}
	plain := RedactError(errors.New("fetch http://u:p@h/ failed"))
	if want := "fetch http://u:xxxxx@h/ failed"; plain.Error() != want {
		t.Errorf("RedactError(plain) = %q, want %q", plain, want)
	}
	if RedactError(plain) != plain {
		t.Error("RedactError wrapped an already redacted error again")
	}
	// url.Error's Timeout asks only its direct Err, which is now the
	// redacting wrapper: it must pass timeouts on.
	timeout := RedactError(&url.Error{Op: "Get", URL: "https://h/", Err: fmt.Errorf("dial: %w", os.ErrDeadlineExceeded)})
	var ne net.Error
	if !errors.As(timeout, &ne) || !ne.Timeout() {
		t.Errorf("a redacted timeout no longer reports Timeout(): %v", timeout)
	}
	if other := RedactError(&url.Error{Op: "Get", URL: "https://h/", Err: errors.New("refused")}); other.(net.Error).Timeout() {
		t.Error("a redacted non-timeout reports Timeout()")
	}
}

func TestSlog(t *testing.T) {
	t.Parallel()
	u, _ := url.Parse("https://alice:pw@h/img?X-Amz-Signature=sekrit&part=1")
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))
	log.Info("fetch", "url", SafeURL{u}, URLAttr("u2", u), StringAttr("u3", u.String()))
	want := `level=INFO msg=fetch url="https://alice:xxxxx@h/img?X-Amz-Signature=xxxxx&part=1" u2="https://alice:xxxxx@h/img?X-Amz-Signature=xxxxx&part=1" u3="https://alice:xxxxx@h/img?X-Amz-Signature=xxxxx&part=1"` + "\n"
	if got := buf.String(); got != want {
		t.Errorf("log line\n got %q\nwant %q", got, want)
	}
	if got := fmt.Sprint(SafeURL{u}); strings.Contains(got, "sekrit") || strings.Contains(got, ":pw@") {
		t.Errorf("fmt.Sprint(SafeURL) = %q leaks", got)
	}
}

func TestIsSecretParam(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]bool{
		"signature": true, "SIG": true, "token": true, "access_token": true,
		"X-Amz-Signature": true, "x-amz-credential": true, "X-Amz-Security-Token": true,
		"X-Goog-Signature": true, "key": true, "password": true, "secret": true,
		"auth": true, "ApiKey": true, "api_key": true, "to%6Ben": true, "my+token": true,
		"part": false, "X-Amz-Date": false, "monkey": false, "author": false, "sp": false, "": false,
	} {
		if got := IsSecretParam(name); got != want {
			t.Errorf("IsSecretParam(%q) = %v, want %v", name, got, want)
		}
	}
}
