package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"github.com/gaas-io/gaas/gaas"
)

// A schedule gives its account one allocation per period. Each is made
// in a transaction that holds the account's lock (lockAccount) and reads
// the schedule's next_period under it, so that two processes granting at
// once queue and the second finds the period given; the UNIQUE index on
// (schedule_id, period_start) refuses a second allocation for a period
// whatever happens. Granting a period also settles the one before it,
// which has just ended: what it still holds moves into the new allocation
// up to the rollover cap (a pair of transfer entries that the system acts
// under gaas.SystemSchedule), and the rest leaves in an expire entry. So
// an allocation of a schedule that has a successor holds nothing, and
// Check holds each rollover to its pair.

type scheduleRow struct {
	ID          int64      `bun:"id"`
	AccountID   int64      `bun:"account_id"`
	UserID      *int64     `bun:"user_id"`
	ProjectID   *int64     `bun:"project_id"`
	Amount      int64      `bun:"amount"`
	GPUTypes    *string    `bun:"gpu_types"`
	Period      string     `bun:"period"`
	StartsAt    time.Time  `bun:"starts_at"`
	TimeZone    string     `bun:"time_zone"`
	Leftover    string     `bun:"leftover"`
	RolloverCap int64      `bun:"rollover_cap"`
	Paused      bool       `bun:"paused"`
	EndedAt     *time.Time `bun:"ended_at"`
	NextPeriod  int64      `bun:"next_period"`
	NextStart   time.Time  `bun:"next_start"`
	Reason      string     `bun:"reason"`
	ledgerActor
	CreatedAt time.Time `bun:"created_at"`
	UpdatedAt time.Time `bun:"updated_at"`
}

// scheduleSelect reads schedules with the user or project whose account
// they give to.
const scheduleSelect = "SELECT s.id, s.account_id, ac.user_id, pr.id AS project_id, s.amount, s.gpu_types, s.period, s.starts_at," +
	" s.time_zone, s.leftover, s.rollover_cap, s.paused, s.ended_at, s.next_period, s.next_start, s.reason, s.actor_id, s.actor_system," +
	" s.created_at, s.updated_at" +
	" FROM schedules s JOIN accounts ac ON ac.id = s.account_id LEFT JOIN projects pr ON pr.account_id = s.account_id"

func (r *scheduleRow) schedule() gaas.Schedule {
	s := gaas.Schedule{
		ID: r.ID, AccountID: r.AccountID, Amount: gaas.Credits(r.Amount), GPUTypes: decodeScope(r.GPUTypes),
		Period: gaas.Period(r.Period), StartsAt: r.StartsAt.UTC(), TimeZone: r.TimeZone, Leftover: gaas.Leftover(r.Leftover),
		RolloverCap: gaas.Credits(r.RolloverCap), Paused: r.Paused, Reason: r.Reason,
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(),
	}
	if r.UserID != nil {
		s.UserID = *r.UserID
	}
	if r.ProjectID != nil {
		s.ProjectID = *r.ProjectID
	}
	if r.EndedAt != nil {
		t := r.EndedAt.UTC()
		s.EndedAt = &t
	}
	if r.ActorID != nil {
		s.CreatedByID = *r.ActorID
	}
	if r.ActorSystem != nil {
		s.CreatedBySystem = *r.ActorSystem
	}
	s.NextPeriod = utcSpan(s.Recurrence().Nth(r.NextPeriod))
	return s
}

func utcSpan(s gaas.Span) gaas.Span {
	s.Start, s.End = s.Start.UTC(), s.End.UTC()
	return s
}

func loadSchedule(ctx context.Context, idb bun.IDB, id int64) (scheduleRow, error) {
	var r scheduleRow
	err := query(ctx, idb, &r, scheduleSelect+" WHERE s.id = ?", id)
	if errors.Is(mapErr(err), gaas.ErrNotFound) {
		return r, fmt.Errorf("schedule %d: %w", id, gaas.ErrNotFound)
	}
	return r, mapErr(err)
}

