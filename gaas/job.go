package gaas

import (
	"context"
	"slices"
	"time"
)

// JobStatus is where a job is in its lifecycle.
type JobStatus string

const (
	StatusPending   JobStatus = "PENDING"
	StatusApproved  JobStatus = "APPROVED"
	StatusRunning   JobStatus = "RUNNING"
	StatusCompleted JobStatus = "COMPLETED"
	StatusFailed    JobStatus = "FAILED"
	StatusRejected  JobStatus = "REJECTED"
	StatusCancelled JobStatus = "CANCELLED"
)

var statuses = []JobStatus{
	StatusPending, StatusApproved, StatusRunning,
	StatusCompleted, StatusFailed, StatusRejected, StatusCancelled,
}

// transitions is the lifecycle of a job: the statuses each status may move
// to. A status with no entry is final.
var transitions = map[JobStatus][]JobStatus{
	StatusPending:  {StatusApproved, StatusRejected, StatusCancelled},
	StatusApproved: {StatusRunning, StatusCancelled},
	StatusRunning:  {StatusCompleted, StatusFailed, StatusCancelled},
}

// Statuses returns every status, in lifecycle order.
func Statuses() []JobStatus { return slices.Clone(statuses) }

// Transitions returns the lifecycle of a job: for each status that is not
// final, the statuses it may move to. The store enforces exactly this
// table, and a test holds docs/API.md to it. The map is the caller's own.
func Transitions() map[JobStatus][]JobStatus {
	t := make(map[JobStatus][]JobStatus, len(transitions))
	for from, to := range transitions {
		t[from] = slices.Clone(to)
	}
	return t
}

// Valid reports whether s is a known status.
func (s JobStatus) Valid() bool { return slices.Contains(statuses, s) }

// Final reports whether no transition leaves s.
func (s JobStatus) Final() bool { return len(transitions[s]) == 0 }

// Next returns the statuses a job in status s may move to; none when s is final.
func (s JobStatus) Next() []JobStatus { return slices.Clone(transitions[s]) }

// CanMove reports whether the table allows a job in status s to move to to.
func (s JobStatus) CanMove(to JobStatus) bool { return slices.Contains(transitions[s], to) }

// RefundsAll reports whether entering s returns the job's whole reservation.
func (s JobStatus) RefundsAll() bool { return s == StatusRejected || s == StatusCancelled }

// TakesActualHours reports whether a job entering s may be charged its
// actual hours instead of its estimate: a job that ends after it ran,
// cancelled while running included.
func (s JobStatus) TakesActualHours() bool {
	return s == StatusCompleted || s == StatusFailed || s == StatusCancelled
}

// Job is a request for GPU time. The Cost of its estimate on its GPUs at
// its type's rate is charged when it is submitted, drawn from the owner's
// allocations; ActualHours, when set, is what it was finally charged for.
type Job struct {
	ID        int64
	UserID    int64
	AccountID int64
	// ProjectID is the project the job is charged to; 0 for its owner's
	// own account.
	ProjectID int64
	Command   string
	// GPUType is the type as the catalogue spells it (in open mode, as
	// submitted).
	GPUType        string
	GPUCount       int
	EstimatedHours Hours
	ActualHours    *Hours
	// Rate is the rate of the GPU type when the job was submitted; the job
	// is settled at it whatever the catalogue says later.
	Rate Rate
	// Cost is the credits charged at submission: Cost(EstimatedHours,
	// GPUCount, Rate).
	Cost Credits
	// Draws says which allocations paid Cost, in the order they were drawn.
	Draws  []Draw
	Status JobStatus
	// Run is what the executor that ran the job reported; nil for a job no
	// executor claimed.
	Run       *JobRun
	CreatedAt time.Time
	UpdatedAt time.Time
	// EndReason says why the job ended: why the system ended it, such as
	// a stale reservation cancelled, or the reason a person gave when they
	// rejected it (TransitionRequest.Reason); often empty.
	EndReason string
}

// Price is what the job's charges follow.
func (j Job) Price() Price { return Price{Estimate: j.EstimatedHours, GPUs: j.GPUCount, Rate: j.Rate} }

// SubmitRequest is what a user asks for when submitting a job.
type SubmitRequest struct {
	Command        string
	GPUType        string
	EstimatedHours Hours
	// GPUCount is how many GPUs the job uses; 0 means 1.
	GPUCount int
	// Project, when set, is the project the job is charged to; empty
	// charges the caller's default project if they set one, else their
	// own account.
	Project ProjectRef
	// IdempotencyKey, when set, makes retries safe: the same key with the
	// same request returns the first job and charges nothing more. Keys are
	// scoped to the caller.
	IdempotencyKey string
}

