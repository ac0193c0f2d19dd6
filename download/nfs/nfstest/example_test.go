package nfstest_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/directdl/directdl/download/nfs"
	"github.com/directdl/directdl/download/nfs/nfstest"
)

// Serve a directory of files over NFSv3 on 127.0.0.1, read one with the
// NFS client, and replace it mid-read: the client's next read sees another
// file and fails with nfs.ErrChanged instead of mixing two versions. The
// server also records what the client mounted and as whom.
func ExampleStart() {
	srv, err := nfstest.Start(map[string][]byte{"templates/tiny.raw": []byte("version 1")})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close() // in a test, nfstest.New(t, files) closes it when t ends

	ctx := context.Background()
	f, err := nfs.Open(ctx, srv.URL("templates/tiny.raw"))
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, f.Size())
	if _, err := f.ReadAt(buf, 0); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("read %q\n", buf)

	if err := srv.Replace("templates/tiny.raw", []byte("version 2")); err != nil {
		log.Fatal(err)
	}
	_, err = f.ReadAt(buf, 0)
	fmt.Println("after Replace:", errors.Is(err, nfs.ErrChanged))

	fmt.Println("mounts:", srv.Mounts())
	fmt.Println("uid:", srv.Creds()[0].UID)
	// Output:
	// read "version 1"
	// after Replace: true
	// mounts: [/srv/export/templates /srv/export]
	// uid: 65534
}
