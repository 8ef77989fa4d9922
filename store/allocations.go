package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/gaas-io/gaas/gaas"
)

// Every change of credits is a change of an allocation, in a transaction
// that first locks the allocation's account (lockAccount): so one account's
// changes are serialized, each ledger entry's running balance follows the
// one before it, and a batch of submissions, which locks accounts in
// order, cannot deadlock with them.

type allocationRow struct {
	ID        int64      `bun:"id"`
	AccountID int64      `bun:"account_id"`
	Amount    int64      `bun:"amount"`
	Remaining int64      `bun:"remaining"`
	GPUTypes  *string    `bun:"gpu_types"`
	StartsAt  time.Time  `bun:"starts_at"`
	ExpiresAt *time.Time `bun:"expires_at"`
	Default   bool       `bun:"is_default"`
	Reason    string     `bun:"reason"`
	ledgerActor
	CreatedAt time.Time `bun:"created_at"`
	// The schedule that made it, and the period it is for; nil for others.
	ScheduleID  *int64     `bun:"schedule_id"`
	PeriodStart *time.Time `bun:"period_start"`
}

const allocationColumns = "id, account_id, amount, remaining, gpu_types, starts_at, expires_at, is_default, reason, actor_id, actor_system, created_at, schedule_id, period_start"

func (r *allocationRow) allocation() gaas.Allocation {
	a := gaas.Allocation{
		ID: r.ID, AccountID: r.AccountID, Amount: gaas.Credits(r.Amount), Remaining: gaas.Credits(r.Remaining),
		GPUTypes: decodeScope(r.GPUTypes), StartsAt: r.StartsAt.UTC(), Reason: r.Reason,
		CreatedAt: r.CreatedAt.UTC(), Default: r.Default,
	}
	if r.ExpiresAt != nil {
		t := r.ExpiresAt.UTC()
		a.ExpiresAt = &t
	}
	if r.ActorID != nil {
		a.CreatedByID = *r.ActorID
	}
	if r.ActorSystem != nil {
		a.CreatedBySystem = *r.ActorSystem
	}
	if r.ScheduleID != nil {
		a.ScheduleID = *r.ScheduleID
	}
	if r.PeriodStart != nil {
		t := r.PeriodStart.UTC()
		a.PeriodStart = &t
	}
	return a
}

// A scope is kept as its names one a line: a GPU type's name holds no
// control character (gaas.ValidateGPUType), so the lines are the names.
func encodeScope(names []string) *string {
	if names == nil {
		return nil
	}
	s := strings.Join(names, "\n")
	return &s
}

func decodeScope(s *string) []string {
	if s == nil {
		return nil
	}
	return strings.Split(*s, "\n")
}

// A job's draws are kept as "allocation:milli-credits" pairs, comma
// separated, in the order drawn; Check holds them to the job's charge
// entries.
func encodeDraws(draws []gaas.Draw) string {
	var b []byte
	for i, d := range draws {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, d.AllocationID, 10)
		b = append(b, ':')
		b = strconv.AppendInt(b, int64(d.Amount), 10)
	}
	return string(b)
}

func decodeDraws(s string) ([]gaas.Draw, error) {
	if s == "" {
		return nil, nil
	}
	parts := strings.Split(s, ",")
	draws := make([]gaas.Draw, len(parts))
	for i, p := range parts {
		id, amount, ok := strings.Cut(p, ":")
		a, err1 := strconv.ParseInt(id, 10, 64)
		n, err2 := strconv.ParseInt(amount, 10, 64)
		if !ok || err1 != nil || err2 != nil {
			return nil, fmt.Errorf("draws %q: entry %d is not allocation:amount", s, i+1)
		}
		draws[i] = gaas.Draw{AllocationID: a, Amount: gaas.Credits(n)}
	}
	return draws, nil
}

// lockAccount makes the transaction the only one changing the account
// until it ends. SQLite has one writer, so it needs no lock.
func (db *DB) lockAccount(ctx context.Context, tx bun.IDB, accountID int64) error {
	if db.lockRow == "" {
		return nil
	}
	var id int64
	return mapErr(query(ctx, tx, &id, "SELECT id FROM accounts WHERE id = ?"+db.lockRow, accountID))
}

