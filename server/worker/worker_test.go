package worker_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/server/internal/syncbuf"
	"github.com/gaas-io/gaas/server/worker"
	"github.com/gaas-io/gaas/store"
	"github.com/gaas-io/gaas/store/storetest"
)

// clock is a store clock that moves only when told.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *clock) Now() time.Time      { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) Add(d time.Duration) { c.ns.Add(int64(d)) }

// replicas opens two stores on one database, as two gaasd processes do: on
// a SQLite file and, when GAAS_TEST_POSTGRES names a server, on PostgreSQL.
func forEachShared(t *testing.T, fn func(t *testing.T, dbs [2]*store.DB, clk *clock)) {
	for _, b := range []struct {
		name string
		dsn  func(t *testing.T) string
	}{
		{"file", func(t *testing.T) string { return filepath.Join(t.TempDir(), "gaas.db") }},
		{"postgres", func(t *testing.T) string { return storetest.PostgresDSN(t) }},
	} {
		t.Run(b.name, func(t *testing.T) {
			dsn := b.dsn(t)
			clk := newClock()
			var dbs [2]*store.DB
			for i := range dbs {
				db, err := store.Open(context.Background(), dsn, store.Options{Now: clk.Now})
				require.NoError(t, err)
				t.Cleanup(func() { db.Close() })
				dbs[i] = db
			}
			fn(t, dbs, clk)
		})
	}
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil)) }

// Two replicas step one task: one runs it each time, the same one while it
// renews its lease; when it dies the other takes the task over once the
// lease's TTL has passed, not before.
func TestOneReplicaRunsATask(t *testing.T) {
	forEachShared(t, func(t *testing.T, dbs [2]*store.DB, clk *clock) {
		ctx := context.Background()
		const ttl = 30 * time.Second
		var runs [2]atomic.Int32
		var ws [2]*worker.Worker
		for i := range ws {
			var err error
			ws[i], err = worker.New(discard(), dbs[i].Leases, worker.Config{Holder: []string{"a", "b"}[i], LeaseTTL: ttl},
				worker.Task{Name: "count", Run: func(context.Context) error { runs[i].Add(1); return nil }})
			require.NoError(t, err)
		}
		step := func(i int) bool {
			t.Helper()
			ran, err := ws[i].Step(ctx, "count")
			require.NoError(t, err)
			return ran
		}

		require.True(t, step(0))
		for range 5 {
			clk.Add(10 * time.Second) // the interval
			assert.False(t, step(1), "a holds the lease")
			assert.True(t, step(0), "a renews it and runs again")
		}
		// a dies here, its lease renewed just now.
		clk.Add(ttl - time.Millisecond)
		assert.False(t, step(1), "a's lease has not run out")
		clk.Add(time.Millisecond)
		assert.True(t, step(1), "b takes the task over when a's lease runs out")
		assert.Equal(t, int32(6), runs[0].Load())
		assert.Equal(t, int32(1), runs[1].Load())

		_, err := ws[0].Step(ctx, "nothing")
		assert.ErrorIs(t, err, worker.ErrNoTask)

		// Racing replicas, the lease free each round: one runs.
		for round := range 20 {
			clk.Add(ttl)
			var ran atomic.Int32
			var wg sync.WaitGroup
			for i := range ws {
				wg.Go(func() {
					ok, err := ws[i].Step(ctx, "count")
					if assert.NoError(t, err) && ok {
						ran.Add(1)
					}
				})
			}
			wg.Wait()
			require.Equal(t, int32(1), ran.Load(), "round %d", round)
		}
	})
}

// ticker is a Config.Tick that the test drives: each task's channel,
// by interval.
type ticker struct {
	mu sync.Mutex
	ch map[time.Duration]chan time.Time
}

func (tk *ticker) tick(d time.Duration) (<-chan time.Time, func()) {
	tk.mu.Lock()
	defer tk.mu.Unlock()
	if tk.ch == nil {
		tk.ch = map[time.Duration]chan time.Time{}
	}
	if tk.ch[d] == nil {
		tk.ch[d] = make(chan time.Time)
	}
	return tk.ch[d], func() {}
}

