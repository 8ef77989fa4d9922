package store_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/gaas"
	"github.com/gaas-io/gaas/store"
	"github.com/gaas-io/gaas/store/storetest"
)

// allocationFixture is a store on a clock that moves only when told.
func allocationFixture(t *testing.T, b backend) (*fixture, *clock) {
	t.Helper()
	clk := newClock(t0)
	return newFixture(t, openStore(t, b.dsn(t), store.Options{Now: clk.Now})), clk
}

// credits is n credits and a fraction: credits(2, 500) is 2.5.
func credits(n, milli int64) gaas.Credits { return gaas.Credits(n)*gaas.Credit + gaas.Credits(milli) }

// A submission draws from the allocations that pay for its type and are
// active: narrowest scope first, then soonest expiry, then oldest, each
// emptied before the next; allocations of another scope are not touched.
func TestAllocationDrawOrder(t *testing.T) {
	ctx := context.Background()
	forEachBackend(t, func(t *testing.T, b backend) {
		f, clk := allocationFixture(t, b)
		u := f.user(t, gaas.Credit) // the default allocation, unscoped, no expiry, oldest
		alloc := func(scope []string, expires *time.Time) gaas.Allocation {
			return f.allocation(t, gaas.CreateAllocationRequest{UserID: u.ID, Amount: gaas.Credit, GPUTypes: scope, ExpiresAt: expires})
		}
		a := alloc(nil, nil)
		bb := alloc(nil, clk.At(10*time.Hour))
		c := alloc(nil, clk.At(5*time.Hour))
		d := alloc([]string{"A100"}, nil)
		e := alloc([]string{"A100", "H100"}, clk.At(time.Hour))
		late := alloc(nil, nil)
		h100 := alloc([]string{"H100"}, nil)
		dflt := f.allocations(t, u.ID)[0]
		require.True(t, dflt.Default)
		assert.Equal(t, 8*gaas.Credit, f.balance(t, u.ID))

		j, err := f.db.Jobs.Submit(ctx, u.ID, gaas.SubmitRequest{Command: "x", GPUType: "a100", EstimatedHours: 6500})
		require.NoError(t, err)
		assert.Equal(t, []gaas.Draw{
			{AllocationID: d.ID, Amount: gaas.Credit}, {AllocationID: e.ID, Amount: gaas.Credit},
			{AllocationID: c.ID, Amount: gaas.Credit}, {AllocationID: bb.ID, Amount: gaas.Credit},
			{AllocationID: dflt.ID, Amount: gaas.Credit}, {AllocationID: a.ID, Amount: gaas.Credit},
			{AllocationID: late.ID, Amount: 500},
		}, j.Draws)
		assert.Equal(t, credits(6, 500), j.Cost)

		// One charge entry for each draw, in the order drawn.
		led := f.ledger(t, u.ID)
		charges := led[len(led)-len(j.Draws):]
		for i, dr := range j.Draws {
			assert.Equal(t, gaas.LedgerCharge, charges[i].Kind)
			assert.Equal(t, dr.AllocationID, charges[i].AllocationID)
			assert.Equal(t, -dr.Amount, charges[i].Delta)
			assert.Equal(t, j.ID, *charges[i].JobID)
		}
		assert.Equal(t, credits(1, 500), charges[len(charges)-1].Balance)

		// What is left for A100 is half a credit: the H100 allocation does not pay for it.
		_, err = f.db.Jobs.Submit(ctx, u.ID, gaas.SubmitRequest{Command: "x", GPUType: "A100", EstimatedHours: gaas.Hour})
		var qe *gaas.QuotaError
		require.ErrorAs(t, err, &qe)
		assert.Equal(t, gaas.QuotaError{Asked: gaas.Credit, Remaining: 500, GPUType: "A100"}, *qe)
		j2, err := f.db.Jobs.Submit(ctx, u.ID, gaas.SubmitRequest{Command: "x", GPUType: "H100", EstimatedHours: 1500})
		require.NoError(t, err)
		assert.Equal(t, []gaas.Draw{{AllocationID: h100.ID, Amount: gaas.Credit}, {AllocationID: late.ID, Amount: 500}}, j2.Draws)
		assert.Equal(t, gaas.Credits(0), f.balance(t, u.ID))
	})
}

