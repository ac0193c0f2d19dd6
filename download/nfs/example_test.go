package nfs_test

import (
	"context"
	"fmt"
	"io"
	"log"

	"github.com/directdl/directdl/download/nfs"
	"github.com/directdl/directdl/download/nfs/nfstest"
)

// Open a file on an NFS server (here a go-nfs test server on
// 127.0.0.1 started by the example) and read it at an offset.
func ExampleOpen() {
	srv, err := nfstest.Start(map[string][]byte{"templates/tiny.raw": []byte("hello, nfs")})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	url := fmt.Sprintf("nfs://%s/srv/export/templates/tiny.raw", srv.Addr)
	f, err := nfs.Open(context.Background(), url)
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()

	buf := make([]byte, 3)
	if _, err := f.ReadAt(buf, 7); err != nil {
		log.Fatal(err)
	}
	all, err := io.ReadAll(io.NewSectionReader(f, 0, f.Size()))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("export:", f.Export())
	fmt.Println("size:", f.Size())
	fmt.Printf("at 7: %s\n", buf)
	fmt.Printf("all: %s\n", all)
	// Output:
	// export: /srv/export
	// size: 10
	// at 7: nfs
	// all: hello, nfs
}

// ParseURL shows where Open will look for the export.
func ExampleParseURL() {
	loc, err := nfs.ParseURL("nfs://filer.example:2049/srv/images/centos/disk.qcow2")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(loc.Host, loc.Port, loc.Path())
	fmt.Println(loc.ExportCandidates())

	_, err = nfs.ParseURL("nfs://filer.example/srv/../etc/shadow")
	fmt.Println(err)
	// Output:
	// filer.example 2049 /srv/images/centos/disk.qcow2
	// [/srv/images/centos /srv/images /srv /]
	// nfs: bad URL "nfs://filer.example/srv/../etc/shadow": ".." in the path is not allowed
}
