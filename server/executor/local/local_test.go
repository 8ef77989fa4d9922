package local_test

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/gaas"
	"github.com/gaas-io/gaas/server/executor/local"
)

// The tests run real processes under /bin/sh against a made-up inventory:
// two A100s that the configuration maps to the catalogue's A100-80GB, and
// an H100 that it does not map, whose type is its name.
var (
	inventory = []local.GPU{
		{Index: 0, UUID: "GPU-aaaa-0000", Name: "NVIDIA A100-SXM4-80GB", MemoryMiB: 81920},
		{Index: 1, UUID: "GPU-aaaa-1111", Name: "NVIDIA A100-SXM4-80GB", MemoryMiB: 81920},
		{Index: 2, UUID: "GPU-hhhh-2222", Name: "NVIDIA H100 80GB HBM3", MemoryMiB: 81559},
	}
	types = map[string]string{"NVIDIA A100-SXM4-80GB": "A100-80GB"}
)

const (
	h100 = "NVIDIA H100 80GB HBM3"
	t4   = "Tesla T4"
)

// A variable of the test process, which no job may see.
const secret = "GAAS_SECRET_TEST"

func TestMain(m *testing.M) {
	if dir := os.Getenv("GAAS_LOCAL_TEST_CRASH"); dir != "" {
		crashingExecutor(dir)
		return
	}
	os.Setenv(secret, "hunter2")
	os.Exit(m.Run())
}

// crashingExecutor starts a job whose shell leaves two sleeps in its group,
// tells their pids, and waits to be killed.
func crashingExecutor(dir string) {
	e, err := local.New(context.Background(), config(dir))
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	id, err := e.Start(context.Background(), gaas.Job{ID: 1, Command: "sleep 300 & echo $!; sleep 300 & echo $!; wait",
		GPUType: "A100-80GB", GPUCount: 1, EstimatedHours: gaas.Hour})
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println(id)
	select {}
}

func config(dir string) local.Config {
	return local.Config{LogDir: filepath.Join(dir, "logs"), GPUs: inventory, Types: types,
		Grace: time.Second, Env: []string{"GAAS_EXTRA=extra"}}
}

// tempDir is a directory that the jobs' user may enter: t.TempDir's
// parent is closed to all but the test's user.
func tempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "gaas-local-")
	require.NoError(t, err)
	require.NoError(t, os.Chmod(dir, 0o711))
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// newExecutor makes an executor over a fresh directory, closed at the
// end of the test.
func newExecutor(t *testing.T, change ...func(*local.Config)) (*local.Executor, local.Config) {
	t.Helper()
	cfg := config(tempDir(t))
	for _, f := range change {
		f(&cfg)
	}
	e, err := local.New(t.Context(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, e.Close(context.Background())) })
	return e, cfg
}

var nextID atomic.Int64

func job(command, gpuType string, gpus int, estimate gaas.Hours) gaas.Job {
	return gaas.Job{ID: nextID.Add(1), Command: command, GPUType: gpuType, GPUCount: gpus, EstimatedHours: estimate}
}

func start(t *testing.T, e *local.Executor, j gaas.Job) string {
	t.Helper()
	id, err := e.Start(t.Context(), j)
	require.NoError(t, err)
	return id
}

func find(t *testing.T, e *local.Executor, externalID string) (gaas.Run, bool) {
	t.Helper()
	runs, err := e.Runs(t.Context())
	require.NoError(t, err)
	for _, r := range runs {
		if r.ExternalID == externalID {
			return r, true
		}
	}
	return gaas.Run{}, false
}

