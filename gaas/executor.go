package gaas

import (
	"context"
	"math"
	"time"
)

// Outcome is how an executor saw a job end: what it reports when it gives
// the job back.
type Outcome struct {
	// Status is StatusCompleted or StatusFailed for a job that ended of
	// itself or by the executor's hand, StatusCancelled for one stopped
	// because it was cancelled, before it started or while it ran.
	Status JobStatus
	// Elapsed is how long the job ran, as the executor measured it: 0 for
	// a job that never started.
	Elapsed time.Duration
	// ExitCode is the command's exit status, when it exited of itself.
	ExitCode *int
	// Reason says why the job ended, in the executor's words ("TIMEOUT",
	// "exit status 3", "node failure").
	Reason string
	// SystemFault says the job failed through no fault of its own (its node
	// failed, or it was preempted): it is charged nothing. It goes only
	// with StatusFailed.
	SystemFault bool
}

// ActualHours is what the outcome charges for a job that estimated
// estimate: the elapsed time, rounded up to the next milli-hour and capped
// at the estimate (schedulers overrun a time limit by seconds), whatever
// the status, or nothing for a job that failed through the system's
// fault.
func (o Outcome) ActualHours(estimate Hours) Hours {
	if o.SystemFault {
		return 0
	}
	return min(HoursOf(o.Elapsed), estimate)
}

// milliHour is the time that one MilliHour of GPU time lasts.
const milliHour = time.Hour / 1000

// HoursOf is d in hours, rounded up to the next milli-hour (3.6 seconds);
// 0 for d ≤ 0. No time.Duration reaches MaxHours.
func HoursOf(d time.Duration) Hours {
	if d <= 0 {
		return 0
	}
	h := Hours(d / milliHour)
	if d%milliHour != 0 {
		h++
	}
	return h
}

// TimeLimit is the wall time a job that estimated h may run: h itself,
// rounded up to the next whole minute, the unit schedulers take. An
// estimate beyond what a time.Duration holds (about 290 years) is limited
// to that.
func TimeLimit(h Hours) time.Duration {
	minutes := (int64(h)*60 + 999) / 1000 // h ≤ MaxHours: no overflow
	if minutes > int64(math.MaxInt64/time.Minute) {
		minutes = int64(math.MaxInt64 / time.Minute)
	}
	return time.Duration(max(minutes, 0)) * time.Minute
}

// Lease is an executor's hold on a job: while it holds one, no other
// executor runs the job, and only its holder may report on it. A lease
// that is not renewed before ExpiresAt is lost: a job that had not
// started goes back to the queue, one that had is FAILED, charged up to
// its last heartbeat. Each claim of a job gives a lease of a new
// Generation, so a report on an older lease is refused.
type Lease struct {
	JobID      int64
	Generation int64
	Executor   string
	ExpiresAt  time.Time
}

// MaxClaim is the most jobs one Claim takes.
const MaxClaim = 100

// ClaimRequest asks for APPROVED jobs to run.
type ClaimRequest struct {
	// Executor names who claims: the holder of the leases, and the name
	// under which a retried claim finds the jobs it already took.
	Executor string
	// Free is how many GPUs of each type the executor could give a job
	// now, by the catalogue's name of the type (in open mode, as
	// submitted). A job is claimed only if its GPUs fit.
	Free map[string]int
	// Max bounds the jobs taken; 0 means 1, and it is at most MaxClaim.
	Max int
	// TTL is how long the leases last without a heartbeat.
	TTL time.Duration
}

// Claimed is a job an executor took, with its lease.
type Claimed struct {
	Job   Job
	Lease Lease
}

// HeartbeatRequest renews a lease and tells how the job is doing.
type HeartbeatRequest struct {
	Lease Lease
	// ExternalID is the job's id where it runs (a Slurm job id, a process id).
	ExternalID string
	// Started is when the job started to run; zero while it waits. The
	// first heartbeat that says so moves the job to RUNNING.
	Started time.Time
	// TTL is how long the renewed lease lasts.
	TTL time.Duration
}

