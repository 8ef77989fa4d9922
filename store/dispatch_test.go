package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/gaas"
	"github.com/gaas-io/gaas/store"
)

// dispatchFixture is a store on a driven clock, with a user whose jobs
// executors run.
type dispatchFixture struct {
	*fixture
	clk *clock
	u   gaas.User
}

func forEachDispatch(t *testing.T, fn func(t *testing.T, f *dispatchFixture)) {
	forEachBackend(t, func(t *testing.T, b backend) {
		clk := newClock(t0)
		db := openStore(t, b.dsn(t), store.Options{Now: clk.Now})
		f := &dispatchFixture{fixture: newFixture(t, db), clk: clk}
		f.u = f.user(t, 100*gaas.Credit)
		fn(t, f)
	})
}

// approved submits a job of gpus GPUs of type gpuType and approves it.
func (f *dispatchFixture) approved(t *testing.T, gpuType string, gpus int, estimate gaas.Hours) gaas.Job {
	t.Helper()
	ctx := context.Background()
	j, err := f.db.Jobs.Submit(ctx, f.u.ID, gaas.SubmitRequest{Command: "train", GPUType: gpuType, GPUCount: gpus, EstimatedHours: estimate})
	require.NoError(t, err)
	j, err = f.db.Jobs.Transition(ctx, f.admin.ID, gaas.TransitionRequest{JobID: j.ID, To: gaas.StatusApproved})
	require.NoError(t, err)
	return j
}

func (f *dispatchFixture) claim(t *testing.T, executor string, free map[string]int, max int) []gaas.Claimed {
	t.Helper()
	got, err := f.db.Dispatch.Claim(context.Background(), gaas.ClaimRequest{Executor: executor, Free: free, Max: max, TTL: time.Minute})
	require.NoError(t, err)
	return got
}

func (f *dispatchFixture) job(t *testing.T, id int64) gaas.Job {
	t.Helper()
	j, err := f.db.Jobs.Get(context.Background(), f.admin.ID, gaas.GetJobRequest{JobID: id})
	require.NoError(t, err)
	return j
}

func ids(claimed []gaas.Claimed) []int64 {
	out := make([]int64, len(claimed))
	for i, c := range claimed {
		out[i] = c.Job.ID
	}
	return out
}

func TestClaimTakesTheOldestApprovedJobsThatFit(t *testing.T) {
	forEachDispatch(t, func(t *testing.T, f *dispatchFixture) {
		ctx := context.Background()
		pending, err := f.db.Jobs.Submit(ctx, f.u.ID, gaas.SubmitRequest{Command: "wait", GPUType: "a100", EstimatedHours: gaas.Hour})
		require.NoError(t, err)
		big := f.approved(t, "a100", 4, gaas.Hour)
		small := f.approved(t, "a100", 1, gaas.Hour)
		other := f.approved(t, "h100", 1, gaas.Hour)
		pair := f.approved(t, "A100", 2, gaas.Hour) // open mode: a type of its own spelling

		assert.Empty(t, f.claim(t, "node1", map[string]int{"v100": 8}, 10), "no job of that type")
		got := f.claim(t, "node1", map[string]int{"a100": 2}, 10)
		assert.Equal(t, []int64{small.ID}, ids(got), "the 4-GPU job does not fit, the PENDING one is not approved")
		c := got[0]
		assert.Equal(t, gaas.Lease{JobID: small.ID, Generation: 1, Executor: "node1", ExpiresAt: t0.Add(time.Minute)}, c.Lease)
		assert.Equal(t, gaas.StatusApproved, c.Job.Status)
		require.NotNil(t, c.Job.Run)
		assert.Equal(t, "node1", c.Job.Run.Executor)

		// The answer was lost: the same claim gets the same job, and
		// another executor does not get it.
		assert.Equal(t, []int64{small.ID}, ids(f.claim(t, "node1", map[string]int{"a100": 2}, 1)))
		assert.Empty(t, f.claim(t, "node2", map[string]int{"a100": 1}, 10))

		got = f.claim(t, "node2", map[string]int{"a100": 8, "h100": 1, "A100": 2}, 10)
		assert.ElementsMatch(t, []int64{big.ID, other.ID, pair.ID}, ids(got))
		assert.Equal(t, gaas.StatusPending, f.job(t, pending.ID).Status)

		held, err := f.db.Dispatch.Leases(ctx, "node2")
		require.NoError(t, err)
		assert.Equal(t, []int64{big.ID, other.ID, pair.ID}, ids(held))
		assert.Equal(t, got[0].Lease.Executor, held[0].Lease.Executor)
		f.clk.Add(2 * time.Minute)
		held, err = f.db.Dispatch.Leases(ctx, "node2")
		require.NoError(t, err)
		assert.Empty(t, held, "expired")
	})
}