// ScheduleService implements gaas.Schedules on the store.
type ScheduleService struct{ db *DB }

var _ gaas.Schedules = (*ScheduleService)(nil)

// scheduleAccount is the account of user userID or of project projectID,
// whose schedules p must be let manage: a user's are the admins'; a
// project's its managers' and its ancestors' managers' too.
func scheduleAccount(ctx context.Context, idb bun.IDB, p gaas.Principal, userID, projectID int64) (int64, error) {
	if (userID == 0) == (projectID == 0) {
		return 0, gaas.Invalid("project_id", "a schedule is a user's or a project's: name exactly one of user_id and project_id")
	}
	if userID != 0 {
		if err := allow(ctx, idb, p, gaas.ActionManageUserSchedules, 0); err != nil {
			return 0, err
		}
		account, err := accountOf(ctx, idb, userID)
		if err != nil {
			return 0, fmt.Errorf("user %d: %w", userID, err)
		}
		return account, nil
	}
	pr, err := visibleProjectInherited(ctx, idb, p, projectRef(projectID), gaas.ActionManageProjectSchedules)
	if err != nil {
		return 0, err
	}
	return pr.AccountID, nil
}

// managesAncestorSQL counts the projects above project ? (or itself) that
// user ? manages.
const managesAncestorSQL = `WITH RECURSIVE up(id, parent_id) AS (
	    SELECT id, parent_id FROM projects WHERE id = ?
	    UNION ALL SELECT p.id, p.parent_id FROM projects p JOIN up ON p.id = up.parent_id)
	SELECT count(*) FROM project_members m JOIN up ON m.project_id = up.id
	WHERE m.user_id = ? AND m.role = 'manager' AND m.active = TRUE`

// managedProjectsSQL is the projects that user ? manages and every
// project below them.
const managedProjectsSQL = `WITH RECURSIVE down(id) AS (
	    SELECT project_id FROM project_members WHERE user_id = ? AND role = 'manager' AND active = TRUE
	    UNION SELECT p.id FROM projects p JOIN down ON p.parent_id = down.id)
	SELECT id FROM down`

// managedAccountsSQL is the accounts of the projects that user ? manages
// and of every project below them.
const managedAccountsSQL = `SELECT account_id FROM projects WHERE id IN (` + managedProjectsSQL + `)`

// CreateSchedule implements gaas.Schedules.
func (s *ScheduleService) CreateSchedule(ctx context.Context, caller int64, req gaas.CreateScheduleRequest) (gaas.Schedule, error) {
	return s.createBy(ctx, gaas.Principal{UserID: caller}, req)
}

func (s *ScheduleService) createBy(ctx context.Context, p gaas.Principal, req gaas.CreateScheduleRequest) (gaas.Schedule, error) {
	if err := req.Validate(); err != nil {
		return gaas.Schedule{}, fmt.Errorf("store: create schedule: %w", err)
	}
	var out scheduleRow
	err := s.db.tx(ctx, func(tx bun.Tx) error {
		account, err := scheduleAccount(ctx, tx, p, req.UserID, req.ProjectID)
		if err != nil {
			return err
		}
		// Its periods give credits: a project's managers, who may see and
		// manage its schedules, make none.
		if err := allow(ctx, tx, p, gaas.ActionCreateSchedule, 0); err != nil {
			return err
		}
		out, err = s.db.newSchedule(ctx, tx, p, account, req)
		return err
	})
	if err != nil {
		return gaas.Schedule{}, fmt.Errorf("store: create schedule for %s: %w", holder(req.UserID, req.ProjectID), mapErr(err))
	}
	if req.ProjectID != 0 {
		out.ProjectID = &req.ProjectID
	} else {
		out.UserID = &req.UserID
	}
	return out.schedule(), nil
}

