package slurm_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/gaas"
	"github.com/gaas-io/gaas/server/executor/slurm"
)

// The tests run against the Slurm cluster whose slurm.conf
// GAAS_TEST_SLURM names (.ci/slurm.sh starts one: a node with two a100
// GPUs and one h100), and are skipped without one. They run in parallel:
// the one that runs out its time limit has the h100 to itself.
func cluster(t *testing.T) *slurm.Cluster {
	t.Helper()
	conf := os.Getenv("GAAS_TEST_SLURM")
	if conf == "" {
		t.Skip("GAAS_TEST_SLURM names no slurm.conf")
	}
	// The jobs run as nobody, who must reach and write the log directory.
	dir, err := os.MkdirTemp("", "gaas-slurm-")
	require.NoError(t, err)
	require.NoError(t, os.Chmod(dir, 0o777))
	t.Cleanup(func() { os.RemoveAll(dir) })
	c, err := slurm.New(slurm.Config{
		Env:         []string{"SLURM_CONF=" + conf},
		LogDir:      dir,
		Prefix:      "gaas-test-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "-",
		Completions: true,
		User:        "nobody",
		GRES:        map[string]string{"A100-80GB": "a100"},
	})
	require.NoError(t, err)
	return c
}

var nextID atomic.Int64

// submit submits a job of a fresh id and returns the id and Slurm's id.
func submit(t *testing.T, c *slurm.Cluster, command, gpuType string, gpus int, estimate gaas.Hours) (int64, string) {
	t.Helper()
	id := nextID.Add(1)
	sid, err := c.Submit(t.Context(), slurm.Job{ID: id, Command: command, GPUType: gpuType, GPUs: gpus, Estimate: estimate})
	require.NoError(t, err)
	return id, sid
}

