package store_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/gaas"
	"github.com/gaas-io/gaas/store"
)

// recorder is an Observer that keeps what it hears.
type recorder struct {
	mu        sync.Mutex
	submitted []gaas.Job
	refused   []gaas.Credits
	moves     []string
	refunded  gaas.Credits
	batched   int
}

func (r *recorder) JobSubmitted(j gaas.Job) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.submitted = append(r.submitted, j)
}

func (r *recorder) QuotaExceeded(asked gaas.Credits) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.refused = append(r.refused, asked)
}

func (r *recorder) JobMoved(from, to gaas.JobStatus, refund gaas.Credits) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.moves = append(r.moves, string(from)+">"+string(to))
	r.refunded += refund
}

func (r *recorder) BatchCommitted(n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.batched += n
}

func TestObserverHearsWhatWasCommitted(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		rec := &recorder{}
		db := openStore(t, b.dsn(t), store.Options{Observer: rec})
		f := newFixture(t, db)
		ctx := context.Background()
		u := f.user(t, 3*gaas.Credit)

		keyed := gaas.SubmitRequest{Command: "a", GPUType: "g", EstimatedHours: gaas.Hour, IdempotencyKey: "k1"}
		first, err := db.Jobs.Submit(ctx, u.ID, keyed)
		require.NoError(t, err)
		again, err := db.Jobs.Submit(ctx, u.ID, keyed) // a retry: not a new job
		require.NoError(t, err)
		require.Equal(t, first.ID, again.ID)
		second := f.submit(t, u.ID, 2*gaas.Hour)
		_, err = db.Jobs.Submit(ctx, u.ID, gaas.SubmitRequest{Command: "a", GPUType: "g", EstimatedHours: 500})
		require.True(t, errors.Is(err, gaas.ErrQuotaExceeded), "%v", err)

		_, err = db.Jobs.Transition(ctx, f.admin.ID, gaas.TransitionRequest{JobID: first.ID, To: gaas.StatusRejected})
		require.NoError(t, err)
		_, err = db.Jobs.Transition(ctx, f.admin.ID, gaas.TransitionRequest{JobID: first.ID, To: gaas.StatusRejected}) // a no-op
		require.NoError(t, err)
		for _, s := range []gaas.JobStatus{gaas.StatusApproved, gaas.StatusRunning} {
			_, err = db.Jobs.Transition(ctx, f.admin.ID, gaas.TransitionRequest{JobID: second.ID, To: s})
			require.NoError(t, err)
		}
		_, err = db.Jobs.Transition(ctx, f.admin.ID, gaas.TransitionRequest{JobID: second.ID, To: gaas.StatusCompleted, ActualHours: hoursPtr(1500)})
		require.NoError(t, err)
		_, err = db.Jobs.Cancel(ctx, u.ID, gaas.CancelRequest{JobID: second.ID}) // refused: not reported
		require.ErrorIs(t, err, gaas.ErrInvalidTransition)

		rec.mu.Lock()
		defer rec.mu.Unlock()
		require.Len(t, rec.submitted, 2)
		assert.Equal(t, []int64{first.ID, second.ID}, []int64{rec.submitted[0].ID, rec.submitted[1].ID})
		assert.Equal(t, 2*gaas.Hour, rec.submitted[1].EstimatedHours)
		assert.Equal(t, []gaas.Credits{500}, rec.refused)
		assert.Equal(t, []string{"PENDING>REJECTED", "PENDING>APPROVED", "APPROVED>RUNNING", "RUNNING>COMPLETED"}, rec.moves)
		assert.Equal(t, gaas.Credit+500, rec.refunded)
		assert.Equal(t, 4, rec.batched, "every submission, replay and refusal included, went through a committed batch")
	})
}
