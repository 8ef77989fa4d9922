package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/uptrace/bun"

	"github.com/gaas-io/gaas/gaas"
)

// DispatchService implements gaas.Dispatcher on the store: it leases
// APPROVED jobs to executors and settles them from what they report.
type DispatchService struct{ db *DB }

var _ gaas.Dispatcher = (*DispatchService)(nil)

// Bounds of what an executor may ask.
const (
	// MinLeaseTTL and MaxLeaseTTL bound a lease's time to live.
	MinLeaseTTL = time.Second
	MaxLeaseTTL = time.Hour
	// maxExecutorName bounds an executor's name, in bytes.
	maxExecutorName = 100
	// maxRunText bounds an external id and a reason, in bytes.
	maxRunText = 1000
	// claimScan bounds the APPROVED jobs one claim looks at.
	claimScan = 1000
)

// runRow is a job's row of job_runs.
type runRow struct {
	JobID           int64      `bun:"job_id"`
	Executor        string     `bun:"executor"`
	Generation      int64      `bun:"generation"`
	ExpiresAt       *time.Time `bun:"expires_at"`
	ExternalID      *string    `bun:"external_id"`
	HeartbeatAt     *time.Time `bun:"heartbeat_at"`
	StartedAt       *time.Time `bun:"started_at"`
	EndedAt         *time.Time `bun:"ended_at"`
	ExitCode        *int       `bun:"exit_code"`
	Reason          *string    `bun:"reason"`
	CancelRequested bool       `bun:"cancel_requested"`
}

const runColumns = "job_id, executor, generation, expires_at, external_id, heartbeat_at, started_at, ended_at, exit_code, reason, cancel_requested"

func (r *runRow) run() *gaas.JobRun {
	run := &gaas.JobRun{Executor: r.Executor, Generation: r.Generation, ExitCode: r.ExitCode, CancelRequested: r.CancelRequested}
	if r.ExternalID != nil {
		run.ExternalID = *r.ExternalID
	}
	if r.Reason != nil {
		run.Reason = *r.Reason
	}
	for _, t := range []struct {
		from *time.Time
		to   *time.Time
	}{{r.StartedAt, &run.StartedAt}, {r.EndedAt, &run.EndedAt}, {r.HeartbeatAt, &run.HeartbeatAt}} {
		if t.from != nil {
			*t.to = t.from.UTC()
		}
	}
	return run
}

// holds reports whether the row is lease l and the lease has not ended
// (it may have expired, and not yet been reaped).
func (r *runRow) holds(l gaas.Lease) bool {
	return r.Executor == l.Executor && r.Generation == l.Generation && r.ExpiresAt != nil
}

// loadRun reads a job's run, or sql.ErrNoRows-mapped gaas.ErrNotFound.
func loadRun(ctx context.Context, idb bun.IDB, jobID int64, lock string) (runRow, error) {
	var r runRow
	err := query(ctx, idb, &r, "SELECT "+runColumns+" FROM job_runs WHERE job_id = ?"+lock, jobID)
	return r, mapErr(err)
}

// withRuns adds to jobs the runs they have.
func withRuns(ctx context.Context, idb bun.IDB, jobs []gaas.Job) error {
	if len(jobs) == 0 {
		return nil
	}
	ids := make([]any, len(jobs))
	at := make(map[int64]int, len(jobs))
	for i, j := range jobs {
		ids[i], at[j.ID] = j.ID, i
	}
	var rows []runRow
	if err := query(ctx, idb, &rows, "SELECT "+runColumns+" FROM job_runs WHERE job_id IN ("+marks(len(ids))+")", ids...); err != nil {
		return err
	}
	for _, r := range rows {
		jobs[at[r.JobID]].Run = r.run()
	}
	return nil
}

func validExecutor(name string) error {
	switch {
	case name == "":
		return gaas.Invalid("executor", "must not be empty")
	case len(name) > maxExecutorName:
		return gaas.Invalid("executor", "must be at most %d bytes", maxExecutorName)
	case !utf8.ValidString(name) || strings.ContainsFunc(name, func(r rune) bool { return r < ' ' || r == 0x7f }):
		return gaas.Invalid("executor", "must be printable UTF-8")
	}
	return nil
}

func validTTL(ttl time.Duration) error {
	if ttl < MinLeaseTTL || ttl > MaxLeaseTTL {
		return gaas.Invalid("ttl", "must be from %v to %v", MinLeaseTTL, MaxLeaseTTL)
	}
	return nil
}

