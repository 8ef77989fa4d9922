// Package local runs gaas jobs as processes on this machine: each job gets
// GPUs of its type to itself, named to CUDA by CUDA_VISIBLE_DEVICES, runs
// as `/bin/sh -c <command>` in a process group of its own under an
// unprivileged user, with a clean environment and its output in a log file,
// and is stopped at its time limit (SIGTERM to the group, a grace period,
// SIGKILL).
//
// Without cgroups, a process group is what the executor can hold a job by:
// whatever a job leaves behind in its group when its shell exits is killed,
// so that its GPUs are free again, but a process that leaves the group
// (setsid, setpgid) escapes the time limit, cancellation and that clean-up.
//
// The executor keeps a small state file beside the logs (each running job's
// process group and the start time of its leader, which a reused process id
// does not share), so that after a crash of the process that held it, a new
// Executor over the same directory kills the groups its predecessor left
// running and reports those jobs as lost. It runs only on Linux; New says so
// elsewhere.
package local

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gaas-io/gaas/gaas"
	"github.com/gaas-io/gaas/server/executor"
)

var _ gaas.Executor = (*Executor)(nil)

// Config says which GPUs this machine has and how jobs run on them.
type Config struct {
	// LogDir holds each job's log, as <job id>.log, and the executor's
	// state. It is made if it does not exist, with mode 0711: jobs may
	// enter it (it is their default working directory), not list it or
	// write there. Only one Executor uses a directory at a time. Required.
	LogDir string
	// GPUs is the machine's inventory; empty asks nvidia-smi.
	GPUs []GPU
	// NvidiaSMI is the nvidia-smi that lists the GPUs when GPUs is empty;
	// empty finds it on PATH.
	NvidiaSMI string
	// Types maps GPU names, as nvidia-smi reports them, to the catalogue's
	// types; a name it does not map is its own type (open mode).
	Types map[string]string
	// User is who jobs run as. Empty is "nobody" when the executor runs as
	// root, and the executor's own user otherwise. Jobs never run as root:
	// commands are user input.
	User string
	// Dir is the jobs' working directory, which their user must be able to
	// enter; empty is LogDir.
	Dir string
	// Env is added to each job's environment, "NAME=value" each. The
	// environment is otherwise PATH (a standard one, which Env may
	// replace), HOME (the user's home, or / if it has none), LANG (the
	// executor's, if set), CUDA_VISIBLE_DEVICES and GAAS_JOB_ID; nothing of
	// the executor's own environment, which holds its secrets.
	Env []string
	// Grace is the time a job has to exit between SIGTERM and SIGKILL; 0
	// is 30 seconds.
	Grace time.Duration
	// Clock times the jobs; nil is the system's clock.
	Clock Clock
}

// Clock is what the executor measures and limits jobs' time with.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f in its own goroutine once d has passed; stop
	// cancels that, and reports whether it did.
	AfterFunc(d time.Duration, f func()) (stop func() bool)
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }
func (systemClock) AfterFunc(d time.Duration, f func()) func() bool {
	return time.AfterFunc(d, f).Stop
}

// ErrBusy is the error of a Start for which too few GPUs of the job's type
// are free now: it may start once others end.
var ErrBusy = errors.New("local: not enough free GPUs")

// defaultPath is the PATH jobs get unless Config.Env names one.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Executor runs jobs as process groups on this machine.
type Executor struct {
	logDir string
	dir    string
	grace  time.Duration
	clock  Clock
	as     account
	env    []string
	boot   string
	lock   io.Closer
	// spawn runs what it is given on one thread locked to its goroutine:
	// Pdeathsig kills a job's shell when the thread that started it ends,
	// which a thread the runtime may retire would do at any time.
	spawn chan func()

	mu       sync.Mutex
	pools    []*pool
	runs     map[string]*run // by external id
	starting map[int64]bool  // job ids being started
	closed   bool
	wg       sync.WaitGroup // reapers
}

// account is the user jobs run as.
type account struct {
	name     string
	uid, gid uint32
	groups   []uint32
	home     string
	// switch says the executor runs as another user, and so sets the
	// jobs' credentials; false runs them as itself.
	switchTo bool
}

