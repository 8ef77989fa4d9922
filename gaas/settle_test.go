package gaas_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/gaas"
)

func hours(h gaas.Hours) *gaas.Hours { return &h }

// atRateOne is the price of a job of est hours on one GPU at rate 1: its
// numbers in credits are its numbers in hours.
func atRateOne(est gaas.Hours) gaas.Price {
	return gaas.Price{Estimate: est, GPUs: 1, Rate: gaas.RateOne}
}

// TestSettle is the rule of refunds, move by move, on a job whose estimate
// is 6 hours on one GPU at rate 1.
func TestSettle(t *testing.T) {
	const (
		est  = 6 * gaas.Hour
		cost = 6 * gaas.Credit
	)
	cases := []struct {
		name     string
		from, to gaas.JobStatus
		actual   *gaas.Hours
		refund   gaas.Credits
		err      error
	}{
		{"approve", gaas.StatusPending, gaas.StatusApproved, nil, 0, nil},
		{"reject_refunds_all", gaas.StatusPending, gaas.StatusRejected, nil, cost, nil},
		{"cancel_pending_refunds_all", gaas.StatusPending, gaas.StatusCancelled, nil, cost, nil},
		{"cancel_approved_refunds_all", gaas.StatusApproved, gaas.StatusCancelled, nil, cost, nil},
		{"start", gaas.StatusApproved, gaas.StatusRunning, nil, 0, nil},
		{"complete_without_actual_keeps_the_charge", gaas.StatusRunning, gaas.StatusCompleted, nil, 0, nil},
		{"complete_early_refunds_the_rest", gaas.StatusRunning, gaas.StatusCompleted, hours(2500), cost - 2500, nil},
		{"fail_early_refunds_the_rest", gaas.StatusRunning, gaas.StatusFailed, hours(0), cost, nil},
		{"complete_on_the_estimate", gaas.StatusRunning, gaas.StatusCompleted, hours(est), 0, nil},
		{"actual_above_the_estimate", gaas.StatusRunning, gaas.StatusCompleted, hours(est + 1), 0, gaas.ErrInvalid},
		{"negative_actual", gaas.StatusRunning, gaas.StatusFailed, hours(-1), 0, gaas.ErrInvalid},
		{"actual_for_a_status_that_takes_none", gaas.StatusPending, gaas.StatusRejected, hours(1000), 0, gaas.ErrInvalid},
		{"unknown_status", gaas.StatusPending, "DONE", nil, 0, gaas.ErrInvalid},
		{"skip_a_step", gaas.StatusPending, gaas.StatusRunning, nil, 0, gaas.ErrInvalidTransition},
		{"leave_a_final_status", gaas.StatusCancelled, gaas.StatusPending, nil, 0, gaas.ErrInvalidTransition},
		{"cancel_running_without_its_hours", gaas.StatusRunning, gaas.StatusCancelled, nil, 0, gaas.ErrInvalidTransition},
		{"running_back_to_approved", gaas.StatusRunning, gaas.StatusApproved, nil, 0, gaas.ErrInvalidTransition},
		{"retry_refunds_nothing_twice", gaas.StatusRejected, gaas.StatusRejected, nil, 0, nil},
		{"retry_with_actual_refunds_nothing_twice", gaas.StatusCompleted, gaas.StatusCompleted, hours(1000), 0, nil},
		{"retry_still_checks_actual", gaas.StatusCompleted, gaas.StatusCompleted, hours(-1), 0, gaas.ErrInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			refund, err := gaas.Settle(gaas.Move{Price: atRateOne(est), From: tc.from, To: tc.to, Actual: tc.actual})
			if tc.err != nil {
				assert.ErrorIs(t, err, tc.err)
				return
			}
			assert.NoError(t, err)
			assert.Equal(t, tc.refund, refund)
		})
	}
}

