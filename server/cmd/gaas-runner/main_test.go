package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/authn"
	"github.com/gaas-io/gaas/gaas"
	"github.com/gaas-io/gaas/server"
	"github.com/gaas-io/gaas/store"
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

// gaasd is a gaas server on a store file, with a user whose jobs run and
// an executor account.
type gaasd struct {
	db           *store.DB
	url          string
	admin, alice gaas.User
	token        string
}

func newGaasd(t *testing.T) *gaasd {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, t.TempDir()+"/gaas.db", store.Options{})
	require.NoError(t, err)
	t.Cleanup(func() {
		report, err := db.Check(context.Background())
		assert.NoError(t, err)
		assert.Empty(t, report.Violations)
		db.Close()
	})
	key, err := db.SigningKey(ctx)
	require.NoError(t, err)
	tokens, err := authn.NewTokens(key, 0, nil)
	require.NoError(t, err)
	auth := authn.NewAuthenticator(db.Accounts, authn.Hasher{Iterations: 1000}, tokens)
	srv := httptest.NewServer(server.NewServer(slog.New(slog.NewTextHandler(io.Discard, nil)), server.Config{}, server.Services{
		Auth: auth, Users: db.Users, Jobs: db.Jobs, Quota: db.Quota, Catalogue: db.Catalogue, Allocations: db.Allocations,
		Projects: db.Projects, DB: db, Executors: db.Executors, Dispatch: db.Dispatch,
	}))
	t.Cleanup(srv.Close)
	g := &gaasd{db: db, url: srv.URL}
	g.admin, err = db.Accounts.EnsureAdmin(ctx, "root", "unused-hash", false)
	require.NoError(t, err)
	g.alice, err = db.Accounts.CreateUser(ctx, "alice", "unused-hash", gaas.RoleUser)
	require.NoError(t, err)
	_, err = db.Quota.Set(ctx, g.admin.ID, gaas.SetBalanceRequest{UserID: g.alice.ID, Balance: 100 * gaas.Credit, Reason: "test"})
	require.NoError(t, err)
	_, g.token, err = db.Executors.CreateExecutor(ctx, g.admin.ID, "node1")
	require.NoError(t, err)
	return g
}

func (g *gaasd) approved(t *testing.T, command string) int64 {
	t.Helper()
	ctx := context.Background()
	j, err := g.db.Jobs.Submit(ctx, g.alice.ID, gaas.SubmitRequest{Command: command, GPUType: "A100", GPUCount: 1, EstimatedHours: gaas.Hour})
	require.NoError(t, err)
	_, err = g.db.Jobs.Transition(ctx, g.admin.ID, gaas.TransitionRequest{JobID: j.ID, To: gaas.StatusApproved})
	require.NoError(t, err)
	return j.ID
}

// wait polls job id until ok, for up to within.
func (g *gaasd) wait(t *testing.T, id int64, within time.Duration, ok func(gaas.Job) bool) gaas.Job {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		j, err := g.db.Jobs.Get(context.Background(), g.admin.ID, gaas.GetJobRequest{JobID: id})
		require.NoError(t, err)
		if ok(j) {
			return j
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %d: %+v after %v", id, j, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// logDir is a directory for the jobs' logs, under a directory that the
// jobs' user (nobody) may enter.
func logDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "gaas-runner-")
	require.NoError(t, err)
	require.NoError(t, os.Chmod(dir, 0o711))
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir + "/logs"
}

// syncBuffer is a buffer for a process's output.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// start runs gaas-runner as a process with args and env.
func start(t *testing.T, env []string, args ...string) (*exec.Cmd, *syncBuffer) {
	t.Helper()
	exe, err := os.Executable()
	require.NoError(t, err)
	b, err := json.Marshal(args)
	require.NoError(t, err)
	cmd := exec.Command(exe)
	cmd.Env = append(append(os.Environ(), "GAAS_RUNNER_TEST_ARGS="+string(b)), env...)
	out := &syncBuffer{}
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
	g := newGaasd(t)
	done := g.approved(t, "echo ran on $CUDA_VISIBLE_DEVICES")
	cmd, out := start(t, []string{"GAAS_RUNNER_TOKEN=" + g.token, "GAAS_RUNNER_GPU_TYPE=NVIDIA A100-SXM4-80GB=A100"},
		"-server", g.url, "-log-dir", logDir(t), "-gpu", "0,GPU-a-0,NVIDIA A100-SXM4-80GB", "-gpu", "1,GPU-a-1,NVIDIA A100-SXM4-80GB",
		"-interval", "200ms", "-ttl", "5s", "-grace", "1s")

	j := g.wait(t, done, 20*time.Second, func(j gaas.Job) bool { return j.Status.Final() })
	assert.Equal(t, gaas.StatusCompleted, j.Status, "%s", out)
	assert.Equal(t, "node1", j.Run.Executor)

	long := g.approved(t, "sleep 600")
	g.wait(t, long, 20*time.Second, func(j gaas.Job) bool { return j.Status == gaas.StatusRunning })
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
	l, err := g.db.Jobs.Get(context.Background(), g.admin.ID, gaas.GetJobRequest{JobID: long})
	require.NoError(t, err)
	assert.Equal(t, gaas.StatusFailed, l.Status, "%s", out)
	assert.Contains(t, l.Run.Reason, "shut down")
	assert.GreaterOrEqual(t, *l.ActualHours, gaas.HoursOf(time.Second))
	assert.Less(t, *l.ActualHours, gaas.HoursOf(time.Minute))
	assert.Contains(t, out.String(), `"executor":"node1"`)
	assert.NotContains(t, out.String(), g.token)
	assert.NotContains(t, out.String(), g.token[len(authn.ExecutorTokenPrefix):])
}

// A revoked or wrong token, or a missing flag, stops gaas-runner at once
// with exit status 2 and an error that says why.
func TestRunnerRefuses(t *testing.T) {
	g := newGaasd(t)
	_, err := g.db.Executors.RevokeExecutor(context.Background(), g.admin.ID, "node1")
	require.NoError(t, err)
	tokenFile := t.TempDir() + "/token"
	require.NoError(t, os.WriteFile(tokenFile, []byte(g.token+"\n"), 0o600))
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-server", g.url, "-token-file", tokenFile, "-gpu", "0,GPU-a,A100"}, "401"},
		{[]string{"-token", "gaas_exec_x", "-gpu", "0,GPU-a,A100"}, "-server"},
		{[]string{"-server", g.url}, "token is required"},
		{[]string{"-server", g.url, "-token", "x", "-gpu", "zero,GPU-a,A100"}, "INDEX,UUID,NAME"},
		{[]string{"-server", "ftp://example.org", "-token", "x"}, "http://"},
	} {
		cmd, out := start(t, nil, c.args...)
		err := cmd.Wait()
		var exit *exec.ExitError
		require.True(t, errors.As(err, &exit), "%v: %s", c.args, out)
		assert.Equal(t, 2, exit.ExitCode(), "%v", c.args)
		assert.Contains(t, out.String(), c.want, "%v", c.args)
		assert.NotContains(t, out.String(), strings.TrimSpace(g.token))
	}
	help, out := start(t, nil, "-h")
	require.NoError(t, help.Wait())
	assert.Contains(t, out.String(), "GAAS_RUNNER_TOKEN")
}
