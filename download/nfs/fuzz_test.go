package nfs_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/directdl/directdl/download/nfs"
)

func errorsAs(err error, target any) bool { return err != nil && errors.As(err, target) }

// FuzzParseURL checks that ParseURL never accepts a path that could climb
// out of the export or name nothing, and that an accepted URL round-trips
// through Location.String. Seeds are in testdata/fuzz/FuzzParseURL and
// below.
func FuzzParseURL(f *testing.F) {
	for _, s := range []string{
		"nfs://server/export/path/to/template.qcow2",
		"nfs://10.0.0.5:2049/srv/nfs/t.qcow2",
		"nfs://[::1]:2049/a/b",
		"nfs://h/a/../b",
		"nfs://h/a/%2e%2e/b",
		"nfs://h/a%2Fb/c",
		"nfs://u:p@h/a",
		"nfs://h/a?x#y",
		"nfs://h//a///b/",
		"NFS://H/%00",
		"nfs://h:0/a",
		"nfs:///a",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		loc, err := nfs.ParseURL(raw)
		if err != nil {
			if !errors.Is(err, nfs.ErrBadURL) {
				t.Fatalf("error %v does not match ErrBadURL", err)
			}
			return
		}
		if loc.Host == "" || len(loc.Names) == 0 {
			t.Fatalf("accepted %q with host %q and names %q", raw, loc.Host, loc.Names)
		}
		for _, n := range loc.Names {
			if n == "" || n == "." || n == ".." || strings.ContainsAny(n, "/\x00") {
				t.Fatalf("accepted %q with name %q", raw, n)
			}
		}
		cands := loc.ExportCandidates()
		if len(cands) != len(loc.Names) || cands[len(cands)-1] != "/" {
			t.Fatalf("export candidates %q for names %q", cands, loc.Names)
		}
		for _, c := range cands {
			if !strings.HasPrefix(loc.Path(), strings.TrimSuffix(c, "/")+"/") {
				t.Fatalf("candidate %q is not a prefix of %q", c, loc.Path())
			}
		}
		again, err := nfs.ParseURL(loc.String())
		if err != nil {
			t.Fatalf("String() %q of %q does not parse: %v", loc.String(), raw, err)
		}
		if again.Host != loc.Host || again.Port != loc.Port || again.Path() != loc.Path() {
			t.Fatalf("round trip of %q: %+v became %+v", raw, loc, again)
		}
	})
}

func TestParseURL(t *testing.T) {
	tests := []struct {
		raw    string
		host   string
		port   int
		path   string
		reason string // substring of the error when refused
	}{
		{raw: "nfs://server/export/path/to/template.qcow2", host: "server", path: "/export/path/to/template.qcow2"},
		{raw: "nfs://10.0.0.5:2049/srv/t.qcow2", host: "10.0.0.5", port: 2049, path: "/srv/t.qcow2"},
		{raw: "nfs://[::1]:20048/a/b", host: "::1", port: 20048, path: "/a/b"},
		{raw: "nfs://h//a//b", host: "h", path: "/a/b"},
		{raw: "nfs://h/a%20b", host: "h", path: "/a b"},
		{raw: "nfs://h/a/../b", reason: `".."`},
		{raw: "nfs://h/a/%2E%2E/b", reason: `".."`},
		{raw: "nfs://h/./b", reason: `"."`},
		{raw: "nfs://h/a%2Fb", reason: "encoded '/'"},
		{raw: "nfs://u:secret@h/a", reason: "user information"},
		{raw: "nfs://h/a?x=1", reason: "query"},
		{raw: "nfs://h/a?", reason: "query"},
		{raw: "nfs://h/a#f", reason: "fragment"},
		{raw: "nfs://h/", reason: "empty path"},
		{raw: "nfs://h", reason: "empty path"},
		{raw: "nfs:///a", reason: "no host"},
		{raw: "nfs://h:0/a", reason: "port"},
		{raw: "nfs://h:70000/a", reason: "port"},
		{raw: "http://h/a", reason: "scheme"},
		{raw: "nfs://h/" + strings.Repeat("x", 256), reason: "over 255"},
	}
	for _, tt := range tests {
		loc, err := nfs.ParseURL(tt.raw)
		if tt.reason != "" {
			if err == nil || !strings.Contains(err.Error(), tt.reason) || !errors.Is(err, nfs.ErrBadURL) {
				t.Errorf("ParseURL(%q) = %v, want an ErrBadURL naming %s", tt.raw, err, tt.reason)
			}
			if strings.Contains(tt.raw, "secret") && err != nil && strings.Contains(err.Error(), "secret") {
				t.Errorf("error %q shows the password", err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseURL(%q): %v", tt.raw, err)
			continue
		}
		if loc.Host != tt.host || loc.Port != tt.port || loc.Path() != tt.path {
			t.Errorf("ParseURL(%q) = %q %d %q, want %q %d %q", tt.raw, loc.Host, loc.Port, loc.Path(), tt.host, tt.port, tt.path)
		}
	}
}
