package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"github.com/gaas-io/gaas/gaas"
)

// Leases share periodic work among processes on one database: a lease
// names a piece of work, and whoever holds it does that piece while
// others wait. A lease is held until a time of the store's clock
// (Options.Now); its holder renews it, and a holder that dies loses it
// when that time passes, so another takes it over within its TTL.
//
// Every change is one statement whose condition the database decides, so
// that two processes, on one PostgreSQL or one SQLite file, never both
// hold a lease: an INSERT that, when the lease exists, updates it only if
// the caller holds it already or its time has run out. On PostgreSQL the
// row's lock orders racing statements, and the second sees what the first
// wrote; SQLite has one writer.
//
// Times come from each process's clock, so the clocks of processes
// sharing a database must agree to well within a TTL.
type Leases struct{ db *DB }

// acquireLeaseSQL takes or renews lease name for holder until expires_at,
// when it is free, held by holder, or held until at or before now. It
// returns the lease's holder when the caller got it, and no row when not.
const acquireLeaseSQL = "INSERT INTO leases (name, holder, expires_at, updated_at) VALUES (?, ?, ?, ?)" +
	" ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at, updated_at = excluded.updated_at" +
	" WHERE leases.holder = excluded.holder OR leases.expires_at <= ? RETURNING holder"

// Acquire takes lease name for holder for ttl from now, or renews it when
// holder holds it already, and reports whether holder holds it now. It
// does not wait: a lease another holds is false.
func (l *Leases) Acquire(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	switch {
	case name == "" || holder == "":
		return false, fmt.Errorf("store: acquire lease: %w", gaas.Invalid("name", "a lease and its holder must be named"))
	case ttl <= 0:
		return false, fmt.Errorf("store: acquire lease %s: %w", name, gaas.Invalid("ttl", "must be positive"))
	}
	now := l.db.timestamp()
	held := false
	err := l.db.tx(ctx, func(tx bun.Tx) error {
		var got string
		err := query(ctx, tx, &got, acquireLeaseSQL, name, holder, now.Add(ttl), now, now)
		if errors.Is(mapErr(err), gaas.ErrNotFound) {
			held = false
			return nil
		}
		held = err == nil
		return err
	})
	if err != nil {
		return false, fmt.Errorf("store: acquire lease %s: %w", name, mapErr(err))
	}
	return held, nil
}

// Release gives up lease name if holder holds it, so that another may take
// it at once rather than when it runs out. Releasing a lease one does not
// hold changes nothing.
func (l *Leases) Release(ctx context.Context, name, holder string) error {
	err := l.db.tx(ctx, func(tx bun.Tx) error {
		_, err := exec(ctx, tx, "DELETE FROM leases WHERE name = ? AND holder = ?", name, holder)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: release lease %s: %w", name, mapErr(err))
	}
	return nil
}

// Upkeep is the work that keeps the store in step with time, which no
// user asks for: letting ended allocations expire (ExpireEnded) and
// cancelling stale reservations (CancelStale). It acts as the system and
// checks no caller; gaasd's background worker calls it, under Leases.
type Upkeep struct{ db *DB }

// Holder is who holds lease name now, or "" when no one does.
func (l *Leases) Holder(ctx context.Context, name string) (string, error) {
	var holder string
	err := query(ctx, l.db.r, &holder, "SELECT holder FROM leases WHERE name = ? AND expires_at > ?", name, l.db.timestamp())
	switch err = mapErr(err); {
	case errors.Is(err, gaas.ErrNotFound):
		return "", nil
	case err != nil:
		return "", fmt.Errorf("store: lease %s: %w", name, err)
	}
	return holder, nil
}
