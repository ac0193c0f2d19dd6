package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"unicode"

	"github.com/directdl/directdl/qcow2"
)

var qcow2Commands = map[string]command{
	"create":  {"[-o OPTIONS] [-b BACKING -F FMT] [-u] [-q] FILE [SIZE]", qcow2Create},
	"info":    {"[-json] FILE", qcow2Info},
	"check":   {"[-json] FILE", qcow2Check},
	"rebase":  {"-u -b BACKING -F FMT FILE", qcow2Rebase},
	"inspect": {"[-json] [-max-size SIZE] [-allow-backing] FILE", qcow2Inspect},
}

// qcow2Create mirrors `qemu-img create -f qcow2`.
func qcow2Create(_ context.Context, e env, args []string) error {
	fs := newFlags("create")
	format := fs.String("f", "qcow2", "image format (only qcow2)")
	opts := fs.String("o", "", "qemu-img options: cluster_size=N,compat=0.10|1.1,lazy_refcounts=on|off,refcount_bits=N,extended_l2=on|off,compression_type=zlib|zstd,preallocation=off")
	backing := fs.String("b", "", "backing file name, stored as given")
	backingFmt := fs.String("F", "", "backing file format (required with -b)")
	unsafe := fs.Bool("u", false, "do not open the backing file (SIZE required)")
	quiet := fs.Bool("q", false, "print nothing on success")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *format != "qcow2" {
		return usageErr("format %q: only qcow2 is supported", *format)
	}
	if fs.NArg() < 1 || fs.NArg() > 2 {
		return usageErr("want FILE [SIZE]")
	}
	o, err := qcow2.ParseOptions(*opts)
	if err != nil {
		return usageErr("%v", err)
	}
	file := fs.Arg(0)
	if fs.NArg() == 2 {
		if o.Size, err = qcow2.ParseSize(fs.Arg(1)); err != nil {
			return usageErr("%v", err)
		}
		if o.Size == 0 && (*backing != "" || o.BackingFile != "") {
			return usageErr("SIZE 0 with a backing file is not supported: omit SIZE to take the backing file's size")
		}
	}
	if *backing != "" {
		o.BackingFile = *backing
	}
	if *backingFmt != "" {
		o.BackingFormat = *backingFmt
	}
	o.Unsafe = *unsafe
	if o.Size == 0 && fs.NArg() < 2 && o.BackingFile == "" {
		return usageErr("SIZE required without a backing file")
	}
	if err := o.Validate(); err != nil {
		return usageErr("%v", err)
	}
	err = qcow2.Create(file, o)
	if errors.Is(err, qcow2.ErrOptions) {
		return usageErr("%v", err)
	}
	if err == nil && !*quiet {
		// qemu-img prints this first; after the fact, a failure stays
		// one line on stderr.
		fmt.Fprintf(e.stderr, "Formatting '%s', fmt=qcow2 %s\n", file, describe(o))
	}
	return err
}

// describe lists o's settings in the style of qemu-img's "Formatting" line.
func describe(o qcow2.Options) string {
	cs := o.ClusterSize
	if cs == 0 {
		cs = 65536
	}
	ct := o.CompressionType
	if ct == "" {
		ct = "zlib"
	}
	rb := o.RefcountBits
	if rb == 0 {
		rb = 16
	}
	parts := []string{fmt.Sprintf("cluster_size=%d", cs)}
	if o.Compat != "" {
		parts = append(parts, "compat="+o.Compat)
	}
	parts = append(parts, "extended_l2="+onOff(o.ExtendedL2), "compression_type="+ct)
	if o.Size != 0 {
		parts = append(parts, fmt.Sprintf("size=%d", o.Size))
	}
	if o.BackingFile != "" {
		parts = append(parts, "backing_file="+o.BackingFile, "backing_fmt="+o.BackingFormat)
	}
	parts = append(parts, "lazy_refcounts="+onOff(o.LazyRefcounts), fmt.Sprintf("refcount_bits=%d", rb))
	return strings.Join(parts, " ")
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func oneFile(fs interface {
	NArg() int
	Arg(int) string
}) (string, error) {
	if fs.NArg() != 1 {
		return "", usageErr("want exactly one FILE, got %d arguments", fs.NArg())
	}
	return fs.Arg(0), nil
}

// qcow2Info mirrors `qemu-img info [--output=json]`.
func qcow2Info(_ context.Context, e env, args []string) error {
	fs := newFlags("info")
	asJSON := fs.Bool("json", false, "print qemu-img info's JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	file, err := oneFile(fs)
	if err != nil {
		return err
	}
	in, err := qcow2.InfoFile(file)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(e, in)
	}
	w := e.stderr
	fmt.Fprintf(w, "image: %s\nfile format: %s\nvirtual size: %s (%d bytes)\n", in.Filename, in.Format, human(in.VirtualSize), in.VirtualSize)
	if in.ActualSize != nil {
		fmt.Fprintf(w, "disk size: %s\n", human(*in.ActualSize))
	}
	fmt.Fprintf(w, "cluster_size: %d\n", in.ClusterSize)
	if in.BackingFilename != "" {
		if in.FullBackingFilename != in.BackingFilename {
			fmt.Fprintf(w, "backing file: %s (actual path: %s)\n", printable(in.BackingFilename), printable(in.FullBackingFilename))
		} else {
			fmt.Fprintf(w, "backing file: %s\n", printable(in.BackingFilename))
		}
		fmt.Fprintf(w, "backing file format: %s\n", printable(in.BackingFilenameFormat))
	}
	if len(in.Snapshots) > 0 {
		fmt.Fprintf(w, "Snapshot list:\nID  TAG  VM SIZE  DATE  VM CLOCK\n")
		for _, s := range in.Snapshots {
			fmt.Fprintf(w, "%s  %s  %d  %d  %d.%09d\n", printable(s.ID), printable(s.Name), s.VMStateSize, s.DateSec, s.VMClockSec, s.VMClockNsec)
		}
	}
	d := in.FormatSpecific.Data
	fmt.Fprintf(w, "Format specific information:\n    compat: %s\n    compression type: %s\n", d.Compat, d.CompressionType)
	if d.LazyRefcounts != nil {
		fmt.Fprintf(w, "    lazy refcounts: %v\n", *d.LazyRefcounts)
	}
	fmt.Fprintf(w, "    refcount bits: %d\n", d.RefcountBits)
	if d.Corrupt != nil {
		fmt.Fprintf(w, "    corrupt: %v\n    extended l2: %v\n", *d.Corrupt, *d.ExtendedL2)
	}
	return nil
}

// printable returns s, quoted when it holds anything but printable
// characters: names come from the image and must not drive the terminal.
func printable(s string) string {
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return strconv.Quote(s)
		}
	}
	return s
}

