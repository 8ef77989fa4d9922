package server_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/gaas"
)

// TestRefundRacingTheEndOfItsAllocation rejects a job while an admin ends
// the allocation it drew from. Whichever commits first, the ended
// allocation must hold nothing afterwards: a refund that lands after the
// end is followed by an expire entry, so credits never come back to life
// in an allocation that has ended.
func TestRefundRacingTheEndOfItsAllocation(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			h := newHarness(t, override{dsn: b.dsn(t)})
			ctx := context.Background()
			adminID, _ := h.admin("root")
			aliceID, _ := h.user("alice")
			const rounds = 150
			revived := 0
			for i := range rounds {
				expires := time.Now().Add(time.Hour)
				a, err := h.db.Allocations.CreateAllocation(ctx, adminID, gaas.CreateAllocationRequest{
					UserID: aliceID, Amount: gaas.Credit, ExpiresAt: &expires})
				require.NoError(t, err)
				job, err := h.db.Jobs.Submit(ctx, aliceID, gaas.SubmitRequest{Command: "x", GPUType: "T4", EstimatedHours: gaas.Hour})
				require.NoError(t, err)
				require.Equal(t, []gaas.Draw{{AllocationID: a.ID, Amount: gaas.Credit}}, job.Draws, "the expiring allocation is drawn first")

				var wg sync.WaitGroup
				start := make(chan struct{})
				wg.Add(2)
				go func() {
					defer wg.Done()
					<-start
					_, err := h.db.Jobs.Transition(ctx, adminID, gaas.TransitionRequest{JobID: job.ID, To: gaas.StatusRejected})
					assert.NoError(t, err)
				}()
				go func() {
					defer wg.Done()
					<-start
					_, err := h.db.Allocations.UpdateAllocation(ctx, adminID, gaas.UpdateAllocationRequest{AllocationID: a.ID, End: true})
					assert.NoError(t, err)
				}()
				close(start)
				wg.Wait()

				page, err := h.db.Allocations.Allocations(ctx, adminID, gaas.AllocationsRequest{UserID: aliceID, Ended: true,
					Page: gaas.Page{Limit: 500}})
				require.NoError(t, err)
				for _, got := range page.Items {
					if got.ID == a.ID && got.Remaining != 0 {
						revived++
						t.Logf("round %d: allocation %d ended at %s and still holds %s credits", i, a.ID, got.ExpiresAt, got.Remaining)
					}
				}
			}
			assert.Zero(t, revived, "of %d rounds, allocations that ended and hold credits again", rounds)
		})
	}
}
