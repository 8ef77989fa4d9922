package store_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/gaas"
	"github.com/gaas-io/gaas/store"
	"github.com/gaas-io/gaas/store/storetest"
)

func TestQuota(t *testing.T) {
	ctx := context.Background()
	forEachStore(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)

		t.Run("new_users_get_the_default_quota_as_their_first_entry", func(t *testing.T) {
			u, err := db.Accounts.CreateUser(ctx, "newcomer", "unused-hash", gaas.RoleUser)
			require.NoError(t, err)
			assert.Equal(t, store.DefaultQuota, u.Balance)
			led, err := db.Quota.Ledger(ctx, u.ID, gaas.LedgerRequest{UserID: u.ID})
			require.NoError(t, err)
			require.Len(t, led.Items, 1)
			e := led.Items[0]
			assert.Equal(t, gaas.LedgerGrant, e.Kind)
			assert.Equal(t, store.DefaultQuota, e.Delta)
			assert.Equal(t, store.DefaultQuota, e.Balance)
			assert.Zero(t, e.ActorID, "the system gives the default quota, not the new user")
			assert.Equal(t, gaas.SystemRegistration, e.ActorSystem)
			assert.Nil(t, e.JobID)
		})

		t.Run("set", func(t *testing.T) {
			u := f.user(t, 10*gaas.Credit)
			got, err := db.Quota.Set(ctx, f.admin.ID, gaas.SetBalanceRequest{UserID: u.ID, Balance: 25 * gaas.Credit, Reason: "Q1 grant"})
			require.NoError(t, err)
			assert.Equal(t, 25*gaas.Credit, got.Balance)
			got, err = db.Quota.Set(ctx, f.admin.ID, gaas.SetBalanceRequest{UserID: u.ID, Balance: 0, Reason: "freeze"})
			require.NoError(t, err)
			assert.Equal(t, gaas.Credits(0), got.Balance)
			led, err := db.Quota.Ledger(ctx, f.admin.ID, gaas.LedgerRequest{UserID: u.ID})
			require.NoError(t, err)
			last := led.Items[len(led.Items)-1]
			assert.Equal(t, gaas.LedgerSet, last.Kind)
			assert.Equal(t, -25*gaas.Credit, last.Delta)
			assert.Equal(t, "freeze", last.Reason)
			assert.Equal(t, f.admin.ID, last.ActorID)
			assert.Empty(t, last.ActorSystem)
		})

		t.Run("grant_and_take_back", func(t *testing.T) {
			u := f.user(t, 10*gaas.Credit)
			got, err := db.Quota.Grant(ctx, f.admin.ID, gaas.GrantRequest{UserID: u.ID, Delta: 5 * gaas.Credit, Reason: "bonus"})
			require.NoError(t, err)
			assert.Equal(t, 15*gaas.Credit, got.Balance)
			got, err = db.Quota.Grant(ctx, f.admin.ID, gaas.GrantRequest{UserID: u.ID, Delta: -15 * gaas.Credit, Reason: "all of it"})
			require.NoError(t, err)
			assert.Equal(t, gaas.Credits(0), got.Balance)
		})

		t.Run("taking_back_more_than_is_left_changes_nothing", func(t *testing.T) {
			u := f.user(t, 3*gaas.Credit)
			_, err := db.Quota.Grant(ctx, f.admin.ID, gaas.GrantRequest{UserID: u.ID, Delta: -3001, Reason: "too much"})
			var qe *gaas.QuotaError
			require.ErrorAs(t, err, &qe)
			assert.Equal(t, gaas.Credits(3001), qe.Asked)
			assert.Equal(t, 3*gaas.Credit, qe.Remaining)
			assert.Equal(t, 3*gaas.Credit, f.balance(t, u.ID))
		})

		t.Run("above_the_maximum", func(t *testing.T) {
			u := f.user(t, gaas.MaxCredits)
			_, err := db.Quota.Grant(ctx, f.admin.ID, gaas.GrantRequest{UserID: u.ID, Delta: 1, Reason: "one more"})
			assertInvalid(t, err, "delta")
			_, err = db.Quota.Set(ctx, f.admin.ID, gaas.SetBalanceRequest{UserID: u.ID, Balance: gaas.MaxCredits + 1})
			assertInvalid(t, err, "balance")
			assert.Equal(t, gaas.MaxCredits, f.balance(t, u.ID))
		})

		t.Run("bad_input", func(t *testing.T) {
			u := f.user(t, 3*gaas.Credit)
			_, err := db.Quota.Grant(ctx, f.admin.ID, gaas.GrantRequest{UserID: u.ID, Delta: 0})
			assertInvalid(t, err, "delta")
			_, err = db.Quota.Set(ctx, f.admin.ID, gaas.SetBalanceRequest{UserID: u.ID, Balance: -1})
			assertInvalid(t, err, "balance")
			_, err = db.Quota.Grant(ctx, f.admin.ID, gaas.GrantRequest{UserID: u.ID, Delta: 1, Reason: strings.Repeat("r", gaas.ReasonMaxLen+1)})
			assertInvalid(t, err, "reason")
			assert.Equal(t, 3*gaas.Credit, f.balance(t, u.ID))
		})

		t.Run("admins_only", func(t *testing.T) {
			u := f.user(t, 3*gaas.Credit)
			_, err := db.Quota.Grant(ctx, u.ID, gaas.GrantRequest{UserID: u.ID, Delta: gaas.Credit, Reason: "myself"})
			assert.ErrorIs(t, err, gaas.ErrForbidden)
			_, err = db.Quota.Set(ctx, u.ID, gaas.SetBalanceRequest{UserID: u.ID, Balance: 100 * gaas.Credit, Reason: "myself"})
			assert.ErrorIs(t, err, gaas.ErrForbidden)
			_, err = db.Quota.Grant(ctx, f.admin.ID, gaas.GrantRequest{UserID: 987654, Delta: gaas.Credit, Reason: "nobody"})
			assert.ErrorIs(t, err, gaas.ErrNotFound)
			assert.Equal(t, 3*gaas.Credit, f.balance(t, u.ID))
		})

		t.Run("ledger_visibility", func(t *testing.T) {
			u, other := f.user(t, 3*gaas.Credit), f.user(t, 3*gaas.Credit)
			_, err := db.Quota.Ledger(ctx, other.ID, gaas.LedgerRequest{UserID: u.ID})
			assert.ErrorIs(t, err, gaas.ErrNotFound)
			_, err = db.Quota.Balance(ctx, other.ID, gaas.BalanceRequest{UserID: u.ID})
			assert.ErrorIs(t, err, gaas.ErrNotFound)
		})

		t.Run("ledger_pages_oldest_first_and_sums_to_the_balance", func(t *testing.T) {
			u := f.user(t, 10*gaas.Credit)
			for range 7 {
				f.submit(t, u.ID, 500)
			}
			var entries []gaas.LedgerEntry
			cursor := ""
			for {
				page, err := db.Quota.Ledger(ctx, u.ID, gaas.LedgerRequest{UserID: u.ID, Page: gaas.Page{Limit: 2, Cursor: cursor}})
				require.NoError(t, err)
				entries = append(entries, page.Items...)
				if cursor = page.NextCursor; cursor == "" {
					break
				}
			}
			require.Len(t, entries, 8) // the default grant, seven charges
			var sum gaas.Credits
			for i, e := range entries {
				sum += e.Delta
				assert.Equal(t, sum, e.Balance)
				if i > 0 {
					assert.Greater(t, e.ID, entries[i-1].ID)
				}
			}
			assert.Equal(t, f.balance(t, u.ID), sum)
		})
	})
}