// record is what the state file keeps of a run.
type record struct {
	JobID      int64         `json:"job_id"`
	ExternalID string        `json:"external_id"`
	PID        int           `json:"pid"` // the group's id too
	StartTicks uint64        `json:"start_ticks"`
	UID        uint32        `json:"uid"`
	Started    time.Time     `json:"started"`
	Ended      *gaas.Outcome `json:"ended,omitempty"`
}

// run is a job the executor started, or found in its predecessor's state.
type run struct {
	rec   record
	pool  *pool
	gpus  []string
	cmd   *exec.Cmd
	limit time.Duration
	// stop says why the executor stopped the job, if it did: stopTimeout,
	// stopCancel or stopShutdown.
	stop      string
	killed    bool // SIGKILL was sent after the grace period
	exited    bool // the shell exited; its group is not to be signalled again
	stopLimit func() bool
	stopGrace func() bool
	done      chan struct{} // closed once it ended
	discard   bool          // the state file is not to keep it
}

const (
	stopTimeout  = "timeout"
	stopCancel   = "cancel"
	stopShutdown = "shutdown"
)

// New takes the inventory (cfg.GPUs, or nvidia-smi's), resolves the user
// jobs run as, and kills the jobs that a predecessor over the same LogDir
// left running: Runs reports them as lost.
func New(ctx context.Context, cfg Config) (*Executor, error) {
	if err := supported(); err != nil {
		return nil, err
	}
	if cfg.LogDir == "" {
		return nil, errors.New("local: no log directory")
	}
	for _, kv := range cfg.Env {
		name, _, ok := strings.Cut(kv, "=")
		if !ok || name == "" || strings.ContainsRune(kv, 0) {
			return nil, fmt.Errorf("local: environment entry %q is not NAME=value", kv)
		}
	}
	gpus := cfg.GPUs
	if len(gpus) == 0 {
		var err error
		if gpus, err = QueryGPUs(ctx, cfg.NvidiaSMI); err != nil {
			return nil, err
		}
		if len(gpus) == 0 {
			return nil, errors.New("local: nvidia-smi lists no GPUs")
		}
	}
	ps, err := pools(gpus, cfg.Types)
	if err != nil {
		return nil, err
	}
	as, err := lookupAccount(cfg.User)
	if err != nil {
		return nil, err
	}
	logDir, err := filepath.Abs(cfg.LogDir)
	if err != nil {
		return nil, fmt.Errorf("local: log directory: %w", err)
	}
	if err := os.MkdirAll(logDir, 0o711); err != nil {
		return nil, fmt.Errorf("local: log directory: %w", err)
	}
	lock, err := lockFile(filepath.Join(logDir, "state.lock"))
	if err != nil {
		return nil, err
	}
	e := &Executor{
		logDir: logDir, dir: cmp.Or(cfg.Dir, logDir), grace: cmp.Or(cfg.Grace, 30*time.Second),
		clock: cfg.Clock, as: as, boot: bootID(), lock: lock, spawn: make(chan func()),
		pools: ps, runs: make(map[string]*run), starting: make(map[int64]bool),
	}
	if e.clock == nil {
		e.clock = systemClock{}
	}
	e.env = []string{"PATH=" + defaultPath, "HOME=" + as.home}
	if lang := os.Getenv("LANG"); lang != "" {
		e.env = append(e.env, "LANG="+lang)
	}
	e.env = append(e.env, cfg.Env...)
	if err := e.recover(); err != nil {
		lock.Close()
		return nil, err
	}
	go e.spawner()
	return e, nil
}

func (e *Executor) spawner() {
	// Never unlocked: the thread ends with this goroutine, at Close, when
	// every job it started has ended.
	runtime.LockOSThread()
	for f := range e.spawn {
		f()
	}
}

