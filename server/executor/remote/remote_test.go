package remote_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/gaas"
	"github.com/gaas-io/gaas/server/executor"
	"github.com/gaas-io/gaas/server/executor/local"
	"github.com/gaas-io/gaas/server/executor/remote"
	"github.com/gaas-io/gaas/server/internal/executortest"
)

// dispatcher is a Dispatcher on s, with node1's token unless cfg has one.
func dispatcher(t *testing.T, s *executortest.Site, cfg remote.Config) *remote.Dispatcher {
	t.Helper()
	cfg.URL = s.Server.URL
	if cfg.Token == "" {
		cfg.Token = s.Token
	}
	if cfg.Backoff == 0 {
		cfg.Backoff = 10 * time.Millisecond
	}
	d, err := remote.New(cfg)
	require.NoError(t, err)
	return d
}

// step is one step of l, for Until.
func step(l *executor.Loop) func() error {
	return func() error { return l.Step(context.Background()) }
}

func charged(t *testing.T, j gaas.Job) gaas.Credits {
	t.Helper()
	require.NotNil(t, j.ActualHours)
	c, ok := gaas.Cost(*j.ActualHours, j.GPUCount, j.Rate)
	require.True(t, ok)
	return c
}

func newLocal(t *testing.T) *local.Executor {
	t.Helper()
	x, err := local.New(context.Background(), local.Config{
		LogDir: executortest.LogDir(t),
		GPUs:   []local.GPU{{Index: 0, UUID: "GPU-a-0", Name: "NVIDIA A100-SXM4-80GB"}},
		Types:  map[string]string{"NVIDIA A100-SXM4-80GB": "a100"},
		Grace:  time.Second,
	})
	require.NoError(t, err)
	t.Cleanup(func() { x.Close(context.Background()) })
	return x
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func logger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// The local executor on "another machine": the loop drives it through
// the HTTP API, a job completes, one is cancelled while it runs, and each
// is charged what it ran. The server's first answers to a claim fail
// (503, then a 502 from a proxy), and the answer to the first finish is
// lost after the server settled it: the retries carry on, and the retried
// finish's 409 ends the lease.
func TestLoopOverHTTP(t *testing.T) {
	s := executortest.New(t)
	var claimFaults, finishes atomic.Int32
	fault := func(w http.ResponseWriter, r *http.Request) bool {
		switch r.URL.Path {
		case "/executor/claim":
			switch claimFaults.Add(1) {
			case 1:
				w.Header().Set("Retry-After", "0")
				w.WriteHeader(http.StatusServiceUnavailable)
				return true
			case 2:
				w.WriteHeader(http.StatusBadGateway)
				return true
			}
		case "/executor/finish":
			if finishes.Add(1) == 1 {
				// Settle it, then drop the connection: the answer is lost.
				s.API.ServeHTTP(httptest.NewRecorder(), r)
				panic(http.ErrAbortHandler)
			}
		}
		return false
	}
	s.Faults.Store(&fault)
	d := dispatcher(t, s, remote.Config{})
	name, err := d.Executor(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "node1", name)

	x := newLocal(t)
	l, err := executor.New(logger(t), d, x, executor.Config{Name: name, TTL: 30 * time.Second, Interval: time.Second})
	require.NoError(t, err)
	before := s.Balance(t)

	done := s.Approved(t, "echo $CUDA_VISIBLE_DEVICES; sleep 1", "a100", 1, gaas.Hour)
	j := s.Until(t, step(l), done.ID, 10*time.Second, executortest.Running)
	assert.Equal(t, "node1", j.Run.Executor)
	j = s.Until(t, step(l), done.ID, 20*time.Second, executortest.Final)
	assert.Equal(t, gaas.StatusCompleted, j.Status)
	assert.Equal(t, 0, *j.Run.ExitCode)
	assert.GreaterOrEqual(t, *j.ActualHours, gaas.HoursOf(time.Second))
	log, err := os.ReadFile(x.LogPath(done.ID))
	require.NoError(t, err)
	assert.Equal(t, "GPU-a-0\n", string(log))

	cancelled := s.Approved(t, "sleep 60", "a100", 1, gaas.Hour)
	s.Until(t, step(l), cancelled.ID, 10*time.Second, executortest.Running)
	time.Sleep(1500 * time.Millisecond)
	got, err := s.DB.Jobs.Cancel(context.Background(), s.Alice.ID, gaas.CancelRequest{JobID: cancelled.ID})
	require.NoError(t, err)
	assert.True(t, got.Run.CancelRequested)
	c := s.Until(t, step(l), cancelled.ID, 10*time.Second, executortest.Final)
	assert.Equal(t, gaas.StatusCancelled, c.Status)
	assert.GreaterOrEqual(t, *c.ActualHours, gaas.HoursOf(time.Second))

	assert.Equal(t, before-charged(t, j)-charged(t, c), s.Balance(t))
	held, err := d.Leases(context.Background(), "node1")
	require.NoError(t, err)
	assert.Empty(t, held)
	assert.GreaterOrEqual(t, claimFaults.Load(), int32(3), "the failed claims were tried again")
	assert.Equal(t, int32(3), finishes.Load(), "two finishes, one of them twice")
}

// Errors come back as the gaas sentinels, transport errors and 5xx are
// tried again, and nothing else is.
func TestErrors(t *testing.T) {
	s := executortest.New(t)
	ctx := context.Background()

	_, err := dispatcher(t, s, remote.Config{Token: "gaas_exec_nope"}).Leases(ctx, "")
	assert.ErrorIs(t, err, gaas.ErrUnauthorized)
	d := dispatcher(t, s, remote.Config{})
	_, err = d.Leases(ctx, "node2")
	assert.ErrorIs(t, err, gaas.ErrInvalid, "the token is node1's")
	_, err = d.Claim(ctx, gaas.ClaimRequest{Free: map[string]int{"a100": 1}, TTL: 2 * time.Hour})
	assert.ErrorIs(t, err, gaas.ErrInvalid)
	var apiErr *remote.Error
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, http.StatusUnprocessableEntity, apiErr.Status)
	assert.Contains(t, apiErr.Detail, "ttl")

	j := s.Approved(t, "true", "a100", 1, gaas.Hour)
	claimed, err := d.Claim(ctx, gaas.ClaimRequest{Executor: "node1", Free: map[string]int{"a100": 1}, TTL: time.Minute})
	require.NoError(t, err)
	require.Len(t, claimed, 1)
	assert.Equal(t, j.ID, claimed[0].Job.ID)
	assert.Equal(t, j.EstimatedHours, claimed[0].Job.EstimatedHours)
	assert.Equal(t, j.Rate, claimed[0].Job.Rate)
	assert.Equal(t, j.Cost, claimed[0].Job.Cost)
	assert.Equal(t, "true", claimed[0].Job.Command)
	lease := claimed[0].Lease
	stale := lease
	stale.Generation++
	_, err = d.Heartbeat(ctx, gaas.HeartbeatRequest{Lease: stale, TTL: time.Minute})
	assert.ErrorIs(t, err, gaas.ErrConflict)

	// 5xx answers and lost connections are tried again, up to Attempts.
	var calls atomic.Int32
	fail := func(status int) func(w http.ResponseWriter, r *http.Request) bool {
		return func(w http.ResponseWriter, r *http.Request) bool {
			if calls.Add(1) > 2 {
				return false
			}
			if status == 0 {
				panic(http.ErrAbortHandler)
			}
			w.WriteHeader(status)
			return true
		}
	}
	for _, status := range []int{http.StatusServiceUnavailable, http.StatusBadGateway, 0} {
		calls.Store(0)
		f := fail(status)
		s.Faults.Store(&f)
		reply, err := d.Heartbeat(ctx, gaas.HeartbeatRequest{Lease: lease, Started: time.Now(), TTL: time.Minute})
		require.NoError(t, err, "status %d", status)
		assert.False(t, reply.CancelRequested)
		assert.EqualValues(t, 3, calls.Load())
	}
	calls.Store(-100)
	f := fail(http.StatusInternalServerError)
	s.Faults.Store(&f)
	_, err = dispatcher(t, s, remote.Config{Attempts: 3}).Leases(ctx, "")
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, http.StatusInternalServerError, apiErr.Status)
	assert.EqualValues(t, -97, calls.Load(), "three attempts")
	s.Faults.Store(nil)

	// A finish whose answer was lost is retried: the retry is 409, and the
	// job keeps what the first settled.
	var once sync.Once
	lost := func(w http.ResponseWriter, r *http.Request) bool {
		lose := false
		once.Do(func() { lose = true })
		if !lose {
			return false
		}
		s.API.ServeHTTP(httptest.NewRecorder(), r)
		panic(http.ErrAbortHandler)
	}
	s.Faults.Store(&lost)
	code := 0
	_, err = d.Finish(ctx, gaas.FinishRequest{Lease: lease, Outcome: gaas.Outcome{Status: gaas.StatusCompleted, Elapsed: 90 * time.Second, ExitCode: &code}})
	assert.ErrorIs(t, err, gaas.ErrConflict)
	got := s.Job(t, j.ID)
	assert.Equal(t, gaas.StatusCompleted, got.Status)
	assert.Equal(t, gaas.HoursOf(90*time.Second), *got.ActualHours)

	// A context that ends stops the retries.
	f = fail(http.StatusServiceUnavailable)
	calls.Store(-1000)
	s.Faults.Store(&f)
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	_, err = dispatcher(t, s, remote.Config{Attempts: 1000, Backoff: 20 * time.Millisecond}).Leases(short, "")
	assert.True(t, errors.Is(err, context.DeadlineExceeded), "%v", err)
}
