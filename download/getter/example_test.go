package getter_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/directdl/directdl/download"
	"github.com/directdl/directdl/download/getter"
)

// A local file, copied (never linked), verified against the checksum in
// its URL and moved into place by the engine.
func ExampleGetter_Get() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	src := filepath.Join(dir, "source.txt")
	os.WriteFile(src, []byte("hello\n"), 0o644)

	c, _ := download.New()
	g, _ := getter.New(c, getter.WithSchemes(getter.SchemeFile))
	res, err := g.Get(context.Background(), download.Request{
		URL:  "file://" + src + "?checksum=sha256:5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03",
		Path: filepath.Join(dir, "copy.txt"),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(res.Size, res.Verified)
	// Output: 6 true
}

// Schemes that are not enabled are refused with the option that enables
// them.
func ExampleWithSchemes() {
	c, _ := download.New()
	g, _ := getter.New(c) // s3, gcs, git
	_, err := g.Get(context.Background(), download.Request{
		URL:  "hg::https://example.com/repo//disk.img",
		Path: filepath.Join(os.TempDir(), "disk.img"),
	})
	fmt.Println(err)
	// Output: download: invalid request: getter: scheme not enabled: hg::https://example.com/repo//disk.img: scheme "hg" is not enabled: add it with WithSchemes("hg", ...)
}
