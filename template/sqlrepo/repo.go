package sqlrepo

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/directdl/directdl/internal/sqlstore"
	"github.com/directdl/directdl/template"
)

// Repo is a template.Repository kept in SQLite or PostgreSQL. It is safe
// for concurrent use, and several processes (or hosts, with PostgreSQL) may
// use one database at once. Every call is one transaction.
type Repo struct {
	db *sqlstore.DB
}

var _ template.Repository = (*Repo)(nil)

// ErrSchemaTooNew is returned by Open for a database that a newer version
// of this package has migrated past SchemaVersion: this program would not
// understand its tables. Use the newer program, or a backup.
var ErrSchemaTooNew = sqlstore.ErrSchemaTooNew

// Open opens the repository in the database named by dsn and migrates its
// tables to SchemaVersion. A DSN starting with postgres:// or
// postgresql:// is PostgreSQL; anything else is the path of a SQLite file,
// created on first use (its directory must exist). Open refuses a database
// that a newer version of this package has migrated further.
func Open(ctx context.Context, dsn string) (*Repo, error) {
	db, err := sqlstore.Open(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("template: %w", err)
	}
	if err := sqlstore.Migrate(ctx, db, component, migrations); err != nil {
		db.Close()
		return nil, fmt.Errorf("template: %w", err)
	}
	return &Repo{db: db}, nil
}

// Close closes the database; calls after it fail.
func (r *Repo) Close() error { return r.db.Close() }

// String names the database: its SQLite path or its PostgreSQL URL without
// the password.
func (r *Repo) String() string { return r.db.String() }

// q rewrites query's placeholders for the database's dialect.
func (r *Repo) q(query string) string { return r.db.Rebind(query) }

// write runs fn in a write transaction, after checking ctx, so that a
// cancelled call changes nothing.
func (r *Repo) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return sqlstore.InTx(ctx, r.db, fn)
}

// read runs fn in a read-only transaction that sees one snapshot.
func (r *Repo) read(ctx context.Context, fn func(tx *sql.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return sqlstore.InReadTx(ctx, r.db, fn)
}

func notFound(id template.ID) error { return fmt.Errorf("%w: template %d", template.ErrNotFound, id) }

func zoneNotFound(id template.ID, zone template.ZoneID) error {
	return fmt.Errorf("%w: zone %d does not offer template %d", template.ErrNotFound, zone, id)
}

// dbError wraps an unexpected database error with what was being done.
func (r *Repo) dbError(err error, format string, args ...any) error {
	return fmt.Errorf("template: %s in %s: %w", fmt.Sprintf(format, args...), r.db, err)
}

// lock locks the row of template id until tx ends (on PostgreSQL; SQLite's
// write transactions already hold the database) and fails with ErrNotFound
// unless the template is active. Every write that depends on the template
// being active, or changes its zones, takes this lock first, so that
// "is this the last zone?" and the soft-delete run one at a time per
// template.
func (r *Repo) lock(ctx context.Context, tx *sql.Tx, id template.ID) error {
	var removed sql.NullInt64
	err := tx.QueryRowContext(ctx, r.q(`SELECT removed FROM templates WHERE id = ?`+r.db.ForUpdate()), id).Scan(&removed)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return notFound(id)
	case err != nil:
		return r.dbError(err, "lock template %d", id)
	case removed.Valid:
		return notFound(id)
	}
	return nil
}

// active fails with ErrNotFound unless template id is active, in a read
// transaction.
func (r *Repo) active(ctx context.Context, tx *sql.Tx, id template.ID) error {
	var removed sql.NullInt64
	err := tx.QueryRowContext(ctx, r.q(`SELECT removed FROM templates WHERE id = ?`), id).Scan(&removed)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return notFound(id)
	case err != nil:
		return r.dbError(err, "read template %d", id)
	case removed.Valid:
		return notFound(id)
	}
	return nil
}

// offers reports whether zone offers template id.
func (r *Repo) offers(ctx context.Context, tx *sql.Tx, id template.ID, zone template.ZoneID) (bool, error) {
	var one int
	err := tx.QueryRowContext(ctx, r.q(`SELECT 1 FROM template_zones WHERE template_id = ? AND zone_id = ?`), id, zone).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, r.dbError(err, "read zone %d of template %d", zone, id)
	}
	return true, nil
}

