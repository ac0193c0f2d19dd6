package netguard

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

// countdown redirects /N to /N-1 until /0, which answers "ok".
var countdown = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	n, err := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/"))
	if err != nil {
		http.NotFound(w, r)
		return
	}
	if n == 0 {
		fmt.Fprint(w, "ok")
		return
	}
	http.Redirect(w, r, fmt.Sprintf("/%d?token=secret%d", n-1, n), http.StatusFound)
})

func TestRedirectLimit(t *testing.T) {
	t.Parallel()
	srv, _ := loopbackServer(t, "127.0.0.1", countdown, false)
	tests := []struct {
		max, hops int
		ok        bool
	}{
		{0, 10, true},
		{0, 11, false},
		{3, 3, true},
		{3, 4, false},
		{-1, 0, true},
		{-1, 1, false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("max%d_hops%d", tt.max, tt.hops), func(t *testing.T) {
			t.Parallel()
			c := guardedClient(t, allowLoopback, nil)
			c.CheckRedirect = CheckRedirect(tt.max)
			body, err := get(t, c, fmt.Sprintf("%s/%d", srv.URL, tt.hops))
			if tt.ok {
				if err != nil || body != "ok" {
					t.Fatalf("%d hops with max %d: body %q, err %v; want ok", tt.hops, tt.max, body, err)
				}
				return
			}
			var re *RedirectError
			if !errors.As(err, &re) || !errors.Is(err, ErrTooManyRedirects) {
				t.Fatalf("%d hops with max %d: %v, want a *RedirectError for ErrTooManyRedirects", tt.hops, tt.max, err)
			}
			// net/http quotes the raw Location in its *url.Error.
			red := RedactError(err)
			if strings.Contains(red.Error(), "secret") {
				t.Errorf("redacted error %q leaks the token", red)
			}
			if !errors.Is(red, ErrTooManyRedirects) {
				t.Errorf("errors.Is(RedactError(err), ErrTooManyRedirects) = false")
			}
		})
	}
}

// tlsClient is guardedClient trusting srv's certificate.
func tlsClient(t *testing.T, p Policy, srv interface{ Certificate() *x509.Certificate }) *http.Client {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	d, err := NewDialer(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	tr := NewTransport(d, &tls.Config{RootCAs: pool})
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, CheckRedirect: CheckRedirect(0)}
}

func TestRedirectSchemes(t *testing.T) {
	t.Parallel()
	plain, plainAccepted := loopbackServer(t, "127.0.0.2", nil, false)
	var secureURL string
	secure, _ := loopbackServer(t, "127.0.0.1", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/to-http":
			http.Redirect(w, r, plain.URL+"/?sig=s3cr3t", http.StatusFound)
		case "/to-https":
			http.Redirect(w, r, secureURL+"/done", http.StatusMovedPermanently)
		case "/to-ftp":
			http.Redirect(w, r, "ftp://127.0.0.1/image.qcow2", http.StatusFound)
		case "/to-file":
			http.Redirect(w, r, "file:///etc/passwd", http.StatusFound)
		default:
			fmt.Fprint(w, "ok")
		}
	}), true)
	secureURL = secure.URL
	// A plain server that sends the client on to the TLS one.
	upgrade, _ := loopbackServer(t, "127.0.0.3", http.RedirectHandler(secure.URL+"/done", http.StatusFound), false)

	tests := []struct {
		url  string
		want error // nil means success
	}{
		{secure.URL + "/to-https", nil},
		{upgrade.URL + "/", nil},
		{secure.URL + "/to-http", ErrDowngrade},
		{secure.URL + "/to-ftp", ErrScheme},
		{secure.URL + "/to-file", ErrScheme},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			t.Parallel()
			c := tlsClient(t, allowLoopback, secure)
			body, err := get(t, c, tt.url)
			if tt.want == nil {
				if err != nil || body != "ok" {
					t.Fatalf("GET %s: body %q, err %v; want ok", tt.url, body, err)
				}
				return
			}
			var re *RedirectError
			if !errors.As(err, &re) || !errors.Is(err, tt.want) {
				t.Fatalf("GET %s: %v, want a *RedirectError for %v", tt.url, err, tt.want)
			}
			if re.Hop != 1 {
				t.Errorf("Hop = %d, want 1", re.Hop)
			}
			if msg := RedactError(err).Error(); strings.Contains(msg, "s3cr3t") {
				t.Errorf("message %q leaks the signature", msg)
			}
		})
	}
	if n := plainAccepted.Load(); n != 0 {
		t.Errorf("the HTTP server behind the downgrade accepted %d connections, want 0", n)
	}
}

