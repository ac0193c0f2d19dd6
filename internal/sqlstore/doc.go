// Package sqlstore is the SQL plumbing that directdl's stores share: it
// opens SQLite or PostgreSQL behind database/sql from one DSN, rewrites `?`
// placeholders for PostgreSQL, applies versioned schema migrations, runs
// transactions that are retried when the database asks for it, and tells
// constraint violations apart.
//
// # Dialects
//
// A DSN starting with postgres:// or postgresql:// is PostgreSQL, opened
// with pgx (github.com/jackc/pgx/v5/stdlib). Anything else is the path of a
// SQLite file, created on first use, opened with modernc.org/sqlite: pure
// Go, no cgo. A DSN starting with file: is passed to SQLite as a URI.
//
// Queries are written once with `?` placeholders; DB.Rebind turns them into
// $1, $2, ... for PostgreSQL. Both dialects take INSERT ... RETURNING (SQLite
// since 3.35), TEXT, BIGINT and BOOLEAN columns; only the auto-increment key
// differs, so migrations carry one script per dialect.
//
// # SQLite settings
//
// Every SQLite connection runs with:
//
//   - journal_mode=WAL, so readers never block the writer or each other,
//     also across processes;
//   - busy_timeout=10000: a connection that finds the file locked by another
//     process waits up to 10 s instead of failing at once;
//   - foreign_keys=ON, which SQLite leaves off by default;
//   - synchronous=FULL: every commit is fsynced to the WAL before it
//     returns, so a transaction that committed survives a power cut. NORMAL
//     would save that fsync but may lose the last commits on power loss;
//     template records are few and written rarely, so durability wins.
//   - cache_size=32 MiB (SQLite's default is 2 MiB): rows of one zone lie
//     scattered among other zones' rows, and with the default cache a
//     zone's listing slowed by half from 1,000 to 100,000 templates in
//     total; with 32 MiB it stays within a fifth (see BENCHMARKS.md).
//   - write transactions start with BEGIN IMMEDIATE (the driver's
//     _txlock=immediate), so two writers serialize at BEGIN instead of
//     one failing with SQLITE_BUSY when it upgrades its read lock.
//
// Within one process, write transactions also take a DB-wide semaphore, so
// in-process writers queue in Go instead of polling the file lock. Several
// processes may use one file at once: they serialize on SQLite's lock,
// waiting up to busy_timeout, and InTx retries what still fails with
// SQLITE_BUSY.
//
// # Transactions
//
// InTx runs a write transaction and InReadTx a read-only one; both retry the
// whole function, with backoff, when SQLite reports BUSY or LOCKED or
// PostgreSQL a serialization failure or deadlock (SQLSTATE 40001, 40P01), at
// most MaxAttempts times. Write transactions on PostgreSQL run at READ
// COMMITTED: code that must see a stable row locks it with SELECT ... FOR
// UPDATE (DB.ForUpdate gives the clause, empty for SQLite, whose write
// transactions are already serialized). Read transactions on PostgreSQL run
// at REPEATABLE READ, so all their queries see one snapshot, as SQLite's do.
//
// # Migrations
//
// Migrate brings a component's tables to the newest version it knows, one
// migration per transaction, recording each in the schema_migrations table
// (component, version, applied_at). Processes that open the same database at
// once serialize on a lock (pg_advisory_xact_lock on PostgreSQL, BEGIN
// IMMEDIATE on SQLite), so each migration runs once. A database whose
// recorded version is newer than the code knows is refused with
// ErrSchemaTooNew.
//
// # Times
//
// Stores keep times as BIGINT Unix nanoseconds in UTC (UnixNano and
// FromUnixNano), the same in both dialects and lossless for time.Time.
//
// # Tests
//
// Package sqlstoretest gives each test a fresh SQLite file or PostgreSQL
// schema; PostgreSQL tests need DIRECTDL_TEST_POSTGRES, which .ci/run sets
// after starting a throwaway server on 127.0.0.1.
package sqlstore
