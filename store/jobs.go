package store

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/gaas-io/gaas/gaas"
)

type jobRow struct {
	ID             int64     `bun:"id"`
	UserID         int64     `bun:"user_id"`
	AccountID      int64     `bun:"account_id"`
	ProjectID      *int64    `bun:"project_id"`
	Command        string    `bun:"command"`
	GPUType        string    `bun:"gpu_type"`
	GPUCount       int       `bun:"gpu_count"`
	Estimated      int64     `bun:"estimated"`
	Actual         *int64    `bun:"actual"`
	Rate           int64     `bun:"rate"`
	Cost           int64     `bun:"cost"`
	Draws          string    `bun:"draws"`
	Status         string    `bun:"status"`
	IdempotencyKey *string   `bun:"idempotency_key"`
	CreatedAt      time.Time `bun:"created_at"`
	UpdatedAt      time.Time `bun:"updated_at"`
	EndReason      *string   `bun:"end_reason"` // why the system ended it; nil when a person did
}

const jobColumns = "id, user_id, account_id, project_id, command, gpu_type, gpu_count, estimated, actual, rate, cost, draws, status, idempotency_key, created_at, updated_at, end_reason"

func (r *jobRow) job() gaas.Job {
	j := gaas.Job{
		ID: r.ID, UserID: r.UserID, AccountID: r.AccountID, Command: r.Command, GPUType: r.GPUType, GPUCount: r.GPUCount,
		EstimatedHours: gaas.Hours(r.Estimated), Rate: gaas.Rate(r.Rate), Cost: gaas.Credits(r.Cost),
		Status: gaas.JobStatus(r.Status), CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(),
	}
	j.Draws, _ = decodeDraws(r.Draws) // written by encodeDraws; Check reports any other
	if r.ProjectID != nil {
		j.ProjectID = *r.ProjectID
	}
	if r.Actual != nil {
		a := gaas.Hours(*r.Actual)
		j.ActualHours = &a
	}
	if r.EndReason != nil {
		j.EndReason = *r.EndReason
	}
	return j
}

// price is what the job's charges follow.
func (r *jobRow) price() gaas.Price {
	return gaas.Price{Estimate: gaas.Hours(r.Estimated), GPUs: r.GPUCount, Rate: gaas.Rate(r.Rate)}
}

// sameRequest reports whether the job was submitted with req's fields. The
// GPU type is compared without regard to case: the job keeps the
// catalogue's spelling.
func (r *jobRow) sameRequest(req gaas.SubmitRequest) bool {
	return r.Command == req.Command && gaas.SameGPUType(r.GPUType, req.GPUType) && r.Estimated == int64(req.EstimatedHours) &&
		r.GPUCount == gpuCount(req)
}

// gpuCount is the GPUs a submission asks for: 1 unless it says.
func gpuCount(req gaas.SubmitRequest) int { return max(req.GPUCount, 1) }

// JobService implements gaas.JobService on the store.
type JobService struct{ db *DB }

var _ gaas.JobService = (*JobService)(nil)

func loadJob(ctx context.Context, idb bun.IDB, id int64) (jobRow, error) {
	return loadJobLocked(ctx, idb, id, "")
}

// loadJobLocked reads a job with a row-locking suffix (DB.lockRow).
func loadJobLocked(ctx context.Context, idb bun.IDB, id int64, lock string) (jobRow, error) {
	var j jobRow
	err := query(ctx, idb, &j, "SELECT "+jobColumns+" FROM jobs WHERE id = ?"+lock, id)
	return j, mapErr(err)
}

// loadJobByKey finds the caller's job submitted with an idempotency key.
func loadJobByKey(ctx context.Context, idb bun.IDB, userID int64, key string) (jobRow, error) {
	var j jobRow
	err := query(ctx, idb, &j, "SELECT "+jobColumns+" FROM jobs WHERE user_id = ? AND idempotency_key = ?", userID, key)
	return j, mapErr(err)
}

