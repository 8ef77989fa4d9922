package main

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/gaas-io/gaas/server/worker"
	"github.com/gaas-io/gaas/store"
)

// workerConfig is what the flags say of the background worker.
type workerConfig struct {
	enabled    bool
	interval   time.Duration
	leaseTTL   time.Duration // 0: worker.DefaultLeaseTTL, or 3 intervals when longer
	staleAfter time.Duration // 0: stale reservations are kept
}

// rollUpPerRun is the most days of usage a run of rollup-usage rolls up:
// a week, in one transaction. A month (store.RollUpBatch) of a year of a
// million jobs took up to 33 s on a loaded machine (BENCHMARKS.md), more
// than the lease's TTL that cuts a run short and would leave the task
// doing the same month again at every run.
const rollUpPerRun = 7

// workerTasks are the periodic work gaasd does beside serving: letting
// ended allocations expire, ending executors' leases that expired, giving
// the periods of schedules that have begun, rolling up the usage of the
// days that closed for reports and, with -stale-after, cancelling stale
// reservations. Each run does one bounded batch; a backlog is worked off
// over runs.
func workerTasks(logger *slog.Logger, db *store.DB, cfg workerConfig) []worker.Task {
	tasks := []worker.Task{{Name: "expire-allocations", Run: func(ctx context.Context) error {
		n, err := db.Upkeep.ExpireEnded(ctx)
		if n > 0 {
			logger.Info("ended allocations expired", "count", n)
		}
		return err
	}}, {Name: "reap-expired-leases", Run: func(ctx context.Context) error {
		n, err := db.Dispatch.ReapExpired(ctx)
		if n > 0 {
			logger.Warn("executors' leases expired: unstarted jobs queued again, running ones failed", "count", n)
		}
		return err
	}}, {Name: "grant-schedules", Run: func(ctx context.Context) error {
		n, err := db.Upkeep.GrantDue(ctx)
		if n > 0 {
			logger.Info("schedules' periods granted", "count", n)
		}
		return err
	}}, {Name: "rollup-usage", Run: func(ctx context.Context) error {
		n, err := db.Upkeep.RollUpUsage(ctx, rollUpPerRun)
		if n > 0 {
			logger.Info("days of usage rolled up for reports", "days", n)
		}
		return err
	}}}
	if cfg.staleAfter > 0 {
		tasks = append(tasks, worker.Task{Name: "cancel-stale-jobs", Run: func(ctx context.Context) error {
			n, err := db.Upkeep.CancelStale(ctx, cfg.staleAfter)
			if n > 0 {
				logger.Info("stale jobs cancelled", "count", n, "stale_after", cfg.staleAfter.String())
			}
			return err
		}})
	}
	return tasks
}

// startWorker runs the worker's tasks, and more, until the returned stop is called
// or ctx ends; stop waits for the runs under way, so that the database may
// then be closed. With the worker off it starts nothing.
func startWorker(ctx context.Context, logger *slog.Logger, db *store.DB, cfg workerConfig, more ...worker.Task) (stop func(), err error) {
	if !cfg.enabled {
		logger.Info("background worker off: expiry, stale reservations and notifications are left to other replicas")
		return func() {}, nil
	}
	tasks := append(workerTasks(logger, db, cfg), more...)
	w, err := worker.New(logger, db.Leases, worker.Config{Interval: cfg.interval, LeaseTTL: cfg.leaseTTL}, tasks...)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(tasks))
	for i, t := range tasks {
		names[i] = t.Name
	}
	logger.Info("background worker running", "tasks", names, "interval", cfg.interval.String(), "holder", w.Holder())
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.Run(ctx)
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			cancel()
			<-done
		})
	}, nil
}
