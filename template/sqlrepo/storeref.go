package sqlrepo

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/directdl/directdl/internal/sqlstore"
	"github.com/directdl/directdl/template"
)

// CreateStoreRef adds ref, with Version 1, in state NotDownloaded when
// ref.State is empty. ref.Kind must be ImageStore or PrimaryPool, ref.Store
// at least 1, the state one of ValidInitial, the progress 0 to 100 and the
// sizes not negative: otherwise ErrInvalid. The zone must offer the
// template (ErrNotFound), and the store must have no ref of it yet
// (ErrConflict). The other fields are stored as given.
func (r *Repo) CreateStoreRef(ctx context.Context, ref template.StoreRef) (template.StoreRef, error) {
	if ref.State == "" {
		ref.State = template.NotDownloaded
	}
	if err := checkNewRef(ref); err != nil {
		return template.StoreRef{}, err
	}
	err := r.write(ctx, func(tx *sql.Tx) error {
		if err := r.lock(ctx, tx, ref.Template); err != nil {
			return err
		}
		if err := r.requireZone(ctx, tx, ref.Template, ref.Zone); err != nil {
			return err
		}
		if old, err := r.storeRef(ctx, tx, ref.Template, ref.Store); err == nil {
			return fmt.Errorf("%w: store %d already has a ref of template %d (in zone %d)", template.ErrConflict, ref.Store, ref.Template, old.Zone)
		} else if !errors.Is(err, template.ErrNotFound) {
			return err
		}
		ref.Version = 1
		ref.Updated = sqlstore.Now()
		_, err := tx.ExecContext(ctx, r.q(`INSERT INTO store_refs
			(template_id, store_id, zone_id, kind, state, progress, error, install_path, size, physical_size, version, updated)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
			ref.Template, ref.Store, ref.Zone, string(ref.Kind), string(ref.State), ref.Progress, ref.Error,
			ref.InstallPath, ref.Size, ref.PhysicalSize, ref.Version, sqlstore.UnixNano(ref.Updated))
		if sqlstore.IsUniqueViolation(err) {
			return fmt.Errorf("%w: store %d already has a ref of template %d", template.ErrConflict, ref.Store, ref.Template)
		}
		if err != nil {
			return r.dbError(err, "create ref of template %d on store %d", ref.Template, ref.Store)
		}
		return nil
	})
	if err != nil {
		return template.StoreRef{}, err
	}
	return ref, nil
}

func checkNewRef(ref template.StoreRef) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: store ref: "+format, append([]any{template.ErrInvalid}, args...)...)
	}
	switch {
	case ref.Store <= 0:
		return bad("store ID %d; store IDs start at 1", ref.Store)
	case ref.Kind != template.ImageStore && ref.Kind != template.PrimaryPool:
		return bad("kind %q; want %q or %q", ref.Kind, template.ImageStore, template.PrimaryPool)
	case !template.ValidInitial(ref.State):
		return bad("a ref cannot start in state %s; start it in %s or %s", ref.State, template.NotDownloaded, template.Bypassed)
	case ref.Progress < 0 || ref.Progress > 100:
		return bad("progress %d is not a percentage", ref.Progress)
	case ref.Size < 0 || ref.PhysicalSize < 0:
		return bad("negative size")
	}
	return nil
}

// UpdateStoreRef replaces the state, progress, error, install path and
// sizes of the ref of template id on store with those of u, if the ref is
// still at version (else a *ConflictError) and template.CheckUpdate allows
// u. The write is conditional on the version (UPDATE ... WHERE version =
// ?), so of two agents that read the same version exactly one succeeds;
// the ref's row is the only one locked.
func (r *Repo) UpdateStoreRef(ctx context.Context, id template.ID, store template.StoreID, version int64, u template.StoreUpdate) (template.StoreRef, error) {
	var ref template.StoreRef
	err := r.write(ctx, func(tx *sql.Tx) error {
		var err error
		// Removing a template deletes its refs, so a ref found belongs to
		// an active template.
		ref, err = r.storeRef(ctx, tx, id, store)
		if err != nil {
			return err
		}
		if ref.Version != version {
			return &template.ConflictError{Template: id, Store: store, Have: version, Current: ref.Version}
		}
		if err := template.CheckUpdate(ref, u); err != nil {
			return err
		}
		ref.State, ref.Progress, ref.Error = u.State, u.Progress, u.Error
		ref.InstallPath, ref.Size, ref.PhysicalSize = u.InstallPath, u.Size, u.PhysicalSize
		ref.Version = version + 1
		ref.Updated = sqlstore.Now()
		res, err := tx.ExecContext(ctx, r.q(`UPDATE store_refs
			SET state = ?, progress = ?, error = ?, install_path = ?, size = ?, physical_size = ?, version = ?, updated = ?
			WHERE template_id = ? AND store_id = ? AND version = ?`),
			string(ref.State), ref.Progress, ref.Error, ref.InstallPath, ref.Size, ref.PhysicalSize, ref.Version,
			sqlstore.UnixNano(ref.Updated), id, store, version)
		if err != nil {
			return r.dbError(err, "update ref of template %d on store %d", id, store)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return r.dbError(err, "update ref of template %d on store %d", id, store)
		}
		if n == 0 {
			// PostgreSQL: another transaction updated (or deleted) the row
			// between our read and our write, and committed first.
			cur, err := r.storeRef(ctx, tx, id, store)
			if err != nil {
				return err
			}
			return &template.ConflictError{Template: id, Store: store, Have: version, Current: cur.Version}
		}
		return nil
	})
	if err != nil {
		return template.StoreRef{}, err
	}
	return ref, nil
}

const storeRefColumns = `template_id, store_id, zone_id, kind, state, progress, error, install_path, size, physical_size, version, updated`

func scanStoreRef(s scanner) (template.StoreRef, error) {
	var (
		ref         template.StoreRef
		kind, state string
		updated     int64
	)
	err := s.Scan(&ref.Template, &ref.Store, &ref.Zone, &kind, &state, &ref.Progress, &ref.Error,
		&ref.InstallPath, &ref.Size, &ref.PhysicalSize, &ref.Version, &updated)
	ref.Kind, ref.State = template.StoreKind(kind), template.DownloadState(state)
	ref.Updated = sqlstore.FromUnixNano(updated)
	return ref, err
}

func refNotFound(id template.ID, store template.StoreID) error {
	return fmt.Errorf("%w: store %d has no ref of template %d", template.ErrNotFound, store, id)
}

// storeRef reads the ref of template id on store.
func (r *Repo) storeRef(ctx context.Context, tx *sql.Tx, id template.ID, store template.StoreID) (template.StoreRef, error) {
	ref, err := scanStoreRef(tx.QueryRowContext(ctx, r.q(`SELECT `+storeRefColumns+` FROM store_refs WHERE template_id = ? AND store_id = ?`), id, store))
	if errors.Is(err, sql.ErrNoRows) {
		return ref, refNotFound(id, store)
	}
	if err != nil {
		return ref, r.dbError(err, "read ref of template %d on store %d", id, store)
	}
	return ref, nil
}

// StoreRef returns the ref of template id on store; ErrNotFound for a
// store without one, or a template unknown or removed.
func (r *Repo) StoreRef(ctx context.Context, id template.ID, store template.StoreID) (template.StoreRef, error) {
	var ref template.StoreRef
	err := r.read(ctx, func(tx *sql.Tx) error {
		var err error
		ref, err = r.storeRef(ctx, tx, id, store)
		return err
	})
	if err != nil {
		return template.StoreRef{}, err
	}
	return ref, nil
}

// StoreRefs returns the refs of template id, by ascending store ID;
// ErrNotFound for a template unknown or removed.
func (r *Repo) StoreRefs(ctx context.Context, id template.ID) ([]template.StoreRef, error) {
	var refs []template.StoreRef
	err := r.read(ctx, func(tx *sql.Tx) error {
		refs = nil
		if err := r.active(ctx, tx, id); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, r.q(`SELECT `+storeRefColumns+` FROM store_refs WHERE template_id = ? ORDER BY store_id`), id)
		if err != nil {
			return r.dbError(err, "read refs of template %d", id)
		}
		for rows.Next() {
			ref, err := scanStoreRef(rows)
			if err != nil {
				rows.Close()
				return r.dbError(err, "read refs of template %d", id)
			}
			refs = append(refs, ref)
		}
		if err := closeRows(rows); err != nil {
			return r.dbError(err, "read refs of template %d", id)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return refs, nil
}
