package store_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/gaas"
	"github.com/gaas-io/gaas/store"
)

func TestSubmit(t *testing.T) {
	ctx := context.Background()
	forEachStore(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)

		t.Run("charges_and_records_pending", func(t *testing.T) {
			u := f.user(t, 10*gaas.Credit)
			j, err := db.Jobs.Submit(ctx, u.ID, gaas.SubmitRequest{Command: "python train.py", GPUType: "NVIDIA A100", EstimatedHours: 2500})
			require.NoError(t, err)
			assert.Equal(t, u.ID, j.UserID)
			assert.Equal(t, gaas.StatusPending, j.Status)
			assert.Equal(t, gaas.Hours(2500), j.EstimatedHours)
			assert.Nil(t, j.ActualHours)
			assert.False(t, j.CreatedAt.IsZero())
			assert.Equal(t, 7500*gaas.MilliCredit, f.balance(t, u.ID))

			got, err := db.Jobs.Get(ctx, u.ID, gaas.GetJobRequest{JobID: j.ID})
			require.NoError(t, err)
			assert.Equal(t, j, got)

			led, err := db.Quota.Ledger(ctx, u.ID, gaas.LedgerRequest{UserID: u.ID})
			require.NoError(t, err)
			last := led.Items[len(led.Items)-1]
			assert.Equal(t, gaas.LedgerCharge, last.Kind)
			assert.Equal(t, gaas.Credits(-2500), last.Delta)
			assert.Equal(t, gaas.Credits(7500), last.Balance)
			require.NotNil(t, last.JobID)
			assert.Equal(t, j.ID, *last.JobID)
		})

		t.Run("insufficient_quota_writes_nothing", func(t *testing.T) {
			u := f.user(t, 2*gaas.Credit)
			_, err := db.Jobs.Submit(ctx, u.ID, gaas.SubmitRequest{Command: "x", GPUType: "A100", EstimatedHours: 2001})
			require.ErrorIs(t, err, gaas.ErrQuotaExceeded)
			var qe *gaas.QuotaError
			require.ErrorAs(t, err, &qe)
			assert.Equal(t, gaas.Credits(2001), qe.Asked)
			assert.Equal(t, 2*gaas.Credit, qe.Remaining)
			assert.Equal(t, "A100", qe.GPUType)
			assert.Contains(t, err.Error(), "asked for 2.001 credits, 2 left for GPU type A100")
			assert.Equal(t, 2*gaas.Credit, f.balance(t, u.ID))
			page, err := db.Jobs.List(ctx, u.ID, gaas.JobFilter{})
			require.NoError(t, err)
			assert.Empty(t, page.Items)
		})

		t.Run("whole_balance_can_be_spent", func(t *testing.T) {
			u := f.user(t, 3*gaas.Credit)
			f.submit(t, u.ID, 3*gaas.Hour)
			assert.Equal(t, gaas.Credits(0), f.balance(t, u.ID))
		})

		t.Run("unknown_caller", func(t *testing.T) {
			_, err := db.Jobs.Submit(ctx, 999999, gaas.SubmitRequest{Command: "x", GPUType: "A100", EstimatedHours: 1})
			assert.ErrorIs(t, err, gaas.ErrUnauthorized)
		})

		invalid := []struct {
			name  string
			req   gaas.SubmitRequest
			field string
		}{
			{"empty_command", gaas.SubmitRequest{GPUType: "A100", EstimatedHours: 1}, "command"},
			{"long_command", gaas.SubmitRequest{Command: strings.Repeat("é", 8193), GPUType: "A100", EstimatedHours: 1}, "command"},
			{"empty_gpu_type", gaas.SubmitRequest{Command: "x", EstimatedHours: 1}, "gpu_type"},
			{"long_gpu_type", gaas.SubmitRequest{Command: "x", GPUType: strings.Repeat("g", 129), EstimatedHours: 1}, "gpu_type"},
			{"zero_hours", gaas.SubmitRequest{Command: "x", GPUType: "A100"}, "estimated_hours"},
			{"negative_hours", gaas.SubmitRequest{Command: "x", GPUType: "A100", EstimatedHours: -1000}, "estimated_hours"},
			{"too_many_hours", gaas.SubmitRequest{Command: "x", GPUType: "A100", EstimatedHours: gaas.MaxHours + 1}, "estimated_hours"},
			{"invalid_utf8", gaas.SubmitRequest{Command: "\xff", GPUType: "A100", EstimatedHours: 1}, "command"},
			{"key_unprintable", gaas.SubmitRequest{Command: "x", GPUType: "A100", EstimatedHours: 1, IdempotencyKey: "a\nb"}, "idempotency_key"},
			{"key_too_long", gaas.SubmitRequest{Command: "x", GPUType: "A100", EstimatedHours: 1, IdempotencyKey: strings.Repeat("k", 256)}, "idempotency_key"},
		}
		for _, tc := range invalid {
			t.Run("invalid/"+tc.name, func(t *testing.T) {
				u := f.user(t, 10*gaas.Credit)
				_, err := db.Jobs.Submit(ctx, u.ID, tc.req)
				require.ErrorIs(t, err, gaas.ErrInvalid)
				var ve *gaas.ValidationError
				require.ErrorAs(t, err, &ve)
				assert.Equal(t, tc.field, ve.Fields[0].Field)
				assert.Equal(t, 10*gaas.Credit, f.balance(t, u.ID))
			})
		}

		t.Run("long_command_in_characters_is_fine", func(t *testing.T) {
			u := f.user(t, 10*gaas.Credit)
			j, err := db.Jobs.Submit(ctx, u.ID, gaas.SubmitRequest{Command: strings.Repeat("é", 8192), GPUType: "A100", EstimatedHours: 1})
			require.NoError(t, err)
			assert.Equal(t, strings.Repeat("é", 8192), j.Command)
		})
	})
}

