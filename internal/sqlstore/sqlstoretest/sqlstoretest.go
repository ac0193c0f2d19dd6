// Package sqlstoretest gives tests a fresh database of each dialect: a
// SQLite file in the test's temporary directory, or a new schema in the
// PostgreSQL database named by DIRECTDL_TEST_POSTGRES, dropped when the
// test ends.
//
// Without DIRECTDL_TEST_POSTGRES, PostgreSQL tests skip, except under CI
// (the CI environment variable set), where they fail: CI starts a server
// and must not pass without testing it. .ci/run shows how to start one.
package sqlstoretest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver

	"github.com/directdl/directdl/internal/sqlstore"
)

// PostgresEnv is the environment variable holding the URL of a PostgreSQL
// server, as a user allowed to create databases, e.g.
// postgres://postgres:secret@127.0.0.1:5432/postgres?sslmode=disable.
const PostgresEnv = "DIRECTDL_TEST_POSTGRES"

// SQLiteDSN returns the path of a SQLite file that does not exist yet, in
// t's temporary directory.
func SQLiteDSN(t testing.TB) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "test.sqlite")
}

// RequirePostgres returns the server URL of DIRECTDL_TEST_POSTGRES. Without
// it, it skips t, or fails it under CI; a test that makes many PostgreSQL
// subtests calls it first, to skip once.
func RequirePostgres(t testing.TB) string {
	t.Helper()
	admin := os.Getenv(PostgresEnv)
	if admin == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not set under CI: .ci/run starts a PostgreSQL server and sets it; PostgreSQL tests must not be skipped in CI", PostgresEnv)
		}
		t.Skipf("PostgreSQL skipped: set %s to a server URL (see .ci/run) to run this test", PostgresEnv)
	}
	return admin
}

// PostgresDSN creates an empty schema on the server of
// DIRECTDL_TEST_POSTGRES and returns a URL whose connections use it
// (search_path); the schema is dropped with everything in it when t ends.
// A schema, not a database, because CREATE DATABASE takes half a second
// and every test wants its own. Without the variable it skips t, or fails
// it under CI.
func PostgresDSN(t testing.TB) string {
	t.Helper()
	admin := RequirePostgres(t)
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("%s is not a URL: %v", PostgresEnv, err)
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	schema := "directdl_test_" + hex.EncodeToString(b[:])

	exec := func(stmt string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		db, err := sql.Open("pgx", admin)
		if err != nil {
			return err
		}
		defer db.Close()
		_, err = db.ExecContext(ctx, stmt)
		return err
	}
	if err := exec("CREATE SCHEMA " + schema); err != nil {
		t.Fatalf("create schema %s on %s: %v", schema, u.Redacted(), err)
	}
	t.Cleanup(func() {
		if err := exec("DROP SCHEMA " + schema + " CASCADE"); err != nil {
			t.Errorf("drop schema %s on %s: %v", schema, u.Redacted(), err)
		}
	})
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// Dialect is a way to get a fresh database of one dialect.
type Dialect struct {
	Name string // "sqlite" or "postgres"
	DSN  func(testing.TB) string
}

// Dialects lists SQLite and PostgreSQL, for tests that run on each.
func Dialects() []Dialect {
	return []Dialect{{"sqlite", SQLiteDSN}, {"postgres", PostgresDSN}}
}

// RecordNewerSchema records in the database dsn that component's schema is
// at version, as a newer release of it would leave it, so that a test can
// check that Open refuses a schema it does not know.
func RecordNewerSchema(t testing.TB, dsn, component string, version int) {
	t.Helper()
	ctx := context.Background()
	db, err := sqlstore.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_, err = db.SQL().ExecContext(ctx, db.Rebind(`INSERT INTO schema_migrations (component, version, applied_at) VALUES (?, ?, ?)`),
		component, version, time.Now().UnixNano())
	if err != nil {
		t.Fatal(err)
	}
}
