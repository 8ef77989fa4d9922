package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/authn"
	"github.com/gaas-io/gaas/gaas"
	"github.com/gaas-io/gaas/server/internal/executortest"
	"github.com/gaas-io/gaas/server/internal/syncbuf"
)

// TestMain lets the test binary stand in for gaas-runner, as a real
// process: GAAS_RUNNER_TEST_ARGS holds its arguments, in JSON.
func TestMain(m *testing.M) {
	if args := os.Getenv("GAAS_RUNNER_TEST_ARGS"); args != "" {
		var list []string
		if err := json.Unmarshal([]byte(args), &list); err != nil {
			panic(err)
		}
		os.Args = append([]string{"gaas-runner"}, list...)
		main()
		return
	}
	os.Exit(m.Run())
}

// start runs gaas-runner as a process with args and env.
func start(t *testing.T, env []string, args ...string) (*exec.Cmd, *syncbuf.Buffer) {
	t.Helper()
	exe, err := os.Executable()
	require.NoError(t, err)
	b, err := json.Marshal(args)
	require.NoError(t, err)
	cmd := exec.Command(exe)
	cmd.Env = append(append(os.Environ(), "GAAS_RUNNER_TEST_ARGS="+string(b)), env...)
	out := &syncbuf.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return cmd, out
}

// gaas-runner as a real process against a gaas server: it runs a job to
// completion, and on SIGTERM stops the one still running, reports it, and
// exits 0; gaasd charged each what it ran. The token, given in the
// environment, never reaches the output.
func TestRunner(t *testing.T) {
	g := executortest.New(t)
	done := g.Approved(t, "echo ran on $CUDA_VISIBLE_DEVICES", "A100", 1, gaas.Hour).ID
	cmd, out := start(t, []string{"GAAS_RUNNER_TOKEN=" + g.Token, "GAAS_RUNNER_GPU_TYPE=NVIDIA A100-SXM4-80GB=A100"},
		"-server", g.Server.URL, "-log-dir", executortest.LogDir(t), "-gpu", "0,GPU-a-0,NVIDIA A100-SXM4-80GB", "-gpu", "1,GPU-a-1,NVIDIA A100-SXM4-80GB",
		"-interval", "200ms", "-ttl", "5s", "-grace", "1s")

	j := g.Until(t, nil, done, 20*time.Second, executortest.Final)
	assert.Equal(t, gaas.StatusCompleted, j.Status, "%s", out)
	assert.Equal(t, "node1", j.Run.Executor)

	long := g.Approved(t, "sleep 600", "A100", 1, gaas.Hour).ID
	g.Until(t, nil, long, 20*time.Second, executortest.Running)
	time.Sleep(time.Second)
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		require.NoError(t, err, "%s", out)
	case <-time.After(30 * time.Second):
		t.Fatalf("gaas-runner did not exit after SIGTERM:\n%s", out)
	}
	// Reported at once, not when its lease expires.
	l := g.Job(t, long)
	assert.Equal(t, gaas.StatusFailed, l.Status, "%s", out)
	assert.Contains(t, l.Run.Reason, "shut down")
	assert.GreaterOrEqual(t, *l.ActualHours, gaas.HoursOf(time.Second))
	assert.Less(t, *l.ActualHours, gaas.HoursOf(time.Minute))
	assert.Contains(t, out.String(), `"executor":"node1"`)
	assert.NotContains(t, out.String(), g.Token)
	assert.NotContains(t, out.String(), g.Token[len(authn.ExecutorTokenPrefix):])
}

// A runner whose token is revoked while it runs a job stops the job and
// exits 2, saying why; gaasd fails the job when its lease expires.
func TestRunnerRevoked(t *testing.T) {
	g := executortest.New(t)
	cmd, out := start(t, []string{"GAAS_RUNNER_TOKEN=" + g.Token}, "-server", g.Server.URL, "-log-dir", executortest.LogDir(t),
		"-gpu", "0,GPU-a-0,A100", "-interval", "200ms", "-ttl", "1s", "-grace", "1s")
	long := g.Approved(t, "sleep 600", "A100", 1, gaas.Hour).ID
	g.Until(t, nil, long, 20*time.Second, executortest.Running)
	_, err := g.DB.Executors.RevokeExecutor(context.Background(), g.Admin.ID, "node1")
	require.NoError(t, err)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		var exit *exec.ExitError
		require.True(t, errors.As(err, &exit), "%v: %s", err, out)
		assert.Equal(t, 2, exit.ExitCode())
		assert.Contains(t, out.String(), "refused the token")
	case <-time.After(30 * time.Second):
		t.Fatalf("gaas-runner did not stop after its token was revoked:\n%s", out)
	}
	// Its lease expires, and the worker fails the job, charged up to its
	// last heartbeat.
	time.Sleep(1100 * time.Millisecond)
	_, err = g.DB.Dispatch.ReapExpired(context.Background())
	require.NoError(t, err)
	assert.Equal(t, gaas.StatusFailed, g.Job(t, long).Status)
}

// A revoked or wrong token, or a missing flag, stops gaas-runner at once
// with exit status 2 and an error that says why.
func TestRunnerRefuses(t *testing.T) {
	g := executortest.New(t)
	_, err := g.DB.Executors.RevokeExecutor(context.Background(), g.Admin.ID, "node1")
	require.NoError(t, err)
	tokenFile := t.TempDir() + "/token"
	require.NoError(t, os.WriteFile(tokenFile, []byte(g.Token+"\n"), 0o600))
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-server", g.Server.URL, "-token-file", tokenFile, "-gpu", "0,GPU-a,A100"}, "401"},
		{[]string{"-token", "gaas_exec_x", "-gpu", "0,GPU-a,A100"}, "-server"},
		{[]string{"-server", g.Server.URL}, "token is required"},
		{[]string{"-server", g.Server.URL, "-token", "x", "-gpu", "zero,GPU-a,A100"}, "INDEX,UUID,NAME"},
		{[]string{"-server", "ftp://example.org", "-token", "x"}, "http://"},
	} {
		cmd, out := start(t, nil, c.args...)
		err := cmd.Wait()
		var exit *exec.ExitError
		require.True(t, errors.As(err, &exit), "%v: %s", c.args, out)
		assert.Equal(t, 2, exit.ExitCode(), "%v", c.args)
		assert.Contains(t, out.String(), c.want, "%v", c.args)
		assert.NotContains(t, out.String(), strings.TrimSpace(g.Token))
	}
	help, out := start(t, nil, "-h")
	require.NoError(t, help.Wait())
	assert.Contains(t, out.String(), "GAAS_RUNNER_TOKEN")
}
