package executor_test

import (
	"context"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/gaas"
	"github.com/gaas-io/gaas/server/executor"
	"github.com/gaas-io/gaas/server/executor/local"
	"github.com/gaas-io/gaas/server/executor/slurm"
	"github.com/gaas-io/gaas/server/internal/executortest"
)

// step is a step of l, for executortest.Site.Until.
func step(l *executor.Loop) func() error {
	return func() error { return l.Step(context.Background()) }
}

// charged is what a job's settlement took: its cost less its refunds.
func charged(t *testing.T, j gaas.Job) gaas.Credits {
	t.Helper()
	require.NotNil(t, j.ActualHours, "job %d has no actual hours", j.ID)
	c, ok := gaas.Cost(*j.ActualHours, j.GPUCount, j.Rate)
	require.True(t, ok)
	return c
}

func logger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// logDir is a directory for the local executor's logs, under a
// directory that the jobs' user (nobody) may enter.
func logDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "gaas-loop-")
	require.NoError(t, err)
	require.NoError(t, os.Chmod(dir, 0o711))
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir + "/logs"
}

func newLocal(t *testing.T, dir string) *local.Executor {
	t.Helper()
	x, err := local.New(context.Background(), local.Config{
		LogDir: dir,
		GPUs: []local.GPU{
			{Index: 0, UUID: "GPU-a-0", Name: "NVIDIA A100-SXM4-80GB"},
			{Index: 1, UUID: "GPU-a-1", Name: "NVIDIA A100-SXM4-80GB"},
		},
		Types: map[string]string{"NVIDIA A100-SXM4-80GB": "a100"},
		Grace: time.Second,
	})
	require.NoError(t, err)
	return x
}

// The local executor through the loop: jobs complete, fail, overrun,
// are cancelled while they run, are refused, and wait for GPUs; each is
// charged what it ran.
func TestLoopLocal(t *testing.T) {
	s := executortest.New(t)
	dir := logDir(t)
	x := newLocal(t, dir)
	t.Cleanup(func() { x.Close(context.Background()) })
	l, err := executor.New(logger(t), s.DB.Dispatch, x, executor.Config{Name: "node1", TTL: 30 * time.Second, Interval: time.Second})
	require.NoError(t, err)
	before := s.Balance(t)

	done := s.Approved(t, "echo $CUDA_VISIBLE_DEVICES; sleep 1", "a100", 2, gaas.Hour)
	waits := s.Approved(t, "exit 3", "a100", 1, gaas.Hour) // no GPU free until the first ends
	wrongType := s.Approved(t, "true", "h100", 1, gaas.Hour)

	j := s.Until(t, step(l), done.ID, 10*time.Second, executortest.Running)
	assert.Equal(t, gaas.StatusApproved, s.Job(t, waits.ID).Status, "both GPUs are taken")
	assert.Equal(t, "node1", j.Run.Executor)
	assert.False(t, j.Run.StartedAt.IsZero())
	j = s.Until(t, step(l), done.ID, 20*time.Second, executortest.Final)
	assert.Equal(t, gaas.StatusCompleted, j.Status)
	assert.Equal(t, 0, *j.Run.ExitCode)
	assert.GreaterOrEqual(t, *j.ActualHours, gaas.HoursOf(time.Second))
	assert.Less(t, *j.ActualHours, gaas.HoursOf(10*time.Second))
	log, err := os.ReadFile(x.LogPath(done.ID))
	require.NoError(t, err)
	assert.Equal(t, "GPU-a-0,GPU-a-1\n", string(log))

	f := s.Until(t, step(l), waits.ID, 20*time.Second, executortest.Final)
	assert.Equal(t, gaas.StatusFailed, f.Status)
	assert.Equal(t, 3, *f.Run.ExitCode)
	assert.Equal(t, gaas.StatusApproved, s.Job(t, wrongType.ID).Status, "no executor has an h100")

	over := s.Approved(t, "sleep 60", "a100", 1, 1) // 3.6 seconds
	o := s.Until(t, step(l), over.ID, 20*time.Second, executortest.Final)
	assert.Equal(t, gaas.StatusFailed, o.Status)
	assert.Contains(t, o.Run.Reason, "TIMEOUT")
	assert.Equal(t, gaas.Hours(1), *o.ActualHours, "the overrun is not charged")

	cancelled := s.Approved(t, "sleep 60", "a100", 1, gaas.Hour)
	s.Until(t, step(l), cancelled.ID, 10*time.Second, executortest.Running)
	time.Sleep(1500 * time.Millisecond)
	got, err := s.DB.Jobs.Cancel(context.Background(), s.Alice.ID, gaas.CancelRequest{JobID: cancelled.ID})
	require.NoError(t, err)
	assert.Equal(t, gaas.StatusRunning, got.Status)
	assert.True(t, got.Run.CancelRequested)
	c := s.Until(t, step(l), cancelled.ID, 10*time.Second, executortest.Final)
	assert.Equal(t, gaas.StatusCancelled, c.Status)
	assert.GreaterOrEqual(t, *c.ActualHours, gaas.HoursOf(time.Second))

	// Each paid the time it ran; the one never run costs nothing yet.
	want := before - wrongType.Cost
	for _, j := range []gaas.Job{j, f, o, c} {
		want -= charged(t, j)
	}
	assert.Equal(t, want, s.Balance(t))
}

