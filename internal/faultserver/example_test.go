package faultserver_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"log"
	"net/http"

	"github.com/directdl/directdl/internal/faultserver"
)

func Example() {
	s, err := faultserver.Start(
		faultserver.WithResource(faultserver.PatternResource("/disk.qcow2", 42, 1<<20)),
		faultserver.WithFaults(faultserver.Faults{Always200: true}))
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	req, _ := http.NewRequest("GET", s.URL("/disk.qcow2"), nil)
	req.Header.Set("Range", "bytes=100-199")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	n, _ := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	fmt.Println(resp.StatusCode, resp.Header.Get("Accept-Ranges"), n)

	s.SetFaults(faultserver.Faults{})
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	fmt.Println(resp.StatusCode, resp.Header.Get("Content-Range"))
	// Output:
	// 200 bytes 1048576
	// 206 bytes 100-199/1048576
}

// The content of a Pattern is fixed by its seed, so this digest never
// changes.
func ExampleHash() {
	h := sha256.New()
	if err := faultserver.Hash(context.Background(), faultserver.Pattern(1), 1<<20, h); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%x\n", h.Sum(nil)[:8])
	// Output:
	// 85b66b3a5816d686
}
