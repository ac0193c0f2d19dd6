package download_test

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/directdl/directdl/download"
	"github.com/directdl/directdl/download/nfs"
	"github.com/directdl/directdl/download/nfs/nfstest"
	"github.com/directdl/directdl/internal/faultserver"
)

// nfsSize is the size of the NFS files that are interrupted on their way:
// large enough that 4 connections each take several ranges, so the fault
// lands while bytes are still missing.
const nfsSize = 20 << 20

// nfsContent is n bytes of the pattern seed.
func nfsContent(t testing.TB, seed uint64, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := faultserver.Pattern(seed).ReadAt(b, 0); err != nil {
		t.Fatal(err)
	}
	return b
}

// faultAt returns a progress option that runs fault once, when at least
// n bytes of the file are written, so that it lands mid-download whatever
// the machine's speed; and a check, for after the download, that fails t
// unless fault ran, without error.
func faultAt(n int64, fault func() error) (download.Option, func(t *testing.T)) {
	var once sync.Once
	ran := make(chan error, 1)
	opt := download.WithProgress(func(p download.Progress) {
		if p.Done >= n && !p.Final {
			once.Do(func() { ran <- fault() })
		}
	}, 5*time.Millisecond)
	return opt, func(t *testing.T) {
		t.Helper()
		select {
		case err := <-ran:
			if err != nil {
				t.Fatal(err)
			}
		default:
			t.Fatal("the download ended before the fault")
		}
	}
}

// noError adapts a fault that cannot fail.
func noError(f func()) func() error { return func() error { f(); return nil } }

// checkNFSResult checks a finished download of want from url.
func checkNFSResult(t *testing.T, res *download.Result, dest, url string, want []byte) {
	t.Helper()
	if got := fileSHA256(t, dest); got != sumOf(want) {
		t.Fatalf("destination has %s, want %s", got, sumOf(want))
	}
	if res.Size != int64(len(want)) || res.Digest != sumOf(want) {
		t.Errorf("result size %d digest %s, want %d %s", res.Size, res.Digest, len(want), sumOf(want))
	}
	if res.URL != url || !res.Ranges {
		t.Errorf("result URL %q ranges %v, want %q with ranges", res.URL, res.Ranges, url)
	}
	if len(res.Sources) != 1 || res.Sources[0].URL != url {
		t.Errorf("sources %+v, want the one NFS file %s", res.Sources, url)
	}
	assertClean(t, filepath.Dir(dest), filepath.Base(dest))
}

func TestNFSDownload(t *testing.T) {
	t.Parallel()
	files := map[string][]byte{
		"templates/big.qcow2": nfsContent(t, 1, nfsSize),
		"odd.raw":             nfsContent(t, 2, 3<<20+4321),
		"empty.raw":           {},
	}
	srv := nfstest.New(t, files)
	tests := []struct {
		name, file string
		checksum   string
		wantErr    error
		// parallel: the file is large enough for every connection.
		parallel bool
	}{
		{name: "verified", file: "templates/big.qcow2", checksum: sumOf(files["templates/big.qcow2"]), parallel: true},
		{name: "no checksum", file: "odd.raw"},
		{name: "empty file", file: "empty.raw", checksum: sumOf(nil)},
		{name: "checksum mismatch", file: "odd.raw", checksum: sumOf([]byte("another file")), wantErr: download.ErrChecksumMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cl := newClient(t, download.WithConnections(4))
			dir := t.TempDir()
			dest := filepath.Join(dir, "file")
			url := srv.URL(tt.file)
			res, err := cl.Get(context.Background(), download.Request{URL: url, Path: dest, Checksum: tt.checksum})
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Get = %v, want %v", err, tt.wantErr)
				}
				assertClean(t, dir)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := files[tt.file]
			checkNFSResult(t, res, dest, url, want)
			if res.Verified != (tt.checksum != "") {
				t.Errorf("Verified = %v with checksum %q", res.Verified, tt.checksum)
			}
			if res.Sources[0].Bytes != int64(len(want)) || res.Restarts != 0 || res.ResumedFrom != 0 {
				t.Errorf("source bytes %d, restarts %d, resumed from %d: want %d, 0, 0",
					res.Sources[0].Bytes, res.Restarts, res.ResumedFrom, len(want))
			}
			if tt.parallel && res.Connections < 2 {
				t.Errorf("Connections = %d, want more than one", res.Connections)
			}
		})
	}
}

