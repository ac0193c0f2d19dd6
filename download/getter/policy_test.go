package getter_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/directdl/directdl/download"
	"github.com/directdl/directdl/download/getter"
)

// With the default policy, sources on loopback and metadata addresses are
// refused before any getter runs (no server listens on these ports, and
// none is needed: nothing is dialed).
func TestDefaultPolicyRefuses(t *testing.T) {
	c, err := download.New()
	if err != nil {
		t.Fatal(err)
	}
	g, err := getter.New(c, getter.WithSchemes(getter.SchemeS3, getter.SchemeGit, getter.SchemeHg))
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{
		"s3::http://169.254.169.254/latest/meta-data",
		"s3::http://[::1]:9/bucket/key",
		"git::https://127.0.0.1:9/repo.git//disk.img",
		"git::ssh://git@127.0.0.2:9/repo.git//disk.img",
		"hg::https://[::ffff:127.0.0.1]:9/repo//disk.img",
	} {
		dir := t.TempDir()
		_, err := g.Get(context.Background(), download.Request{URL: u, Path: filepath.Join(dir, "out")})
		if !errors.Is(err, download.ErrDenied) {
			t.Errorf("%s: error %v, want ErrDenied", u, err)
		}
		assertOnly(t, dir)
	}
}
