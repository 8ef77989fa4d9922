// Package executor drives a gaas.Executor from a gaas.Dispatcher: it
// claims APPROVED jobs the executor has GPUs for, starts them, reports on
// them with heartbeats that renew their leases, stops the ones cancelled
// meanwhile, and finishes each with how it ended. The executor runs jobs;
// the loop is the only one that talks to the store, in one process (gaasd
// -executor) or across the network (gaas-runner against gaasd's executor
// API, whose client is a Dispatcher too).
//
// A loop that stops (a crash, a restart) loses nothing: on its first step
// it takes up again the leases its name still holds, matching them to the
// runs its executor still knows of, and a lease nobody renews expires, so
// the store puts an unstarted job back in the queue and fails a running
// one, charged up to its last heartbeat.
package executor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gaas-io/gaas/gaas"
)

// Config sets a Loop.
type Config struct {
	// Name is the executor's name: the holder of its leases, unique among
	// the executors of one store. Required.
	Name string
	// TTL is how long a lease lasts without a heartbeat; 0 means 60s.
	TTL time.Duration
	// Interval is the time between steps; 0 means 5s. It is at most a
	// third of TTL, so that two missed heartbeats lose no lease.
	Interval time.Duration
	// MaxClaim bounds the jobs one step claims; 0 means 10.
	MaxClaim int
}

// Loop runs one executor's jobs.
type Loop struct {
	d      gaas.Dispatcher
	x      gaas.Executor
	cfg    Config
	logger *slog.Logger

	resumed bool
	runs    map[int64]*tracked // by job id
}

// tracked is a job the loop holds a lease on.
type tracked struct {
	lease      gaas.Lease
	job        gaas.Job
	externalID string // "" until it started in the executor
	started    time.Time
	beat       time.Time // the last heartbeat the store took, after started
	cancelling bool      // the executor was told to stop it
	abandoned  bool      // the lease is lost: the executor stops it, no one is told
	stopped    bool      // the executor was told to stop it, abandoned
}

// New makes a loop of executor x over d.
func New(logger *slog.Logger, d gaas.Dispatcher, x gaas.Executor, cfg Config) (*Loop, error) {
	if cfg.Name == "" {
		return nil, errors.New("executor: a name is required")
	}
	if cfg.TTL == 0 {
		cfg.TTL = time.Minute
	}
	if cfg.Interval == 0 {
		cfg.Interval = 5 * time.Second
	}
	if cfg.MaxClaim == 0 {
		cfg.MaxClaim = 10
	}
	switch {
	case cfg.TTL < time.Second || cfg.TTL > time.Hour:
		return nil, fmt.Errorf("executor: the lease TTL %v must be from 1s to 1h", cfg.TTL)
	case cfg.Interval <= 0 || cfg.Interval*3 > cfg.TTL:
		return nil, fmt.Errorf("executor: the interval %v must be positive and at most a third of the lease TTL %v", cfg.Interval, cfg.TTL)
	case cfg.MaxClaim < 0 || cfg.MaxClaim > gaas.MaxClaim:
		return nil, fmt.Errorf("executor: at most %d jobs a claim", gaas.MaxClaim)
	}
	return &Loop{d: d, x: x, cfg: cfg, logger: logger.With("executor", cfg.Name), runs: map[int64]*tracked{}}, nil
}

