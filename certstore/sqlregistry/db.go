package sqlregistry

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"time"

	"github.com/directdl/directdl/certstore"
	"github.com/directdl/directdl/internal/sqlstore"
)

// DB is a certstore.Database kept in SQLite or PostgreSQL. It is safe for
// concurrent use, and several processes (or hosts, with PostgreSQL) may use
// one database at once. Every call is one transaction.
type DB struct {
	db *sqlstore.DB
}

var _ certstore.Database = (*DB)(nil)

// ErrSchemaTooNew is returned by Open for a database that a newer version
// of this package has migrated past SchemaVersion: this program would not
// understand its tables. Use the newer program, or a backup.
var ErrSchemaTooNew = sqlstore.ErrSchemaTooNew

// Open opens the registry in the database named by dsn and migrates its
// tables to SchemaVersion. A DSN starting with postgres:// or
// postgresql:// is PostgreSQL; anything else is the path of a SQLite file,
// created on first use (its directory must exist). Errors name the
// database by its path, or by its URL with the password replaced by
// "xxxxx". Open refuses a database that a newer version of this package
// has migrated further (ErrSchemaTooNew).
func Open(ctx context.Context, dsn string) (*DB, error) {
	db, err := sqlstore.Open(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlregistry: %w", err)
	}
	if err := sqlstore.Migrate(ctx, db, component, migrations); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlregistry: %w", err)
	}
	return &DB{db: db}, nil
}

// Close closes the database; calls after it fail. Closing twice is not an
// error.
func (d *DB) Close() error { return d.db.Close() }

// String names the database: its SQLite path, or its PostgreSQL URL without
// the password.
func (d *DB) String() string { return d.db.String() }

// q rewrites query's placeholders for the database's dialect.
func (d *DB) q(query string) string { return d.db.Rebind(query) }

// write runs fn in a write transaction, after checking ctx, so that a
// cancelled call changes nothing.
func (d *DB) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return sqlstore.InTx(ctx, d.db, fn)
}

// read runs fn in a read-only transaction that sees one snapshot.
func (d *DB) read(ctx context.Context, fn func(tx *sql.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return sqlstore.InReadTx(ctx, d.db, fn)
}

// dbError wraps an unexpected database error with what was being done and
// the database's name.
func (d *DB) dbError(err error, format string, args ...any) error {
	return fmt.Errorf("sqlregistry: %s in %s: %w", fmt.Sprintf(format, args...), d.db, err)
}

func notFound(id certstore.ID) error {
	return fmt.Errorf("%w: no certificate with id %d", certstore.ErrNotFound, id)
}

// The times a BIGINT of Unix nanoseconds can hold: from 1677-09-21 to
// 2262-04-11.
var (
	minTime = time.Unix(0, math.MinInt64)
	maxTime = time.Unix(0, math.MaxInt64)
)

// nanos returns t as stored: NULL for the zero time, else Unix nanoseconds.
// A time out of their range is refused rather than stored wrapped around.
func nanos(what string, t time.Time) (sql.NullInt64, error) {
	if t.IsZero() {
		return sql.NullInt64{}, nil
	}
	if t.Before(minTime) || t.After(maxTime) {
		return sql.NullInt64{}, fmt.Errorf("sqlregistry: %s %s is out of the range the database stores times in (%s to %s)",
			what, t.Format(time.RFC3339Nano), minTime.UTC().Format(time.RFC3339), maxTime.UTC().Format(time.RFC3339))
	}
	return sql.NullInt64{Int64: sqlstore.UnixNano(t), Valid: true}, nil
}

// fromNanos turns a stored time back into a time.Time in UTC.
func fromNanos(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return sqlstore.FromUnixNano(n.Int64)
}

// closeRows closes rows and returns the error that ended their iteration.
func closeRows(rows *sql.Rows) error {
	err := rows.Err()
	if cerr := rows.Close(); err == nil {
		err = cerr
	}
	return err
}