// validText checks an executor's text as gaas checks every text it
// stores; lines allows tab and newline.
func validText(field, s string, lines bool) error {
	if len(s) > maxRunText || !utf8.ValidString(s) {
		return gaas.Invalid(field, "must be valid UTF-8 of at most %d bytes", maxRunText)
	}
	return gaas.ValidateControls(field, s, lines)
}

// Claim implements gaas.Dispatcher.
func (s *DispatchService) Claim(ctx context.Context, req gaas.ClaimRequest) ([]gaas.Claimed, error) {
	if err := errors.Join(validExecutor(req.Executor), validTTL(req.TTL)); err != nil {
		return nil, fmt.Errorf("store: claim: %w", err)
	}
	if req.Max < 0 || req.Max > gaas.MaxClaim {
		return nil, fmt.Errorf("store: claim: %w", gaas.Invalid("max", "must be from 0 to %d", gaas.MaxClaim))
	}
	if len(req.Free) > gaas.MaxGPUTypes {
		return nil, fmt.Errorf("store: claim: %w", gaas.Invalid("free", "must name at most %d GPU types", gaas.MaxGPUTypes))
	}
	want := max(req.Max, 1)
	var claimed []gaas.Claimed
	err := s.db.tx(ctx, func(tx bun.Tx) error {
		claimed = claimed[:0]
		now := s.db.timestamp()
		free, err := s.freeByType(ctx, tx, req.Free)
		if err != nil {
			return err
		}
		// First the jobs this executor was leased and never reported on:
		// the answer to a claim it retries may have been lost.
		var again []jobRow
		if err := query(ctx, tx, &again, "SELECT "+prefixed("j.", jobColumns)+" FROM job_runs r JOIN jobs j ON j.id = r.job_id"+
			" WHERE r.executor = ? AND r.expires_at > ? AND r.external_id IS NULL AND r.heartbeat_at IS NULL AND j.status = ?"+
			" ORDER BY j.id LIMIT ?", req.Executor, now, string(gaas.StatusApproved), want); err != nil {
			return err
		}
		for _, j := range again {
			r, err := loadRun(ctx, tx, j.ID, "")
			if err != nil {
				return err
			}
			claimed = append(claimed, claim(j, r))
			free[j.GPUType] -= j.GPUCount
		}
		types := make([]string, 0, len(free))
		for t, n := range free {
			if n > 0 {
				types = append(types, t)
			}
		}
		if len(claimed) >= want || len(types) == 0 {
			return nil
		}
		args := []any{string(gaas.StatusApproved)}
		for _, t := range types {
			args = append(args, t)
		}
		var queue []jobRow
		if err := query(ctx, tx, &queue, "SELECT "+jobColumns+" FROM jobs WHERE status = ? AND gpu_type IN ("+marks(len(types))+")"+
			" AND NOT EXISTS (SELECT 1 FROM job_runs r WHERE r.job_id = jobs.id AND r.expires_at > ?)"+
			" ORDER BY id LIMIT ?", append(args, now, claimScan)...); err != nil {
			return err
		}
		expires := now.Add(req.TTL)
		for _, j := range queue {
			if len(claimed) >= want {
				break
			}
			if j.GPUCount > free[j.GPUType] {
				continue
			}
			// Nothing was locked ahead, so that claims at once do not
			// queue behind each other's scans: the job is still APPROVED
			// once locked, and the lease is taken only if no other
			// executor holds a live one (two inserts of one job's row
			// wait on each other, and the second updates nothing).
			var status string
			if err := query(ctx, tx, &status, "SELECT status FROM jobs WHERE id = ?"+s.db.lockRow, j.ID); err != nil {
				return err
			}
			if gaas.JobStatus(status) != gaas.StatusApproved {
				continue
			}
			var r runRow
			err := query(ctx, tx, &r, "INSERT INTO job_runs (job_id, executor, generation, expires_at) VALUES (?, ?, 1, ?)"+
				" ON CONFLICT (job_id) DO UPDATE SET executor = excluded.executor, generation = job_runs.generation + 1,"+
				" expires_at = excluded.expires_at, external_id = NULL, heartbeat_at = NULL, started_at = NULL,"+
				" ended_at = NULL, exit_code = NULL, reason = NULL, cancel_requested = ?"+
				" WHERE job_runs.expires_at IS NULL OR job_runs.expires_at <= ?"+
				" RETURNING "+runColumns, j.ID, req.Executor, expires, false, now)
			if errors.Is(err, sql.ErrNoRows) {
				continue // another executor took it meanwhile
			}
			if err != nil {
				return err
			}
			claimed = append(claimed, claim(j, r))
			free[j.GPUType] -= j.GPUCount
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: claim for %s: %w", req.Executor, mapErr(err))
	}
	return claimed, nil
}

// Leases implements gaas.Dispatcher.
func (s *DispatchService) Leases(ctx context.Context, executor string) ([]gaas.Claimed, error) {
	if err := validExecutor(executor); err != nil {
		return nil, fmt.Errorf("store: leases: %w", err)
	}
	var jobs []jobRow
	if err := query(ctx, s.db.r, &jobs, "SELECT "+prefixed("j.", jobColumns)+" FROM job_runs r JOIN jobs j ON j.id = r.job_id"+
		" WHERE r.executor = ? AND r.expires_at > ? ORDER BY j.id LIMIT ?", executor, s.db.timestamp(), gaas.MaxClaim); err != nil {
		return nil, fmt.Errorf("store: leases of %s: %w", executor, mapErr(err))
	}
	out := make([]gaas.Claimed, 0, len(jobs))
	for _, j := range jobs {
		r, err := loadRun(ctx, s.db.r, j.ID, "")
		if err != nil {
			return nil, fmt.Errorf("store: leases of %s: %w", executor, err)
		}
		out = append(out, claim(j, r))
	}
	return out, nil
}

func claim(j jobRow, r runRow) gaas.Claimed {
	job := j.job()
	job.Run = r.run()
	return gaas.Claimed{Job: job, Lease: gaas.Lease{JobID: j.ID, Generation: r.Generation, Executor: r.Executor, ExpiresAt: r.ExpiresAt.UTC()}}
}

// freeByType is free by the catalogue's spelling of each type (a type it
// does not hold, as given), the counts of types spelled alike added up.
func (s *DispatchService) freeByType(ctx context.Context, idb bun.IDB, free map[string]int) (map[string]int, error) {
	out := make(map[string]int, len(free))
	for name, n := range free {
		if n <= 0 {
			continue
		}
		t, err := lookupGPUType(ctx, idb, name)
		switch {
		case errors.Is(err, gaas.ErrNotFound):
			t.Name = name
		case err != nil:
			return nil, err
		}
		const most = gaas.MaxGPUsPerJob * gaas.MaxClaim // more than any claim takes
		out[t.Name] = min(out[t.Name]+min(n, most), most)
	}
	return out, nil
}

// prefixed is a list of columns, each prefixed.
func prefixed(prefix, columns string) string {
	cols := strings.Split(columns, ", ")
	for i, c := range cols {
		cols[i] = prefix + c
	}
	return strings.Join(cols, ", ")
}

// leased reads a job and its run for a report on lease l, locked, and
// refuses a lease that is not the run's.
func (s *DispatchService) leased(ctx context.Context, tx bun.Tx, l gaas.Lease) (jobRow, runRow, error) {
	j, err := loadJobLocked(ctx, tx, l.JobID, s.db.lockRow)
	if err != nil {
		return j, runRow{}, err
	}
	if gaas.JobStatus(j.Status).Final() {
		return j, runRow{}, fmt.Errorf("job %d is %s: %w", j.ID, j.Status, gaas.ErrConflict)
	}
	r, err := loadRun(ctx, tx, l.JobID, s.db.lockRow)
	switch {
	case errors.Is(err, gaas.ErrNotFound):
		return j, r, fmt.Errorf("job %d was never leased: %w", l.JobID, gaas.ErrConflict)
	case err != nil:
		return j, r, err
	case !r.holds(l):
		return j, r, fmt.Errorf("%s no longer holds the lease of job %d (generation %d): %w", l.Executor, l.JobID, l.Generation, gaas.ErrConflict)
	}
	return j, r, nil
}

// Heartbeat implements gaas.Dispatcher.
func (s *DispatchService) Heartbeat(ctx context.Context, req gaas.HeartbeatRequest) (gaas.HeartbeatReply, error) {
	if err := errors.Join(validTTL(req.TTL), validText("external_id", req.ExternalID, false)); err != nil {
		return gaas.HeartbeatReply{}, fmt.Errorf("store: heartbeat: %w", err)
	}
	var reply gaas.HeartbeatReply
	err := s.db.tx(ctx, func(tx bun.Tx) error {
		j, r, err := s.leased(ctx, tx, req.Lease)
		if err != nil {
			return err
		}
		now := s.db.timestamp()
		if !r.ExpiresAt.After(now) {
			return fmt.Errorf("the lease of job %d expired at %s: %w", j.ID, r.ExpiresAt.UTC().Format(time.RFC3339), gaas.ErrConflict)
		}
		started := r.StartedAt
		if !req.Started.IsZero() && started == nil {
			at := clampTime(req.Started.UTC().Truncate(time.Microsecond), j.CreatedAt, now)
			started = &at
			if gaas.JobStatus(j.Status) == gaas.StatusApproved {
				if _, err := s.db.Jobs.apply(ctx, tx, &j, bySystem(executorActor(r.Executor)), gaas.StatusRunning, nil); err != nil {
					return err
				}
			}
		}
		external := r.ExternalID
		if req.ExternalID != "" {
			external = &req.ExternalID
		}
		expires := now.Add(req.TTL)
		if _, err := exec(ctx, tx, "UPDATE job_runs SET expires_at = ?, heartbeat_at = ?, started_at = ?, external_id = ? WHERE job_id = ?",
			expires, now, started, external, j.ID); err != nil {
			return err
		}
		reply = gaas.HeartbeatReply{ExpiresAt: expires, CancelRequested: r.CancelRequested}
		return nil
	})
	if err != nil {
		return gaas.HeartbeatReply{}, fmt.Errorf("store: heartbeat of job %d: %w", req.Lease.JobID, mapErr(err))
	}
	return reply, nil
}

func clampTime(t, lo, hi time.Time) time.Time {
	switch {
	case t.Before(lo):
		return lo
	case t.After(hi):
		return hi
	}
	return t
}

// executorActor is the name the system acts under for an executor.
func executorActor(name string) string { return "executor " + name }

// Finish implements gaas.Dispatcher.
func (s *DispatchService) Finish(ctx context.Context, req gaas.FinishRequest) (gaas.Job, error) {
	o := req.Outcome
	switch {
	case o.Status != gaas.StatusCompleted && o.Status != gaas.StatusFailed && o.Status != gaas.StatusCancelled:
		return gaas.Job{}, fmt.Errorf("store: finish: %w", gaas.Invalid("status", "must be %s, %s or %s", gaas.StatusCompleted, gaas.StatusFailed, gaas.StatusCancelled))
	case o.Elapsed < 0:
		return gaas.Job{}, fmt.Errorf("store: finish: %w", gaas.Invalid("elapsed", "must not be negative"))
	case o.SystemFault && o.Status != gaas.StatusFailed:
		// A job that completed or was cancelled ran for its owner.
		return gaas.Job{}, fmt.Errorf("store: finish: %w", gaas.Invalid("system_fault", "may be given only with status %s", gaas.StatusFailed))
	}
	if err := validText("reason", o.Reason, true); err != nil {
		return gaas.Job{}, fmt.Errorf("store: finish: %w", err)
	}
	var (
		job   gaas.Job
		moves []move
	)
	err := s.db.tx(ctx, func(tx bun.Tx) error {
		moves = moves[:0]
		j, r, err := s.leased(ctx, tx, req.Lease)
		if err != nil {
			return err
		}
		now := s.db.timestamp()
		started := r.StartedAt
		if started == nil && o.Elapsed > 0 {
			at := clampTime(now.Add(-o.Elapsed), j.CreatedAt, now)
			started = &at
		}
		moves, err = s.settle(ctx, tx, &j, bySystem(executorActor(r.Executor)), o)
		if err != nil {
			return err
		}
		var reason *string
		if o.Reason != "" {
			reason = &o.Reason
		}
		if _, err := exec(ctx, tx, "UPDATE job_runs SET expires_at = NULL, started_at = ?, ended_at = ?, exit_code = ?, reason = ? WHERE job_id = ?",
			started, now, o.ExitCode, reason, j.ID); err != nil {
			return err
		}
		r.ExpiresAt, r.StartedAt, r.EndedAt, r.ExitCode, r.Reason = nil, started, &now, o.ExitCode, reason
		job = j.job()
		job.Run = r.run()
		return nil
	})
	if err != nil {
		return gaas.Job{}, fmt.Errorf("store: finish job %d: %w", req.Lease.JobID, mapErr(err))
	}
	for _, m := range moves {
		s.db.observer.JobMoved(m.from, m.to, m.refund)
	}
	return job, nil
}

// move is one change of a job's status, for the observer.
type move struct {
	from, to gaas.JobStatus
	refund   gaas.Credits
}

// settle moves j, APPROVED or RUNNING, to the status of outcome o: a job
// that ran passes through RUNNING, and is charged o's actual hours; an
// APPROVED job cancelled before it ran is refunded all.
func (s *DispatchService) settle(ctx context.Context, tx bun.Tx, j *jobRow, by ledgerActor, o gaas.Outcome) ([]move, error) {
	var moves []move
	step := func(to gaas.JobStatus, actual *gaas.Hours) error {
		from := gaas.JobStatus(j.Status)
		refund, err := s.db.Jobs.apply(ctx, tx, j, by, to, actual)
		moves = append(moves, move{from, to, refund})
		return err
	}
	if gaas.JobStatus(j.Status) == gaas.StatusApproved {
		if o.Status == gaas.StatusCancelled && o.Elapsed == 0 {
			return moves, step(gaas.StatusCancelled, nil)
		}
		if err := step(gaas.StatusRunning, nil); err != nil {
			return moves, err
		}
	}
	actual := o.ActualHours(gaas.Hours(j.Estimated))
	return moves, step(o.Status, &actual)
}

// maxReap bounds the expired leases one ReapExpired settles.
const maxReap = 100

// ReapExpired ends the leases that expired, up to a bounded number a call,
// and says how many it ended: a job that had not started goes back to the
// queue, one that had is FAILED, charged from its start to its last
// heartbeat. The worker calls it periodically.
func (s *DispatchService) ReapExpired(ctx context.Context) (int, error) {
	var ids []int64
	now := s.db.timestamp()
	if err := query(ctx, s.db.w, &ids, "SELECT job_id FROM job_runs WHERE expires_at <= ? ORDER BY expires_at LIMIT ?", now, maxReap); err != nil {
		return 0, fmt.Errorf("store: reap expired leases: %w", mapErr(err))
	}
	n := 0
	for _, id := range ids {
		var (
			moves  []move
			reaped bool
		)
		err := s.db.tx(ctx, func(tx bun.Tx) error {
			moves, reaped = moves[:0], false
			j, err := loadJobLocked(ctx, tx, id, s.db.lockRow)
			if err != nil {
				return err
			}
			r, err := loadRun(ctx, tx, id, s.db.lockRow)
			if err != nil {
				return err
			}
			now := s.db.timestamp()
			if r.ExpiresAt == nil || r.ExpiresAt.After(now) {
				return nil // renewed or finished meanwhile
			}
			reaped = true
			if gaas.JobStatus(j.Status) != gaas.StatusRunning {
				// Not started: back to the queue, for the next claim. A
				// final job's lease just ends.
				_, err := exec(ctx, tx, "UPDATE job_runs SET expires_at = NULL WHERE job_id = ?", id)
				return err
			}
			var ran time.Duration
			if r.StartedAt != nil && r.HeartbeatAt != nil {
				ran = r.HeartbeatAt.Sub(*r.StartedAt)
			}
			reason := fmt.Sprintf("lost: no heartbeat from %s since %s", r.Executor, r.ExpiresAt.UTC().Format(time.RFC3339))
			moves, err = s.settle(ctx, tx, &j, bySystem(executorActor(r.Executor)), gaas.Outcome{Status: gaas.StatusFailed, Elapsed: max(ran, 0), Reason: reason})
			if err != nil {
				return err
			}
			_, err = exec(ctx, tx, "UPDATE job_runs SET expires_at = NULL, ended_at = ?, reason = ? WHERE job_id = ?", now, reason, id)
			return err
		})
		if err != nil {
			return n, fmt.Errorf("store: reap the lease of job %d: %w", id, mapErr(err))
		}
		if reaped {
			n++
		}
		for _, m := range moves {
			s.db.observer.JobMoved(m.from, m.to, m.refund)
		}
	}
	return n, nil
}

// requestCancel asks the executor that runs j, a RUNNING job, to stop it:
// the job stays RUNNING until the executor finishes it with the time it
// used. A job that no executor holds a live lease on is a
// *gaas.TransitionError: an admin cancels it with the hours it ran.
func (db *DB) requestCancel(ctx context.Context, tx bun.Tx, j *jobRow) error {
	now := db.timestamp()
	res, err := exec(ctx, tx, "UPDATE job_runs SET cancel_requested = ? WHERE job_id = ? AND expires_at > ?", true, j.ID, now)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return &gaas.TransitionError{From: gaas.StatusRunning, To: gaas.StatusCancelled,
			Why: "no executor runs it, so an admin cancels it with actual_hours, the hours it ran"}
	}
	return nil
}