// newSchedule makes a schedule for account, which p was let manage, and
// gives its current period when req asks.
func (db *DB) newSchedule(ctx context.Context, tx bun.IDB, p gaas.Principal, account int64, req gaas.CreateScheduleRequest) (scheduleRow, error) {
	now := db.timestamp()
	scope, err := canonicalScope(ctx, tx, req.GPUTypes)
	if err != nil {
		return scheduleRow{}, err
	}
	if err := db.lockAccount(ctx, tx, account); err != nil {
		return scheduleRow{}, err
	}
	var n int
	if err := query(ctx, tx, &n, "SELECT count(*) FROM schedules WHERE account_id = ? AND ended_at IS NULL", account); err != nil {
		return scheduleRow{}, mapErr(err)
	}
	if n >= gaas.MaxSchedulesPerAccount {
		return scheduleRow{}, fmt.Errorf("%s already has %d schedules, the most an account may have; end one first: %w",
			holder(req.UserID, req.ProjectID), n, gaas.ErrConflict)
	}
	r := scheduleRow{
		AccountID: account, Amount: int64(req.Amount), GPUTypes: encodeScope(scope), Period: string(req.Period),
		StartsAt: req.StartsAt.UTC().Truncate(time.Microsecond), TimeZone: req.TimeZone, Leftover: string(req.Leftover),
		RolloverCap: int64(req.RolloverCap), Reason: req.Reason, ledgerActor: actor(p), CreatedAt: now, UpdatedAt: now,
	}
	if req.StartsAt.IsZero() {
		r.StartsAt = now
	}
	if r.TimeZone == "" {
		r.TimeZone = "UTC"
	}
	if r.Leftover == "" {
		r.Leftover = string(gaas.LeftoverExpire)
	}
	rec := r.recurrence()
	if cur, ok := rec.At(now); ok {
		r.NextPeriod = cur.Index
		if !req.GrantCurrent {
			r.NextPeriod++
		}
	}
	r.NextStart = rec.Nth(r.NextPeriod).Start.UTC()
	if err := query(ctx, tx, &r.ID,
		"INSERT INTO schedules (account_id, amount, gpu_types, period, starts_at, time_zone, leftover, rollover_cap, paused, ended_at,"+
			" next_period, next_start, reason, actor_id, actor_system, created_at, updated_at)"+
			" VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
		r.AccountID, r.Amount, r.GPUTypes, r.Period, r.StartsAt, r.TimeZone, r.Leftover, r.RolloverCap, false,
		r.NextPeriod, r.NextStart, r.Reason, r.ActorID, r.ActorSystem, r.CreatedAt, r.UpdatedAt); err != nil {
		return scheduleRow{}, mapErr(err)
	}
	_, err = grantPeriods(ctx, tx, &r, now, maxGrantsPerRun)
	return r, err
}

func (r *scheduleRow) recurrence() gaas.Recurrence {
	return gaas.Schedule{Period: gaas.Period(r.Period), StartsAt: r.StartsAt, TimeZone: r.TimeZone}.Recurrence()
}

// maxGrantsPerRun bounds the periods one GrantDue gives, so that a run
// after a long stop is not one long stretch of work: the next run goes on.
const maxGrantsPerRun = 500

