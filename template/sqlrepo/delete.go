package sqlrepo

import (
	"context"
	"database/sql"
	"slices"

	"github.com/directdl/directdl/internal/sqlstore"
	"github.com/directdl/directdl/template"
)

// DeleteFromZone removes zone's ref of template id, the store refs in that
// zone and, with o.Force, the usages in that zone; when no zone is left it
// soft-deletes the template and removes its details. It is one
// transaction that holds the template's lock from the first read, so of
// any number of concurrent deletes exactly one finds the last zone and
// does the cleanup.
func (r *Repo) DeleteFromZone(ctx context.Context, id template.ID, zone template.ZoneID, o template.DeleteOptions) (template.DeleteResult, error) {
	var res template.DeleteResult
	err := r.write(ctx, func(tx *sql.Tx) error {
		res = template.DeleteResult{}
		if err := r.lock(ctx, tx, id); err != nil {
			return err
		}
		if err := r.requireZone(ctx, tx, id, zone); err != nil {
			return err
		}
		vols, err := r.volumes(ctx, tx, id, zone)
		if err != nil {
			return err
		}
		if len(vols) > 0 && !o.Force {
			return &template.InUseError{Template: id, Zone: zone, Volumes: vols}
		}
		var zones int
		if err := tx.QueryRowContext(ctx, r.q(`SELECT COUNT(*) FROM template_zones WHERE template_id = ?`), id).Scan(&zones); err != nil {
			return r.dbError(err, "count zones of template %d", id)
		}
		if zones == 1 {
			res.Removed = true
			return r.remove(ctx, tx, id)
		}
		for _, table := range []string{"usages", "store_refs", "template_zones"} {
			if _, err := tx.ExecContext(ctx, r.q(`DELETE FROM `+table+` WHERE template_id = ? AND zone_id = ?`), id, zone); err != nil {
				return r.dbError(err, "delete %s of template %d in zone %d", table, id, zone)
			}
		}
		return nil
	})
	if err != nil {
		return template.DeleteResult{}, err
	}
	return res, nil
}

// DeleteEverywhere soft-deletes template id with its zone refs, store refs,
// usages (with o.Force) and details, in one transaction.
func (r *Repo) DeleteEverywhere(ctx context.Context, id template.ID, o template.DeleteOptions) error {
	return r.write(ctx, func(tx *sql.Tx) error {
		if err := r.lock(ctx, tx, id); err != nil {
			return err
		}
		vols, err := r.volumes(ctx, tx, id, 0)
		if err != nil {
			return err
		}
		if len(vols) > 0 && !o.Force {
			return &template.InUseError{Template: id, Volumes: vols}
		}
		return r.remove(ctx, tx, id)
	})
}

// volumes returns the volumes using template id in zone (every zone for
// zero), sorted, each once.
func (r *Repo) volumes(ctx context.Context, tx *sql.Tx, id template.ID, zone template.ZoneID) ([]string, error) {
	q, args := `SELECT DISTINCT volume FROM usages WHERE template_id = ?`, []any{id}
	if zone != 0 {
		q, args = `SELECT volume FROM usages WHERE template_id = ? AND zone_id = ?`, []any{id, zone}
	}
	rows, err := tx.QueryContext(ctx, r.q(q), args...)
	if err != nil {
		return nil, r.dbError(err, "read usages of template %d", id)
	}
	var vols []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return nil, r.dbError(err, "read usages of template %d", id)
		}
		vols = append(vols, v)
	}
	if err := closeRows(rows); err != nil {
		return nil, r.dbError(err, "read usages of template %d", id)
	}
	slices.Sort(vols) // in byte order, whatever the database's collation
	return vols, nil
}

// remove soft-deletes template id, which tx has locked: it deletes what
// hangs off it, children before the zone refs they point at, and sets
// removed.
func (r *Repo) remove(ctx context.Context, tx *sql.Tx, id template.ID) error {
	for _, table := range []string{"usages", "store_refs", "template_zones", "template_details"} {
		if _, err := tx.ExecContext(ctx, r.q(`DELETE FROM `+table+` WHERE template_id = ?`), id); err != nil {
			return r.dbError(err, "delete %s of template %d", table, id)
		}
	}
	if _, err := tx.ExecContext(ctx, r.q(`UPDATE templates SET removed = ? WHERE id = ?`), sqlstore.UnixNano(sqlstore.Now()), id); err != nil {
		return r.dbError(err, "soft-delete template %d", id)
	}
	return nil
}
