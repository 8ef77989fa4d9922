package local

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/gaas"
)

// TestRecoverKillsOnlyItsOwnGroups gives a new executor a state that names
// process groups as its predecessor's, and checks that it kills a group
// whose leader is the process the state names, and no other: not a
// process of the same pid that started at another time (a reused pid), nor
// one of another user, nor one of an earlier boot.
func TestRecoverKillsOnlyItsOwnGroups(t *testing.T) {
	t.Parallel()
	as, err := lookupAccount("")
	require.NoError(t, err)
	// A group as a job's shell makes: its own, as the jobs' user.
	group := func() *exec.Cmd {
		cmd := exec.Command("sleep", "300")
		cmd.SysProcAttr = sysProcAttr(as)
		cmd.SysProcAttr.Pdeathsig = 0
		require.NoError(t, cmd.Start())
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		return cmd
	}
	running := func(cmd *exec.Cmd) bool {
		s, err := readStat(cmd.Process.Pid)
		return err == nil && s.state != 'Z'
	}
	recordOf := func(id int64, cmd *exec.Cmd) record {
		ticks, err := procStart(cmd.Process.Pid)
		require.NoError(t, err)
		return record{JobID: id, ExternalID: strconv.FormatInt(id, 10) + "-" + strconv.Itoa(cmd.Process.Pid),
			PID: cmd.Process.Pid, StartTicks: ticks, UID: as.uid, Started: time.Now().Add(-time.Minute)}
	}
	recover := func(s state) (*Executor, map[int64]gaas.Outcome) {
		dir, err := os.MkdirTemp("", "gaas-local-")
		require.NoError(t, err)
		t.Cleanup(func() { os.RemoveAll(dir) })
		b, err := json.Marshal(s)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, "state.json"), b, 0o600))
		e, err := New(t.Context(), Config{LogDir: dir, GPUs: []GPU{{UUID: "GPU-0", Name: "T4"}}})
		require.NoError(t, err)
		t.Cleanup(func() { e.Close(t.Context()) })
		runs, err := e.Runs(t.Context())
		require.NoError(t, err)
		outcomes := make(map[int64]gaas.Outcome)
		for _, r := range runs {
			require.NotNil(t, r.Ended)
			outcomes[r.JobID] = *r.Ended
		}
		return e, outcomes
	}

	ours, reused, other, earlier := group(), group(), group(), group()
	completed := gaas.Outcome{Status: gaas.StatusCompleted, Elapsed: time.Second, Reason: "exit status 0"}
	s := state{BootID: bootID(), Runs: []record{recordOf(1, ours), recordOf(2, reused), recordOf(3, other),
		{JobID: 4, ExternalID: "4-1", PID: 1, Ended: &completed}}}
	s.Runs[1].StartTicks--
	s.Runs[2].UID++
	_, outcomes := recover(s)
	assert.False(t, running(ours), "its own group is killed")
	assert.True(t, running(reused), "a process of a reused pid is not")
	assert.True(t, running(other), "a process of another user is not")
	assert.Equal(t, gaas.StatusFailed, outcomes[1].Status)
	assert.Equal(t, Lost+"; its processes still ran and were killed", outcomes[1].Reason)
	assert.InDelta(t, time.Minute, outcomes[1].Elapsed, float64(10*time.Second))
	for _, id := range []int64{2, 3} {
		assert.Equal(t, gaas.Outcome{Status: gaas.StatusFailed, Reason: Lost + "; its end was not seen"}, outcomes[id])
	}
	assert.Equal(t, completed, outcomes[4], "an outcome seen is kept")

	s = state{BootID: "another boot", Runs: []record{recordOf(5, earlier)}}
	_, outcomes = recover(s)
	assert.True(t, running(earlier))
	assert.True(t, strings.HasPrefix(outcomes[5].Reason, Lost+" after the machine did"), outcomes[5].Reason)
	assert.Zero(t, outcomes[5].Elapsed)
}
