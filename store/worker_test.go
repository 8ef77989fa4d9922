package store_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/gaas"
	"github.com/gaas-io/gaas/store"
)

// A lease has one holder until its time runs out: it renews its own,
// others are refused, and once the time has passed without renewal anyone
// takes it over. A release hands it on at once.
func TestLeases(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		clk := newClock(t0)
		db := openStore(t, b.dsn(t), store.Options{Now: clk.Now})
		const ttl = 30 * time.Second
		acquire := func(holder string) bool {
			t.Helper()
			ok, err := db.Leases.Acquire(ctx, "expiry", holder, ttl)
			require.NoError(t, err)
			return ok
		}
		holder := func() string {
			h, err := db.Leases.Holder(ctx, "expiry")
			require.NoError(t, err)
			return h
		}

		assert.Equal(t, "", holder())
		require.True(t, acquire("a"))
		assert.False(t, acquire("b"), "held by a")
		clk.Add(ttl - time.Second)
		assert.True(t, acquire("a"), "a renews its own")
		clk.Add(ttl - time.Second)
		assert.False(t, acquire("b"), "a renewed it: its time has not run out")
		assert.Equal(t, "a", holder())
		ok, err := db.Leases.Acquire(ctx, "other", "b", ttl)
		require.NoError(t, err)
		assert.True(t, ok, "each name is a lease of its own")

		clk.Add(time.Second) // exactly ttl after a's renewal: a dies here
		assert.Equal(t, "", holder())
		assert.True(t, acquire("b"), "a's time ran out: b takes it over")
		assert.False(t, acquire("a"), "a lost it")
		require.NoError(t, db.Leases.Release(ctx, "expiry", "a"))
		assert.Equal(t, "b", holder(), "a release by one who does not hold it changes nothing")
		require.NoError(t, db.Leases.Release(ctx, "expiry", "b"))
		assert.True(t, acquire("a"), "released: a takes it at once")

		_, err = db.Leases.Acquire(ctx, "expiry", "", ttl)
		assert.ErrorIs(t, err, gaas.ErrInvalid)
		_, err = db.Leases.Acquire(ctx, "expiry", "a", 0)
		assert.ErrorIs(t, err, gaas.ErrInvalid)
	})
}

// Holders on two handles of one database (two processes on one PostgreSQL
// or one SQLite file) race for a lease whose time has run out: exactly one
// gets it each round.
func TestLeaseRace(t *testing.T) {
	forEachPair(t, func(t *testing.T, dbs [2]*store.DB, clk *clock) {
		ctx := context.Background()
		const ttl = 30 * time.Second
		for round := range 20 {
			var (
				won   atomic.Int32
				wg    sync.WaitGroup
				start = make(chan struct{})
			)
			for i := range 8 {
				wg.Go(func() {
					<-start
					ok, err := dbs[i%2].Leases.Acquire(ctx, "race", fmt.Sprintf("holder-%d", i), ttl)
					if assert.NoError(t, err) && ok {
						won.Add(1)
					}
				})
			}
			close(start)
			wg.Wait()
			require.Equal(t, int32(1), won.Load(), "round %d", round)
			clk.Add(ttl) // the winner dies
		}
	})
}

// ExpireEnded writes one expire entry, by the system, for each allocation
// that has ended holding credits, and nothing when run again; a refund to
// it later expires at once, and Check stays clean.
func TestExpireEnded(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		clk := newClock(t0)
		db := openStore(t, b.dsn(t), store.Options{Now: clk.Now})
		f := newFixture(t, db)
		u := f.user(t, 0)
		x := f.allocation(t, gaas.CreateAllocationRequest{UserID: u.ID, Amount: 5 * gaas.Credit, ExpiresAt: clk.At(time.Hour)})
		later := f.allocation(t, gaas.CreateAllocationRequest{UserID: u.ID, Amount: 1 * gaas.Credit, ExpiresAt: clk.At(3 * time.Hour)})
		j := f.submit(t, u.ID, 2*gaas.Hour) // draws from x, which ends first

		n, err := db.Upkeep.ExpireEnded(ctx)
		require.NoError(t, err)
		assert.Equal(t, 0, n, "nothing has ended")

		clk.Add(time.Hour) // x ends now
		n, err = db.Upkeep.ExpireEnded(ctx)
		require.NoError(t, err)
		assert.Equal(t, 1, n)
		n, err = db.Upkeep.ExpireEnded(ctx)
		require.NoError(t, err)
		assert.Equal(t, 0, n, "run again: nothing more")

		expires := expireEntries(f.ledger(t, u.ID), x.ID)
		require.Len(t, expires, 1)
		assert.Equal(t, -3*gaas.Credit, expires[0].Delta)
		assert.Equal(t, gaas.SystemExpiry, expires[0].ActorSystem)
		for _, a := range f.allocations(t, u.ID) {
			switch a.ID {
			case x.ID:
				assert.Equal(t, gaas.Credits(0), a.Remaining)
			case later.ID:
				assert.Equal(t, gaas.Credit, a.Remaining, "not ended")
			}
		}

		// The job's cancel gives back to x, which has ended: what it gives
		// back expires with it at once, and the worker finds nothing.
		_, err = db.Jobs.Cancel(ctx, u.ID, gaas.CancelRequest{JobID: j.ID})
		require.NoError(t, err)
		n, err = db.Upkeep.ExpireEnded(ctx)
		require.NoError(t, err)
		assert.Equal(t, 0, n)
		assert.Len(t, expireEntries(f.ledger(t, u.ID), x.ID), 2, "the refund's own expire")
		assert.Equal(t, gaas.Credit, f.balance(t, u.ID))
	})
}