// The original service kept hours as floats: 100 jobs of 0.1 h on a 10 h
// quota left 1.879e-14 h. Here they leave exactly zero, and the next is refused.
func TestSubmitHoursAreExact(t *testing.T) {
	forEachStore(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		u := f.user(t, 10*gaas.Credit)
		tenth, err := gaas.ParseHours("0.1")
		require.NoError(t, err)
		for range 100 {
			f.submit(t, u.ID, tenth)
		}
		assert.Equal(t, gaas.Credits(0), f.balance(t, u.ID))
		_, err = db.Jobs.Submit(context.Background(), u.ID, gaas.SubmitRequest{Command: "x", GPUType: "A100", EstimatedHours: tenth})
		assert.ErrorIs(t, err, gaas.ErrQuotaExceeded)

		// Granting 0.1 ten times and spending 1.0 leaves exactly zero too.
		for range 10 {
			_, err := db.Quota.Grant(context.Background(), f.admin.ID, gaas.GrantRequest{UserID: u.ID, Delta: gaas.Credits(tenth), Reason: "tenth"})
			require.NoError(t, err)
		}
		f.submit(t, u.ID, gaas.Hour)
		assert.Equal(t, gaas.Credits(0), f.balance(t, u.ID))
	})
}

// Sixty-four goroutines each ask for one hour of a ten-hour quota: exactly
// ten succeed, the rest are refused, and every charged hour has its job.
func TestSubmitConcurrent(t *testing.T) {
	forEachStore(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		u := f.user(t, 10*gaas.Credit)
		var (
			wg              sync.WaitGroup
			mu              sync.Mutex
			ok, refused     int
			unexpectedError []error
		)
		for i := range 64 {
			wg.Go(func() {
				_, err := db.Jobs.Submit(context.Background(), u.ID, gaas.SubmitRequest{
					Command: fmt.Sprintf("job %d", i), GPUType: "A100", EstimatedHours: gaas.Hour,
				})
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					ok++
				case errors.Is(err, gaas.ErrQuotaExceeded):
					refused++
				default:
					unexpectedError = append(unexpectedError, err)
				}
			})
		}
		wg.Wait()
		require.Empty(t, unexpectedError)
		assert.Equal(t, 10, ok)
		assert.Equal(t, 54, refused)
		assert.Equal(t, gaas.Credits(0), f.balance(t, u.ID))
		page, err := db.Jobs.List(context.Background(), u.ID, gaas.JobFilter{})
		require.NoError(t, err)
		assert.Len(t, page.Items, 10)
	})
}