func TestLeaseLifecycle(t *testing.T) {
	forEachDispatch(t, func(t *testing.T, f *dispatchFixture) {
		ctx := context.Background()
		j := f.approved(t, "a100", 2, 2*gaas.Hour)
		before := f.balanceOf(t)
		l := f.claim(t, "node1", map[string]int{"a100": 2}, 1)[0].Lease

		// Waiting in a scheduler's queue: still APPROVED.
		f.clk.Add(30 * time.Second)
		reply, err := f.db.Dispatch.Heartbeat(ctx, gaas.HeartbeatRequest{Lease: l, ExternalID: "slurm-41", TTL: time.Minute})
		require.NoError(t, err)
		assert.Equal(t, gaas.HeartbeatReply{ExpiresAt: t0.Add(90 * time.Second)}, reply)
		assert.Equal(t, gaas.StatusApproved, f.job(t, j.ID).Status)

		start := f.clk.Now()
		f.clk.Add(10 * time.Second)
		_, err = f.db.Dispatch.Heartbeat(ctx, gaas.HeartbeatRequest{Lease: l, ExternalID: "slurm-41", Started: start, TTL: time.Minute})
		require.NoError(t, err)
		got := f.job(t, j.ID)
		assert.Equal(t, gaas.StatusRunning, got.Status)
		assert.Equal(t, start, got.Run.StartedAt)
		assert.Equal(t, "slurm-41", got.Run.ExternalID)

		f.clk.Add(30 * time.Minute)
		exit := 0
		done, err := f.db.Dispatch.Finish(ctx, gaas.FinishRequest{Lease: l, Outcome: gaas.Outcome{
			Status: gaas.StatusCompleted, Elapsed: 30 * time.Minute, ExitCode: &exit, Reason: "COMPLETED"}})
		require.NoError(t, err)
		assert.Equal(t, gaas.StatusCompleted, done.Status)
		assert.Equal(t, gaas.Hours(500), *done.ActualHours)
		assert.Equal(t, &exit, done.Run.ExitCode)
		assert.Equal(t, f.clk.Now(), done.Run.EndedAt)
		assert.Equal(t, "COMPLETED", done.Run.Reason)
		assert.Equal(t, before+j.Cost-gaas.Credit, f.balanceOf(t), "charged 0.5 h on 2 GPUs")
		assert.Equal(t, done, f.job(t, j.ID))

		// The lease ended with the job: nothing more is taken from it.
		_, err = f.db.Dispatch.Finish(ctx, gaas.FinishRequest{Lease: l, Outcome: gaas.Outcome{Status: gaas.StatusFailed}})
		assert.ErrorIs(t, err, gaas.ErrConflict)
		_, err = f.db.Dispatch.Heartbeat(ctx, gaas.HeartbeatRequest{Lease: l, TTL: time.Minute})
		assert.ErrorIs(t, err, gaas.ErrConflict)
		assert.Equal(t, before+j.Cost-gaas.Credit, f.balanceOf(t))
	})
}

func (f *dispatchFixture) balanceOf(t *testing.T) gaas.Credits {
	return f.balance(t, f.u.ID)
}