// Validate lists every field of r that breaks a rule.
func (r SubmitRequest) Validate() error {
	v := &ValidationError{}
	commandText.add(v, "command", r.Command)
	gpuTypeText.add(v, "gpu_type", r.GPUType)
	if r.EstimatedHours <= 0 {
		v.Add("estimated_hours", "must be greater than 0")
	} else if r.EstimatedHours > MaxHours {
		v.Add("estimated_hours", "must be at most %s", MaxHours)
	}
	if r.GPUCount < 0 || r.GPUCount > MaxGPUsPerJob {
		v.Add("gpu_count", "must be between 1 and %d", MaxGPUsPerJob)
	}
	if r.IdempotencyKey != "" {
		if err := ValidateIdempotencyKey(r.IdempotencyKey); err != nil {
			v.Fields = append(v.Fields, err.(*ValidationError).Fields...)
		}
	}
	return v.Err()
}

// ValidateIdempotencyKey reports whether key is 1–255 printable ASCII characters.
func ValidateIdempotencyKey(key string) error {
	if len(key) < 1 || len(key) > IdempotencyKeyMaxLen {
		return Invalid("idempotency_key", "must be 1 to %d characters", IdempotencyKeyMaxLen)
	}
	for i := 0; i < len(key); i++ {
		if key[i] < 0x20 || key[i] > 0x7e {
			return Invalid("idempotency_key", "must hold only printable ASCII characters")
		}
	}
	return nil
}

// JobFilter narrows a listing of jobs. Zero fields do not filter.
type JobFilter struct {
	Status JobStatus
	// UserID lists one user's jobs; only admins may name another user.
	UserID int64
	// GPUType lists the jobs of that GPU type: a type of the catalogue in
	// any letter case, any other exactly as submitted.
	GPUType string
	// ProjectID lists the jobs charged to that project, for its managers
	// and admins.
	ProjectID int64
	// Since and Until bound CreatedAt: Since included, Until not.
	Since, Until time.Time
	Page
}

// JobPage is one page of jobs, newest first. NextCursor is empty on the last page.
type JobPage struct {
	Items      []Job
	NextCursor string
}

// GetJobRequest names the job that JobService.Get reads.
type GetJobRequest struct {
	JobID int64
}

// TransitionRequest asks JobService.Transition to move job JobID to
// status To. ActualHours is for COMPLETED and FAILED only: the hours the
// job ran (nil: the whole estimate).
type TransitionRequest struct {
	JobID       int64
	To          JobStatus
	ActualHours *Hours
	// Reason, for REJECTED only, says why: the job keeps it as its
	// EndReason, for its owner to read.
	Reason string
}

// Validate lists every field of r that breaks a rule.
func (r TransitionRequest) Validate() error {
	if err := ValidateMove(r.To, r.ActualHours); err != nil {
		return err
	}
	v := &ValidationError{}
	if r.Reason != "" && r.To != StatusRejected {
		v.Add("reason", "may be given only with status %s", StatusRejected)
	}
	reasonText.add(v, "reason", r.Reason)
	return v.Err()
}

// CancelRequest names the job that JobService.Cancel cancels.
type CancelRequest struct {
	JobID int64
}

// JobService submits jobs against the owner's quota and moves them through
// their lifecycle. Every method takes the caller's user id, then a request
// that names everything else, and decides from the caller's current role
// in the store; an unknown caller gets ErrUnauthorized.
type JobService interface {
	// Submit prices the job (its GPU type's rate from the catalogue, or 1
	// while the catalogue is empty), draws its cost from the caller's
	// active allocations that pay for its type (see PlanDraws) and records
	// the job as PENDING, in one atomic step. It returns ErrInvalid for a bad
	// request (an unknown or retired GPU type, more GPUs than the type
	// allows), a *QuotaError (ErrQuotaExceeded) when those allocations hold
	// too little,
	// and ErrConflict when the idempotency key was used for another request.
	// A retry with the key of an earlier identical request returns that job.
	// ErrUnavailable means the store could not apply it just now; a retry
	// with the same key is safe. ctx is heeded only until the submission
	// starts to be applied: Submit returns ctx's error only when nothing was
	// written, and once under way a submission is carried through and
	// answered whatever becomes of ctx.
	Submit(ctx context.Context, caller int64, req SubmitRequest) (Job, error)

	// Get returns a job to its owner or an admin; anyone else gets ErrNotFound.
	Get(ctx context.Context, caller int64, req GetJobRequest) (Job, error)

	// List returns the caller's jobs, or for an admin everyone's, newest first.
	// A non-admin naming another user in the filter gets ErrForbidden.
	List(ctx context.Context, caller int64, filter JobFilter) (JobPage, error)

	// Transition moves a job to another status (admin only: ErrForbidden;
	// a manager of the project a PENDING job is charged to approves or
	// rejects it when the project lets managers approve).
	// Entering REJECTED or CANCELLED refunds its whole cost; entering
	// COMPLETED or FAILED with actual hours (0 ≤ actual ≤ estimate) refunds
	// the difference between its cost and the Cost of the actual hours, as
	// SettlementOf says, to the allocations it drew from (see Returns). Asking for the current status changes nothing. Any
	// move not in Transitions is a *TransitionError (ErrInvalidTransition).
	Transition(ctx context.Context, caller int64, req TransitionRequest) (Job, error)

	// Cancel cancels a PENDING or APPROVED job for its owner or an admin and
	// refunds its estimate.
	Cancel(ctx context.Context, caller int64, req CancelRequest) (Job, error)
}
