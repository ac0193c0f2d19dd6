package download_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/directdl/directdl/download"
)

type slowAccept struct {
	net.Listener
	d time.Duration
}

func (l slowAccept) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		time.Sleep(l.d) // the client has connected and sent its ClientHello
	}
	return c, err
}

// TestSlowHandshakeWithinConnectTimeout guards against a bug found in review: request() starts the idle (socket)
// timer before http.Client.Do, so it runs through the dial and the TLS
// handshake: a connect timeout longer than the socket timeout never gets
// to apply, and a slow handshake is reported as "no response ... stalled".
func TestSlowHandshakeWithinConnectTimeout(t *testing.T) {
	t.Parallel()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(strings.Repeat("z", 1000)))
	}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv.Listener = slowAccept{ln, 1500 * time.Millisecond}
	srv.StartTLS()
	defer srv.Close()
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	cl := newClient(t, download.WithTLSConfig(&tls.Config{RootCAs: pool}),
		download.WithConnectTimeout(5*time.Second), download.WithSocketTimeout(time.Second), download.WithRetries(0))
	_, err = cl.Get(context.Background(), download.Request{URL: srv.URL + "/z", Path: filepath.Join(t.TempDir(), "z")})
	if err != nil {
		t.Errorf("a 1.5s handshake with a 5s connect timeout failed: %v", err)
	}
}