func TestExpiredLeases(t *testing.T) {
	forEachDispatch(t, func(t *testing.T, f *dispatchFixture) {
		ctx := context.Background()
		waiting := f.approved(t, "a100", 1, gaas.Hour)
		running := f.approved(t, "a100", 1, gaas.Hour)
		before := f.balanceOf(t)
		leases := f.claim(t, "node1", map[string]int{"a100": 2}, 2)
		require.Len(t, leases, 2)
		old := leases[0].Lease
		start := f.clk.Now()
		_, err := f.db.Dispatch.Heartbeat(ctx, gaas.HeartbeatRequest{Lease: leases[1].Lease, Started: start, TTL: time.Minute})
		require.NoError(t, err)
		f.clk.Add(50 * time.Second)
		_, err = f.db.Dispatch.Heartbeat(ctx, gaas.HeartbeatRequest{Lease: leases[1].Lease, TTL: time.Minute})
		require.NoError(t, err)

		// node1 dies. Before the leases expire nothing is reaped.
		n, err := f.db.Dispatch.ReapExpired(ctx)
		require.NoError(t, err)
		assert.Zero(t, n)
		f.clk.Add(2 * time.Minute)
		_, err = f.db.Dispatch.Heartbeat(ctx, gaas.HeartbeatRequest{Lease: old, TTL: time.Minute})
		assert.ErrorIs(t, err, gaas.ErrConflict, "an expired lease is not renewed")

		n, err = f.db.Dispatch.ReapExpired(ctx)
		require.NoError(t, err)
		assert.Equal(t, 2, n)
		n, err = f.db.Dispatch.ReapExpired(ctx)
		require.NoError(t, err)
		assert.Zero(t, n, "reaping twice ends nothing twice")

		assert.Equal(t, gaas.StatusApproved, f.job(t, waiting.ID).Status, "the job that had not started is queued again")
		lost := f.job(t, running.ID)
		assert.Equal(t, gaas.StatusFailed, lost.Status)
		assert.Equal(t, gaas.HoursOf(50*time.Second), *lost.ActualHours, "charged up to its last heartbeat")
		assert.Contains(t, lost.Run.Reason, "lost: no heartbeat from node1")
		cost, _ := gaas.Cost(gaas.HoursOf(50*time.Second), 1, gaas.RateOne)
		assert.Equal(t, before+running.Cost-cost, f.balanceOf(t))

		again := f.claim(t, "node2", map[string]int{"a100": 2}, 2)
		require.Len(t, again, 1)
		assert.Equal(t, waiting.ID, again[0].Job.ID)
		assert.Equal(t, int64(2), again[0].Lease.Generation)
		_, err = f.db.Dispatch.Finish(ctx, gaas.FinishRequest{Lease: old, Outcome: gaas.Outcome{Status: gaas.StatusCompleted, Elapsed: time.Minute}})
		assert.ErrorIs(t, err, gaas.ErrConflict, "the first lease is superseded")
		assert.Equal(t, gaas.StatusApproved, f.job(t, waiting.ID).Status)
	})
}

