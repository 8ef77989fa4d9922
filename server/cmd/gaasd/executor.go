package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gaas-io/gaas/gaas"
	"github.com/gaas-io/gaas/server/executor"
	"github.com/gaas-io/gaas/server/executor/local"
	"github.com/gaas-io/gaas/server/executor/slurm"
	"github.com/gaas-io/gaas/store"
)

// executorConfig is what the flags say of the executor gaasd runs.
type executorConfig struct {
	kind     string // none, local or slurm
	name     string
	ttl      time.Duration
	interval time.Duration

	localLogDir string
	localGPUs   string // a file in nvidia-smi's CSV; empty asks nvidia-smi
	localTypes  string // NAME=TYPE,...
	localUser   string
	localGrace  time.Duration

	slurmConf      string
	slurmBin       string
	slurmPartition string
	slurmGRES      string // TYPE=GRES,...
	slurmCapacity  string // TYPE=GPUS,...
	slurmLogDir    string
	slurmUser      string
	slurmJobComp   bool
}

// addExecutorFlags declares the executor's flags and returns their rules.
func addExecutorFlags(fs *flag.FlagSet, c *executorConfig) map[string]flagRule {
	fs.StringVar(&c.kind, "executor", "none",
		"what runs APPROVED jobs: \"none\" (an admin moves them by hand, or gaas-runners on other machines run them), "+
			"\"local\" (processes on this machine's GPUs) or \"slurm\" (a Slurm cluster)")
	fs.StringVar(&c.name, "executor-name", "", "the `name` this executor holds leases under, unique among executors; empty is the host name")
	fs.DurationVar(&c.ttl, "executor-lease-ttl", time.Minute,
		"how long a job's lease lasts without a heartbeat: when it runs out, a job that had not started is queued again and a running one fails, "+
			"charged up to its last heartbeat")
	fs.DurationVar(&c.interval, "executor-interval", 5*time.Second, "how often the executor claims jobs and reports on those it runs; at most a third of -executor-lease-ttl")
	fs.StringVar(&c.localLogDir, "local-log-dir", "gaas-jobs", "the `directory` of the local executor's job logs and state")
	fs.StringVar(&c.localGPUs, "local-gpus", "",
		"a `file` listing the machine's GPUs as nvidia-smi --query-gpu=index,uuid,name,memory.total --format=csv,noheader,nounits prints them; "+
			"empty runs that nvidia-smi")
	fs.StringVar(&c.localTypes, "local-gpu-types", "",
		"`NAME=TYPE,...`: the catalogue's GPU type of each GPU name nvidia-smi reports; a name it does not map is its own type")
	fs.StringVar(&c.localUser, "local-user", "", "the unprivileged `user` local jobs run as; empty is nobody when gaasd runs as root, else gaasd's user")
	fs.DurationVar(&c.localGrace, "local-grace", 30*time.Second, "the time a local job has between SIGTERM and SIGKILL when it is stopped")
	fs.StringVar(&c.slurmConf, "slurm-conf", "", "the slurm.conf the Slurm commands read (SLURM_CONF); empty is their default")
	fs.StringVar(&c.slurmBin, "slurm-bin", "", "the `directory` of sbatch, squeue, sacct and scancel; empty finds them on PATH")
	fs.StringVar(&c.slurmPartition, "slurm-partition", "", "the `partition` jobs go to; empty is the cluster's default")
	fs.StringVar(&c.slurmGRES, "slurm-gres", "", "`TYPE=GRES,...`: the Slurm GRES type of each catalogue GPU type; a type it does not map is its own GRES type")
	fs.StringVar(&c.slurmCapacity, "slurm-capacity", "",
		"`TYPE=GPUS,...`: for each catalogue GPU type Slurm runs, how many of its GPUs gaas keeps in Slurm at once, queued or running. Required with -executor slurm")
	fs.StringVar(&c.slurmLogDir, "slurm-log-dir", "",
		"a `directory` the nodes and gaasd share, where each job writes its output (GET /jobs/{id}/log); empty is Slurm's default, and no logs here")
	fs.StringVar(&c.slurmUser, "slurm-user", "", "the unprivileged `user` Slurm jobs run as (sbatch --uid, which takes root); empty is nobody when gaasd runs as root")
	fs.BoolVar(&c.slurmJobComp, "slurm-jobcomp", false,
		"read how jobs ended from the completion log (sacct -c, for JobCompType=jobcomp/filetxt) instead of slurmdbd")
	pairs := func(s string) func() bool {
		return func() bool { _, err := parsePairs(s); return err == nil }
	}
	return map[string]flagRule{
		"executor":           {func() bool { return c.kind == "none" || c.kind == "local" || c.kind == "slurm" }, "none, local or slurm"},
		"executor-lease-ttl": {func() bool { return c.ttl >= time.Second && c.ttl <= time.Hour }, "a duration from 1s to 1h"},
		"executor-interval": {func() bool { return c.interval > 0 && 3*c.interval <= c.ttl },
			"a positive duration, at most a third of -executor-lease-ttl"},
		"local-grace":     {func() bool { return c.localGrace > 0 }, "a positive duration such as 30s"},
		"local-gpu-types": {func() bool { return pairs(c.localTypes)() }, "NAME=TYPE pairs separated by commas"},
		"slurm-gres":      {func() bool { return pairs(c.slurmGRES)() }, "TYPE=GRES pairs separated by commas"},
		"slurm-capacity": {func() bool {
			m, err := parsePairs(c.slurmCapacity)
			if err != nil || (c.kind == "slurm" && len(m) == 0) {
				return false
			}
			for _, v := range m {
				if n, err := strconv.Atoi(v); err != nil || n < 1 {
					return false
				}
			}
			return true
		}, "TYPE=GPUS pairs separated by commas, GPUS a positive whole number; required with -executor slurm"},
		"slurm-jobcomp": {nil, "true or false"},
	}
}

