package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/gaas-io/gaas/gaas"
)

// ledgerActor is who made a ledger entry: a user, or the system under a
// name. Exactly one is set; the database refuses anything else.
type ledgerActor struct {
	ActorID     *int64  `bun:"actor_id"`
	ActorSystem *string `bun:"actor_system"`
}

// actor is the ledgerActor of p.
func actor(p gaas.Principal) ledgerActor {
	if p.IsSystem() {
		return ledgerActor{ActorSystem: &p.System}
	}
	return ledgerActor{ActorID: &p.UserID}
}

// byUser is the ledgerActor of user id, who acts as themselves.
func byUser(id int64) ledgerActor { return ledgerActor{ActorID: &id} }

type ledgerRow struct {
	ID     int64  `bun:"id"`
	UserID int64  `bun:"user_id"`
	JobID  *int64 `bun:"job_id"`
	ledgerActor
	Kind      string    `bun:"kind"`
	Delta     int64     `bun:"delta"`
	Balance   int64     `bun:"balance"`
	Reason    string    `bun:"reason"`
	CreatedAt time.Time `bun:"created_at"`
}

func (r *ledgerRow) entry() gaas.LedgerEntry {
	e := gaas.LedgerEntry{
		ID: r.ID, UserID: r.UserID, JobID: r.JobID,
		Kind: gaas.LedgerKind(r.Kind), Delta: gaas.Hours(r.Delta), Balance: gaas.Hours(r.Balance),
		Reason: r.Reason, CreatedAt: r.CreatedAt.UTC(),
	}
	if r.ActorID != nil {
		e.ActorID = *r.ActorID
	}
	if r.ActorSystem != nil {
		e.ActorSystem = *r.ActorSystem
	}
	return e
}

// appendLedger records one change of a balance. It must run in the
// transaction that made the change.
func appendLedger(ctx context.Context, idb bun.IDB, e ledgerRow) error {
	_, err := exec(ctx, idb,
		"INSERT INTO ledger (user_id, job_id, actor_id, actor_system, kind, delta, balance, reason, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
		e.UserID, e.JobID, e.ActorID, e.ActorSystem, e.Kind, e.Delta, e.Balance, e.Reason, e.CreatedAt)
	return err
}

// addBalance adds delta to a balance unconditionally and returns the new
// balance. A refund uses it: it returns what a charge took, and cannot
// raise the balance above gaas.MaxHours because no admin change may leave
// the balance and the user's reservations above it together (reserved).
func addBalance(ctx context.Context, idb bun.IDB, userID int64, delta gaas.Hours) (gaas.Hours, error) {
	var bal int64
	err := query(ctx, idb, &bal, "UPDATE users SET balance = balance + ? WHERE id = ? RETURNING balance", int64(delta), userID)
	return gaas.Hours(bal), mapErr(err)
}

// reserved is, in a statement on users, the hours the user's unfinished
// jobs hold: their estimates, each of which a refund may give back whole.
// An admin change keeps the balance plus these at most gaas.MaxHours, so
// that no later refund can take the balance above it; a charge moves hours
// from the balance to a reservation and a refund back, so neither raises
// the sum. The statuses are the gaas lifecycle's, not values of a request.
var reserved = "(SELECT CAST(COALESCE(SUM(estimated), 0) AS BIGINT) FROM jobs WHERE jobs.user_id = users.id AND jobs.status IN (" + unfinishedStatuses() + "))"

func unfinishedStatuses() string {
	var names []string
	for _, s := range gaas.Statuses() {
		if !s.Final() {
			names = append(names, "'"+string(s)+"'")
		}
	}
	return strings.Join(names, ", ")
}