// accountOf is the personal account of user id; a user who does not exist
// is gaas.ErrNotFound.
func accountOf(ctx context.Context, idb bun.IDB, userID int64) (int64, error) {
	var id int64
	err := query(ctx, idb, &id, "SELECT id FROM accounts WHERE user_id = ?", userID)
	return id, mapErr(err)
}

// loadAllocations reads the allocations of accounts that still hold
// credits, or with all true every one of them, in order of id.
func loadAllocations(ctx context.Context, idb bun.IDB, all bool, accounts ...int64) ([]allocationRow, error) {
	if len(accounts) == 0 {
		return nil, nil
	}
	args := make([]any, len(accounts))
	for i, a := range accounts {
		args[i] = a
	}
	q := "SELECT " + allocationColumns + " FROM allocations WHERE account_id IN (" + marks(len(accounts)) + ")"
	if !all {
		q += " AND remaining > 0"
	}
	var rows []allocationRow
	err := query(ctx, idb, &rows, q+" ORDER BY id", args...)
	return rows, mapErr(err)
}

// balances is the credits the active allocations of each account hold at now.
func balances(ctx context.Context, idb bun.IDB, now time.Time, accounts ...int64) (map[int64]gaas.Credits, error) {
	rows, err := loadAllocations(ctx, idb, false, accounts...)
	if err != nil {
		return nil, err
	}
	out := make(map[int64]gaas.Credits, len(accounts))
	for i := range rows {
		if a := rows[i].allocation(); a.ActiveAt(now) {
			out[a.AccountID] += a.Remaining
		}
	}
	return out, nil
}

// entry is one change of an allocation for the ledger.
type entry struct {
	AccountID    int64
	AllocationID int64
	JobID        *int64
	MemberID     *int64 // for a project's charge or refund, the member whose job it is
	Actor        ledgerActor
	Kind         gaas.LedgerKind
	Delta        gaas.Credits
	Reason       string
	At           time.Time
}

// appendEntrySQL appends an entry with its allocation's remaining and its
// account's balance after it, as the transaction sees them: the change
// must already be made, in the same transaction, under the account's lock.
const appendEntrySQL = "INSERT INTO ledger (account_id, allocation_id, job_id, member_id, actor_id, actor_system, kind, delta, remaining, balance, reason, created_at)" +
	" VALUES (?, ?, ?, ?, ?, ?, ?, ?, (SELECT remaining FROM allocations WHERE id = ?)," +
	" (SELECT CAST(COALESCE(SUM(remaining), 0) AS BIGINT) FROM allocations WHERE account_id = ?), ?, ?)"

// args are appendEntrySQL's arguments for e.
func (e entry) args() []any {
	return []any{e.AccountID, e.AllocationID, e.JobID, e.MemberID, e.Actor.ActorID, e.Actor.ActorSystem,
		string(e.Kind), int64(e.Delta), e.AllocationID, e.AccountID, e.Reason, e.At}
}

func appendEntry(ctx context.Context, idb bun.IDB, e entry) error {
	_, err := exec(ctx, idb, appendEntrySQL, e.args()...)
	return err
}

// change adds delta to an allocation's remaining (and, for a grant or a
// set, to its amount) and records the entry. A fall below zero is refused
// by the database's CHECK; callers check first.
func change(ctx context.Context, idb bun.IDB, e entry) error {
	q := "UPDATE allocations SET remaining = remaining + ? WHERE id = ?"
	if givesAmount(e.Kind, e.Delta) {
		q = "UPDATE allocations SET remaining = remaining + ?, amount = amount + ? WHERE id = ?"
		_, err := exec(ctx, idb, q, int64(e.Delta), int64(e.Delta), e.AllocationID)
		if err != nil {
			return err
		}
		return appendEntry(ctx, idb, e)
	}
	if _, err := exec(ctx, idb, q, int64(e.Delta), e.AllocationID); err != nil {
		return err
	}
	return appendEntry(ctx, idb, e)
}

// givesAmount reports whether an entry of kind with delta adds to its
// allocation's amount: grants and sets, and the credits a transfer brings.
func givesAmount(kind gaas.LedgerKind, delta gaas.Credits) bool {
	return kind == gaas.LedgerGrant || kind == gaas.LedgerSet || (kind == gaas.LedgerTransfer && delta > 0)
}

