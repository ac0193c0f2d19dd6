package certstore_test

import (
	"testing"

	"github.com/directdl/directdl/certstore"
	"github.com/directdl/directdl/certstore/registrytest"
)

func TestMemoryDBConformance(t *testing.T) {
	registrytest.Run(t, registrytest.Factory{
		New: func(*testing.T) certstore.Database { return certstore.NewMemoryDB() },
	})
}