// Expiry is exact in time and needs no background work: an allocation pays
// until the instant before its expires_at, and from then on not; one that
// has not started pays for nothing until it starts.
func TestAllocationActiveInTime(t *testing.T) {
	ctx := context.Background()
	forEachBackend(t, func(t *testing.T, b backend) {
		f, clk := allocationFixture(t, b)
		u := f.user(t, 0)
		x := f.allocation(t, gaas.CreateAllocationRequest{UserID: u.ID, Amount: 2 * gaas.Credit, ExpiresAt: clk.At(2 * time.Hour)})
		later := f.allocation(t, gaas.CreateAllocationRequest{UserID: u.ID, Amount: 3 * gaas.Credit, StartsAt: t0.Add(3 * time.Hour)})
		submit := func(h gaas.Hours) (gaas.Job, error) {
			return f.db.Jobs.Submit(ctx, u.ID, gaas.SubmitRequest{Command: "x", GPUType: "A100", EstimatedHours: h})
		}

		assert.Equal(t, 2*gaas.Credit, f.balance(t, u.ID), "the allocation that has not started counts for nothing")
		_, err := submit(2001)
		var qe *gaas.QuotaError
		require.ErrorAs(t, err, &qe)
		assert.Equal(t, 2*gaas.Credit, qe.Remaining)

		clk.Set(t0.Add(2*time.Hour - time.Microsecond))
		assert.Equal(t, 2*gaas.Credit, f.balance(t, u.ID), "a microsecond before it expires")
		j, err := submit(500)
		require.NoError(t, err)
		assert.Equal(t, []gaas.Draw{{AllocationID: x.ID, Amount: 500}}, j.Draws)

		clk.Set(t0.Add(2 * time.Hour))
		assert.Equal(t, gaas.Credits(0), f.balance(t, u.ID), "at its expires_at exactly")
		_, err = submit(1)
		require.ErrorAs(t, err, &qe)
		assert.Equal(t, gaas.Credits(0), qe.Remaining)
		list := listAllocations(t, f.db, u.ID, gaas.AllocationsRequest{UserID: u.ID})
		require.Len(t, list, 2, "the default and the one to come; the expired one is not listed")
		assert.True(t, list[0].Default)
		assert.Equal(t, later.ID, list[1].ID)
		for _, a := range f.allocations(t, u.ID) {
			if a.ID == x.ID {
				assert.Equal(t, credits(1, 500), a.Remaining, "nothing has run to write its expiry")
			}
		}

		clk.Set(t0.Add(3*time.Hour - time.Microsecond))
		assert.Equal(t, gaas.Credits(0), f.balance(t, u.ID))
		clk.Set(t0.Add(3 * time.Hour))
		assert.Equal(t, 3*gaas.Credit, f.balance(t, u.ID), "from its starts_at on")
		j, err = submit(gaas.Hour)
		require.NoError(t, err)
		assert.Equal(t, []gaas.Draw{{AllocationID: later.ID, Amount: gaas.Credit}}, j.Draws)
	})
}

