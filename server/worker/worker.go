// Package worker runs gaasd's periodic work beside its HTTP server: each
// task every so often, under a lease of its own, so that of several
// replicas on one database exactly one runs each task at a time, and
// another takes a task over when the one running it dies.
//
// A replica that holds a task's lease renews it each time it runs the task,
// and keeps it until it stops (when it releases it, so that another takes
// it over at its next tick) or dies (when the lease runs out after
// Config.LeaseTTL, and another takes it over at its first tick after
// that). A task's work must still be idempotent, each step decided by the
// database: a lease is a time of the store's clock, and a replica whose run
// outlives it shares the work for a moment with the next holder.
package worker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"sync"
	"time"
)

// DefaultInterval is how often a task runs unless its Every or
// Config.Interval says otherwise.
const DefaultInterval = 10 * time.Second

// DefaultLeaseTTL is how long a task's lease lasts without renewal unless
// Config.LeaseTTL says otherwise: a replica that dies hands its tasks on
// within it, plus the interval of the replica that takes them.
const DefaultLeaseTTL = 30 * time.Second

// Task is one piece of periodic work.
type Task struct {
	// Name names the task in the logs and its lease in the database; the
	// tasks of one Worker have names of their own.
	Name string
	// Every is how often the task runs; 0 means Config.Interval.
	Every time.Duration
	// Run does one bounded piece of the work, such as one batch; what is
	// left waits for the next run. Its context ends when the worker stops
	// or the run has taken the lease's TTL. An error is logged, and the
	// task runs again at its next tick.
	Run func(ctx context.Context) error
}

// Leases is the store of leases the tasks run under (store.Leases).
type Leases interface {
	// Acquire takes or renews lease name for holder for ttl, and reports
	// whether holder holds it.
	Acquire(ctx context.Context, name, holder string, ttl time.Duration) (bool, error)
	// Release gives up lease name if holder holds it.
	Release(ctx context.Context, name, holder string) error
}

// Config configures a Worker. The zero value is usable.
type Config struct {
	// Interval is how often a task runs unless its Every says; 0 means
	// DefaultInterval.
	Interval time.Duration
	// LeaseTTL is how long a task's lease lasts unless renewed; 0 means
	// DefaultLeaseTTL, or three times the longest interval when that is
	// longer. It must be longer than every task's interval, or the lease
	// would run out between runs.
	LeaseTTL time.Duration
	// Holder names this worker as the holder of leases; "" means a name
	// made of the host name, the process id and random bytes. Two workers
	// must not share one.
	Holder string
	// Tick returns a channel that delivers a time every d, and a function
	// that stops it; nil means a time.Ticker. Tests give one they drive.
	Tick func(d time.Duration) (<-chan time.Time, func())
}

// Worker runs tasks. Make one with New.
type Worker struct {
	logger *slog.Logger
	leases Leases
	cfg    Config
	tasks  []Task
}

// New returns a Worker that runs tasks under leases from leases.
func New(logger *slog.Logger, leases Leases, cfg Config, tasks ...Task) (*Worker, error) {
	if cfg.Interval == 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.LeaseTTL == 0 {
		cfg.LeaseTTL = DefaultLeaseTTL
		for _, t := range tasks {
			cfg.LeaseTTL = max(cfg.LeaseTTL, 3*t.Every, 3*cfg.Interval)
		}
	}
	if cfg.Holder == "" {
		cfg.Holder = newHolder()
	}
	if cfg.Tick == nil {
		cfg.Tick = func(d time.Duration) (<-chan time.Time, func()) {
			t := time.NewTicker(d)
			return t.C, t.Stop
		}
	}
	if cfg.Interval < 0 {
		return nil, fmt.Errorf("worker: interval %s is negative", cfg.Interval)
	}
	seen := map[string]bool{}
	for i, t := range tasks {
		every := t.Every
		if every == 0 {
			every, tasks[i].Every = cfg.Interval, cfg.Interval
		}
		switch {
		case t.Name == "" || t.Run == nil:
			return nil, fmt.Errorf("worker: task %d needs a name and a Run", i+1)
		case seen[t.Name]:
			return nil, fmt.Errorf("worker: two tasks are named %q", t.Name)
		case every < 0:
			return nil, fmt.Errorf("worker: task %s: interval %s is negative", t.Name, every)
		case every >= cfg.LeaseTTL:
			return nil, fmt.Errorf("worker: task %s runs every %s, not within the lease's TTL of %s; its lease would run out between runs",
				t.Name, every, cfg.LeaseTTL)
		}
		seen[t.Name] = true
	}
	return &Worker{logger: logger, leases: leases, cfg: cfg, tasks: tasks}, nil
}

// newHolder is a name for this process's worker that no other process's
// shares: the host, the process and random bytes (a restarted process may
// have the same pid).
func newHolder() string {
	host, _ := os.Hostname()
	b := make([]byte, 4)
	rand.Read(b)
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b))
}

// Holder is the name under which the worker holds leases.
func (w *Worker) Holder() string { return w.cfg.Holder }

// Run runs every task now and then at each tick of its interval, until ctx
// ends; then it waits for the runs under way, releases the leases it holds
// and returns nil.
func (w *Worker) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, t := range w.tasks {
		wg.Go(func() {
			ticks, stop := w.cfg.Tick(t.Every)
			defer stop()
			for {
				w.step(ctx, t)
				select {
				case <-ctx.Done():
					return
				case <-ticks:
				}
			}
		})
	}
	wg.Wait()
	// The leases go back for the others to take at their next tick,
	// rather than when they run out.
	release, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	for _, t := range w.tasks {
		if err := w.leases.Release(release, t.Name, w.cfg.Holder); err != nil {
			w.logger.Warn("worker: could not release a lease; another replica takes the task over when it runs out",
				"task", t.Name, "lease_ttl", w.cfg.LeaseTTL.String(), "err", err)
		}
	}
	return nil
}

// Step runs the task named name once if the worker holds, or can take, its
// lease, and reports whether it ran. err is the task's failure, or the
// lease's.
func (w *Worker) Step(ctx context.Context, name string) (ran bool, err error) {
	for _, t := range w.tasks {
		if t.Name == name {
			return w.step(ctx, t)
		}
	}
	return false, fmt.Errorf("%w: %q", ErrNoTask, name)
}

// step runs t once under its lease and logs what went wrong.
func (w *Worker) step(ctx context.Context, t Task) (ran bool, err error) {
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	held, err := w.leases.Acquire(ctx, t.Name, w.cfg.Holder, w.cfg.LeaseTTL)
	if err != nil {
		if ctx.Err() == nil {
			w.logger.Warn("worker: could not take a task's lease; trying again at the next tick", "task", t.Name, "err", err)
		}
		return false, err
	}
	if !held {
		return false, nil
	}
	// A run that outlasts the lease is cut short: by then another may
	// hold it.
	runCtx, cancel := context.WithTimeout(ctx, w.cfg.LeaseTTL)
	defer cancel()
	if err = w.run(runCtx, t); err != nil && ctx.Err() == nil {
		w.logger.Error("worker: task failed; it runs again at the next tick", "task", t.Name, "err", err)
	}
	return true, err
}

// run calls t.Run, turning a panic into an error so that one task's bug
// does not stop the others or the server.
func (w *Worker) run(ctx context.Context, t Task) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v\n%s", p, debug.Stack())
		}
	}()
	return t.Run(ctx)
}

// ErrNoTask is Step's answer for a name that names no task.
var ErrNoTask = errors.New("worker: no such task")