// giveBack returns credits to an allocation (a refund), and when the
// allocation has ended by at, lets what it then holds expire with it in an
// expire entry right after: a refund never revives an allocation. One
// whose schedule will roll it over into the next period (awaitsRolloverSQL)
// is left to GrantDue, which settles it.
func giveBack(ctx context.Context, idb bun.IDB, e entry) error {
	var after struct {
		Remaining int64      `bun:"remaining"`
		ExpiresAt *time.Time `bun:"expires_at"`
	}
	err := query(ctx, idb, &after, "UPDATE allocations SET remaining = remaining + ? WHERE id = ? RETURNING remaining, expires_at",
		int64(e.Delta), e.AllocationID)
	if err != nil {
		return mapErr(err)
	}
	if err := appendEntry(ctx, idb, e); err != nil {
		return err
	}
	if after.ExpiresAt == nil || e.At.Before(*after.ExpiresAt) {
		return nil
	}
	// The allocation of a schedule's period that rolls over is settled
	// when the next period is given, refund and all.
	var awaits int
	if err := query(ctx, idb, &awaits, "SELECT count(*) FROM allocations WHERE id = ? AND "+awaitsRolloverSQL, e.AllocationID); err != nil || awaits > 0 {
		return mapErr(err)
	}
	return expire(ctx, idb, e, gaas.Credits(after.Remaining), *after.ExpiresAt)
}

// expire lets the remaining credits of allocation e.AllocationID, which
// ended at end, leave it in one expire entry made as e says (its actor, job
// and time), under the account's lock; the allocation then holds nothing.
func expire(ctx context.Context, idb bun.IDB, e entry, remaining gaas.Credits, end time.Time) error {
	e.Kind, e.Delta = gaas.LedgerExpire, -remaining
	e.Reason = fmt.Sprintf("allocation %d ended at %s", e.AllocationID, end.UTC().Format(time.RFC3339))
	return change(ctx, idb, e)
}

// reservedCredits is what the unfinished jobs of an account hold: their
// costs, each of which a refund may give back whole.
func reservedCredits(ctx context.Context, idb bun.IDB, accountID int64) (gaas.Credits, error) {
	var n int64
	err := query(ctx, idb, &n, "SELECT CAST(COALESCE(SUM(cost), 0) AS BIGINT) FROM jobs WHERE account_id = ? AND status IN ("+unfinishedStatuses()+")", accountID)
	return gaas.Credits(n), mapErr(err)
}

// roomFor refuses, as a *gaas.ValidationError on field, to add credits
// to an account whose allocations, with the credits its unfinished jobs
// hold (which refunds may give back), would then pass gaas.MaxCredits. So
// no sum of an account's amounts can overflow.
func roomFor(ctx context.Context, idb bun.IDB, accountID int64, add gaas.Credits, field string) error {
	if add <= 0 {
		return nil
	}
	var held int64
	if err := query(ctx, idb, &held, "SELECT CAST(COALESCE(SUM(remaining), 0) AS BIGINT) FROM allocations WHERE account_id = ?", accountID); err != nil {
		return mapErr(err)
	}
	reserved, err := reservedCredits(ctx, idb, accountID)
	if err != nil {
		return err
	}
	if gaas.Credits(held)+reserved+add <= gaas.MaxCredits {
		return nil
	}
	if reserved == 0 {
		return gaas.Invalid(field, "would give the account %s credits, above the maximum of %s", gaas.Credits(held)+add, gaas.MaxCredits)
	}
	return gaas.Invalid(field, "would give the account %s credits, which with the %s credits that unfinished jobs hold "+
		"(refunded if they are rejected or cancelled) is above the maximum of %s", gaas.Credits(held)+add, reserved, gaas.MaxCredits)
}

// AllocationService implements gaas.Allocations on the store.
type AllocationService struct{ db *DB }

var _ gaas.Allocations = (*AllocationService)(nil)

// CreateAllocation implements gaas.Allocations.
func (s *AllocationService) CreateAllocation(ctx context.Context, caller int64, req gaas.CreateAllocationRequest) (gaas.Allocation, error) {
	return s.createBy(ctx, gaas.Principal{UserID: caller}, req)
}