// A gaasd that stops while a job runs stops the job; the next one, with
// an executor of the same name over the same directory, takes the lease
// up again and settles the job FAILED, charged what it ran.
func TestLoopRestart(t *testing.T) {
	s := executortest.New(t)
	dir := logDir(t)
	x := newLocal(t, dir)
	l, err := executor.New(logger(t), s.DB.Dispatch, x, executor.Config{Name: "node1", TTL: 30 * time.Second, Interval: time.Second})
	require.NoError(t, err)
	j := s.Approved(t, "sleep 60", "a100", 1, gaas.Hour)
	s.Until(t, step(l), j.ID, 10*time.Second, executortest.Running)
	time.Sleep(1200 * time.Millisecond)
	require.NoError(t, l.Step(context.Background())) // a heartbeat after a second of running

	// The process stops, and its executor's jobs with it; a new one starts
	// over the same directory.
	require.NoError(t, x.Close(context.Background()))
	x2 := newLocal(t, dir)
	t.Cleanup(func() { x2.Close(context.Background()) })
	l2, err := executor.New(logger(t), s.DB.Dispatch, x2, executor.Config{Name: "node1", TTL: 30 * time.Second, Interval: time.Second})
	require.NoError(t, err)
	got := s.Until(t, step(l2), j.ID, 10*time.Second, executortest.Final)
	assert.Equal(t, gaas.StatusFailed, got.Status)
	assert.GreaterOrEqual(t, *got.ActualHours, gaas.HoursOf(time.Second), "charged the time it ran")
	assert.Contains(t, got.Run.Reason, "stopped: the executor shut down")
}

// slurmCluster is the cluster of GAAS_TEST_SLURM (.ci/slurm.sh), its jobs
// named from prefix and a time, as nobody, their logs in a directory of
// their own; without one the test is skipped.
func slurmCluster(t *testing.T, prefix string) *slurm.Cluster {
	t.Helper()
	conf := os.Getenv("GAAS_TEST_SLURM")
	if conf == "" {
		t.Skip("GAAS_TEST_SLURM names no slurm.conf")
	}
	logs, err := os.MkdirTemp("", "gaas-loop-slurm-")
	require.NoError(t, err)
	require.NoError(t, os.Chmod(logs, 0o777))
	t.Cleanup(func() { os.RemoveAll(logs) })
	c, err := slurm.New(slurm.Config{
		Env: []string{"SLURM_CONF=" + conf}, LogDir: logs, Completions: true, User: "nobody",
		Prefix: prefix + strconv.FormatInt(time.Now().UnixNano(), 36) + "-",
	})
	require.NoError(t, err)
	return c
}

// The Slurm executor through the loop, against the cluster of
// GAAS_TEST_SLURM (.ci/slurm.sh): a job completes on its GRES, one that
// asks for GPUs the cluster lacks fails at no charge, one cancelled while
// it waits for GPUs is refunded all and leaves Slurm's queue, one
// cancelled while it runs pays its time, and one that runs past its time
// limit is FAILED, charged its estimate.
func TestLoopSlurm(t *testing.T) {
	c := slurmCluster(t, "gaas-loop-")
	s := executortest.New(t)
	x, err := slurm.NewExecutor(c, map[string]int{"a100": 4, "v100": 1, "h100": 1}, nil)
	require.NoError(t, err)
	l, err := executor.New(logger(t), s.DB.Dispatch, x, executor.Config{Name: "slurm", TTL: 30 * time.Second, Interval: time.Second})
	require.NoError(t, err)
	before := s.Balance(t)

	// One that runs past its time limit (57.6 s: 1 minute in Slurm), on the
	// h100, while the others run on the a100s.
	over := s.Approved(t, "sleep 600", "h100", 1, 16)
	ran := s.Approved(t, "echo $CUDA_VISIBLE_DEVICES; sleep 2", "a100", 2, gaas.Hour)
	refused := s.Approved(t, "true", "v100", 1, gaas.Hour)
	j := s.Until(t, step(l), ran.ID, time.Minute, executortest.Running)
	require.NotEmpty(t, j.Run.ExternalID)
	r := s.Until(t, step(l), refused.ID, 10*time.Second, executortest.Final)
	assert.Equal(t, gaas.StatusFailed, r.Status)
	assert.Contains(t, r.Run.Reason, "refused")
	assert.Equal(t, gaas.Hours(0), *r.ActualHours)

	// While the first holds both a100s, the next waits in Slurm's queue.
	queued := s.Approved(t, "echo never", "a100", 2, gaas.Hour)
	q := s.Until(t, step(l), queued.ID, 10*time.Second, func(j gaas.Job) bool { return j.Run != nil && j.Run.ExternalID != "" })
	assert.Equal(t, gaas.StatusApproved, q.Status, "PENDING in Slurm stays APPROVED")
	got, err := s.DB.Jobs.Cancel(context.Background(), s.Alice.ID, gaas.CancelRequest{JobID: queued.ID})
	require.NoError(t, err)
	assert.Equal(t, gaas.StatusCancelled, got.Status, "cancelled at once: it never ran")

	j = s.Until(t, step(l), ran.ID, time.Minute, executortest.Final)
	assert.Equal(t, gaas.StatusCompleted, j.Status)
	assert.GreaterOrEqual(t, *j.ActualHours, gaas.HoursOf(2*time.Second))
	assert.Equal(t, 0, *j.Run.ExitCode)
	tail, truncated, err := x.Log(ran.ID, 1<<20)
	require.NoError(t, err)
	assert.Equal(t, "0,1\n", string(tail), "the job's output, on the GPUs Slurm gave it")
	assert.False(t, truncated)

	long := s.Approved(t, "sleep 120", "a100", 1, gaas.Hour)
	s.Until(t, step(l), long.ID, time.Minute, executortest.Running)
	time.Sleep(2 * time.Second)
	_, err = s.DB.Jobs.Cancel(context.Background(), s.Alice.ID, gaas.CancelRequest{JobID: long.ID})
	require.NoError(t, err)
	lc := s.Until(t, step(l), long.ID, time.Minute, executortest.Final)
	assert.Equal(t, gaas.StatusCancelled, lc.Status)
	assert.Greater(t, *lc.ActualHours, gaas.Hours(0))

	// The job cancelled while it waited left Slurm's queue.
	states, err := c.Queue(context.Background())
	require.NoError(t, err)
	for _, st := range states {
		if st.SlurmID == q.Run.ExternalID {
			assert.True(t, slurm.Final(st.State), "%+v", st)
		}
	}
	o := s.Until(t, step(l), over.ID, 5*time.Minute, executortest.Final)
	assert.Equal(t, gaas.StatusFailed, o.Status)
	assert.Equal(t, "TIMEOUT", o.Run.Reason)
	assert.Equal(t, gaas.Hours(16), *o.ActualHours, "charged its estimate, not the overrun")
	assert.Equal(t, before-charged(t, j)-charged(t, lc)-charged(t, o), s.Balance(t))
}

