// Package sqlregistry keeps certstore's registry in SQLite or PostgreSQL: a
// certstore.Database that survives restarts and that several processes,
// or, with PostgreSQL, several hosts, can share.
//
//	db, err := sqlregistry.Open(ctx, "/var/lib/directdl/certstore.sqlite")
//	db, err := sqlregistry.Open(ctx, "postgres://directdl@db.example.com/directdl")
//	...
//	reg, err := certstore.NewRegistry(db, hosts)
//
// SQLite is embedded (modernc.org/sqlite, pure Go, no cgo). Every SQLite
// connection runs in WAL mode (readers never block the writer, also across
// processes), with synchronous=FULL (a call that returned survives a power
// cut), foreign keys on, and a busy timeout of 10 s for a file another
// process holds locked; the file is created on first use, with its -wal and
// -shm companions beside it while open, and its directory must exist.
// PostgreSQL is reached with pgx (github.com/jackc/pgx/v5). The pool holds
// at most 8 connections to SQLite and 16 to PostgreSQL.
// Open creates the tables, or migrates them to SchemaVersion, recording the
// version in schema_migrations under the component "certstore"; a database
// migrated by a newer version of this package is refused with
// ErrSchemaTooNew. Errors name the database by its SQLite path or its
// PostgreSQL URL with the password replaced by "xxxxx".
//
// # Schema
//
//	certificates        (id, alias, zone_id, host_id, hypervisor, hypervisor_key,
//	                     chain, created NULL, revoked NULL)
//	                    index (zone_id, id)
//	certificate_aliases (cert_id, entry, alias, alias_key, zone_id,
//	                     hypervisor_key, active)         PK (cert_id, entry)
//	                    UNIQUE (zone_id, hypervisor_key, alias_key) WHERE active
//	host_states         (cert_id, host_id, revoked, status, error, updated NULL)
//	                                                     PK (cert_id, host_id)
//	                    index (host_id, cert_id)
//
// chain is the PEM of the certificate's chain, in its order, read back with
// certstore.ParseCertificates; AddCertificate parses it back before storing
// it, so that what is stored always reads back. host_id is 0 for a
// certificate of every host of its zone.
//
// # Duplicate aliases
//
// certificate_aliases has a row per entry alias of each certificate (Alias,
// Alias-2, ...: certstore.Certificate.EntryAliases), with the certificate's
// zone and hypervisor. Its partial unique index holds the aliases of active
// certificates, so the database itself refuses an alias that an active
// certificate of the zone and hypervisor already has, whichever process
// adds it. A check before the insert could not: on PostgreSQL, whose write
// transactions run at READ COMMITTED, two uploads of one alias would both
// find it free. AddCertificate checks first anyway, to name the certificate
// holding the alias (certstore.DuplicateAliasError, the message
// certstore.MemoryDB gives); when the index refuses what the check let
// through, the upload starts again, and its check then finds the
// certificate that got there first. RevokeCertificate takes the
// certificate's aliases out of the index in the same transaction, so they
// can be uploaded again at once.
//
// Aliases are compared as strings.ToLower makes them (alias_key) and
// hypervisors as strings.EqualFold does (hypervisor_key holds each rune's
// smallest case-folding equivalent, "KVM" for "kvm"), the same in both
// dialects and as certstore.MemoryDB: SQL's lower() and upper() fold ASCII
// only on SQLite and follow the database's locale on PostgreSQL.
//
// # Times
//
// Created, Revoked and HostState.Updated are stored as BIGINT Unix
// nanoseconds, NULL for the zero time, and read back in UTC: a time comes
// back as the same instant to the nanosecond. That range ends in 1677 and
// 2262; a time outside it is refused with an error rather than stored
// wrapped around.
//
// # Transactions
//
// Every call is one transaction, retried when the database reports
// contention (SQLITE_BUSY; PostgreSQL serialization failures and
// deadlocks). Reads see one snapshot. On SQLite, write transactions start
// with BEGIN IMMEDIATE and so run one at a time across processes. A
// context cancelled before a call makes it fail with the context's error
// and change nothing. A DB is safe for concurrent use by multiple
// goroutines; Close it when done (the Registry using it does not).
//
// # Conformance
//
// The package's tests run certstore/registrytest on both dialects, with a
// reopening of the database; PostgreSQL needs DIRECTDL_TEST_POSTGRES (see
// internal/sqlstore/sqlstoretest).
package sqlregistry