// A refund goes back to the allocations the job drew from, the last drawn
// first; what goes back to one that has ended, by expiry or by an admin,
// is followed at once by an expire entry that takes it away.
func TestAllocationRefunds(t *testing.T) {
	ctx := context.Background()
	forEachBackend(t, func(t *testing.T, b backend) {
		f, clk := allocationFixture(t, b)
		u := f.user(t, 5*gaas.Credit)
		dflt := f.allocations(t, u.ID)[0]
		s := f.allocation(t, gaas.CreateAllocationRequest{UserID: u.ID, Amount: gaas.Credit, GPUTypes: []string{"NVIDIA A100"}})
		x := f.allocation(t, gaas.CreateAllocationRequest{UserID: u.ID, Amount: 2 * gaas.Credit, ExpiresAt: clk.At(2 * time.Hour)})
		remaining := func() map[int64]gaas.Credits {
			out := map[int64]gaas.Credits{}
			for _, a := range f.allocations(t, u.ID) {
				out[a.ID] = a.Remaining
			}
			return out
		}

		j := f.submit(t, u.ID, 3500)
		require.Equal(t, []gaas.Draw{{AllocationID: s.ID, Amount: gaas.Credit}, {AllocationID: x.ID, Amount: 2 * gaas.Credit}, {AllocationID: dflt.ID, Amount: 500}}, j.Draws)
		// It ran 1.2 hours: the 1.2 credits it keeps are the first it
		// drew, and the 2.3 it gives back go to the last drawn.
		before := len(f.ledger(t, u.ID))
		f.move(t, j, hoursPtr(1200), gaas.StatusApproved, gaas.StatusRunning, gaas.StatusCompleted)
		assert.Equal(t, map[int64]gaas.Credits{dflt.ID: 5 * gaas.Credit, s.ID: 0, x.ID: credits(1, 800)}, remaining())
		refunds := f.ledger(t, u.ID)[before:]
		require.Len(t, refunds, 2)
		for i, want := range []struct {
			alloc int64
			delta gaas.Credits
		}{{x.ID, credits(1, 800)}, {dflt.ID, 500}} {
			assert.Equal(t, gaas.LedgerRefund, refunds[i].Kind)
			assert.Equal(t, want.alloc, refunds[i].AllocationID)
			assert.Equal(t, want.delta, refunds[i].Delta)
		}
		assert.Equal(t, credits(6, 800), f.balance(t, u.ID))

		t.Run("to_an_expired_allocation", func(t *testing.T) {
			j := f.submit(t, u.ID, 2*gaas.Hour)
			require.Equal(t, []gaas.Draw{{AllocationID: x.ID, Amount: credits(1, 800)}, {AllocationID: dflt.ID, Amount: 200}}, j.Draws)
			clk.Set(t0.Add(2 * time.Hour))
			assert.Equal(t, credits(4, 800), f.balance(t, u.ID))
			before := len(f.ledger(t, u.ID))
			_, err := f.db.Jobs.Transition(ctx, f.admin.ID, gaas.TransitionRequest{JobID: j.ID, To: gaas.StatusRejected})
			require.NoError(t, err)
			entries := f.ledger(t, u.ID)[before:]
			require.Len(t, entries, 3)
			assert.Equal(t, []gaas.LedgerKind{gaas.LedgerRefund, gaas.LedgerExpire, gaas.LedgerRefund},
				[]gaas.LedgerKind{entries[0].Kind, entries[1].Kind, entries[2].Kind})
			assert.Equal(t, x.ID, entries[0].AllocationID)
			assert.Equal(t, credits(1, 800), entries[0].Delta)
			assert.Equal(t, x.ID, entries[1].AllocationID)
			assert.Equal(t, -credits(1, 800), entries[1].Delta)
			assert.Equal(t, gaas.Credits(0), entries[1].Remaining)
			assert.Equal(t, j.ID, *entries[1].JobID, "the expire entry names the refund's job")
			assert.Equal(t, dflt.ID, entries[2].AllocationID)
			assert.Equal(t, gaas.Credits(200), entries[2].Delta)
			assert.Equal(t, 5*gaas.Credit, f.balance(t, u.ID), "what went back to the expired allocation expired with it")
			assert.Equal(t, gaas.Credits(0), remaining()[x.ID])
		})

		t.Run("to_an_ended_allocation", func(t *testing.T) {
			y := f.allocation(t, gaas.CreateAllocationRequest{UserID: u.ID, Amount: 2 * gaas.Credit, GPUTypes: []string{"NVIDIA A100"}})
			j := f.submit(t, u.ID, gaas.Hour)
			require.Equal(t, []gaas.Draw{{AllocationID: y.ID, Amount: gaas.Credit}}, j.Draws)
			_, err := f.db.Allocations.UpdateAllocation(ctx, f.admin.ID, gaas.UpdateAllocationRequest{AllocationID: y.ID, End: true})
			require.NoError(t, err)
			assert.Equal(t, 5*gaas.Credit, f.balance(t, u.ID))
			before := len(f.ledger(t, u.ID))
			_, err = f.db.Jobs.Cancel(ctx, u.ID, gaas.CancelRequest{JobID: j.ID})
			require.NoError(t, err)
			entries := f.ledger(t, u.ID)[before:]
			require.Len(t, entries, 2)
			assert.Equal(t, gaas.LedgerRefund, entries[0].Kind)
			assert.Equal(t, gaas.Credit, entries[0].Delta)
			assert.Equal(t, gaas.LedgerExpire, entries[1].Kind)
			assert.Equal(t, -gaas.Credit, entries[1].Delta)
			assert.Equal(t, y.ID, entries[1].AllocationID)
			assert.Equal(t, 5*gaas.Credit, f.balance(t, u.ID))
		})
	})
}