// assertInvalid checks that err is a validation error naming field, in the
// library's words (the balance and the delta of Quota's methods), not in
// those of any transport.
func assertInvalid(t *testing.T, err error, field string) {
	t.Helper()
	var ve *gaas.ValidationError
	if assert.ErrorAs(t, err, &ve) {
		assert.Equal(t, field, ve.Fields[0].Field, "%v", err)
	}
}

// No balance passes gaas.MaxCredits, not even through the refund of a job
// submitted before an admin raised it: a Set or Grant that, with the credits
// the user's unfinished jobs hold, would pass it is refused and changes
// nothing.
func TestBalanceMaxWithReservations(t *testing.T) {
	ctx := context.Background()
	forEachStore(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		est := 2 * gaas.Hour
		cost := gaas.Credits(est) // at rate 1 on one GPU

		t.Run("set_then_reject", func(t *testing.T) {
			u := f.user(t, 10*gaas.Credit)
			j := f.submit(t, u.ID, est)
			_, err := db.Quota.Set(ctx, f.admin.ID, gaas.SetBalanceRequest{UserID: u.ID, Balance: gaas.MaxCredits, Reason: "as much as allowed"})
			var verr *gaas.ValidationError
			require.ErrorAs(t, err, &verr)
			assert.ErrorIs(t, err, gaas.ErrInvalid)
			assertInvalid(t, err, "balance")
			assert.Contains(t, err.Error(), "with the 2 credits that unfinished jobs hold")
			assert.Equal(t, 8*gaas.Credit, f.balance(t, u.ID), "a refused set changes nothing")

			got, err := db.Quota.Set(ctx, f.admin.ID, gaas.SetBalanceRequest{UserID: u.ID, Balance: gaas.MaxCredits - cost, Reason: "as much as allowed"})
			require.NoError(t, err)
			assert.Equal(t, gaas.MaxCredits-cost, got.Balance)
			_, err = db.Jobs.Transition(ctx, f.admin.ID, gaas.TransitionRequest{JobID: j.ID, To: gaas.StatusRejected})
			require.NoError(t, err)
			assert.Equal(t, gaas.MaxCredits, f.balance(t, u.ID), "the refund reaches the maximum, not past it")
		})

		t.Run("grant_then_cancel", func(t *testing.T) {
			u := f.user(t, gaas.MaxCredits-cost)
			j := f.submit(t, u.ID, est)
			// The balance may reach the maximum less the reservation...
			_, err := db.Quota.Grant(ctx, f.admin.ID, gaas.GrantRequest{UserID: u.ID, Delta: cost + 1, Reason: "top up"})
			require.ErrorIs(t, err, gaas.ErrInvalid)
			assertInvalid(t, err, "delta")
			assert.Equal(t, gaas.MaxCredits-2*cost, f.balance(t, u.ID))
			got, err := db.Quota.Grant(ctx, f.admin.ID, gaas.GrantRequest{UserID: u.ID, Delta: cost, Reason: "top up"})
			require.NoError(t, err)
			assert.Equal(t, gaas.MaxCredits-cost, got.Balance)
			// ...which the cancellation gives back.
			_, err = db.Jobs.Cancel(ctx, u.ID, gaas.CancelRequest{JobID: j.ID})
			require.NoError(t, err)
			assert.Equal(t, gaas.MaxCredits, f.balance(t, u.ID))
			_, err = db.Quota.Grant(ctx, f.admin.ID, gaas.GrantRequest{UserID: u.ID, Delta: 1, Reason: "one more"})
			require.ErrorIs(t, err, gaas.ErrInvalid)
			assert.Contains(t, err.Error(), "above the maximum")
		})

		t.Run("finished_jobs_hold_nothing", func(t *testing.T) {
			u := f.user(t, 10*gaas.Credit)
			f.reach(t, u, gaas.StatusCompleted)
			f.reach(t, u, gaas.StatusRejected)
			got, err := db.Quota.Set(ctx, f.admin.ID, gaas.SetBalanceRequest{UserID: u.ID, Balance: gaas.MaxCredits, Reason: "all"})
			require.NoError(t, err)
			assert.Equal(t, gaas.MaxCredits, got.Balance)
		})

		t.Run("lowering_is_allowed", func(t *testing.T) {
			u := f.user(t, gaas.MaxCredits-cost)
			f.submit(t, u.ID, est)
			got, err := db.Quota.Grant(ctx, f.admin.ID, gaas.GrantRequest{UserID: u.ID, Delta: -gaas.Credit, Reason: "less"})
			require.NoError(t, err)
			assert.Equal(t, gaas.MaxCredits-2*cost-gaas.Credit, got.Balance)
			got, err = db.Quota.Set(ctx, f.admin.ID, gaas.SetBalanceRequest{UserID: u.ID, Balance: gaas.Credit, Reason: "less"})
			require.NoError(t, err)
			assert.Equal(t, gaas.Credit, got.Balance)
		})
	})
}

