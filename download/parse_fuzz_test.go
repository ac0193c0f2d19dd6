package download

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// Every parser has a fuzz test: the Content-Range parser, the control file
// parser and the range set the control file holds.

// ---- Content-Range ----

// formatContentRange writes cr as a server would send it.
func formatContentRange(cr contentRange) string {
	if cr.start == -1 && cr.end == -1 {
		return fmt.Sprintf("bytes */%d", cr.total)
	}
	tot := "*"
	if cr.total >= 0 {
		tot = strconv.FormatInt(cr.total, 10)
	}
	return fmt.Sprintf("bytes %d-%d/%s", cr.start, cr.end, tot)
}

// contentRangeGrammar is RFC 9110 section 14.4's Content-Range for the
// bytes unit, as the engine accepts it:
//
//	Content-Range     = range-unit SP ( range-resp / unsatisfied-range )
//	range-resp        = incl-range "/" ( complete-length / "*" )
//	incl-range        = first-pos "-" last-pos
//	unsatisfied-range = "*/" complete-length
//	first-pos, last-pos, complete-length = 1*DIGIT
var contentRangeGrammar = regexp.MustCompile(`^bytes (?:([0-9]+)-([0-9]+)|\*)/([0-9]+|\*)$`)

// modelContentRange is a reference parser: the grammar above, numbers that
// fit an int64, and the section 14.4 validity rules (first-pos <= last-pos
// < complete-length; "*/*" is not a thing).
func modelContentRange(v string) (contentRange, bool) {
	m := contentRangeGrammar.FindStringSubmatch(v)
	if m == nil {
		return contentRange{}, false
	}
	num := func(s string) (int64, bool) {
		n, err := strconv.ParseInt(s, 10, 64) // digits only: no sign here
		return n, err == nil
	}
	cr := contentRange{start: -1, end: -1, total: -1}
	if m[3] != "*" {
		n, ok := num(m[3])
		if !ok {
			return contentRange{}, false
		}
		cr.total = n
	}
	if m[1] == "" { // "*/..."
		if cr.total < 0 {
			return contentRange{}, false
		}
		return cr, true
	}
	s, ok1 := num(m[1])
	e, ok2 := num(m[2])
	if !ok1 || !ok2 || e < s || (cr.total >= 0 && e >= cr.total) {
		return contentRange{}, false
	}
	cr.start, cr.end = s, e
	return cr, true
}

