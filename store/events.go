package store

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/uptrace/bun"

	"github.com/gaas-io/gaas/gaas"
)

// The outbox. An event is one row of events, written by appendEvent in the
// transaction of the change it reports: if the change rolls back, so does
// its event, and a committed change always has one. Delivery comes after
// commit, from the rows (webhooks.go); nothing here waits on an endpoint.

// DefaultExpiringWithin is Options.ExpiringWithin when it is 0.
const DefaultExpiringWithin = 7 * 24 * time.Hour

// appendEvent writes ev to the outbox in idb, the transaction of the change
// it reports: the expiry, grant, move or charge. ev.CreatedAt is when it
// happened, the store's time of the change.
func appendEvent(ctx context.Context, idb bun.IDB, ev gaas.Event) error {
	_, err := exec(ctx, idb, "INSERT INTO events (type, account_id, project_id, user_id, webhook_id, payload, created_at)"+
		" VALUES (?, ?, ?, ?, ?, ?, ?)",
		string(ev.Type), nullID(ev.AccountID), nullID(ev.ProjectID), nullID(ev.UserID), nullID(ev.WebhookID), string(ev.Data), ev.CreatedAt)
	if err != nil {
		return fmt.Errorf("append event %s: %w", ev.Type, mapErr(err))
	}
	return nil
}

// nullID is id, or NULL for 0.
func nullID(id int64) *int64 {
	if id == 0 {
		return nil
	}
	return &id
}

// derefID is *p, or 0 for nil.
func derefID(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}

// jobMoved appends the job.status_changed event of j's move from from to
// its status, which refunded refund, by act.
func (db *DB) jobMoved(ctx context.Context, idb bun.IDB, j *jobRow, from gaas.JobStatus, refund gaas.Credits, act ledgerActor) error {
	data := gaas.JobStatusChanged{
		JobID: j.ID, UserID: j.UserID, AccountID: j.AccountID, ProjectID: j.ProjectID,
		From: from, To: gaas.JobStatus(j.Status), GPUType: j.GPUType,
		Cost: gaas.Amount(j.Cost), Refund: gaas.Amount(refund), ActorID: act.ActorID, At: j.UpdatedAt,
	}
	if act.ActorSystem != nil {
		data.ActorSystem = *act.ActorSystem
	}
	if j.EndReason != nil {
		data.EndReason = *j.EndReason
	}
	ev, err := gaas.NewEvent(gaas.EventJobStatusChanged,
		gaas.Event{AccountID: j.AccountID, ProjectID: derefID(j.ProjectID), UserID: j.UserID, CreatedAt: j.UpdatedAt}, data)
	if err != nil {
		return err
	}
	return appendEvent(ctx, idb, ev)
}

// thresholdNotice is the notice of an allocation that threshold t was crossed.
func thresholdNotice(t int) string { return "threshold:" + strconv.Itoa(t) }

// expiringNotice is the notice of an allocation that it ends soon.
const expiringNotice = "expiring"