// grantPeriods gives the periods of schedule r that have begun by now and
// not been given, at most limit of them, and returns how many it gave. The
// transaction must hold the account's lock and have read r under it.
func grantPeriods(ctx context.Context, tx bun.IDB, r *scheduleRow, now time.Time, limit int) (int, error) {
	if r.Paused || r.EndedAt != nil {
		return 0, nil
	}
	sched, rec := r.schedule(), r.recurrence()
	who := actor(gaas.System(gaas.SystemSchedule))
	given := 0
	for given < limit && !r.NextStart.After(now) {
		span := rec.Nth(r.NextPeriod)
		start, end := span.Start.UTC().Truncate(time.Microsecond), span.End.UTC().Truncate(time.Microsecond)
		if err := roomFor(ctx, tx, r.AccountID, sched.Amount, "amount"); err != nil {
			return given, err
		}
		if err := roomForAllocation(ctx, tx, r.AccountID, now, fmt.Sprintf("account %d", r.AccountID)); err != nil {
			return given, err
		}
		a := allocationRow{
			AccountID: r.AccountID, GPUTypes: r.GPUTypes, StartsAt: start, ExpiresAt: &end,
			Reason:      fmt.Sprintf("schedule %d: %s period from %s", r.ID, r.Period, span.Start.In(rec.Location).Format(time.RFC3339)),
			ledgerActor: who, CreatedAt: now, ScheduleID: &r.ID, PeriodStart: &start,
		}
		if err := insertAllocation(ctx, tx, &a); err != nil {
			return given, fmt.Errorf("schedule %d, period from %s: %w", r.ID, start.Format(time.RFC3339), err)
		}
		if err := change(ctx, tx, entry{AccountID: r.AccountID, AllocationID: a.ID, Actor: who, Kind: gaas.LedgerGrant,
			Delta: sched.Amount, Reason: a.Reason, At: now}); err != nil {
			return given, err
		}
		if err := allocationChanged(ctx, tx, gaas.EventAllocationGranted, a.ID, nil, &r.ID, now); err != nil {
			return given, err
		}
		if r.NextPeriod > 0 {
			if err := settle(ctx, tx, sched, rec.Nth(r.NextPeriod-1), a.ID, now); err != nil {
				return given, err
			}
		}
		r.NextPeriod++
		r.NextStart = rec.Nth(r.NextPeriod).Start.UTC().Truncate(time.Microsecond)
		given++
	}
	if given == 0 {
		return 0, nil
	}
	r.UpdatedAt = now
	_, err := exec(ctx, tx, "UPDATE schedules SET next_period = ?, next_start = ?, updated_at = ? WHERE id = ?",
		r.NextPeriod, r.NextStart, now, r.ID)
	return given, err
}

// settle ends the allocation of schedule s for period prev, which has
// ended, now that next, its successor, exists: what it holds moves into
// next up to the rollover cap, and the rest expires.
func settle(ctx context.Context, tx bun.IDB, s gaas.Schedule, prev gaas.Span, next int64, now time.Time) error {
	var old allocationRow
	err := query(ctx, tx, &old, "SELECT "+allocationColumns+" FROM allocations WHERE schedule_id = ? AND period_start = ?",
		s.ID, prev.Start.UTC().Truncate(time.Microsecond))
	if errors.Is(mapErr(err), gaas.ErrNotFound) {
		return nil // not given: the schedule was paused then
	} else if err != nil {
		return mapErr(err)
	}
	left := gaas.Credits(old.Remaining)
	if left == 0 {
		return nil
	}
	who := actor(gaas.System(gaas.SystemSchedule))
	if roll := s.Rollover(left); roll > 0 {
		reason := fmt.Sprintf("schedule %d: rolled over from allocation %d to %d", s.ID, old.ID, next)
		if err := change(ctx, tx, entry{AccountID: s.AccountID, AllocationID: old.ID, Actor: who, Kind: gaas.LedgerTransfer,
			Delta: -roll, Reason: reason, At: now}); err != nil {
			return err
		}
		if err := change(ctx, tx, entry{AccountID: s.AccountID, AllocationID: next, Actor: who, Kind: gaas.LedgerTransfer,
			Delta: roll, Reason: reason, At: now}); err != nil {
			return err
		}
		left -= roll
	}
	if left == 0 {
		return nil
	}
	if err := change(ctx, tx, entry{AccountID: s.AccountID, AllocationID: old.ID, Actor: who, Kind: gaas.LedgerExpire,
		Delta: -left, Reason: fmt.Sprintf("allocation %d ended at %s", old.ID, prev.End.UTC().Format(time.RFC3339)), At: now}); err != nil {
		return err
	}
	return allocationChanged(ctx, tx, gaas.EventAllocationExpired, old.ID, &left, &s.ID, now)
}