// An executor that comes back knowing nothing of a job its name holds a
// lease on (its machine was replaced) settles it lost at once, charged up
// to its last heartbeat, rather than waiting for the lease to expire.
func TestLoopResumeLost(t *testing.T) {
	s := executortest.New(t)
	x := newLocal(t, logDir(t))
	t.Cleanup(func() { x.Close(context.Background()) })
	l, err := executor.New(logger(t), s.DB.Dispatch, x, executor.Config{Name: "node1", TTL: 30 * time.Second, Interval: time.Second})
	require.NoError(t, err)
	j := s.Approved(t, "sleep 60", "a100", 1, gaas.Hour)
	s.Until(t, step(l), j.ID, 10*time.Second, executortest.Running)
	time.Sleep(1200 * time.Millisecond)
	require.NoError(t, l.Step(context.Background()))
	hb := s.Job(t, j.ID).Run

	fresh := newLocal(t, logDir(t))
	t.Cleanup(func() { fresh.Close(context.Background()) })
	l2, err := executor.New(logger(t), s.DB.Dispatch, fresh, executor.Config{Name: "node1", TTL: 30 * time.Second, Interval: time.Second})
	require.NoError(t, err)
	require.NoError(t, l2.Step(context.Background()))
	got := s.Job(t, j.ID)
	assert.Equal(t, gaas.StatusFailed, got.Status)
	assert.Equal(t, "lost: the executor restarted", got.Run.Reason)
	assert.Equal(t, gaas.HoursOf(hb.HeartbeatAt.Sub(hb.StartedAt)), *got.ActualHours)
}

// A second Slurm job under a gaas job's name (a job's command may call
// sbatch too) is not the run its lease is for: it neither renews nor
// settles the job, and it is stopped; the real run settles the job.
func TestLoopSlurmImpostor(t *testing.T) {
	c := slurmCluster(t, "gaas-impostor-")
	s := executortest.New(t)
	x, err := slurm.NewExecutor(c, map[string]int{"a100": 1}, nil)
	require.NoError(t, err)
	l, err := executor.New(logger(t), s.DB.Dispatch, x, executor.Config{Name: "slurm", TTL: 30 * time.Second, Interval: time.Second})
	require.NoError(t, err)

	real := s.Approved(t, "sleep 4", "a100", 1, gaas.Hour)
	j := s.Until(t, step(l), real.ID, time.Minute, executortest.Running)
	impostor, err := c.Submit(context.Background(), slurm.Job{ID: real.ID, Command: "exit 0", GPUType: "h100", GPUs: 1, Estimate: 1})
	require.NoError(t, err)
	j = s.Until(t, step(l), real.ID, time.Minute, executortest.Final)
	assert.Equal(t, gaas.StatusCompleted, j.Status)
	assert.NotEqual(t, impostor, j.Run.ExternalID)
	assert.GreaterOrEqual(t, *j.ActualHours, gaas.HoursOf(4*time.Second), "settled from the real run")
}
