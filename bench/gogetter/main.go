// Command gogetter downloads one URL to one file with
// github.com/hashicorp/go-getter (v1), verifying it with go-getter's own
// checksum support, for bench/download.sh to compare against ddctl
// download, aria2c and curl. It is set up as a careful user would: its own
// http.Client, no .netrc, no X-Terraform-Get, no HEAD request first, and
// no detectors or decompressors.
//
// Usage:
//
//	gogetter URL DEST SHA256HEX
//
// It is a separate module so that the main module does not depend on
// go-getter.
package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	getter "github.com/hashicorp/go-getter"
)

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: gogetter URL DEST SHA256HEX")
		os.Exit(2)
	}
	url, dest, sum := os.Args[1], os.Args[2], os.Args[3]
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	pwd, err := os.Getwd()
	if err != nil {
		fmt.Fprintf(os.Stderr, "gogetter: %v\n", err)
		os.Exit(1)
	}
	httpGetter := &getter.HttpGetter{
		Client:                &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()},
		Netrc:                 false,
		XTerraformGetDisabled: true,
		DoNotCheckHeadFirst:   true,
	}
	c := &getter.Client{
		Ctx:           ctx,
		Src:           url + "?checksum=sha256:" + sum,
		Dst:           dest,
		Pwd:           pwd,
		Mode:          getter.ClientModeFile,
		Detectors:     []getter.Detector{},
		Decompressors: map[string]getter.Decompressor{},
		Getters:       map[string]getter.Getter{"http": httpGetter, "https": httpGetter},
	}
	if err := c.Get(); err != nil {
		fmt.Fprintf(os.Stderr, "gogetter: %v\n", err)
		os.Exit(1)
	}
}
