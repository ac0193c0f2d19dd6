package qcow2

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the seed images in testdata/")

// image builds an image with CreateAt.
func image(t testing.TB, o Options) []byte {
	t.Helper()
	var w writerAtBuffer
	if _, err := CreateAt(&w, o); err != nil {
		t.Fatalf("CreateAt(%+v): %v", o, err)
	}
	return w.b
}

func put32(b []byte, off int, v uint32) []byte {
	b = bytes.Clone(b)
	binary.BigEndian.PutUint32(b[off:], v)
	return b
}

func put64(b []byte, off int, v uint64) []byte {
	b = bytes.Clone(b)
	binary.BigEndian.PutUint64(b[off:], v)
	return b
}

type headerCase struct {
	name string
	img  []byte
	want error // nil: valid
	// qemuOK says qemu-img info opens the image (it can be laxer or
	// stricter than the rule we apply; see the comments).
	qemuOK bool
}

// headerCases breaks one rule of QEMU's qcow2_do_open per image, as
// reference/qcow2-proto/malicious.py does, plus the accepted oddities.
func headerCases(t testing.TB) []headerCase {
	base := image(t, Options{Size: giB})
	bk := image(t, Options{Size: giB, BackingFile: "base.qcow2", BackingFormat: "qcow2"})
	c13 := image(t, Options{Size: giB, ClusterSize: 8192})
	fmt16 := bytes.Clone(bk)
	binary.BigEndian.PutUint32(fmt16[112+4:], 16)
	copy(fmt16[120:], "qqqqqqqqqqqqqqqq")
	// The backing format extension twice.
	twice := bytes.Clone(bk)
	bh, _ := Inspect(bytes.NewReader(bk))
	copy(twice, bh.Header.clusterZero("base.qcow2", "qcow2", []Extension{{ExtBackingFormat, []byte("raw")}}))
	return []headerCase{
		{"valid", base, nil, true},
		{"valid-backing", bk, nil, true},
		{"magic", put32(base, 0, 0x51464900), ErrNotQcow2, false},
		{"version1", put32(base, 4, 1), ErrVersion, false},
		{"version4", put32(base, 4, 4), ErrVersion, false},
		{"cluster_bits8", put32(base, 20, 8), ErrClusterSize, false},
		{"cluster_bits22", put32(base, 20, 22), ErrClusterSize, false},
		{"header_length100", put32(base, 100, 100), ErrHeaderLength, false},
		{"header_length108", put32(base, 100, 108), ErrHeaderLength, false},
		{"header_length_gt_cluster", put32(base, 100, 65544), ErrHeaderLength, false},
		{"backing_offset_gt_cluster", put64(bk, 8, 65537), ErrBackingFileOffset, false},
		{"backing_size_1024", put32(bk, 16, 1024), ErrBackingFileName, false},
		{"backing_crosses_cluster", put32(put64(bk, 8, 65536-10), 16, 20), ErrBackingFileName, false},
		{"incompat_bit5", put64(base, 72, 1<<5), ErrIncompatibleFeatures, false},
		{"incompat_bit63", put64(base, 72, 1<<63), ErrIncompatibleFeatures, false},
		{"corrupt_bit", put64(base, 72, IncompatCorrupt), nil, true},
		{"dirty_bit", put64(base, 72, IncompatDirty), nil, true},
		// qemu-img info opens it without doing I/O; any read or check
		// fails with "'data-file' is required for this image".
		{"datafile_bit_no_ext", put64(base, 72, IncompatDataFile), ErrDataFile, true},
		{"autoclear_unknown_bit7", put64(base, 88, 1<<7), nil, true},
		{"compat_unknown_bit9", put64(base, 80, 1<<9), nil, true},
		{"refcount_order7", put32(base, 96, 7), ErrRefcountOrder, false},
		{"reftable_clusters0", put32(base, 56, 0), ErrRefcountTable, false},
		{"reftable_unaligned", put64(base, 48, 65536+8), ErrRefcountTable, false},
		{"reftable_too_large", put32(base, 56, 129), ErrRefcountTable, false},
		{"l1_too_small", put32(base, 36, 1), ErrL1Table, false},
		{"l1_too_large", put32(base, 36, (32<<20)/8+1), ErrL1Table, false},
		{"l1_unaligned", put64(base, 40, 0x30008), ErrL1Table, false},
		{"l1_offset_overflow", put64(base, 40, (1<<63)-65536), ErrL1Table, false},
		// QEMU reads zeros past the end of the file; Vet flags it.
		{"l1_past_eof", put64(base, 40, 0x300000), nil, true},
		{"size_huge", put32(put64(base, 24, (1<<63)-512), 36, 0xffffffff), ErrL1Table, false},
		{"size_beyond_int64", put64(base, 24, 1<<63), ErrImageTooBig, false},
		{"size_not_mult_512", put64(base, 24, uint64(giB)-100), nil, true},
		{"size_needs_more_l1", put64(base, 24, uint64(giB)+100), ErrL1Table, false},
		{"nb_snapshots_65537", put32(base, 60, 65537), ErrSnapshotTable, false},
		{"snapshots_unaligned", put64(put32(base, 60, 1), 64, 0x30001), ErrSnapshotTable, false},
		{"crypt_method3", put32(base, 32, 3), ErrEncryption, false},
		{"crypt_luks_no_ext", put32(base, 32, 2), ErrEncryption, false},
		{"compression_type2", func() []byte { b := bytes.Clone(base); b[104] = 2; return b }(), ErrCompressionType, false},
		{"zstd_without_bit", func() []byte { b := bytes.Clone(base); b[104] = 1; return b }(), ErrCompressionType, false},
		{"bit3_with_zlib", put64(base, 72, IncompatCompression), ErrCompressionType, false},
		{"extl2_cluster_8k", put32(put64(c13, 72, IncompatExtendedL2), 36, 2048), ErrSubclusterSize, false},
		{"ext_len_overflow", put32(base, 112+4, 0xfffffff0), ErrExtension, false},
		{"backing_fmt_len16", fmt16, ErrBackingFormat, false},
		// QEMU takes the last of two backing format extensions; we refuse
		// the image, as the specification allows each type once.
		{"ext_twice", twice, ErrExtension, true},
		{"truncated", base[:50], ErrTruncated, false},
		{"bitmaps_len16", withExt(t, base, 0, Extension{ExtBitmaps, make([]byte, 16)}), ErrBitmaps, false},
		{"bitmaps_zero", withExt(t, base, AutoclearBitmaps, Extension{ExtBitmaps, make([]byte, 24)}), ErrBitmaps, false},
		{"bitmaps_unaligned", withExt(t, base, AutoclearBitmaps, Extension{ExtBitmaps, bitmapsExtData(1, 0, 48, 0x30008)}), ErrBitmaps, false},
		{"bitmaps_reserved", withExt(t, base, AutoclearBitmaps, Extension{ExtBitmaps, bitmapsExtData(1, 7, 48, 0x40000)}), ErrBitmaps, false},
		// With the autoclear bit clear QEMU ignores a well-formed extension.
		{"bitmaps_ignored", withExt(t, base, 0, Extension{ExtBitmaps, bitmapsExtData(1, 7, 48, 0x30008)}), nil, true},
		{"empty", nil, ErrNotQcow2, false},
	}
}

