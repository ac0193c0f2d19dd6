package sqlrepo_test

import (
	"context"
	"sync"
	"testing"

	"github.com/directdl/directdl/internal/sqlstore/sqlstoretest"
	"github.com/directdl/directdl/template"
	"github.com/directdl/directdl/template/sqlrepo"
	"github.com/directdl/directdl/template/templatetest"
)

func openRepo(t testing.TB, dsn string) *sqlrepo.Repo {
	t.Helper()
	r, err := sqlrepo.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// factory runs the conformance suite on repositories in fresh databases
// made by newDSN, one per subtest; Reopen opens the same DSN again.
func factory(newDSN func(testing.TB) string) templatetest.Factory {
	var (
		mu   sync.Mutex
		dsns = map[template.Repository]string{}
	)
	remember := func(r *sqlrepo.Repo, dsn string) template.Repository {
		mu.Lock()
		defer mu.Unlock()
		dsns[r] = dsn
		return r
	}
	return templatetest.Factory{
		New: func(t *testing.T) template.Repository {
			dsn := newDSN(t)
			return remember(openRepo(t, dsn), dsn)
		},
		Reopen: func(t *testing.T, r template.Repository) template.Repository {
			t.Helper()
			mu.Lock()
			dsn := dsns[r]
			delete(dsns, r)
			mu.Unlock()
			if err := r.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			return remember(openRepo(t, dsn), dsn)
		},
	}
}

func TestConformanceSQLite(t *testing.T) {
	t.Parallel()
	templatetest.Run(t, factory(sqlstoretest.SQLiteDSN))
}

func TestConformancePostgres(t *testing.T) {
	t.Parallel()
	sqlstoretest.RequirePostgres(t)
	templatetest.Run(t, factory(sqlstoretest.PostgresDSN))
}