// parsePairs reads "K=V,K=V"; the empty string is no pairs.
func parsePairs(s string) (map[string]string, error) {
	m := map[string]string{}
	if strings.TrimSpace(s) == "" {
		return m, nil
	}
	for p := range strings.SplitSeq(s, ",") {
		k, v, ok := strings.Cut(p, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || k == "" || v == "" {
			return nil, fmt.Errorf("%q is not NAME=VALUE", p)
		}
		if _, dup := m[k]; dup {
			return nil, fmt.Errorf("%s is given twice", k)
		}
		m[k] = v
	}
	return m, nil
}

// runner is an executor gaasd runs, and what it closes it with.
type runner struct {
	x       gaas.Executor
	logs    gaas.JobLogs
	close   func(context.Context) error
	stopped sync.Once
}

// newRunner makes the executor cfg names; nil for none.
func newRunner(ctx context.Context, cfg executorConfig) (*runner, error) {
	switch cfg.kind {
	case "local":
		lc := local.Config{LogDir: cfg.localLogDir, User: cfg.localUser, Grace: cfg.localGrace}
		lc.Types, _ = parsePairs(cfg.localTypes)
		if cfg.localGPUs != "" {
			b, err := os.ReadFile(cfg.localGPUs)
			if err != nil {
				return nil, fmt.Errorf("-local-gpus: %w", err)
			}
			if lc.GPUs, err = local.ParseGPUs(string(b)); err != nil {
				return nil, fmt.Errorf("-local-gpus %s: %w", cfg.localGPUs, err)
			}
		}
		x, err := local.New(ctx, lc)
		if err != nil {
			return nil, err
		}
		return &runner{x: x, logs: x, close: x.Close}, nil
	case "slurm":
		sc := slurm.Config{Bin: cfg.slurmBin, Partition: cfg.slurmPartition, LogDir: cfg.slurmLogDir, User: cfg.slurmUser, Completions: cfg.slurmJobComp}
		if cfg.slurmConf != "" {
			sc.Env = []string{"SLURM_CONF=" + cfg.slurmConf}
		}
		sc.GRES, _ = parsePairs(cfg.slurmGRES)
		c, err := slurm.New(sc)
		if err != nil {
			return nil, err
		}
		capacity := map[string]int{}
		m, _ := parsePairs(cfg.slurmCapacity)
		for k, v := range m {
			capacity[k], _ = strconv.Atoi(v)
		}
		x, err := slurm.NewExecutor(c, capacity, nil)
		if err != nil {
			return nil, err
		}
		r := &runner{x: x, close: func(context.Context) error { return nil }}
		if cfg.slurmLogDir != "" {
			r.logs = x
		}
		return r, nil
	}
	return nil, nil
}

// startExecutor runs r's loop until the returned stop is called, which
// stops the loop and then the executor: a local executor's jobs are
// stopped with it, and settled by the next gaasd; a Slurm cluster's run
// on. With no runner (-executor none) it starts nothing.
func startExecutor(ctx context.Context, logger *slog.Logger, db *store.DB, r *runner, cfg executorConfig) (gaas.JobLogs, func(), error) {
	if r == nil {
		return nil, func() {}, nil
	}
	name := cfg.name
	if name == "" {
		var err error
		if name, err = os.Hostname(); err != nil {
			return nil, nil, fmt.Errorf("-executor-name: none given, and the host name: %w", err)
		}
	}
	l, err := executor.New(logger, db.Dispatch, r.x, executor.Config{Name: name, TTL: cfg.ttl, Interval: cfg.interval})
	if err != nil {
		return nil, nil, err
	}
	free, err := r.x.Free(ctx)
	if err != nil {
		return nil, nil, err
	}
	logger.Info("executor running", "executor", cfg.kind, "name", name, "gpus", free)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.Run(ctx)
	}()
	var once sync.Once
	return r.logs, func() {
		once.Do(func() {
			cancel()
			<-done
		})
	}, nil
}

// stop stops the executor: a local one's jobs are stopped (SIGTERM, the
// grace, SIGKILL) and waited for.
func (r *runner) stop(logger *slog.Logger, grace time.Duration) {
	if r == nil {
		return
	}
	r.stopped.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), grace+5*time.Second)
		defer cancel()
		if err := r.close(ctx); err != nil {
			logger.Warn("the executor did not stop cleanly", "err", err)
		}
	})
}