func TestInspectRules(t *testing.T) {
	t.Parallel()
	for _, c := range headerCases(t) {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			img, err := Inspect(bytes.NewReader(c.img))
			if c.want == nil {
				if err != nil {
					t.Fatalf("Inspect: %v, want no error", err)
				}
				return
			}
			if !errors.Is(err, c.want) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("Inspect error = %v, want %v (wrapping ErrInvalid)", err, c.want)
			}
			if img != nil {
				t.Errorf("Inspect returned an image with error %v", err)
			}
			if !strings.HasPrefix(err.Error(), "qcow2: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
}

// TestInspectAgreesWithQemu checks each rule against qemu-img info, so the
// table above cannot drift from what QEMU does.
func TestInspectAgreesWithQemu(t *testing.T) {
	qemuImg(t)
	t.Parallel()
	dir := t.TempDir()
	for _, c := range headerCases(t) {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			p := filepath.Join(dir, c.name+".qcow2")
			if err := os.WriteFile(p, c.img, 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(qemuImg(t), "info", "-f", "qcow2", "--output=json", p).CombinedOutput()
			if got := err == nil; got != c.qemuOK {
				t.Errorf("qemu-img info ok = %v, want %v: %s", got, c.qemuOK, out)
			}
		})
	}
}

// TestInfoMatchesQemu compares InfoFile with qemu-img info for every image
// of the create matrix.
func TestInfoMatchesQemu(t *testing.T) {
	qemuImg(t)
	t.Parallel()
	dir := t.TempDir()
	for i, o := range createMatrix() {
		t.Run(optName(o), func(t *testing.T) {
			t.Parallel()
			sub := filepath.Join(dir, strings.Repeat("x", i%3+1)+string(rune('a'+i%26))+optName(o))
			if err := os.MkdirAll(sub, 0o755); err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(sub, "img.qcow2")
			if err := Create(p, o); err != nil {
				t.Fatal(err)
			}
			// qemu-img info never opens the backing file either.
			out, err := exec.Command(qemuImg(t), "info", "--output=json", p).Output()
			if err != nil {
				t.Fatalf("qemu-img info: %v", err)
			}
			var want map[string]any
			if err := json.Unmarshal(out, &want); err != nil {
				t.Fatal(err)
			}
			info, err := InfoFile(p)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := json.Marshal(info)
			var got map[string]any
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("info differs\n got: %s\nwant: %s", b, out)
			}
		})
	}
}