func TestSubmitIdempotent(t *testing.T) {
	ctx := context.Background()
	forEachStore(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		req := gaas.SubmitRequest{Command: "python train.py", GPUType: "A100", EstimatedHours: 2 * gaas.Hour, IdempotencyKey: "key-1"}

		t.Run("retry_returns_first_job", func(t *testing.T) {
			u := f.user(t, 10*gaas.Credit)
			first, err := db.Jobs.Submit(ctx, u.ID, req)
			require.NoError(t, err)
			again, err := db.Jobs.Submit(ctx, u.ID, req)
			require.NoError(t, err)
			assert.Equal(t, first, again)
			assert.Equal(t, 8*gaas.Credit, f.balance(t, u.ID))
		})

		t.Run("retry_after_the_quota_ran_out_still_returns_the_job", func(t *testing.T) {
			u := f.user(t, 2*gaas.Credit)
			first, err := db.Jobs.Submit(ctx, u.ID, req)
			require.NoError(t, err)
			again, err := db.Jobs.Submit(ctx, u.ID, req)
			require.NoError(t, err)
			assert.Equal(t, first.ID, again.ID)
		})

		t.Run("same_key_different_request_conflicts", func(t *testing.T) {
			u := f.user(t, 10*gaas.Credit)
			_, err := db.Jobs.Submit(ctx, u.ID, req)
			require.NoError(t, err)
			other := req
			other.EstimatedHours = 3 * gaas.Hour
			_, err = db.Jobs.Submit(ctx, u.ID, other)
			require.ErrorIs(t, err, gaas.ErrConflict)
			assert.Equal(t, 8*gaas.Credit, f.balance(t, u.ID))
		})

		t.Run("keys_are_scoped_per_user", func(t *testing.T) {
			a, b := f.user(t, 10*gaas.Credit), f.user(t, 10*gaas.Credit)
			ja, err := db.Jobs.Submit(ctx, a.ID, req)
			require.NoError(t, err)
			jb, err := db.Jobs.Submit(ctx, b.ID, req)
			require.NoError(t, err)
			assert.NotEqual(t, ja.ID, jb.ID)
			assert.Equal(t, b.ID, jb.UserID)
		})

		t.Run("racing_retries_make_one_job", func(t *testing.T) {
			u := f.user(t, 10*gaas.Credit)
			ids := make([]int64, 32)
			errs := make([]error, 32)
			var wg sync.WaitGroup
			for i := range ids {
				wg.Go(func() {
					j, err := db.Jobs.Submit(ctx, u.ID, req)
					ids[i], errs[i] = j.ID, err
				})
			}
			wg.Wait()
			for i := range ids {
				require.NoError(t, errs[i])
				assert.Equal(t, ids[0], ids[i])
			}
			assert.Equal(t, 8*gaas.Credit, f.balance(t, u.ID))
		})
	})
}

// reach moves a fresh job of user u into status s along the lifecycle.
func (f *fixture) reach(t *testing.T, u gaas.User, s gaas.JobStatus) gaas.Job {
	t.Helper()
	path := map[gaas.JobStatus][]gaas.JobStatus{
		gaas.StatusPending:   nil,
		gaas.StatusApproved:  {gaas.StatusApproved},
		gaas.StatusRunning:   {gaas.StatusApproved, gaas.StatusRunning},
		gaas.StatusCompleted: {gaas.StatusApproved, gaas.StatusRunning, gaas.StatusCompleted},
		gaas.StatusFailed:    {gaas.StatusApproved, gaas.StatusRunning, gaas.StatusFailed},
		gaas.StatusRejected:  {gaas.StatusRejected},
		gaas.StatusCancelled: {gaas.StatusCancelled},
	}
	j := f.submit(t, u.ID, 2*gaas.Hour)
	for _, step := range path[s] {
		var err error
		j, err = f.db.Jobs.Transition(context.Background(), f.admin.ID, gaas.TransitionRequest{JobID: j.ID, To: step})
		require.NoError(t, err)
	}
	require.Equal(t, s, j.Status)
	return j
}

