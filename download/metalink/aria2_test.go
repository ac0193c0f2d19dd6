package metalink

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestAria2ReadsMarshal gives Marshal's output to aria2c, the reference
// Metalink client, and checks that it lists the files with their sizes.
func TestAria2ReadsMarshal(t *testing.T) {
	t.Parallel()
	bin, err := exec.LookPath("aria2c")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("aria2c not found (Debian package aria2); CI must install it")
		}
		t.Skip("aria2c not installed")
	}
	for _, sample := range []string{"mirrors.meta4", "aria2-v3.metalink", "rfc5854.meta4"} {
		m := parseFile(t, sample)
		out, err := m.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(t.TempDir(), "x.meta4")
		if err := os.WriteFile(p, out, 0o644); err != nil {
			t.Fatal(err)
		}
		listing, err := exec.Command(bin, "--show-files", p).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: aria2c --show-files: %v\n%s", sample, err, listing)
		}
		for _, f := range m.Files {
			size := "(0)"
			if f.Size > 0 {
				size = "(" + groupDigits(f.Size) + ")"
			}
			if !strings.Contains(string(listing), f.Name) || !strings.Contains(string(listing), size) {
				t.Errorf("%s: aria2c does not list %s %s:\n%s", sample, f.Name, size, listing)
			}
		}
	}
}

// groupDigits writes n as aria2c does, 1,000,000.
func groupDigits(n int64) string {
	s := []byte(strconv.FormatInt(n, 10))
	var out []byte
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, c)
	}
	return string(out)
}