// An admin shortens an allocation, or ends it: what it holds then is
// taken back in one revoke entry. An allocation is never lengthened, an
// ended one not changed again, and a default one never ends.
func TestUpdateAllocation(t *testing.T) {
	ctx := context.Background()
	forEachBackend(t, func(t *testing.T, b backend) {
		f, clk := allocationFixture(t, b)
		u := f.user(t, gaas.Credit)
		update := func(req gaas.UpdateAllocationRequest) (gaas.Allocation, error) {
			return f.db.Allocations.UpdateAllocation(ctx, f.admin.ID, req)
		}

		t.Run("shorten_then_end", func(t *testing.T) {
			z := f.allocation(t, gaas.CreateAllocationRequest{UserID: u.ID, Amount: 3 * gaas.Credit, ExpiresAt: clk.At(10 * time.Hour)})
			before := len(f.ledger(t, u.ID))
			got, err := update(gaas.UpdateAllocationRequest{AllocationID: z.ID, ExpiresAt: clk.At(5 * time.Hour)})
			require.NoError(t, err)
			assert.Equal(t, t0.Add(5*time.Hour), *got.ExpiresAt)
			assert.Equal(t, 3*gaas.Credit, got.Remaining)
			assert.Len(t, f.ledger(t, u.ID), before, "shortened into the future: nothing is taken yet")

			_, err = update(gaas.UpdateAllocationRequest{AllocationID: z.ID, ExpiresAt: clk.At(6 * time.Hour)})
			assertInvalid(t, err, "expires_at")

			got, err = update(gaas.UpdateAllocationRequest{AllocationID: z.ID, End: true, Reason: "project over"})
			require.NoError(t, err)
			assert.Equal(t, gaas.Credits(0), got.Remaining)
			assert.Equal(t, t0, *got.ExpiresAt)
			entries := f.ledger(t, u.ID)[before:]
			require.Len(t, entries, 1)
			assert.Equal(t, gaas.LedgerRevoke, entries[0].Kind)
			assert.Equal(t, -3*gaas.Credit, entries[0].Delta)
			assert.Equal(t, z.ID, entries[0].AllocationID)
			assert.Equal(t, "project over", entries[0].Reason)
			assert.Equal(t, f.admin.ID, entries[0].ActorID)
			assert.Nil(t, entries[0].JobID)
			assert.Equal(t, gaas.Credit, entries[0].Balance)

			_, err = update(gaas.UpdateAllocationRequest{AllocationID: z.ID, End: true})
			assert.ErrorIs(t, err, gaas.ErrConflict)
			assert.Len(t, f.ledger(t, u.ID), before+1)
		})

		t.Run("shorten_into_the_past", func(t *testing.T) {
			w := f.allocation(t, gaas.CreateAllocationRequest{UserID: u.ID, Amount: 2 * gaas.Credit, ExpiresAt: clk.At(100 * time.Hour)})
			f.submit(t, u.ID, 500)
			before := len(f.ledger(t, u.ID))
			got, err := update(gaas.UpdateAllocationRequest{AllocationID: w.ID, ExpiresAt: timePtr(t0.Add(-time.Hour))})
			require.NoError(t, err)
			assert.Equal(t, gaas.Credits(0), got.Remaining)
			entries := f.ledger(t, u.ID)[before:]
			require.Len(t, entries, 1)
			assert.Equal(t, gaas.LedgerRevoke, entries[0].Kind)
			assert.Equal(t, -credits(1, 500), entries[0].Delta)
			assert.Equal(t, gaas.Credit, f.balance(t, u.ID))
		})

		t.Run("default_never_ends", func(t *testing.T) {
			dflt := f.allocations(t, u.ID)[0]
			require.True(t, dflt.Default)
			_, err := update(gaas.UpdateAllocationRequest{AllocationID: dflt.ID, End: true})
			assert.ErrorIs(t, err, gaas.ErrConflict)
			_, err = update(gaas.UpdateAllocationRequest{AllocationID: dflt.ID, ExpiresAt: clk.At(time.Hour)})
			assert.ErrorIs(t, err, gaas.ErrConflict)
			assert.Equal(t, gaas.Credit, f.balance(t, u.ID))
		})

		t.Run("bad_input", func(t *testing.T) {
			z := f.allocation(t, gaas.CreateAllocationRequest{UserID: u.ID, Amount: gaas.Credit, ExpiresAt: clk.At(time.Hour)})
			_, err := update(gaas.UpdateAllocationRequest{AllocationID: z.ID})
			assertInvalid(t, err, "expires_at")
			_, err = update(gaas.UpdateAllocationRequest{AllocationID: z.ID, End: true, ExpiresAt: clk.At(time.Minute)})
			assertInvalid(t, err, "end")
			_, err = update(gaas.UpdateAllocationRequest{AllocationID: 987654, End: true})
			assert.ErrorIs(t, err, gaas.ErrNotFound)
		})
	})
}

