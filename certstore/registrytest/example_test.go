package registrytest_test

import (
	"testing"

	"github.com/directdl/directdl/certstore"
	"github.com/directdl/directdl/certstore/registrytest"
)

// An implementation's test runs the suite with a factory of empty
// databases. A database that persists also sets Reopen, closing the
// database and opening its storage again, so that the suite checks what
// survives a restart (see certstore/sqlregistry's tests).
func ExampleRun() {
	conformance := func(t *testing.T) {
		registrytest.Run(t, registrytest.Factory{
			New: func(*testing.T) certstore.Database { return certstore.NewMemoryDB() },
		})
	}
	_ = conformance // in a test file: func TestConformance(t *testing.T) { ... }
}
