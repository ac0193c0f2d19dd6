package sqlregistry

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/directdl/directdl/certstore"
	"github.com/directdl/directdl/internal/sqlstore"
)

// errAliasRace is what an AddCertificate transaction returns when the
// unique index refused an alias that the check before the insert found
// free: another transaction took it and committed in between.
var errAliasRace = errors.New("sqlregistry: entry alias taken by a concurrent transaction")

// maxAliasRaces bounds how many times AddCertificate starts again after
// errAliasRace. Each new attempt's check sees the certificate that won and
// names it; only a certificate revoked and re-added in between, again and
// again, could use them up.
const maxAliasRaces = 5

// entryAlias is one row of certificate_aliases.
type entryAlias struct {
	entry      int // 1 for Alias, 2 for Alias-2, ...
	alias, key string
}

// AddCertificate implements certstore.Database. The chain is stored as PEM
// and parsed back before it is, so that what is stored reads back; an
// empty or unparsable chain entry is refused with an error wrapping
// certstore.ErrInvalidCertificate. c.Hosts is not stored.
func (d *DB) AddCertificate(ctx context.Context, c certstore.Certificate) (certstore.Certificate, error) {
	if err := ctx.Err(); err != nil {
		return certstore.Certificate{}, err
	}
	c.ID = 0 // messages name the certificate before it has its ID
	chain, err := encodeChain(c)
	if err != nil {
		return certstore.Certificate{}, err
	}
	created, err := nanos("created time of "+c.String(), c.Created)
	if err != nil {
		return certstore.Certificate{}, err
	}
	revoked, err := nanos("revocation time of "+c.String(), c.Revoked)
	if err != nil {
		return certstore.Certificate{}, err
	}
	hvKey := foldKey(c.Hypervisor)
	var aliases []entryAlias
	for i, a := range c.EntryAliases() {
		aliases = append(aliases, entryAlias{entry: i + 1, alias: a, key: strings.ToLower(a)})
	}
	// Rows in one order in every transaction, so that two uploads waiting
	// on each other's uncommitted index entries on PostgreSQL wait in one
	// direction rather than deadlock.
	slices.SortFunc(aliases, func(a, b entryAlias) int { return cmp.Compare(a.key, b.key) })

	for attempt := 1; ; attempt++ {
		err = d.write(ctx, func(tx *sql.Tx) error {
			if err := d.checkAliasFree(ctx, tx, c, hvKey, aliases); err != nil {
				return err
			}
			err := tx.QueryRowContext(ctx, d.q(`INSERT INTO certificates
				(alias, zone_id, host_id, hypervisor, hypervisor_key, chain, created, revoked)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`),
				c.Alias, c.Zone, c.Host, c.Hypervisor, hvKey, chain, created, revoked,
			).Scan(&c.ID)
			if err != nil {
				return d.dbError(err, "add %s", c)
			}
			if len(aliases) == 0 {
				return nil
			}
			args := make([]any, 0, 7*len(aliases))
			for _, a := range aliases {
				args = append(args, c.ID, a.entry, a.alias, a.key, c.Zone, hvKey, c.Active())
			}
			row := "(?, ?, ?, ?, ?, ?, ?)"
			_, err = tx.ExecContext(ctx, d.q(`INSERT INTO certificate_aliases
				(cert_id, entry, alias, alias_key, zone_id, hypervisor_key, active) VALUES `+
				strings.Repeat(row+", ", len(aliases)-1)+row), args...)
			if sqlstore.IsUniqueViolation(err) {
				return errAliasRace
			}
			if err != nil {
				return d.dbError(err, "record the entry aliases of %s", c)
			}
			return nil
		})
		if !errors.Is(err, errAliasRace) {
			break
		}
		if attempt == maxAliasRaces {
			return certstore.Certificate{}, fmt.Errorf("%w: zone %d: other %s certificates took one of the aliases %q while %s was added, %d times; try again",
				certstore.ErrDuplicateAlias, c.Zone, c.Hypervisor, c.EntryAliases(), c, maxAliasRaces)
		}
	}
	if err != nil {
		return certstore.Certificate{}, err
	}
	c.Hosts = nil
	return c, nil
}

// encodeChain returns c's chain as the PEM stored, after checking that it
// parses back into the same certificates.
func encodeChain(c certstore.Certificate) (string, error) {
	for i, x := range c.Chain {
		if x == nil || len(x.Raw) == 0 {
			return "", fmt.Errorf("%w: certificate %d of the chain of %s is empty", certstore.ErrInvalidCertificate, i+1, c)
		}
	}
	if len(c.Chain) == 0 {
		return "", nil
	}
	p := certstore.EncodePEM(c.Chain...)
	back, err := certstore.ParseCertificates(p)
	if err != nil {
		return "", fmt.Errorf("sqlregistry: chain of %s: %w", c, err)
	}
	if len(back) != len(c.Chain) {
		return "", fmt.Errorf("%w: chain of %s: %d certificates read back from %d", certstore.ErrInvalidCertificate, c, len(back), len(c.Chain))
	}
	for i := range back {
		if !bytes.Equal(back[i].Raw, c.Chain[i].Raw) {
			return "", fmt.Errorf("%w: certificate %d of the chain of %s does not read back the same: it has data after its end",
				certstore.ErrInvalidCertificate, i+1, c)
		}
	}
	return string(p), nil
}

