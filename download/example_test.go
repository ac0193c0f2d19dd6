package download_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/directdl/directdl/download"
)

// Parse a template checksum as an orchestrator stores it, hash content with
// it, and verify.
func ExampleParseChecksum() {
	sum := sha256.Sum256([]byte("template bytes"))
	c, err := download.ParseChecksum(fmt.Sprintf("{SHA-256}%X", sum))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(c.Algorithm(), c.String()[:15])

	h := c.NewHash()
	h.Write([]byte("template bytes"))
	fmt.Println("verified:", c.Verify(h.Sum(nil)) == nil)

	// CloudStack reads bare hex as MD5, so a bare SHA-256 value is refused
	// with a hint.
	_, err = download.ParseChecksum(c.Hex())
	fmt.Println(err != nil)
	// Output:
	// sha256 sha256:af87c13f
	// verified: true
	// true
}

// Download a file with a checksum from a mirror. The mirror here is a test
// server on the loopback interface, which the default policy refuses, so the
// example allows 127.0.0.0/8.
func ExampleClient_Get() {
	content := bytes.Repeat([]byte("a disk image "), 100000)
	mirror := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "disk.img", time.Time{}, bytes.NewReader(content))
	}))
	defer mirror.Close()
	sum := sha256.Sum256(content)
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)

	c, err := download.New(
		download.WithPolicy(download.Policy{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}),
		download.WithConnections(4),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	res, err := c.Get(context.Background(), download.Request{
		URL:      mirror.URL + "/disk.img",
		Path:     filepath.Join(dir, "disk.img"),
		Checksum: fmt.Sprintf("{SHA-256}%x", sum),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(res.Size, res.Verified, res.Ranges, res.Digest[:15])

	// A wrong checksum leaves nothing behind.
	_, err = c.Get(context.Background(), download.Request{
		URL:      mirror.URL + "/disk.img",
		Path:     filepath.Join(dir, "other.img"),
		Checksum: "{MD5}00000000000000000000000000000000",
	})
	var ce *download.ChecksumError
	fmt.Println(errors.As(err, &ce), ce.RetryElsewhere())
	_, err = os.Stat(filepath.Join(dir, "other.img"))
	fmt.Println(os.IsNotExist(err))
	// Output:
	// 1300000 true true sha256:3a7be473
	// true false
	// true
}
