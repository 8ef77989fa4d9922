package store

import (
	"context"
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

// bySystem is the ledgerActor of the system acting under name.
func bySystem(name string) ledgerActor { return ledgerActor{ActorSystem: &name} }

type ledgerRow struct {
	ID           int64  `bun:"id"`
	AccountID    int64  `bun:"account_id"`
	AllocationID int64  `bun:"allocation_id"`
	JobID        *int64 `bun:"job_id"`
	MemberID     *int64 `bun:"member_id"`
	ledgerActor
	Kind      string    `bun:"kind"`
	Delta     int64     `bun:"delta"`
	Remaining int64     `bun:"remaining"`
	Balance   int64     `bun:"balance"`
	Reason    string    `bun:"reason"`
	CreatedAt time.Time `bun:"created_at"`
}

const ledgerColumns = "id, account_id, allocation_id, job_id, member_id, actor_id, actor_system, kind, delta, remaining, balance, reason, created_at"

func (r *ledgerRow) entry(userID int64) gaas.LedgerEntry {
	e := gaas.LedgerEntry{
		ID: r.ID, AccountID: r.AccountID, AllocationID: r.AllocationID, UserID: userID, JobID: r.JobID,
		Kind: gaas.LedgerKind(r.Kind), Delta: gaas.Credits(r.Delta), Remaining: gaas.Credits(r.Remaining),
		Balance: gaas.Credits(r.Balance), Reason: r.Reason, CreatedAt: r.CreatedAt.UTC(),
	}
	if r.ActorID != nil {
		e.ActorID = *r.ActorID
	}
	if r.ActorSystem != nil {
		e.ActorSystem = *r.ActorSystem
	}
	if r.MemberID != nil {
		e.MemberID = *r.MemberID
	}
	return e
}

func unfinishedStatuses() string {
	var names []string
	for _, s := range gaas.Statuses() {
		if !s.Final() {
			names = append(names, "'"+string(s)+"'")
		}
	}
	return strings.Join(names, ", ")
}

// QuotaService implements gaas.Quota on the store.
type QuotaService struct{ db *DB }

var _ gaas.Quota = (*QuotaService)(nil)

// Balance implements gaas.Quota.
func (s *QuotaService) Balance(ctx context.Context, caller int64, req gaas.BalanceRequest) (gaas.Credits, error) {
	u, err := loadVisibleUser(ctx, s.db.r, caller, req.UserID)
	if err == nil {
		err = s.db.withBalances(ctx, s.db.r, &u)
	}
	if err != nil {
		return 0, fmt.Errorf("store: balance: %w", err)
	}
	return u.Balance, nil
}

// Set implements gaas.Quota.
func (s *QuotaService) Set(ctx context.Context, caller int64, req gaas.SetBalanceRequest) (gaas.User, error) {
	return s.setBy(ctx, gaas.Principal{UserID: caller}, req)
}

// setBy is Set for a principal, which may be the system (gaas.System): the
// ledger entry names it as the actor.
func (s *QuotaService) setBy(ctx context.Context, p gaas.Principal, req gaas.SetBalanceRequest) (gaas.User, error) {
	balance := req.Balance
	if balance < 0 || balance > gaas.MaxCredits {
		return gaas.User{}, fmt.Errorf("store: set quota: %w", gaas.Invalid("balance", "must be between 0 and %s", gaas.MaxCredits))
	}
	return s.change(ctx, p, req.UserID, gaas.LedgerSet, req.Reason, func(d allocationRow) (gaas.Credits, error) {
		return balance - gaas.Credits(d.Remaining), nil
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
	if delta == 0 || delta > gaas.MaxCredits || delta < -gaas.MaxCredits {
		return gaas.User{}, fmt.Errorf("store: grant: %w", gaas.Invalid("delta", "must be non-zero and at most %s in size", gaas.MaxCredits))
	}
	return s.change(ctx, p, req.UserID, gaas.LedgerGrant, req.Reason, func(d allocationRow) (gaas.Credits, error) {
		if held := gaas.Credits(d.Remaining); held+delta < 0 {
			return 0, &gaas.QuotaError{Asked: -delta, Remaining: held}
		}
		return delta, nil
	})
}

// quotaActions are the actions of the policy that change a balance, by the
// kind of entry they record.
var quotaActions = map[gaas.LedgerKind]gaas.Action{
	gaas.LedgerSet:   gaas.ActionSetBalance,
	gaas.LedgerGrant: gaas.ActionGrantHours,
}

// quotaFields name the request field that a change's bound refers to.
var quotaFields = map[gaas.LedgerKind]string{gaas.LedgerSet: "balance", gaas.LedgerGrant: "delta"}

// change runs a caller's change of a user's default allocation, which the
// policy must allow, and its ledger entry in one transaction; delta
// decides the change from the allocation as it is, under its account's lock.
func (s *QuotaService) change(ctx context.Context, p gaas.Principal, userID int64, kind gaas.LedgerKind, reason string,
	delta func(d allocationRow) (gaas.Credits, error)) (gaas.User, error) {
	if err := gaas.ValidateReason(reason); err != nil {
		return gaas.User{}, fmt.Errorf("store: %s quota: %w", kind, err)
	}
	var out userRow
	err := s.db.tx(ctx, func(tx bun.Tx) error {
		if err := allow(ctx, tx, p, quotaActions[kind], userID); err != nil {
			return err
		}
		u, err := loadUser(ctx, tx, userID)
		if err != nil {
			return err
		}
		if err := s.db.lockAccount(ctx, tx, u.AccountID); err != nil {
			return err
		}
		d, err := defaultAllocation(ctx, tx, u.AccountID)
		if err != nil {
			return err
		}
		n, err := delta(d)
		if err != nil {
			return err
		}
		if err := roomFor(ctx, tx, u.AccountID, n, quotaFields[kind]); err != nil {
			return err
		}
		if err := change(ctx, tx, entry{
			AccountID: u.AccountID, AllocationID: d.ID, Actor: actor(p), Kind: kind, Delta: n,
			Reason: reason, At: s.db.timestamp(),
		}); err != nil {
			return err
		}
		out = u
		return s.db.withBalances(ctx, tx, &out)
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
	u, err := visibleUser(ctx, s.db.r, p, req.UserID)
	if err != nil {
		return gaas.LedgerPage{}, fmt.Errorf("store: ledger: %w", err)
	}
	return ledgerPage(ctx, s.db.r, u.AccountID, req.UserID, req.Page)
}

// ledgerPage reads a page of an account's ledger, whose owner is user
// userID (0 for a project's).
func ledgerPage(ctx context.Context, idb bun.IDB, account, userID int64, page gaas.Page) (gaas.LedgerPage, error) {
	limit, after, err := readPage(page, 0)
	if err != nil {
		return gaas.LedgerPage{}, fmt.Errorf("store: ledger: %w", err)
	}
	var rows []ledgerRow
	if err := query(ctx, idb, &rows, "SELECT "+ledgerColumns+" FROM ledger WHERE account_id = ? AND id > ? ORDER BY id LIMIT ?",
		account, after, limit+1); err != nil {
		return gaas.LedgerPage{}, fmt.Errorf("store: ledger: %w", mapErr(err))
	}
	var out gaas.LedgerPage
	out.Items, out.NextCursor = pageOf(rows, limit, func(r ledgerRow) int64 { return r.ID },
		func(r *ledgerRow) gaas.LedgerEntry { return r.entry(userID) })
	return out, nil
}