// ended waits until the run ends.
func ended(t *testing.T, e *local.Executor, externalID string, within time.Duration) gaas.Outcome {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		r, ok := find(t, e, externalID)
		require.True(t, ok, "run %s", externalID)
		if r.Ended != nil {
			return *r.Ended
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %s still runs after %v", externalID, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// logOf waits until job id's log holds lines lines, and returns them.
func logOf(t *testing.T, e *local.Executor, id int64, lines int) []string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _, err := e.Log(id, 1<<20)
		require.NoError(t, err)
		got := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
		if strings.Count(string(b), "\n") >= lines {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("log of job %d: %q, want %d lines", id, b, lines)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// alive reports whether process pid runs (a zombie does not).
func alive(t *testing.T, pid int) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(b), ')')
	return i > 0 && !strings.HasPrefix(string(b[i+1:]), " Z")
}

func pids(t *testing.T, lines []string) []int {
	t.Helper()
	var ps []int
	for _, l := range lines {
		pid, err := strconv.Atoi(l)
		require.NoError(t, err, "%q", l)
		ps = append(ps, pid)
	}
	return ps
}

func TestJobs(t *testing.T) {
	e, _ := newExecutor(t, func(c *local.Config) {
		for i := range 10 {
			c.GPUs = append(c.GPUs, local.GPU{Index: 3 + i, UUID: fmt.Sprintf("GPU-tttt-%d", i), Name: t4})
		}
	})

	t.Run("completes in a clean environment on the GPUs it was given", func(t *testing.T) {
		t.Parallel()
		j := job("id -u; echo \"gpus=$CUDA_VISIBLE_DEVICES\"; pwd; env", "a100-80GB", 2, 10)
		id := start(t, e, j)
		assert.True(t, strings.HasPrefix(id, strconv.FormatInt(j.ID, 10)+"-"), id)
		o := ended(t, e, id, 10*time.Second)
		assert.Equal(t, gaas.StatusCompleted, o.Status)
		require.NotNil(t, o.ExitCode)
		assert.Equal(t, 0, *o.ExitCode)
		assert.Equal(t, "exit status 0", o.Reason)
		assert.Greater(t, o.Elapsed, time.Duration(0))
		assert.False(t, o.SystemFault)

		log := logOf(t, e, j.ID, 3)
		if os.Geteuid() == 0 {
			assert.Equal(t, "65534", log[0], "runs as nobody")
		} else {
			assert.Equal(t, strconv.Itoa(os.Geteuid()), log[0])
		}
		assert.Equal(t, "gpus=GPU-aaaa-0000,GPU-aaaa-1111", log[1])
		assert.Equal(t, filepath.Dir(e.LogPath(j.ID)), log[2], "works in the log directory")
		env := make(map[string]string)
		for _, kv := range log[3:] {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
		assert.NotContains(t, env, secret)
		assert.Equal(t, "GPU-aaaa-0000,GPU-aaaa-1111", env["CUDA_VISIBLE_DEVICES"])
		assert.Equal(t, strconv.FormatInt(j.ID, 10), env["GAAS_JOB_ID"])
		assert.Equal(t, "extra", env["GAAS_EXTRA"])
		assert.NotEmpty(t, env["PATH"])
		assert.NotEmpty(t, env["HOME"])
		for k := range env {
			// What the shell adds of itself is all there is besides.
			assert.Contains(t, []string{"PATH", "HOME", "LANG", "CUDA_VISIBLE_DEVICES", "GAAS_JOB_ID", "GAAS_EXTRA", "PWD", "OLDPWD", "SHLVL", "_"}, k)
		}
	})

	t.Run("fails with its exit code, its output and errors in its log", func(t *testing.T) {
		t.Parallel()
		j := job("echo out; echo err >&2; exit 3", t4, 1, 10)
		o := ended(t, e, start(t, e, j), 10*time.Second)
		assert.Equal(t, gaas.StatusFailed, o.Status)
		require.NotNil(t, o.ExitCode)
		assert.Equal(t, 3, *o.ExitCode)
		assert.Equal(t, "exit status 3", o.Reason)
		assert.Equal(t, []string{"out", "err"}, logOf(t, e, j.ID, 2))
	})

	t.Run("overruns its time limit and is stopped with SIGTERM", func(t *testing.T) {
		t.Parallel()
		j := job("echo started; sleep 60", t4, 1, 1) // 3.6 seconds
		began := time.Now()
		id := start(t, e, j)
		o := ended(t, e, id, 10*time.Second)
		took := time.Since(began)
		assert.Equal(t, gaas.StatusFailed, o.Status)
		assert.Equal(t, "TIMEOUT: killed at its time limit of 3.6s: signal 15", o.Reason)
		assert.Nil(t, o.ExitCode)
		assert.GreaterOrEqual(t, o.Elapsed, 3600*time.Millisecond)
		assert.Less(t, o.Elapsed, 4600*time.Millisecond, "no grace needed")
		assert.GreaterOrEqual(t, took, 3600*time.Millisecond)
		assert.Equal(t, gaas.Hours(1), o.ActualHours(j.EstimatedHours))
	})

	t.Run("ignores SIGTERM and is killed after the grace period", func(t *testing.T) {
		t.Parallel()
		j := job("trap '' TERM; echo started; sleep 60", t4, 1, 2) // 7.2 seconds
		id := start(t, e, j)
		o := ended(t, e, id, 15*time.Second)
		assert.Equal(t, gaas.StatusFailed, o.Status)
		assert.Equal(t, "TIMEOUT: killed at its time limit of 7.2s: signal 9 after a grace of 1s", o.Reason)
		assert.Nil(t, o.ExitCode)
		assert.GreaterOrEqual(t, o.Elapsed, 8200*time.Millisecond)
		assert.Less(t, o.Elapsed, 9500*time.Millisecond)
		assert.Equal(t, gaas.Hours(2), o.ActualHours(j.EstimatedHours), "charged its estimate, not its overrun")
	})

	t.Run("leaves children behind, which are killed", func(t *testing.T) {
		t.Parallel()
		// The second child ignores SIGTERM, and only SIGKILL stops it.
		j := job("sleep 300 & echo $!; (trap '' TERM; exec sleep 300) & echo $!", h100, 1, 10) // the A100s are the first one's
		id := start(t, e, j)
		o := ended(t, e, id, 10*time.Second)
		assert.Equal(t, gaas.StatusCompleted, o.Status)
		for _, pid := range pids(t, logOf(t, e, j.ID, 2)) {
			assert.False(t, alive(t, pid), "child %d outlived its job", pid)
		}
	})

	t.Run("is cancelled while it runs", func(t *testing.T) {
		t.Parallel()
		j := job("echo started; sleep 60", t4, 1, 100)
		id := start(t, e, j)
		logOf(t, e, j.ID, 1)
		time.Sleep(200 * time.Millisecond)
		require.NoError(t, e.Cancel(t.Context(), id))
		o := ended(t, e, id, 10*time.Second)
		assert.Equal(t, gaas.StatusCancelled, o.Status)
		assert.Equal(t, "cancelled: signal 15", o.Reason)
		assert.Nil(t, o.ExitCode)
		assert.GreaterOrEqual(t, o.Elapsed, 200*time.Millisecond)
		assert.Less(t, o.Elapsed, 5*time.Second)
		require.NoError(t, e.Cancel(t.Context(), id), "cancelling again")
		assert.Equal(t, o, ended(t, e, id, 0))
	})

	t.Run("is cancelled as soon as it started", func(t *testing.T) {
		t.Parallel()
		j := job("trap 'echo term' TERM; sleep 1; echo done", t4, 1, 100)
		id := start(t, e, j)
		require.NoError(t, e.Cancel(t.Context(), id))
		o := ended(t, e, id, 10*time.Second)
		assert.Equal(t, gaas.StatusCancelled, o.Status)
		assert.Less(t, o.Elapsed, 3*time.Second)
	})

	t.Run("is cancelled after it ended: nothing changes", func(t *testing.T) {
		t.Parallel()
		id := start(t, e, job("true", t4, 1, 10))
		o := ended(t, e, id, 10*time.Second)
		require.NoError(t, e.Cancel(t.Context(), id))
		assert.Equal(t, o, ended(t, e, id, 0))
		assert.Equal(t, gaas.StatusCompleted, o.Status)
	})
}

func TestFreeAndStart(t *testing.T) {
	t.Parallel()
	e, _ := newExecutor(t)
	ctx := t.Context()
	free := func() map[string]int {
		f, err := e.Free(ctx)
		require.NoError(t, err)
		return f
	}
	assert.Equal(t, map[string]int{"A100-80GB": 2, h100: 1}, free())

	a := job("echo $CUDA_VISIBLE_DEVICES; sleep 60", "A100-80GB", 1, 100)
	b := job("echo $CUDA_VISIBLE_DEVICES; sleep 60", "a100-80gb", 1, 100)
	ida, idb := start(t, e, a), start(t, e, b)
	assert.Equal(t, map[string]int{"A100-80GB": 0, h100: 1}, free())
	gpus := []string{logOf(t, e, a.ID, 1)[0], logOf(t, e, b.ID, 1)[0]}
	slices.Sort(gpus)
	assert.Equal(t, []string{"GPU-aaaa-0000", "GPU-aaaa-1111"}, gpus, "each has a GPU of its own")

	again, err := e.Start(ctx, a)
	require.NoError(t, err)
	assert.Equal(t, ida, again, "a job that runs is not started twice")

	_, err = e.Start(ctx, job("true", "A100-80GB", 1, 10))
	assert.ErrorIs(t, err, local.ErrBusy)
	assert.NotErrorIs(t, err, gaas.ErrInvalid)
	_, err = e.Start(ctx, job("true", "A100-80GB", 3, 10))
	assert.ErrorIs(t, err, gaas.ErrInvalid, "more GPUs than the machine has")
	_, err = e.Start(ctx, job("true", "V100", 1, 10))
	assert.ErrorIs(t, err, gaas.ErrInvalid, "a type the machine has none of")
	assert.ErrorContains(t, err, "no V100 GPUs")
	assert.ErrorIs(t, e.Cancel(ctx, "nonesuch"), gaas.ErrNotFound)

	e.Forget(ida) // runs still: kept
	_, ok := find(t, e, ida)
	assert.True(t, ok)

	require.NoError(t, e.Cancel(ctx, ida))
	ended(t, e, ida, 10*time.Second)
	assert.Equal(t, map[string]int{"A100-80GB": 1, h100: 1}, free())
	c := job("echo $CUDA_VISIBLE_DEVICES", "A100-80GB", 1, 10)
	ended(t, e, start(t, e, c), 10*time.Second)
	assert.Equal(t, logOf(t, e, a.ID, 1), logOf(t, e, c.ID, 1), "the GPU that was freed")

	require.NoError(t, e.Cancel(ctx, idb))
	ended(t, e, idb, 10*time.Second)
	assert.Equal(t, map[string]int{"A100-80GB": 2, h100: 1}, free())

	e.Forget(ida)
	_, ok = find(t, e, ida)
	assert.False(t, ok)
	runs, err := e.Runs(ctx)
	require.NoError(t, err)
	assert.Len(t, runs, 2)
}

func TestLog(t *testing.T) {
	t.Parallel()
	e, _ := newExecutor(t)
	j := job("printf 'first line\\nlast line\\n'", h100, 1, 10)
	ended(t, e, start(t, e, j), 10*time.Second)
	b, truncated, err := e.Log(j.ID, 10)
	require.NoError(t, err)
	assert.Equal(t, "last line\n", string(b))
	assert.True(t, truncated)
	b, truncated, err = e.Log(j.ID, 1000)
	require.NoError(t, err)
	assert.Equal(t, "first line\nlast line\n", string(b))
	assert.False(t, truncated)
	_, _, err = e.Log(j.ID+1000, 10)
	assert.ErrorIs(t, err, gaas.ErrNotFound)

	fi, err := os.Stat(filepath.Dir(e.LogPath(j.ID)))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o711), fi.Mode().Perm(), "jobs may not list or write the logs")
}

