package templatetest_test

import (
	"testing"

	"github.com/directdl/directdl/template"
	"github.com/directdl/directdl/template/templatetest"
)

// An implementation's test runs the suite with a factory of empty
// repositories. A store that persists also sets Reopen, closing the
// repository and opening its storage again, so that the suite checks what
// survives a restart.
func ExampleRun() {
	conformance := func(t *testing.T) {
		templatetest.Run(t, templatetest.Factory{
			New: func(*testing.T) template.Repository { return template.NewMemory() },
		})
	}
	_ = conformance // in a test file: func TestConformance(t *testing.T) { ... }
}