// notice records that allocation has had notice, and reports whether it
// is new: each notice is sent once per allocation, whatever races it.
func notice(ctx context.Context, idb bun.IDB, allocation int64, notice string) (bool, error) {
	res, err := exec(ctx, idb, "INSERT INTO allocation_notices (allocation_id, notice) VALUES (?, ?) ON CONFLICT DO NOTHING",
		allocation, notice)
	if err != nil {
		return false, mapErr(err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// noteThresholds appends the threshold events that job j's draws crossed,
// each once per allocation. allocs are the allocations as they were read
// before the draws; user is the account's user, 0 for a project's. The crossing is decided in Go from what the
// submission already read, so a submission that crosses nothing (nearly
// all) runs no statement here; and tx is taken as it is, not as a
// bun.IDB, whose conversion would cost every submission an allocation.
func (db *DB) noteThresholds(ctx context.Context, tx bun.Tx, allocs []gaas.Allocation, draws []gaas.Draw, j *jobRow, user int64) error {
	for _, d := range draws {
		for _, a := range allocs {
			if a.ID != d.AllocationID {
				continue
			}
			for _, t := range gaas.CrossedThresholds(db.thresholds, a.Amount, a.Remaining, a.Remaining-d.Amount) {
				fresh, err := notice(ctx, tx, a.ID, thresholdNotice(t))
				if err != nil || !fresh {
					return err
				}
				ev, err := gaas.NewEvent(gaas.EventThresholdCrossed,
					gaas.Event{AccountID: j.AccountID, ProjectID: derefID(j.ProjectID), UserID: user, CreatedAt: j.CreatedAt},
					gaas.ThresholdCrossed{AllocationID: a.ID, AccountID: j.AccountID, ProjectID: j.ProjectID, UserID: nullID(user),
						Threshold: t, Amount: gaas.Amount(a.Amount), Remaining: gaas.Amount(a.Remaining - d.Amount), JobID: j.ID, At: j.CreatedAt})
				if err != nil {
					return err
				}
				if err := appendEvent(ctx, tx, ev); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// allocationRouting is the routing of an event about an allocation of
// account: the project whose account it is, or the user whose.
func allocationRouting(ctx context.Context, idb bun.IDB, account int64) (project, user *int64, err error) {
	var owner struct {
		ProjectID *int64 `bun:"project_id"`
		UserID    *int64 `bun:"user_id"`
	}
	err = query(ctx, idb, &owner, "SELECT (SELECT p.id FROM projects p WHERE p.account_id = a.id) AS project_id, a.user_id"+
		" FROM accounts a WHERE a.id = ?", account)
	return owner.ProjectID, owner.UserID, mapErr(err)
}

// allocationEvent appends an event of type t (allocation.expiring,
// allocation.expired or allocation.granted) about a, as it is after the
// change, in idb, the transaction that changed it, at now. expired is what
// an expiry took; schedule the schedule that granted it; either may be nil.
func allocationEvent(ctx context.Context, idb bun.IDB, t gaas.EventType, a gaas.Allocation, expired *gaas.Credits, schedule *int64, now time.Time) error {
	project, user, err := allocationRouting(ctx, idb, a.AccountID)
	if err != nil {
		return err
	}
	data := gaas.AllocationEvent{AllocationID: a.ID, AccountID: a.AccountID, ProjectID: project, UserID: user,
		Amount: gaas.Amount(a.Amount), Remaining: gaas.Amount(a.Remaining), GPUTypes: a.GPUTypes, StartsAt: a.StartsAt.UTC(),
		ExpiresAt: a.ExpiresAt, ScheduleID: schedule, At: now}
	if expired != nil {
		e := gaas.Amount(*expired)
		data.Expired = &e
	}
	if data.GPUTypes == nil {
		data.GPUTypes = []string{}
	}
	ev, err := gaas.NewEvent(t, gaas.Event{AccountID: a.AccountID, ProjectID: derefID(project), UserID: derefID(user), CreatedAt: now}, data)
	if err != nil {
		return err
	}
	return appendEvent(ctx, idb, ev)
}

// allocationChanged is allocationEvent for allocation id, read again in
// idb after the change.
func allocationChanged(ctx context.Context, idb bun.IDB, t gaas.EventType, id int64, expired *gaas.Credits, schedule *int64, now time.Time) error {
	var r allocationRow
	if err := query(ctx, idb, &r, "SELECT "+allocationColumns+" FROM allocations WHERE id = ?", id); err != nil {
		return mapErr(err)
	}
	return allocationEvent(ctx, idb, t, r.allocation(), expired, schedule, now)
}

// maxNoticeBatch bounds the allocations one NotifyExpiring transaction notes.
const maxNoticeBatch = 500

// NotifyExpiring appends an allocation.expiring event for each allocation
// that holds credits and ends within Options.ExpiringWithin, once per
// allocation, and returns how many it appended. gaasd's background worker
// calls it; replicas racing it send each notice once.
func (s *Upkeep) NotifyExpiring(ctx context.Context) (int, error) {
	db := s.db
	total := 0
	for more := true; more; {
		n := 0
		err := db.tx(ctx, func(tx bun.Tx) error {
			n = 0
			now := db.timestamp()
			var rows []allocationRow
			if err := query(ctx, tx, &rows, "SELECT "+allocationColumns+" FROM allocations al"+
				" WHERE al.remaining > 0 AND al.expires_at > ? AND al.expires_at <= ?"+
				" AND NOT EXISTS (SELECT 1 FROM allocation_notices n WHERE n.allocation_id = al.id AND n.notice = ?)"+
				" ORDER BY al.id LIMIT ?",
				now, now.Add(db.expiringWithin), expiringNotice, maxNoticeBatch); err != nil {
				return err
			}
			more = len(rows) == maxNoticeBatch
			for _, r := range rows {
				if fresh, err := notice(ctx, tx, r.ID, expiringNotice); err != nil || !fresh {
					if err != nil {
						return err
					}
					continue
				}
				if err := allocationEvent(ctx, tx, gaas.EventAllocationExpiring, r.allocation(), nil, nil, now); err != nil {
					return err
				}
				n++
			}
			return nil
		})
		if err != nil {
			return total, fmt.Errorf("store: notify expiring allocations: %w", err)
		}
		total += n
	}
	return total, nil
}