func (s *AllocationService) createBy(ctx context.Context, p gaas.Principal, req gaas.CreateAllocationRequest) (gaas.Allocation, error) {
	if err := req.Validate(); err != nil {
		return gaas.Allocation{}, fmt.Errorf("store: create allocation: %w", err)
	}
	now := s.db.timestamp()
	if req.StartsAt.IsZero() {
		req.StartsAt = now
	}
	if req.ExpiresAt != nil && !req.ExpiresAt.After(now) {
		return gaas.Allocation{}, fmt.Errorf("store: create allocation: %w", gaas.Invalid("expires_at", "must be in the future"))
	}
	if req.ExpiresAt != nil && !req.ExpiresAt.After(req.StartsAt) {
		return gaas.Allocation{}, fmt.Errorf("store: create allocation: %w", gaas.Invalid("expires_at", "must be after starts_at"))
	}
	var out allocationRow
	err := s.db.tx(ctx, func(tx bun.Tx) error {
		account, err := holderAccount(ctx, tx, p, req.UserID, req.ProjectID, gaas.ActionCreateAllocation, gaas.ActionGrantProject)
		if err != nil {
			return err
		}
		scope, err := canonicalScope(ctx, tx, req.GPUTypes)
		if err != nil {
			return err
		}
		if err := s.db.lockAccount(ctx, tx, account); err != nil {
			return err
		}
		if err := roomFor(ctx, tx, account, req.Amount, "amount"); err != nil {
			return err
		}
		if err := roomForAllocation(ctx, tx, account, now, holder(req.UserID, req.ProjectID)); err != nil {
			return err
		}
		out = allocationRow{
			AccountID: account, GPUTypes: encodeScope(scope), StartsAt: req.StartsAt.UTC().Truncate(time.Microsecond),
			Reason: req.Reason, ledgerActor: actor(p), CreatedAt: now,
		}
		if req.ExpiresAt != nil {
			t := req.ExpiresAt.UTC().Truncate(time.Microsecond)
			out.ExpiresAt = &t
		}
		if err := insertAllocation(ctx, tx, &out); err != nil {
			return err
		}
		out.Amount, out.Remaining = int64(req.Amount), int64(req.Amount)
		return change(ctx, tx, entry{
			AccountID: account, AllocationID: out.ID, Actor: out.ledgerActor, Kind: gaas.LedgerGrant,
			Delta: req.Amount, Reason: req.Reason, At: now,
		})
	})
	if err != nil {
		return gaas.Allocation{}, fmt.Errorf("store: create allocation for %s: %w", holder(req.UserID, req.ProjectID), mapErr(err))
	}
	return out.allocation(), nil
}

// roomForAllocation refuses one more allocation for account, of holder,
// when it already has MaxLiveAllocations live ones (liveAllocations).
func roomForAllocation(ctx context.Context, idb bun.IDB, account int64, now time.Time, holder string) error {
	live, err := liveAllocations(ctx, idb, account, now)
	if err != nil {
		return err
	}
	if live >= gaas.MaxLiveAllocations {
		return fmt.Errorf("%s already has %d allocations holding credits, the most an account may have: %w", holder, live, gaas.ErrConflict)
	}
	return nil
}

// holderAccount is the account of user userID or, when projectID is not 0,
// of that project, for p, whom the policy must let take userAction on the
// user or projectAction on the project.
func holderAccount(ctx context.Context, idb bun.IDB, p gaas.Principal, userID, projectID int64, userAction, projectAction gaas.Action) (int64, error) {
	if (userID == 0) == (projectID == 0) {
		return 0, gaas.Invalid("project_id", "an allocation is a user's or a project's: name exactly one")
	}
	if projectID != 0 {
		pr, err := visibleProject(ctx, idb, p, projectRef(projectID), projectAction)
		return pr.AccountID, err
	}
	if err := allow(ctx, idb, p, userAction, userID); err != nil {
		return 0, err
	}
	account, err := accountOf(ctx, idb, userID)
	if err != nil {
		return 0, fmt.Errorf("user %d: %w", userID, err)
	}
	return account, nil
}