// fakeClock is a clock that moves only when told to.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	at      time.Time
	f       func()
	stopped bool
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) func() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		was := !t.stopped
		t.stopped = true
		return was
	}
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	for _, t := range c.timers {
		if !t.stopped && !t.at.After(c.now) {
			t.stopped = true
			go t.f()
		}
	}
}

func TestTimeLimitIsTheEstimate(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	e, _ := newExecutor(t, func(c *local.Config) { c.Clock = clock })
	j := job("trap 'echo term; exit 4' TERM; echo started; while :; do sleep 0.05; done", h100, 1, 1234)
	id := start(t, e, j)
	logOf(t, e, j.ID, 1)
	limit := 4442400 * time.Millisecond // 1.234 hours
	assert.Equal(t, limit, local.LimitOf(j.EstimatedHours))
	clock.Advance(limit - time.Millisecond)
	time.Sleep(300 * time.Millisecond)
	r, _ := find(t, e, id)
	require.Nil(t, r.Ended, "stopped before its time")
	clock.Advance(time.Millisecond)
	o := ended(t, e, id, 10*time.Second)
	assert.Equal(t, gaas.StatusFailed, o.Status)
	assert.Equal(t, limit, o.Elapsed, "as the clock measures")
	require.NotNil(t, o.ExitCode, "it exited of itself")
	assert.Equal(t, 4, *o.ExitCode)
	assert.Equal(t, "TIMEOUT: killed at its time limit of 1h14m2.4s: exit status 4", o.Reason)
	assert.Equal(t, j.EstimatedHours, o.ActualHours(j.EstimatedHours))
	log := logOf(t, e, j.ID, 2)
	assert.Equal(t, "started", log[0])
	assert.Equal(t, "term", log[len(log)-1])
}