// TestNFSResume interrupts a download and gets it again: the partial
// download is resumed when the NFS file is the one it came from, and
// thrown away when the file was replaced in between.
func TestNFSResume(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// between runs between the two Gets and returns the URL and
		// content of the second.
		between func(t *testing.T, srv *nfstest.Server) (string, []byte)
		resumes bool
	}{
		{name: "same file", resumes: true, between: func(t *testing.T, srv *nfstest.Server) (string, []byte) {
			return srv.URL("f"), nfsContent(t, 3, nfsSize)
		}},
		{name: "file replaced", between: func(t *testing.T, srv *nfstest.Server) (string, []byte) {
			data := nfsContent(t, 4, nfsSize) // same size: only the file's identity tells
			if err := srv.Replace("f", data); err != nil {
				t.Fatal(err)
			}
			return srv.URL("f"), data
		}},
		{name: "server restarted", resumes: true, between: func(t *testing.T, srv *nfstest.Server) (string, []byte) {
			// Same files, same ids and times; only the port (so the URL)
			// differs, which the identity of the partial download does
			// not include.
			srv.Kill()
			return srv.Restart(t).URL("f"), nfsContent(t, 3, nfsSize)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := nfstest.New(t, map[string][]byte{"f": nfsContent(t, 3, nfsSize)})
			dest := filepath.Join(t.TempDir(), "f.img")
			stop, ctx := cancelAfter(t, 6<<20)
			_, err := newClient(t, download.WithConnections(4), stop).Get(ctx, download.Request{URL: srv.URL("f"), Path: dest})
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("first Get = %v, want it cancelled", err)
			}
			if !leftovers(t, dest) {
				t.Fatal("the cancelled download left nothing to resume")
			}
			checkIdentity(t, srv.URL("f"), dest)

			url, want := tt.between(t, srv)
			res, err := newClient(t, download.WithConnections(4)).Get(context.Background(),
				download.Request{URL: url, Path: dest, Checksum: sumOf(want)})
			if err != nil {
				t.Fatal(err)
			}
			checkNFSResult(t, res, dest, url, want)
			if !res.Verified || res.Restarts != 0 {
				t.Errorf("Verified %v, Restarts %d: want true, 0", res.Verified, res.Restarts)
			}
			switch {
			case tt.resumes && (res.ResumedFrom == 0 || res.BytesTransferred >= nfsSize):
				t.Errorf("resumed from %d and transferred %d of %d bytes: want a resume", res.ResumedFrom, res.BytesTransferred, nfsSize)
			case !tt.resumes && res.ResumedFrom != 0:
				t.Errorf("resumed from %d over a replaced file", res.ResumedFrom)
			}
		})
	}
}

// checkIdentity checks the control file beside dest records the NFS
// file's validators, which decide whether a later Get may resume.
func checkIdentity(t *testing.T, url, dest string) {
	t.Helper()
	f, err := nfs.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	v := f.Validators().String()
	_ = f.Close()
	b, err := os.ReadFile(filepath.Join(filepath.Dir(dest), "."+filepath.Base(dest)+download.ControlSuffix))
	if err != nil {
		t.Fatal(err)
	}
	var ctl struct {
		Identity string `json:"identity"`
	}
	if err := json.Unmarshal(b, &ctl); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(ctl.Identity, v) {
		t.Errorf("control file identity %q, want the file's validators %q", ctl.Identity, v)
	}
}

