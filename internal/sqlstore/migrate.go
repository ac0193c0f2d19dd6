package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// ErrSchemaTooNew is returned by Migrate for a database that a newer
// version of the program has migrated further than this one knows.
var ErrSchemaTooNew = errors.New("sqlstore: database schema is newer than this program")

// Migration is one step of a component's schema. Versions start at 1 and
// go up by one; a released migration is never changed, only followed.
type Migration struct {
	Version int
	// Name says what the step does, for messages.
	Name string
	// SQLite and Postgres are the statements of the step in each dialect,
	// separated by semicolons. They run in one transaction.
	SQLite, Postgres string
}

// migrationsLockKey is the pg_advisory_xact_lock key that Migrate takes on
// PostgreSQL: one key for every component, since they share the
// schema_migrations table.
const migrationsLockKey = 0x64646c5f6d696772 // "ddl_migr"

const createMigrationsTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
	component  TEXT   NOT NULL,
	version    BIGINT NOT NULL,
	applied_at BIGINT NOT NULL,
	PRIMARY KEY (component, version)
)`

// Migrate brings component's tables in db to the last of migrations,
// applying each missing one in a transaction of its own and recording it in
// schema_migrations. Several processes may migrate the same database at
// once: they take turns, and each step runs once. A database already past
// the last version is refused with an error matching ErrSchemaTooNew.
func Migrate(ctx context.Context, db *DB, component string, migrations []Migration) error {
	if component == "" {
		return errors.New("sqlstore: Migrate needs a component name")
	}
	for i, m := range migrations {
		if m.Version != i+1 {
			return fmt.Errorf("sqlstore: migrations of %s: step %d has version %d, want %d", component, i, m.Version, i+1)
		}
		if strings.TrimSpace(m.script(db.dialect)) == "" {
			return fmt.Errorf("sqlstore: migration %d (%s) of %s has no %s statements", m.Version, m.Name, component, db.dialect)
		}
	}
	latest := len(migrations)

	// Fast path: a database that is up to date needs no write lock, so
	// processes that only open it do not queue behind each other.
	if v, err := currentVersion(ctx, db.db, db, component); err == nil {
		if v > latest {
			return tooNew(db, component, v, latest)
		}
		if v == latest {
			return nil
		}
	}

	for {
		done := false
		err := InTx(ctx, db, func(tx *sql.Tx) error {
			if db.dialect == Postgres {
				if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(migrationsLockKey)); err != nil {
					return fmt.Errorf("sqlstore: %s: lock for migrations: %w", db.name, err)
				}
			}
			if _, err := tx.ExecContext(ctx, createMigrationsTable); err != nil {
				return fmt.Errorf("sqlstore: %s: create schema_migrations: %w", db.name, err)
			}
			v, err := currentVersion(ctx, tx, db, component)
			if err != nil {
				return fmt.Errorf("sqlstore: %s: read schema version of %s: %w", db.name, component, err)
			}
			if v > latest {
				return tooNew(db, component, v, latest)
			}
			if v == latest {
				done = true
				return nil
			}
			m := migrations[v]
			if _, err := tx.ExecContext(ctx, m.script(db.dialect)); err != nil {
				return fmt.Errorf("sqlstore: %s: migration %d (%s) of %s: %w", db.name, m.Version, m.Name, component, err)
			}
			_, err = tx.ExecContext(ctx, db.Rebind(`INSERT INTO schema_migrations (component, version, applied_at) VALUES (?, ?, ?)`),
				component, m.Version, UnixNano(Now()))
			if err != nil {
				return fmt.Errorf("sqlstore: %s: record migration %d of %s: %w", db.name, m.Version, component, err)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if done {
			return nil
		}
	}
}

func (m Migration) script(d Dialect) string {
	if d == Postgres {
		return m.Postgres
	}
	return m.SQLite
}

type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// currentVersion returns the last recorded version of component, 0 for
// none; it fails when schema_migrations does not exist.
func currentVersion(ctx context.Context, q queryer, db *DB, component string) (int, error) {
	var v sql.NullInt64
	err := q.QueryRowContext(ctx, db.Rebind(`SELECT MAX(version) FROM schema_migrations WHERE component = ?`), component).Scan(&v)
	if err != nil {
		return 0, err
	}
	return int(v.Int64), nil
}

// SchemaVersion returns the last migration version recorded for component
// in db, 0 when none is.
func SchemaVersion(ctx context.Context, db *DB, component string) (int, error) {
	q := `SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'`
	if db.dialect == Postgres {
		// The table a query would see, through search_path.
		q = `SELECT COUNT(*) FROM (SELECT to_regclass('schema_migrations') AS t) x WHERE t IS NOT NULL`
	}
	var n int
	if err := db.db.QueryRowContext(ctx, q).Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlstore: %s: look for schema_migrations: %w", db.name, err)
	}
	if n == 0 {
		return 0, nil
	}
	v, err := currentVersion(ctx, db.db, db, component)
	if err != nil {
		return 0, fmt.Errorf("sqlstore: %s: read schema version of %s: %w", db.name, component, err)
	}
	return v, nil
}

func tooNew(db *DB, component string, have, known int) error {
	return fmt.Errorf("%w: %s has %s schema version %d, this program knows up to %d; use a newer program (or restore a backup made before the upgrade)",
		ErrSchemaTooNew, db.name, component, have, known)
}