// replay answers a retry of an idempotent submission with the first job,
// or gaas.ErrConflict (as keyReused) when the retry asks for something
// else; err is a statement that failed. A retry that names a project asks
// for the job's project; one that names none may have meant the default
// the first job went to, whatever it is now.
func replay(ctx context.Context, idb bun.IDB, j jobRow, req gaas.SubmitRequest) (jobRow, error) {
	same := j.sameRequest(req)
	if same && req.Project != "" {
		pr, err := loadProject(ctx, idb, req.Project)
		if err != nil && !errors.Is(err, gaas.ErrNotFound) {
			return jobRow{}, err
		}
		same = err == nil && j.ProjectID != nil && *j.ProjectID == pr.ID
	}
	if !same {
		return jobRow{}, keyReused{fmt.Errorf("idempotency key was used for job %d, a different request: %w", j.ID, gaas.ErrConflict)}
	}
	return j, nil
}

// Submit implements gaas.JobService. The submission joins the next group
// commit and is answered within Options.BatchTimeout: with
// gaas.ErrUnavailable when its batch could not commit in that time, and
// with ErrClosed once the store is closed. ctx is heeded until the batch
// begins, and Submit returns ctx's error only when nothing was written;
// from then on the submission is carried through, whatever becomes of ctx.
func (s *JobService) Submit(ctx context.Context, caller int64, req gaas.SubmitRequest) (gaas.Job, error) {
	if err := req.Validate(); err != nil {
		return gaas.Job{}, fmt.Errorf("store: submit job: %w", err)
	}
	j, err := s.db.batch.submit(ctx, caller, req)
	if req.IdempotencyKey != "" && errors.Is(err, gaas.ErrConflict) && !errors.As(err, new(keyReused)) {
		// Another transaction inserted the same key first and committed:
		// answer with its job.
		j, err = loadJobByKey(ctx, s.db.w, caller, req.IdempotencyKey)
		if err == nil {
			j, err = replay(ctx, s.db.w, j, req)
		}
	}
	if err != nil {
		return gaas.Job{}, fmt.Errorf("store: submit job for user %d: %w", caller, err)
	}
	return j.job(), nil
}

// keyReused marks the refusal of a key used before for another request,
// so that Submit does not take it for a race lost to a retry of the same.
type keyReused struct{ error }

func (e keyReused) Unwrap() error { return e.error }