// HeartbeatReply is what an executor learns from a heartbeat.
type HeartbeatReply struct {
	ExpiresAt time.Time
	// CancelRequested says the job is to be stopped: an admin or its owner
	// cancelled it. The executor stops it and Finishes it with what it used.
	CancelRequested bool
}

// FinishRequest gives a job back: how it ended.
type FinishRequest struct {
	Lease   Lease
	Outcome Outcome
}

// Dispatcher hands APPROVED jobs to executors under leases and settles them
// from what the executors report. Its methods are for executors, not
// users: a server authenticates executors before it lets them call.
type Dispatcher interface {
	// Claim takes the oldest APPROVED jobs whose GPU type and count fit in
	// Free, up to Max, and leases them to the executor. Jobs the executor
	// already holds unexpired leases on are returned again first, so a
	// claim retried after a lost answer loses nothing.
	Claim(ctx context.Context, req ClaimRequest) ([]Claimed, error)

	// Heartbeat renews a lease. A lease that expired, was superseded, or
	// whose job ended is ErrConflict.
	Heartbeat(ctx context.Context, req HeartbeatRequest) (HeartbeatReply, error)

	// Finish settles the job as the outcome says, charging its
	// ActualHours × its GPUs × its rate, and ends the lease. A lease that
	// is no longer the job's is ErrConflict.
	Finish(ctx context.Context, req FinishRequest) (Job, error)

	// Leases lists the unexpired leases the executor holds, oldest job
	// first, at most MaxClaim: what an executor that restarted takes up
	// again.
	Leases(ctx context.Context, executor string) ([]Claimed, error)
}

// Run is a job an executor started, as it last saw it.
type Run struct {
	JobID      int64
	ExternalID string
	// Started is when it began to run; zero while it waits (for a
	// scheduler's nodes).
	Started time.Time
	// Ended is set once it ended, with how.
	Ended *Outcome
}

// Executor runs jobs somewhere: processes on this machine, a Slurm cluster.
// A loop beside the server claims jobs for it, starts them, reports on
// them with heartbeats, and finishes them; the executor itself never
// touches the store.
type Executor interface {
	// Free is how many GPUs of each type could be given to a job now.
	Free(ctx context.Context) (map[string]int, error)
	// Start starts the job and returns its external id. An error that
	// wraps ErrInvalid means the job can never run here (no such GPUs):
	// the loop fails it at no charge; any other error is tried again.
	Start(ctx context.Context, j Job) (string, error)
	// Runs reports every job it started and has not been told to Forget,
	// ended ones included.
	Runs(ctx context.Context) ([]Run, error)
	// Cancel stops a job: one that has not started never will, one that
	// runs is stopped (its Run ends with the time it used).
	Cancel(ctx context.Context, externalID string) error
	// Forget drops an ended job whose outcome was recorded.
	Forget(externalID string)
}

// JobRun is what executors reported of a job: set once one claimed it.
type JobRun struct {
	Executor   string
	Generation int64 // of its latest lease
	ExternalID string
	// StartedAt and EndedAt are zero until the job started and ended.
	StartedAt, EndedAt time.Time
	// HeartbeatAt is the executor's latest report.
	HeartbeatAt time.Time
	// ExitCode is the command's exit status, when it exited of itself.
	ExitCode *int
	// Reason says why the job ended, in the executor's words.
	Reason string
	// CancelRequested says someone cancelled the job while it ran: its
	// executor stops it and settles the time it used.
	CancelRequested bool
}

// JobLogs reads what jobs wrote as they ran.
type JobLogs interface {
	// Log returns the last maxBytes bytes of the output of job jobID (the
	// end of a job's output tells how it went), which may begin in the
	// middle of a line, and whether any came before them. A job with no
	// log here is ErrNotFound.
	Log(jobID int64, maxBytes int64) (tail []byte, truncated bool, err error)
}