// Every pair of statuses, against the table of the API document.
func TestTransitionTable(t *testing.T) {
	forEachStore(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		allowed := map[[2]gaas.JobStatus]bool{}
		for from, tos := range gaas.Transitions() {
			for _, to := range tos {
				allowed[[2]gaas.JobStatus{from, to}] = true
			}
		}
		require.Len(t, allowed, 8)
		for _, from := range gaas.Statuses() {
			for _, to := range gaas.Statuses() {
				t.Run(string(from)+"_to_"+string(to), func(t *testing.T) {
					u := f.user(t, 10*gaas.Credit)
					j := f.reach(t, u, from)
					before := f.balance(t, u.ID)
					var actual *gaas.Hours
					if from == gaas.StatusRunning && to == gaas.StatusCancelled {
						h := gaas.Hour // a RUNNING job is cancelled with the hours it ran
						actual = &h
					}
					got, err := db.Jobs.Transition(context.Background(), f.admin.ID, gaas.TransitionRequest{JobID: j.ID, To: to, ActualHours: actual})
					switch {
					case from == to:
						require.NoError(t, err)
						assert.Equal(t, j, got, "same status is a no-op")
						assert.Equal(t, before, f.balance(t, u.ID))
					case allowed[[2]gaas.JobStatus{from, to}]:
						require.NoError(t, err)
						assert.Equal(t, to, got.Status)
						want := before
						switch {
						case actual != nil:
							want += j.Cost - gaas.Credit
						case to.RefundsAll():
							want += j.Cost
						}
						assert.Equal(t, want, f.balance(t, u.ID))
					default:
						require.ErrorIs(t, err, gaas.ErrInvalidTransition)
						var te *gaas.TransitionError
						require.ErrorAs(t, err, &te)
						assert.Equal(t, from, te.From)
						assert.Equal(t, before, f.balance(t, u.ID))
						stored, err := db.Jobs.Get(context.Background(), f.admin.ID, gaas.GetJobRequest{JobID: j.ID})
						require.NoError(t, err)
						assert.Equal(t, from, stored.Status)
					}
				})
			}
		}
	})
}