func holder(userID, projectID int64) string {
	if projectID != 0 {
		return fmt.Sprintf("project %d", projectID)
	}
	return fmt.Sprintf("user %d", userID)
}

// insertAllocation inserts r empty (its grant entry fills it) and sets its id.
// liveAllocations counts the allocations of an account that have not
// ended at now and hold credits, or may hold them again without a new
// allocation: the default one, which grants and sets fill, and those that
// the draws of unfinished jobs name, which a refund fills.
func liveAllocations(ctx context.Context, idb bun.IDB, account int64, now time.Time) (int, error) {
	const notEnded = " AND (expires_at IS NULL OR expires_at > ?)"
	var live int
	if err := query(ctx, idb, &live, "SELECT count(*) FROM allocations WHERE account_id = ? AND (remaining > 0 OR is_default = TRUE)"+notEnded,
		account, now); err != nil {
		return 0, mapErr(err)
	}
	var empty []int64
	if err := query(ctx, idb, &empty, "SELECT id FROM allocations WHERE account_id = ? AND remaining = 0 AND is_default = FALSE"+notEnded,
		account, now); err != nil || len(empty) == 0 {
		return live, mapErr(err)
	}
	var draws []string
	if err := query(ctx, idb, &draws, "SELECT draws FROM jobs WHERE account_id = ? AND status IN ("+unfinishedStatuses()+")", account); err != nil {
		return 0, mapErr(err)
	}
	refundable := map[int64]bool{}
	for _, s := range draws {
		ds, err := decodeDraws(s)
		if err != nil {
			return 0, err
		}
		for _, d := range ds {
			refundable[d.AllocationID] = true
		}
	}
	for _, id := range empty {
		if refundable[id] {
			live++
		}
	}
	return live, nil
}

func insertAllocation(ctx context.Context, tx bun.IDB, r *allocationRow) error {
	return mapErr(query(ctx, tx, &r.ID,
		"INSERT INTO allocations (account_id, amount, remaining, gpu_types, starts_at, expires_at, is_default, reason, actor_id, actor_system, created_at, schedule_id, period_start)"+
			" VALUES (?, 0, 0, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
		r.AccountID, r.GPUTypes, r.StartsAt, r.ExpiresAt, r.Default, r.Reason, r.ActorID, r.ActorSystem, r.CreatedAt, r.ScheduleID, r.PeriodStart))
}

// Allocations implements gaas.Allocations.
func (s *AllocationService) Allocations(ctx context.Context, caller int64, req gaas.AllocationsRequest) (gaas.AllocationPage, error) {
	return s.listBy(ctx, gaas.Principal{UserID: caller}, req)
}

func (s *AllocationService) listBy(ctx context.Context, p gaas.Principal, req gaas.AllocationsRequest) (gaas.AllocationPage, error) {
	limit, after, err := readPage(req.Page, 0)
	var account int64
	if err == nil {
		account, err = holderAccount(ctx, s.db.r, p, req.UserID, req.ProjectID, gaas.ActionReadAllocations, gaas.ActionReadProject)
	}
	if err != nil {
		return gaas.AllocationPage{}, fmt.Errorf("store: allocations of %s: %w", holder(req.UserID, req.ProjectID), err)
	}
	where, args := "account_id = ? AND id > ?", []any{account, after}
	now := s.db.timestamp()
	if !req.Ended {
		where, args = where+" AND (expires_at IS NULL OR expires_at > ?)", append(args, now)
	}
	var rows []allocationRow
	if err := query(ctx, s.db.r, &rows, "SELECT "+allocationColumns+" FROM allocations WHERE "+where+" ORDER BY id LIMIT ?",
		append(args, limit+1)...); err != nil {
		return gaas.AllocationPage{}, fmt.Errorf("store: allocations of %s: %w", holder(req.UserID, req.ProjectID), mapErr(err))
	}
	var out gaas.AllocationPage
	out.Items, out.NextCursor = pageOf(rows, limit, func(r allocationRow) int64 { return r.ID }, (*allocationRow).allocation)
	return out, nil
}

