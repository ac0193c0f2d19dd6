package download

import (
	"encoding"
	"encoding/hex"
	"errors"
	"net/url"
	"strings"
	"testing"
)

// The digests of "abc" (FIPS 180 test vectors, RFC 1321).
var abc = map[Algorithm]string{
	MD5:    "900150983cd24fb0d6963f7d28e17f72",
	SHA1:   "a9993e364706816aba3e25717850c26c9cd0d89d",
	SHA224: "23097d223405d8228642a477bda255b32aadbce4bda0b3f7e36c9da7",
	SHA256: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
	SHA384: "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7",
	SHA512: "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
}

func TestParseChecksumForms(t *testing.T) {
	t.Parallel()
	up := strings.ToUpper
	cases := []struct {
		in    string
		opts  []ParseOption
		alg   Algorithm
		value string
	}{
		{"", nil, "", ""},
		{"   ", nil, "", ""},
		{"{MD5}" + abc[MD5], nil, MD5, abc[MD5]},
		{"{SHA-1}" + abc[SHA1], nil, SHA1, abc[SHA1]},
		{"{SHA-224}" + abc[SHA224], nil, SHA224, abc[SHA224]},
		{"{SHA-256}" + abc[SHA256], nil, SHA256, abc[SHA256]},
		{"{SHA-384}" + abc[SHA384], nil, SHA384, abc[SHA384]},
		{"{SHA-512}" + abc[SHA512], nil, SHA512, abc[SHA512]},
		{"{sha-256}" + up(abc[SHA256]), nil, SHA256, abc[SHA256]},
		{"{SHA256}" + abc[SHA256], nil, SHA256, abc[SHA256]},
		{"{Sha1}" + abc[SHA1], nil, SHA1, abc[SHA1]},
		{"sha256:" + abc[SHA256], nil, SHA256, abc[SHA256]},
		{"SHA256:" + up(abc[SHA256]), nil, SHA256, abc[SHA256]},
		{"sha512:" + abc[SHA512], nil, SHA512, abc[SHA512]},
		{"sha384:" + abc[SHA384], nil, SHA384, abc[SHA384]},
		{"md5:" + abc[MD5], nil, MD5, abc[MD5]},
		{"sha1:" + abc[SHA1], nil, SHA1, abc[SHA1]},
		{"sha-256:" + abc[SHA256], nil, SHA256, abc[SHA256]},
		{abc[MD5], nil, MD5, abc[MD5]},
		{up(abc[MD5]), nil, MD5, abc[MD5]},
		{" " + abc[MD5] + "\n", nil, MD5, abc[MD5]},
		{abc[SHA256], []ParseOption{InferByLength()}, SHA256, abc[SHA256]},
		{abc[SHA1], []ParseOption{InferByLength()}, SHA1, abc[SHA1]},
		{abc[SHA512], []ParseOption{InferByLength()}, SHA512, abc[SHA512]},
		{abc[MD5], []ParseOption{InferByLength()}, MD5, abc[MD5]},
	}
	for _, c := range cases {
		got, err := ParseChecksum(c.in, c.opts...)
		if err != nil {
			t.Errorf("ParseChecksum(%q): %v", c.in, err)
			continue
		}
		if got.Algorithm() != c.alg || got.Hex() != c.value {
			t.Errorf("ParseChecksum(%q) = %s %s, want %s %s", c.in, got.Algorithm(), got.Hex(), c.alg, c.value)
		}
		if got.IsZero() != (c.alg == "") {
			t.Errorf("ParseChecksum(%q).IsZero() = %v", c.in, got.IsZero())
		}
	}
}

func TestParseChecksumErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in   string
		want error
		msg  string
	}{
		{abc[SHA256], ErrChecksumLength, "bare hex means MD5 (CloudStack's rule): for SHA-256 write {SHA-256}ba7816bf"},
		{abc[MD5][:31], ErrChecksumLength, "MD5 needs 32 hex digits, got 31"},
		{"{SHA-256}" + abc[MD5], ErrChecksumLength, "SHA-256 needs 64 hex digits, got 32"},
		{"{SHA-257}" + abc[SHA256], ErrChecksumAlgorithm, `unknown algorithm "SHA-257"`},
		{"{BLAKE3}" + abc[SHA256], ErrChecksumAlgorithm, `unknown algorithm "BLAKE3"`},
		{"crc32:1234abcd", ErrChecksumAlgorithm, `unknown algorithm "crc32"`},
		{"{SHA-256" + abc[SHA256], ErrChecksumForm, "no closing brace"},
		{"file:https://mirror/SHA256SUMS", ErrChecksumForm, "checksum files"},
		{"sha256:", ErrChecksumHex, "not a hexadecimal"},
		{"{MD5}" + strings.Repeat("g", 32), ErrChecksumHex, "not a hexadecimal"},
		{"sha256:" + abc[SHA256][:63] + "z", ErrChecksumHex, "not a hexadecimal"},
	}
	for _, c := range cases {
		got, err := ParseChecksum(c.in)
		var fe *ChecksumFormatError
		if !errors.Is(err, c.want) || !errors.As(err, &fe) || fe.Input != c.in {
			t.Errorf("ParseChecksum(%q) error %v, want %v as *ChecksumFormatError", c.in, err, c.want)
			continue
		}
		if !strings.Contains(err.Error(), c.msg) || !strings.HasPrefix(err.Error(), "download: checksum ") {
			t.Errorf("ParseChecksum(%q) error %q, want it to contain %q", c.in, err, c.msg)
		}
		if !got.IsZero() {
			t.Errorf("ParseChecksum(%q) returned %v with an error", c.in, got)
		}
	}
}

func TestChecksumRoundTripAndHash(t *testing.T) {
	t.Parallel()
	for alg, want := range abc {
		c, err := ParseChecksum(string(alg) + ":" + want)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{c.String(), c.CloudStack()} {
			if back, err := ParseChecksum(s); err != nil || back != c {
				t.Errorf("%s: ParseChecksum(%q) = %v, %v; want %v", alg, s, back, err, c)
			}
		}
		h := c.NewHash()
		h.Write([]byte("abc"))
		if err := c.Verify(h.Sum(nil)); err != nil {
			t.Errorf("%s: Verify of the right digest: %v", alg, err)
		}
		if d, ok := c.Digest(); ok != (alg == SHA256 || alg == SHA384 || alg == SHA512) || ok && d.Validate() != nil {
			t.Errorf("%s: Digest() = %q, %v", alg, d, ok)
		}
		// A hash interrupted mid-stream resumes from its saved state: what
		// resuming a download relies on.
		h1 := c.NewHash()
		h1.Write([]byte("a"))
		state, err := h1.(encoding.BinaryMarshaler).MarshalBinary()
		if err != nil {
			t.Fatalf("%s: MarshalBinary: %v", alg, err)
		}
		h2 := c.NewHash()
		if err := h2.(encoding.BinaryUnmarshaler).UnmarshalBinary(state); err != nil {
			t.Fatalf("%s: UnmarshalBinary: %v", alg, err)
		}
		h2.Write([]byte("bc"))
		if got := hex.EncodeToString(h2.Sum(nil)); got != want {
			t.Errorf("%s: resumed hash %s, want %s", alg, got, want)
		}
	}
	var zero Checksum
	if zero.String() != "" || zero.CloudStack() != "" || zero.NewHash() != nil || zero.Verify([]byte{1}) != nil {
		t.Error("the zero Checksum must verify nothing")
	}
}