func (r *Repo) requireZone(ctx context.Context, tx *sql.Tx, id template.ID, zone template.ZoneID) error {
	ok, err := r.offers(ctx, tx, id, zone)
	if err == nil && !ok {
		err = zoneNotFound(id, zone)
	}
	return err
}

// Register records n as offered in zones; duplicate zones count once. A
// UUID already used, by an active or a removed template, is ErrConflict.
func (r *Repo) Register(ctx context.Context, n template.NewTemplate, zones ...template.ZoneID) (template.Template, error) {
	if err := n.Validate(); err != nil {
		return template.Template{}, err
	}
	zs, err := template.ZoneSet(zones)
	if err != nil {
		return template.Template{}, err
	}
	t := n.Record(zs, sqlstore.Now())
	err = r.write(ctx, func(tx *sql.Tx) error {
		created := sqlstore.UnixNano(t.Created)
		if n.UUID == "" {
			t.UUID = template.NewUUID()
		} else {
			var other template.ID
			err := tx.QueryRowContext(ctx, r.q(`SELECT id FROM templates WHERE uuid = ?`), t.UUID).Scan(&other)
			if err == nil {
				return fmt.Errorf("%w: UUID %s is already used by template %d", template.ErrConflict, t.UUID, other)
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return r.dbError(err, "look up UUID %s", t.UUID)
			}
		}
		err := tx.QueryRowContext(ctx, r.q(`INSERT INTO templates
			(uuid, name, name_lower, display_text, format, type, hypervisor, url, checksum,
			 direct_download, size, physical_size, owner, created, removed)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL) RETURNING id`),
			t.UUID, t.Name, strings.ToLower(t.Name), t.DisplayText, string(t.Format), string(t.Type),
			t.Hypervisor, t.URL, t.Checksum, t.DirectDownload, t.Size, t.PhysicalSize, t.Owner, created,
		).Scan(&t.ID)
		if sqlstore.IsUniqueViolation(err) {
			// Another process registered the UUID since the look-up.
			return fmt.Errorf("%w: UUID %s is already used by another template", template.ErrConflict, t.UUID)
		}
		if err != nil {
			return r.dbError(err, "register template %q", t.Name)
		}
		for _, z := range zs {
			if _, err := tx.ExecContext(ctx, r.q(`INSERT INTO template_zones (template_id, zone_id, created) VALUES (?, ?, ?)`),
				t.ID, z, created); err != nil {
				return r.dbError(err, "offer template %d in zone %d", t.ID, z)
			}
		}
		for _, k := range slices.Sorted(maps.Keys(t.Details)) {
			if _, err := tx.ExecContext(ctx, r.q(`INSERT INTO template_details (template_id, key, value) VALUES (?, ?, ?)`),
				t.ID, k, t.Details[k]); err != nil {
				return r.dbError(err, "set detail %q of template %d", k, t.ID)
			}
		}
		return nil
	})
	if err != nil {
		return template.Template{}, err
	}
	return t, nil
}

// CopyToZone offers template id in zone too; a zone that already offers it
// is not an error.
func (r *Repo) CopyToZone(ctx context.Context, id template.ID, zone template.ZoneID) error {
	if zone <= 0 {
		return fmt.Errorf("%w: zone ID %d; zone IDs start at 1", template.ErrInvalid, zone)
	}
	return r.write(ctx, func(tx *sql.Tx) error {
		if err := r.lock(ctx, tx, id); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, r.q(`INSERT INTO template_zones (template_id, zone_id, created) VALUES (?, ?, ?)
			ON CONFLICT (template_id, zone_id) DO NOTHING`), id, zone, sqlstore.UnixNano(sqlstore.Now()))
		if err != nil {
			return r.dbError(err, "offer template %d in zone %d", id, zone)
		}
		return nil
	})
}

// templateColumns are the columns scanTemplate reads, in its order.
const templateColumns = `t.id, t.uuid, t.name, t.display_text, t.format, t.type, t.hypervisor, t.url, t.checksum,
	t.direct_download, t.size, t.physical_size, t.owner, t.created, t.removed`

type scanner interface{ Scan(dest ...any) error }