// UpdateAllocation implements gaas.Allocations.
func (s *AllocationService) UpdateAllocation(ctx context.Context, caller int64, req gaas.UpdateAllocationRequest) (gaas.Allocation, error) {
	return s.updateBy(ctx, gaas.Principal{UserID: caller}, req)
}

func (s *AllocationService) updateBy(ctx context.Context, p gaas.Principal, req gaas.UpdateAllocationRequest) (gaas.Allocation, error) {
	if err := req.Validate(); err != nil {
		return gaas.Allocation{}, fmt.Errorf("store: update allocation %d: %w", req.AllocationID, err)
	}
	var out allocationRow
	err := s.db.tx(ctx, func(tx bun.Tx) error {
		// Who may change an allocation does not depend on it: ask first,
		// so that a caller who may not learns nothing of which exist.
		if err := allow(ctx, tx, p, gaas.ActionUpdateAllocation, 0); err != nil {
			return err
		}
		var account int64
		if err := query(ctx, tx, &account, "SELECT account_id FROM allocations WHERE id = ?", req.AllocationID); err != nil {
			return mapErr(err)
		}
		if err := s.db.lockAccount(ctx, tx, account); err != nil {
			return err
		}
		if err := query(ctx, tx, &out, "SELECT "+allocationColumns+" FROM allocations WHERE id = ?", req.AllocationID); err != nil {
			return mapErr(err)
		}
		now := s.db.timestamp()
		a := out.allocation()
		switch {
		case a.Default:
			return fmt.Errorf("allocation %d is its account's default allocation, which does not end; set or grant its credits instead: %w", a.ID, gaas.ErrConflict)
		case a.ExpiresAt != nil && !now.Before(*a.ExpiresAt):
			return fmt.Errorf("allocation %d ended at %s: %w", a.ID, a.ExpiresAt.Format(time.RFC3339), gaas.ErrConflict)
		}
		end := now
		if req.ExpiresAt != nil {
			end = req.ExpiresAt.UTC().Truncate(time.Microsecond)
			if a.ExpiresAt != nil && !end.Before(*a.ExpiresAt) {
				return gaas.Invalid("expires_at", "must be before the allocation's end, %s: an allocation may be shortened, not lengthened", a.ExpiresAt.Format(time.RFC3339))
			}
			if now.Before(end) && !end.After(a.StartsAt) {
				return gaas.Invalid("expires_at", "must be after starts_at, %s; to end the allocation before it starts, end it now", a.StartsAt.Format(time.RFC3339))
			}
		}
		if _, err := exec(ctx, tx, "UPDATE allocations SET expires_at = ? WHERE id = ?", end, a.ID); err != nil {
			return err
		}
		out.ExpiresAt = &end
		if now.Before(end) || a.Remaining == 0 {
			return nil
		}
		reason := req.Reason
		if reason == "" {
			reason = fmt.Sprintf("allocation %d ended", a.ID)
		}
		out.Remaining = 0
		return change(ctx, tx, entry{
			AccountID: account, AllocationID: a.ID, Actor: actor(p), Kind: gaas.LedgerRevoke,
			Delta: -a.Remaining, Reason: reason, At: now,
		})
	})
	if err != nil {
		return gaas.Allocation{}, fmt.Errorf("store: update allocation %d: %w", req.AllocationID, mapErr(err))
	}
	return out.allocation(), nil
}

// defaultAllocation reads the default allocation of an account.
func defaultAllocation(ctx context.Context, idb bun.IDB, accountID int64) (allocationRow, error) {
	var r allocationRow
	err := query(ctx, idb, &r, "SELECT "+allocationColumns+" FROM allocations WHERE account_id = ? AND is_default = ?", accountID, true)
	if errors.Is(mapErr(err), gaas.ErrNotFound) {
		return r, fmt.Errorf("account %d has no default allocation", accountID)
	}
	return r, mapErr(err)
}