func (tk *ticker) send(d time.Duration) {
	for {
		tk.mu.Lock()
		ch := tk.ch[d]
		tk.mu.Unlock()
		if ch != nil {
			ch <- time.Time{}
			return
		}
		time.Sleep(time.Millisecond) // until the task's loop has asked for its ticker
	}
}

// Run runs each task at once and at each of its ticks; a task that fails
// or panics is logged and runs again at its next tick, beside the others;
// cancelling the context stops the worker, which hands its leases back.
func TestRun(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	clk := newClock()
	db, err := store.Open(ctx, ":memory:", store.Options{Now: clk.Now})
	require.NoError(t, err)
	defer db.Close()

	var tk ticker
	logs := &syncbuf.Buffer{}
	ok, failing := make(chan int, 1), make(chan int, 1)
	var okRuns, failRuns int
	w, err := worker.New(slog.New(slog.NewJSONHandler(logs, nil)), db.Leases, worker.Config{Holder: "me", Tick: tk.tick},
		worker.Task{Name: "ok", Every: time.Second, Run: func(context.Context) error { okRuns++; ok <- okRuns; return nil }},
		worker.Task{Name: "failing", Every: 2 * time.Second, Run: func(context.Context) error {
			failRuns++
			failing <- failRuns
			switch failRuns {
			case 1:
				return errors.New("the first run fails")
			case 2:
				panic("the second run panics")
			}
			return nil
		}})
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()

	assert.Equal(t, 1, <-ok, "runs at once")
	assert.Equal(t, 1, <-failing)
	tk.send(time.Second)
	assert.Equal(t, 2, <-ok)
	tk.send(2 * time.Second)
	assert.Equal(t, 2, <-failing, "runs again after failing")
	tk.send(time.Second)
	assert.Equal(t, 3, <-ok, "runs on while the other panics")
	tk.send(2 * time.Second)
	assert.Equal(t, 3, <-failing, "runs again after a panic")
	for _, name := range []string{"ok", "failing"} {
		holder, err := db.Leases.Holder(ctx, name)
		require.NoError(t, err)
		assert.Equal(t, "me", holder)
	}

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context was cancelled")
	}
	for _, name := range []string{"ok", "failing"} {
		holder, err := db.Leases.Holder(context.Background(), name)
		require.NoError(t, err)
		assert.Equal(t, "", holder, "released on stopping")
	}
	log := logs.String()
	assert.Contains(t, log, "the first run fails")
	assert.Contains(t, log, "the second run panics")
	assert.Equal(t, 2, strings.Count(log, `"task":"failing"`), "%s", log)
	assert.NotContains(t, log, `"task":"ok"`)
}

// New refuses tasks it could not run under their leases.
func TestNewRefuses(t *testing.T) {
	db, err := store.Open(context.Background(), ":memory:", store.Options{})
	require.NoError(t, err)
	defer db.Close()
	nop := func(context.Context) error { return nil }
	for name, tc := range map[string]struct {
		cfg   worker.Config
		tasks []worker.Task
	}{
		"unnamed":         {tasks: []worker.Task{{Run: nop}}},
		"no_run":          {tasks: []worker.Task{{Name: "x"}}},
		"same_name":       {tasks: []worker.Task{{Name: "x", Run: nop}, {Name: "x", Run: nop}}},
		"interval_vs_ttl": {cfg: worker.Config{LeaseTTL: time.Second}, tasks: []worker.Task{{Name: "x", Run: nop}}},
		"negative":        {cfg: worker.Config{Interval: -time.Second}, tasks: []worker.Task{{Name: "x", Run: nop}}},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := worker.New(discard(), db.Leases, tc.cfg, tc.tasks...)
			assert.Error(t, err)
		})
	}
	w, err := worker.New(discard(), db.Leases, worker.Config{Interval: time.Minute}, worker.Task{Name: "x", Run: nop})
	require.NoError(t, err, "a long interval lengthens the default lease")
	assert.NotEmpty(t, w.Holder())
}
