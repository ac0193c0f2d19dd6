package sqlrepo

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/directdl/directdl/internal/sqlstore"
	"github.com/directdl/directdl/template"
)

// listQuery is a checked ListOptions.
type listQuery struct {
	template.ListOptions
	limit int
}

func checkList(o template.ListOptions) (listQuery, error) {
	q := listQuery{ListOptions: o, limit: o.Limit}
	switch {
	case o.Limit < 0:
		return q, fmt.Errorf("%w: list limit %d; use 0 for the default of %d", template.ErrInvalid, o.Limit, template.DefaultLimit)
	case o.Limit == 0:
		q.limit = template.DefaultLimit
	case o.Limit > template.MaxLimit:
		q.limit = template.MaxLimit
	}
	if o.After < 0 {
		return q, fmt.Errorf("%w: list after ID %d; use 0 for the first page", template.ErrInvalid, o.After)
	}
	if o.Format != "" {
		f, err := template.ParseFormat(string(o.Format))
		if err != nil {
			return q, err
		}
		q.Format = f
	}
	if o.Type != "" {
		t, err := template.ParseType(string(o.Type))
		if err != nil {
			return q, err
		}
		q.Type = t
	}
	return q, nil
}

// List returns the templates matching o with IDs above o.After, ascending,
// at most o.Limit of them (0: DefaultLimit; above MaxLimit: MaxLimit), with
// their details and zones. The Name filter matches substrings, folding case
// as strings.ToLower does; Format and Type may be in any case. Page.Next is
// the ID of the page's last template when more templates match, zero
// otherwise. A negative Limit or After, or an unknown Format or Type, is
// ErrInvalid.
//
// Pages are found by key (id > After ORDER BY id LIMIT n+1), so a page
// costs the same wherever it starts; with a Zone, the query walks that
// zone's entries of the (zone_id, template_id) index only.
func (r *Repo) List(ctx context.Context, o template.ListOptions) (template.Page, error) {
	q, err := checkList(o)
	if err != nil {
		return template.Page{}, err
	}
	var (
		where []string
		args  []any
		from  string
		order string
	)
	if q.Zone != 0 {
		from = `template_zones z JOIN templates t ON t.id = z.template_id`
		where = append(where, `z.zone_id = ?`, `z.template_id > ?`)
		args = append(args, q.Zone, q.After)
		order = `z.template_id`
	} else {
		from = `templates t`
		where = append(where, `t.id > ?`)
		args = append(args, q.After)
		order = `t.id`
	}
	if !q.IncludeRemoved {
		where = append(where, `t.removed IS NULL`)
	}
	if q.Name != "" {
		// A substring, not a LIKE pattern: '%' and '_' are plain.
		if r.db.Dialect() == sqlstore.Postgres {
			where = append(where, `strpos(t.name_lower, ?) > 0`)
		} else {
			where = append(where, `instr(t.name_lower, ?) > 0`)
		}
		args = append(args, strings.ToLower(q.Name))
	}
	if q.Format != "" {
		where = append(where, `t.format = ?`)
		args = append(args, string(q.Format))
	}
	if q.Type != "" {
		where = append(where, `t.type = ?`)
		args = append(args, string(q.Type))
	}
	if q.DirectDownload != nil {
		where = append(where, `t.direct_download = ?`)
		args = append(args, *q.DirectDownload)
	}
	query := `SELECT ` + templateColumns + ` FROM ` + from + ` WHERE ` + strings.Join(where, ` AND `) +
		` ORDER BY ` + order + ` LIMIT ?`
	args = append(args, q.limit+1)

	var page template.Page
	err = r.read(ctx, func(tx *sql.Tx) error {
		page = template.Page{Templates: []template.Template{}}
		rows, err := tx.QueryContext(ctx, r.q(query), args...)
		if err != nil {
			return r.dbError(err, "list templates")
		}
		for rows.Next() {
			t, err := scanTemplate(rows)
			if err != nil {
				rows.Close()
				return r.dbError(err, "list templates")
			}
			page.Templates = append(page.Templates, t)
		}
		if err := closeRows(rows); err != nil {
			return r.dbError(err, "list templates")
		}
		if len(page.Templates) > q.limit {
			page.Templates = page.Templates[:q.limit]
			page.Next = page.Templates[q.limit-1].ID
		}
		return r.fill(ctx, tx, page.Templates)
	})
	if err != nil {
		return template.Page{}, err
	}
	return page, nil
}
