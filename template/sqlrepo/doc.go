// Package sqlrepo keeps template records in SQLite or PostgreSQL: a
// template.Repository that survives restarts and that several processes,
// or, with PostgreSQL, several hosts, can share.
//
//	repo, err := sqlrepo.Open(ctx, "/var/lib/directdl/templates.sqlite")
//	repo, err := sqlrepo.Open(ctx, "postgres://directdl@db.example.com/directdl")
//
// SQLite is embedded (modernc.org/sqlite, pure Go, no cgo). Every SQLite
// connection runs in WAL mode (readers never block the writer, also across
// processes), with synchronous=FULL (a call that returned survives a power
// cut), foreign keys on, and a busy timeout of 10 s for a file another
// process holds locked. The file is created on first use, with its -wal and
// -shm companions beside it while it is open; its directory must exist.
// PostgreSQL is reached with pgx (github.com/jackc/pgx/v5). A Repo keeps a
// pool of at most 8 connections to SQLite and 16 to PostgreSQL, so that
// many callers at once queue in the pool instead of exhausting the
// server's connections.
//
// Open creates the tables, or migrates them to SchemaVersion, recording
// the version in schema_migrations; processes opening one database at once
// migrate it once. A database migrated by a newer version of this package
// is refused with an error matching ErrSchemaTooNew. Close the Repo when
// done; calls after Close fail.
//
// # Errors and concurrency
//
// A Repo reports the sentinels of package template (template.ErrNotFound,
// ErrInvalid, ErrConflict, ErrInUse, ErrTransition and their typed errors),
// exactly as template.Memory does: both pass the conformance suite in
// template/templatetest. A Repo is safe for concurrent use by multiple
// goroutines, and several processes (or, with PostgreSQL, hosts) may share
// one database; the transactions below say why that is sound.
//
// # Schema
//
//	templates        (id, uuid UNIQUE, name, name_lower, display_text, format,
//	                  type, hypervisor, url, checksum, direct_download, size,
//	                  physical_size, owner, created, removed NULL)
//	template_zones   (template_id, zone_id, created)       PK (template_id, zone_id)
//	                 index (zone_id, template_id)
//	template_details (template_id, key, value)            PK (template_id, key)
//	store_refs       (template_id, store_id, zone_id, kind, state, progress,
//	                  error, install_path, size, physical_size, version, updated)
//	                                                      PK (template_id, store_id)
//	usages           (template_id, zone_id, volume)       PK (template_id, zone_id, volume)
//
// Times are BIGINT Unix nanoseconds, UTC. store_refs and usages point at
// template_zones, so neither can outlive the zone ref it belongs to.
//
// # Transactions
//
// Every call is one transaction. A call that changes a template first locks
// its row (SELECT ... FOR UPDATE on PostgreSQL; on SQLite every write
// transaction is BEGIN IMMEDIATE and holds the database), so the check "is
// this the last zone?" and the soft-delete that follows cannot interleave
// with another delete: of any number of concurrent DeleteFromZone calls,
// exactly one removes the template and its details, and none loses them
// while another zone offers it (apache/cloudstack#10600). UpdateStoreRef
// locks nothing but writes conditionally on the version it was given, so
// two agents updating one ref cannot both succeed. Reads run in read-only
// transactions that see one snapshot. Transactions the database aborts for
// contention (SQLITE_BUSY, PostgreSQL serialization failures and
// deadlocks) are retried.
package sqlrepo