// expireEntries are the expire entries of allocation id.
func expireEntries(entries []gaas.LedgerEntry, id int64) []gaas.LedgerEntry {
	var out []gaas.LedgerEntry
	for _, e := range entries {
		if e.Kind == gaas.LedgerExpire && e.AllocationID == id {
			out = append(out, e)
		}
	}
	return out
}

// Processes on one database run ExpireEnded at once, over a backlog longer
// than one batch: every ended allocation gets one expire entry, none two.
func TestExpireEndedRace(t *testing.T) {
	forEachPair(t, func(t *testing.T, dbs [2]*store.DB, clk *clock) {
		ctx := context.Background()
		f := newFixture(t, dbs[0])
		const users, each = 30, 8 // 240 allocations, more than store.ExpireBatch
		var ids []int64
		for range users {
			u := f.user(t, 0)
			for i := range each {
				a := f.allocation(t, gaas.CreateAllocationRequest{UserID: u.ID, Amount: gaas.Credit, ExpiresAt: clk.At(time.Duration(i+1) * time.Minute)})
				ids = append(ids, a.ID)
			}
		}
		require.Greater(t, len(ids), store.ExpireBatch)
		clk.Add(time.Hour)

		var (
			total atomic.Int64
			wg    sync.WaitGroup
		)
		for i := range 4 {
			wg.Go(func() {
				for {
					n, err := dbs[i%2].Upkeep.ExpireEnded(ctx)
					if !assert.NoError(t, err) || n == 0 {
						return
					}
					total.Add(int64(n))
				}
			})
		}
		wg.Wait()
		n, err := dbs[1].Upkeep.ExpireEnded(ctx)
		require.NoError(t, err)
		assert.Equal(t, 0, n)
		assert.Equal(t, int64(len(ids)), total.Load(), "each allocation expired once")
		report, err := dbs[0].Check(ctx)
		require.NoError(t, err)
		require.True(t, report.OK(), "%v", report.Violations)
		var expires int
		require.NoError(t, store.RawQueryRow(ctx, dbs[0], "SELECT count(*) FROM ledger WHERE kind = 'expire'", &expires))
		assert.Equal(t, len(ids), expires)
	})
}

