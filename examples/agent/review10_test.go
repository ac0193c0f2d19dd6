package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The trust store must live outside the pool, where no download can
// replace it; outsidePool compares the paths as given (filepath.Abs), so a
// symlink on either side puts the store inside the pool unnoticed, and a
// download named like the store's file then plants the certificates every
// later download trusts.
func TestReview10TrustStoreInsidePoolThroughSymlink(t *testing.T) {
	dir := t.TempDir()
	pool := filepath.Join(dir, "pool")
	if err := os.Mkdir(pool, 0o755); err != nil {
		t.Fatal(err)
	}
	poolLink := filepath.Join(dir, "pool-link")
	if err := os.Symlink(pool, poolLink); err != nil {
		t.Fatal(err)
	}
	storeDirLink := filepath.Join(dir, "etc-directdl")
	if err := os.Symlink(pool, storeDirLink); err != nil {
		t.Fatal(err)
	}
	storeFileLink := filepath.Join(dir, "trust-link.jks")
	if err := os.Symlink(filepath.Join(pool, "trust.jks"), storeFileLink); err != nil {
		t.Fatal(err)
	}
	token := filepath.Join(dir, "token")
	if err := os.WriteFile(token, []byte("abc123\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, pool, store string }{
		{"pool given through a symlink", poolLink, filepath.Join(pool, "trust.jks")},
		{"store in a symlinked directory", pool, filepath.Join(storeDirLink, "trust.jks")},
		{"store file a symlink into the pool", pool, storeFileLink},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Already ended: an agent that starts stops at once (exit 0).
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			var stdout, stderr strings.Builder
			code := run(ctx, []string{"-listen", "127.0.0.1:0", "-pool", tc.pool, "-token-file", token, "-truststore", tc.store}, &stdout, &stderr)
			if code != 1 || !strings.Contains(stderr.String(), "inside the pool") {
				t.Errorf("-pool %s -truststore %s: exit %d, stderr %q; want exit 1 refusing a trust store inside the pool", tc.pool, tc.store, code, stderr.String())
			}
		})
	}
}