// Only admins give or change allocations; a user reads their own, and
// another user's are not found.
func TestAllocationPolicy(t *testing.T) {
	ctx := context.Background()
	forEachStore(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		u, other := f.user(t, gaas.Credit), f.user(t, gaas.Credit)
		a := f.allocation(t, gaas.CreateAllocationRequest{UserID: u.ID, Amount: gaas.Credit})

		_, err := db.Allocations.CreateAllocation(ctx, u.ID, gaas.CreateAllocationRequest{UserID: u.ID, Amount: gaas.Credit})
		assert.ErrorIs(t, err, gaas.ErrForbidden)
		_, err = db.Allocations.UpdateAllocation(ctx, u.ID, gaas.UpdateAllocationRequest{AllocationID: a.ID, End: true})
		assert.ErrorIs(t, err, gaas.ErrForbidden)
		_, err = db.Allocations.UpdateAllocation(ctx, u.ID, gaas.UpdateAllocationRequest{AllocationID: 987654, End: true})
		assert.ErrorIs(t, err, gaas.ErrForbidden, "refused before the allocation is looked up")

		mine := listAllocations(t, db, u.ID, gaas.AllocationsRequest{UserID: u.ID})
		require.Len(t, mine, 2)
		assert.True(t, mine[0].Default)
		assert.Equal(t, a, mine[1])
		_, err = db.Allocations.Allocations(ctx, other.ID, gaas.AllocationsRequest{UserID: u.ID})
		assert.ErrorIs(t, err, gaas.ErrNotFound)
		_, err = db.Allocations.Allocations(ctx, f.admin.ID, gaas.AllocationsRequest{UserID: 987654})
		assert.ErrorIs(t, err, gaas.ErrNotFound)
		_, err = db.Allocations.CreateAllocation(ctx, f.admin.ID, gaas.CreateAllocationRequest{UserID: 987654, Amount: gaas.Credit})
		assert.ErrorIs(t, err, gaas.ErrNotFound)
		assert.Equal(t, 2*gaas.Credit, f.balance(t, u.ID))
		assert.Equal(t, gaas.Credit, f.balance(t, other.ID))
	})
}

