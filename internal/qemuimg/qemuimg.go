// Package qemuimg runs QEMU's qemu-img and qemu-io for tests that use them
// as the reference, and holds the matrix of `qemu-img create` cases those
// tests share.
package qemuimg

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// Path returns the path of the named QEMU tool ("qemu-img", "qemu-io").
// The tests that compare with it are the point of the packages using it,
// so a missing tool fails the test when the CI environment variable is set
// (CI installs qemu-utils) and skips it elsewhere.
func Path(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s not found; CI must install qemu-utils", name)
		}
		t.Skipf("%s not installed", name)
	}
	return p
}

// Run runs qemu-img with args in dir and returns its combined output,
// failing the test if it fails.
func Run(t testing.TB, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command(Path(t, "qemu-img"), args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("qemu-img %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Case is one `qemu-img create -f qcow2` invocation, in qemu-img's syntax.
type Case struct {
	Options string // the -o value; "" for none
	Backing string // -b
	Format  string // -F
	Unsafe  bool   // -u
	Size    string // "" to take it from the backing file
}

// Args returns the arguments after "create -f qcow2" for file.
func (c Case) Args(file string) []string {
	var args []string
	if c.Options != "" {
		args = append(args, "-o", c.Options)
	}
	if c.Backing != "" {
		args = append(args, "-b", c.Backing)
	}
	if c.Format != "" {
		args = append(args, "-F", c.Format)
	}
	if c.Unsafe {
		args = append(args, "-u")
	}
	args = append(args, file)
	if c.Size != "" {
		args = append(args, c.Size)
	}
	return args
}

// Name is a subtest name for c.
func (c Case) Name() string {
	n := c.Size
	if c.Options != "" {
		n += "," + c.Options
	}
	if c.Backing != "" {
		n += ",backing" + strconv.Itoa(len(c.Backing)) + "-" + c.Format
	}
	return n
}

// long returns a backing file name of exactly n bytes.
func long(n int) string {
	const tail = "base.qcow2"
	s := strings.Repeat("d/", n/2) + tail
	return s[len(s)-n:]
}

// Matrix is the set of option combinations compared byte for byte with
// qemu-img. It covers every supported option, the maximum size for each
// cluster size, images with several refcount blocks and with refcount
// tables that had to grow and move, version 2 images, and backing file
// names up to the 1023-byte limit and up to what fits in the first cluster.
func Matrix() []Case {
	return []Case{
		{Size: "0"},
		{Size: "1000"},
		{Size: "1M"},
		{Size: "1G"},
		{Size: "1073741724"},
		{Size: "100G"},
		{Size: "1T"},
		{Size: "4T"},
		{Size: "5T"},
		{Size: "16T"},
		{Size: "256T"},
		{Size: "2P"},
		{Size: "1G", Options: "cluster_size=512"},
		{Size: "10G", Options: "cluster_size=512"},
		{Size: "40G", Options: "cluster_size=512"},
		{Size: "128G", Options: "cluster_size=512"},
		{Size: "128G", Options: "cluster_size=512,refcount_bits=1"},
		{Size: "20G", Options: "cluster_size=512,refcount_bits=64"},
		{Size: "1G", Options: "cluster_size=1024"},
		{Size: "50G", Options: "cluster_size=1k,refcount_bits=32"},
		{Size: "1G", Options: "cluster_size=4096"},
		{Size: "2T", Options: "cluster_size=4k"},
		{Size: "4T", Options: "cluster_size=4096"},
		{Size: "8T", Options: "cluster_size=4096"},
		{Size: "8T", Options: "cluster_size=4096,refcount_bits=64"},
		{Size: "1G", Options: "cluster_size=8192"},
		{Size: "1G", Options: "cluster_size=2M"},
		{Size: "100G", Options: "cluster_size=2097152"},
		{Size: "2E", Options: "cluster_size=2M"},
		{Size: "1E", Options: "cluster_size=2M,extended_l2=on"},
		{Size: "1G", Options: "refcount_bits=1"},
		{Size: "1G", Options: "refcount_bits=2"},
		{Size: "1G", Options: "refcount_bits=4"},
		{Size: "1G", Options: "refcount_bits=8"},
		{Size: "1G", Options: "refcount_bits=32"},
		{Size: "1G", Options: "refcount_bits=64"},
		{Size: "1G", Options: "compat=0.10"},
		{Size: "10G", Options: "compat=0.10,cluster_size=512"},
		{Size: "1G", Options: "compat=v2"},
		{Size: "1G", Options: "compat=v3,lazy_refcounts=on"},
		{Size: "1G", Options: "compression_type=zstd"},
		{Size: "1G", Options: "compression_type=zlib"},
		{Size: "1G", Options: "extended_l2=on"},
		{Size: "1G", Options: "extended_l2=on,cluster_size=16k"},
		{Size: "1P", Options: "extended_l2=on"},
		{Size: "1G", Options: "lazy_refcounts=on,extended_l2=on,compression_type=zstd,refcount_bits=8"},
		{Size: "1G", Options: "preallocation=off"},
		{Size: "1G", Backing: "base.qcow2", Format: "qcow2", Unsafe: true},
		{Size: "1G", Backing: "/var/lib/images/template-with-a-longer-name.qcow2", Format: "qcow2", Unsafe: true},
		{Size: "1G", Backing: long(213), Format: "raw", Unsafe: true},
		{Size: "1G", Backing: long(1023), Format: "qcow2", Unsafe: true},
		{Size: "1G", Options: "compat=0.10", Backing: long(1023), Format: "qcow2", Unsafe: true},
		{Size: "1G", Options: "compat=0.10", Backing: "base.qcow2", Format: "qcow2", Unsafe: true},
		{Size: "1G", Options: "cluster_size=512", Backing: long(376), Format: "qcow2", Unsafe: true},
		{Size: "1G", Options: "cluster_size=512,compat=0.10", Backing: long(416), Format: "qcow2", Unsafe: true},
		{Size: "1G", Options: "cluster_size=4096", Backing: long(400), Format: "qcow2", Unsafe: true},
		{Size: "5T", Options: "extended_l2=on", Backing: "base.qcow2", Format: "qcow2", Unsafe: true},
	}
}
