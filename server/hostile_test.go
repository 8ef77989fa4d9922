package server_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun/driver/sqliteshim"

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

// TestLiveAllocationsStayBounded holds an account to gaas.MaxLiveAllocations
// allocations with credits left, which every submission reads. An
// allocation that a job emptied holds credits again when the job is
// cancelled, so the bound must still hold after refunds: either the
// emptied allocation makes no room, or the refund does not fill it.
func TestLiveAllocationsStayBounded(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	adminID, _ := h.admin("root")
	aliceID, _ := h.user("alice")
	give := func() error {
		_, err := h.db.Allocations.CreateAllocation(ctx, adminID, gaas.CreateAllocationRequest{
			UserID: aliceID, Amount: gaas.Credit, GPUTypes: []string{"T4"}})
		return err
	}
	for range gaas.MaxLiveAllocations - 1 { // and the default one
		require.NoError(t, give())
	}
	require.ErrorIs(t, give(), gaas.ErrConflict, "a 1,001st allocation holding credits")

	// A job empties one; cancelling the job fills it again.
	job, err := h.db.Jobs.Submit(ctx, aliceID, gaas.SubmitRequest{Command: "x", GPUType: "T4", EstimatedHours: gaas.Hour})
	require.NoError(t, err)
	require.Len(t, job.Draws, 1)
	if err := give(); err != nil {
		require.ErrorIs(t, err, gaas.ErrConflict)
	}
	_, err = h.db.Jobs.Cancel(ctx, aliceID, gaas.CancelRequest{JobID: job.ID})
	require.NoError(t, err)

	live := 0
	for cursor := ""; ; {
		page, err := h.db.Allocations.Allocations(ctx, aliceID, gaas.AllocationsRequest{UserID: aliceID, Page: gaas.Page{Limit: 500, Cursor: cursor}})
		require.NoError(t, err)
		for _, a := range page.Items {
			if a.Remaining > 0 {
				live++
			}
		}
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	assert.LessOrEqual(t, live, gaas.MaxLiveAllocations, "allocations holding credits after the refund")
}

// TestShorteningBeforeTheStart refuses to move an allocation's end to or
// before its start, as POST /users/{id}/allocations does: such an
// allocation would never pay for anything, and would hold its credits
// without a revoke entry.
func TestShorteningBeforeTheStart(t *testing.T) {
	h := newHarness(t)
	_, admin := h.admin("root")
	aliceID, _ := h.user("alice")
	start := time.Now().Add(48 * time.Hour).UTC()
	a := h.post(fmt.Sprintf("/users/%d/allocations", aliceID), admin,
		`{"amount": 5, "starts_at": "`+start.Format(time.RFC3339)+`"}`).created(t)
	path := fmt.Sprintf("/allocations/%v", a["id"])
	for _, end := range []time.Time{start.Add(-24 * time.Hour), start} {
		body := `{"expires_at": "` + end.Format(time.RFC3339) + `"}`
		assert.Equal(t, []string{"expires_at"}, h.patch(path, admin, body).errorFields(t), body)
	}
	after := h.get(fmt.Sprintf("/users/%d/allocations", aliceID), admin).items(t)
	require.Len(t, after, 2)
	assert.Nil(t, after[1]["expires_at"], "nothing was written")
}

// TestCheckFindsARefundToAnotherAllocation moves a job's refund from the
// expiring, scoped allocation the job drew from to the default one, which
// never ends, keeping every sum and running balance right (the ledger's
// append-only trigger dropped, as someone with the database file could).
// Check must see that the refund went to an allocation the job's draws do
// not name.
func TestCheckFindsARefundToAnotherAllocation(t *testing.T) {
	ctx := context.Background()
	dsn := filepath.Join(t.TempDir(), "gaas.db")
	h := newHarness(t, override{dsn: dsn})
	adminID, _ := h.admin("root")
	aliceID, _ := h.user("alice")
	expires := time.Now().Add(time.Hour)
	scoped, err := h.db.Allocations.CreateAllocation(ctx, adminID, gaas.CreateAllocationRequest{
		UserID: aliceID, Amount: 2 * gaas.Credit, GPUTypes: []string{"A100"}, ExpiresAt: &expires})
	require.NoError(t, err)
	job, err := h.db.Jobs.Submit(ctx, aliceID, gaas.SubmitRequest{Command: "x", GPUType: "A100", EstimatedHours: gaas.Hour})
	require.NoError(t, err)
	require.Equal(t, []gaas.Draw{{AllocationID: scoped.ID, Amount: gaas.Credit}}, job.Draws)
	_, err = h.db.Jobs.Transition(ctx, adminID, gaas.TransitionRequest{JobID: job.ID, To: gaas.StatusRejected})
	require.NoError(t, err)
	page, err := h.db.Allocations.Allocations(ctx, aliceID, gaas.AllocationsRequest{UserID: aliceID})
	require.NoError(t, err)
	def := page.Items[0]
	require.True(t, def.Default)
	ledger, err := h.db.Quota.Ledger(ctx, aliceID, gaas.LedgerRequest{UserID: aliceID})
	require.NoError(t, err)
	refund := ledger.Items[len(ledger.Items)-1]
	require.Equal(t, gaas.LedgerRefund, refund.Kind)
	require.Equal(t, scoped.ID, refund.AllocationID)

	raw, err := sql.Open(sqliteshim.ShimName, dsn)
	require.NoError(t, err)
	defer raw.Close()
	for _, q := range []string{
		"DROP TRIGGER ledger_no_update",
		fmt.Sprintf("UPDATE ledger SET allocation_id = %d, remaining = %d WHERE id = %d", def.ID, def.Remaining+gaas.Credit, refund.ID),
		fmt.Sprintf("UPDATE allocations SET remaining = remaining - %d WHERE id = %d", gaas.Credit, scoped.ID),
		fmt.Sprintf("UPDATE allocations SET remaining = remaining + %d WHERE id = %d", gaas.Credit, def.ID),
	} {
		_, err := raw.ExecContext(ctx, q)
		require.NoError(t, err, q)
	}
	report, err := h.db.Check(ctx)
	require.NoError(t, err)
	assert.NotEmpty(t, report.Violations, "the refund of job %d went to allocation %d, not %d", job.ID, def.ID, scoped.ID)
	h.dbClosed = true // the database is damaged on purpose: the harness checks it no more
	require.NoError(t, h.db.Close())
}

// TestExpiredAllocationsMakeRoom gives an account as many expiring
// allocations as it may hold, and lets them expire with credits left. They
// pay for nothing any more, and an admin cannot end them (they have
// ended), so they must not keep the account from being given another.
func TestExpiredAllocationsMakeRoom(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	adminID, _ := h.admin("root")
	aliceID, _ := h.user("alice")
	var last gaas.Allocation
	var expires time.Time
	for range gaas.MaxLiveAllocations - 1 { // and the default one
		var err error
		last, err = h.db.Allocations.CreateAllocation(ctx, adminID, gaas.CreateAllocationRequest{UserID: aliceID, Amount: gaas.Credit})
		require.NoError(t, err)
		// Shortened to an end to come, which takes nothing back.
		expires = time.Now().Add(time.Second)
		_, err = h.db.Allocations.UpdateAllocation(ctx, adminID, gaas.UpdateAllocationRequest{AllocationID: last.ID, ExpiresAt: &expires})
		require.NoError(t, err)
	}
	time.Sleep(time.Until(expires))
	require.Equal(t, 10.0, h.balance(aliceID), "only the default allocation pays")
	_, err := h.db.Allocations.UpdateAllocation(ctx, adminID, gaas.UpdateAllocationRequest{AllocationID: last.ID, End: true})
	require.ErrorIs(t, err, gaas.ErrConflict, "an allocation that has ended cannot be ended")

	_, err = h.db.Allocations.CreateAllocation(ctx, adminID, gaas.CreateAllocationRequest{UserID: aliceID, Amount: gaas.Credit})
	assert.NoError(t, err, "a new allocation, when every other but the default has expired")
}

// TestJobsOfOpenModeFoundByTheirCatalogueType submits a job in open mode
// under one spelling of a GPU type, and then the catalogue gets the type
// under another. GET /jobs?gpu_type= names a type of the catalogue in any
// letter case, so it must find the job submitted before, which keeps the
// spelling it was submitted with, as well as the jobs since.
func TestJobsOfOpenModeFoundByTheirCatalogueType(t *testing.T) {
	h := newHarness(t)
	_, admin := h.admin("root")
	_, alice := h.user("alice")
	before := h.post("/jobs", alice, `{"command": "x", "gpu_type": "a100", "estimated_hours": 1}`).created(t)
	h.post("/gpu-types", admin, `{"name": "A100", "rate": 1}`).created(t)
	after := h.post("/jobs", alice, `{"command": "x", "gpu_type": "a100", "estimated_hours": 1}`).created(t)
	require.Equal(t, "a100", before["gpu_type"])
	require.Equal(t, "A100", after["gpu_type"])
	for _, name := range []string{"a100", "A100"} {
		var ids []any
		for _, j := range h.get("/jobs?gpu_type="+name, alice).items(t) {
			ids = append(ids, j["id"])
		}
		assert.Equal(t, []any{after["id"], before["id"]}, ids, "?gpu_type=%s", name)
	}
}

// TestGPUTypeNamesThatAreNotPathSegments refuses the names "." and "..",
// as it refuses '/': the Location of such a type, /gpu-types/.., is
// resolved by every client to another resource, and PATCH /gpu-types/..
// reaches no type.
func TestGPUTypeNamesThatAreNotPathSegments(t *testing.T) {
	h := newHarness(t)
	_, admin := h.admin("root")
	for _, name := range []string{".", ".."} {
		assert.Equal(t, []string{"name"}, h.post("/gpu-types", admin, `{"name": "`+name+`", "rate": 1}`).errorFields(t), name)
	}
	assert.Empty(t, h.get("/gpu-types?retired=true", admin).items(t), "nothing was written")
	h.post("/gpu-types", admin, `{"name": "a..b", "rate": 1}`).created(t)
}
