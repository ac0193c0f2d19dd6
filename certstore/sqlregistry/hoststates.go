package sqlregistry

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/directdl/directdl/certstore"
	"github.com/directdl/directdl/internal/sqlstore"
)

// HostStates implements certstore.Database.
func (d *DB) HostStates(ctx context.Context, cert certstore.ID, host certstore.HostID) ([]certstore.HostState, error) {
	var (
		where []string
		args  []any
	)
	if cert != 0 {
		where = append(where, "cert_id = ?")
		args = append(args, cert)
	}
	if host != 0 {
		where = append(where, "host_id = ?")
		args = append(args, host)
	}
	q := `SELECT cert_id, host_id, revoked, status, error, updated FROM host_states`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += ` ORDER BY cert_id, host_id`

	var out []certstore.HostState
	err := d.read(ctx, func(tx *sql.Tx) error {
		out = out[:0]
		rows, err := tx.QueryContext(ctx, d.q(q), args...)
		if err != nil {
			return d.dbError(err, "list host states")
		}
		for rows.Next() {
			var (
				s       certstore.HostState
				status  string
				updated sql.NullInt64
			)
			if err := rows.Scan(&s.Cert, &s.Host, &s.Revoked, &status, &s.Error, &updated); err != nil {
				rows.Close()
				return d.dbError(err, "read a host state")
			}
			s.Status, s.Updated = certstore.Status(status), fromNanos(updated)
			out = append(out, s)
		}
		if err := closeRows(rows); err != nil {
			return d.dbError(err, "list host states")
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// PutHostState implements certstore.Database. The certificate's foreign
// key, not a look-up before the write, refuses an unknown certificate, so
// that the check and the write are one statement.
func (d *DB) PutHostState(ctx context.Context, s certstore.HostState) error {
	updated, err := nanos(fmt.Sprintf("update time of certificate %d on host %d", s.Cert, s.Host), s.Updated)
	if err != nil {
		return err
	}
	return d.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, d.q(`INSERT INTO host_states (cert_id, host_id, revoked, status, error, updated)
			VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (cert_id, host_id) DO UPDATE SET
				revoked = excluded.revoked, status = excluded.status, error = excluded.error, updated = excluded.updated`),
			s.Cert, s.Host, s.Revoked, string(s.Status), s.Error, updated)
		if sqlstore.IsForeignKeyViolation(err) {
			return notFound(s.Cert)
		}
		if err != nil {
			return d.dbError(err, "record the state of certificate %d on host %d", s.Cert, s.Host)
		}
		return nil
	})
}
