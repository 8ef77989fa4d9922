package executor_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/gaas"
	"github.com/gaas-io/gaas/server/executor"
	"github.com/gaas-io/gaas/server/internal/executortest"
)

// scripted is an executor that runs nothing: it reports the runs a test
// gives it, and fails its first cancels.
type scripted struct {
	mu        sync.Mutex
	runs      []gaas.Run
	failFirst int // cancels that fail before one succeeds
	cancelled []string
	// free, when set, is what Free answers, and Start starts jobs (a run
	// that started at once) or, with refuse set, refuses them so.
	free   map[string]int
	refuse error
}

func (x *scripted) Free(context.Context) (map[string]int, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	return maps.Clone(x.free), nil
}

func (x *scripted) Start(_ context.Context, j gaas.Job) (string, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	switch {
	case x.refuse != nil:
		return "", x.refuse
	case x.free == nil:
		return "", errors.New("scripted: starts nothing")
	}
	id := fmt.Sprintf("run-%d", j.ID)
	x.runs = append(x.runs, gaas.Run{JobID: j.ID, ExternalID: id, Started: time.Now()})
	return id, nil
}

func (x *scripted) Runs(context.Context) ([]gaas.Run, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	return append([]gaas.Run(nil), x.runs...), nil
}

func (x *scripted) Cancel(_ context.Context, id string) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.failFirst > 0 {
		x.failFirst--
		return errors.New("scripted: the cluster is out of reach")
	}
	x.cancelled = append(x.cancelled, id)
	return nil
}

func (x *scripted) Forget(string) {}

// A run the loop holds no lease on is stopped, even if the first attempt
// to stop it fails: it would run on, charged to no one.
func TestLoopRetriesStoppingRunsItHoldsNoLeaseOn(t *testing.T) {
	for _, restart := range []bool{false, true} {
		s := executortest.New(t)
		x := &scripted{failFirst: 1}
		l, err := executor.New(logger(t), s.DB.Dispatch, x, executor.Config{Name: "node1", TTL: 30 * time.Second, Interval: time.Second})
		require.NoError(t, err)
		if !restart {
			require.NoError(t, l.Step(context.Background())) // resumed with nothing
		}
		x.mu.Lock()
		x.runs = []gaas.Run{{JobID: 99, ExternalID: "stray", Started: time.Now()}}
		x.mu.Unlock()
		assert.Error(t, l.Step(context.Background()), "the first stop fails")
		l.Step(context.Background())
		l.Step(context.Background())
		x.mu.Lock()
		assert.Equal(t, []string{"stray"}, x.cancelled, "restart %v", restart)
		x.mu.Unlock()
	}
}

// A run the loop held no lease on and stopped may leave the executor's
// list without an outcome: there is nothing to settle, and no error.
func TestLoopForgetsStoppedRunsThatVanish(t *testing.T) {
	s := executortest.New(t)
	x := &scripted{runs: []gaas.Run{{JobID: 99, ExternalID: "stray", Started: time.Now()}}}
	l, err := executor.New(logger(t), s.DB.Dispatch, x, executor.Config{Name: "node1", TTL: 30 * time.Second, Interval: time.Second})
	require.NoError(t, err)
	require.NoError(t, l.Step(context.Background()))
	require.NoError(t, l.Step(context.Background()))
	x.mu.Lock()
	x.runs = nil
	x.mu.Unlock()
	assert.NoError(t, l.Step(context.Background()))
	assert.NoError(t, l.Step(context.Background()))
}

// A job its executor loses while it runs is FAILED, charged up to the last
// heartbeat the store took, as an expired lease would be.
func TestLoopChargesALostJobItsTime(t *testing.T) {
	s := executortest.New(t)
	x := &scripted{free: map[string]int{"a100": 1}}
	l, err := executor.New(logger(t), s.DB.Dispatch, x, executor.Config{Name: "node1", TTL: 30 * time.Second, Interval: time.Second})
	require.NoError(t, err)
	j := s.Approved(t, "train", "a100", 1, gaas.Hour)
	require.NoError(t, l.Step(context.Background())) // claimed and started
	require.NoError(t, l.Step(context.Background())) // RUNNING
	time.Sleep(1200 * time.Millisecond)
	require.NoError(t, l.Step(context.Background())) // a heartbeat a second on
	x.mu.Lock()
	x.runs, x.free = nil, map[string]int{}
	x.mu.Unlock()
	require.NoError(t, l.Step(context.Background()))
	got := s.Job(t, j.ID)
	assert.Equal(t, gaas.StatusFailed, got.Status)
	assert.Equal(t, "lost by the executor", got.Run.Reason)
	assert.GreaterOrEqual(t, *got.ActualHours, gaas.HoursOf(time.Second))
	assert.Less(t, *got.ActualHours, gaas.HoursOf(time.Minute))
}

// An executor's refusal longer than the store keeps is cut, not refused:
// the job still fails at once, for nothing.
func TestLoopClipsLongReasons(t *testing.T) {
	s := executortest.New(t)
	x := &scripted{free: map[string]int{"a100": 1}, refuse: gaas.Invalid("gpu_type", "%s", strings.Repeat("é", 3000))}
	l, err := executor.New(logger(t), s.DB.Dispatch, x, executor.Config{Name: "node1", TTL: 30 * time.Second, Interval: time.Second})
	require.NoError(t, err)
	j := s.Approved(t, "train", "a100", 1, gaas.Hour)
	require.NoError(t, l.Step(context.Background()))
	got := s.Job(t, j.ID)
	assert.Equal(t, gaas.StatusFailed, got.Status)
	assert.LessOrEqual(t, len(got.Run.Reason), 1000)
	assert.True(t, strings.HasPrefix(got.Run.Reason, "refused: "), got.Run.Reason[:20])
	assert.True(t, strings.HasSuffix(got.Run.Reason, "é..."), "cut on a character's boundary")
	assert.Equal(t, gaas.Hours(0), *got.ActualHours)
}
