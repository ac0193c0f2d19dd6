package getter_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestDependsOnGoGetter keeps the main module's import-rules check honest:
// that check proves no package of the main module reaches go-getter, which
// would prove nothing if this package, the one meant to, did not either.
func TestDependsOnGoGetter(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-test=false", ".").Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("go list -deps: %v\n%s", err, stderr)
	}
	deps := strings.Fields(string(out))
	for _, want := range []string{
		"github.com/hashicorp/go-getter",
		"github.com/directdl/directdl/download",
		"github.com/directdl/directdl/internal/netguard",
	} {
		if !slices.Contains(deps, want) {
			t.Errorf("download/getter does not depend on %s", want)
		}
	}
}
