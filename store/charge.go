package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/uptrace/bun"

	"github.com/gaas-io/gaas/gaas"
)

// A job is charged to an account: its owner's own, or a project's. A
// project's charge also counts against the member's limit and the cap of
// the project and of every ancestor, which keep what they have spent
// (charged less refunded) in their rows; all of them move in the
// transaction that draws the cost, under the locks of every account
// involved, taken in order of id.

// chargeTarget is where a submission's cost goes.
type chargeTarget struct {
	account int64
	// chain is the project charged and its ancestors, nearest first; empty
	// when the job is charged to the caller's own account.
	chain  []projectRow
	member memberRow
}

// autoApprove reports whether the project charged approves its jobs when
// they are submitted.
func (t chargeTarget) autoApprove() bool { return len(t.chain) > 0 && t.chain[0].AutoApprove }

// projectChain reads project id and its ancestors, nearest first.
func projectChain(ctx context.Context, idb bun.IDB, id int64) ([]projectRow, error) {
	var rows []projectRow
	err := query(ctx, idb, &rows, "WITH RECURSIVE chain(id) AS (SELECT CAST(? AS BIGINT)"+
		" UNION ALL SELECT p.parent_id FROM projects p JOIN chain c ON p.id = c.id WHERE p.parent_id IS NOT NULL)"+
		" SELECT "+projectColumns+" FROM projects WHERE id IN (SELECT id FROM chain) ORDER BY depth DESC", id)
	if err == nil && len(rows) == 0 {
		err = fmt.Errorf("project %d: %w", id, gaas.ErrNotFound)
	}
	return rows, mapErr(err)
}

// chainAccounts are the accounts of a chain of projects.
func chainAccounts(chain []projectRow) []int64 {
	ids := make([]int64, len(chain))
	for i, p := range chain {
		ids[i] = p.AccountID
	}
	return ids
}

// resolveTarget decides where caller's submission naming ref is charged:
// ref's project, else the caller's default project, else their own
// account. A refusal (a project the caller may not charge, or that does
// not exist) is returned as refusal; err is a statement that failed.
func resolveTarget(ctx context.Context, idb bun.IDB, caller int64, s submitter, ref gaas.ProjectRef) (t chargeTarget, refusal, err error) {
	if ref == "" && s.defaultProject != nil {
		ref = projectRef(*s.defaultProject)
	}
	if ref == "" {
		return chargeTarget{account: s.account}, nil, nil
	}
	pr, err := loadProject(ctx, idb, ref)
	if errors.Is(err, gaas.ErrNotFound) {
		return t, fmt.Errorf("project %s: %w", ref, gaas.ErrNotFound), nil
	} else if err != nil {
		return t, nil, err
	}
	if t.member, err = loadMemberBy(ctx, idb, memberSelectUnnamed, pr.ID, caller); err != nil {
		return t, nil, err
	}
	if err := gaas.AllowProject(s.principal(caller), gaas.ActionChargeProject, t.member.role()); err != nil {
		return t, fmt.Errorf("project %s: %w", ref, err), nil
	}
	if t.chain, err = projectChain(ctx, idb, pr.ID); err != nil {
		return t, nil, err
	}
	t.account = pr.AccountID
	return t, nil, nil
}

// check refuses a job of gpuType costing cost that the member's GPU types,
// the member's limit or a cap up the chain does not allow.
func (t chargeTarget) check(gpuType string, cost gaas.Credits) error {
	if len(t.chain) == 0 {
		return nil
	}
	name := t.chain[0].Name
	m := t.member.member()
	if m.GPUTypes != nil && !(gaas.Allocation{GPUTypes: m.GPUTypes}).Covers(gpuType) {
		return gaas.Invalid("gpu_type", "%s is not one of the GPU types your membership of project %s allows: %s",
			gpuType, name, strings.Join(m.GPUTypes, ", "))
	}
	if m.Limit != nil && *m.Limit-m.Spent < cost {
		return &gaas.LimitError{Bound: gaas.LimitMember, Project: name, Asked: cost, Remaining: max(*m.Limit-m.Spent, 0)}
	}
	for _, p := range t.chain {
		if p.Cap != nil && gaas.Credits(*p.Cap-p.Spent) < cost {
			return &gaas.LimitError{Bound: gaas.LimitCap, Project: p.Name, Asked: cost, Remaining: max(gaas.Credits(*p.Cap-p.Spent), 0)}
		}
	}
	return nil
}