// TestRestart crashes an executor (a process of this test binary, killed
// with SIGKILL) while a job of it runs, and starts a new one over its
// directory.
func TestRestart(t *testing.T) {
	t.Parallel()
	if runtime.GOOS != "linux" {
		t.Skip("Linux only")
	}
	dir := tempDir(t)
	crashing := exec.Command(os.Args[0], "-test.run=^$")
	crashing.Env = append(os.Environ(), "GAAS_LOCAL_TEST_CRASH="+dir)
	crashing.Stderr = os.Stderr
	out, err := crashing.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, crashing.Start())
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err)
	externalID := strings.TrimSpace(line)
	require.False(t, strings.HasPrefix(externalID, "error"), externalID)
	shell, err := strconv.Atoi(externalID[strings.IndexByte(externalID, '-')+1:])
	require.NoError(t, err)

	// Another executor may not share the directory.
	_, err = local.New(t.Context(), config(dir))
	assert.ErrorContains(t, err, "another executor")

	logs := filepath.Join(dir, "logs")
	var sleeps []int
	require.Eventually(t, func() bool {
		b, _ := os.ReadFile(filepath.Join(logs, "1.log"))
		sleeps = nil
		for _, l := range strings.Fields(string(b)) {
			pid, _ := strconv.Atoi(l)
			sleeps = append(sleeps, pid)
		}
		return len(sleeps) == 2
	}, 10*time.Second, 20*time.Millisecond)

	require.NoError(t, crashing.Process.Signal(syscall.SIGKILL))
	crashing.Wait()
	require.Eventually(t, func() bool { return !alive(t, shell) }, 5*time.Second, 10*time.Millisecond,
		"the shell dies with the executor")
	for _, pid := range sleeps {
		require.True(t, alive(t, pid), "what the shell started outlives it")
	}

	crashed := time.Now()
	e, err := local.New(t.Context(), config(dir))
	require.NoError(t, err)
	for _, pid := range sleeps {
		assert.False(t, alive(t, pid), "%d is killed", pid)
	}
	runs, err := e.Runs(t.Context())
	require.NoError(t, err)
	require.Len(t, runs, 1)
	r := runs[0]
	assert.Equal(t, int64(1), r.JobID)
	assert.Equal(t, externalID, r.ExternalID)
	require.NotNil(t, r.Ended)
	assert.Equal(t, gaas.StatusFailed, r.Ended.Status)
	assert.Equal(t, local.Lost+"; its processes still ran and were killed", r.Ended.Reason)
	assert.False(t, r.Ended.SystemFault)
	assert.Greater(t, r.Ended.Elapsed, time.Duration(0))
	assert.Less(t, r.Ended.Elapsed, time.Since(r.Started)+time.Second)
	assert.WithinDuration(t, crashed, r.Started, 30*time.Second)
	free, err := e.Free(t.Context())
	require.NoError(t, err)
	assert.Equal(t, 2, free["A100-80GB"])

	// A job that ends before a clean shutdown keeps its outcome for the
	// next executor; one that runs is stopped.
	done := job("exit 5", h100, 1, 10)
	doneID := start(t, e, done)
	want := ended(t, e, doneID, 10*time.Second)
	running := job("sleep 60", "A100-80GB", 2, 100)
	runningID := start(t, e, running)
	e.Forget(externalID)
	require.NoError(t, e.Close(t.Context()))

	e, err = local.New(t.Context(), config(dir))
	require.NoError(t, err)
	t.Cleanup(func() { e.Close(context.Background()) })
	runs, err = e.Runs(t.Context())
	require.NoError(t, err)
	require.Len(t, runs, 2)
	assert.Equal(t, doneID, runs[0].ExternalID)
	assert.Equal(t, want, *runs[0].Ended)
	assert.Equal(t, runningID, runs[1].ExternalID)
	assert.Equal(t, "stopped: the executor shut down: signal 15", runs[1].Ended.Reason)
	assert.Equal(t, gaas.StatusFailed, runs[1].Ended.Status)
}

