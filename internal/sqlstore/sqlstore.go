package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strconv"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	_ "modernc.org/sqlite"             // registers the "sqlite" driver
)

// Dialect is the SQL dialect of a database.
type Dialect int

// The dialects Open knows.
const (
	SQLite Dialect = iota + 1
	Postgres
)

func (d Dialect) String() string {
	switch d {
	case SQLite:
		return "sqlite"
	case Postgres:
		return "postgres"
	}
	return "dialect(" + strconv.Itoa(int(d)) + ")"
}

// Connection pool sizes Open sets; change them with DB.SQL().
const (
	// SQLiteMaxConns bounds a SQLite pool: one writer at a time anyway,
	// and readers are quick.
	SQLiteMaxConns = 8
	// PostgresMaxConns bounds a PostgreSQL pool, so that many callers at
	// once queue in the pool instead of exhausting the server's
	// max_connections (100 by default).
	PostgresMaxConns = 16
)

// BusyTimeout is how long a SQLite connection waits for a lock held by
// another connection or process before failing with SQLITE_BUSY.
const BusyTimeout = 10 * time.Second

// DB is an open database and its dialect. It is safe for concurrent use.
type DB struct {
	db      *sql.DB
	dialect Dialect
	name    string // for messages: the path, or the URL without password

	// writeSem holds one token per running write transaction (SQLite only):
	// this process's writers queue here rather than polling the file lock.
	writeSem chan struct{}
}

// Open opens the database named by dsn and checks that it answers. A DSN
// starting with postgres:// or postgresql:// is PostgreSQL (any pgx
// parameter may follow); anything else is a SQLite file path, created when
// missing (its directory must exist), or a SQLite file: URI. Open sets the
// SQLite pragmas described in the package documentation; a file: URI's own
// parameters come first, so its _pragma values cannot override them.
func Open(ctx context.Context, dsn string) (*DB, error) {
	if strings.TrimSpace(dsn) == "" {
		return nil, errors.New("sqlstore: empty DSN: give a SQLite file path or a postgres:// URL")
	}
	d := &DB{}
	var driver, source string
	if IsPostgresDSN(dsn) {
		d.dialect, driver, source = Postgres, "pgx", dsn
		d.name = redactURL(dsn)
	} else {
		d.dialect, driver = SQLite, "sqlite"
		d.name = dsn
		source = sqliteDSN(dsn)
		d.writeSem = make(chan struct{}, 1)
	}
	db, err := sql.Open(driver, source)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: open %s: %w", d.name, err)
	}
	d.db = db
	if d.dialect == SQLite {
		db.SetMaxOpenConns(SQLiteMaxConns)
		db.SetMaxIdleConns(SQLiteMaxConns)
		if isSQLiteMemory(dsn) {
			// Every connection to :memory: is a database of its own.
			db.SetMaxOpenConns(1)
			db.SetConnMaxLifetime(0)
			db.SetConnMaxIdleTime(0)
		}
	} else {
		db.SetMaxOpenConns(PostgresMaxConns)
		db.SetMaxIdleConns(PostgresMaxConns)
		db.SetConnMaxIdleTime(5 * time.Minute)
	}
	if err := ping(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlstore: open %s database %s: %w", d.dialect, d.name, err)
	}
	return d, nil
}

// ping opens the first connection, which applies the SQLite pragmas. When
// several processes open a new SQLite file at once, switching it to WAL can
// fail with SQLITE_BUSY without the busy handler being asked (SQLite does
// not wait on some lock escalations, to avoid deadlock), so a busy first
// connection is tried again, for up to BusyTimeout.
func ping(ctx context.Context, db *sql.DB) error {
	deadline := time.Now().Add(BusyTimeout)
	wait := 5 * time.Millisecond
	for {
		err := db.PingContext(ctx)
		if err == nil || !IsRetryable(err) || time.Now().After(deadline) {
			return err
		}
		t := time.NewTimer(wait + time.Duration(rand.Int64N(int64(wait))))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
		wait = min(2*wait, 200*time.Millisecond)
	}
}

