package slurm

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/gaas-io/gaas/gaas"
	"github.com/gaas-io/gaas/server/executor"
)

var _ gaas.Executor = (*Executor)(nil)

// Executor is a Cluster as a gaas.Executor: the jobs it starts wait in
// Slurm's queue and run when Slurm gives them nodes.
type Executor struct {
	c *Cluster
	// capacity is how many GPUs of each catalogue type the executor keeps
	// in Slurm at once, waiting or running: Slurm orders what waits.
	capacity map[string]int
	now      func() time.Time

	mu   sync.Mutex
	runs map[string]*run // by Slurm job id
}

// run is a job the executor submitted.
type run struct {
	jobID     int64
	gpuType   string
	gpus      int
	submitted time.Time
	started   time.Time
	// finalAt is when squeue first showed it ended, or when it was first
	// missing; the record sacct writes follows within seconds.
	finalAt time.Time
	last    State // as squeue last showed it
	ended   *gaas.Outcome
}

// recordWait is how long after a job ended the executor waits for sacct
// to have its record before it settles the job from what squeue showed.
const recordWait = 2 * time.Minute

// NewExecutor makes an executor of c that keeps at most capacity[t] GPUs
// of each catalogue GPU type t in Slurm at once; a type capacity does not
// name is not taken. now is the clock; nil means time.Now.
func NewExecutor(c *Cluster, capacity map[string]int, now func() time.Time) (*Executor, error) {
	if len(capacity) == 0 {
		return nil, errors.New("slurm: the executor takes no GPU type: give each type the GPUs to keep in Slurm")
	}
	for t, n := range capacity {
		if n <= 0 {
			return nil, fmt.Errorf("slurm: GPU type %s: capacity %d is not positive", t, n)
		}
	}
	if now == nil {
		now = time.Now
	}
	return &Executor{c: c, capacity: maps.Clone(capacity), now: now, runs: map[string]*run{}}, nil
}

// Free implements gaas.Executor: each type's capacity less the GPUs of
// the jobs that wait or run.
func (e *Executor) Free(context.Context) (map[string]int, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	free := maps.Clone(e.capacity)
	for _, r := range e.runs {
		if r.ended != nil {
			continue
		}
		for t := range free {
			if gaas.SameGPUType(t, r.gpuType) { // the job has the catalogue's spelling
				free[t] -= r.gpus
				break
			}
		}
	}
	return free, nil
}

// Start implements gaas.Executor. A job Slurm refuses for good (GPUs the
// cluster does not have) is gaas.ErrInvalid.
func (e *Executor) Start(ctx context.Context, j gaas.Job) (string, error) {
	id, err := e.c.Submit(ctx, Job{ID: j.ID, Command: j.Command, GPUType: j.GPUType, GPUs: j.GPUCount, Estimate: j.EstimatedHours})
	var refused *RefusedError
	if errors.As(err, &refused) {
		return "", gaas.Invalid("gpu_type", "%s", refused.Reason)
	}
	if err != nil {
		return "", err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.runs[id] = &run{jobID: j.ID, gpuType: j.GPUType, gpus: max(j.GPUCount, 1), submitted: e.now()}
	return id, nil
}

// Runs implements gaas.Executor with one squeue, and one sacct for the
// jobs that ended. Jobs of this cluster's names that it did not submit
// (before a restart) are reported too, so that their leases are taken up
// again or they are stopped.
func (e *Executor) Runs(ctx context.Context) ([]gaas.Run, error) {
	states, err := e.c.Queue(ctx)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	now := e.now()
	inQueue := make(map[string]bool, len(states))
	for _, s := range states {
		inQueue[s.SlurmID] = true
		r, ok := e.runs[s.SlurmID]
		if !ok {
			if Final(s.State) {
				continue // a job of an earlier life, settled or lost then
			}
			r = &run{jobID: s.JobID, submitted: now}
			e.runs[s.SlurmID] = r
		}
		r.last = s
		if !s.Start.IsZero() {
			r.started = s.Start
		}
		if Final(s.State) && r.finalAt.IsZero() {
			r.finalAt = now
		}
	}
	var ask []string
	since := now
	for id, r := range e.runs {
		if r.ended != nil {
			continue
		}
		if !inQueue[id] && r.finalAt.IsZero() {
			r.finalAt = now // gone from squeue (MinJobAge passed)
		}
		if !r.finalAt.IsZero() {
			ask = append(ask, id)
			since = minTime(since, r.submitted)
		}
	}
	e.mu.Unlock()

	var recs map[string]Record
	if len(ask) > 0 {
		// A day's margin: the record's time is Slurm's, the submission ours.
		if recs, err = e.c.Accounting(ctx, since.Add(-24*time.Hour), ask); err != nil {
			return nil, err
		}
	}

	e.mu.Lock()
	defer e.mu.Unlock()
	for _, id := range ask {
		r := e.runs[id]
		if r == nil || r.ended != nil {
			continue
		}
		if rec, ok := recs[id]; ok {
			o := rec.Outcome()
			r.ended = &o
		} else if now.Sub(r.finalAt) > recordWait {
			o := e.fromQueue(r)
			r.ended = &o
		}
	}
	out := make([]gaas.Run, 0, len(e.runs))
	for id, r := range e.runs {
		out = append(out, gaas.Run{JobID: r.jobID, ExternalID: id, Started: r.started, Ended: r.ended})
	}
	return out, nil
}

// fromQueue is the outcome of a job whose record sacct never gave: what
// squeue last showed of it, or, if it never showed it ended, a loss that
// is charged nothing.
func (e *Executor) fromQueue(r *run) gaas.Outcome {
	if Final(r.last.State) {
		var elapsed time.Duration
		if !r.last.Start.IsZero() && r.last.End.After(r.last.Start) {
			elapsed = r.last.End.Sub(r.last.Start)
		}
		o := OutcomeOf(r.last.State, !r.last.Start.IsZero(), elapsed)
		o.Reason += " (no accounting record)"
		return o
	}
	return gaas.Outcome{Status: gaas.StatusFailed, SystemFault: true, Reason: "lost: Slurm has no record of the job"}
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// Cancel implements gaas.Executor with scancel.
func (e *Executor) Cancel(ctx context.Context, externalID string) error {
	return e.c.Cancel(ctx, externalID)
}

// Forget implements gaas.Executor.
func (e *Executor) Forget(externalID string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.runs, externalID)
}

// Log implements gaas.JobLogs: the end of the output the job wrote to
// Config.LogDir, which this process must reach. Without a LogDir there is
// no log here.
func (e *Executor) Log(jobID int64, maxBytes int64) ([]byte, bool, error) {
	path := e.c.LogPath(jobID)
	if path == "" || jobID <= 0 {
		return nil, false, fmt.Errorf("slurm: log of job %d: %w", jobID, gaas.ErrNotFound)
	}
	tail, truncated, err := executor.TailFile(path, maxBytes)
	if err != nil {
		return nil, false, fmt.Errorf("slurm: log of job %d: %w", jobID, err)
	}
	return tail, truncated, nil
}