func TestCancelWhileLeased(t *testing.T) {
	forEachDispatch(t, func(t *testing.T, f *dispatchFixture) {
		ctx := context.Background()
		j := f.approved(t, "a100", 1, 2*gaas.Hour)
		before := f.balanceOf(t)
		l := f.claim(t, "node1", map[string]int{"a100": 1}, 1)[0].Lease
		_, err := f.db.Dispatch.Heartbeat(ctx, gaas.HeartbeatRequest{Lease: l, Started: f.clk.Now(), TTL: time.Hour})
		require.NoError(t, err)

		// The owner cancels: the job runs until its executor stops it.
		got, err := f.db.Jobs.Cancel(ctx, f.u.ID, gaas.CancelRequest{JobID: j.ID})
		require.NoError(t, err)
		assert.Equal(t, gaas.StatusRunning, got.Status)
		assert.True(t, got.Run.CancelRequested)
		f.clk.Add(36 * time.Minute)
		reply, err := f.db.Dispatch.Heartbeat(ctx, gaas.HeartbeatRequest{Lease: l, TTL: time.Minute})
		require.NoError(t, err)
		assert.True(t, reply.CancelRequested)
		done, err := f.db.Dispatch.Finish(ctx, gaas.FinishRequest{Lease: l, Outcome: gaas.Outcome{Status: gaas.StatusCancelled, Elapsed: 36 * time.Minute}})
		require.NoError(t, err)
		assert.Equal(t, gaas.StatusCancelled, done.Status)
		assert.Equal(t, gaas.Hours(600), *done.ActualHours)
		assert.Equal(t, before+j.Cost-600, f.balanceOf(t), "it pays the time it ran")

		// Cancelled while it waited for a node: over at once, refunded
		// all; the executor learns it from its next heartbeat.
		w := f.approved(t, "a100", 1, 2*gaas.Hour)
		l = f.claim(t, "node1", map[string]int{"a100": 1}, 1)[0].Lease
		before = f.balanceOf(t)
		got, err = f.db.Jobs.Cancel(ctx, f.u.ID, gaas.CancelRequest{JobID: w.ID})
		require.NoError(t, err)
		assert.Equal(t, gaas.StatusCancelled, got.Status)
		assert.Equal(t, before+w.Cost, f.balanceOf(t))
		_, err = f.db.Dispatch.Heartbeat(ctx, gaas.HeartbeatRequest{Lease: l, TTL: time.Minute})
		assert.ErrorIs(t, err, gaas.ErrConflict)
		assert.ErrorContains(t, err, "is CANCELLED")
	})
}

func TestFinishFromTheQueue(t *testing.T) {
	forEachDispatch(t, func(t *testing.T, f *dispatchFixture) {
		ctx := context.Background()
		// A job that ran and ended between two heartbeats passes through
		// RUNNING; one the executor could never start fails for nothing.
		ran := f.approved(t, "a100", 1, gaas.Hour)
		never := f.approved(t, "a100", 1, gaas.Hour)
		leases := f.claim(t, "node1", map[string]int{"a100": 2}, 2)
		before := f.balanceOf(t)
		f.clk.Add(time.Minute)
		got, err := f.db.Dispatch.Finish(ctx, gaas.FinishRequest{Lease: leases[0].Lease, Outcome: gaas.Outcome{Status: gaas.StatusFailed, Elapsed: 36 * time.Second}})
		require.NoError(t, err)
		assert.Equal(t, ran.ID, got.ID)
		assert.Equal(t, gaas.StatusFailed, got.Status)
		assert.Equal(t, gaas.Hours(10), *got.ActualHours)
		assert.Equal(t, f.clk.Now().Add(-36*time.Second), got.Run.StartedAt)
		got, err = f.db.Dispatch.Finish(ctx, gaas.FinishRequest{Lease: leases[1].Lease, Outcome: gaas.Outcome{Status: gaas.StatusFailed, SystemFault: true, Reason: "no such GPUs"}})
		require.NoError(t, err)
		assert.Equal(t, never.ID, got.ID)
		assert.Equal(t, gaas.Hours(0), *got.ActualHours)
		assert.Equal(t, before+ran.Cost-10+never.Cost, f.balanceOf(t))
	})
}