// checkAliasFree fails with certstore.DuplicateAliasError when an active
// certificate of c's zone and hypervisor holds one of c's entry aliases,
// naming it as MemoryDB does. The unique index catches what this misses on
// PostgreSQL: a certificate committed after this query.
func (d *DB) checkAliasFree(ctx context.Context, tx *sql.Tx, c certstore.Certificate, hvKey string, aliases []entryAlias) error {
	if len(aliases) == 0 {
		return nil
	}
	args := []any{c.Zone, hvKey}
	for _, a := range aliases {
		args = append(args, a.key)
	}
	var (
		o     certstore.Certificate
		alias string
	)
	err := tx.QueryRowContext(ctx, d.q(`SELECT c.id, c.alias, c.zone_id, c.host_id, c.hypervisor, a.alias
		FROM certificate_aliases a JOIN certificates c ON c.id = a.cert_id
		WHERE a.active AND a.zone_id = ? AND a.hypervisor_key = ? AND a.alias_key IN (?`+strings.Repeat(", ?", len(aliases)-1)+`)
		ORDER BY a.cert_id, a.entry LIMIT 1`), args...).Scan(&o.ID, &o.Alias, &o.Zone, &o.Host, &o.Hypervisor, &alias)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil
	case err != nil:
		return d.dbError(err, "look up the aliases of %s", c)
	}
	return certstore.DuplicateAliasError(c, o, alias)
}

// Certificates implements certstore.Database.
func (d *DB) Certificates(ctx context.Context, f certstore.Filter) ([]certstore.Certificate, error) {
	var (
		where []string
		args  []any
	)
	add := func(cond string, arg any) {
		where = append(where, cond)
		args = append(args, arg)
	}
	if f.ID != 0 {
		add("id = ?", f.ID)
	}
	if f.Zone != 0 {
		add("zone_id = ?", f.Zone)
	}
	if f.Host != 0 {
		add("host_id = ?", f.Host)
	}
	if f.Alias != "" {
		add("alias = ?", f.Alias)
	}
	if f.Hypervisor != "" {
		add("hypervisor_key = ?", foldKey(f.Hypervisor))
	}
	if !f.IncludeRevoked {
		where = append(where, "revoked IS NULL")
	}
	q := `SELECT id, alias, zone_id, host_id, hypervisor, chain, created, revoked FROM certificates`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += ` ORDER BY id`

	var out []certstore.Certificate
	err := d.read(ctx, func(tx *sql.Tx) error {
		out = out[:0]
		rows, err := tx.QueryContext(ctx, d.q(q), args...)
		if err != nil {
			return d.dbError(err, "list certificates")
		}
		for rows.Next() {
			c, err := d.scanCertificate(rows)
			if err != nil {
				rows.Close()
				return err
			}
			out = append(out, c)
		}
		if err := closeRows(rows); err != nil {
			return d.dbError(err, "list certificates")
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (d *DB) scanCertificate(rows *sql.Rows) (certstore.Certificate, error) {
	var (
		c                certstore.Certificate
		chain            string
		created, revoked sql.NullInt64
	)
	if err := rows.Scan(&c.ID, &c.Alias, &c.Zone, &c.Host, &c.Hypervisor, &chain, &created, &revoked); err != nil {
		return c, d.dbError(err, "read a certificate")
	}
	c.Created, c.Revoked = fromNanos(created), fromNanos(revoked)
	if chain != "" {
		var err error
		if c.Chain, err = certstore.ParseCertificates([]byte(chain)); err != nil {
			return c, fmt.Errorf("sqlregistry: stored chain of %s in %s: %w", c, d.db, err)
		}
	}
	return c, nil
}

// RevokeCertificate implements certstore.Database. It also takes the
// certificate's entry aliases out of the unique index, in the same
// transaction, so that an upload may take them again at once. A zero at,
// which would leave the certificate active, changes nothing, as in
// MemoryDB.
func (d *DB) RevokeCertificate(ctx context.Context, id certstore.ID, at time.Time) error {
	revoked, err := nanos(fmt.Sprintf("revocation time of certificate %d", id), at)
	if err != nil {
		return err
	}
	return d.write(ctx, func(tx *sql.Tx) error {
		var was sql.NullInt64
		err := tx.QueryRowContext(ctx, d.q(`SELECT revoked FROM certificates WHERE id = ?`+d.db.ForUpdate()), id).Scan(&was)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return notFound(id)
		case err != nil:
			return d.dbError(err, "look up certificate %d", id)
		case was.Valid || !revoked.Valid:
			return nil
		}
		if _, err := tx.ExecContext(ctx, d.q(`UPDATE certificates SET revoked = ? WHERE id = ?`), revoked, id); err != nil {
			return d.dbError(err, "revoke certificate %d", id)
		}
		if _, err := tx.ExecContext(ctx, d.q(`UPDATE certificate_aliases SET active = ? WHERE cert_id = ?`), false, id); err != nil {
			return d.dbError(err, "release the aliases of certificate %d", id)
		}
		return nil
	})
}
