package checksum

import (
	"encoding"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

// The digests of "abc" (FIPS 180 test vectors, RFC 1321).
var abc = map[string]string{
	MD5:    "900150983cd24fb0d6963f7d28e17f72",
	SHA1:   "a9993e364706816aba3e25717850c26c9cd0d89d",
	SHA224: "23097d223405d8228642a477bda255b32aadbce4bda0b3f7e36c9da7",
	SHA256: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
	SHA384: "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7",
	SHA512: "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
}

func TestParseForms(t *testing.T) {
	t.Parallel()
	up := strings.ToUpper
	cases := []struct {
		in    string
		infer bool
		want  Sum
	}{
		{"", false, Sum{}},
		{" \t\n", false, Sum{}},
		{"{MD5}" + abc[MD5], false, Sum{MD5, abc[MD5]}},
		{"{SHA-1}" + abc[SHA1], false, Sum{SHA1, abc[SHA1]}},
		{"{SHA-224}" + abc[SHA224], false, Sum{SHA224, abc[SHA224]}},
		{"{SHA-256}" + abc[SHA256], false, Sum{SHA256, abc[SHA256]}},
		{"{SHA-384}" + abc[SHA384], false, Sum{SHA384, abc[SHA384]}},
		{"{SHA-512}" + abc[SHA512], false, Sum{SHA512, abc[SHA512]}},
		{"{sha-256}" + up(abc[SHA256]), false, Sum{SHA256, abc[SHA256]}},
		{"{SHA256}" + abc[SHA256], false, Sum{SHA256, abc[SHA256]}},
		{"{Sha1}" + abc[SHA1], false, Sum{SHA1, abc[SHA1]}},
		{"sha256:" + abc[SHA256], false, Sum{SHA256, abc[SHA256]}},
		{"SHA256:" + up(abc[SHA256]), false, Sum{SHA256, abc[SHA256]}},
		{"sha384:" + abc[SHA384], false, Sum{SHA384, abc[SHA384]}},
		{"sha512:" + abc[SHA512], false, Sum{SHA512, abc[SHA512]}},
		{"md5:" + abc[MD5], false, Sum{MD5, abc[MD5]}},
		{"sha1:" + abc[SHA1], false, Sum{SHA1, abc[SHA1]}},
		{"sha224:" + abc[SHA224], false, Sum{SHA224, abc[SHA224]}},
		{"sha-256:" + abc[SHA256], false, Sum{SHA256, abc[SHA256]}},
		{abc[MD5], false, Sum{MD5, abc[MD5]}},
		{up(abc[MD5]), false, Sum{MD5, abc[MD5]}},
		{" " + abc[MD5] + "\n", false, Sum{MD5, abc[MD5]}},
		{abc[MD5], true, Sum{MD5, abc[MD5]}},
		{abc[SHA1], true, Sum{SHA1, abc[SHA1]}},
		{abc[SHA224], true, Sum{SHA224, abc[SHA224]}},
		{abc[SHA256], true, Sum{SHA256, abc[SHA256]}},
		{abc[SHA384], true, Sum{SHA384, abc[SHA384]}},
		{abc[SHA512], true, Sum{SHA512, abc[SHA512]}},
		// A prefix names the algorithm whatever the option says.
		{"{SHA-256}" + abc[SHA256], true, Sum{SHA256, abc[SHA256]}},
	}
	for _, c := range cases {
		got, err := Parse(c.in, c.infer)
		if err != nil {
			t.Errorf("Parse(%q, %v): %v", c.in, c.infer, err)
			continue
		}
		if got != c.want {
			t.Errorf("Parse(%q, %v) = %+v, want %+v", c.in, c.infer, got, c.want)
		}
		if got.IsZero() != (c.want.Alg == "") {
			t.Errorf("Parse(%q, %v).IsZero() = %v", c.in, c.infer, got.IsZero())
		}
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in    string
		infer bool
		want  error
		msg   string
	}{
		{abc[SHA256], false, ErrLength, "bare hex means MD5 (CloudStack's rule): for SHA-256 write {SHA-256}ba7816bf"},
		{abc[MD5][:31], false, ErrLength, "MD5 needs 32 hex digits, got 31"},
		{abc[MD5][:30], false, ErrLength, "prefix it, e.g. {SHA-256}HEX or sha256:HEX"},
		{abc[MD5][:31], true, ErrLength, "MD5 needs 32 hex digits, got 31"},
		{"{SHA-256}" + abc[MD5], false, ErrLength, "SHA-256 needs 64 hex digits, got 32"},
		{"md5:" + abc[SHA256], false, ErrLength, "MD5 needs 32 hex digits, got 64"},
		{"{SHA-257}" + abc[SHA256], false, ErrAlgorithm, `unknown algorithm "SHA-257"`},
		{"{BLAKE3}" + abc[SHA256], false, ErrAlgorithm, `unknown algorithm "BLAKE3"`},
		{"crc32:1234abcd", false, ErrAlgorithm, `unknown algorithm "crc32"`},
		{"{}" + abc[MD5], false, ErrAlgorithm, `unknown algorithm ""`},
		{"{SHA-256" + abc[SHA256], false, ErrForm, "no closing brace"},
		{"file:https://mirror/SHA256SUMS", false, ErrForm, "checksum files"},
		{"FILE:/SHA256SUMS", true, ErrForm, "checksum files"},
		{"sha256:", false, ErrHex, "not a hexadecimal"},
		{"{MD5}" + strings.Repeat("g", 32), false, ErrHex, "not a hexadecimal"},
		{"sha256:" + abc[SHA256][:63] + "z", false, ErrHex, "not a hexadecimal"},
		{"sha256: " + abc[SHA256], false, ErrHex, "not a hexadecimal"},
	}
	for _, c := range cases {
		got, err := Parse(c.in, c.infer)
		var fe *FormatError
		if !errors.Is(err, c.want) || !errors.As(err, &fe) || fe.Input != c.in || fe.Err != c.want {
			t.Errorf("Parse(%q, %v) error %v, want %v as *FormatError", c.in, c.infer, err, c.want)
			continue
		}
		if !strings.Contains(err.Error(), c.msg) || !strings.HasPrefix(err.Error(), "checksum ") {
			t.Errorf("Parse(%q, %v) error %q, want it to start with %q and contain %q", c.in, c.infer, err, "checksum ", c.msg)
		}
		if !got.IsZero() {
			t.Errorf("Parse(%q, %v) returned %+v with an error", c.in, c.infer, got)
		}
	}
}

func TestLookupAndAlgorithms(t *testing.T) {
	t.Parallel()
	algs := Algorithms()
	var names []string
	for _, a := range algs {
		names = append(names, a.Name)
		h := a.New()
		if 2*h.Size() != a.HexLen {
			t.Errorf("%s: HexLen %d for a %d-byte hash", a.Name, a.HexLen, h.Size())
		}
		h.Write([]byte("abc"))
		if got := hex.EncodeToString(h.Sum(nil)); got != abc[a.Name] {
			t.Errorf("%s(abc) = %s, want %s", a.Name, got, abc[a.Name])
		}
		for _, spelling := range []string{a.Name, a.CloudStack, strings.ToLower(a.CloudStack), strings.ToUpper(a.Name)} {
			if b, ok := Lookup(spelling); !ok || b.Name != a.Name {
				t.Errorf("Lookup(%q) = %q, %v; want %q", spelling, b.Name, ok, a.Name)
			}
		}
	}
	if want := []string{MD5, SHA1, SHA224, SHA256, SHA384, SHA512}; strings.Join(names, " ") != strings.Join(want, " ") {
		t.Errorf("Algorithms() = %v, want %v, weakest first", names, want)
	}
	algs[0].Name = "changed"
	if Algorithms()[0].Name != MD5 {
		t.Error("changing the slice Algorithms returned changed the table")
	}
	for _, name := range []string{"", "sha", "sha3-256", "blake3", "crc32"} {
		if a, ok := Lookup(name); ok {
			t.Errorf("Lookup(%q) = %q, want none", name, a.Name)
		}
	}
}

func TestSumRoundTripAndHash(t *testing.T) {
	t.Parallel()
	for alg, want := range abc {
		s, err := Parse(alg+":"+want, false)
		if err != nil {
			t.Fatal(err)
		}
		a, _ := Lookup(alg)
		if s.String() != alg+":"+want || s.CloudStack() != "{"+a.CloudStack+"}"+want {
			t.Errorf("%s: String() %q, CloudStack() %q", alg, s.String(), s.CloudStack())
		}
		for _, form := range []string{s.String(), s.CloudStack()} {
			if back, err := Parse(form, false); err != nil || back != s || !back.Equal(s) {
				t.Errorf("%s: Parse(%q) = %+v, %v; want %+v", alg, form, back, err, s)
			}
		}
		h := s.NewHash()
		h.Write([]byte("abc"))
		if !s.Match(h.Sum(nil)) {
			t.Errorf("%s: Match of the right digest is false", alg)
		}
		if n, err := New(alg, h.Sum(nil)); err != nil || n != s {
			t.Errorf("%s: New of the digest = %+v, %v; want %+v", alg, n, err, s)
		}
		// A hash interrupted mid-stream resumes from its saved state: what
		// resuming a download relies on.
		h1 := s.NewHash()
		h1.Write([]byte("a"))
		state, err := h1.(encoding.BinaryMarshaler).MarshalBinary()
		if err != nil {
			t.Fatalf("%s: MarshalBinary: %v", alg, err)
		}
		h2 := s.NewHash()
		if err := h2.(encoding.BinaryUnmarshaler).UnmarshalBinary(state); err != nil {
			t.Fatalf("%s: UnmarshalBinary: %v", alg, err)
		}
		h2.Write([]byte("bc"))
		if got := hex.EncodeToString(h2.Sum(nil)); got != want {
			t.Errorf("%s: resumed hash %s, want %s", alg, got, want)
		}
	}
	var zero Sum
	if zero.String() != "" || zero.CloudStack() != "" || zero.NewHash() != nil || zero.Match(nil) || zero.Match([]byte{1}) {
		t.Error("the zero Sum must have no form, no hash and match nothing")
	}
	if (Sum{Alg: "whirlpool", Hex: "00"}).NewHash() != nil {
		t.Error("NewHash of an unknown algorithm is not nil")
	}
}

func TestEqualAndMatch(t *testing.T) {
	t.Parallel()
	s := Sum{SHA256, abc[SHA256]}
	other := Sum{SHA256, abc[SHA256][:63] + "e"}
	raw, _ := hex.DecodeString(abc[SHA256])
	cases := []struct {
		name string
		a, b Sum
		want bool
	}{
		{"same", s, Sum{SHA256, abc[SHA256]}, true},
		{"last digit differs", s, other, false},
		{"shorter value", s, Sum{SHA256, abc[SHA256][:62]}, false},
		{"other algorithm, same value", s, Sum{SHA512, abc[SHA256]}, false},
		{"zero and a sum", Sum{}, s, false},
		{"zero and zero", Sum{}, Sum{}, true},
	}
	for _, c := range cases {
		if got := c.a.Equal(c.b); got != c.want {
			t.Errorf("%s: %+v.Equal(%+v) = %v, want %v", c.name, c.a, c.b, got, c.want)
		}
		if got := c.b.Equal(c.a); got != c.want {
			t.Errorf("%s: %+v.Equal(%+v) = %v, want %v", c.name, c.b, c.a, got, c.want)
		}
	}
	for _, c := range []struct {
		name string
		sum  []byte
		want bool
	}{
		{"right", raw, true},
		{"one bit off", append(raw[:31:31], raw[31]^1), false},
		{"short", raw[:31], false},
		{"long", append(raw[:32:32], 0), false},
		{"nil", nil, false},
	} {
		if got := s.Match(c.sum); got != c.want {
			t.Errorf("Match(%s) = %v, want %v", c.name, got, c.want)
		}
	}
	if (Sum{SHA256, "not hex"}).Match(raw) {
		t.Error("a Sum whose value is not hex matched")
	}
}

func TestNew(t *testing.T) {
	t.Parallel()
	sum, _ := hex.DecodeString(abc[SHA1])
	cases := []struct {
		alg  string
		sum  []byte
		want Sum
		err  error
	}{
		{SHA1, sum, Sum{SHA1, abc[SHA1]}, nil},
		{"SHA-1", sum, Sum{SHA1, abc[SHA1]}, nil},
		{SHA256, sum, Sum{}, ErrLength},
		{MD5, nil, Sum{}, ErrLength},
		{"whirlpool", sum, Sum{}, ErrAlgorithm},
		{"", sum, Sum{}, ErrAlgorithm},
	}
	for _, c := range cases {
		got, err := New(c.alg, c.sum)
		if got != c.want || !errors.Is(err, c.err) || (err == nil) != (c.err == nil) {
			t.Errorf("New(%q, %x) = %+v, %v; want %+v, %v", c.alg, c.sum, got, err, c.want, c.err)
		}
		var fe *FormatError
		if err != nil && !errors.As(err, &fe) {
			t.Errorf("New(%q, %x) error %T is not a *FormatError", c.alg, c.sum, err)
		}
	}
}