func TestTransition(t *testing.T) {
	ctx := context.Background()
	forEachStore(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)

		t.Run("completed_with_actual_hours_refunds_the_difference", func(t *testing.T) {
			u := f.user(t, 10*gaas.Credit)
			j := f.reach(t, u, gaas.StatusRunning)
			got, err := db.Jobs.Transition(ctx, f.admin.ID, gaas.TransitionRequest{JobID: j.ID, To: gaas.StatusCompleted, ActualHours: hoursPtr(1250)})
			require.NoError(t, err)
			require.NotNil(t, got.ActualHours)
			assert.Equal(t, gaas.Hours(1250), *got.ActualHours)
			assert.Equal(t, gaas.Credits(8000+750), f.balance(t, u.ID))
		})

		t.Run("failed_with_zero_actual_hours_refunds_all", func(t *testing.T) {
			u := f.user(t, 10*gaas.Credit)
			j := f.reach(t, u, gaas.StatusRunning)
			_, err := db.Jobs.Transition(ctx, f.admin.ID, gaas.TransitionRequest{JobID: j.ID, To: gaas.StatusFailed, ActualHours: hoursPtr(0)})
			require.NoError(t, err)
			assert.Equal(t, 10*gaas.Credit, f.balance(t, u.ID))
		})

		t.Run("rejected_with_a_reason_keeps_it", func(t *testing.T) {
			u := f.user(t, 10*gaas.Credit)
			j := f.reach(t, u, gaas.StatusPending)
			_, err := db.Jobs.Transition(ctx, f.admin.ID, gaas.TransitionRequest{JobID: j.ID, To: gaas.StatusApproved, Reason: "fine"})
			require.ErrorIs(t, err, gaas.ErrInvalid, "a reason is for a rejection")
			_, err = db.Jobs.Transition(ctx, f.admin.ID, gaas.TransitionRequest{JobID: j.ID, To: gaas.StatusRejected, Reason: "bad\x00reason"})
			require.ErrorIs(t, err, gaas.ErrInvalid)
			got, err := db.Jobs.Transition(ctx, f.admin.ID, gaas.TransitionRequest{JobID: j.ID, To: gaas.StatusRejected, Reason: "asks for more GPUs than the project has"})
			require.NoError(t, err)
			assert.Equal(t, "asks for more GPUs than the project has", got.EndReason)
			got, err = db.Jobs.Get(ctx, u.ID, gaas.GetJobRequest{JobID: j.ID})
			require.NoError(t, err)
			assert.Equal(t, "asks for more GPUs than the project has", got.EndReason, "its owner reads it")
			assert.Equal(t, 10*gaas.Credit, f.balance(t, u.ID))
		})

		t.Run("completed_without_actual_hours_keeps_the_charge", func(t *testing.T) {
			u := f.user(t, 10*gaas.Credit)
			j := f.reach(t, u, gaas.StatusRunning)
			got, err := db.Jobs.Transition(ctx, f.admin.ID, gaas.TransitionRequest{JobID: j.ID, To: gaas.StatusCompleted})
			require.NoError(t, err)
			assert.Nil(t, got.ActualHours)
			assert.Equal(t, 8*gaas.Credit, f.balance(t, u.ID))
		})

		t.Run("actual_hours_above_estimate", func(t *testing.T) {
			u := f.user(t, 10*gaas.Credit)
			j := f.reach(t, u, gaas.StatusRunning)
			_, err := db.Jobs.Transition(ctx, f.admin.ID, gaas.TransitionRequest{JobID: j.ID, To: gaas.StatusCompleted, ActualHours: hoursPtr(2001)})
			require.ErrorIs(t, err, gaas.ErrInvalid)
			got, err := db.Jobs.Get(ctx, u.ID, gaas.GetJobRequest{JobID: j.ID})
			require.NoError(t, err)
			assert.Equal(t, gaas.StatusRunning, got.Status)
		})

		t.Run("actual_hours_with_another_status", func(t *testing.T) {
			u := f.user(t, 10*gaas.Credit)
			j := f.reach(t, u, gaas.StatusPending)
			_, err := db.Jobs.Transition(ctx, f.admin.ID, gaas.TransitionRequest{JobID: j.ID, To: gaas.StatusApproved, ActualHours: hoursPtr(1)})
			require.ErrorIs(t, err, gaas.ErrInvalid)
		})

		t.Run("negative_actual_hours", func(t *testing.T) {
			u := f.user(t, 10*gaas.Credit)
			j := f.reach(t, u, gaas.StatusRunning)
			_, err := db.Jobs.Transition(ctx, f.admin.ID, gaas.TransitionRequest{JobID: j.ID, To: gaas.StatusCompleted, ActualHours: hoursPtr(-1)})
			require.ErrorIs(t, err, gaas.ErrInvalid)
		})

		t.Run("unknown_status", func(t *testing.T) {
			u := f.user(t, 10*gaas.Credit)
			j := f.reach(t, u, gaas.StatusPending)
			_, err := db.Jobs.Transition(ctx, f.admin.ID, gaas.TransitionRequest{JobID: j.ID, To: "DONE"})
			require.ErrorIs(t, err, gaas.ErrInvalid)
		})

		t.Run("not_an_admin", func(t *testing.T) {
			u := f.user(t, 10*gaas.Credit)
			j := f.reach(t, u, gaas.StatusPending)
			_, err := db.Jobs.Transition(ctx, u.ID, gaas.TransitionRequest{JobID: j.ID, To: gaas.StatusApproved})
			require.ErrorIs(t, err, gaas.ErrForbidden)
		})

		t.Run("missing_job", func(t *testing.T) {
			_, err := db.Jobs.Transition(ctx, f.admin.ID, gaas.TransitionRequest{JobID: 424242, To: gaas.StatusApproved})
			require.ErrorIs(t, err, gaas.ErrNotFound)
		})

		t.Run("demoted_admin_loses_rights_at_once", func(t *testing.T) {
			u := f.user(t, 10*gaas.Credit)
			other, err := db.Accounts.EnsureAdmin(ctx, fmt.Sprintf("admin%d", u.ID), "unused-hash", false)
			require.NoError(t, err)
			j := f.reach(t, u, gaas.StatusPending)
			_, err = db.Users.SetRole(ctx, f.admin.ID, gaas.SetRoleRequest{UserID: other.ID, Role: gaas.RoleUser})
			require.NoError(t, err)
			_, err = db.Jobs.Transition(ctx, other.ID, gaas.TransitionRequest{JobID: j.ID, To: gaas.StatusApproved})
			require.ErrorIs(t, err, gaas.ErrForbidden)
		})
	})
}