func TestNew(t *testing.T) {
	t.Run("no log directory", func(t *testing.T) {
		_, err := local.New(t.Context(), local.Config{GPUs: inventory})
		assert.ErrorContains(t, err, "no log directory")
	})
	t.Run("bad environment", func(t *testing.T) {
		cfg := config(tempDir(t))
		cfg.Env = []string{"NOEQUALS"}
		_, err := local.New(t.Context(), cfg)
		assert.ErrorContains(t, err, "not NAME=value")
	})
	t.Run("no such user", func(t *testing.T) {
		cfg := config(tempDir(t))
		cfg.User = "no-such-user-gaas"
		_, err := local.New(t.Context(), cfg)
		assert.Error(t, err)
	})
	t.Run("root", func(t *testing.T) {
		cfg := config(tempDir(t))
		cfg.User = "root"
		_, err := local.New(t.Context(), cfg)
		assert.ErrorContains(t, err, "must not run as root")
	})
	t.Run("a GPU twice", func(t *testing.T) {
		cfg := config(tempDir(t))
		cfg.GPUs = append(cfg.GPUs, inventory[0])
		_, err := local.New(t.Context(), cfg)
		assert.ErrorContains(t, err, "listed twice")
	})
	t.Run("bad job", func(t *testing.T) {
		e, _ := newExecutor(t)
		_, err := e.Start(t.Context(), job("true", h100, 1, 0))
		assert.ErrorIs(t, err, gaas.ErrInvalid)
	})
}

