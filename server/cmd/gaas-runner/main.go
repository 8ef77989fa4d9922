// Command gaas-runner runs gaas jobs on the GPUs of the machine it runs on,
// for a gaasd on another machine: it claims APPROVED jobs through gaasd's
// executor API with an executor's token, runs each as the local executor
// does (a process group under an unprivileged user, on GPUs of its own,
// with a log and a time limit), reports on them with heartbeats, and
// finishes each with how it ended. An admin makes the token with
// "gaasd executors add NAME". Run it with -h for every flag; each has an
// environment variable.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gaas-io/gaas/gaas"
	"github.com/gaas-io/gaas/server/executor"
	"github.com/gaas-io/gaas/server/executor/local"
	"github.com/gaas-io/gaas/server/executor/remote"
)

func main() {
	ctx, cancel := context.WithCancel(context.Background())
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-signals
		cancel() // the first signal stops the jobs and reports them
		<-signals
		fmt.Fprintln(os.Stderr, "gaas-runner: second signal, exiting at once")
		os.Exit(1)
	}()
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case err != nil:
		fmt.Fprintln(os.Stderr, "gaas-runner:", err)
		os.Exit(2)
	}
}

// envName is the environment variable of the flag name: -log-dir is
// GAAS_RUNNER_LOG_DIR.
func envName(flagName string) string {
	return "GAAS_RUNNER_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// config is what the flags say.
type config struct {
	server    string
	token     string
	logDir    string
	gpusFrom  string
	gpus      []local.GPU
	types     map[string]string
	user      string
	grace     time.Duration
	ttl       time.Duration
	interval  time.Duration
	stopAfter time.Duration
}

const usage = `Usage: gaas-runner -server URL [flags]

Runs the jobs a gaasd hands to this machine's GPUs. The token is an
executor's, made by an admin with "gaasd executors add NAME" (or POST
/executors); give it in GAAS_RUNNER_TOKEN or a file (-token-file) rather
than -token, which shows in process listings. Each flag has an environment
variable, named in its description; a flag wins over its variable. Repeated
flags (-gpu, -gpu-type) take several values from their variable separated
by ';'.

On SIGTERM or SIGINT it stops its jobs (SIGTERM to each, -grace, then
SIGKILL), reports them failed with the time they ran, and exits.

`

// gpuList is a repeatable -gpu INDEX,UUID,NAME flag.
type gpuList struct{ gpus *[]local.GPU }

func (g gpuList) String() string { return "" }

func (g gpuList) Set(v string) error {
	for _, one := range strings.Split(v, ";") {
		index, rest, ok1 := strings.Cut(strings.TrimSpace(one), ",")
		uuid, name, ok2 := strings.Cut(rest, ",")
		i, err := strconv.Atoi(strings.TrimSpace(index))
		if !ok1 || !ok2 || err != nil || i < 0 || strings.TrimSpace(uuid) == "" || strings.TrimSpace(name) == "" {
			return fmt.Errorf("%q must be INDEX,UUID,NAME, such as 0,GPU-5f1b...,NVIDIA A100-SXM4-80GB", one)
		}
		*g.gpus = append(*g.gpus, local.GPU{Index: i, UUID: strings.TrimSpace(uuid), Name: strings.TrimSpace(name)})
	}
	return nil
}

// typeMap is a repeatable -gpu-type NAME=TYPE flag.
type typeMap map[string]string

func (m typeMap) String() string { return "" }

func (m typeMap) Set(v string) error {
	for _, one := range strings.Split(v, ";") {
		name, typ, ok := strings.Cut(one, "=")
		name, typ = strings.TrimSpace(name), strings.TrimSpace(typ)
		if !ok || name == "" || typ == "" {
			return fmt.Errorf("%q must be NAME=TYPE, such as NVIDIA A100-SXM4-80GB=A100", one)
		}
		if _, dup := m[name]; dup {
			return fmt.Errorf("%s is mapped twice", name)
		}
		m[name] = typ
	}
	return nil
}

// parseConfig reads flags over environment variables over defaults.
func parseConfig(args []string, getenv func(string) string, stdout io.Writer) (config, error) {
	c := config{types: map[string]string{}}
	fs := flag.NewFlagSet("gaas-runner", flag.ContinueOnError)
	fs.StringVar(&c.server, "server", "", "the gaasd to run jobs for: its base `URL`, such as https://gaas.example.org (required)")
	fs.StringVar(&c.token, "token", "", "the executor's `token` (gaas_exec_...); better in the environment or -token-file: a flag shows in process listings")
	tokenFile := fs.String("token-file", "", "read the executor's token from this `file` (a trailing newline is dropped)")
	fs.StringVar(&c.logDir, "log-dir", "/var/lib/gaas-runner", "the `directory` of the jobs' logs and the runner's state; made with mode 0711 if missing")
	fs.StringVar(&c.gpusFrom, "gpus-from", "nvidia-smi", "the nvidia-smi `program` that lists the GPUs, when no -gpu is given")
	fs.Var(gpuList{&c.gpus}, "gpu", "a GPU of this machine, `INDEX,UUID,NAME`, as nvidia-smi names it; repeat for each. Without it, -gpus-from lists them")
	fs.Var(typeMap(c.types), "gpu-type", "map a GPU `NAME=TYPE`, from nvidia-smi's name to the catalogue's type; repeat for each. "+
		"A name not mapped is its own type")
	fs.StringVar(&c.user, "user", "", "the `user` jobs run as; empty is nobody when the runner runs as root, else the runner's own user")
	fs.DurationVar(&c.grace, "grace", 30*time.Second, "the time a job has between SIGTERM and SIGKILL")
	fs.DurationVar(&c.ttl, "ttl", time.Minute, "how long a lease lasts without a heartbeat: a runner that dies loses its jobs after this")
	fs.DurationVar(&c.interval, "interval", 5*time.Second, "the time between two reports to gaasd; at most a third of -ttl")
	fs.VisitAll(func(f *flag.Flag) { f.Usage += " (env " + envName(f.Name) + ")" })
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fs.SetOutput(stdout)
		fs.Usage()
		return c, err
	}
	if err != nil {
		return c, fmt.Errorf("%w; gaas-runner -h lists the flags", err)
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q; gaas-runner -h lists the flags", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		if v := getenv(envName(f.Name)); v != "" && !set[f.Name] && envErr == nil {
			if err := f.Value.Set(v); err != nil {
				envErr = fmt.Errorf("%s: %w", envName(f.Name), err)
			}
		}
	})
	if envErr != nil {
		return c, envErr
	}
	if *tokenFile != "" {
		if c.token != "" && set["token"] {
			return c, errors.New("give -token or -token-file, not both")
		}
		b, err := os.ReadFile(*tokenFile)
		if err != nil {
			return c, fmt.Errorf("-token-file: %w", err)
		}
		c.token = strings.TrimRight(string(b), "\r\n")
	}
	switch {
	case c.server == "":
		return c, errors.New("-server (or " + envName("server") + ") is required")
	case c.token == "":
		return c, errors.New("a token is required: " + envName("token") + ", -token-file or -token")
	case c.logDir == "":
		return c, errors.New("-log-dir must not be empty")
	case c.grace <= 0:
		return c, errors.New("-grace must be positive")
	}
	return c, nil
}