func TestVet(t *testing.T) {
	t.Parallel()
	base := image(t, Options{Size: giB})
	cases := []struct {
		name  string
		img   []byte
		p     Policy
		codes []string
	}{
		{"clean", base, Policy{}, nil},
		{"backing", image(t, Options{Size: giB, BackingFile: "/etc/shadow", BackingFormat: "raw"}), Policy{}, []string{ProblemBackingFile}},
		{"backing-allowed", image(t, Options{Size: giB, BackingFile: "base.qcow2", BackingFormat: "qcow2"}), Policy{AllowBackingFile: true}, nil},
		{"json-backing", image(t, Options{Size: giB, BackingFile: `json:{"file.filename":"/dev/sda"}`, BackingFormat: "raw"}), Policy{}, []string{ProblemBackingFile}},
		{"not-qcow2", []byte("<html>404 not found</html>"), Policy{}, []string{ProblemNotQcow2}},
		{"invalid", put32(base, 20, 30), Policy{}, []string{ProblemInvalid}},
		{"unknown-incompat", put64(base, 72, 1<<20), Policy{}, []string{ProblemUnknownFeatures}},
		{"dirty-corrupt", put64(base, 72, IncompatDirty|IncompatCorrupt), Policy{}, []string{ProblemDirty, ProblemCorrupt}},
		{"luks-aes", put32(base, 32, 1), Policy{}, []string{ProblemEncrypted}},
		{"too-large", image(t, Options{Size: 100 * tiB}), Policy{}, []string{ProblemTooLarge}},
		{"limit", base, Policy{MaxVirtualSize: giB - 512}, []string{ProblemTooLarge}},
		{"truncated", base[:3*65536], Policy{}, []string{ProblemTruncated}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			v, err := Vet(bytes.NewReader(c.img), c.p)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range v.Problems {
				got = append(got, p.Code)
				if p.Message == "" {
					t.Errorf("problem %s has no message", p.Code)
				}
			}
			if !reflect.DeepEqual(got, c.codes) {
				t.Errorf("problems %v, want %v (%+v)", got, c.codes, v.Problems)
			}
			if v.Safe != (len(c.codes) == 0) {
				t.Errorf("safe = %v with problems %v", v.Safe, got)
			}
		})
	}
}