// state waits until squeue shows the job in a state that satisfies ok.
func state(t *testing.T, c *slurm.Cluster, sid string, within time.Duration, ok func(slurm.State) bool) slurm.State {
	t.Helper()
	deadline := time.Now().Add(within)
	var last slurm.State
	for time.Now().Before(deadline) {
		states, err := c.Queue(t.Context())
		require.NoError(t, err)
		for _, s := range states {
			if s.SlurmID == sid {
				last = s
				if ok(s) {
					return s
				}
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("job %s: last seen %+v after %v", sid, last, within)
	return last
}

func final(s slurm.State) bool   { return slurm.Final(s.State) }
func started(s slurm.State) bool { return slurm.Started(s.State) }

// record waits until sacct has the job's record.
func record(t *testing.T, c *slurm.Cluster, since time.Time, sid string) slurm.Record {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		recs, err := c.Accounting(t.Context(), since, []string{sid})
		require.NoError(t, err)
		if r, ok := recs[sid]; ok {
			return r
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("sacct has no record of job %s", sid)
	return slurm.Record{}
}

func TestSlurmJobs(t *testing.T) {
	c := cluster(t)
	since := time.Now().Add(-time.Minute)

	t.Run("completes as nobody on the GPUs asked for", func(t *testing.T) {
		t.Parallel()
		// The command's first line would be a directive to sbatch if it
		// were the script's: it must stay a comment of the command.
		cmd := "#SBATCH --partition=none-such\nid -u; echo \"gpus=$CUDA_VISIBLE_DEVICES\"; echo 'it''s quoted'; sleep 1"
		id, sid := submit(t, c, cmd, "A100-80GB", 2, 10)
		s := state(t, c, sid, 2*time.Minute, final)
		assert.Equal(t, "COMPLETED", s.State)
		assert.Equal(t, id, s.JobID)
		assert.False(t, s.Start.IsZero())
		r := record(t, c, since, sid)
		o := r.Outcome()
		assert.Equal(t, gaas.StatusCompleted, o.Status)
		require.NotNil(t, o.ExitCode)
		assert.Equal(t, 0, *o.ExitCode)
		assert.GreaterOrEqual(t, o.Elapsed, time.Second)
		log, err := os.ReadFile(c.LogPath(id))
		require.NoError(t, err)
		assert.Equal(t, "65534\ngpus=0,1\nits quoted\n", string(log))
	})

	t.Run("a failure keeps its exit code and the time it ran", func(t *testing.T) {
		t.Parallel()
		_, sid := submit(t, c, "sleep 2; exit 3", "a100", 1, 10)
		state(t, c, sid, 2*time.Minute, final)
		o := record(t, c, since, sid).Outcome()
		assert.Equal(t, gaas.StatusFailed, o.Status)
		require.NotNil(t, o.ExitCode)
		assert.Equal(t, 3, *o.ExitCode)
		assert.Equal(t, "FAILED: exit status 3", o.Reason)
		assert.GreaterOrEqual(t, o.Elapsed, 2*time.Second)
		assert.Greater(t, o.ActualHours(10), gaas.Hours(0))
	})

	t.Run("cancelled while running is FAILED with its time; while waiting, CANCELLED for nothing", func(t *testing.T) {
		t.Parallel()
		// Both a100s for the first, so the second waits for them.
		_, first := submit(t, c, "sleep 120", "a100", 2, 100)
		state(t, c, first, 2*time.Minute, started)
		_, second := submit(t, c, "echo never", "a100", 2, 100)
		s := state(t, c, second, 10*time.Second, func(s slurm.State) bool { return s.State == "PENDING" })
		assert.True(t, s.Start.IsZero())

		require.NoError(t, c.Cancel(t.Context(), second))
		s = state(t, c, second, 30*time.Second, final)
		assert.True(t, s.Start.IsZero(), "a job cancelled while it waited never started")
		o := record(t, c, since, second).Outcome()
		assert.Equal(t, gaas.StatusCancelled, o.Status)
		assert.Zero(t, o.ActualHours(100))

		time.Sleep(1500 * time.Millisecond) // time to be charged for
		require.NoError(t, c.Cancel(t.Context(), first))
		state(t, c, first, 30*time.Second, final)
		o = record(t, c, since, first).Outcome()
		assert.Equal(t, gaas.StatusFailed, o.Status)
		assert.Equal(t, "CANCELLED", o.Reason[:len("CANCELLED")])
		assert.GreaterOrEqual(t, o.Elapsed, time.Second)
		require.NoError(t, c.Cancel(t.Context(), first), "cancelling an ended job is no error")
	})

	t.Run("a job over its time limit ends TIMEOUT, charged at most its estimate", func(t *testing.T) {
		if testing.Short() {
			t.Skip("Slurm checks time limits every 30 s or so: this takes 1-2 minutes")
		}
		t.Parallel()
		_, sid := submit(t, c, "sleep 600", "h100", 1, 16) // 57.6 s: a limit of 1 minute
		state(t, c, sid, 3*time.Minute, final)
		o := record(t, c, since, sid).Outcome()
		assert.Equal(t, gaas.StatusFailed, o.Status)
		assert.True(t, strings.HasPrefix(o.Reason, "TIMEOUT"), o.Reason)
		assert.Greater(t, o.Elapsed, time.Minute-time.Second)
		assert.Equal(t, gaas.Hours(16), o.ActualHours(16), "the overrun is not charged")
	})

	t.Run("GPUs the cluster does not have are refused for good", func(t *testing.T) {
		t.Parallel()
		for _, j := range []slurm.Job{
			{ID: nextID.Add(1), Command: "true", GPUType: "v100", GPUs: 1, Estimate: 10},
			{ID: nextID.Add(1), Command: "true", GPUType: "h100", GPUs: 2, Estimate: 10},
		} {
			_, err := c.Submit(t.Context(), j)
			var refused *slurm.RefusedError
			require.ErrorAs(t, err, &refused, "%+v", j)
			assert.Contains(t, refused.Reason, "node configuration is not available")
		}
	})
}

func TestSlurmUnreachable(t *testing.T) {
	c, err := slurm.New(slurm.Config{Bin: filepath.Join(t.TempDir(), "no-such-dir"), User: "nobody"})
	require.NoError(t, err)
	_, err = c.Submit(context.Background(), slurm.Job{ID: 1, Command: "true", GPUType: "a100", GPUs: 1, Estimate: 10})
	var refused *slurm.RefusedError
	assert.False(t, errors.As(err, &refused), "a missing sbatch is not the job's fault: %v", err)
	assert.ErrorContains(t, err, "slurm: sbatch")
	_, err = c.Queue(context.Background())
	assert.ErrorContains(t, err, "slurm: squeue")
}

func TestSlurmUnknownUser(t *testing.T) {
	_, err := slurm.New(slurm.Config{User: "no-such-user-gaas"})
	assert.ErrorContains(t, err, "the user jobs run as")
}

func TestSlurmConfiguredGRESType(t *testing.T) {
	_, err := slurm.New(slurm.Config{User: "nobody", GRES: map[string]string{"A100": "a100:2"}})
	assert.ErrorContains(t, err, `GPU type A100: "a100:2" is not a GRES type`)
}

func TestOutcomeOf(t *testing.T) {
	for _, c := range []struct {
		state   string
		started bool
		status  gaas.JobStatus
		charged bool
	}{
		{"COMPLETED", true, gaas.StatusCompleted, true},
		{"FAILED", true, gaas.StatusFailed, true},
		{"TIMEOUT", true, gaas.StatusFailed, true},
		{"OUT_OF_MEMORY", true, gaas.StatusFailed, true},
		{"DEADLINE", true, gaas.StatusFailed, true},
		{"CANCELLED", true, gaas.StatusFailed, true},
		{"CANCELLED by 1000", true, gaas.StatusFailed, true},
		{"CANCELLED", false, gaas.StatusCancelled, false},
		{"CANCELLED by 0", false, gaas.StatusCancelled, false},
		{"NODE_FAIL", true, gaas.StatusFailed, false},
		{"BOOT_FAIL", false, gaas.StatusFailed, false},
		{"PREEMPTED", true, gaas.StatusFailed, false},
	} {
		o := slurm.OutcomeOf(c.state, c.started, time.Hour)
		assert.Equal(t, c.status, o.Status, c.state)
		assert.Equal(t, c.charged, o.ActualHours(2*gaas.Hour) == gaas.Hour, c.state)
		assert.True(t, slurm.Final(c.state), c.state)
	}
	for _, s := range []string{"PENDING", "RUNNING", "COMPLETING", "CONFIGURING", "SUSPENDED", "REQUEUED", ""} {
		assert.False(t, slurm.Final(s), s)
	}
	assert.True(t, slurm.Started("RUNNING"))
	assert.False(t, slurm.Started("PENDING"))
}

// A job's command is a user's: it must not see the environment of the
// server that submits it (sbatch passes its own to the job unless told).
func TestSlurmJobEnvironment(t *testing.T) {
	t.Setenv("GAAS_TEST_SECRET", "do-not-leak")
	c := cluster(t)
	id, sid := submit(t, c, "env", "h100", 1, 10)
	state(t, c, sid, 2*time.Minute, final)
	log, err := os.ReadFile(c.LogPath(id))
	require.NoError(t, err)
	assert.Contains(t, string(log), "SLURM_JOB_ID=", "the job ran")
	assert.NotContains(t, string(log), "do-not-leak")
}

// In open mode the GPU type is the user's: one that would say more to
// --gres than a type (more GPUs, of other types) is refused for good
// before anything reaches sbatch.
func TestSlurmGRESType(t *testing.T) {
	c := cluster(t)
	for _, typ := range []string{"a100:1,gpu:h100", "h100,gpu:a100", "a100:2", "a100 ", "a100\u00a0", "a100=1", "", "-a100"} {
		_, err := c.Submit(t.Context(), slurm.Job{ID: nextID.Add(1), Command: "true", GPUType: typ, GPUs: 1, Estimate: 10})
		var refused *slurm.RefusedError
		require.ErrorAs(t, err, &refused, "%q", typ)
		assert.Contains(t, refused.Reason, "GRES type", "%q", typ)
	}
}

// Slurm 23.02 and later write squeue --json with each state a list and
// each time an object; the queue reads both, as it reads 22.05's.
func TestQueueNewerJSON(t *testing.T) {
	bin := t.TempDir()
	out := `{"jobs": [
	  {"job_id": 7, "name": "gaas-3", "job_state": ["RUNNING"], "nodes": "n1",
	   "start_time": {"set": true, "infinite": false, "number": 1700000000}, "end_time": {"set": true, "infinite": false, "number": 1700003600}},
	  {"job_id": 8, "name": "gaas-4", "job_state": ["PENDING"], "nodes": "",
	   "start_time": {"set": false, "infinite": false, "number": 0}, "end_time": {"set": false, "infinite": true, "number": 0}},
	  {"job_id": 9, "name": "gaas-5", "job_state": ["COMPLETED"], "nodes": "n1",
	   "start_time": {"set": true, "infinite": false, "number": 1700000000}, "end_time": {"set": true, "infinite": false, "number": 1700000060}}
	]}`
	require.NoError(t, os.WriteFile(filepath.Join(bin, "squeue"), []byte("#!/bin/sh\ncat <<'EOF'\n"+out+"\nEOF\n"), 0o755))
	c, err := slurm.New(slurm.Config{Bin: bin, User: "nobody"})
	require.NoError(t, err)
	states, err := c.Queue(t.Context())
	require.NoError(t, err)
	assert.Equal(t, []slurm.State{
		{SlurmID: "7", JobID: 3, State: "RUNNING", Start: time.Unix(1700000000, 0)},
		{SlurmID: "8", JobID: 4, State: "PENDING"},
		{SlurmID: "9", JobID: 5, State: "COMPLETED", Start: time.Unix(1700000000, 0), End: time.Unix(1700000060, 0)},
	}, states)
}

// A job of a catalogue type takes from the capacity of that type however
// the configuration spells it (the catalogue's names are matched without
// regard to case), or the executor would keep claiming past it.
func TestExecutorFreeMatchesTypeSpelling(t *testing.T) {
	c := cluster(t)
	x, err := slurm.NewExecutor(c, map[string]int{"H100": 1}, nil)
	require.NoError(t, err)
	sid, err := x.Start(t.Context(), gaas.Job{ID: nextID.Add(1), Command: "sleep 1", GPUType: "h100", GPUCount: 1, EstimatedHours: 10})
	require.NoError(t, err)
	t.Cleanup(func() { c.Cancel(context.Background(), sid) })
	free, err := x.Free(t.Context())
	require.NoError(t, err)
	assert.Equal(t, map[string]int{"H100": 0}, free)

	// The GRES type of "A100-80GB" is that of "a100-80gb".
	sid, err = c.Submit(t.Context(), slurm.Job{ID: nextID.Add(1), Command: "true", GPUType: "a100-80gb", GPUs: 1, Estimate: 10})
	require.NoError(t, err)
	assert.NotEmpty(t, sid)
}

// squeue lists every user's jobs: one of another user's, named as this
// cluster names its own, is not this cluster's to report (or cancel).
func TestSlurmQueueIsOnlyOurs(t *testing.T) {
	c := cluster(t)
	id := nextID.Add(1)
	cmd := exec.Command("sbatch", "--parsable", "--job-name="+c.Name(id), "--gres=gpu:h100:1", "--time=1", "--wrap", "sleep 30")
	cmd.Env = append(os.Environ(), "SLURM_CONF="+os.Getenv("GAAS_TEST_SLURM"))
	out, err := cmd.Output()
	require.NoError(t, err) // submitted as root, not as nobody
	sid := strings.TrimSpace(string(out))
	t.Cleanup(func() { c.Cancel(context.Background(), sid) })
	_, ours := submit(t, c, "sleep 30", "h100", 1, 10)
	t.Cleanup(func() { c.Cancel(context.Background(), ours) })
	state(t, c, ours, time.Minute, func(slurm.State) bool { return true })
	states, err := c.Queue(t.Context())
	require.NoError(t, err)
	for _, s := range states {
		assert.NotEqual(t, sid, s.SlurmID, "another user's job")
	}
}