// Sixteen admins' requests race to end one job: exactly one refund.
func TestTransitionConcurrent(t *testing.T) {
	ctx := context.Background()
	forEachStore(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		for _, to := range []gaas.JobStatus{gaas.StatusRejected, gaas.StatusCancelled} {
			t.Run(string(to), func(t *testing.T) {
				u := f.user(t, 10*gaas.Credit)
				j := f.reach(t, u, gaas.StatusPending)
				var wg sync.WaitGroup
				errs := make([]error, 16)
				for i := range errs {
					wg.Go(func() {
						if i%2 == 0 {
							_, errs[i] = db.Jobs.Transition(ctx, f.admin.ID, gaas.TransitionRequest{JobID: j.ID, To: to})
						} else {
							_, errs[i] = db.Jobs.Cancel(ctx, u.ID, gaas.CancelRequest{JobID: j.ID})
						}
					})
				}
				wg.Wait()
				for _, err := range errs {
					if err != nil {
						require.ErrorIs(t, err, gaas.ErrInvalidTransition, "only the loser of a reject/cancel race may fail")
					}
				}
				assert.Equal(t, 10*gaas.Credit, f.balance(t, u.ID))
				led, err := db.Quota.Ledger(ctx, u.ID, gaas.LedgerRequest{UserID: u.ID})
				require.NoError(t, err)
				refunds := 0
				for _, e := range led.Items {
					if e.Kind == gaas.LedgerRefund {
						refunds++
					}
				}
				assert.Equal(t, 1, refunds)
			})
		}
	})
}

func TestCancel(t *testing.T) {
	ctx := context.Background()
	forEachStore(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		for _, from := range []gaas.JobStatus{gaas.StatusPending, gaas.StatusApproved} {
			t.Run("owner_from_"+string(from), func(t *testing.T) {
				u := f.user(t, 10*gaas.Credit)
				j := f.reach(t, u, from)
				got, err := db.Jobs.Cancel(ctx, u.ID, gaas.CancelRequest{JobID: j.ID})
				require.NoError(t, err)
				assert.Equal(t, gaas.StatusCancelled, got.Status)
				assert.Equal(t, 10*gaas.Credit, f.balance(t, u.ID))
				again, err := db.Jobs.Cancel(ctx, u.ID, gaas.CancelRequest{JobID: j.ID})
				require.NoError(t, err, "cancelling twice is a safe retry")
				assert.Equal(t, got, again)
				assert.Equal(t, 10*gaas.Credit, f.balance(t, u.ID))
			})
		}
		t.Run("admin", func(t *testing.T) {
			u := f.user(t, 10*gaas.Credit)
			j := f.reach(t, u, gaas.StatusPending)
			_, err := db.Jobs.Cancel(ctx, f.admin.ID, gaas.CancelRequest{JobID: j.ID})
			require.NoError(t, err)
			assert.Equal(t, 10*gaas.Credit, f.balance(t, u.ID))
		})
		t.Run("someone_else_is_told_it_does_not_exist", func(t *testing.T) {
			u, other := f.user(t, 10*gaas.Credit), f.user(t, 10*gaas.Credit)
			j := f.reach(t, u, gaas.StatusPending)
			_, err := db.Jobs.Cancel(ctx, other.ID, gaas.CancelRequest{JobID: j.ID})
			require.ErrorIs(t, err, gaas.ErrNotFound)
			assert.Equal(t, 8*gaas.Credit, f.balance(t, u.ID))
		})
		t.Run("running_job", func(t *testing.T) {
			u := f.user(t, 10*gaas.Credit)
			j := f.reach(t, u, gaas.StatusRunning)
			_, err := db.Jobs.Cancel(ctx, u.ID, gaas.CancelRequest{JobID: j.ID})
			require.ErrorIs(t, err, gaas.ErrInvalidTransition)
			assert.ErrorContains(t, err, "move job "+strconv.FormatInt(j.ID, 10)+" to CANCELLED: gaas: invalid status transition: "+
				"RUNNING cannot move to CANCELLED: no executor runs it, so an admin cancels it with actual_hours, the hours it ran")
			assert.Equal(t, 8*gaas.Credit, f.balance(t, u.ID))
		})
	})
}