// stopping is an executor that takes no new jobs once stopped, so that
// the loop's last step only reports.
type stopping struct {
	gaas.Executor
	stopped atomic.Bool
}

func (s *stopping) Free(ctx context.Context) (map[string]int, error) {
	if s.stopped.Load() {
		return nil, nil
	}
	return s.Executor.Free(ctx)
}

// refusing is a dispatcher that notes when the server refuses the token
// (it was revoked): the runner then stops, since nothing it does can be
// reported any more.
type refusing struct {
	gaas.Dispatcher
	refused func()
}

func (r refusing) check(err error) error {
	if errors.Is(err, gaas.ErrUnauthorized) {
		r.refused()
	}
	return err
}

func (r refusing) Claim(ctx context.Context, req gaas.ClaimRequest) ([]gaas.Claimed, error) {
	c, err := r.Dispatcher.Claim(ctx, req)
	return c, r.check(err)
}

func (r refusing) Heartbeat(ctx context.Context, req gaas.HeartbeatRequest) (gaas.HeartbeatReply, error) {
	h, err := r.Dispatcher.Heartbeat(ctx, req)
	return h, r.check(err)
}

func (r refusing) Finish(ctx context.Context, req gaas.FinishRequest) (gaas.Job, error) {
	j, err := r.Dispatcher.Finish(ctx, req)
	return j, r.check(err)
}

func (r refusing) Leases(ctx context.Context, executor string) ([]gaas.Claimed, error) {
	c, err := r.Dispatcher.Leases(ctx, executor)
	return c, r.check(err)
}

// errRefused is run's error when the server stopped accepting the token.
var errRefused = errors.New("the server refused the token (revoked?); the jobs were stopped")

// run is gaas-runner: it runs jobs until ctx ends, then stops them,
// reports them, and returns nil. When the server refuses the token
// meanwhile, it stops the same way and returns errRefused.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseConfig(args, getenv, stdout)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewJSONHandler(stderr, nil))
	d, err := remote.New(remote.Config{URL: cfg.server, Token: cfg.token})
	if err != nil {
		return err
	}
	// The token says who this runner is; asking also checks the server
	// and the token before any job starts.
	start, cancel := context.WithTimeout(ctx, time.Minute)
	name, err := d.Executor(start)
	cancel()
	if err != nil {
		return fmt.Errorf("ask %s who the token is: %w", cfg.server, err)
	}
	x, err := local.New(ctx, local.Config{LogDir: cfg.logDir, GPUs: cfg.gpus, NvidiaSMI: cfg.gpusFrom, Types: cfg.types, User: cfg.user, Grace: cfg.grace})
	if err != nil {
		return err
	}
	sx := &stopping{Executor: x}
	ctx, stopRunning := context.WithCancel(ctx)
	defer stopRunning()
	var refused atomic.Bool
	rd := refusing{Dispatcher: d, refused: func() { refused.Store(true); stopRunning() }}
	l, err := executor.New(logger, rd, sx, executor.Config{Name: name, TTL: cfg.ttl, Interval: cfg.interval})
	if err != nil {
		x.Close(context.Background())
		return err
	}
	free, _ := x.Free(ctx)
	logger.Info("gaas-runner started", "server", cfg.server, "executor", name, "gpus", free, "log_dir", cfg.logDir)
	l.Run(ctx)

	// Stop the jobs, then tell gaasd how they ended, so that it settles
	// them now rather than when their leases expire.
	logger.Info("gaas-runner stopping its jobs")
	sx.stopped.Store(true)
	stop, cancel := context.WithTimeout(context.Background(), cfg.grace+10*time.Second)
	defer cancel()
	closeErr := x.Close(stop)
	report, cancelReport := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancelReport()
	if err := l.Step(report); err != nil {
		logger.Error("not every job was reported; their leases will expire", "err", err)
	}
	logger.Info("gaas-runner stopped")
	if refused.Load() {
		return errRefused
	}
	return closeErr
}