// submit applies one submission in tx, whose prepared statements are hot.
// Its answer is a job (fresh when new, rather than the replay of an earlier
// one) or a refusal, decided here after statements that succeeded and
// before any write, so that the transaction can go on. err is a statement
// that failed, after which the transaction may not go on: the batch
// undoes this submission alone (see batch.go).
func (s *JobService) submit(ctx context.Context, tx bun.Tx, hot *hotTx, caller int64, req gaas.SubmitRequest) (submitResult, error) {
	refuse := func(err error) (submitResult, error) { return submitResult{err: err}, nil }
	// On PostgreSQL the batch has locked the caller's account, and every
	// account the submission may change, until it commits (lockBatch):
	// every change of those allocations queues behind this one, and a
	// retry racing its first attempt finds the first job once that
	// commits, instead of finding no job and then allocations it already
	// spent.
	now := s.db.timestamp()
	who, read := hot.callers[caller]
	var (
		err     error
		found   typeFound
		own     []gaas.Allocation
		shallow = read // on PostgreSQL the caller was read ahead, the rest is read below
	)
	if !read && hot.callers == nil {
		who, found, own, err = hot.begin(ctx, caller, req.GPUType, now)
	}
	switch {
	case errors.Is(err, gaas.ErrNotFound) || (hot.callers != nil && !read):
		return refuse(fmt.Errorf("the user does not exist: %w", gaas.ErrUnauthorized))
	case err != nil:
		return submitResult{}, err
	case who.disabled:
		return refuse(fmt.Errorf("caller %d is disabled: %w", caller, gaas.ErrUnauthorized))
	}
	var key *string
	if req.IdempotencyKey != "" {
		key = &req.IdempotencyKey
		j, err := loadJobByKey(ctx, tx, caller, req.IdempotencyKey)
		switch {
		case err == nil:
			if j, err = replay(ctx, tx, j, req); errors.As(err, new(keyReused)) {
				return refuse(err)
			} else if err != nil {
				return submitResult{}, err
			}
			return submitResult{job: j}, nil
		case !errors.Is(err, gaas.ErrNotFound):
			return submitResult{}, err
		}
	}
	target, refusal, err := resolveTarget(ctx, tx, caller, who, req.Project)
	switch {
	case err != nil:
		return submitResult{}, err
	case refusal != nil:
		return refuse(refusal)
	case hot.locked != nil && !hot.locked[target.account]:
		// The caller's default project changed between the locks and now.
		return refuse(fmt.Errorf("%w: the caller's default project changed while the submission waited", gaas.ErrUnavailable))
	}
	gpus := gpuCount(req)
	var p priced
	if shallow {
		p, err = hot.price(ctx, req.GPUType, gpus)
	} else {
		p, err = hot.priceOf(ctx, found, req.GPUType, gpus)
	}
	gpuType, rate := p.name, p.rate
	var invalid *gaas.ValidationError
	if errors.As(err, &invalid) {
		return refuse(err)
	} else if err != nil {
		return submitResult{}, err
	}
	cost, ok := gaas.Cost(req.EstimatedHours, gpus, rate)
	if !ok {
		return refuse(gaas.Invalid("estimated_hours", "%s hours of %d GPUs at %s credits an hour cost more than the maximum of %s credits",
			req.EstimatedHours, gpus, rate, gaas.MaxCredits))
	}
	if err := target.check(gpuType, cost); err != nil {
		return refuse(err)
	}
	allocs := own
	if shallow || target.account != who.account {
		if allocs, err = hot.allocations(ctx, target.account, now); err != nil {
			return submitResult{}, err
		}
	}
	draws, available := gaas.PlanDraws(allocs, gpuType, cost, now)
	if draws == nil && cost > 0 {
		return refuse(&gaas.QuotaError{Asked: cost, Remaining: available, GPUType: gpuType})
	}
	status := gaas.StatusPending
	if p.auto || target.autoApprove() {
		status = gaas.StatusApproved // for an executor to run, without waiting for an admin
	}
	j := jobRow{
		UserID: caller, AccountID: target.account, ProjectID: target.projectID(), Command: req.Command, GPUType: gpuType, GPUCount: gpus,
		Estimated: int64(req.EstimatedHours), Rate: int64(rate), Cost: int64(cost), Draws: encodeDraws(draws),
		Status: string(status), IdempotencyKey: key, CreatedAt: now, UpdatedAt: now,
	}
	if err := hot.insertJobRow(ctx, &j); err != nil {
		return submitResult{}, mapErr(err)
	}
	// Each draw, then its entry, which reads the remaining and the balance
	// right after it.
	for _, d := range draws {
		if err := hot.draw(ctx, d); err != nil {
			return submitResult{}, err
		}
		if err := hot.recordCharge(ctx, &j, d, target.memberID()); err != nil {
			return submitResult{}, mapErr(err)
		}
	}
	if err := target.spend(ctx, tx, cost); err != nil {
		return submitResult{}, mapErr(err)
	}
	// Thresholds crossed, decided from the allocations as read: nothing
	// more to run unless one was.
	var owner int64 // the account's user, when it is the caller's own
	if target.account == who.account {
		owner = caller
	}
	if err := s.db.noteThresholds(ctx, tx, allocs, draws, &j, owner); err != nil {
		return submitResult{}, err
	}
	return submitResult{job: j, fresh: true}, nil
}

// Get implements gaas.JobService.
func (s *JobService) Get(ctx context.Context, caller int64, req gaas.GetJobRequest) (gaas.Job, error) {
	id := req.JobID
	c, err := loadCaller(ctx, s.db.r, caller)
	if err != nil {
		return gaas.Job{}, fmt.Errorf("store: get job %d: %w", id, err)
	}
	j, err := loadJob(ctx, s.db.r, id)
	if err == nil {
		err = gaas.Allow(c.principal(), gaas.ActionReadJob, j.UserID)
	}
	if err != nil {
		return gaas.Job{}, fmt.Errorf("store: get job %d: %w", id, err)
	}
	return s.withRun(ctx, j.job())
}