// IsPostgresDSN reports whether Open takes dsn for PostgreSQL.
func IsPostgresDSN(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// sqliteDSN adds the connection settings to a path or file: URI, in the
// form modernc.org/sqlite reads.
func sqliteDSN(dsn string) string {
	params := url.Values{}
	params.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", BusyTimeout.Milliseconds()))
	params.Add("_pragma", "journal_mode(WAL)")
	params.Add("_pragma", "foreign_keys(1)")
	params.Add("_pragma", "synchronous(FULL)")
	params.Add("_pragma", "cache_size(-32768)")
	params.Set("_txlock", "immediate")
	if strings.HasPrefix(dsn, "file:") {
		sep := "?"
		if strings.Contains(dsn, "?") {
			sep = "&"
		}
		return dsn + sep + params.Encode()
	}
	// A plain path becomes a file: URI, so that '?', '#' and '%' in it are
	// part of the name.
	return "file:" + escapeURIPath(dsn) + "?" + params.Encode()
}

func escapeURIPath(p string) string {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		switch c := p[i]; c {
		case '%', '?', '#':
			fmt.Fprintf(&b, "%%%02X", c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func isSQLiteMemory(dsn string) bool {
	return dsn == ":memory:" || strings.HasPrefix(dsn, "file::memory:") || strings.Contains(dsn, "mode=memory")
}

// redactURL returns u with its password replaced by "xxxxx".
func redactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		// Do not echo something that may hold a password.
		return "postgres://(unparsable URL)"
	}
	return p.Redacted()
}

// SQL returns the database/sql handle, for queries outside InTx and for
// tuning the pool. Queries through it need Rebind.
func (d *DB) SQL() *sql.DB { return d.db }

// Dialect returns the database's dialect.
func (d *DB) Dialect() Dialect { return d.dialect }

// String names the database for messages: its SQLite path, or its
// PostgreSQL URL without the password.
func (d *DB) String() string { return d.name }

// Close closes the database.
func (d *DB) Close() error { return d.db.Close() }

// ForUpdate returns " FOR UPDATE" for PostgreSQL, to end a SELECT that locks
// the rows it reads until the transaction ends, and "" for SQLite, whose
// write transactions hold the whole database.
func (d *DB) ForUpdate() string {
	if d.dialect == Postgres {
		return " FOR UPDATE"
	}
	return ""
}

// Rebind rewrites the `?` placeholders of query for the dialect: $1, $2, ...
// for PostgreSQL; SQLite takes `?` as is. Question marks inside quoted
// strings, quoted identifiers and comments are left alone.
func (d *DB) Rebind(query string) string {
	if d.dialect != Postgres || !strings.Contains(query, "?") {
		return query
	}
	return rebindDollar(query)
}

func rebindDollar(q string) string {
	var b strings.Builder
	b.Grow(len(q) + 8)
	n := 0
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case c == '\'' || c == '"':
			j := i + 1
			for j < len(q) {
				if q[j] == c {
					if j+1 < len(q) && q[j+1] == c { // doubled quote
						j += 2
						continue
					}
					break
				}
				j++
			}
			end := min(j+1, len(q))
			b.WriteString(q[i:end])
			i = end - 1
		case c == '-' && i+1 < len(q) && q[i+1] == '-':
			j := strings.IndexByte(q[i:], '\n')
			if j < 0 {
				j = len(q) - i
			}
			b.WriteString(q[i : i+j])
			i += j - 1
		case c == '/' && i+1 < len(q) && q[i+1] == '*':
			j := strings.Index(q[i+2:], "*/")
			end := len(q)
			if j >= 0 {
				end = i + 2 + j + 2
			}
			b.WriteString(q[i:end])
			i = end - 1
		case c == '?':
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// UnixNano is how stores keep a time: Unix nanoseconds, UTC by definition.
func UnixNano(t time.Time) int64 { return t.UnixNano() }

// FromUnixNano turns a stored time back into a time.Time in UTC.
func FromUnixNano(ns int64) time.Time { return time.Unix(0, ns).UTC() }

// Now returns the current time as stores keep it: in UTC, without the
// monotonic clock reading, so that it equals what is read back.
func Now() time.Time { return time.Now().UTC() }