func TestParseContentRange(t *testing.T) {
	valid := []struct {
		in   string
		want contentRange
	}{
		// RFC 9110 section 14.4.
		{"bytes 42-1233/1234", contentRange{42, 1233, 1234}},
		{"bytes 42-1233/*", contentRange{42, 1233, -1}},
		{"bytes */1234", contentRange{-1, -1, 1234}},
		// RFC 9110 section 14.2 (byte ranges of a 10000-byte representation).
		{"bytes 0-499/10000", contentRange{0, 499, 10000}},
		{"bytes 500-999/10000", contentRange{500, 999, 10000}},
		{"bytes 9500-9999/10000", contentRange{9500, 9999, 10000}},
		{"bytes 0-0/10000", contentRange{0, 0, 10000}},
		{"bytes 9999-9999/10000", contentRange{9999, 9999, 10000}},
		// RFC 9110 section 15.3.7 (206) and 15.5.17 (416).
		{"bytes 21010-47021/47022", contentRange{21010, 47021, 47022}},
		{"bytes 500-999/8000", contentRange{500, 999, 8000}},
		{"bytes 7000-7999/8000", contentRange{7000, 7999, 8000}},
		{"bytes */47022", contentRange{-1, -1, 47022}},
		// Edges: an empty representation, 1*DIGIT allows leading zeros,
		// the largest int64.
		{"bytes */0", contentRange{-1, -1, 0}},
		{"bytes 0-0/1", contentRange{0, 0, 1}},
		{"bytes 007-010/0100", contentRange{7, 10, 100}},
		{"bytes 0-9223372036854775806/9223372036854775807", contentRange{0, 9223372036854775806, 9223372036854775807}},
		{"bytes 9223372036854775807-9223372036854775807/*", contentRange{9223372036854775807, 9223372036854775807, -1}},
	}
	for _, c := range valid {
		got, err := parseContentRange(c.in)
		if err != nil || got != c.want {
			t.Errorf("parseContentRange(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
	invalid := []string{
		"",
		"bytes",
		"bytes ",
		"bytes */*",        // no complete-length to report
		"bytes 5-4/10",     // last-pos < first-pos (section 14.4)
		"bytes 0-10/10",    // complete-length <= last-pos (section 14.4)
		"bytes 42-1233/42", // ditto
		"bytes 0-0/0",
		"bytes 0-1",        // missing complete-length
		"bytes 0-/10",      // missing last-pos
		"bytes -5/10",      // a suffix range is Range syntax, not Content-Range
		"bytes 5-/10",      // ditto, open-ended
		"bytes 0-1/",       // empty complete-length
		"bytes /10",        // missing range
		"bytes */",         // missing complete-length
		"bytes *-*/10",     // star positions
		"bytes 1-2-3/10",   // three positions
		"bytes 1-2/3/4",    // two lengths
		"bytes 0-1,3-4/10", // multiple ranges go in multipart bodies
		"items 0-1/2",      // another unit
		"bytes=0-1/2",      // Range syntax
		"bytes0-1/2",       // no SP
		"bytes  0-1/2",     // two SPs
		" bytes 0-1/2",     // leading space
		"bytes 0-1/2 ",     // trailing space
		"bytes\t0-1/2",     // not SP
		"bytes 0 -1/2",     // spaces inside
		"bytes 0- 1/2",
		"bytes 0-1 /2",
		"bytes 0-1/ 2",
		"bytes 1 0-20/30",
		"bytes +0-1/2", // signs
		"bytes 0-+1/2",
		"bytes 0-1/+2",
		"bytes -0-1/2",
		"bytes 0--1/2",
		"bytes 0-1/-2",
		"bytes */+5",
		"bytes */-5",
		"bytes 0--0/10", // "-0" is a sign too
		"bytes */-0",
		"bytes 0x1-0x2/0x3", // other bases
		"bytes 1_0-20/30",   // Go's digit separators
		"bytes 1e1-20/30",
		"bytes 0-9223372036854775808/*", // beyond int64
		"bytes */9223372036854775808",
		"bytes 0-1/99999999999999999999999999999999999999",
		"bytes ０-１/２", // not ASCII digits
	}
	for _, in := range invalid {
		if got, err := parseContentRange(in); err == nil {
			t.Errorf("parseContentRange(%q) = %+v, want an error", in, got)
		}
	}
}

func FuzzParseContentRange(f *testing.F) {
	for _, s := range []string{
		"bytes 42-1233/1234", "bytes 42-1233/*", "bytes */1234", "bytes */0",
		"bytes 0-0/1", "bytes 007-010/0100", "bytes 0-9223372036854775806/9223372036854775807",
		"bytes */*", "bytes 5-4/10", "bytes 0-10/10", "bytes +0-1/2", "bytes 0-1/-2",
		"bytes 0 -1/2", "items 0-1/2", "bytes=0-1/2", "bytes 0-1", "bytes -5/10",
		"bytes 0-9223372036854775808/*", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		cr, err := parseContentRange(v)
		want, ok := modelContentRange(v)
		if err != nil {
			if ok {
				t.Fatalf("parseContentRange(%q) rejected a valid value (%+v): %v", v, want, err)
			}
			if cr != (contentRange{}) {
				t.Fatalf("parseContentRange(%q) = %+v with error %v", v, cr, err)
			}
			return
		}
		if !ok {
			t.Fatalf("parseContentRange(%q) = %+v, want an error", v, cr)
		}
		if cr != want {
			t.Fatalf("parseContentRange(%q) = %+v, the grammar says %+v", v, cr, want)
		}
		unsatisfied := cr.start == -1 && cr.end == -1 && cr.total >= 0
		satisfied := 0 <= cr.start && cr.start <= cr.end && (cr.total == -1 || cr.end < cr.total)
		if !unsatisfied && !satisfied {
			t.Fatalf("parseContentRange(%q) = %+v, an impossible range", v, cr)
		}
		if satisfied && cr.total >= 0 && cr.end-cr.start+1 <= 0 {
			t.Fatalf("parseContentRange(%q) = %+v, whose length overflows", v, cr)
		}
		// Only the unit, one SP, digits, "-", "/" and "*": no signs, no
		// spaces, no other units.
		if rest, ok := strings.CutPrefix(v, "bytes "); !ok || strings.Trim(rest, "0123456789-/*") != "" {
			t.Fatalf("parseContentRange(%q) accepted stray characters", v)
		}
		again, err := parseContentRange(formatContentRange(cr))
		if err != nil || again != cr {
			t.Fatalf("parseContentRange(%q) = %+v, but its formatting %q parses as %+v, %v",
				v, cr, formatContentRange(cr), again, err)
		}
	})
}

// ---- control file ----

// hashedLength is the number of bytes a hash state has consumed. Every
// hash NewHash makes (crypto/md5, sha1, sha256, sha512) marshals as magic,
// chaining values, block buffer, then the length as a big-endian uint64.
func hashedLength(t *testing.T, a Algorithm, state []byte) int64 {
	t.Helper()
	h := Checksum{alg: a}.NewHash()
	if err := unmarshalHash(h, state); err != nil {
		t.Fatalf("%s hash state %x does not restore: %v", a, state, err)
	}
	b, err := marshalHash(h)
	if err != nil {
		t.Fatalf("%s hash state cannot be saved again: %v", a, err)
	}
	if len(b) < 8 {
		t.Fatalf("%s hash state of %d bytes", a, len(b))
	}
	return int64(binary.BigEndian.Uint64(b[len(b)-8:]))
}

// sha256State is the saved state of a SHA-256 that has read n bytes.
func sha256State(tb testing.TB, n int) []byte {
	h := sha256.New()
	h.Write(make([]byte, n))
	b, err := marshalHash(h)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// goodControl is a control file as the engine writes one: 1 MiB, with
// [0, 300000) done and hashed to 200000 (a partial block), two more ranges
// done, and a durable state a little behind.
func goodControl(tb testing.TB) *control {
	return &control{
		Version: controlVersion, URL: "https://example.com/t.qcow2", Size: 1 << 20,
		ETag: `"abc"`, LastModified: "Mon, 02 Jan 2006 15:04:05 GMT", Algorithm: SHA256,
		BootID: "4e6f0b5e-7d2a-4a8e-9b43-1f0d8c2a9e11",
		Latest: progressState{
			Done:   spans{{0, 300000}, {400000, 500000}, {1<<20 - 100, 1 << 20}},
			Hashed: 200000, HashState: sha256State(tb, 200000),
		},
		Durable: progressState{
			Done:   spans{{0, 100000}, {400000, 450000}},
			Hashed: 65536, HashState: sha256State(tb, 65536),
		},
	}
}

func marshalControl(tb testing.TB, c *control) []byte {
	b, err := json.Marshal(c)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// badControls are control files parseControl must refuse.
func badControls(tb testing.TB) map[string][]byte {
	good := marshalControl(tb, goodControl(tb))
	bad := map[string][]byte{
		"empty":     {},
		"truncated": good[:len(good)/2],
		"not json":  []byte("version=1\n"),
		"null":      []byte("null"),
		"array":     []byte("[]"),
	}
	mod := func(name string, change func(c *control)) {
		c := goodControl(tb)
		change(c)
		bad[name] = marshalControl(tb, c)
	}
	mod("version 0", func(c *control) { c.Version = 0 })
	mod("version 2", func(c *control) { c.Version = 2 })
	mod("negative size", func(c *control) { c.Size = -1 })
	mod("size below done", func(c *control) { c.Size = 1<<20 - 1 })
	mod("unknown algorithm", func(c *control) { c.Algorithm = "sha3-256" })
	mod("no algorithm", func(c *control) { c.Algorithm = "" })
	mod("wrong algorithm for state", func(c *control) { c.Algorithm = SHA512 })
	mod("sha224 for sha256 state", func(c *control) { c.Algorithm = SHA224 })
	mod("overlapping spans", func(c *control) { c.Latest.Done = spans{{0, 300000}, {250000, 500000}} })
	mod("touching spans", func(c *control) { c.Latest.Done = spans{{0, 300000}, {300000, 500000}} })
	mod("unsorted spans", func(c *control) { c.Latest.Done = spans{{400000, 500000}, {0, 300000}} })
	mod("empty span", func(c *control) { c.Latest.Done = spans{{0, 300000}, {400000, 400000}} })
	mod("reversed span", func(c *control) { c.Durable.Done = spans{{100000, 0}} })
	mod("negative span", func(c *control) { c.Durable.Done = spans{{-10, 100000}} })
	mod("span beyond size", func(c *control) { c.Latest.Done = spans{{0, 300000}, {1 << 20, 1<<20 + 1}} })
	mod("hashed beyond prefix", func(c *control) { c.Latest.Hashed = 300001 })
	mod("hashed beyond durable prefix", func(c *control) {
		c.Durable.Hashed, c.Durable.HashState = 100001, sha256State(tb, 100001)
	})
	mod("hashed with no prefix", func(c *control) {
		c.Durable.Done = spans{{1, 100000}}
	})
	mod("negative hashed", func(c *control) { c.Latest.Hashed = -1 })
	mod("garbage hash state", func(c *control) { c.Latest.HashState = []byte("garbage, not a sha256 state") })
	mod("truncated hash state", func(c *control) { c.Latest.HashState = c.Latest.HashState[:50] })
	mod("hash state longer", func(c *control) { c.Durable.HashState = append(c.Durable.HashState, 0) })
	// The hash state must be the hash of [0, Hashed), or a resume would
	// append the rest to the wrong prefix and report a wrong digest.
	mod("hash state behind hashed", func(c *control) { c.Latest.HashState = sha256State(tb, 100000) })
	mod("hashed without a hash state", func(c *control) { c.Latest.HashState = nil })
	bad["string size"] = []byte(strings.Replace(string(good), `"size":1048576`, `"size":"1048576"`, 1))
	bad["float version"] = []byte(strings.Replace(string(good), `"version":1`, `"version":1.5`, 1))
	bad["spans not objects"] = []byte(`{"version":1,"size":10,"algorithm":"sha256","latest":{"done":[[0,5]]}}`)
	return bad
}

// checkControl checks the invariants of a control file parseControl accepted.
func checkControl(t *testing.T, in []byte, c *control) {
	t.Helper()
	if c.Version != controlVersion {
		t.Fatalf("accepted version %d in %q", c.Version, in)
	}
	if c.Size < 0 {
		t.Fatalf("accepted size %d in %q", c.Size, in)
	}
	if _, ok := lookup(string(c.Algorithm)); !ok {
		t.Fatalf("accepted algorithm %q in %q", c.Algorithm, in)
	}
	for _, p := range []struct {
		name string
		s    progressState
	}{{"latest", c.Latest}, {"durable", c.Durable}} {
		s := p.s
		if !s.Done.valid(c.Size) {
			t.Fatalf("accepted %s done %v for size %d in %q", p.name, s.Done, c.Size, in)
		}
		if s.Hashed < 0 || s.Hashed > s.Done.prefix() {
			t.Fatalf("accepted %s hashed %d with done prefix %d in %q", p.name, s.Hashed, s.Done.prefix(), in)
		}
		if s.Done.total() > c.Size {
			t.Fatalf("accepted %s done %d bytes of %d in %q", p.name, s.Done.total(), c.Size, in)
		}
		if n := hashedLength(t, c.Algorithm, s.HashState); n != s.Hashed {
			t.Fatalf("accepted %s hashed %d with a %s hash state of %d bytes in %q",
				p.name, s.Hashed, c.Algorithm, n, in)
		}
	}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatalf("cannot marshal the control parsed from %q: %v", in, err)
	}
	again, err := parseControl(b)
	if err != nil {
		t.Fatalf("control parsed from %q, marshalled as %s, does not parse: %v", in, b, err)
	}
	if !reflect.DeepEqual(again, c) {
		t.Fatalf("control parsed from %q as %+v, marshalled as %s, parses as %+v", in, c, b, again)
	}
}

func TestParseControl(t *testing.T) {
	good := goodControl(t)
	b := marshalControl(t, good)
	c, err := parseControl(b)
	if err != nil {
		t.Fatalf("parseControl(%s): %v", b, err)
	}
	if !reflect.DeepEqual(c, good) {
		t.Fatalf("parseControl(%s) = %+v, want %+v", b, c, good)
	}
	checkControl(t, b, c)

	// A control file written before anything was hashed, by an engine
	// that had not yet learned the size of anything but the file.
	fresh := &control{Version: controlVersion, Size: 0, Algorithm: MD5}
	b = marshalControl(t, fresh)
	if c, err = parseControl(b); err != nil {
		t.Fatalf("parseControl(%s): %v", b, err)
	}
	checkControl(t, b, c)

	for name, b := range badControls(t) {
		if c, err := parseControl(b); err == nil {
			t.Errorf("%s: parseControl(%s) = %+v, want an error", name, b, c)
		} else if c != nil {
			t.Errorf("%s: parseControl returned a control with error %v", name, err)
		}
	}
}

func FuzzParseControl(f *testing.F) {
	good := goodControl(f)
	f.Add(marshalControl(f, good))
	for _, a := range algorithms { // every algorithm, with a partial block hashed
		h := a.new()
		h.Write(make([]byte, 1000))
		state, err := marshalHash(h)
		if err != nil {
			f.Fatal(err)
		}
		c := &control{
			Version: controlVersion, Size: 5000, Algorithm: a.alg,
			Latest:  progressState{Done: spans{{0, 1000}, {2000, 5000}}, Hashed: 1000, HashState: state},
			Durable: progressState{Done: spans{{0, 1000}}},
		}
		f.Add(marshalControl(f, c))
	}
	f.Add([]byte(`{"version":1,"size":0,"algorithm":"md5","latest":{"done":null},"durable":{"done":[]}}`))
	f.Add([]byte(`{"version":1,"size":10,"algorithm":"SHA-256","latest":{"done":[{"start":0,"end":10}],"hashed":0,"hash_state":""}}`))
	for _, b := range badControls(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := parseControl(b)
		if err != nil {
			if c != nil {
				t.Fatalf("parseControl(%q) returned a control with error %v", b, err)
			}
			return
		}
		checkControl(t, b, c)
	})
}

// ---- range sets ----

// runs returns the maximal runs of v in m as spans.
func runs(m []bool, v bool) spans {
	var r spans
	for i := 0; i < len(m); {
		if m[i] != v {
			i++
			continue
		}
		j := i
		for j < len(m) && m[j] == v {
			j++
		}
		r = append(r, span{int64(i), int64(j)})
		i = j
	}
	return r
}

// covers reports whether one range of s holds all of [start, end).
func covers(s spans, start, end int64) bool {
	i, _ := slices.BinarySearchFunc(s, start, func(r span, v int64) int {
		if r.End <= v {
			return -1
		}
		return 1
	})
	return i < len(s) && s[i].Start <= start && end <= s[i].End
}

// FuzzSpans decodes b as a size (2 bytes, at most 4096) followed by adds
// of [start, start+len) (2 bytes of start below size, 1 of length; a
// length of 0 adds the empty or reversed [start, start/2)), and checks the set against a []bool model.
func FuzzSpans(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0, 0, 5})
	f.Add([]byte{100, 0, 10, 0, 10, 0, 0, 10, 20, 0, 10})           // touching from both sides
	f.Add([]byte{100, 0, 50, 0, 20, 10, 0, 20, 30, 0, 80, 5, 0, 1}) // disjoint, then bridged
	f.Add([]byte{0, 16, 0, 0, 255, 255, 15, 255, 0, 8, 100, 0, 4, 255, 0, 0, 0})
	f.Add([]byte{7, 0, 6, 0, 9, 0, 0, 1, 3, 0, 2, 1, 0, 1, 2, 0, 1, 5, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		size := 0
		if len(b) >= 2 {
			size = int(binary.LittleEndian.Uint16(b)) % 4097
			b = b[2:]
		}
		model := make([]bool, size)
		count := 0
		var s spans
		var ops []span
		for ; len(b) >= 3; b = b[3:] {
			start := 0
			if size > 0 {
				start = int(binary.LittleEndian.Uint16(b)) % size
			}
			end := min(start+int(b[2]), size)
			if b[2] == 0 {
				s = s.add(int64(start), int64(start/2)) // empty or reversed: no change
			} else {
				s = s.add(int64(start), int64(end))
			}
			ops = append(ops, span{int64(start), int64(end)})
			for i := start; i < end; i++ {
				if !model[i] {
					model[i] = true
					count++
				}
			}
			if !s.valid(int64(size)) {
				t.Fatalf("after adding %v to size %d: %v is not valid", ops, size, s)
			}
			if s.total() != int64(count) {
				t.Fatalf("after adding %v to size %d: total %d, want %d", ops, size, s.total(), count)
			}
			if start < end && !covers(s, int64(start), int64(end)) {
				t.Fatalf("after adding %v to size %d: %v lacks the last", ops, size, s)
			}
		}
		if want := runs(model, true); !slices.Equal(s, want) {
			t.Fatalf("after adding %v to size %d: %v, want %v", ops, size, s, want)
		}
		lead := 0
		for lead < size && model[lead] {
			lead++
		}
		if s.prefix() != int64(lead) {
			t.Fatalf("after adding %v to size %d: prefix %d, want %d", ops, size, s.prefix(), lead)
		}
		g := s.gaps(int64(size))
		if want := runs(model, false); !slices.Equal(g, want) {
			t.Fatalf("after adding %v to size %d: gaps %v, want %v", ops, size, g, want)
		}
		if !g.valid(int64(size)) {
			t.Fatalf("after adding %v to size %d: gaps %v not valid", ops, size, g)
		}
		// Spans and gaps tile [0, size): each byte in exactly one.
		cover := make([]int, size)
		for _, set := range []spans{s, g} {
			for _, r := range set {
				for i := r.Start; i < r.End; i++ {
					cover[i]++
				}
			}
		}
		for i, n := range cover {
			if n != 1 {
				t.Fatalf("after adding %v to size %d: byte %d is in %d of %v and gaps %v", ops, size, i, n, s, g)
			}
		}
		// The gaps of the gaps are the set again.
		if gg := g.gaps(int64(size)); !slices.Equal(gg, s) {
			t.Fatalf("after adding %v to size %d: gaps of gaps %v, want %v", ops, size, gg, s)
		}
		// gaps of a shorter size is the model's false runs below it.
		for _, m := range []int{0, size / 2, size - 1} {
			if m < 0 {
				continue
			}
			if got, want := s.gaps(int64(m)), runs(model[:m], false); !slices.Equal(got, want) {
				t.Fatalf("after adding %v: gaps(%d) = %v, want %v", ops, m, got, want)
			}
		}
	})
}