// GrantDue gives, for every schedule that is neither paused nor ended, the
// allocation of each period that has begun and not been given, each once
// however many processes call it at once or how often they stop half way;
// it settles the period before each (rollover and expiry). It does a
// bounded amount of work (maxGrantsPerRun periods) and returns how many
// allocations it made. A schedule it cannot grant (its account is full)
// is reported in the error while the others go on, and is not tried again
// before a time that grows with each failure in a row (grantRetry), so
// that it neither repeats its error at every run nor, with others like
// it, holds back the schedules that can be given; a try that fails for
// want of the database (gaas.ErrUnavailable: a lock or statement timeout,
// a lost connection) is not the schedule's failure, and the next run tries
// again. gaasd's background worker calls it every few seconds.
func (s *Upkeep) GrantDue(ctx context.Context) (int, error) {
	db := s.db
	now := db.timestamp()
	var due []struct {
		ID        int64 `bun:"id"`
		AccountID int64 `bun:"account_id"`
		Period    int64 `bun:"next_period"`
		Failures  int   `bun:"failures"`
	}
	if err := query(ctx, db.r, &due, "SELECT id, account_id, next_period, failures FROM schedules WHERE paused = FALSE AND ended_at IS NULL AND next_start <= ?"+
		" AND (retry_at IS NULL OR retry_at <= ?) ORDER BY next_start, id LIMIT ?", now, now, maxGrantsPerRun); err != nil {
		return 0, fmt.Errorf("store: grant due: %w", mapErr(err))
	}
	total := 0
	var errs []error
	for _, d := range due {
		if total >= maxGrantsPerRun || ctx.Err() != nil {
			break
		}
		var n int
		err := db.tx(ctx, func(tx bun.Tx) error {
			n = 0
			if err := db.lockAccount(ctx, tx, d.AccountID); err != nil {
				return err
			}
			r, err := loadSchedule(ctx, tx, d.ID)
			if err != nil {
				return err
			}
			if n, err = grantPeriods(ctx, tx, &r, now, maxGrantsPerRun-total); err != nil {
				return err
			}
			return grantedAgain(ctx, tx, r.ID)
		})
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, gaas.ErrUnavailable) {
				err = deferGrant(ctx, db, d.ID, d.Period, d.Failures, now, err)
			}
			errs = append(errs, fmt.Errorf("store: grant schedule %d: %w", d.ID, mapErr(err)))
			continue
		}
		total += n
	}
	if ctx.Err() != nil {
		errs = append(errs, ctx.Err())
	}
	return total, errors.Join(errs...)
}

// deferGrant counts the failure err of the schedule id that GrantDue read
// with the next period period and failures failures in a row, and puts off
// its next try (grantRetry), unless the schedule has moved on since: a
// grant in between (another process's, or a resume) gave the period, and
// another run that failed counted the failure. It returns err, saying
// when the schedule is tried again if it put the try off.
func deferGrant(ctx context.Context, db *DB, id, period int64, failures int, now time.Time, err error) error {
	retry := now.Add(grantRetry(failures + 1))
	res, uerr := exec(ctx, db.w, "UPDATE schedules SET failures = failures + 1, retry_at = ?"+
		" WHERE id = ? AND next_period = ? AND failures = ? AND paused = FALSE AND ended_at IS NULL", retry, id, period, failures)
	if uerr != nil {
		return errors.Join(err, uerr)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return err
	}
	return fmt.Errorf("%w (tried again from %s)", err, retry.Format(time.RFC3339))
}