// List implements gaas.JobService.
func (s *JobService) List(ctx context.Context, caller int64, f gaas.JobFilter) (gaas.JobPage, error) {
	return s.listBy(ctx, gaas.Principal{UserID: caller}, f)
}

// listBy is List for a principal, which may be the system (gaas.System).
func (s *JobService) listBy(ctx context.Context, p gaas.Principal, f gaas.JobFilter) (gaas.JobPage, error) {
	limit, before, err := readPage(f.Page, math.MaxInt64)
	if err == nil && f.Status != "" && !f.Status.Valid() {
		err = gaas.Invalid("status", "must be one of %s", gaas.StatusList())
	}
	if err == nil && f.UserID < 0 {
		err = gaas.Invalid("user_id", "must be a positive id")
	}
	if err != nil {
		return gaas.JobPage{}, fmt.Errorf("store: list jobs: %w", err)
	}
	if !p.IsSystem() {
		c, err := loadCaller(ctx, s.db.r, p.UserID)
		if err != nil {
			return gaas.JobPage{}, fmt.Errorf("store: list jobs: %w", err)
		}
		p = c.principal()
	}
	where, args := "id < ?", []any{before}
	if f.ProjectID != 0 {
		// A project's jobs, for its managers and admins.
		if _, err := visibleProject(ctx, s.db.r, p, projectRef(f.ProjectID), gaas.ActionReadProjectLedger); err != nil {
			return gaas.JobPage{}, fmt.Errorf("store: list jobs: %w", err)
		}
		where, args = where+" AND project_id = ?", append(args, f.ProjectID)
	} else {
		if f.UserID == 0 && gaas.Allow(p, gaas.ActionListJobs, 0) != nil {
			f.UserID = p.UserID // everyone's jobs are not for the caller to see: their own are
		}
		if err := gaas.Allow(p, gaas.ActionListJobs, f.UserID); err != nil {
			return gaas.JobPage{}, fmt.Errorf("store: list jobs of user %d: %w", f.UserID, err)
		}
	}
	if f.UserID != 0 {
		where, args = where+" AND user_id = ?", append(args, f.UserID)
	}
	if f.Status != "" {
		where, args = where+" AND status = ?", append(args, string(f.Status))
	}
	if f.GPUType != "" {
		// A type of the catalogue is named in any case, and finds the jobs
		// submitted under any case of its name (in open mode, before it
		// was added, jobs kept the spelling they were submitted with); any
		// other is matched as submitted.
		match := " AND gpu_type = ?"
		if _, err := lookupGPUType(ctx, s.db.r, f.GPUType); err == nil {
			match = " AND lower(gpu_type) = lower(?)"
		} else if !errors.Is(err, gaas.ErrNotFound) {
			return gaas.JobPage{}, fmt.Errorf("store: list jobs: %w", err)
		}
		where, args = where+match, append(args, f.GPUType)
	}
	if !f.Since.IsZero() {
		where, args = where+" AND created_at >= ?", append(args, f.Since.UTC())
	}
	if !f.Until.IsZero() {
		where, args = where+" AND created_at < ?", append(args, f.Until.UTC())
	}
	var rows []jobRow
	if err := query(ctx, s.db.r, &rows, "SELECT "+jobColumns+" FROM jobs WHERE "+where+" ORDER BY id DESC LIMIT ?",
		append(args, limit+1)...); err != nil {
		return gaas.JobPage{}, fmt.Errorf("store: list jobs: %w", mapErr(err))
	}
	var out gaas.JobPage
	out.Items, out.NextCursor = pageOf(rows, limit, func(r jobRow) int64 { return r.ID }, (*jobRow).job)
	if err := withRuns(ctx, s.db.r, out.Items); err != nil {
		return gaas.JobPage{}, fmt.Errorf("store: list jobs: %w", mapErr(err))
	}
	return out, nil
}