func TestCloseWhileJobsStart(t *testing.T) {
	t.Parallel()
	cfg := config(tempDir(t))
	for i := range 8 {
		cfg.GPUs = append(cfg.GPUs, local.GPU{Index: 3 + i, UUID: fmt.Sprintf("GPU-tttt-%d", i), Name: t4})
	}
	e, err := local.New(t.Context(), cfg)
	require.NoError(t, err)
	var wg sync.WaitGroup
	var started atomic.Int64
	for range 8 {
		wg.Go(func() {
			if _, err := e.Start(context.Background(), job("sleep 60", t4, 1, 100)); err == nil {
				started.Add(1)
			} else {
				assert.ErrorContains(t, err, "closed")
			}
		})
	}
	time.Sleep(time.Duration(rand.Int64N(int64(20 * time.Millisecond))))
	began := time.Now()
	require.NoError(t, e.Close(context.Background()))
	wg.Wait()
	assert.Less(t, time.Since(began), 5*time.Second)
	runs, err := e.Runs(t.Context())
	require.NoError(t, err)
	assert.Len(t, runs, int(started.Load()))
	for _, r := range runs {
		require.NotNil(t, r.Ended, "run %s", r.ExternalID)
		assert.Contains(t, r.Ended.Reason, "stopped: the executor shut down")
	}
	_, err = e.Start(t.Context(), job("true", t4, 1, 10))
	assert.ErrorContains(t, err, "closed")
}

// A log directory that others may write (an admin chose one that exists)
// may hold a link where a job's log will be: the executor, which may be
// root, does not write through it.
func TestLogIsNoLink(t *testing.T) {
	dir := tempDir(t)
	logs := filepath.Join(dir, "logs")
	require.NoError(t, os.Mkdir(logs, 0o777))
	require.NoError(t, os.Chmod(logs, 0o777))
	victim := filepath.Join(dir, "victim")
	require.NoError(t, os.WriteFile(victim, []byte("precious\n"), 0o644))
	e, _ := newExecutor(t, func(c *local.Config) { c.LogDir = logs })
	j := job("echo overwritten", h100, 1, gaas.Hour)
	require.NoError(t, os.Symlink(victim, e.LogPath(j.ID)))

	id, err := e.Start(t.Context(), j)
	require.NoError(t, err)
	assert.Equal(t, gaas.StatusCompleted, ended(t, e, id, 10*time.Second).Status)
	got, err := os.ReadFile(victim)
	require.NoError(t, err)
	assert.Equal(t, "precious\n", string(got))
	log, err := os.ReadFile(e.LogPath(j.ID))
	require.NoError(t, err)
	assert.Equal(t, "overwritten\n", string(log), "the job's own log, in place of the link")
}
