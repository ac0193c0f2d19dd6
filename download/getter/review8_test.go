package getter

import (
	"context"
	"strings"
	"testing"

	"github.com/directdl/directdl/download"
)

// TestReview8SSHKeyNotInErrors: ?sshkey= carries a base64 private key
// (go-getter redacts it in its own messages), and displayName hides it in
// the result's name. The refusals built by badSource quote the raw URL
// through netguard.RedactString, which does not count sshkey as a secret,
// so the key ends up in error messages and logs.
func TestReview8SSHKeyNotInErrors(t *testing.T) {
	const key = "LS0tLS1CRUdJTiBPUEVOU1NIIFBSSVZBVEUgS0VZLS0tLS0K"
	def := map[string]bool{SchemeS3: true, SchemeGCS: true, SchemeGit: true}
	for _, raw := range []string{
		"git::ssh://git@example.com/repo.git//disk.img?sshkey=" + key + "&archive=zip",
		"git::ssh://git@example.com/repo.git//disk.img?sshkey=" + key + "&checksum=sha256:xyz",
		"git::ssh://git@example.com/repo.git//../disk.img?sshkey=" + key,
	} {
		_, err := parseSource(raw, def)
		if err == nil {
			t.Fatalf("%s: accepted; the case needs a refusal", raw)
		}
		if strings.Contains(err.Error(), key) {
			t.Errorf("the ssh key is in the error: %v", err)
		}
	}

	// The same through Get: a checksum that contradicts the Request's.
	c, err := download.New()
	if err != nil {
		t.Fatal(err)
	}
	g, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	raw := "git::ssh://git@example.com/repo.git//disk.img?sshkey=" + key + "&checksum=sha256:" + sha
	_, err = g.Get(context.Background(), download.Request{URL: raw, Path: t.TempDir() + "/f",
		Checksum: "sha256:" + strings.Repeat("0", 64)})
	if err == nil || strings.Contains(err.Error(), key) {
		t.Errorf("Get: %v; want a refusal without the ssh key", err)
	}
}