// Transition implements gaas.JobService.
func (s *JobService) Transition(ctx context.Context, caller int64, req gaas.TransitionRequest) (gaas.Job, error) {
	id, to, actual := req.JobID, req.To, req.ActualHours
	if err := req.Validate(); err != nil {
		return gaas.Job{}, fmt.Errorf("store: transition job %d: %w", id, err)
	}
	// Who may move a job does not depend on the job, so the policy is asked
	// before the job is read: a caller who may not ask learns nothing of
	// which jobs exist. The one exception is a manager of a project that
	// lets managers approve, who may approve or reject its PENDING jobs:
	// any other job is refused them alike, whether it exists or not.
	var managing bool
	job, err := s.move(ctx, caller, id, to, actual, req.Reason, func(tx bun.Tx, c userRow, j *jobRow) error {
		if j == nil {
			err := gaas.Allow(c.principal(), gaas.ActionMoveJob, 0)
			if errors.Is(err, gaas.ErrForbidden) && (to == gaas.StatusApproved || to == gaas.StatusRejected) {
				var n int
				if qerr := query(ctx, tx, &n, "SELECT count(*) FROM project_members m JOIN projects p ON p.id = m.project_id"+
					" WHERE m.user_id = ? AND m.role = ? AND m.active = ? AND p.managers_approve = ?",
					c.ID, string(gaas.ProjectManager), true, true); qerr != nil {
					return qerr
				}
				managing = n > 0
				if managing {
					return nil
				}
			}
			return err
		}
		if !managing {
			return nil
		}
		refused := fmt.Errorf("user %d may not move job %d: %w", c.ID, j.ID, gaas.ErrForbidden)
		if j.ProjectID == nil || gaas.JobStatus(j.Status) != gaas.StatusPending {
			return refused
		}
		var approve bool
		if err := query(ctx, tx, &approve, "SELECT managers_approve FROM projects WHERE id = ?", *j.ProjectID); err != nil {
			return err
		}
		if !approve || mustRole(ctx, tx, *j.ProjectID, c.ID) != gaas.ProjectManager {
			return refused
		}
		return nil
	})
	if managing && errors.Is(err, gaas.ErrNotFound) {
		err = fmt.Errorf("store: move job %d to %s: %w", id, to, gaas.ErrForbidden)
	}
	return job, err
}

// Cancel implements gaas.JobService.
func (s *JobService) Cancel(ctx context.Context, caller int64, req gaas.CancelRequest) (gaas.Job, error) {
	return s.move(ctx, caller, req.JobID, gaas.StatusCancelled, nil, "", func(_ bun.Tx, c userRow, j *jobRow) error {
		if j == nil {
			return nil
		}
		return gaas.Allow(c.principal(), gaas.ActionCancelJob, j.UserID)
	})
}

// move changes a job's status in one transaction, after allow has checked
// the caller, and refunds what the new status returns; a reason, when
// given, becomes the job's EndReason. allow is called
// twice: with a nil job before the job is read, and then with the job.
func (s *JobService) move(ctx context.Context, caller, id int64, to gaas.JobStatus, actual *gaas.Hours, reason string,
	allow func(tx bun.Tx, c userRow, j *jobRow) error) (gaas.Job, error) {
	var (
		j         jobRow
		from      gaas.JobStatus
		refund    gaas.Credits
		requested bool // a cancellation, for the executor to carry out
	)
	err := s.db.tx(ctx, func(tx bun.Tx) error {
		c, err := loadCaller(ctx, tx, caller)
		if err != nil {
			return err
		}
		if err := allow(tx, c, nil); err != nil {
			return err
		}
		if j, err = loadJobLocked(ctx, tx, id, s.db.lockRow); err != nil {
			return err
		}
		if err := allow(tx, c, &j); err != nil {
			return err
		}
		from = gaas.JobStatus(j.Status)
		if to == gaas.StatusCancelled && from == gaas.StatusRunning && actual == nil {
			// Its executor stops it and settles the time it used.
			requested = true
			return s.db.requestCancel(ctx, tx, &j)
		}
		if reason != "" && from != to {
			j.EndReason = &reason
		}
		refund, err = s.apply(ctx, tx, &j, byUser(caller), to, actual)
		return err
	})
	if err != nil {
		return gaas.Job{}, fmt.Errorf("store: move job %d to %s: %w", id, to, mapErr(err))
	}
	if from != to && !requested {
		s.db.observer.JobMoved(from, to, refund)
	}
	return s.withRun(ctx, j.job())
}