// Every move the lifecycle allows, from a non-final status, refunds what
// SettlementOf says the new status has refunded in all: Check reads one,
// the store writes the other. At any price.
func TestSettleAgreesWithSettlementOf(t *testing.T) {
	const est = 4 * gaas.Hour
	for _, p := range []gaas.Price{
		atRateOne(est),
		{Estimate: est, GPUs: 8, Rate: 2500},
		{Estimate: est, GPUs: 3, Rate: 333},
		{Estimate: est, GPUs: 7, Rate: 1},
	} {
		cost, ok := gaas.Cost(p.Estimate, p.GPUs, p.Rate)
		require.True(t, ok)
		for from, tos := range gaas.Transitions() {
			for _, to := range tos {
				for _, actual := range []*gaas.Hours{nil, hours(0), hours(1), hours(1500), hours(est)} {
					if actual != nil && !to.TakesActualHours() {
						continue
					}
					if to == gaas.StatusCancelled && (from == gaas.StatusRunning) != (actual != nil) {
						continue // a RUNNING job is cancelled with the hours it ran, any other without
					}
					refund, err := gaas.Settle(gaas.Move{Price: p, From: from, To: to, Actual: actual})
					assert.NoError(t, err)
					s, err := gaas.SettlementOf(p, to, actual)
					assert.NoError(t, err)
					assert.Equal(t, s.Refunded, refund, "%+v: %s -> %s", p, from, to)
					assert.Equal(t, cost, s.Charged+s.Refunded, "%+v", p)
				}
			}
		}
	}
}

// A RUNNING job is cancelled with the hours it ran, and only a RUNNING job.
func TestSettleCancel(t *testing.T) {
	p := atRateOne(4 * gaas.Hour)
	refund, err := gaas.Settle(gaas.Move{Price: p, From: gaas.StatusRunning, To: gaas.StatusCancelled, Actual: hours(1500)})
	require.NoError(t, err)
	assert.Equal(t, 4*gaas.Credit-1500, refund)
	_, err = gaas.Settle(gaas.Move{Price: p, From: gaas.StatusRunning, To: gaas.StatusCancelled})
	assert.ErrorContains(t, err, "RUNNING cannot move to CANCELLED: a RUNNING job is cancelled with actual_hours, the hours it ran")
	for _, from := range []gaas.JobStatus{gaas.StatusPending, gaas.StatusApproved} {
		_, err = gaas.Settle(gaas.Move{Price: p, From: from, To: gaas.StatusCancelled, Actual: hours(0)})
		assert.ErrorContains(t, err, "may be given to cancel only a RUNNING job", from)
		refund, err = gaas.Settle(gaas.Move{Price: p, From: from, To: gaas.StatusCancelled})
		require.NoError(t, err)
		assert.Equal(t, 4*gaas.Credit, refund, from)
	}
}

// TestSettlementOf is what a job in each state stands charged and refunded.
func TestSettlementOf(t *testing.T) {
	const (
		est  = 3 * gaas.Hour
		cost = 3 * gaas.Credit
	)
	cases := []struct {
		status gaas.JobStatus
		actual *gaas.Hours
		want   gaas.Settlement
		err    error
	}{
		{gaas.StatusPending, nil, gaas.Settlement{Charged: cost}, nil},
		{gaas.StatusApproved, nil, gaas.Settlement{Charged: cost}, nil},
		{gaas.StatusRunning, nil, gaas.Settlement{Charged: cost}, nil},
		{gaas.StatusCompleted, nil, gaas.Settlement{Charged: cost}, nil},
		{gaas.StatusCompleted, hours(1000), gaas.Settlement{Charged: 1000, Refunded: cost - 1000}, nil},
		{gaas.StatusFailed, hours(0), gaas.Settlement{Refunded: cost}, nil},
		{gaas.StatusRejected, nil, gaas.Settlement{Refunded: cost}, nil},
		{gaas.StatusCancelled, nil, gaas.Settlement{Refunded: cost}, nil},
		{gaas.StatusCancelled, hours(1000), gaas.Settlement{Charged: 1000, Refunded: cost - 1000}, nil},
		{gaas.StatusRejected, hours(1000), gaas.Settlement{}, gaas.ErrInvalid},
		{gaas.StatusRunning, hours(1000), gaas.Settlement{}, gaas.ErrInvalid},
		{gaas.StatusCompleted, hours(est + 1), gaas.Settlement{}, gaas.ErrInvalid},
		{gaas.StatusFailed, hours(-1), gaas.Settlement{}, gaas.ErrInvalid},
		{"LOST", nil, gaas.Settlement{}, gaas.ErrInvalid},
	}
	for _, tc := range cases {
		got, err := gaas.SettlementOf(atRateOne(est), tc.status, tc.actual)
		if tc.err != nil {
			assert.ErrorIs(t, err, tc.err, "%s", tc.status)
			continue
		}
		assert.NoError(t, err)
		assert.Equal(t, tc.want, got, "%s", tc.status)
	}
}