// TestSeeds keeps the fuzz seed images in testdata/inspect in step with
// headerCases; run with -update to rewrite them.
func TestSeeds(t *testing.T) {
	dir := filepath.Join("testdata", "inspect")
	for _, c := range headerCases(t) {
		p := filepath.Join(dir, c.name+".qcow2")
		seed := seedOf(c.img)
		if *update {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, seed, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(p)
		if err != nil {
			t.Fatalf("%v (run go test -run TestSeeds -update ./qcow2)", err)
		}
		if !bytes.Equal(got, seed) {
			t.Errorf("%s is stale (run go test -run TestSeeds -update ./qcow2)", p)
		}
	}
}

// seedOf keeps the first 4 KiB of an image: all Inspect reads of the
// 64 KiB-cluster test images that matters, and small enough to fuzz.
func seedOf(b []byte) []byte { return b[:min(len(b), 4096)] }

// TestInfoWithSnapshots compares InfoFile with qemu-img info on an image
// with data and internal snapshots written by QEMU itself.
func TestInfoWithSnapshots(t *testing.T) {
	qemuImg(t)
	qemuIO := needTool(t, "qemu-io")
	t.Parallel()
	dir := t.TempDir()
	p := filepath.Join(dir, "snap.qcow2")
	if err := Create(p, Options{Size: giB, LazyRefcounts: true}); err != nil {
		t.Fatal(err)
	}
	for _, step := range [][]string{
		{qemuIO, "-f", "qcow2", "-c", "write -P 0xaa 0 1M", p},
		{qemuImg(t), "snapshot", "-c", "first", p},
		{qemuIO, "-f", "qcow2", "-c", "write -P 0xbb 512k 1M", p},
		{qemuImg(t), "snapshot", "-c", "second one", p},
	} {
		if out, err := exec.Command(step[0], step[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", step, err, out)
		}
	}
	out, err := exec.Command(qemuImg(t), "info", "--output=json", p).Output()
	if err != nil {
		t.Fatal(err)
	}
	info, err := InfoFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(info.Snapshots) != 2 {
		t.Fatalf("%d snapshots, want 2", len(info.Snapshots))
	}
	b, _ := json.Marshal(info)
	var got, want map[string]any
	json.Unmarshal(b, &got)
	json.Unmarshal(out, &want)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("info differs\n got: %s\nwant: %s", b, out)
	}
}

// withExt returns img (no backing file) with extension e added before the
// end marker and autoclear set to autoclear.
func withExt(t testing.TB, img []byte, autoclear uint64, e Extension) []byte {
	t.Helper()
	h, err := Inspect(bytes.NewReader(img))
	if err != nil {
		t.Fatal(err)
	}
	hdr := h.Header
	hdr.AutoclearFeatures = autoclear
	out := bytes.Clone(img)
	clear(out[:hdr.ClusterSize()])
	copy(out, hdr.clusterZero("", "", []Extension{e}))
	return out
}

func bitmapsExtData(nb, reserved uint32, dirSize, dirOff uint64) []byte {
	b := make([]byte, 24)
	binary.BigEndian.PutUint32(b, nb)
	binary.BigEndian.PutUint32(b[4:], reserved)
	binary.BigEndian.PutUint64(b[8:], dirSize)
	binary.BigEndian.PutUint64(b[16:], dirOff)
	return b
}

// TestInfoOddImages compares InfoFile with qemu-img info on images whose
// snapshot table lies past the end of the file (qemu-img lists empty
// entries) and on an AES-encrypted one.
func TestInfoOddImages(t *testing.T) {
	qemuImg(t)
	t.Parallel()
	dir := t.TempDir()
	base := image(t, Options{Size: giB})
	for name, b := range map[string][]byte{
		"snap-past-eof":  put64(put32(base, 60, 2), 64, 0x40000),
		"snap-at-eof":    put64(put32(base, 60, 1), 64, 0x30000),
		"aes":            put32(base, 32, CryptAES),
		"lazy-and-dirty": put64(put64(base, 80, CompatLazyRefcounts), 72, IncompatDirty),
	} {
		p := filepath.Join(dir, name+".qcow2")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(qemuImg(t), "info", "--output=json", p).Output()
		if err != nil {
			t.Fatalf("%s: qemu-img info: %v", name, err)
		}
		info, err := InfoFile(p)
		if err != nil {
			t.Fatalf("%s: InfoFile: %v", name, err)
		}
		gb, _ := json.Marshal(info)
		var got, want map[string]any
		json.Unmarshal(gb, &got)
		json.Unmarshal(out, &want)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: info differs\n got: %s\nwant: %s", name, gb, out)
		}
	}
}