// grantRetry is how long GrantDue waits before it tries again a schedule
// that failed failures times in a row: a minute, doubling, at most an
// hour. A resume tries at once.
func grantRetry(failures int) time.Duration {
	if failures > 6 {
		return time.Hour
	}
	return time.Minute << max(failures-1, 0)
}

// grantedAgain forgets the failures of schedule id, which its caller has
// just granted (or found nothing to grant for) in tx.
func grantedAgain(ctx context.Context, tx bun.IDB, id int64) error {
	_, err := exec(ctx, tx, "UPDATE schedules SET failures = 0, retry_at = NULL WHERE id = ? AND failures > 0", id)
	return err
}

// Schedules implements gaas.Schedules.
func (s *ScheduleService) Schedules(ctx context.Context, caller int64, req gaas.SchedulesRequest) (gaas.SchedulePage, error) {
	return s.listBy(ctx, gaas.Principal{UserID: caller}, req)
}

func (s *ScheduleService) listBy(ctx context.Context, p gaas.Principal, req gaas.SchedulesRequest) (gaas.SchedulePage, error) {
	fail := func(err error) (gaas.SchedulePage, error) {
		return gaas.SchedulePage{}, fmt.Errorf("store: schedules: %w", mapErr(err))
	}
	limit, after, err := readPage(req.Page, 0)
	if err != nil {
		return fail(err)
	}
	where, args := "s.id > ?", []any{after}
	switch {
	case req.UserID != 0 && req.ProjectID != 0:
		return fail(gaas.Invalid("project_id", "name user_id or project_id, not both"))
	case req.UserID != 0 || req.ProjectID != 0:
		account, err := scheduleAccount(ctx, s.db.r, p, req.UserID, req.ProjectID)
		if err != nil {
			return fail(err)
		}
		where, args = where+" AND s.account_id = ?", append(args, account)
	default:
		err := allow(ctx, s.db.r, p, gaas.ActionManageUserSchedules, 0)
		switch {
		case errors.Is(err, gaas.ErrForbidden):
			// Not an admin: the schedules of the projects they manage.
			where, args = where+" AND s.account_id IN ("+managedAccountsSQL+")", append(args, p.UserID)
		case err != nil:
			return fail(err)
		}
	}
	var rows []scheduleRow
	if err := query(ctx, s.db.r, &rows, scheduleSelect+" WHERE "+where+" ORDER BY s.id LIMIT ?", append(args, limit+1)...); err != nil {
		return fail(err)
	}
	var out gaas.SchedulePage
	out.Items, out.NextCursor = pageOf(rows, limit, func(r scheduleRow) int64 { return r.ID }, (*scheduleRow).schedule)
	return out, nil
}

// Schedule implements gaas.Schedules.
func (s *ScheduleService) Schedule(ctx context.Context, caller int64, req gaas.GetScheduleRequest) (gaas.Schedule, error) {
	return s.getBy(ctx, gaas.Principal{UserID: caller}, req)
}

func (s *ScheduleService) getBy(ctx context.Context, p gaas.Principal, req gaas.GetScheduleRequest) (gaas.Schedule, error) {
	r, err := visibleSchedule(ctx, s.db.r, p, req.ScheduleID)
	if err != nil {
		return gaas.Schedule{}, fmt.Errorf("store: %w", err)
	}
	return r.schedule(), nil
}

// visibleSchedule reads schedule id for p, who must be let manage it;
// whoever may not is told it does not exist.
func visibleSchedule(ctx context.Context, idb bun.IDB, p gaas.Principal, id int64) (scheduleRow, error) {
	r, err := loadSchedule(ctx, idb, id)
	if errors.Is(err, gaas.ErrNotFound) && !p.IsSystem() {
		if _, err := loadCaller(ctx, idb, p.UserID); err != nil {
			return r, err
		}
	}
	if err != nil {
		return r, err
	}
	var userID, projectID int64
	if r.ProjectID != nil {
		projectID = *r.ProjectID
	} else if r.UserID != nil {
		userID = *r.UserID
	}
	if _, err := scheduleAccount(ctx, idb, p, userID, projectID); errors.Is(err, gaas.ErrForbidden) {
		return r, fmt.Errorf("schedule %d: %w", id, gaas.ErrNotFound)
	} else if err != nil {
		return r, fmt.Errorf("schedule %d: %w", id, err)
	}
	return r, nil
}