// lookupAccount resolves the user jobs run as.
func lookupAccount(name string) (account, error) {
	euid := os.Geteuid()
	if name == "" && euid != 0 {
		u, err := user.Current()
		if err != nil {
			return account{}, fmt.Errorf("local: the user jobs run as: %w", err)
		}
		name = u.Username
	}
	if name == "" {
		name = "nobody"
	}
	u, err := user.Lookup(name)
	if err != nil {
		return account{}, fmt.Errorf("local: the user jobs run as: %w", err)
	}
	a := account{name: u.Username, home: "/"}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return account{}, fmt.Errorf("local: the user jobs run as, %s: %w", name, err)
	}
	a.uid, a.gid = uint32(uid), uint32(gid)
	if a.uid == 0 {
		return account{}, fmt.Errorf("local: jobs must not run as root (%s)", name)
	}
	if fi, err := os.Stat(u.HomeDir); err == nil && fi.IsDir() {
		a.home = u.HomeDir
	}
	if int(a.uid) == euid {
		return a, nil
	}
	if euid != 0 {
		return account{}, fmt.Errorf("local: jobs run as %s: only root may start them as another user", name)
	}
	a.switchTo = true
	ids, _ := u.GroupIds()
	for _, s := range ids {
		if g, err := strconv.ParseUint(s, 10, 32); err == nil && !slices.Contains(a.groups, uint32(g)) {
			a.groups = append(a.groups, uint32(g))
		}
	}
	if !slices.Contains(a.groups, a.gid) {
		a.groups = append(a.groups, a.gid)
	}
	return a, nil
}

// Free is how many GPUs of each type of this machine no job holds now; a
// type whose GPUs are all busy is there with 0.
func (e *Executor) Free(ctx context.Context) (map[string]int, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	free := make(map[string]int, len(e.pools))
	for _, p := range e.pools {
		free[p.typ] = p.free()
	}
	return free, nil
}

// LimitOf is the wall time a job that estimated h may run here: h itself,
// to the milli-hour.
func LimitOf(h gaas.Hours) time.Duration {
	const milliHour = time.Hour / 1000
	if h > gaas.Hours(math.MaxInt64/int64(milliHour)) {
		return math.MaxInt64
	}
	return time.Duration(h) * milliHour
}

// Start starts the job on free GPUs of its type and returns its external
// id, "<job id>-<pid>". A job that runs here already is not started
// again: its external id is returned. A type this machine has no GPUs of,
// or fewer than the job asks for, wraps gaas.ErrInvalid; too few free now
// wraps ErrBusy.
func (e *Executor) Start(ctx context.Context, j gaas.Job) (string, error) {
	n := max(j.GPUCount, 1)
	if j.ID <= 0 {
		return "", fmt.Errorf("local: job id %d: %w", j.ID, gaas.ErrInvalid)
	}
	if j.EstimatedHours <= 0 {
		return "", fmt.Errorf("local: job %d has no time to run (estimate %v): %w", j.ID, j.EstimatedHours, gaas.ErrInvalid)
	}
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return "", fmt.Errorf("local: start job %d: the executor is closed", j.ID)
	}
	for id, r := range e.runs {
		if r.rec.JobID == j.ID && r.rec.Ended == nil {
			e.mu.Unlock()
			return id, nil
		}
	}
	if e.starting[j.ID] {
		e.mu.Unlock()
		return "", fmt.Errorf("local: job %d is being started", j.ID)
	}
	p := findPool(e.pools, j.GPUType)
	switch {
	case p == nil:
		e.mu.Unlock()
		return "", fmt.Errorf("local: job %d: this machine has no %s GPUs: %w", j.ID, j.GPUType, gaas.ErrInvalid)
	case n > len(p.gpus):
		e.mu.Unlock()
		return "", fmt.Errorf("local: job %d asks for %d %s GPUs, and this machine has %d: %w", j.ID, n, p.typ, len(p.gpus), gaas.ErrInvalid)
	case n > p.free():
		e.mu.Unlock()
		return "", fmt.Errorf("local: job %d asks for %d %s GPUs, %d are free: %w", j.ID, n, p.typ, p.free(), ErrBusy)
	}
	r := &run{pool: p, gpus: p.take(n), limit: LimitOf(j.EstimatedHours), done: make(chan struct{})}
	e.starting[j.ID] = true
	e.wg.Add(1) // Close waits for the start, then for the run's reaper
	e.mu.Unlock()

	err := e.startProcess(j, r)

	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.starting, j.ID)
	if err != nil {
		p.give(r.gpus)
		e.wg.Done()
		return "", err
	}
	e.runs[r.rec.ExternalID] = r
	go e.reap(r)
	if err := e.save(); err != nil {
		// A job that a restart would not find is not run at all.
		r.discard, r.stop, r.killed = true, stopShutdown, true
		signalGroup(r.rec.PID, syscall.SIGKILL)
		e.mu.Unlock()
		<-r.done
		e.mu.Lock()
		delete(e.runs, r.rec.ExternalID)
		e.save()
		return "", err
	}
	if e.closed { // Close came while it started
		e.stopRun(r, stopShutdown)
	}
	r.stopLimit = e.clock.AfterFunc(r.limit, func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		e.stopRun(r, stopTimeout)
	})
	return r.rec.ExternalID, nil
}

