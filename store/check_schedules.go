package store

import (
	"context"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"github.com/gaas-io/gaas/gaas"
)

// scheduleAllocation is one allocation a schedule gave, with its schedule
// and the sums of its entries, as checkSchedules reads them.
type scheduleAllocation struct {
	scheduleRow
	AllocID        int64      `bun:"alloc_id"`
	AllocAccount   int64      `bun:"alloc_account_id"`
	AllocScope     *string    `bun:"alloc_gpu_types"`
	AllocStartsAt  time.Time  `bun:"alloc_starts_at"`
	AllocExpiresAt *time.Time `bun:"alloc_expires_at"`
	PeriodStart    time.Time  `bun:"period_start"`
	Remaining      int64      `bun:"remaining"`
	Grants         int64      `bun:"grants"`
	Granted        int64      `bun:"granted"`
	RolledIn       int64      `bun:"rolled_in"`
	RolledOut      int64      `bun:"rolled_out"`
}

// checkSchedules holds every allocation of a schedule to it: it is for one
// of its periods that has been given (before next_period), starts when
// that period begins and expires when it ends, has the schedule's account
// and scope, and one grant of the schedule's amount. A rollover (transfer
// entries the system makes under gaas.SystemSchedule) moves what one
// period's allocation holds into the next period's, no more than the cap
// and only for a schedule whose leftover rolls over: what left the one
// came into the other. An allocation whose successor was given holds
// nothing: it was settled then, so it cannot expire again.
func checkSchedules(ctx context.Context, tx bun.Tx) ([]Violation, error) {
	rows, err := queryRows(ctx, tx, `
		SELECT s.id, s.account_id, s.amount, s.gpu_types, s.period, s.starts_at, s.time_zone, s.leftover, s.rollover_cap, s.next_period,
		       al.id AS alloc_id, al.account_id AS alloc_account_id, al.gpu_types AS alloc_gpu_types, al.starts_at AS alloc_starts_at,
		       al.expires_at AS alloc_expires_at, al.period_start, al.remaining,
		       COALESCE(e.grants, 0) AS grants, COALESCE(e.granted, 0) AS granted,
		       COALESCE(e.rolled_in, 0) AS rolled_in, COALESCE(e.rolled_out, 0) AS rolled_out
		FROM schedules s JOIN allocations al ON al.schedule_id = s.id
		LEFT JOIN (SELECT l.allocation_id,
		                  SUM(CASE WHEN l.kind = 'grant' THEN 1 ELSE 0 END) AS grants,
		                  SUM(CASE WHEN l.kind = 'grant' THEN l.delta ELSE 0 END) AS granted,
		                  SUM(CASE WHEN l.kind = 'transfer' AND l.actor_system = 'schedule' AND l.delta > 0 THEN l.delta ELSE 0 END) AS rolled_in,
		                  SUM(CASE WHEN l.kind = 'transfer' AND l.actor_system = 'schedule' AND l.delta < 0 THEN -l.delta ELSE 0 END) AS rolled_out
		           FROM ledger l JOIN allocations a ON a.id = l.allocation_id WHERE a.schedule_id IS NOT NULL
		           GROUP BY l.allocation_id) e ON e.allocation_id = al.id
		ORDER BY s.id, al.period_start`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	_, scanner := handle(tx)
	var (
		found []Violation
		prev  *scheduleAllocation
		index int64
		rec   gaas.Recurrence // of prev's schedule: a time zone is read once per schedule
	)
	for rows.Next() && len(found) < maxViolations {
		var a scheduleAllocation
		if err := scanner.ScanRow(ctx, rows, &a); err != nil {
			return nil, err
		}
		bad := func(format string, args ...any) {
			found = append(found, Violation{AllocationID: a.AllocID, Detail: fmt.Sprintf("schedule %d: ", a.ID) + fmt.Sprintf(format, args...)})
		}
		sameSchedule := prev != nil && prev.ID == a.ID
		if !sameSchedule {
			rec = a.recurrence()
		}
		span, ok := rec.At(a.PeriodStart)
		switch {
		case !ok || !span.Start.Equal(a.PeriodStart):
			bad("period_start %s is not the beginning of one of its periods", a.PeriodStart.UTC().Format(time.RFC3339Nano))
		case span.Index >= a.NextPeriod:
			bad("period %d is given, but the schedule's next period to give is %d", span.Index, a.NextPeriod)
		case !a.AllocStartsAt.Equal(span.Start) || a.AllocExpiresAt == nil || !a.AllocExpiresAt.Equal(span.End.Truncate(time.Microsecond)):
			bad("allocation runs from %s to %v, not over its period %s to %s", a.AllocStartsAt.UTC(), a.AllocExpiresAt, span.Start.UTC(), span.End.UTC())
		case a.AllocAccount != a.AccountID:
			bad("allocation of account %d, schedule of account %d", a.AllocAccount, a.AccountID)
		case !sameScope(a.AllocScope, a.GPUTypes):
			bad("allocation's scope differs from the schedule's")
		case a.Grants != 1 || a.Granted != a.Amount:
			bad("%d grant(s) totalling %s, not one of the schedule's %s", a.Grants, gaas.Credits(a.Granted), gaas.Credits(a.Amount))
		case a.RolledIn > 0 && (a.Leftover != string(gaas.LeftoverRollover) || a.RolledIn > a.RolloverCap):
			bad("rolled over %s into it, with leftover %s and a cap of %s", gaas.Credits(a.RolledIn), a.Leftover, gaas.Credits(a.RolloverCap))
		}
		before := int64(0)
		if sameSchedule && ok && index == span.Index-1 {
			before = prev.RolledOut
		}
		if a.RolledIn != before {
			bad("%s rolled over into it, but %s out of the period before", gaas.Credits(a.RolledIn), gaas.Credits(before))
		}
		if sameSchedule && ok && index == span.Index-1 && prev.Remaining != 0 {
			found = append(found, Violation{AllocationID: prev.AllocID,
				Detail: fmt.Sprintf("schedule %d: allocation holds %s after the next period's was given", a.ID, gaas.Credits(prev.Remaining))})
		}
		if prev != nil && prev.RolledOut > 0 && (!sameSchedule || !ok || index != span.Index-1) {
			found = append(found, Violation{AllocationID: prev.AllocID,
				Detail: fmt.Sprintf("schedule %d: %s rolled over out of it, into no next period", prev.ID, gaas.Credits(prev.RolledOut))})
		}
		prev, index = &a, span.Index
	}
	if prev != nil && prev.RolledOut > 0 && len(found) < maxViolations {
		found = append(found, Violation{AllocationID: prev.AllocID,
			Detail: fmt.Sprintf("schedule %d: %s rolled over out of it, into no next period", prev.ID, gaas.Credits(prev.RolledOut))})
	}
	return found, rows.Err()
}

func sameScope(a, b *string) bool {
	return (a == nil && b == nil) || (a != nil && b != nil && *a == *b)
}
