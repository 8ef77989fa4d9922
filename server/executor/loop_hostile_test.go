package executor_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/gaas"
	"github.com/gaas-io/gaas/server/executor"
)

// scripted is an executor that runs nothing: it reports the runs a test
// gives it, and fails its first cancels.
type scripted struct {
	mu        sync.Mutex
	runs      []gaas.Run
	failFirst int // cancels that fail before one succeeds
	cancelled []string
}

func (x *scripted) Free(context.Context) (map[string]int, error) { return map[string]int{}, nil }
func (x *scripted) Start(context.Context, gaas.Job) (string, error) {
	return "", errors.New("scripted: starts nothing")
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
		s := newSite(t)
		x := &scripted{failFirst: 1}
		l, err := executor.New(logger(t), s.db.Dispatch, x, executor.Config{Name: "node1", TTL: 30 * time.Second, Interval: time.Second})
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
	s := newSite(t)
	x := &scripted{runs: []gaas.Run{{JobID: 99, ExternalID: "stray", Started: time.Now()}}}
	l, err := executor.New(logger(t), s.db.Dispatch, x, executor.Config{Name: "node1", TTL: 30 * time.Second, Interval: time.Second})
	require.NoError(t, err)
	require.NoError(t, l.Step(context.Background()))
	require.NoError(t, l.Step(context.Background()))
	x.mu.Lock()
	x.runs = nil
	x.mu.Unlock()
	assert.NoError(t, l.Step(context.Background()))
	assert.NoError(t, l.Step(context.Background()))
}
