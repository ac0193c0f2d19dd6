package netguard_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"

	"github.com/directdl/directdl/internal/netguard"
)

func ExamplePolicy_CheckAddr() {
	var p netguard.Policy // the safe default
	for _, s := range []string{"203.0.113.7", "10.0.0.5", "169.254.169.254", "::ffff:127.0.0.1"} {
		fmt.Println(s, p.CheckAddr(netip.MustParseAddr(s)))
	}
	// Output:
	// 203.0.113.7 <nil>
	// 10.0.0.5 <nil>
	// 169.254.169.254 netguard: 169.254.169.254 is a cloud metadata service; allow it with an allow CIDR such as 169.254.169.254/32
	// ::ffff:127.0.0.1 netguard: 127.0.0.1 is loopback; allow it with an allow CIDR such as 127.0.0.0/8
}

func ExampleParsePrefixes() {
	allow, err := netguard.ParsePrefixes("127.0.0.0/8, ::1")
	if err != nil {
		panic(err)
	}
	p := netguard.Policy{Allow: allow, Deny: netguard.Prefixes{netip.MustParsePrefix("127.0.0.2/32")}}
	fmt.Println(p.CheckAddr(netip.MustParseAddr("127.0.0.1")))
	fmt.Println(p.CheckAddr(netip.MustParseAddr("127.0.0.2")))
	_, err = netguard.ParsePrefixes("10.1.2.3/8")
	fmt.Println(err)
	// Output:
	// <nil>
	// netguard: 127.0.0.2 is in deny CIDR 127.0.0.2/32; deny CIDRs win over allow CIDRs; narrow or split the deny CIDR to reach it
	// netguard: invalid policy: 10.1.2.3/8 has host bits set; did you mean 10.0.0.0/8 or 10.1.2.3/32?
}

// A client built from a guarded Dialer refuses a server on the loopback
// interface, and reaches it once loopback is allowed.
func ExampleNewTransport() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "hello")
	}))
	defer srv.Close()

	for _, p := range []netguard.Policy{
		{},
		{Allow: netguard.Prefixes{netip.MustParsePrefix("127.0.0.0/8")}},
	} {
		d, err := netguard.NewDialer(p, nil)
		if err != nil {
			panic(err)
		}
		tr := netguard.NewTransport(d, nil)
		client := &http.Client{Transport: tr, CheckRedirect: netguard.CheckRedirect(0)}
		resp, err := client.Get(srv.URL)
		var denied *netguard.DeniedError
		switch {
		case errors.As(err, &denied):
			fmt.Println("refused:", denied.Reason)
		case err != nil:
			fmt.Println("error:", err)
		default:
			resp.Body.Close()
			fmt.Println("status:", resp.StatusCode)
		}
		tr.CloseIdleConnections()
	}
	// Output:
	// refused: loopback
	// status: 200
}

func ExampleRedactString() {
	fmt.Println(netguard.RedactString("https://alice:pw@bucket.example/img.qcow2?X-Amz-Signature=0badc0de&part=1"))
	// Output:
	// https://alice:xxxxx@bucket.example/img.qcow2?X-Amz-Signature=xxxxx&part=1
}

func ExampleSafeURL() {
	u, _ := url.Parse("https://mirror.example/img.qcow2?token=s3cr3t")
	fmt.Printf("fetching %v\n", netguard.SafeURL{URL: u})
	// Output:
	// fetching https://mirror.example/img.qcow2?token=xxxxx
}

// WithChain records where a request was redirected, redacted, on a client
// shared by many requests.
func ExampleWithChain() {
	mux := http.NewServeMux()
	mux.Handle("/start", http.RedirectHandler("/signed?sig=0badc0de", http.StatusFound))
	mux.HandleFunc("/signed", func(w http.ResponseWriter, r *http.Request) {})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	d := &netguard.Dialer{Policy: netguard.Policy{Allow: netguard.Prefixes{netip.MustParsePrefix("127.0.0.0/8")}}}
	tr := netguard.NewTransport(d, nil)
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, CheckRedirect: netguard.CheckRedirect(0)}

	var chain netguard.Chain
	req, _ := http.NewRequestWithContext(netguard.WithChain(context.Background(), &chain), http.MethodGet, srv.URL+"/start", nil)
	resp, err := client.Do(req)
	if err != nil {
		panic(err)
	}
	resp.Body.Close()
	for _, u := range chain.URLs() {
		fmt.Println(strings.TrimPrefix(u, srv.URL))
	}
	// Output:
	// /start
	// /signed?sig=xxxxx
}