// moveBalance changes a balance by delta, which may be negative, or to
// exactly *to when to is not nil (a set; delta is then ignored), only if
// it stays at zero or more and, when it rises or is set, the new balance
// plus the user's reservations (reserved) stay at gaas.MaxHours or less.
// The database decides, in one statement, and the new balance is
// returned. When a bound stops it, a fall below zero is a
// *gaas.QuotaError and the rest a *gaas.ValidationError on field.
func moveBalance(ctx context.Context, idb bun.IDB, userID int64, delta gaas.Hours, to *gaas.Hours, field string) (gaas.Hours, error) {
	newBalance, arg := "balance + ?", int64(delta)
	if to != nil {
		newBalance, arg = "?", int64(*to)
	}
	q, args := "UPDATE users SET balance = "+newBalance+" WHERE id = ? AND ", []any{arg, userID, arg}
	if to == nil && delta <= 0 {
		q += newBalance + " >= 0"
	} else {
		q += newBalance + " + " + reserved + " <= ?"
		args = append(args, int64(gaas.MaxHours))
	}
	var bal int64
	err := query(ctx, idb, &bal, q+" RETURNING balance", args...)
	if err = mapErr(err); !errors.Is(err, gaas.ErrNotFound) {
		return gaas.Hours(bal), err
	}
	// Nothing changed: the user is gone, or a bound held.
	var now struct {
		Balance  int64 `bun:"balance"`
		Reserved int64 `bun:"reserved"`
	}
	if err := query(ctx, idb, &now, "SELECT balance, "+reserved+" AS reserved FROM users WHERE id = ?", userID); err != nil {
		return 0, mapErr(err)
	}
	want := gaas.Hours(now.Balance) + delta
	if to != nil {
		want = *to
	}
	if want < 0 {
		return 0, &gaas.QuotaError{Asked: -delta, Remaining: gaas.Hours(now.Balance)}
	}
	if now.Reserved == 0 {
		return 0, gaas.Invalid(field, "would make the balance %s hours, above the maximum of %s", want, gaas.MaxHours)
	}
	return 0, gaas.Invalid(field, "would make the balance %s hours, which with the %s hours that unfinished jobs hold "+
		"(refunded if they are rejected or cancelled) is above the maximum of %s", want, gaas.Hours(now.Reserved), gaas.MaxHours)
}

// QuotaService implements gaas.Quota on the store.
type QuotaService struct{ db *DB }

var _ gaas.Quota = (*QuotaService)(nil)

// Balance implements gaas.Quota.
func (s *QuotaService) Balance(ctx context.Context, caller int64, req gaas.BalanceRequest) (gaas.Hours, error) {
	u, err := loadVisibleUser(ctx, s.db.r, caller, req.UserID)
	if err != nil {
		return 0, fmt.Errorf("store: balance: %w", err)
	}
	return gaas.Hours(u.Balance), nil
}

// Set implements gaas.Quota.
func (s *QuotaService) Set(ctx context.Context, caller int64, req gaas.SetBalanceRequest) (gaas.User, error) {
	return s.setBy(ctx, gaas.Principal{UserID: caller}, req)
}

// setBy is Set for a principal, which may be the system (gaas.System): the
// ledger entry names it as the actor.
func (s *QuotaService) setBy(ctx context.Context, p gaas.Principal, req gaas.SetBalanceRequest) (gaas.User, error) {
	balance := req.Balance
	if balance < 0 || balance > gaas.MaxHours {
		return gaas.User{}, fmt.Errorf("store: set quota: %w", gaas.Invalid("balance", "must be between 0 and %s", gaas.MaxHours))
	}
	return s.change(ctx, p, req.UserID, gaas.LedgerSet, req.Reason, func(tx bun.Tx, u userRow) (gaas.Hours, error) {
		_, err := moveBalance(ctx, tx, u.ID, 0, &balance, "balance")
		return balance - gaas.Hours(u.Balance), err
	})
}

// Grant implements gaas.Quota.
func (s *QuotaService) Grant(ctx context.Context, caller int64, req gaas.GrantRequest) (gaas.User, error) {
	return s.grantBy(ctx, gaas.Principal{UserID: caller}, req)
}