func TestGetAndList(t *testing.T) {
	ctx := context.Background()
	forEachStore(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		a, b := f.user(t, 100*gaas.Credit), f.user(t, 100*gaas.Credit)
		ja := f.submit(t, a.ID, gaas.Hour)
		jb := f.submit(t, b.ID, gaas.Hour)
		jb2 := f.reach(t, b, gaas.StatusApproved)

		t.Run("owner_and_admin_see_a_job", func(t *testing.T) {
			_, err := db.Jobs.Get(ctx, a.ID, gaas.GetJobRequest{JobID: ja.ID})
			require.NoError(t, err)
			_, err = db.Jobs.Get(ctx, f.admin.ID, gaas.GetJobRequest{JobID: ja.ID})
			require.NoError(t, err)
		})
		t.Run("others_are_told_it_does_not_exist", func(t *testing.T) {
			_, err := db.Jobs.Get(ctx, b.ID, gaas.GetJobRequest{JobID: ja.ID})
			require.ErrorIs(t, err, gaas.ErrNotFound)
		})
		t.Run("a_user_lists_their_own_newest_first", func(t *testing.T) {
			page, err := db.Jobs.List(ctx, b.ID, gaas.JobFilter{})
			require.NoError(t, err)
			require.Len(t, page.Items, 2)
			assert.Equal(t, jb2.ID, page.Items[0].ID)
			assert.Equal(t, jb.ID, page.Items[1].ID)
			assert.Empty(t, page.NextCursor)
		})
		t.Run("an_admin_lists_everyone", func(t *testing.T) {
			page, err := db.Jobs.List(ctx, f.admin.ID, gaas.JobFilter{})
			require.NoError(t, err)
			assert.Len(t, page.Items, 3)
			page, err = db.Jobs.List(ctx, f.admin.ID, gaas.JobFilter{UserID: a.ID})
			require.NoError(t, err)
			require.Len(t, page.Items, 1)
			assert.Equal(t, ja.ID, page.Items[0].ID)
		})
		t.Run("status_filter", func(t *testing.T) {
			page, err := db.Jobs.List(ctx, f.admin.ID, gaas.JobFilter{Status: gaas.StatusApproved})
			require.NoError(t, err)
			require.Len(t, page.Items, 1)
			assert.Equal(t, jb2.ID, page.Items[0].ID)
		})
		t.Run("a_user_cannot_name_another", func(t *testing.T) {
			_, err := db.Jobs.List(ctx, a.ID, gaas.JobFilter{UserID: b.ID})
			require.ErrorIs(t, err, gaas.ErrForbidden)
		})
		t.Run("bad_filters", func(t *testing.T) {
			for _, f := range []gaas.JobFilter{
				{Status: "DONE"}, {Page: gaas.Page{Limit: 501}}, {Page: gaas.Page{Limit: -1}},
				{Page: gaas.Page{Cursor: "not-a-cursor"}}, {UserID: -3},
			} {
				_, err := db.Jobs.List(ctx, a.ID, f)
				assert.ErrorIs(t, err, gaas.ErrInvalid, "%+v", f)
			}
		})
	})
}