// A job is settled at its price: its GPUs and rate multiply what it is
// charged and given back, and a price that cannot be charged settles
// nothing.
func TestSettlementAtAPrice(t *testing.T) {
	p := gaas.Price{Estimate: 3 * gaas.Hour, GPUs: 4, Rate: 2500} // 30 credits
	cases := []struct {
		status gaas.JobStatus
		actual *gaas.Hours
		want   gaas.Settlement
	}{
		{gaas.StatusRunning, nil, gaas.Settlement{Charged: 30 * gaas.Credit}},
		{gaas.StatusCancelled, nil, gaas.Settlement{Refunded: 30 * gaas.Credit}},
		{gaas.StatusCompleted, hours(gaas.Hour), gaas.Settlement{Charged: 10 * gaas.Credit, Refunded: 20 * gaas.Credit}},
		{gaas.StatusFailed, hours(1), gaas.Settlement{Charged: 10, Refunded: 30*gaas.Credit - 10}},
	}
	for _, tc := range cases {
		got, err := gaas.SettlementOf(p, tc.status, tc.actual)
		require.NoError(t, err)
		assert.Equal(t, tc.want, got, "%s", tc.status)
	}

	// A milli-hour at a thousandth of a credit per GPU-hour costs a
	// millionth of a credit, charged as a milli-credit; none of it is
	// used when the job takes no time.
	tiny := gaas.Price{Estimate: 1, GPUs: 1, Rate: 1}
	got, err := gaas.SettlementOf(tiny, gaas.StatusCompleted, hours(0))
	require.NoError(t, err)
	assert.Equal(t, gaas.Settlement{Refunded: 1}, got)
	got, err = gaas.SettlementOf(tiny, gaas.StatusCompleted, hours(1))
	require.NoError(t, err)
	assert.Equal(t, gaas.Settlement{Charged: 1}, got)

	for _, bad := range []gaas.Price{
		{Estimate: gaas.MaxHours, GPUs: gaas.MaxGPUsPerJob, Rate: gaas.MaxRate},
		{Estimate: gaas.Hour, GPUs: 1, Rate: 0},
		{Estimate: gaas.Hour, GPUs: -1, Rate: gaas.RateOne},
		{Estimate: -gaas.Hour, GPUs: 1, Rate: gaas.RateOne},
	} {
		_, err := gaas.SettlementOf(bad, gaas.StatusPending, nil)
		assert.ErrorIs(t, err, gaas.ErrInvalid, "%+v", bad)
		_, err = gaas.Settle(gaas.Move{Price: bad, From: gaas.StatusPending, To: gaas.StatusRejected})
		assert.ErrorIs(t, err, gaas.ErrInvalid, "%+v", bad)
	}
}

// TestSettlementProperty: for any price that can be charged and any
// actual hours up to the estimate, a job that finishes is charged exactly
// the Cost of its actual hours and given back the rest of the Cost of its
// estimate, so rounding neither creates nor loses a milli-credit; and the
// move that finishes it refunds just that.
func TestSettlementProperty(t *testing.T) {
	r := seed(t)
	for n := 0; n < 20_000; {
		p := gaas.Price{
			Estimate: gaas.Hours(upTo(r, int64(gaas.MaxHours))),
			GPUs:     1 + int(upTo(r, gaas.MaxGPUsPerJob-1)),
			Rate:     gaas.Rate(1 + upTo(r, int64(gaas.MaxRate)-1)),
		}
		cost, ok := gaas.Cost(p.Estimate, p.GPUs, p.Rate)
		if !ok {
			continue
		}
		n++
		actual := gaas.Hours(r.Int64N(int64(p.Estimate) + 1))
		used, ok := gaas.Cost(actual, p.GPUs, p.Rate)
		require.True(t, ok)
		to := gaas.StatusCompleted
		if r.IntN(2) == 0 {
			to = gaas.StatusFailed
		}
		s, err := gaas.SettlementOf(p, to, &actual)
		require.NoError(t, err)
		if s.Charged+s.Refunded != cost || s.Charged != used || s.Refunded < 0 {
			t.Fatalf("%+v, %s after %s hours: %+v; want charged %s of %s", p, to, actual, s, used, cost)
		}
		refund, err := gaas.Settle(gaas.Move{Price: p, From: gaas.StatusRunning, To: to, Actual: &actual})
		require.NoError(t, err)
		if refund != cost-used {
			t.Fatalf("%+v, RUNNING -> %s after %s hours refunds %s; want %s", p, to, actual, refund, cost-used)
		}
	}
}