// TestNFSFileChanged replaces the file while it is being downloaded: the
// next READ sees other attributes, and the download starts again from
// zero with the new file.
func TestNFSFileChanged(t *testing.T) {
	t.Parallel()
	old := nfsContent(t, 5, nfsSize)
	tests := []struct {
		name     string
		size     int
		checksum string // of the old content, when set
	}{
		{name: "same size", size: nfsSize},
		{name: "grows", size: nfsSize + 12345},
		{name: "shrinks", size: nfsSize / 3},
		{name: "checksum of the old file", size: nfsSize, checksum: sumOf(old)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			data := nfsContent(t, 6, tt.size)
			// The new file is written beforehand, so that the change is
			// one rename, done long before the download could end.
			srv := nfstest.New(t, map[string][]byte{"f": old, "next": data})
			replace, replaced := faultAt(4<<20, func() error { return srv.FS.Rename("next", "f") })
			cl := newClient(t, download.WithConnections(4), replace)
			dir := t.TempDir()
			dest := filepath.Join(dir, "f.img")
			res, err := cl.Get(context.Background(), download.Request{URL: srv.URL("f"), Path: dest, Checksum: tt.checksum})
			replaced(t)
			if tt.checksum != "" {
				if !errors.Is(err, download.ErrChecksumMismatch) {
					t.Fatalf("Get = %v, want a checksum mismatch: the file is not the one the checksum is of", err)
				}
				assertClean(t, dir)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			checkNFSResult(t, res, dest, srv.URL("f"), data)
			if res.Restarts < 1 || res.ResumedFrom != 0 {
				t.Errorf("Restarts %d, ResumedFrom %d: want a restart from zero", res.Restarts, res.ResumedFrom)
			}
		})
	}
}

// TestNFSFileRemoved removes the file mid-download: the server answers
// NFS3ERR_NOENT, which no retry fixes, and Get fails at once, naming it.
func TestNFSFileRemoved(t *testing.T) {
	t.Parallel()
	srv := nfstest.New(t, map[string][]byte{"f": nfsContent(t, 10, nfsSize)})
	remove, removed := faultAt(4<<20, func() error { return srv.FS.Remove("f") })
	cl := newClient(t, download.WithConnections(4), remove)
	dest := filepath.Join(t.TempDir(), "f.img")
	_, err := cl.Get(context.Background(), download.Request{URL: srv.URL("f"), Path: dest})
	removed(t)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Get = %v, want fs.ErrNotExist", err)
	}
	for _, s := range []string{srv.URL("f"), "NFS3ERR_NOENT"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not say %q", err, s)
		}
	}
	assertAbsent(t, dest)
}

// TestNFSConnectionsCut has every connection to the server closed between
// two calls, as a server restart or a server dropping connections it
// thinks idle does, while the file stays the same. That is a transport
// failure, to retry on new connections: the download must go on, keeping
// what it has, not start again from zero as for a changed file.
func TestNFSConnectionsCut(t *testing.T) {
	t.Parallel()
	data := nfsContent(t, 7, nfsSize)
	srv := nfstest.New(t, map[string][]byte{"f": data})
	p := nfstest.NewStallProxy(t, srv.Addr)
	cut, wasCut := faultAt(4<<20, noError(p.Cut))
	cl := newClient(t, download.WithConnections(4), cut)
	dest := filepath.Join(t.TempDir(), "f.img")
	res, err := cl.Get(context.Background(), download.Request{URL: p.URL("f"), Path: dest, Checksum: sumOf(data)})
	wasCut(t)
	if err != nil {
		t.Fatal(err)
	}
	checkNFSResult(t, res, dest, p.URL("f"), data)
	if res.Restarts != 0 {
		t.Errorf("Restarts = %d, transferred %d bytes for %d: the download started again from zero after its connections were closed",
			res.Restarts, res.BytesTransferred, nfsSize)
	}
}