func TestRedirectDowngradeMessage(t *testing.T) {
	t.Parallel()
	from, _ := url.Parse("https://alice:pw@a.example/x?X-Amz-Signature=abc")
	to, _ := url.Parse("http://b.example/y?token=def&part=1")
	req := &http.Request{URL: to}
	via := []*http.Request{{URL: from}}
	req = req.WithContext(t.Context())
	err := CheckRedirect(0)(req, via)
	want := "netguard: redirect 1 from https://alice:xxxxx@a.example/x?X-Amz-Signature=xxxxx to http://b.example/y?token=xxxxx&part=1 refused: it downgrades HTTPS to HTTP"
	if err == nil || err.Error() != want {
		t.Errorf("error = %v\nwant      %s", err, want)
	}
}

// TestRedirectToDeniedAddress follows a redirect from an allowed server to
// a loopback address the policy denies: the hop fails when it is dialed,
// and the chain shows both URLs, redacted.
func TestRedirectToDeniedAddress(t *testing.T) {
	t.Parallel()
	target, targetAccepted := loopbackServer(t, "127.0.0.2", nil, false)
	tu, _ := url.Parse(target.URL)
	tu.User = url.UserPassword("bob", "hunter2")
	tu.RawQuery = "X-Amz-Signature=deadbeef&X-Amz-Credential=AKIA&part=2"
	origin, _ := loopbackServer(t, "127.0.0.1", http.RedirectHandler(tu.String(), http.StatusFound), false)

	p := Policy{Allow: Prefixes{netip.MustParsePrefix("127.0.0.1/32")}}
	c := guardedClient(t, p, nil)
	var chain Chain
	req, err := http.NewRequestWithContext(WithChain(t.Context(), &chain), http.MethodGet, origin.URL+"/image?token=tok123", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err == nil {
		resp.Body.Close()
		t.Fatal("redirect to 127.0.0.2 succeeded, want it refused at dial")
	}
	wantDenied(t, err, "127.0.0.2", "127.0.0.2")
	if n := targetAccepted.Load(); n != 0 {
		t.Errorf("denied server accepted %d connections, want 0", n)
	}

	_, port, _ := net.SplitHostPort(tu.Host)
	want := []string{
		origin.URL + "/image?token=xxxxx",
		"http://bob:xxxxx@127.0.0.2:" + port + "?X-Amz-Signature=xxxxx&X-Amz-Credential=xxxxx&part=2",
	}
	got := chain.URLs()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("chain = %q\nwant    %q", got, want)
	}
	msg := RedactError(err).Error()
	for _, secret := range []string{"hunter2", "deadbeef", "AKIA", "tok123"} {
		if strings.Contains(chain.String()+msg, secret) {
			t.Errorf("chain %q or error %q leaks %q", chain.String(), msg, secret)
		}
	}
}

func TestChainWithoutRedirect(t *testing.T) {
	t.Parallel()
	srv, _ := loopbackServer(t, "127.0.0.1", countdown, false)
	var chain Chain
	req, _ := http.NewRequestWithContext(WithChain(t.Context(), &chain), http.MethodGet, srv.URL+"/0", nil)
	resp, err := guardedClient(t, allowLoopback, nil).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := chain.URLs(); len(got) != 0 {
		t.Errorf("chain = %q, want empty", got)
	}
	if ChainFrom(t.Context()) != nil {
		t.Error("ChainFrom(plain context) != nil")
	}
}