// withRun adds to job the run it has.
func (s *JobService) withRun(ctx context.Context, job gaas.Job) (gaas.Job, error) {
	jobs := []gaas.Job{job}
	if err := withRuns(ctx, s.db.r, jobs); err != nil {
		return gaas.Job{}, fmt.Errorf("store: job %d: %w", job.ID, mapErr(err))
	}
	return jobs[0], nil
}

// transitionSQL moves a job from one status to another.
const transitionSQL = "UPDATE jobs SET status = ?, actual = ?, updated_at = ?, end_reason = ? WHERE id = ? AND status = ?"

// apply moves j to status to in tx, by actor, and returns the credits it
// refunded, which go back to the allocations the job drew from
// (gaas.Returns). The job keeps j.EndReason.
func (s *JobService) apply(ctx context.Context, tx bun.Tx, j *jobRow, by ledgerActor, to gaas.JobStatus, actual *gaas.Hours) (gaas.Credits, error) {
	from := gaas.JobStatus(j.Status)
	refund, err := gaas.Settle(gaas.Move{Price: j.price(), From: from, To: to, Actual: actual})
	if err != nil || from == to {
		return 0, err // from == to: a retry of a move already made
	}
	var target chargeTarget
	if refund != 0 {
		// The accounts' locks before the time of the refund: an end of one
		// of the allocations that commits first is then before the refund,
		// which giveBack expires at once.
		if target, err = jobTarget(ctx, tx, j); err != nil {
			return 0, err
		}
		if err := s.db.lockAccounts(ctx, tx, append(chainAccounts(target.chain), j.AccountID)...); err != nil {
			return 0, err
		}
	}
	if actual != nil {
		a := int64(*actual)
		j.Actual = &a
	}
	now := s.db.timestamp()
	res, err := exec(ctx, tx, transitionSQL, string(to), j.Actual, now, j.EndReason, j.ID, j.Status)
	if err != nil {
		return 0, err
	}
	if n, err := res.RowsAffected(); err != nil {
		return 0, err
	} else if n != 1 {
		return 0, fmt.Errorf("the job changed meanwhile: %w", gaas.ErrConflict)
	}
	j.Status, j.UpdatedAt = string(to), now
	if to.Final() {
		// An executor's lease ends with the job; its next report is refused.
		if _, err := exec(ctx, tx, "UPDATE job_runs SET expires_at = NULL WHERE job_id = ? AND expires_at IS NOT NULL", j.ID); err != nil {
			return 0, err
		}
	}
	if err := s.db.jobMoved(ctx, tx, j, from, refund, by); err != nil {
		return 0, err
	}
	if refund == 0 {
		return 0, nil
	}
	draws, err := decodeDraws(j.Draws)
	if err != nil {
		return 0, fmt.Errorf("job %d: %w", j.ID, err)
	}
	reason := fmt.Sprintf("job %d %s", j.ID, strings.ToLower(string(to)))
	for _, back := range gaas.Returns(draws, refund) {
		if err := giveBack(ctx, tx, entry{
			AccountID: j.AccountID, AllocationID: back.AllocationID, JobID: &j.ID, MemberID: target.memberID(), Actor: by,
			Kind: gaas.LedgerRefund, Delta: back.Amount, Reason: reason, At: now,
		}); err != nil {
			return 0, err
		}
	}
	return refund, target.spend(ctx, tx, -refund)
}

// StaleBatch is the most jobs one call of Upkeep.CancelStale cancels,
// each in a transaction of its own: a backlog is worked off over calls,
// and no call holds locks long.
const StaleBatch = 200