// TestNFSServerKilled kills the server mid-transfer: Get fails, after its
// retries, with an error naming the URL, and leaves the partial download,
// which a Get from the restarted server resumes.
func TestNFSServerKilled(t *testing.T) {
	t.Parallel()
	data := nfsContent(t, 8, nfsSize)
	srv := nfstest.New(t, map[string][]byte{"f": data})
	dest := filepath.Join(t.TempDir(), "f.img")
	kill, killed := faultAt(4<<20, noError(srv.Kill))
	cl := newClient(t, download.WithConnections(4), download.WithRetries(2), kill)
	_, err := cl.Get(context.Background(), download.Request{URL: srv.URL("f"), Path: dest, Checksum: sumOf(data)})
	killed(t)
	if err == nil {
		t.Fatal("Get succeeded from a killed server")
	}
	// The reads fail, and fail again on every retry; a failure to open
	// the file again would mean the engine took the dead server for a
	// changed file and started over.
	var ne *nfs.Error
	if !errors.As(err, &ne) || ne.Op != "READ" {
		t.Errorf("Get = %v, want the failure of a READ", err)
	}
	if !strings.Contains(err.Error(), srv.URL("f")) {
		t.Errorf("error %q does not name the URL %s", err, srv.URL("f"))
	}
	if !leftovers(t, dest) {
		t.Fatal("the interrupted download left nothing to resume")
	}

	again := srv.Restart(t)
	res, err := newClient(t, download.WithConnections(4)).Get(context.Background(),
		download.Request{URL: again.URL("f"), Path: dest, Checksum: sumOf(data)})
	if err != nil {
		t.Fatal(err)
	}
	checkNFSResult(t, res, dest, again.URL("f"), data)
	if res.ResumedFrom == 0 || res.BytesTransferred >= nfsSize {
		t.Errorf("resumed from %d and transferred %d of %d bytes: want a resume", res.ResumedFrom, res.BytesTransferred, nfsSize)
	}
}

// TestNFSStall freezes the server's connections without closing them:
// the socket timeout turns the silence into ErrStalled, and what was
// fetched stays for a resume.
func TestNFSStall(t *testing.T) {
	t.Parallel()
	srv := nfstest.New(t, map[string][]byte{"f": nfsContent(t, 9, nfsSize)})
	p := nfstest.NewStallProxy(t, srv.Addr)
	freeze, frozen := faultAt(2<<20, noError(p.Freeze))
	cl := newClient(t, download.WithConnections(4), download.WithSocketTimeout(300*time.Millisecond),
		download.WithConnectTimeout(time.Second), download.WithRetries(1), freeze)
	dest := filepath.Join(t.TempDir(), "f.img")
	_, err := cl.Get(context.Background(), download.Request{URL: p.URL("f"), Path: dest})
	frozen(t)
	if !errors.Is(err, download.ErrStalled) {
		t.Fatalf("Get = %v, want ErrStalled", err)
	}
	if !strings.Contains(err.Error(), p.URL("f")) {
		t.Errorf("error %q does not name the URL", err)
	}
	if !leftovers(t, dest) {
		t.Error("the stalled download left nothing to resume")
	}
}

// TestNFSOpenErrors gets what cannot be downloaded: each fails at once
// with an error naming the URL and the reason, and leaves nothing.
func TestNFSOpenErrors(t *testing.T) {
	t.Parallel()
	srv := nfstest.New(t, map[string][]byte{"dir/file": []byte("some bytes")})
	tests := []struct {
		name string
		url  string
		size int64
		is   error
		says string
	}{
		{"missing file", srv.URL("dir/missing.img"), 0, fs.ErrNotExist, "NFS3ERR_NOENT"},
		{"missing directory", srv.URL("nodir/file"), 0, fs.ErrNotExist, "NFS3ERR_NOENT"},
		{"directory", srv.URL("dir"), 0, nfs.ErrNotRegular, "directory"},
		{"not exported", "nfs://" + srv.Addr + "/other/file", 0, nfs.ErrNotExported, "/other"},
		{"size differs from the request's", srv.URL("dir/file"), 11, download.ErrSizeMismatch, "11"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			_, err := newClient(t).Get(context.Background(), download.Request{URL: tt.url, Path: filepath.Join(dir, "f"), Size: tt.size})
			if !errors.Is(err, tt.is) {
				t.Fatalf("Get = %v, want %v", err, tt.is)
			}
			for _, s := range []string{tt.url, tt.says} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
			assertClean(t, dir)
		})
	}
}

// TestNFSPolicy: the default policy refuses loopback before connecting,
// for NFS as for HTTP.
func TestNFSPolicy(t *testing.T) {
	t.Parallel()
	srv := nfstest.New(t, map[string][]byte{"f": []byte("x")})
	cl, err := download.New()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	_, err = cl.Get(context.Background(), download.Request{URL: srv.URL("f"), Path: filepath.Join(dir, "f")})
	if !errors.Is(err, download.ErrDenied) {
		t.Fatalf("Get = %v, want ErrDenied", err)
	}
	if n := srv.Accepted(); n != 0 {
		t.Errorf("the server accepted %d connections", n)
	}
	assertClean(t, dir)
}