// startProcess starts the job's shell, its output in its log.
func (e *Executor) startProcess(j gaas.Job, r *run) error {
	// A fresh file, never what a link left at its name points to: the
	// executor may be root, and the directory writable by others.
	path := e.LogPath(j.ID)
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("local: job %d: %w", j.ID, err)
	}
	log, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|noFollow, 0o640)
	if err != nil {
		return fmt.Errorf("local: job %d: %w", j.ID, err)
	}
	defer log.Close() // the shell has its own copy
	cmd := exec.Command("/bin/sh", "-c", j.Command)
	cmd.Dir = e.dir
	cmd.Env = append(slices.Clip(e.env),
		"CUDA_VISIBLE_DEVICES="+strings.Join(r.gpus, ","),
		"GAAS_JOB_ID="+strconv.FormatInt(j.ID, 10))
	cmd.Stdout, cmd.Stderr = log, log // stdin is /dev/null
	cmd.SysProcAttr = sysProcAttr(e.as)
	started := make(chan error)
	e.spawn <- func() { started <- cmd.Start() }
	if err := <-started; err != nil {
		return fmt.Errorf("local: start job %d: %w", j.ID, err)
	}
	pid := cmd.Process.Pid
	r.cmd = cmd
	r.rec = record{JobID: j.ID, ExternalID: fmt.Sprintf("%d-%d", j.ID, pid), PID: pid,
		UID: e.as.uid, Started: e.clock.Now()}
	// The shell cannot have been reaped yet: its pid is still its own.
	r.rec.StartTicks, _ = procStart(pid)
	return nil
}

// stopRun stops a running job as the executor does at its time limit: a
// SIGTERM to its group, and a SIGKILL after the grace period. The first
// reason to stop it is the one its outcome gives.
func (e *Executor) stopRun(r *run, why string) {
	if r.exited || r.stop != "" {
		return
	}
	r.stop = why
	signalGroup(r.rec.PID, syscall.SIGTERM)
	r.stopGrace = e.clock.AfterFunc(e.grace, func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		if !r.exited {
			r.killed = true
			signalGroup(r.rec.PID, syscall.SIGKILL)
		}
	})
}

// reap waits for the job's shell to exit, kills what it left in its group,
// and records the outcome.
func (e *Executor) reap(r *run) {
	defer e.wg.Done()
	// Until the shell is reaped, its pid, and so its group's id, cannot be
	// reused: what is signalled is the job's.
	waitErr := waitExited(r.rec.PID)
	ended := e.clock.Now()
	e.mu.Lock()
	r.exited = true
	for _, stop := range []func() bool{r.stopLimit, r.stopGrace} {
		if stop != nil {
			stop()
		}
	}
	signalGroup(r.rec.PID, syscall.SIGKILL)
	e.mu.Unlock()
	err := r.cmd.Wait()
	if waitErr != nil && err == nil {
		err = waitErr
	}
	awaitGroup(r.rec.PID, 5*time.Second)

	e.mu.Lock()
	defer e.mu.Unlock()
	o := r.outcome(r.cmd.ProcessState, err, ended.Sub(r.rec.Started), e.grace)
	r.rec.Ended = &o
	r.pool.give(r.gpus)
	close(r.done)
	if !r.discard {
		e.save() // a failure leaves the run as running in the state: a restart reports it lost
	}
}