// CancelStale cancels, with their full return, the jobs left PENDING
// since submission or APPROVED since approval longer than the limit, says
// why, and leaves the rest alone.
func TestCancelStale(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		clk := newClock(t0)
		db := openStore(t, b.dsn(t), store.Options{Now: clk.Now})
		f := newFixture(t, db)
		u := f.user(t, 10*gaas.Credit)
		const limit = 72 * time.Hour

		pending := f.submit(t, u.ID, 1*gaas.Hour)
		approved := f.submit(t, u.ID, 2*gaas.Hour)
		running := f.submit(t, u.ID, 1*gaas.Hour)
		f.move(t, running, nil, gaas.StatusApproved, gaas.StatusRunning)
		clk.Add(limit - time.Hour)
		f.move(t, approved, nil, gaas.StatusApproved) // approved an hour before the pending one is stale
		fresh := f.submit(t, u.ID, 1*gaas.Hour)
		assert.Equal(t, 5*gaas.Credit, f.balance(t, u.ID))

		_, err := db.Upkeep.CancelStale(ctx, 0)
		assert.ErrorIs(t, err, gaas.ErrInvalid)

		clk.Add(time.Hour)
		n, err := db.Upkeep.CancelStale(ctx, limit)
		require.NoError(t, err)
		assert.Equal(t, 1, n, "the pending job only")
		got := getJob(t, f, pending.ID)
		assert.Equal(t, gaas.StatusCancelled, got.Status)
		assert.Equal(t, "stale: pending longer than 72h0m0s", got.EndReason)
		for _, id := range []int64{approved.ID, running.ID, fresh.ID} {
			assert.Empty(t, getJob(t, f, id).EndReason)
		}
		assert.Equal(t, 6*gaas.Credit, f.balance(t, u.ID), "the full return")

		clk.Add(limit)
		n, err = db.Upkeep.CancelStale(ctx, limit)
		require.NoError(t, err)
		assert.Equal(t, 2, n, "the approved job and the one submitted later; the running one is not stale")
		got = getJob(t, f, approved.ID)
		assert.Equal(t, gaas.StatusCancelled, got.Status)
		assert.Equal(t, "stale: approved and not started for longer than 72h0m0s", got.EndReason)
		assert.Equal(t, gaas.StatusRunning, getJob(t, f, running.ID).Status)
		assert.Equal(t, 9*gaas.Credit, f.balance(t, u.ID))
		for _, e := range f.ledger(t, u.ID) {
			if e.Kind == gaas.LedgerRefund {
				assert.Equal(t, gaas.SystemStale, e.ActorSystem, "entry %d", e.ID)
			}
		}
		n, err = db.Upkeep.CancelStale(ctx, limit)
		require.NoError(t, err)
		assert.Equal(t, 0, n)
	})
}

func getJob(t *testing.T, f *fixture, id int64) gaas.Job {
	t.Helper()
	j, err := f.db.Jobs.Get(context.Background(), f.admin.ID, gaas.GetJobRequest{JobID: id})
	require.NoError(t, err)
	return j
}

// A user cancels their stale jobs while two processes cancel stale jobs:
// each job is cancelled once, by one of them, and refunded once.
func TestCancelStaleRacesUser(t *testing.T) {
	forEachPair(t, func(t *testing.T, dbs [2]*store.DB, clk *clock) {
		ctx := context.Background()
		f := newFixture(t, dbs[0])
		u := f.user(t, 40*gaas.Credit)
		var jobs []gaas.Job
		for range 40 {
			jobs = append(jobs, f.submit(t, u.ID, 1*gaas.Hour))
		}
		require.Equal(t, gaas.Credits(0), f.balance(t, u.ID))
		clk.Add(time.Hour)

		var (
			bySystem, byUser atomic.Int64
			wg               sync.WaitGroup
		)
		for i := range 2 {
			wg.Go(func() {
				n, err := dbs[i].Upkeep.CancelStale(ctx, time.Minute)
				assert.NoError(t, err)
				bySystem.Add(int64(n))
			})
		}
		for i, j := range jobs {
			wg.Go(func() {
				got, err := dbs[i%2].Jobs.Cancel(ctx, u.ID, gaas.CancelRequest{JobID: j.ID})
				if assert.NoError(t, err) && got.EndReason == "" {
					byUser.Add(1)
				}
			})
		}
		wg.Wait()
		assert.Equal(t, int64(len(jobs)), bySystem.Load()+byUser.Load(), "each job cancelled once: %d by the system, %d by the user",
			bySystem.Load(), byUser.Load())
		assert.Equal(t, 40*gaas.Credit, f.balance(t, u.ID), "each refunded once")
		var stale int
		require.NoError(t, store.RawQueryRow(ctx, dbs[0], "SELECT count(*) FROM jobs WHERE end_reason IS NOT NULL", &stale))
		assert.Equal(t, bySystem.Load(), int64(stale))
	})
}

// forEachPair runs fn as a subtest on each backend that two processes can
// share (a SQLite file, PostgreSQL), with two stores on one database, as
// two processes hold, on one clock.
func forEachPair(t *testing.T, fn func(t *testing.T, dbs [2]*store.DB, clk *clock)) {
	forEachBackend(t, func(t *testing.T, b backend) {
		if !b.shared {
			t.Skip("needs a second handle on the same database")
		}
		clk := newClock(t0)
		dsn := b.dsn(t)
		fn(t, [2]*store.DB{openStore(t, dsn, store.Options{Now: clk.Now}), openStore(t, dsn, store.Options{Now: clk.Now})}, clk)
	})
}
