package sqlrepo

import (
	"context"
	"database/sql"
	"fmt"
	"maps"
	"slices"

	"github.com/directdl/directdl/template"
)

// Details returns the details of template id (an empty map when it has
// none); ErrNotFound for a removed template.
func (r *Repo) Details(ctx context.Context, id template.ID) (map[string]string, error) {
	d := map[string]string{}
	err := r.read(ctx, func(tx *sql.Tx) error {
		clear(d)
		if err := r.active(ctx, tx, id); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, r.q(`SELECT key, value FROM template_details WHERE template_id = ?`), id)
		if err != nil {
			return r.dbError(err, "read details of template %d", id)
		}
		for rows.Next() {
			var k, v string
			if err := rows.Scan(&k, &v); err != nil {
				rows.Close()
				return r.dbError(err, "read details of template %d", id)
			}
			d[k] = v
		}
		if err := closeRows(rows); err != nil {
			return r.dbError(err, "read details of template %d", id)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return d, nil
}

// SetDetails adds or replaces the given keys of template id; other keys
// stay. A key that is not 1 to 255 bytes is ErrInvalid, and nothing is
// changed.
func (r *Repo) SetDetails(ctx context.Context, id template.ID, details map[string]string) error {
	for k := range details {
		if err := template.ValidDetailKey(k); err != nil {
			return err
		}
	}
	return r.write(ctx, func(tx *sql.Tx) error {
		if err := r.lock(ctx, tx, id); err != nil {
			return err
		}
		for _, k := range slices.Sorted(maps.Keys(details)) {
			_, err := tx.ExecContext(ctx, r.q(`INSERT INTO template_details (template_id, key, value) VALUES (?, ?, ?)
				ON CONFLICT (template_id, key) DO UPDATE SET value = excluded.value`), id, k, details[k])
			if err != nil {
				return r.dbError(err, "set detail %q of template %d", k, id)
			}
		}
		return nil
	})
}

// RemoveDetail removes key from the details of template id; ErrNotFound
// when it has no such key.
func (r *Repo) RemoveDetail(ctx context.Context, id template.ID, key string) error {
	return r.write(ctx, func(tx *sql.Tx) error {
		if err := r.lock(ctx, tx, id); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, r.q(`DELETE FROM template_details WHERE template_id = ? AND key = ?`), id, key)
		if err != nil {
			return r.dbError(err, "remove detail %q of template %d", key, id)
		}
		if n, err := res.RowsAffected(); err != nil {
			return r.dbError(err, "remove detail %q of template %d", key, id)
		} else if n == 0 {
			return fmt.Errorf("%w: template %d has no detail %q", template.ErrNotFound, id, key)
		}
		return nil
	})
}