func scanTemplate(s scanner) (template.Template, error) {
	var (
		t           template.Template
		format, typ string
		created     int64
		removed     sql.NullInt64
	)
	err := s.Scan(&t.ID, &t.UUID, &t.Name, &t.DisplayText, &format, &typ, &t.Hypervisor, &t.URL, &t.Checksum,
		&t.DirectDownload, &t.Size, &t.PhysicalSize, &t.Owner, &created, &removed)
	t.Format, t.Type = template.Format(format), template.Type(typ)
	t.Created = sqlstore.FromUnixNano(created)
	if removed.Valid {
		t.Removed = sqlstore.FromUnixNano(removed.Int64)
	}
	return t, err
}

// Get returns template id; a removed one only with IncludeRemoved.
func (r *Repo) Get(ctx context.Context, id template.ID, opts ...template.GetOption) (template.Template, error) {
	return r.getWhere(ctx, "t.id = ?", id, notFound(id), template.ApplyGetOptions(opts))
}

// GetByUUID returns the template with uuid; a removed one only with
// IncludeRemoved.
func (r *Repo) GetByUUID(ctx context.Context, uuid string, opts ...template.GetOption) (template.Template, error) {
	nf := fmt.Errorf("%w: template with UUID %q", template.ErrNotFound, uuid)
	return r.getWhere(ctx, "t.uuid = ?", uuid, nf, template.ApplyGetOptions(opts))
}

// TemplateSource returns the URL and checksum of the active template with
// uuid; found is false, with a nil error, for an unknown UUID or a removed
// template. See [template.Getter].
func (r *Repo) TemplateSource(ctx context.Context, uuid string) (url, checksum string, found bool, err error) {
	return template.Source(ctx, r, uuid)
}

func (r *Repo) getWhere(ctx context.Context, where string, arg any, nf error, o template.GetOptions) (template.Template, error) {
	var t template.Template
	err := r.read(ctx, func(tx *sql.Tx) error {
		var err error
		t, err = scanTemplate(tx.QueryRowContext(ctx, r.q(`SELECT `+templateColumns+` FROM templates t WHERE `+where), arg))
		if errors.Is(err, sql.ErrNoRows) {
			return nf
		}
		if err != nil {
			return r.dbError(err, "read %s", nf)
		}
		if !t.Removed.IsZero() {
			if !o.IncludeRemoved {
				return nf
			}
			return nil // a removed template has no zones and no details
		}
		ts := []template.Template{t}
		if err := r.fill(ctx, tx, ts); err != nil {
			return err
		}
		t = ts[0]
		return nil
	})
	if err != nil {
		return template.Template{}, err
	}
	return t, nil
}

// fill reads the details and zones of the active templates among ts.
func (r *Repo) fill(ctx context.Context, tx *sql.Tx, ts []template.Template) error {
	byID := make(map[template.ID]*template.Template, len(ts))
	var args []any
	for i := range ts {
		if ts[i].Removed.IsZero() {
			ts[i].Details = map[string]string{}
			byID[ts[i].ID] = &ts[i]
			args = append(args, ts[i].ID)
		}
	}
	if len(args) == 0 {
		return nil
	}
	in := "(" + strings.Repeat("?, ", len(args)-1) + "?)"

	rows, err := tx.QueryContext(ctx, r.q(`SELECT template_id, key, value FROM template_details WHERE template_id IN `+in), args...)
	if err != nil {
		return r.dbError(err, "read details")
	}
	for rows.Next() {
		var (
			id         template.ID
			key, value string
		)
		if err := rows.Scan(&id, &key, &value); err != nil {
			rows.Close()
			return r.dbError(err, "read details")
		}
		byID[id].Details[key] = value
	}
	if err := closeRows(rows); err != nil {
		return r.dbError(err, "read details")
	}

	rows, err = tx.QueryContext(ctx, r.q(`SELECT template_id, zone_id FROM template_zones WHERE template_id IN `+in+
		` ORDER BY template_id, zone_id`), args...)
	if err != nil {
		return r.dbError(err, "read zones")
	}
	for rows.Next() {
		var (
			id   template.ID
			zone template.ZoneID
		)
		if err := rows.Scan(&id, &zone); err != nil {
			rows.Close()
			return r.dbError(err, "read zones")
		}
		t := byID[id]
		t.Zones = append(t.Zones, zone)
	}
	if err := closeRows(rows); err != nil {
		return r.dbError(err, "read zones")
	}
	return nil
}

// closeRows closes rows and returns the error that ended their iteration.
func closeRows(rows *sql.Rows) error {
	err := rows.Err()
	if cerr := rows.Close(); err == nil {
		err = cerr
	}
	return err
}
