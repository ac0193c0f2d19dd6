package getter

import (
	"errors"
	"net/url"
	"regexp"
	"strings"
	"testing"

	gogetter "github.com/hashicorp/go-getter"

	"github.com/directdl/directdl/download"
)

func enabledSet(names ...string) map[string]bool {
	m := map[string]bool{}
	for _, n := range names {
		m[n] = true
	}
	return m
}

const sha = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

func TestParseSource(t *testing.T) {
	all := enabledSet(known...)
	def := enabledSet(DefaultSchemes()...)
	tests := []struct {
		name    string
		raw     string
		enabled map[string]bool
		// Expected outcome: engine URL, or scheme + inner URL (+ file).
		engine  string
		scheme  string
		inner   string
		file    string
		sum     string
		wantErr error
		errText string
	}{
		{name: "https", raw: "https://example.com/a.img?checksum=sha256:" + sha, enabled: def, engine: "https://example.com/a.img?checksum=sha256:" + sha},
		{name: "http upper case", raw: "HTTP://example.com/a.img", enabled: def, engine: "HTTP://example.com/a.img"},
		{name: "forced https", raw: "https::https://example.com/a.img", enabled: def, engine: "https://example.com/a.img"},
		{name: "forced http on https", raw: "http::https://example.com/a", enabled: def, wantErr: ErrSource, errText: "names an https URL"},
		{name: "https archive", raw: "https://example.com/a.tgz?archive=tgz", enabled: def, wantErr: ErrSource, errText: "archive="},
		{name: "s3 forced", raw: "s3::https://s3.amazonaws.com/bucket/disk.img?checksum=sha256:" + sha, enabled: def,
			scheme: "s3", inner: "https://s3.amazonaws.com/bucket/disk.img", sum: "sha256:" + sha},
		{name: "s3 shorthand", raw: "bucket.s3.amazonaws.com/dir/disk.img", enabled: def,
			scheme: "s3", inner: "https://s3.amazonaws.com/bucket/dir/disk.img"},
		{name: "s3 custom endpoint", raw: "s3::http://127.0.0.1:9000/bucket/key?region=eu-1", enabled: def,
			scheme: "s3", inner: "http://127.0.0.1:9000/bucket/key?region=eu-1"},
		{name: "s3 bare checksum inferred", raw: "s3::https://s3.amazonaws.com/b/k?checksum=" + sha, enabled: def,
			scheme: "s3", inner: "https://s3.amazonaws.com/b/k", sum: "sha256:" + sha},
		{name: "s3 disabled", raw: "s3::https://s3.amazonaws.com/b/k", enabled: enabledSet("git"), wantErr: ErrScheme, errText: `WithSchemes("s3"`},
		{name: "s3 shorthand disabled", raw: "bucket.s3.amazonaws.com/k", enabled: enabledSet("git"), wantErr: ErrSource, errText: "WithSchemes"},
		{name: "s3 archive", raw: "s3::https://s3.amazonaws.com/b/k.tar.gz?archive=tar.gz", enabled: def, wantErr: ErrSource, errText: "archive="},
		{name: "s3 checksum file", raw: "s3::https://s3.amazonaws.com/b/k?checksum=file:https://example.com/SHA256SUMS", enabled: def, wantErr: ErrSource, errText: "checksum files"},
		{name: "s3 bad checksum", raw: "s3::https://s3.amazonaws.com/b/k?checksum=sha256:xyz", enabled: def, wantErr: download.ErrRequest, errText: "hexadecimal"},
		{name: "s3 subdir", raw: "s3::https://s3.amazonaws.com/b//k", enabled: def, wantErr: ErrSource, errText: "subdirectory"},
		{name: "s3 filename", raw: "s3::https://s3.amazonaws.com/b/k?filename=x", enabled: def, wantErr: ErrSource, errText: "filename"},
		{name: "s3 over ftp", raw: "s3::ftp://host/b/k", enabled: def, wantErr: ErrSource, errText: "takes https, http"},
		{name: "gcs", raw: "gcs::https://www.googleapis.com/storage/v1/bucket/obj", enabled: def,
			scheme: "gcs", inner: "https://www.googleapis.com/storage/v1/bucket/obj"},
		{name: "gcs shorthand", raw: "www.googleapis.com/storage/v1/bucket/obj", enabled: def,
			scheme: "gcs", inner: "https://www.googleapis.com/storage/v1/bucket/obj"},
		{name: "git subdir", raw: "git::https://example.com/repo.git//images/disk.img?ref=v1", enabled: def,
			scheme: "git", inner: "https://example.com/repo.git?ref=v1", file: "images/disk.img"},
		{name: "git top-level file", raw: "git::https://example.com/org/repo.git/disk.img", enabled: def,
			scheme: "git", inner: "https://example.com/org/repo.git", file: "disk.img"},
		{name: "git scp", raw: "git@example.com:org/repo.git//disk.img", enabled: def,
			scheme: "git", inner: "ssh://git@example.com/org/repo.git", file: "disk.img"},
		{name: "git scheme", raw: "git://example.com/repo.git//f", enabled: def,
			scheme: "git", inner: "git://example.com/repo.git", file: "f"},
		{name: "git no file", raw: "git::https://example.com/repo.git", enabled: def, wantErr: ErrSource, errText: "name the file"},
		{name: "git dotdot", raw: "git::https://example.com/repo.git//a/../../etc/passwd", enabled: def, wantErr: ErrSource, errText: ".."},
		{name: "git metadata", raw: "git::https://example.com/repo.git//.git/config", enabled: def, wantErr: ErrSource, errText: ".git"},
		{name: "git glob", raw: "git::https://example.com/repo.git//*.img", enabled: def, wantErr: ErrSource, errText: "glob"},
		{name: "git local needs file", raw: "git::file:///srv/repo.git//f", enabled: def, wantErr: ErrScheme, errText: `"file"`},
		{name: "git local", raw: "git::file:///srv/repo.git//f", enabled: all,
			scheme: "git", inner: "file:///srv/repo.git", file: "f"},
		{name: "hg disabled", raw: "hg::https://example.com/repo//f", enabled: def, wantErr: ErrScheme, errText: `WithSchemes("hg"`},
		{name: "file url", raw: "file:///srv/disk.img", enabled: all, scheme: "file", inner: "file:///srv/disk.img"},
		{name: "file forced path", raw: "file::/srv/disk.img", enabled: all, scheme: "file", inner: "file:///srv/disk.img"},
		{name: "absolute path", raw: "/srv/disk.img", enabled: all, scheme: "file", inner: "file:///srv/disk.img"},
		{name: "absolute path disabled", raw: "/srv/disk.img", enabled: def, wantErr: ErrScheme, errText: `WithSchemes("file"`},
		{name: "file disabled", raw: "file:///srv/disk.img", enabled: def, wantErr: ErrScheme, errText: `WithSchemes("file"`},
		{name: "relative path", raw: "srv/disk.img", enabled: all, wantErr: ErrSource},
		{name: "file with host", raw: "file://host/srv/disk.img", enabled: all, wantErr: ErrSource, errText: "no host"},
		{name: "unknown forced", raw: "ftp::ftp://example.com/f", enabled: all, wantErr: ErrScheme, errText: `"ftp" is not supported`},
		{name: "unknown scheme", raw: "ftp://example.com/f", enabled: all, wantErr: ErrScheme, errText: `"ftp" is not supported`},
		{name: "smb", raw: "smb://example.com/share/f", enabled: all, wantErr: ErrScheme},
		{name: "empty", raw: "", enabled: all, wantErr: ErrSource},
		{name: "control", raw: "s3::https://s3.amazonaws.com/b/k\n", enabled: all, wantErr: ErrSource, errText: "control"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := parseSource(tt.raw, tt.enabled)
			if tt.wantErr != nil || tt.errText != "" {
				if err == nil {
					t.Fatalf("parseSource(%q) = %+v, want an error", tt.raw, s)
				}
				if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
					t.Errorf("error %v does not match %v", err, tt.wantErr)
				}
				if !errors.Is(err, download.ErrRequest) {
					t.Errorf("error %v does not match download.ErrRequest", err)
				}
				if !strings.Contains(err.Error(), tt.errText) {
					t.Errorf("error %q does not mention %q", err, tt.errText)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseSource(%q): %v", tt.raw, err)
			}
			if tt.engine != "" {
				if !s.engine || s.url != tt.engine {
					t.Errorf("got engine=%v url=%q, want the engine with %q", s.engine, s.url, tt.engine)
				}
				return
			}
			if s.engine {
				t.Fatalf("%q went to the engine", tt.raw)
			}
			if s.scheme != tt.scheme || s.inner.String() != tt.inner || s.file != tt.file {
				t.Errorf("got scheme %q inner %q file %q, want %q %q %q", s.scheme, s.inner, s.file, tt.scheme, tt.inner, tt.file)
			}
			if got := s.sum.String(); tt.sum != "" && got != tt.sum || tt.sum == "" && !s.sum.IsZero() {
				t.Errorf("checksum %q, want %q", got, tt.sum)
			}
			if strings.Contains(s.name, "checksum=") {
				t.Errorf("name %q still holds the checksum", s.name)
			}
		})
	}
}

