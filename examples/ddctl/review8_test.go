package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/directdl/directdl/internal/faultserver"
)

// TestReview8MetalinkURLChecksumIntoDir: a ?checksum= on a Metalink URL is
// the expected checksum of the file it describes. With -o FILE the engine
// takes it (newJob's ChecksumFromURL) and one that contradicts the
// document's hash fails the command.
// With -o DIR, runSingle passes the fetched Metalink file in
// Request.Metalink, where newJob reads no checksum from the URL: the wrong
// checksum is ignored and the download succeeds, verified only against the
// document's own hash.
func TestReview8MetalinkURLChecksumIntoDir(t *testing.T) {
	f, sum := mirrorsMetalink(t, "disk.qcow2", 1<<20+3)
	doc := writeMetalink(t, "", f)
	s := faultserver.StartTest(t, faultserver.WithResource(faultserver.Resource{Path: "/t.metalink", Content: strings.NewReader(string(doc)), Size: int64(len(doc))}))
	wrong := "sha256:" + strings.Repeat("0", 64)
	if sum == strings.Repeat("0", 64) {
		t.Fatal("the content's hash is the wrong checksum")
	}
	u := s.URL("/t.metalink") + "?checksum=" + wrong

	// The reference: into a file, the URL's checksum is checked.
	file := filepath.Join(t.TempDir(), "disk.qcow2")
	code, _, stderr := dl(t, "-o", file, u)
	if code == 0 || !strings.Contains(stderr, "checksum") {
		t.Fatalf("-o FILE: exit %d (%s), want a failure naming the checksum", code, stderr)
	}
	mustNotExist(t, file)

	dir := t.TempDir()
	code, _, stderr = dl(t, "-o", dir, u)
	if code == 0 {
		t.Errorf("-o DIR: exit 0 (%s): the URL's checksum %s was not checked", stderr, wrong)
	}
	mustNotExist(t, filepath.Join(dir, "disk.qcow2"))
}

// TestReview8BatchMetalinkURL: one URL of a .metalink document downloads
// the file it describes; -o DIR names it after the document's file. In a
// -batch list the same URL is named after the URL, so the disk image is
// stored as DIR/t.metalink: a file whose name says it is a Metalink
// document and whose bytes are the image.
func TestReview8BatchMetalinkURL(t *testing.T) {
	f, sum := mirrorsMetalink(t, "disk.qcow2", 1<<20+3)
	doc := writeMetalink(t, "", f)
	s := faultserver.StartTest(t, faultserver.WithResource(faultserver.Resource{Path: "/t.metalink", Content: strings.NewReader(string(doc)), Size: int64(len(doc))}))
	dir := t.TempDir()
	batch := filepath.Join(t.TempDir(), "list")
	if err := os.WriteFile(batch, []byte(s.URL("/t.metalink")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := dl(t, "-batch", batch, "-o", dir)
	misnamed := filepath.Join(dir, "t.metalink")
	if code == 0 {
		if b, err := os.ReadFile(misnamed); err == nil && len(b) != len(doc) {
			t.Errorf("the image (sha256 %s) was stored as %s, not under the document's name %q", sum, misnamed, f.Name)
		}
		return
	}
	// Refusing Metalink URLs in a batch is a fix too, if it says so.
	if code != 2 || !strings.Contains(stderr, "etalink") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}

// TestReview8MetalinkDirsOnUsageError: with -metalink FILE and -o DIR the
// document's subdirectories are made while the flags are still being
// checked; a usage error found after that (here a -ca-file that does not
// exist) leaves them behind, though nothing was downloaded.
func TestReview8MetalinkDirsOnUsageError(t *testing.T) {
	f, _ := mirrorsMetalink(t, "templates/disk.qcow2", 1<<20)
	ml := filepath.Join(t.TempDir(), "t.meta4")
	writeMetalink(t, ml, f)
	dir := t.TempDir()
	code, _, stderr := dl(t, "-metalink", ml, "-ca-file", filepath.Join(t.TempDir(), "missing.pem"), "-o", dir)
	if code == 0 {
		t.Fatalf("exit 0 with a missing -ca-file: %s", stderr)
	}
	mustNotExist(t, filepath.Join(dir, "templates"))
}