// CancelStale cancels, by the system as gaas.SystemStale, the jobs that
// hold credits unused for longer than olderThan: PENDING since they were
// submitted, or APPROVED and not started since they were approved (and
// not held by an executor, in whose queue they wait their turn). Each
// gets its full return, as a user's cancel does, and says why it ended
// (gaas.Job.EndReason). It cancels at most StaleBatch jobs and returns how
// many it cancelled; a caller with more to do calls again.
//
// Each job is read again under its lock and cancelled only if it is still
// stale: a job that a user moved meanwhile is left alone, so a job is
// cancelled once, by them or by the system, and refunded once. Several
// processes may call it at once.
func (s *Upkeep) CancelStale(ctx context.Context, olderThan time.Duration) (int, error) {
	if olderThan <= 0 {
		return 0, fmt.Errorf("store: cancel stale jobs: %w", gaas.Invalid("older_than", "must be positive"))
	}
	cutoff := s.db.timestamp().Add(-olderThan)
	var ids []int64
	if err := query(ctx, s.db.r, &ids, "SELECT id FROM jobs WHERE ((status = ? AND created_at <= ?) OR (status = ? AND updated_at <= ?))"+
		" AND NOT EXISTS (SELECT 1 FROM job_runs r WHERE r.job_id = jobs.id AND r.expires_at > ?) ORDER BY id LIMIT ?",
		string(gaas.StatusPending), cutoff, string(gaas.StatusApproved), cutoff, s.db.timestamp(), StaleBatch); err != nil {
		return 0, fmt.Errorf("store: cancel stale jobs: %w", mapErr(err))
	}
	n := 0
	var errs []error
	for _, id := range ids {
		cancelled, err := s.cancelStale(ctx, id, olderThan)
		if err != nil {
			errs = append(errs, err)
			if ctx.Err() != nil {
				break
			}
		}
		if cancelled {
			n++
		}
	}
	return n, errors.Join(errs...)
}

// cancelStale cancels job id if it is stale (staleReason) now, and reports
// whether it did.
func (s *Upkeep) cancelStale(ctx context.Context, id int64, olderThan time.Duration) (bool, error) {
	var (
		j      jobRow
		from   gaas.JobStatus
		refund gaas.Credits
		reason string
	)
	err := s.db.tx(ctx, func(tx bun.Tx) error {
		var err error
		if j, err = loadJobLocked(ctx, tx, id, s.db.lockRow); err != nil {
			return err
		}
		from = gaas.JobStatus(j.Status)
		if reason = staleReason(j, s.db.timestamp(), olderThan); reason == "" {
			return nil
		}
		// A job an executor holds waits for its turn there, not for anyone here.
		var leased int
		if err := query(ctx, tx, &leased, "SELECT count(*) FROM job_runs WHERE job_id = ? AND expires_at > ?", id, s.db.timestamp()); err != nil {
			return err
		}
		if leased > 0 {
			reason = ""
			return nil
		}
		j.EndReason = &reason
		refund, err = s.db.Jobs.apply(ctx, tx, &j, actor(gaas.System(gaas.SystemStale)), gaas.StatusCancelled, nil)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("store: cancel stale job %d: %w", id, mapErr(err))
	}
	if reason == "" {
		return false, nil
	}
	s.db.observer.JobMoved(from, gaas.StatusCancelled, refund)
	return true, nil
}

// staleReason says why j, at now, has held its credits unused too long,
// or "" when it has not.
func staleReason(j jobRow, now time.Time, olderThan time.Duration) string {
	switch gaas.JobStatus(j.Status) {
	case gaas.StatusPending:
		if !j.CreatedAt.After(now.Add(-olderThan)) {
			return fmt.Sprintf("stale: pending longer than %s", olderThan)
		}
	case gaas.StatusApproved:
		if !j.UpdatedAt.After(now.Add(-olderThan)) {
			return fmt.Sprintf("stale: approved and not started for longer than %s", olderThan)
		}
	}
	return ""
}