// spend moves what the member and the chain have spent by delta: a
// charge's cost, or a refund's negative.
func (t chargeTarget) spend(ctx context.Context, idb bun.IDB, delta gaas.Credits) error {
	if len(t.chain) == 0 || delta == 0 {
		return nil
	}
	if _, err := exec(ctx, idb, "UPDATE project_members SET spent = spent + ? WHERE project_id = ? AND user_id = ?",
		int64(delta), t.chain[0].ID, t.member.UserID); err != nil {
		return err
	}
	ids := make([]any, 0, len(t.chain)+1)
	ids = append(ids, int64(delta))
	for _, p := range t.chain {
		ids = append(ids, p.ID)
	}
	_, err := exec(ctx, idb, "UPDATE projects SET spent = spent + ? WHERE id IN ("+marks(len(t.chain))+")", ids...)
	return err
}

// projectID is the project charged, or nil for the caller's own account.
func (t chargeTarget) projectID() *int64 {
	if len(t.chain) == 0 {
		return nil
	}
	return &t.chain[0].ID
}

// memberID is the member whose job a project's charge is, for the ledger.
func (t chargeTarget) memberID() *int64 {
	if len(t.chain) == 0 {
		return nil
	}
	return &t.member.UserID
}

func marks(n int) string { return strings.TrimSuffix(strings.Repeat("?, ", n), ", ") }

// lockAccounts locks accounts in order of id, as every transaction that
// locks more than one does, so that none waits in a circle. SQLite has
// one writer and needs no lock.
func (db *DB) lockAccounts(ctx context.Context, tx bun.IDB, accounts ...int64) error {
	if db.lockRow == "" || len(accounts) == 0 {
		return nil
	}
	slices.Sort(accounts)
	accounts = slices.Compact(accounts)
	args := make([]any, len(accounts))
	for i, a := range accounts {
		args[i] = a
	}
	var ids []int64
	return mapErr(query(ctx, tx, &ids, "SELECT id FROM accounts WHERE id IN ("+marks(len(accounts))+") ORDER BY id"+db.lockRow, args...))
}

// jobTarget is where job j was charged, for its refund: the project whose
// account it is, with its chain and the job's member, or its owner's own
// account.
func jobTarget(ctx context.Context, idb bun.IDB, j *jobRow) (chargeTarget, error) {
	t := chargeTarget{account: j.AccountID}
	if j.ProjectID == nil {
		return t, nil
	}
	var err error
	if t.chain, err = projectChain(ctx, idb, *j.ProjectID); err != nil {
		return t, err
	}
	t.member.UserID = j.UserID
	return t, nil
}

// lockBatch locks, on PostgreSQL, every account a batch of submissions may
// change, in one statement and in order of id, before any is applied: a
// submission to a project changes the accounts of its ancestors too, and
// batches that locked them as they went could wait on each other in a
// circle. It remembers each caller as read, and the accounts locked, in hot.
func (s *JobService) lockBatch(ctx context.Context, tx bun.Tx, hot *hotTx, order []*submitCall) error {
	hot.callers = make(map[int64]submitter, len(order))
	var accounts []int64
	for _, c := range order {
		sub, ok := hot.callers[c.caller]
		if !ok {
			var err error
			sub, err = hot.caller(ctx, c.caller)
			if errors.Is(err, gaas.ErrNotFound) {
				continue // refused when it is applied
			} else if err != nil {
				return err
			}
			hot.callers[c.caller] = sub
			accounts = append(accounts, sub.account)
		}
		t, refusal, err := resolveTarget(ctx, tx, c.caller, sub, c.req.Project)
		if err != nil {
			return err
		}
		if refusal == nil {
			accounts = append(accounts, chainAccounts(t.chain)...)
		}
	}
	if err := s.db.lockAccounts(ctx, tx, accounts...); err != nil {
		return err
	}
	hot.locked = make(map[int64]bool, len(accounts))
	for _, a := range accounts {
		hot.locked[a] = true
	}
	return nil
}