// Admins raising a balance to the maximum while its owner submits and
// cancels jobs never take it past the maximum, at any moment: Check reads
// every balance the ledger recorded along the way (rule "balance-max").
func TestBalanceMaxConcurrent(t *testing.T) {
	seed := storetest.Seed(t)
	ctx := context.Background()
	forEachStore(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		u := f.user(t, gaas.MaxCredits-100*gaas.Credit)
		var wg sync.WaitGroup
		for w := range 4 {
			rnd := rand.New(rand.NewPCG(seed, uint64(w)))
			wg.Go(func() {
				for range 40 {
					switch {
					case w == 0: // the admin
						var err error
						if rnd.IntN(2) == 0 {
							_, err = db.Quota.Set(ctx, f.admin.ID, gaas.SetBalanceRequest{UserID: u.ID, Balance: gaas.MaxCredits - gaas.Credits(rnd.IntN(20))*gaas.Credit, Reason: "raise"})
						} else {
							_, err = db.Quota.Grant(ctx, f.admin.ID, gaas.GrantRequest{UserID: u.ID, Delta: gaas.Credits(1+rnd.IntN(20)) * gaas.Credit, Reason: "raise"})
						}
						if err != nil && !errors.Is(err, gaas.ErrInvalid) {
							t.Errorf("admin: %v", err)
						}
					default: // the owner
						j, err := db.Jobs.Submit(ctx, u.ID, gaas.SubmitRequest{Command: "x", GPUType: "A100", EstimatedHours: gaas.Hours(1+rnd.IntN(10)) * gaas.Hour})
						if errors.Is(err, gaas.ErrQuotaExceeded) {
							continue
						}
						if !assert.NoError(t, err) {
							return
						}
						if rnd.IntN(4) != 0 {
							_, err = db.Jobs.Cancel(ctx, u.ID, gaas.CancelRequest{JobID: j.ID})
							assert.NoError(t, err)
						}
					}
				}
			})
		}
		wg.Wait()
		assert.LessOrEqual(t, f.balance(t, u.ID), gaas.MaxCredits)
		// openStore's clean-up runs Check.
	})
}
