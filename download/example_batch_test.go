package download_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/directdl/directdl/download"
)

// allowLoopback allows the example's test servers, on 127.0.0.1, which the
// default policy refuses.
var allowLoopback = download.WithPolicy(download.Policy{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})

// Batch downloads several templates, two at a time. Each request gets its
// own Outcome, in the order of the requests: a missing file (404) does not
// stop the others.
func ExampleClient_Batch() {
	files := map[string][]byte{
		"/centos.qcow2": bytes.Repeat([]byte("centos "), 50000),
		"/debian.qcow2": bytes.Repeat([]byte("debian "), 70000),
	}
	mirror := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		http.ServeContent(w, r, r.URL.Path, time.Time{}, bytes.NewReader(b))
	}))
	defer mirror.Close()
	dir, err := os.MkdirTemp("", "example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	c, err := download.New(allowLoopback)
	if err != nil {
		log.Fatal(err)
	}
	var reqs []download.Request
	for _, name := range []string{"centos.qcow2", "debian.qcow2", "missing.qcow2"} {
		r := download.Request{URL: mirror.URL + "/" + name, Path: filepath.Join(dir, name)}
		if b, ok := files["/"+name]; ok {
			r.Checksum = fmt.Sprintf("sha256:%x", sha256.Sum256(b))
		}
		reqs = append(reqs, r)
	}
	for i, o := range c.Batch(context.Background(), reqs, 2) {
		name := filepath.Base(reqs[i].Path)
		var he *download.HTTPError
		switch {
		case errors.As(o.Err, &he):
			fmt.Println(name, "failed:", he.Status)
		case o.Err != nil:
			fmt.Println(name, "failed:", o.Err)
		default:
			fmt.Println(name, o.Result.Size, "verified:", o.Result.Verified)
		}
	}
	// Output:
	// centos.qcow2 350000 verified: true
	// debian.qcow2 490000 verified: true
	// missing.qcow2 failed: 404
}

// WithProgress reports each download's progress, at most every interval,
// and ends with one event whose Final is set. The sink is called from the
// downloads' goroutines, so it guards what it shares.
func ExampleWithProgress() {
	content := bytes.Repeat([]byte("a disk image "), 200000)
	mirror := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "disk.img", time.Time{}, bytes.NewReader(content))
	}))
	defer mirror.Close()
	dir, err := os.MkdirTemp("", "example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	var (
		mu   sync.Mutex
		last download.Progress
	)
	sink := func(p download.Progress) {
		mu.Lock()
		defer mu.Unlock()
		// A real sink would log p.Done, p.Total, p.Rate and p.ETA; how many
		// events arrive depends on timing, so the example keeps the last.
		last = p
	}
	c, err := download.New(allowLoopback, download.WithProgress(sink, 100*time.Millisecond))
	if err != nil {
		log.Fatal(err)
	}
	_, err = c.Get(context.Background(), download.Request{URL: mirror.URL + "/disk.img", Path: filepath.Join(dir, "disk.img")})
	if err != nil {
		log.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	fmt.Println(last.Final, last.Done, last.Total, last.Err)
	// Output:
	// true 2600000 2600000 <nil>
}