// grantBy is Grant for a principal, which may be the system (gaas.System): the
// ledger entry names it as the actor.
func (s *QuotaService) grantBy(ctx context.Context, p gaas.Principal, req gaas.GrantRequest) (gaas.User, error) {
	delta := req.Delta
	if delta == 0 || delta > gaas.MaxHours || delta < -gaas.MaxHours {
		return gaas.User{}, fmt.Errorf("store: grant: %w", gaas.Invalid("delta", "must be non-zero and at most %s in size", gaas.MaxHours))
	}
	return s.change(ctx, p, req.UserID, gaas.LedgerGrant, req.Reason, func(tx bun.Tx, u userRow) (gaas.Hours, error) {
		_, err := moveBalance(ctx, tx, u.ID, delta, nil, "delta")
		return delta, err
	})
}

// quotaActions are the actions of the policy that change a balance, by the
// kind of entry they record.
var quotaActions = map[gaas.LedgerKind]gaas.Action{
	gaas.LedgerSet:   gaas.ActionSetBalance,
	gaas.LedgerGrant: gaas.ActionGrantHours,
}

// change runs a caller's change of a balance, which the policy must allow,
// and its ledger entry in one transaction; apply makes the change and
// returns its delta.
func (s *QuotaService) change(ctx context.Context, p gaas.Principal, userID int64, kind gaas.LedgerKind, reason string,
	apply func(tx bun.Tx, u userRow) (gaas.Hours, error)) (gaas.User, error) {
	if err := gaas.ValidateReason(reason); err != nil {
		return gaas.User{}, fmt.Errorf("store: %s quota: %w", kind, err)
	}
	var out userRow
	err := s.db.tx(ctx, func(tx bun.Tx) error {
		if err := allow(ctx, tx, p, quotaActions[kind], userID); err != nil {
			return err
		}
		// The row stays locked to the end, so that a Set computes its delta
		// from the balance it replaces.
		u, err := loadUserLocked(ctx, tx, userID, s.db.lockRow)
		if err != nil {
			return err
		}
		delta, err := apply(tx, u)
		if err != nil {
			return err
		}
		u.Balance += int64(delta)
		out = u
		return appendLedger(ctx, tx, ledgerRow{
			UserID: userID, ledgerActor: actor(p), Kind: string(kind), Delta: int64(delta),
			Balance: u.Balance, Reason: reason, CreatedAt: s.db.timestamp(),
		})
	})
	if err != nil {
		return gaas.User{}, fmt.Errorf("store: %s quota of user %d: %w", kind, userID, mapErr(err))
	}
	return out.user(), nil
}

// Ledger implements gaas.Quota.
func (s *QuotaService) Ledger(ctx context.Context, caller int64, req gaas.LedgerRequest) (gaas.LedgerPage, error) {
	return s.ledgerBy(ctx, gaas.Principal{UserID: caller}, req)
}

// ledgerBy is Ledger for a principal, which may be the system (gaas.System).
func (s *QuotaService) ledgerBy(ctx context.Context, p gaas.Principal, req gaas.LedgerRequest) (gaas.LedgerPage, error) {
	userID := req.UserID
	limit, after, err := readPage(req.Page, 0)
	if err != nil {
		return gaas.LedgerPage{}, fmt.Errorf("store: ledger: %w", err)
	}
	if _, err := visibleUser(ctx, s.db.r, p, userID); err != nil {
		return gaas.LedgerPage{}, fmt.Errorf("store: ledger: %w", err)
	}
	var rows []ledgerRow
	if err := query(ctx, s.db.r, &rows, "SELECT id, user_id, job_id, actor_id, actor_system, kind, delta, balance, reason, created_at FROM ledger WHERE user_id = ? AND id > ? ORDER BY id LIMIT ?",
		userID, after, limit+1); err != nil {
		return gaas.LedgerPage{}, fmt.Errorf("store: ledger: %w", mapErr(err))
	}
	var out gaas.LedgerPage
	rows, out.NextCursor = cutPage(rows, limit, func(r ledgerRow) int64 { return r.ID })
	out.Items = make([]gaas.LedgerEntry, len(rows))
	for i := range rows {
		out.Items[i] = rows[i].entry()
	}
	return out, nil
}