// newAccount opens an account, a user's own or (userID nil) a project's,
// with its default allocation holding quota, given by p, and returns both ids.
func newAccount(ctx context.Context, tx bun.IDB, userID *int64, quota gaas.Credits, p gaas.Principal, at time.Time) (account, allocation int64, err error) {
	if err := query(ctx, tx, &account, "INSERT INTO accounts (user_id, created_at) VALUES (?, ?) RETURNING id", userID, at); err != nil {
		return 0, 0, mapErr(err)
	}
	d := allocationRow{AccountID: account, StartsAt: at, Default: true, Reason: "default allocation", ledgerActor: actor(p), CreatedAt: at}
	if err := insertAllocation(ctx, tx, &d); err != nil {
		return 0, 0, err
	}
	if quota == 0 {
		return account, d.ID, nil
	}
	return account, d.ID, change(ctx, tx, entry{
		AccountID: account, AllocationID: d.ID, Actor: d.ledgerActor, Kind: gaas.LedgerGrant,
		Delta: quota, Reason: "default quota", At: at,
	})
}

// ExpireBatch is the most allocations one call of Upkeep.ExpireEnded
// lets expire, each in a transaction of its
// own: a backlog is worked off over calls, and no call holds locks long.
const ExpireBatch = 200

// ExpireEnded lets the credits of ended allocations expire: each whose
// expires_at has passed and that still holds credits gets one expire entry,
// by the system as gaas.SystemExpiry, taking what it holds, and an
// allocation.expired event in the same transaction; but one whose
// schedule rolls it over into a next period it has yet to give is left to
// GrantDue (awaitsRolloverSQL). (Balances
// already leave ended allocations out; this makes the ledger say so.) It
// does at most ExpireBatch, the earliest ended first, and returns how many
// it expired; a caller with more to do calls again.
//
// Each allocation is read again under its account's lock and expired only
// if it still holds credits, so running it twice, or in several processes
// at once, never expires one twice.
func (s *Upkeep) ExpireEnded(ctx context.Context) (int, error) {
	var due []struct {
		ID        int64 `bun:"id"`
		AccountID int64 `bun:"account_id"`
	}
	if err := query(ctx, s.db.r, &due, "SELECT id, account_id FROM allocations WHERE expires_at IS NOT NULL AND remaining > 0 AND expires_at <= ?"+
		" AND NOT "+awaitsRolloverSQL+" ORDER BY expires_at, id LIMIT ?", s.db.timestamp(), ExpireBatch); err != nil {
		return 0, fmt.Errorf("store: expire ended allocations: %w", mapErr(err))
	}
	n := 0
	var errs []error
	for _, d := range due {
		expired, err := s.expireEnded(ctx, d.ID, d.AccountID)
		if err != nil {
			errs = append(errs, err)
			if ctx.Err() != nil {
				break
			}
		}
		if expired {
			n++
		}
	}
	return n, errors.Join(errs...)
}

// expireEnded lets allocation id of account expire if it has ended and
// holds credits, and reports whether it did.
func (s *Upkeep) expireEnded(ctx context.Context, id, account int64) (bool, error) {
	expired := false
	err := s.db.tx(ctx, func(tx bun.Tx) error {
		expired = false // a transaction run again starts afresh
		if err := s.db.lockAccount(ctx, tx, account); err != nil {
			return err
		}
		var a struct {
			Remaining int64      `bun:"remaining"`
			ExpiresAt *time.Time `bun:"expires_at"`
			Awaits    bool       `bun:"awaits"`
		}
		if err := query(ctx, tx, &a, "SELECT remaining, expires_at, CASE WHEN "+awaitsRolloverSQL+" THEN 1 ELSE 0 END AS awaits"+
			" FROM allocations WHERE id = ?", id); err != nil {
			return mapErr(err)
		}
		now := s.db.timestamp()
		if a.Remaining == 0 || a.ExpiresAt == nil || now.Before(*a.ExpiresAt) || a.Awaits {
			return nil // expired, shortened and revoked, or a schedule's to roll over, meanwhile
		}
		expired = true
		if err := expire(ctx, tx, entry{AccountID: account, AllocationID: id, Actor: actor(gaas.System(gaas.SystemExpiry)), At: now},
			gaas.Credits(a.Remaining), *a.ExpiresAt); err != nil {
			return err
		}
		took := gaas.Credits(a.Remaining)
		return allocationChanged(ctx, tx, gaas.EventAllocationExpired, id, &took, nil, now)
	})
	if err != nil {
		return false, fmt.Errorf("store: expire allocation %d: %w", id, mapErr(err))
	}
	return expired, nil
}
