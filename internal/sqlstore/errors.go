package sqlstore

import (
	"errors"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// SQLite's primary result codes and the extended constraint codes the
// helpers look for. Connections run with extended result codes, so an
// error's code is primary | extended<<8.
const (
	sqliteBusy       = sqlite3.SQLITE_BUSY
	sqliteLocked     = sqlite3.SQLITE_LOCKED
	sqliteUnique     = sqlite3.SQLITE_CONSTRAINT_UNIQUE
	sqlitePrimaryKey = sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	sqliteForeignKey = sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
)

// PostgreSQL SQLSTATEs.
const (
	pgUniqueViolation      = "23505"
	pgForeignKeyViolation  = "23503"
	pgSerializationFailure = "40001"
	pgDeadlockDetected     = "40P01"
)

func sqliteCode(err error) (int, bool) {
	var e *sqlite.Error
	if errors.As(err, &e) {
		return e.Code(), true
	}
	return 0, false
}

func pgCode(err error) (string, bool) {
	var e *pgconn.PgError
	if errors.As(err, &e) {
		return e.Code, true
	}
	return "", false
}

// IsRetryable reports whether err, anywhere in its chain, is a transient
// conflict after which the whole transaction may simply run again: SQLite
// BUSY or LOCKED (any extended code), PostgreSQL serialization failure
// (40001) or deadlock (40P01).
func IsRetryable(err error) bool {
	if c, ok := sqliteCode(err); ok {
		p := c & 0xff
		return p == sqliteBusy || p == sqliteLocked
	}
	if c, ok := pgCode(err); ok {
		return c == pgSerializationFailure || c == pgDeadlockDetected
	}
	return false
}

// IsUniqueViolation reports whether err is a unique or primary key
// constraint violation (SQLite CONSTRAINT_UNIQUE or CONSTRAINT_PRIMARYKEY,
// PostgreSQL 23505).
func IsUniqueViolation(err error) bool {
	if c, ok := sqliteCode(err); ok {
		return c == sqliteUnique || c == sqlitePrimaryKey
	}
	c, ok := pgCode(err)
	return ok && c == pgUniqueViolation
}

// IsForeignKeyViolation reports whether err is a foreign key constraint
// violation (SQLite CONSTRAINT_FOREIGNKEY, PostgreSQL 23503).
func IsForeignKeyViolation(err error) bool {
	if c, ok := sqliteCode(err); ok {
		return c == sqliteForeignKey
	}
	c, ok := pgCode(err)
	return ok && c == pgForeignKeyViolation
}
