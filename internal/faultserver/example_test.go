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

func ExampleParseSize() {
	for _, v := range []string{"4096", "15MiB", "1G", "2KB", "2X"} {
		n, err := faultserver.ParseSize(v)
		fmt.Println(n, err)
	}
	// Output:
	// 4096 <nil>
	// 15728640 <nil>
	// 1073741824 <nil>
	// 2048 <nil>
	// 0 bad size "2X": want bytes, optionally with K, M, G, T, P or E
}

// A mirror with a bad piece: byte 10 of the content goes out flipped, while
// the ETag stays that of the true content.
func ExampleFaults_corrupt() {
	s, err := faultserver.Start(faultserver.WithFaults(faultserver.Faults{CorruptOffset: 10, CorruptLength: 1}))
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	req, _ := http.NewRequest("GET", s.URL(faultserver.DefaultResourcePath), nil)
	req.Header.Set("Range", "bytes=8-11")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	s.Close() // waits for the request to be logged
	v, _ := s.Version(faultserver.DefaultResourcePath)
	want := make([]byte, 4)
	v.Content.ReadAt(want, 8)
	for i := range got {
		fmt.Printf("%d:%t ", 8+i, got[i] == want[i])
	}
	fmt.Println(resp.Header.Get("ETag") == v.ETag, s.Requests()[0].Fault)
	// Output:
	// 8:true 9:true 10:false 11:true true corrupt
}