// A new allocation is recorded as a grant entry by its admin; a bad one
// is refused whole.
func TestCreateAllocation(t *testing.T) {
	ctx := context.Background()
	forEachBackend(t, func(t *testing.T, b backend) {
		f, clk := allocationFixture(t, b)
		u := f.user(t, gaas.Credit)
		a, err := f.db.Allocations.CreateAllocation(ctx, f.admin.ID, gaas.CreateAllocationRequest{
			UserID: u.ID, Amount: credits(4, 250), GPUTypes: []string{"A100", "H100"}, ExpiresAt: clk.At(24 * time.Hour), Reason: "Q1 project",
		})
		require.NoError(t, err)
		assert.Equal(t, gaas.Allocation{
			ID: a.ID, AccountID: u.AccountID, Amount: credits(4, 250), Remaining: credits(4, 250), GPUTypes: []string{"A100", "H100"},
			StartsAt: t0, ExpiresAt: timePtr(t0.Add(24 * time.Hour)), Reason: "Q1 project", CreatedByID: f.admin.ID, CreatedAt: t0,
		}, a)
		led := f.ledger(t, u.ID)
		last := led[len(led)-1]
		assert.Equal(t, gaas.LedgerGrant, last.Kind)
		assert.Equal(t, a.ID, last.AllocationID)
		assert.Equal(t, credits(4, 250), last.Delta)
		assert.Equal(t, credits(5, 250), last.Balance)
		assert.Equal(t, f.admin.ID, last.ActorID)
		assert.Equal(t, "Q1 project", last.Reason)

		for _, tc := range []struct {
			name  string
			req   gaas.CreateAllocationRequest
			field string
		}{
			{"no_amount", gaas.CreateAllocationRequest{UserID: u.ID}, "amount"},
			{"negative", gaas.CreateAllocationRequest{UserID: u.ID, Amount: -1}, "amount"},
			{"too_much", gaas.CreateAllocationRequest{UserID: u.ID, Amount: gaas.MaxCredits}, "amount"},
			{"empty_scope", gaas.CreateAllocationRequest{UserID: u.ID, Amount: 1, GPUTypes: []string{}}, "gpu_types"},
			{"scope_twice", gaas.CreateAllocationRequest{UserID: u.ID, Amount: 1, GPUTypes: []string{"A100", "a100"}}, "gpu_types"},
			{"expired", gaas.CreateAllocationRequest{UserID: u.ID, Amount: 1, ExpiresAt: clk.At(0)}, "expires_at"},
			{"ends_before_start", gaas.CreateAllocationRequest{UserID: u.ID, Amount: 1, StartsAt: t0.Add(2 * time.Hour), ExpiresAt: clk.At(time.Hour)}, "expires_at"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := f.db.Allocations.CreateAllocation(ctx, f.admin.ID, tc.req)
				assertInvalid(t, err, tc.field)
			})
		}
		assert.Len(t, f.ledger(t, u.ID), len(led))
		assert.Equal(t, credits(5, 250), f.balance(t, u.ID))
	})
}

// Quota.Set and Quota.Grant act on the default allocation alone: for an
// account with no other allocation they set and change its balance as
// they always did; beside others, they leave those alone.
func TestQuotaActsOnTheDefaultAllocation(t *testing.T) {
	ctx := context.Background()
	forEachStore(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		u := f.user(t, 4*gaas.Credit)
		x := f.allocation(t, gaas.CreateAllocationRequest{UserID: u.ID, Amount: 3 * gaas.Credit})
		dflt := f.allocations(t, u.ID)[0]

		got, err := db.Quota.Set(ctx, f.admin.ID, gaas.SetBalanceRequest{UserID: u.ID, Balance: 2 * gaas.Credit, Reason: "set"})
		require.NoError(t, err)
		assert.Equal(t, 5*gaas.Credit, got.Balance, "the default allocation holds 2, the other 3")
		led := f.ledger(t, u.ID)
		last := led[len(led)-1]
		assert.Equal(t, gaas.LedgerSet, last.Kind)
		assert.Equal(t, dflt.ID, last.AllocationID)
		assert.Equal(t, -2*gaas.Credit, last.Delta)
		assert.Equal(t, 2*gaas.Credit, last.Remaining)
		assert.Equal(t, 5*gaas.Credit, last.Balance)

		// Taking back more than the default allocation holds is refused,
		// whatever the others hold.
		_, err = db.Quota.Grant(ctx, f.admin.ID, gaas.GrantRequest{UserID: u.ID, Delta: -3 * gaas.Credit, Reason: "too much"})
		var qe *gaas.QuotaError
		require.ErrorAs(t, err, &qe)
		assert.Equal(t, gaas.QuotaError{Asked: 3 * gaas.Credit, Remaining: 2 * gaas.Credit}, *qe)
		got, err = db.Quota.Grant(ctx, f.admin.ID, gaas.GrantRequest{UserID: u.ID, Delta: -2 * gaas.Credit, Reason: "all of the default"})
		require.NoError(t, err)
		assert.Equal(t, 3*gaas.Credit, got.Balance)
		for _, a := range f.allocations(t, u.ID) {
			if a.ID == x.ID {
				assert.Equal(t, 3*gaas.Credit, a.Remaining, "the other allocation is left alone")
			}
		}

		// With only the default allocation, Set is the balance, as before.
		v := f.user(t, 7*gaas.Credit)
		j := f.submit(t, v.ID, 2*gaas.Hour)
		got, err = db.Quota.Set(ctx, f.admin.ID, gaas.SetBalanceRequest{UserID: v.ID, Balance: gaas.Credit, Reason: "set"})
		require.NoError(t, err)
		assert.Equal(t, gaas.Credit, got.Balance)
		_, err = db.Jobs.Cancel(ctx, v.ID, gaas.CancelRequest{JobID: j.ID})
		require.NoError(t, err)
		assert.Equal(t, 3*gaas.Credit, f.balance(t, v.ID), "the refund comes back on top of the set")
		got, err = db.Quota.Grant(ctx, f.admin.ID, gaas.GrantRequest{UserID: v.ID, Delta: gaas.Credit, Reason: "grant"})
		require.NoError(t, err)
		assert.Equal(t, 4*gaas.Credit, got.Balance)
	})
}