// UpdateSchedule implements gaas.Schedules.
func (s *ScheduleService) UpdateSchedule(ctx context.Context, caller int64, req gaas.UpdateScheduleRequest) (gaas.Schedule, error) {
	return s.updateBy(ctx, gaas.Principal{UserID: caller}, req)
}

func (s *ScheduleService) updateBy(ctx context.Context, p gaas.Principal, req gaas.UpdateScheduleRequest) (gaas.Schedule, error) {
	if err := req.Validate(); err != nil {
		return gaas.Schedule{}, fmt.Errorf("store: update schedule %d: %w", req.ScheduleID, err)
	}
	var out scheduleRow
	err := s.db.tx(ctx, func(tx bun.Tx) error {
		r, err := visibleSchedule(ctx, tx, p, req.ScheduleID)
		if err != nil {
			return err
		}
		if err := s.db.lockAccount(ctx, tx, r.AccountID); err != nil {
			return err
		}
		if out, err = loadSchedule(ctx, tx, req.ScheduleID); err != nil {
			return err
		}
		now := s.db.timestamp()
		if out.EndedAt != nil {
			return fmt.Errorf("schedule %d ended at %s: %w", out.ID, out.EndedAt.UTC().Format(time.RFC3339), gaas.ErrConflict)
		}
		out.UpdatedAt = now
		if req.End {
			out.EndedAt = &now
			_, err := exec(ctx, tx, "UPDATE schedules SET ended_at = ?, updated_at = ? WHERE id = ?", now, now, out.ID)
			return err
		}
		if *req.Paused == out.Paused {
			return nil
		}
		out.Paused = *req.Paused
		if !out.Paused {
			// Resuming gives again, as making it did: admins'. Pausing and
			// ending give nothing, and are its managers' too.
			if err := allow(ctx, tx, p, gaas.ActionCreateSchedule, 0); err != nil {
				return err
			}
			// The periods that began and ended while it was paused are
			// not given; the one under way is, now.
			if cur, ok := out.recurrence().At(now); ok && cur.Index > out.NextPeriod {
				out.NextPeriod, out.NextStart = cur.Index, cur.Start.UTC().Truncate(time.Microsecond)
			}
		}
		if _, err := exec(ctx, tx, "UPDATE schedules SET paused = ?, next_period = ?, next_start = ?, updated_at = ? WHERE id = ?",
			out.Paused, out.NextPeriod, out.NextStart, now, out.ID); err != nil {
			return err
		}
		if _, err = grantPeriods(ctx, tx, &out, now, maxGrantsPerRun); err != nil {
			return err
		}
		return grantedAgain(ctx, tx, out.ID)
	})
	if err != nil {
		return gaas.Schedule{}, fmt.Errorf("store: update schedule %d: %w", req.ScheduleID, mapErr(err))
	}
	return out.schedule(), nil
}

// awaitsRolloverSQL, in a query of allocations, holds for an allocation
// whose leftover its schedule rolls over when it gives the next period,
// which it has not yet: the schedule is neither paused nor ended and its
// next period begins where this one ends. Upkeep.ExpireEnded, and a
// refund to it, leave these to GrantDue, or the rollover would find
// nothing to move.
const awaitsRolloverSQL = "EXISTS (SELECT 1 FROM schedules s WHERE s.id = allocations.schedule_id AND s.leftover = 'rollover'" +
	" AND s.paused = FALSE AND s.ended_at IS NULL AND s.next_start = allocations.expires_at)"
