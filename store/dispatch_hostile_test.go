package store_test

import (
	"context"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/gaas"
)

// Counts of free GPUs as large as an int holds, under two spellings of one
// type of the catalogue, are many GPUs, not a sum that wraps to none.
func TestClaimHugeFreeCounts(t *testing.T) {
	forEachDispatch(t, func(t *testing.T, f *dispatchFixture) {
		_, err := f.db.Catalogue.CreateGPUType(context.Background(), f.admin.ID, gaas.CreateGPUTypeRequest{Name: "a100", Rate: gaas.RateOne})
		require.NoError(t, err)
		j := f.approved(t, "a100", 1, gaas.Hour)
		got := f.claim(t, "node1", map[string]int{"a100": math.MaxInt, "A100": math.MaxInt, "h100": math.MinInt}, 10)
		assert.Equal(t, []int64{j.ID}, ids(got))
	})
}

// Only a failure is the system's fault: a job that completed, or was
// cancelled, ran for its owner and is not given its time for nothing.
func TestFinishSystemFaultOnlyFails(t *testing.T) {
	forEachDispatch(t, func(t *testing.T, f *dispatchFixture) {
		ctx := context.Background()
		j := f.approved(t, "a100", 1, gaas.Hour)
		l := f.claim(t, "node1", map[string]int{"a100": 1}, 1)[0].Lease
		for _, s := range []gaas.JobStatus{gaas.StatusCompleted, gaas.StatusCancelled} {
			_, err := f.db.Dispatch.Finish(ctx, gaas.FinishRequest{Lease: l, Outcome: gaas.Outcome{Status: s, Elapsed: time.Hour, SystemFault: true}})
			assert.ErrorIs(t, err, gaas.ErrInvalid, s)
		}
		assert.Equal(t, gaas.StatusApproved, f.job(t, j.ID).Status)
	})
}

// Executors, the reaper, admins, owners and the stale sweep all at once
// on leased jobs: each job is settled once, within its cost, and no lease
// outlives its job (Check, when the store closes).
func TestDispatchSettlesOnceUnderRaces(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	forEachDispatch(t, func(t *testing.T, f *dispatchFixture) {
		ctx := context.Background()
		rng := rand.New(rand.NewPCG(seed, 19))
		const n = 12
		var jobs []gaas.Job
		for range n {
			jobs = append(jobs, f.approved(t, "a100", 1+rng.IntN(2), gaas.Hours(1+rng.IntN(2000))))
		}
		claimed := f.claim(t, "node1", map[string]int{"a100": 2 * n}, n)
		require.Len(t, claimed, n)
		for i, c := range claimed {
			if i%3 != 0 { // a third never starts
				_, err := f.db.Dispatch.Heartbeat(ctx, gaas.HeartbeatRequest{Lease: c.Lease, ExternalID: "x", Started: f.clk.Now().Add(-time.Hour), TTL: time.Minute})
				require.NoError(t, err)
			}
		}
		f.clk.Add(30 * time.Second)
		var wg sync.WaitGroup
		for i, c := range claimed {
			ops := []func(){
				func() {
					st := []gaas.JobStatus{gaas.StatusCompleted, gaas.StatusFailed, gaas.StatusCancelled}[i%3]
					f.db.Dispatch.Finish(ctx, gaas.FinishRequest{Lease: c.Lease, Outcome: gaas.Outcome{Status: st, Elapsed: time.Duration(i) * 10 * time.Minute}})
				},
				func() {
					f.db.Dispatch.Finish(ctx, gaas.FinishRequest{Lease: c.Lease, Outcome: gaas.Outcome{Status: gaas.StatusFailed, SystemFault: true}})
				},
				func() { f.db.Dispatch.ReapExpired(ctx) },
				func() {
					f.db.Jobs.Transition(ctx, f.admin.ID, gaas.TransitionRequest{JobID: c.Job.ID, To: gaas.StatusCompleted, ActualHours: hoursPtr(c.Job.EstimatedHours)})
				},
				func() { f.db.Jobs.Cancel(ctx, f.u.ID, gaas.CancelRequest{JobID: c.Job.ID}) },
				func() { f.db.Upkeep.CancelStale(ctx, time.Second) },
				func() { f.clk.Add(time.Minute) },
				func() {
					f.db.Dispatch.Heartbeat(ctx, gaas.HeartbeatRequest{Lease: c.Lease, Started: f.clk.Now().Add(time.Hour), TTL: time.Second})
				},
			}
			rng.Shuffle(len(ops), func(a, b int) { ops[a], ops[b] = ops[b], ops[a] })
			for _, op := range ops[:4] {
				wg.Go(op)
			}
		}
		wg.Wait()
		f.clk.Add(time.Hour)
		_, err := f.db.Dispatch.ReapExpired(ctx)
		require.NoError(t, err)
		ledger := f.ledger(t, f.u.ID)
		for _, j := range jobs {
			var refunds gaas.Credits
			for _, e := range ledger {
				if e.JobID != nil && *e.JobID == j.ID && e.Kind == gaas.LedgerRefund {
					refunds += e.Delta
				}
			}
			assert.LessOrEqual(t, refunds, j.Cost, "job %d refunded more than it cost", j.ID)
		}
	})
}

// What an executor reports follows the rule of every text gaas stores: no
// NUL (which PostgreSQL cannot store) and no control character that would
// forge what a log line or a terminal shows.
func TestDispatchRefusesControlCharacters(t *testing.T) {
	forEachDispatch(t, func(t *testing.T, f *dispatchFixture) {
		ctx := context.Background()
		j := f.approved(t, "a100", 1, gaas.Hour)
		l := f.claim(t, "node1", map[string]int{"a100": 1}, 1)[0].Lease
		for _, id := range []string{"x\x00", "x\x1b[2J", "x\ny"} {
			_, err := f.db.Dispatch.Heartbeat(ctx, gaas.HeartbeatRequest{Lease: l, ExternalID: id, TTL: time.Minute})
			assert.ErrorIs(t, err, gaas.ErrInvalid, "%q", id)
		}
		for _, reason := range []string{"exit\x00", "\x1b[31mCOMPLETED"} {
			_, err := f.db.Dispatch.Finish(ctx, gaas.FinishRequest{Lease: l, Outcome: gaas.Outcome{Status: gaas.StatusFailed, Reason: reason}})
			assert.ErrorIs(t, err, gaas.ErrInvalid, "%q", reason)
		}
		got, err := f.db.Dispatch.Finish(ctx, gaas.FinishRequest{Lease: l, Outcome: gaas.Outcome{Status: gaas.StatusFailed, Reason: "lines\n\tare fine"}})
		require.NoError(t, err)
		assert.Equal(t, "lines\n\tare fine", got.Run.Reason)
		assert.Equal(t, j.ID, got.ID)
	})
}