// Run steps every interval until ctx ends. A step that fails is logged and
// the next one tries again.
func (l *Loop) Run(ctx context.Context) {
	t := time.NewTicker(l.cfg.Interval)
	defer t.Stop()
	for {
		if err := l.Step(ctx); err != nil && ctx.Err() == nil {
			l.logger.Error("executor step failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Step reports on every job the executor runs, then claims and starts
// what it has room for.
func (l *Loop) Step(ctx context.Context) error {
	if !l.resumed {
		if err := l.resume(ctx); err != nil {
			return err
		}
		l.resumed = true
	}
	runs, err := l.x.Runs(ctx)
	if err != nil {
		return fmt.Errorf("executor: its runs: %w", err)
	}
	var errs []error
	seen := map[int64]bool{}
	for _, r := range runs {
		seen[r.JobID] = true
		errs = append(errs, l.report(ctx, r))
	}
	for id, t := range l.runs {
		switch {
		case seen[id] || t.externalID == "":
		case t.abandoned:
			delete(l.runs, id) // stopped, and no one's to settle
		default:
			// The executor no longer knows a job it started: it is
			// charged up to its last heartbeat, as an expired lease is.
			var ran time.Duration
			if !t.started.IsZero() && t.beat.After(t.started) {
				ran = t.beat.Sub(t.started)
			}
			errs = append(errs, l.finish(ctx, t, gaas.Outcome{Status: gaas.StatusFailed, Elapsed: ran, Reason: "lost by the executor"}))
		}
	}
	errs = append(errs, l.claim(ctx))
	return errors.Join(errs...)
}

// resume takes up the leases this executor's name holds: those of jobs
// its executor still runs are renewed by the next reports; the others
// were lost with the process that held them and are given up, so that
// the store settles them now rather than when they expire.
func (l *Loop) resume(ctx context.Context) error {
	held, err := l.d.Leases(ctx, l.cfg.Name)
	if err != nil {
		return fmt.Errorf("executor: the leases it holds: %w", err)
	}
	runs, err := l.x.Runs(ctx)
	if err != nil {
		return fmt.Errorf("executor: its runs: %w", err)
	}
	known := map[int64]gaas.Run{}
	for _, r := range runs {
		known[r.JobID] = r
	}
	for _, c := range held {
		t := &tracked{lease: c.Lease, job: c.Job}
		l.runs[c.Job.ID] = t
		if r, ok := known[c.Job.ID]; ok {
			t.externalID = r.ExternalID
			l.logger.Info("job taken up again", "job", c.Job.ID, "external_id", r.ExternalID)
			continue
		}
		if c.Job.Run != nil && c.Job.Run.ExternalID == "" && c.Job.Status == gaas.StatusApproved {
			continue // claimed, never started: the next step starts it
		}
		delete(l.runs, c.Job.ID)
		ran := time.Duration(0)
		if r := c.Job.Run; r != nil && !r.StartedAt.IsZero() && !r.HeartbeatAt.IsZero() {
			ran = r.HeartbeatAt.Sub(r.StartedAt)
		}
		if err := l.finish(ctx, t, gaas.Outcome{Status: gaas.StatusFailed, Elapsed: max(ran, 0), Reason: "lost: the executor restarted"}); err != nil {
			l.logger.Error("a lost job was not settled; its lease will expire", "job", c.Job.ID, "err", err)
		}
	}
	// A started job the executor kept whose lease is gone is stopped.
	for _, r := range runs {
		if _, ok := l.runs[r.JobID]; !ok && r.Ended == nil {
			l.logger.Warn("stopping a job this executor holds no lease on", "job", r.JobID, "external_id", r.ExternalID)
			t := &tracked{job: gaas.Job{ID: r.JobID}, externalID: r.ExternalID, abandoned: true}
			l.runs[r.JobID] = t
			if err := l.stop(ctx, t); err != nil {
				return err
			}
		}
	}
	return nil
}

// report tells the store how run r is doing, or how it ended.
func (l *Loop) report(ctx context.Context, r gaas.Run) error {
	t := l.runs[r.JobID]
	if t == nil || t.abandoned {
		if r.Ended != nil {
			l.x.Forget(r.ExternalID)
			delete(l.runs, r.JobID)
			return nil
		}
		if t == nil {
			t = &tracked{job: gaas.Job{ID: r.JobID}, externalID: r.ExternalID, abandoned: true}
			l.runs[r.JobID] = t
		}
		return l.stop(ctx, t) // until the executor takes it
	}
	if t.externalID != "" && r.ExternalID != t.externalID {
		// Another run under the job's name (submitted twice, or by the
		// job itself): not the one the lease is for. It is stopped, and
		// tells the store nothing.
		if r.Ended != nil {
			l.x.Forget(r.ExternalID)
			return nil
		}
		l.logger.Warn("stopping a second run of a job", "job", r.JobID, "external_id", r.ExternalID, "runs_as", t.externalID)
		return l.x.Cancel(ctx, r.ExternalID)
	}
	t.externalID = r.ExternalID
	if r.Ended != nil {
		o := *r.Ended
		if t.cancelling && o.Status == gaas.StatusFailed && !o.SystemFault {
			o.Status = gaas.StatusCancelled // stopped because it was cancelled, whatever the executor calls it
		}
		return l.finish(ctx, t, o)
	}
	reply, err := l.d.Heartbeat(ctx, gaas.HeartbeatRequest{Lease: t.lease, ExternalID: r.ExternalID, Started: r.Started, TTL: l.cfg.TTL})
	switch {
	case errors.Is(err, gaas.ErrConflict):
		// The job ended meanwhile (cancelled while it waited, moved by an
		// admin) or the lease was lost: stop it, and tell no one.
		l.logger.Info("stopping a job whose lease ended", "job", r.JobID, "why", err)
		t.abandoned = true
		return l.stop(ctx, t)
	case err != nil:
		return fmt.Errorf("executor: heartbeat of job %d: %w", r.JobID, err)
	}
	if !r.Started.IsZero() {
		t.started, t.beat = r.Started, time.Now()
	}
	if reply.CancelRequested && !t.cancelling {
		l.logger.Info("stopping a cancelled job", "job", r.JobID)
		t.cancelling = true
		return l.x.Cancel(ctx, r.ExternalID)
	}
	return nil
}

// stop tells the executor to stop t, abandoned, unless it was told.
func (l *Loop) stop(ctx context.Context, t *tracked) error {
	if t.stopped {
		return nil
	}
	if err := l.x.Cancel(ctx, t.externalID); err != nil {
		return fmt.Errorf("executor: stop job %d: %w", t.job.ID, err)
	}
	t.stopped = true
	return nil
}

// finish gives the job back with its outcome and forgets it.
func (l *Loop) finish(ctx context.Context, t *tracked, o gaas.Outcome) error {
	o.Reason = clip(o.Reason, maxReason)
	job, err := l.d.Finish(ctx, gaas.FinishRequest{Lease: t.lease, Outcome: o})
	switch {
	case errors.Is(err, gaas.ErrConflict):
		l.logger.Info("a job's outcome came after its lease ended", "job", t.job.ID, "why", err)
	case err != nil:
		return fmt.Errorf("executor: finish job %d: %w", t.job.ID, err)
	default:
		l.logger.Info("job finished", "job", job.ID, "status", job.Status, "reason", o.Reason, "elapsed", o.Elapsed.String())
	}
	if t.externalID != "" {
		l.x.Forget(t.externalID)
	}
	delete(l.runs, t.job.ID)
	return nil
}

// claim takes jobs for the GPUs the executor has free, and starts them.
func (l *Loop) claim(ctx context.Context) error {
	free, err := l.x.Free(ctx)
	if err != nil {
		return fmt.Errorf("executor: its free GPUs: %w", err)
	}
	for name, n := range free {
		if n <= 0 {
			delete(free, name)
		}
	}
	if len(free) == 0 {
		return nil
	}
	claimed, err := l.d.Claim(ctx, gaas.ClaimRequest{Executor: l.cfg.Name, Free: free, Max: l.cfg.MaxClaim, TTL: l.cfg.TTL})
	if err != nil {
		return fmt.Errorf("executor: claim: %w", err)
	}
	var errs []error
	for _, c := range claimed {
		if t, ok := l.runs[c.Job.ID]; ok && t.externalID != "" {
			continue // a claim answered again: it runs already
		}
		t := &tracked{lease: c.Lease, job: c.Job}
		l.runs[c.Job.ID] = t
		id, err := l.x.Start(ctx, c.Job)
		switch {
		case errors.Is(err, gaas.ErrInvalid):
			// It can never run here: fail it, for nothing.
			errs = append(errs, l.finish(ctx, t, gaas.Outcome{Status: gaas.StatusFailed, SystemFault: true, Reason: "refused: " + strings.TrimSpace(err.Error())}))
		case err != nil:
			// Not now: the next claim answers it again, until its lease
			// expires and it goes back to the queue.
			l.logger.Warn("a claimed job did not start", "job", c.Job.ID, "err", err)
			delete(l.runs, c.Job.ID)
		default:
			t.externalID = id
			l.logger.Info("job started", "job", c.Job.ID, "external_id", id, "gpu_type", c.Job.GPUType, "gpu_count", c.Job.GPUCount)
			_, err := l.d.Heartbeat(ctx, gaas.HeartbeatRequest{Lease: t.lease, ExternalID: id, TTL: l.cfg.TTL})
			if err != nil {
				errs = append(errs, fmt.Errorf("executor: heartbeat of job %d: %w", c.Job.ID, err))
			}
		}
	}
	return errors.Join(errs...)
}

// maxReason is the longest reason the store takes, in bytes.
const maxReason = 1000

// clip is s cut to at most n bytes, on a rune boundary, marked "..." when cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("...")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}