// human formats n bytes as qemu-img does ("1 GiB", "196 KiB", "1.5 MiB").
func human(n int64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	v, i := float64(n), 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	s := fmt.Sprintf("%.3g", v)
	if v >= 1000 {
		s = fmt.Sprintf("%.0f", v)
	}
	return s + " " + units[i]
}

// qcow2Rebase mirrors `qemu-img rebase -u`.
func qcow2Rebase(_ context.Context, e env, args []string) error {
	fs := newFlags("rebase")
	unsafe := fs.Bool("u", false, "unsafe mode: rewrite the header only (required)")
	backing := fs.String("b", "", `new backing file name ("" removes it)`)
	backingFmt := fs.String("F", "", "new backing file format")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	file, err := oneFile(fs)
	if err != nil {
		return err
	}
	if !*unsafe {
		return usageErr("only -u (rewrite the backing file name without touching data) is supported")
	}
	if !flagSet(fs, "b") {
		return usageErr("-b BACKING required (-b \"\" removes the backing file)")
	}
	err = qcow2.Rebase(file, *backing, *backingFmt)
	if errors.Is(err, qcow2.ErrOptions) {
		return usageErr("%v", err)
	}
	return err
}

func flagSet(fs *flag.FlagSet, name string) bool {
	found := false
	fs.Visit(func(f *flag.Flag) {
		if f.Name == name {
			found = true
		}
	})
	return found
}

// qcow2Inspect prints the safety verdict for a downloaded template.
func qcow2Inspect(_ context.Context, e env, args []string) error {
	fs := newFlags("inspect")
	asJSON := fs.Bool("json", false, "print the verdict as JSON")
	maxSize := fs.String("max-size", "", "largest acceptable virtual size (default 64T)")
	allowBacking := fs.Bool("allow-backing", false, "accept an image that names a backing file")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	file, err := oneFile(fs)
	if err != nil {
		return err
	}
	p := qcow2.Policy{AllowBackingFile: *allowBacking}
	if *maxSize != "" {
		if p.MaxVirtualSize, err = qcow2.ParseSize(*maxSize); err != nil {
			return usageErr("%v", err)
		}
	}
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	v, err := qcow2.Vet(f, p)
	if err != nil {
		return err
	}
	out := inspectOutput{Verdict: v, Filename: file}
	if img := v.Image; img != nil {
		out.ClusterSize = img.ClusterSize()
		out.Compat = img.Compat()
		out.BackingFilename = img.BackingFile
		out.BackingFormat = img.BackingFormat
		out.DataFile = img.DataFile
	}
	if *asJSON {
		if err := writeJSON(e, out); err != nil {
			return err
		}
	} else {
		for _, p := range v.Problems {
			fmt.Fprintf(e.stderr, "%s: %s\n", p.Code, p.Message)
		}
		if v.Safe {
			fmt.Fprintf(e.stderr, "%s: safe (virtual size %d)\n", file, v.VirtualSize)
		}
	}
	if !v.Safe {
		return &exitError{code: 1}
	}
	return nil
}

type inspectOutput struct {
	*qcow2.Verdict
	Filename        string `json:"filename"`
	ClusterSize     int64  `json:"cluster-size,omitempty"`
	Compat          string `json:"compat,omitempty"`
	BackingFilename string `json:"backing-filename,omitempty"`
	BackingFormat   string `json:"backing-filename-format,omitempty"`
	DataFile        string `json:"data-file,omitempty"`
}
