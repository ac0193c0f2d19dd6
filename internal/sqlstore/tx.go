package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"time"
)

// MaxAttempts is how many times InTx and InReadTx run a transaction whose
// database asked for a retry before they give up and return its error.
const MaxAttempts = 10

// Backoff between attempts: it starts at minBackoff and doubles up to
// maxBackoff, each wait drawn at random between half and all of it.
const (
	minBackoff = 2 * time.Millisecond
	maxBackoff = 250 * time.Millisecond
)

// InTx runs fn in a write transaction and commits it, or rolls it back when
// fn returns an error or panics. When the database reports a transient
// conflict (IsRetryable), the whole transaction, fn included, runs again
// after a backoff, up to MaxAttempts times; fn must therefore not change
// state outside the transaction, or must do it idempotently.
//
// On SQLite the transaction starts with BEGIN IMMEDIATE, after this
// process's other write transactions on db; on PostgreSQL it runs at READ
// COMMITTED, and fn locks what it must read stably (DB.ForUpdate). fn must
// use tx, not db, for every query: the pool may be exhausted by the other
// transactions waiting for the lock this one holds.
func InTx(ctx context.Context, db *DB, fn func(tx *sql.Tx) error) error {
	return run(ctx, db, false, fn)
}

// InReadTx runs fn in a read-only transaction that sees one snapshot of the
// database (SQLite: a deferred transaction in WAL mode; PostgreSQL:
// REPEATABLE READ READ ONLY), retrying like InTx.
func InReadTx(ctx context.Context, db *DB, fn func(tx *sql.Tx) error) error {
	return run(ctx, db, true, fn)
}

func run(ctx context.Context, db *DB, readOnly bool, fn func(tx *sql.Tx) error) error {
	var err error
	for attempt := 1; ; attempt++ {
		err = once(ctx, db, readOnly, fn)
		if err == nil || !IsRetryable(err) || attempt >= MaxAttempts {
			break
		}
		if werr := sleep(ctx, backoff(attempt)); werr != nil {
			return fmt.Errorf("%w (while retrying after: %v)", werr, err)
		}
	}
	if err != nil && IsRetryable(err) {
		return fmt.Errorf("sqlstore: %s: transaction still conflicting after %d attempts: %w", db.name, MaxAttempts, err)
	}
	return err
}

func once(ctx context.Context, db *DB, readOnly bool, fn func(tx *sql.Tx) error) (err error) {
	if !readOnly && db.writeSem != nil {
		select {
		case db.writeSem <- struct{}{}:
			defer func() { <-db.writeSem }()
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	opts := &sql.TxOptions{ReadOnly: readOnly}
	if readOnly && db.dialect == Postgres {
		opts.Isolation = sql.LevelRepeatableRead
	}
	tx, err := db.db.BeginTx(ctx, opts)
	if err != nil {
		return fmt.Errorf("sqlstore: %s: begin: %w", db.name, err)
	}
	committed := false
	defer func() {
		if !committed {
			// The error of fn (or the panic) is what matters; a failed
			// rollback leaves nothing behind, since the connection is
			// discarded.
			_ = tx.Rollback()
		}
	}()
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlstore: %s: commit: %w", db.name, err)
	}
	committed = true
	return nil
}

func backoff(attempt int) time.Duration {
	d := minBackoff << min(attempt-1, 16)
	if d > maxBackoff || d <= 0 {
		d = maxBackoff
	}
	return d/2 + rand.N(d/2+1)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
