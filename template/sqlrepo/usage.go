package sqlrepo

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"

	"github.com/directdl/directdl/template"
)

// AddUsage records that u.Volume uses template u.Template in u.Zone, which
// must offer it (ErrNotFound). Recording a usage twice is not an error.
func (r *Repo) AddUsage(ctx context.Context, u template.Usage) error {
	if u.Volume == "" {
		return fmt.Errorf("%w: usage of template %d names no volume", template.ErrInvalid, u.Template)
	}
	return r.write(ctx, func(tx *sql.Tx) error {
		if err := r.lock(ctx, tx, u.Template); err != nil {
			return err
		}
		if err := r.requireZone(ctx, tx, u.Template, u.Zone); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, r.q(`INSERT INTO usages (template_id, zone_id, volume) VALUES (?, ?, ?)
			ON CONFLICT (template_id, zone_id, volume) DO NOTHING`), u.Template, u.Zone, u.Volume)
		if err != nil {
			return r.dbError(err, "record volume %q using template %d in zone %d", u.Volume, u.Template, u.Zone)
		}
		return nil
	})
}

// RemoveUsage removes a usage; ErrNotFound when it is not recorded.
func (r *Repo) RemoveUsage(ctx context.Context, u template.Usage) error {
	return r.write(ctx, func(tx *sql.Tx) error {
		if err := r.lock(ctx, tx, u.Template); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, r.q(`DELETE FROM usages WHERE template_id = ? AND zone_id = ? AND volume = ?`),
			u.Template, u.Zone, u.Volume)
		if err != nil {
			return r.dbError(err, "remove volume %q using template %d in zone %d", u.Volume, u.Template, u.Zone)
		}
		if n, err := res.RowsAffected(); err != nil {
			return r.dbError(err, "remove volume %q using template %d in zone %d", u.Volume, u.Template, u.Zone)
		} else if n == 0 {
			return fmt.Errorf("%w: volume %q does not use template %d in zone %d", template.ErrNotFound, u.Volume, u.Template, u.Zone)
		}
		return nil
	})
}

// Usages returns the usages of template id, by zone, then volume;
// ErrNotFound for a template unknown or removed.
func (r *Repo) Usages(ctx context.Context, id template.ID) ([]template.Usage, error) {
	var us []template.Usage
	err := r.read(ctx, func(tx *sql.Tx) error {
		us = nil
		if err := r.active(ctx, tx, id); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, r.q(`SELECT zone_id, volume FROM usages WHERE template_id = ? `), id)
		if err != nil {
			return r.dbError(err, "read usages of template %d", id)
		}
		for rows.Next() {
			u := template.Usage{Template: id}
			if err := rows.Scan(&u.Zone, &u.Volume); err != nil {
				rows.Close()
				return r.dbError(err, "read usages of template %d", id)
			}
			us = append(us, u)
		}
		if err := closeRows(rows); err != nil {
			return r.dbError(err, "read usages of template %d", id)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	// Sorted here, not by ORDER BY: PostgreSQL would order volumes by the
	// database's collation, which need not be byte order.
	slices.SortFunc(us, func(a, b template.Usage) int {
		return cmp.Or(cmp.Compare(a.Zone, b.Zone), strings.Compare(a.Volume, b.Volume))
	})
	return us, nil
}