func TestDispatchRefusesBadRequests(t *testing.T) {
	db := newTestStore(t)
	ctx := context.Background()
	for _, req := range []gaas.ClaimRequest{
		{Executor: "", TTL: time.Minute},
		{Executor: "n\x00", TTL: time.Minute},
		{Executor: string(make([]byte, 101)), TTL: time.Minute},
		{Executor: "n", TTL: time.Millisecond},
		{Executor: "n", TTL: 2 * time.Hour},
		{Executor: "n", TTL: time.Minute, Max: gaas.MaxClaim + 1},
		{Executor: "n", TTL: time.Minute, Max: -1},
	} {
		_, err := db.Dispatch.Claim(ctx, req)
		assert.ErrorIs(t, err, gaas.ErrInvalid, "%+v", req)
	}
	l := gaas.Lease{JobID: 1, Generation: 1, Executor: "n"}
	_, err := db.Dispatch.Finish(ctx, gaas.FinishRequest{Lease: l, Outcome: gaas.Outcome{Status: gaas.StatusRunning}})
	assert.ErrorIs(t, err, gaas.ErrInvalid)
	_, err = db.Dispatch.Finish(ctx, gaas.FinishRequest{Lease: l, Outcome: gaas.Outcome{Status: gaas.StatusFailed, Elapsed: -time.Second}})
	assert.ErrorIs(t, err, gaas.ErrInvalid)
	_, err = db.Dispatch.Heartbeat(ctx, gaas.HeartbeatRequest{Lease: l, TTL: time.Minute})
	assert.ErrorIs(t, err, gaas.ErrNotFound, "no such job")
}

// Executors claiming at once take each job once.
func TestClaimRace(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		if !b.shared {
			t.Skip("one store only")
		}
		dsn := b.dsn(t)
		db := openStore(t, dsn, store.Options{})
		f := &dispatchFixture{fixture: newFixture(t, db)}
		f.u = f.user(t, 100*gaas.Credit)
		const jobs = 24
		for range jobs {
			f.approved(t, "a100", 1, gaas.Hour)
		}
		replicas := []*store.DB{db, openStore(t, dsn, store.Options{}), openStore(t, dsn, store.Options{})}
		var (
			mu    sync.Mutex
			taken = map[int64]string{}
			wg    sync.WaitGroup
		)
		for i := range 6 {
			name := fmt.Sprintf("node%d", i)
			r := replicas[i%len(replicas)]
			wg.Go(func() {
				for {
					got, err := r.Dispatch.Claim(context.Background(), gaas.ClaimRequest{Executor: name, Free: map[string]int{"a100": 2}, Max: 2, TTL: time.Minute})
					if !assert.NoError(t, err) {
						return
					}
					mu.Lock()
					fresh := 0
					for _, c := range got {
						if by, ok := taken[c.Job.ID]; ok {
							assert.Equal(t, name, by, "job %d claimed by two executors", c.Job.ID)
							continue
						}
						taken[c.Job.ID] = name
						fresh++
						_, err := r.Dispatch.Heartbeat(context.Background(), gaas.HeartbeatRequest{Lease: c.Lease, Started: time.Now(), TTL: time.Minute})
						assert.NoError(t, err)
					}
					done := len(taken) == jobs
					mu.Unlock()
					if done || len(got) == 0 {
						return
					}
				}
			})
		}
		wg.Wait()
		assert.Len(t, taken, jobs)
	})
}

// A job an executor holds waits in its queue: it is not a stale reservation.
func TestStaleLeavesLeasedJobs(t *testing.T) {
	forEachDispatch(t, func(t *testing.T, f *dispatchFixture) {
		ctx := context.Background()
		held := f.approved(t, "a100", 1, gaas.Hour)
		idle := f.approved(t, "h100", 1, gaas.Hour)
		l := f.claim(t, "slurm", map[string]int{"a100": 1}, 1)[0].Lease
		for range 2 {
			_, err := f.db.Dispatch.Heartbeat(ctx, gaas.HeartbeatRequest{Lease: l, ExternalID: "77", TTL: time.Hour})
			require.NoError(t, err)
			f.clk.Add(40 * time.Minute)
		}
		n, err := f.db.Upkeep.CancelStale(ctx, time.Hour)
		require.NoError(t, err)
		assert.Equal(t, 1, n)
		assert.Equal(t, gaas.StatusApproved, f.job(t, held.ID).Status)
		assert.Equal(t, gaas.StatusCancelled, f.job(t, idle.ID).Status)
	})
}