func TestDisplayNameHidesSSHKey(t *testing.T) {
	s, err := parseSource("git::ssh://git@example.com/repo.git//f?sshkey=c2VjcmV0LWtleQ&ref=v1", enabledSet("git"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(s.name, "c2VjcmV0") {
		t.Errorf("name %q shows the ssh key", s.name)
	}
	if !strings.Contains(s.name, "ref=v1") || !strings.HasPrefix(s.name, "git::ssh://") || !strings.Contains(s.name, "//f") {
		t.Errorf("name %q lost part of the source", s.name)
	}
	if s.inner.Query().Get("sshkey") != "c2VjcmV0LWtleQ" {
		t.Errorf("the key did not reach the getter: %q", s.inner)
	}
}

// goGetterForced is go-getter v1's own pattern for a forced getter.
var goGetterForced = regexp.MustCompile(`^([A-Za-z0-9]+)::(.+)$`)

func FuzzParseSource(f *testing.F) {
	for _, s := range []string{
		"https://example.com/a.img?checksum=sha256:" + sha,
		"s3::https://s3.amazonaws.com/bucket/disk.img?checksum=" + sha,
		"bucket.s3.amazonaws.com/dir/disk.img",
		"s3::http://127.0.0.1:9000/bucket/key?region=eu-1&aws_access_key_id=A&aws_access_key_secret=S",
		"gcs::https://www.googleapis.com/storage/v1/bucket/obj",
		"git::https://example.com/repo.git//images/disk.img?ref=v1",
		"git@example.com:org/repo.git//disk.img",
		"git::file:///srv/repo.git/disk.img",
		"hg::https://example.com/repo//f?rev=1",
		"file:///srv/disk.img", "file::/srv/disk.img", "/srv/disk.img",
		"s3::https://s3.amazonaws.com/b/k.tar.gz?archive=tar.gz",
		"s3::https://s3.amazonaws.com/b/k?checksum=file:https://example.com/SUMS",
		"ftp::ftp://x/y", "A::b", "::", "x::", "http::", "//a//b", "s3::https://h/b//k?x=//y",
	} {
		f.Add(s)
	}
	all := enabledSet(known...)
	f.Fuzz(func(t *testing.T, raw string) {
		// The splitters agree with go-getter's, which the fetch runs again.
		if !strings.ContainsAny(raw, "\r\n") {
			forced, rest := splitForced(raw)
			if m := goGetterForced.FindStringSubmatch(raw); m != nil {
				if forced != strings.ToLower(m[1]) || rest != m[2] {
					t.Fatalf("splitForced(%q) = %q, %q; go-getter says %q, %q", raw, forced, rest, m[1], m[2])
				}
			} else if forced != "" || rest != raw {
				t.Fatalf("splitForced(%q) = %q, %q; go-getter sees no forced getter", raw, forced, rest)
			}
		}
		r1, s1 := splitSubdir(raw)
		if r2, s2 := gogetter.SourceDirSubdir(raw); r1 != r2 || s1 != s2 {
			t.Fatalf("splitSubdir(%q) = %q, %q; go-getter says %q, %q", raw, r1, s1, r2, s2)
		}

		s, err := parseSource(raw, all)
		if err != nil {
			if !errors.Is(err, download.ErrRequest) {
				t.Fatalf("error %v does not match download.ErrRequest", err)
			}
			return
		}
		if s.engine {
			u, err := url.Parse(s.url)
			if err != nil || !strings.EqualFold(u.Scheme, "http") && !strings.EqualFold(u.Scheme, "https") {
				t.Fatalf("%q went to the engine as %q", raw, s.url)
			}
			if u.Query().Has("archive") {
				t.Fatalf("%q went to the engine with archive=", raw)
			}
			return
		}
		if !all[s.scheme] {
			t.Fatalf("%q gave scheme %q", raw, s.scheme)
		}
		q := s.inner.Query()
		if q.Has("checksum") || q.Has("archive") || q.Has("filename") {
			t.Fatalf("%q left a magic parameter in %q", raw, s.inner)
		}
		// What the fetch hands go-getter must come back the same from its
		// own parsing: no subdirectory, the same forced getter.
		src := s.scheme + "::" + s.inner.String()
		forced, rest := splitForced(src)
		if forced != s.scheme {
			t.Fatalf("%q: go-getter would force %q, not %q", src, forced, s.scheme)
		}
		if _, sub := gogetter.SourceDirSubdir(rest); sub != "" && s.file == "" {
			t.Fatalf("%q: go-getter would see subdirectory %q", src, sub)
		}
		switch s.scheme {
		case SchemeGit, SchemeHg:
			if s.file == "" || strings.HasPrefix(s.file, "/") || strings.Contains("/"+s.file+"/", "/../") {
				t.Fatalf("%q: bad repository path %q", raw, s.file)
			}
		default:
			if s.file != "" {
				t.Fatalf("%q: file %q for scheme %s", raw, s.file, s.scheme)
			}
		}
	})
}
