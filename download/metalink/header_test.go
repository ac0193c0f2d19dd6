package metalink

import (
	"crypto/md5"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

func TestParseLinkHeaders(t *testing.T) {
	t.Parallel()
	base, _ := url.Parse("https://user:secret@origin.example/pub/disk.qcow2")
	h := http.Header{}
	h.Add("Link", `<http://mirror1.example/disk.qcow2>; rel=duplicate; pri=1; geo=DE; pref, <https://mirror2.example/x,y/disk.qcow2>; rel="duplicate"; pri=2; depth=1`)
	h.Add("Link", `</mirror3/disk.qcow2>; REL="alternate duplicate"; geo="fr"`)
	h.Add("Link", `<http://other.example/disk.meta4>; rel=describedby; type="application/metalink4+xml"`)
	h.Add("Link", `<http://bad1.example/f>; rel=duplicate; pri=0, <http://bad2.example/f>; rel=duplicate; geo=deu, <http://bad3.example/f>; rel=duplicate; depth=x`)
	h.Add("Link", `http://noangle.example/f; rel=duplicate, <http://after.example/f>; rel=duplicate`)
	h.Add("Link", `<http://u:p@creds.example/f>; rel=duplicate, <file:///etc/passwd>; rel=duplicate`)
	h.Add("Link", `<http://mirror1.example/disk.qcow2>; rel=duplicate; pri=7`)
	h.Add("Link", `<http://q.example/f>; rel=duplicate; title="a, \"quoted\"; title"; pri=3;`)
	h.Add("Link", `<http://unterminated.example/f>; rel="duplicate`)
	got, err := ParseLinkHeaders(h, base)
	want := []URL{
		{URL: "http://mirror1.example/disk.qcow2", Priority: 1, Location: "de", Preferred: true},
		{URL: "https://mirror2.example/x,y/disk.qcow2", Priority: 2},
		{URL: "https://origin.example/mirror3/disk.qcow2", Priority: DefaultPriority, Location: "fr"},
		{URL: "http://after.example/f", Priority: DefaultPriority},
		{URL: "http://q.example/f", Priority: 3},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("mirrors\n got %+v\nwant %+v", got, want)
	}
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("err = %v, want the skipped entries reported", err)
	}
	for _, s := range []string{`pri="0"`, `geo="deu"`, `depth="x"`, "must start with <URI>", "carries credentials", "file URLs are refused", "unterminated quoted string"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error does not mention %q:\n%v", s, err)
		}
	}
	if strings.Contains(err.Error(), "secret") || strings.Contains(err.Error(), ":p@") {
		t.Errorf("error leaks a password: %v", err)
	}
	for _, u := range got {
		if strings.Contains(u.URL, "secret") || strings.Contains(u.URL, "user") {
			t.Errorf("the Metalink's own credentials reached mirror %s", u.URL)
		}
	}
	if base.User == nil {
		t.Error("base was modified")
	}

	// Without a base, relative references are skipped.
	h = http.Header{"Link": {`</rel/f>; rel=duplicate, <http://abs.example/f>; rel=duplicate`}}
	got, err = ParseLinkHeaders(h, nil)
	if len(got) != 1 || got[0].URL != "http://abs.example/f" || !errors.Is(err, ErrURL) {
		t.Errorf("no base: %v, %v", got, err)
	}
	// No Link header: nothing, no error.
	if got, err := ParseLinkHeaders(http.Header{}, base); got != nil || err != nil {
		t.Errorf("empty: %v, %v", got, err)
	}
	// The link count is bounded.
	h = http.Header{"Link": {strings.Repeat("<http://a.example/f>; rel=duplicate, ", 1500)}}
	got, err = ParseLinkHeaders(h, nil)
	if len(got) != 1 || !errors.Is(err, ErrLimit) {
		t.Errorf("1500 links: %d mirrors, err %v; want 1 and ErrLimit", len(got), err)
	}
}

func TestParseDigest(t *testing.T) {
	t.Parallel()
	body := []byte("the file body")
	s256 := sha256.Sum256(body)
	s512 := sha512.Sum512(body)
	m5 := md5.Sum(body)
	b64 := base64.StdEncoding.EncodeToString
	h := http.Header{}
	h.Set("Digest", "SHA-256="+b64(s256[:])+", MD5="+b64(m5[:])+", UNIXsum=30637, SHA-512="+strings.TrimRight(b64(s512[:]), "="))
	got, err := ParseDigest(h)
	want := []Hash{{"sha-256", hex.EncodeToString(s256[:])}, {"md5", hex.EncodeToString(m5[:])}, {"sha-512", hex.EncodeToString(s512[:])}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("Digest: %v, %v; want %v", got, err, want)
	}

	h = http.Header{}
	h.Set("Repr-Digest", "sha-512=:"+b64(s512[:])+":;x=1, crc32c=:AAAAAA==:")
	h.Set("Digest", "sha-256="+b64(s256[:])+", SHA-512="+b64(s512[:]))
	got, err = ParseDigest(h)
	want = []Hash{{"sha-512", hex.EncodeToString(s512[:])}, {"sha-256", hex.EncodeToString(s256[:])}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("Repr-Digest + Digest: %v, %v; want %v", got, err, want)
	}

	other := sha256.Sum256([]byte("another body"))
	h = http.Header{}
	h.Set("Repr-Digest", "sha-256=:"+b64(other[:])+":, md5="+b64(m5[:]))
	h.Add("Digest", "SHA-256="+b64(s256[:]))
	h.Add("Digest", "SHA-256="+b64(s256[:4])+", MD5=!!notbase64, garbage")
	got, err = ParseDigest(h)
	if len(got) != 0 {
		t.Errorf("conflicting and bad entries: got %v, want nothing", got)
	}
	for _, s := range []string{"two different sha-256 values", "is not name=:base64:", "sha-256 value has 4 bytes, want 32", "md5 value is not base64", `"garbage" is not ALGORITHM=value`} {
		if err == nil || !strings.Contains(err.Error(), s) {
			t.Errorf("error %v does not mention %q", err, s)
		}
	}
	if !errors.Is(err, ErrHash) {
		t.Errorf("err %v does not match ErrHash", err)
	}
}