func TestChecksumMismatch(t *testing.T) {
	t.Parallel()
	c, _ := ParseChecksum("{SHA-256}" + abc[SHA256])
	h := c.NewHash()
	h.Write([]byte("abd"))
	err := c.Verify(h.Sum(nil))
	var ce *ChecksumError
	if !errors.As(err, &ce) || !errors.Is(err, ErrChecksumMismatch) {
		t.Fatalf("Verify of a wrong digest: %v, want *ChecksumError", err)
	}
	if ce.Want != c || ce.Got.Algorithm() != SHA256 || ce.Got == c || ce.RetryElsewhere() {
		t.Errorf("ChecksumError %+v", ce)
	}
	ce.URL = "https://mirror.example/t.qcow2"
	for _, want := range []string{"checksum mismatch for https://mirror.example/t.qcow2", "want sha256:ba78", "do not retry it on another host"} {
		if !strings.Contains(ce.Error(), want) {
			t.Errorf("error %q lacks %q", ce.Error(), want)
		}
	}
	if err := c.Verify([]byte{1, 2}); !errors.Is(err, ErrChecksumMismatch) {
		t.Errorf("Verify of a short sum: %v", err)
	}
}

func TestChecksumFromURL(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in, out string
		alg     Algorithm
		bad     bool
	}{
		{"https://m.example/a.qcow2?checksum=sha256:" + abc[SHA256], "https://m.example/a.qcow2", SHA256, false},
		{"https://m.example/a.qcow2?x=1&checksum=" + abc[SHA1], "https://m.example/a.qcow2?x=1", SHA1, false},
		{"https://m.example/a.qcow2?x=1", "https://m.example/a.qcow2?x=1", "", false},
		{"https://m.example/a.qcow2?checksum=sha256:nothex", "", "", true},
	}
	for _, c := range cases {
		u, _ := url.Parse(c.in)
		got, rest, err := ChecksumFromURL(u)
		if (err != nil) != c.bad {
			t.Errorf("ChecksumFromURL(%s): %v", c.in, err)
			continue
		}
		if c.bad {
			continue
		}
		if got.Algorithm() != c.alg || rest.String() != c.out {
			t.Errorf("ChecksumFromURL(%s) = %v, %s; want %s, %s", c.in, got, rest, c.alg, c.out)
		}
		if u.String() != c.in {
			t.Errorf("ChecksumFromURL changed its argument to %s", u)
		}
	}
}

func TestNewChecksum(t *testing.T) {
	t.Parallel()
	sum, _ := hex.DecodeString(abc[SHA1])
	c, err := NewChecksum(SHA1, sum)
	if err != nil || c.String() != "sha1:"+abc[SHA1] {
		t.Errorf("NewChecksum = %v, %v", c, err)
	}
	if _, err := NewChecksum(SHA256, sum); !errors.Is(err, ErrChecksumLength) {
		t.Errorf("NewChecksum with a SHA-1 sum as SHA-256: %v", err)
	}
	if _, err := NewChecksum("whirlpool", sum); !errors.Is(err, ErrChecksumAlgorithm) {
		t.Errorf("NewChecksum with an unknown algorithm: %v", err)
	}
}

func FuzzParseChecksum(f *testing.F) {
	for _, v := range abc {
		f.Add(v, false)
		f.Add("{SHA-256}"+v, true)
		f.Add("sha256:"+v, false)
	}
	for _, s := range []string{"", "{", "{}", ":", "file:x", "{MD5}", "sha-:00"} {
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, s string, infer bool) {
		var opts []ParseOption
		if infer {
			opts = append(opts, InferByLength())
		}
		c, err := ParseChecksum(s, opts...)
		if err != nil {
			var fe *ChecksumFormatError
			if !errors.As(err, &fe) {
				t.Fatalf("ParseChecksum(%q) error %T is not a *ChecksumFormatError", s, err)
			}
			return
		}
		if c.IsZero() {
			return
		}
		for _, form := range []string{c.String(), c.CloudStack()} {
			back, err := ParseChecksum(form)
			if err != nil || back != c {
				t.Fatalf("ParseChecksum(%q) = %v, %v; the round trip of %q gave %v", form, back, err, s, c)
			}
		}
		if len(c.Hex()) != 2*c.NewHash().Size() {
			t.Fatalf("ParseChecksum(%q): %d hex digits for a %d-byte %s", s, len(c.Hex()), c.NewHash().Size(), c.Algorithm())
		}
	})
}