// outcome says how the job ended, from how its shell exited and why the
// executor stopped it, if it did.
func (r *run) outcome(ps *os.ProcessState, err error, elapsed time.Duration, grace time.Duration) gaas.Outcome {
	o := gaas.Outcome{Status: gaas.StatusFailed, Elapsed: max(elapsed, 0)}
	code, sig := exitOf(ps)
	switch {
	case ps == nil:
		o.Reason = fmt.Sprintf("lost: %v", err)
	case sig != 0:
		o.Reason = fmt.Sprintf("signal %d", sig)
	default:
		o.ExitCode = &code
		o.Reason = fmt.Sprintf("exit status %d", code)
		if code == 0 && r.stop == "" {
			o.Status = gaas.StatusCompleted
		}
	}
	if r.killed {
		o.Reason += fmt.Sprintf(" after a grace of %v", grace)
	}
	switch r.stop {
	case stopTimeout:
		o.Reason = fmt.Sprintf("TIMEOUT: killed at its time limit of %v: %s", r.limit, o.Reason)
	case stopCancel:
		o.Status = gaas.StatusCancelled
		o.Reason = "cancelled: " + o.Reason
	case stopShutdown:
		o.Reason = "stopped: the executor shut down: " + o.Reason
	}
	return o
}

// Runs reports every job started and not forgotten, in the order they
// started, with the lost jobs of a predecessor.
func (e *Executor) Runs(ctx context.Context) ([]gaas.Run, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	runs := make([]gaas.Run, 0, len(e.runs))
	for _, r := range e.runs {
		gr := gaas.Run{JobID: r.rec.JobID, ExternalID: r.rec.ExternalID, Started: r.rec.Started}
		if r.rec.Ended != nil {
			o := *r.rec.Ended
			gr.Ended = &o
		}
		runs = append(runs, gr)
	}
	slices.SortFunc(runs, func(a, b gaas.Run) int {
		return cmp.Or(a.Started.Compare(b.Started), cmp.Compare(a.JobID, b.JobID))
	})
	return runs, nil
}

// Cancel stops a running job as its time limit would (SIGTERM, the grace
// period, SIGKILL); its run ends CANCELLED, with the time it ran. It does
// not wait for that. Cancelling a job that ended is no error; an external
// id this executor does not know is gaas.ErrNotFound.
func (e *Executor) Cancel(ctx context.Context, externalID string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	r, ok := e.runs[externalID]
	if !ok {
		return fmt.Errorf("local: cancel %q: %w", externalID, gaas.ErrNotFound)
	}
	if r.rec.Ended == nil {
		e.stopRun(r, stopCancel)
	}
	return nil
}

// Forget drops an ended run; a run still going is kept.
func (e *Executor) Forget(externalID string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if r, ok := e.runs[externalID]; ok && r.rec.Ended != nil {
		delete(e.runs, externalID)
		e.save()
	}
}

// Close stops every running job as Cancel does (their runs end FAILED,
// "stopped: the executor shut down", with the time they ran, which the
// state file keeps for the next Executor), waits for them to end (after
// ctx is done, it kills them at once), and lets the log directory go.
func (e *Executor) Close(ctx context.Context) error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	for _, r := range e.runs {
		e.stopRun(r, stopShutdown)
	}
	e.mu.Unlock()
	done := make(chan struct{})
	go func() { e.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		e.mu.Lock()
		for _, r := range e.runs {
			if !r.exited && r.rec.Ended == nil {
				r.killed = true
				signalGroup(r.rec.PID, syscall.SIGKILL)
			}
		}
		e.mu.Unlock()
		<-done
	}
	close(e.spawn)
	return e.lock.Close()
}

// LogPath is the file that job jobID's output goes to.
func (e *Executor) LogPath(jobID int64) string {
	return filepath.Join(e.logDir, strconv.FormatInt(jobID, 10)+".log")
}

// Log reads the end of job jobID's log: its last maxBytes bytes (the end
// of its output is what tells how it went), which may begin in the middle
// of a line, and whether any came before them. A job with no log here is
// gaas.ErrNotFound.
func (e *Executor) Log(jobID int64, maxBytes int64) (tail []byte, truncated bool, err error) {
	if jobID <= 0 {
		return nil, false, fmt.Errorf("local: log of job %d: %w", jobID, gaas.ErrNotFound)
	}
	tail, truncated, err = executor.TailFile(e.LogPath(jobID), maxBytes)
	if err != nil {
		return nil, false, fmt.Errorf("local: log of job %d: %w", jobID, err)
	}
	return tail, truncated, nil
}