// Paging newest first neither skips nor repeats a job while new jobs arrive.
func TestListPagingWhileJobsArrive(t *testing.T) {
	ctx := context.Background()
	forEachStore(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		u := f.user(t, 1000*gaas.Credit)
		var want []int64
		for range 20 {
			want = append([]int64{f.submit(t, u.ID, gaas.Hour).ID}, want...)
		}
		var got []int64
		cursor := ""
		for {
			page, err := db.Jobs.List(ctx, u.ID, gaas.JobFilter{Page: gaas.Page{Limit: 3, Cursor: cursor}})
			require.NoError(t, err)
			for _, j := range page.Items {
				got = append(got, j.ID)
			}
			f.submit(t, u.ID, gaas.Hour) // newer than anything paged so far
			if page.NextCursor == "" {
				break
			}
			cursor = page.NextCursor
		}
		assert.Equal(t, want, got)
	})
}

// TestListJobsFilters: gpu_type matches exactly; since includes a job made
// at that instant, until excludes it, whatever zone the bound is given in
// and with fractions of a second; filters combine with each other and with
// paging.
func TestListJobsFilters(t *testing.T) {
	ctx := context.Background()
	forEachBackend(t, func(t *testing.T, b backend) {
		t0 := time.Date(2026, 11, 28, 17, 0, 0, 0, time.UTC)
		var now atomic.Int64
		now.Store(t0.UnixNano())
		db := openStore(t, b.dsn(t), store.Options{Now: func() time.Time { return time.Unix(0, now.Load()) }})
		f := newFixture(t, db)
		u := f.user(t, 100*gaas.Credit)
		made := map[string]int64{}
		for _, j := range []struct {
			name, gpu string
			at        time.Duration
		}{
			{"a", "A100", 0},
			{"b", "H100", 1500 * time.Millisecond},
			{"c", "A100", time.Hour},
			{"d", "a100", 2 * time.Hour},
		} {
			now.Store(t0.Add(j.at).UnixNano())
			job, err := db.Jobs.Submit(ctx, u.ID, gaas.SubmitRequest{Command: j.name, GPUType: j.gpu, EstimatedHours: gaas.Hour})
			require.NoError(t, err)
			made[j.name] = job.ID
		}
		east := time.FixedZone("east", 2*60*60)
		for _, c := range []struct {
			name string
			f    gaas.JobFilter
			want []string // newest first
		}{
			{"all", gaas.JobFilter{}, []string{"d", "c", "b", "a"}},
			{"gpu_exact", gaas.JobFilter{GPUType: "A100"}, []string{"c", "a"}},
			{"gpu_none", gaas.JobFilter{GPUType: "A10"}, nil},
			{"since_inclusive", gaas.JobFilter{Since: t0.Add(time.Hour)}, []string{"d", "c"}},
			{"until_exclusive", gaas.JobFilter{Until: t0.Add(time.Hour)}, []string{"b", "a"}},
			{"fraction_since", gaas.JobFilter{Since: t0.Add(1500 * time.Millisecond)}, []string{"d", "c", "b"}},
			{"fraction_until", gaas.JobFilter{Until: t0.Add(1500 * time.Millisecond)}, []string{"a"}},
			{"just_after", gaas.JobFilter{Since: t0.Add(1500*time.Millisecond + time.Microsecond)}, []string{"d", "c"}},
			{"other_zone", gaas.JobFilter{Since: t0.Add(time.Hour).In(east), Until: t0.Add(2 * time.Hour).In(east)}, []string{"c"}},
			{"empty_window", gaas.JobFilter{Since: t0.Add(time.Hour), Until: t0.Add(time.Hour)}, nil},
			{"combined", gaas.JobFilter{GPUType: "A100", Since: t0.Add(time.Second), Status: gaas.StatusPending, UserID: u.ID}, []string{"c"}},
		} {
			t.Run(c.name, func(t *testing.T) {
				var got []int64
				c.f.Limit = 1
				for {
					page, err := db.Jobs.List(ctx, f.admin.ID, c.f)
					require.NoError(t, err)
					for _, j := range page.Items {
						got = append(got, j.ID)
					}
					if c.f.Cursor = page.NextCursor; c.f.Cursor == "" {
						break
					}
				}
				var want []int64
				for _, n := range c.want {
					want = append(want, made[n])
				}
				assert.Equal(t, want, got)
			})
		}
	})
}
