package gaas_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

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
		{"cancel_running", gaas.StatusRunning, gaas.StatusCancelled, nil, 0, gaas.ErrInvalidTransition},
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
// the store writes the other.
func TestSettleAgreesWithSettlementOf(t *testing.T) {
	const est = 4 * gaas.Hour
	for from, tos := range gaas.Transitions() {
		for _, to := range tos {
			for _, actual := range []*gaas.Hours{nil, hours(0), hours(1500), hours(est)} {
				if actual != nil && !to.TakesActualHours() {
					continue
				}
				refund, err := gaas.Settle(gaas.Move{Price: atRateOne(est), From: from, To: to, Actual: actual})
				assert.NoError(t, err)
				s, err := gaas.SettlementOf(atRateOne(est), to, actual)
				assert.NoError(t, err)
				assert.Equal(t, s.Refunded, refund, "%s -> %s", from, to)
				assert.Equal(t, gaas.CreditsOf(est), s.Charged+s.Refunded)
			}
		}
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
		{gaas.StatusCancelled, hours(1000), gaas.Settlement{}, gaas.ErrInvalid},
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