// Many goroutines submitting for one user, of a type a scoped allocation
// pays for and of one only the default allocation pays for, at a rate and
// on several GPUs, never overdraw either: every allocation gives exactly
// what the accepted jobs drew from it, those draws are what the jobs cost,
// and the scoped allocation pays for its type alone.
func TestSubmitConcurrentAcrossAllocations(t *testing.T) {
	seed := storetest.Seed(t)
	ctx := context.Background()
	forEachStore(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		f.gpuType(t, gaas.CreateGPUTypeRequest{Name: "A100", Rate: rate(1, 500), MaxGPUsPerJob: 2})
		f.gpuType(t, gaas.CreateGPUTypeRequest{Name: "T4", Rate: rate(0, 700)})
		u := f.user(t, 10*gaas.Credit)
		scoped := f.allocation(t, gaas.CreateAllocationRequest{UserID: u.ID, Amount: 7 * gaas.Credit, GPUTypes: []string{"A100"}})
		dflt := f.allocations(t, u.ID)[0]
		require.True(t, dflt.Default)

		var (
			wg         sync.WaitGroup
			mu         sync.Mutex
			accepted   []gaas.Job
			refused    int
			unexpected []error
		)
		for w := range 24 {
			rnd := rand.New(rand.NewPCG(seed, uint64(w)))
			wg.Go(func() {
				for range 8 {
					req := gaas.SubmitRequest{Command: "x", GPUType: "A100", EstimatedHours: gaas.Hours(100 + rnd.IntN(900)), GPUCount: 1 + rnd.IntN(2)}
					if rnd.IntN(3) == 0 {
						req.GPUType = "T4"
					}
					j, err := db.Jobs.Submit(ctx, u.ID, req)
					mu.Lock()
					switch {
					case err == nil:
						accepted = append(accepted, j)
					case errors.Is(err, gaas.ErrQuotaExceeded):
						refused++
					default:
						unexpected = append(unexpected, err)
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		require.Empty(t, unexpected)
		require.NotZero(t, refused, "the run asks for more than the allocations hold")

		drawn := map[int64]gaas.Credits{}
		var cost gaas.Credits
		for _, j := range accepted {
			want, ok := gaas.Cost(j.EstimatedHours, j.GPUCount, j.Rate)
			require.True(t, ok)
			assert.Equal(t, want, j.Cost, "job %d", j.ID)
			cost += j.Cost
			var sum gaas.Credits
			for _, d := range j.Draws {
				sum += d.Amount
				drawn[d.AllocationID] += d.Amount
				if d.AllocationID == scoped.ID {
					assert.Equal(t, "A100", j.GPUType, "job %d drew from the scoped allocation", j.ID)
				}
			}
			assert.Equal(t, j.Cost, sum, "job %d", j.ID)
		}
		left := map[int64]gaas.Credits{}
		for _, a := range f.allocations(t, u.ID) {
			left[a.ID] = a.Remaining
			assert.GreaterOrEqual(t, a.Remaining, gaas.Credits(0))
		}
		assert.Equal(t, 10*gaas.Credit-drawn[dflt.ID], left[dflt.ID])
		assert.Equal(t, 7*gaas.Credit-drawn[scoped.ID], left[scoped.ID])
		assert.Equal(t, 17*gaas.Credit-cost, f.balance(t, u.ID), "credits taken are the costs of the accepted jobs")
		page, err := db.Jobs.List(ctx, u.ID, gaas.JobFilter{Page: gaas.Page{Limit: gaas.MaxLimit}})
		require.NoError(t, err)
		assert.Len(t, page.Items, len(accepted))
		// openStore's clean-up runs Check.
	})
}
