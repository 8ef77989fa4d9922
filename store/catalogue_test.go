package store_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/gaas"
	"github.com/gaas-io/gaas/store"
)

// gpuType adds a type to the catalogue, as the admin.
func (f *fixture) gpuType(t *testing.T, req gaas.CreateGPUTypeRequest) gaas.GPUType {
	t.Helper()
	g, err := f.db.Catalogue.CreateGPUType(context.Background(), f.admin.ID, req)
	require.NoError(t, err)
	return g
}

func rate(credits, milli int64) gaas.Rate { return gaas.Rate(credits)*gaas.RateOne + gaas.Rate(milli) }

func TestCatalogue(t *testing.T) {
	ctx := context.Background()
	forEachStore(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		submit := func(u gaas.User, gpuType string, h gaas.Hours, gpus int) (gaas.Job, error) {
			return db.Jobs.Submit(ctx, u.ID, gaas.SubmitRequest{Command: "x", GPUType: gpuType, EstimatedHours: h, GPUCount: gpus})
		}

		// While the catalogue is empty any type is taken at rate 1, as
		// spelled in the request.
		u := f.user(t, 100*gaas.Credit)
		open, err := submit(u, "whatever GPU", 1500, 0)
		require.NoError(t, err)
		assert.Equal(t, "whatever GPU", open.GPUType)
		assert.Equal(t, gaas.RateOne, open.Rate)
		assert.Equal(t, 1, open.GPUCount)
		assert.Equal(t, gaas.Credits(1500), open.Cost)
		two, err := submit(u, "whatever GPU", 1500, 2)
		require.NoError(t, err)
		assert.Equal(t, gaas.Credits(3000), two.Cost)
		list, err := db.Catalogue.GPUTypes(ctx, u.ID, gaas.GPUTypesRequest{})
		require.NoError(t, err)
		assert.Empty(t, list)

		a100 := f.gpuType(t, gaas.CreateGPUTypeRequest{Name: "NVIDIA A100", Description: "80 GB", Rate: rate(2, 500), MaxGPUsPerJob: 4})
		assert.Equal(t, "NVIDIA A100", a100.Name)
		assert.True(t, a100.Enabled)
		h100 := f.gpuType(t, gaas.CreateGPUTypeRequest{Name: "H100", Rate: rate(4, 0)})
		assert.Equal(t, gaas.MaxGPUsPerJob, h100.GPUsAllowed())

		t.Run("anyone_reads_it_by_name", func(t *testing.T) {
			list, err := db.Catalogue.GPUTypes(ctx, u.ID, gaas.GPUTypesRequest{})
			require.NoError(t, err)
			require.Len(t, list, 2)
			assert.Equal(t, []string{"H100", "NVIDIA A100"}, []string{list[0].Name, list[1].Name})
			assert.Equal(t, a100, list[1])
		})

		t.Run("lookup_ignores_case_and_answers_the_canonical_spelling", func(t *testing.T) {
			j, err := submit(u, "nvidia a100", gaas.Hour, 2)
			require.NoError(t, err)
			assert.Equal(t, "NVIDIA A100", j.GPUType)
			assert.Equal(t, rate(2, 500), j.Rate)
			assert.Equal(t, 2, j.GPUCount)
			assert.Equal(t, 5*gaas.Credit, j.Cost, "1 hour × 2 GPUs × 2.5")
			got, err := db.Catalogue.UpdateGPUType(ctx, f.admin.ID, gaas.UpdateGPUTypeRequest{Name: "nVidia A100", Description: strPtr("80 GB HBM")})
			require.NoError(t, err)
			assert.Equal(t, "NVIDIA A100", got.Name)
			assert.Equal(t, "80 GB HBM", got.Description)
		})

		t.Run("a_name_taken_in_any_case_conflicts", func(t *testing.T) {
			_, err := db.Catalogue.CreateGPUType(ctx, f.admin.ID, gaas.CreateGPUTypeRequest{Name: "h100", Rate: gaas.RateOne})
			assert.ErrorIs(t, err, gaas.ErrConflict)
			list, err := db.Catalogue.GPUTypes(ctx, u.ID, gaas.GPUTypesRequest{Retired: true})
			require.NoError(t, err)
			assert.Len(t, list, 2)
		})

		t.Run("unknown_types_are_refused_naming_the_known_ones", func(t *testing.T) {
			before := f.balance(t, u.ID)
			_, err := submit(u, "whatever GPU", gaas.Hour, 1)
			assertInvalid(t, err, "gpu_type")
			assert.ErrorContains(t, err, `"whatever GPU" is not in the GPU catalogue; it holds H100, NVIDIA A100`)
			assert.Equal(t, before, f.balance(t, u.ID))
		})

		t.Run("most_gpus_per_job", func(t *testing.T) {
			j, err := submit(u, "NVIDIA A100", 100, 4)
			require.NoError(t, err)
			assert.Equal(t, gaas.Credit, j.Cost, "0.1 hours × 4 GPUs × 2.5")
			_, err = submit(u, "NVIDIA A100", 100, 5)
			assertInvalid(t, err, "gpu_count")
			_, err = submit(u, "H100", 1, gaas.MaxGPUsPerJob+1)
			assertInvalid(t, err, "gpu_count")
			j, err = submit(u, "H100", 1, 64)
			require.NoError(t, err)
			assert.Equal(t, gaas.Credits(256), j.Cost)
		})

		t.Run("costs_round_up_to_the_milli_credit_once", func(t *testing.T) {
			f.gpuType(t, gaas.CreateGPUTypeRequest{Name: "T4", Rate: rate(0, 333)})
			j, err := submit(u, "T4", 1, 1)
			require.NoError(t, err)
			assert.Equal(t, gaas.Credits(1), j.Cost, "0.001 hours × 0.333 is 0.000333 credits, charged as 0.001")
			j, err = submit(u, "T4", 3000, 1)
			require.NoError(t, err)
			assert.Equal(t, gaas.Credits(999), j.Cost)
			f.move(t, j, hoursPtr(1), gaas.StatusApproved, gaas.StatusRunning, gaas.StatusCompleted)
			var charged, refunded gaas.Credits
			for _, e := range f.ledger(t, u.ID) {
				if e.JobID != nil && *e.JobID == j.ID {
					switch e.Kind {
					case gaas.LedgerCharge:
						charged -= e.Delta
					case gaas.LedgerRefund:
						refunded += e.Delta
					}
				}
			}
			assert.Equal(t, gaas.Credits(1), charged-refunded, "charged − refunded is the cost of the actual hours")
		})

		t.Run("a_rate_change_applies_to_later_jobs_only", func(t *testing.T) {
			v := f.user(t, 100*gaas.Credit)
			before, err := submit(v, "H100", 2*gaas.Hour, 1)
			require.NoError(t, err)
			assert.Equal(t, 8*gaas.Credit, before.Cost)
			got, err := db.Catalogue.UpdateGPUType(ctx, f.admin.ID, gaas.UpdateGPUTypeRequest{Name: "H100", Rate: ratePtr(rate(1, 0))})
			require.NoError(t, err)
			assert.Equal(t, rate(1, 0), got.Rate)
			after, err := submit(v, "H100", 2*gaas.Hour, 1)
			require.NoError(t, err)
			assert.Equal(t, rate(1, 0), after.Rate)
			assert.Equal(t, 2*gaas.Credit, after.Cost)
			assert.Equal(t, 90*gaas.Credit, f.balance(t, v.ID))

			// The earlier job settles at its own rate: half an hour of it
			// costs 2 credits, and 6 come back.
			done := f.move(t, before, hoursPtr(500), gaas.StatusApproved, gaas.StatusRunning, gaas.StatusCompleted)
			assert.Equal(t, rate(4, 0), done.Rate)
			assert.Equal(t, 96*gaas.Credit, f.balance(t, v.ID))
			stored, err := db.Jobs.Get(ctx, v.ID, gaas.GetJobRequest{JobID: before.ID})
			require.NoError(t, err)
			assert.Equal(t, rate(4, 0), stored.Rate)
			assert.Equal(t, 8*gaas.Credit, stored.Cost)
		})

		t.Run("a_retired_type_refuses_new_jobs_and_keeps_its_history", func(t *testing.T) {
			v := f.user(t, 100*gaas.Credit)
			old, err := submit(v, "NVIDIA A100", gaas.Hour, 1)
			require.NoError(t, err)
			got, err := db.Catalogue.UpdateGPUType(ctx, f.admin.ID, gaas.UpdateGPUTypeRequest{Name: "NVIDIA A100", Enabled: boolPtr(false)})
			require.NoError(t, err)
			assert.False(t, got.Enabled)

			_, err = submit(v, "nvidia a100", gaas.Hour, 1)
			assertInvalid(t, err, "gpu_type")
			assert.ErrorContains(t, err, "NVIDIA A100 is retired")
			list, err := db.Catalogue.GPUTypes(ctx, v.ID, gaas.GPUTypesRequest{})
			require.NoError(t, err)
			for _, g := range list {
				assert.NotEqual(t, "NVIDIA A100", g.Name, "retired types are listed only when asked for")
			}
			all, err := db.Catalogue.GPUTypes(ctx, v.ID, gaas.GPUTypesRequest{Retired: true})
			require.NoError(t, err)
			assert.Len(t, all, len(list)+1)

			// Its jobs stay, and settle.
			page, err := db.Jobs.List(ctx, f.admin.ID, gaas.JobFilter{GPUType: "NVIDIA A100"})
			require.NoError(t, err)
			assert.NotEmpty(t, page.Items)
			_, err = db.Jobs.Cancel(ctx, v.ID, gaas.CancelRequest{JobID: old.ID})
			require.NoError(t, err)
			assert.Equal(t, 100*gaas.Credit, f.balance(t, v.ID))

			_, err = db.Catalogue.UpdateGPUType(ctx, f.admin.ID, gaas.UpdateGPUTypeRequest{Name: "NVIDIA A100", Enabled: boolPtr(true)})
			require.NoError(t, err)
			_, err = submit(v, "NVIDIA A100", gaas.Hour, 1)
			require.NoError(t, err)
		})

		t.Run("scopes_are_spelled_as_the_catalogue_does", func(t *testing.T) {
			a := f.allocation(t, gaas.CreateAllocationRequest{UserID: u.ID, Amount: gaas.Credit, GPUTypes: []string{"h100"}})
			assert.Equal(t, []string{"H100"}, a.GPUTypes)
			_, err := db.Allocations.CreateAllocation(ctx, f.admin.ID, gaas.CreateAllocationRequest{UserID: u.ID, Amount: gaas.Credit, GPUTypes: []string{"B200"}})
			assertInvalid(t, err, "gpu_types")
		})

		t.Run("only_admins_change_it", func(t *testing.T) {
			_, err := db.Catalogue.CreateGPUType(ctx, u.ID, gaas.CreateGPUTypeRequest{Name: "B200", Rate: gaas.RateOne})
			assert.ErrorIs(t, err, gaas.ErrForbidden)
			_, err = db.Catalogue.UpdateGPUType(ctx, u.ID, gaas.UpdateGPUTypeRequest{Name: "H100", Rate: ratePtr(1)})
			assert.ErrorIs(t, err, gaas.ErrForbidden)
			_, err = db.Catalogue.UpdateGPUType(ctx, f.admin.ID, gaas.UpdateGPUTypeRequest{Name: "B200", Rate: ratePtr(1)})
			assert.ErrorIs(t, err, gaas.ErrNotFound)
		})

		t.Run("bad_input", func(t *testing.T) {
			for _, tc := range []struct {
				req   gaas.CreateGPUTypeRequest
				field string
			}{
				{gaas.CreateGPUTypeRequest{Name: "", Rate: gaas.RateOne}, "name"},
				{gaas.CreateGPUTypeRequest{Name: " A100", Rate: gaas.RateOne}, "name"},
				{gaas.CreateGPUTypeRequest{Name: "A/100", Rate: gaas.RateOne}, "name"},
				{gaas.CreateGPUTypeRequest{Name: "B200", Rate: 0}, "rate"},
				{gaas.CreateGPUTypeRequest{Name: "B200", Rate: gaas.MaxRate + 1}, "rate"},
				{gaas.CreateGPUTypeRequest{Name: "B200", Rate: gaas.RateOne, MaxGPUsPerJob: -1}, "max_gpus_per_job"},
			} {
				_, err := db.Catalogue.CreateGPUType(ctx, f.admin.ID, tc.req)
				assertInvalid(t, err, tc.field)
			}
			_, err := db.Catalogue.UpdateGPUType(ctx, f.admin.ID, gaas.UpdateGPUTypeRequest{Name: "H100", Rate: ratePtr(-1)})
			assertInvalid(t, err, "rate")
		})
	})
}

func strPtr(s string) *string        { return &s }
func boolPtr(b bool) *bool           { return &b }
func ratePtr(r gaas.Rate) *gaas.Rate { return &r }

// TestCatalogueFoldsASCIIOnly: a name that only a Unicode fold makes one of
// the catalogue's is unknown on every backend alike.
func TestCatalogueFoldsASCIIOnly(t *testing.T) {
	forEachStore(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		u := f.user(t, 10*gaas.Credit)
		_, err := db.Catalogue.CreateGPUType(ctx, f.admin.ID, gaas.CreateGPUTypeRequest{Name: "K80", Rate: gaas.RateOne})
		require.NoError(t, err)
		_, err = db.Jobs.Submit(ctx, u.ID, gaas.SubmitRequest{Command: "x", GPUType: "\u212A80", EstimatedHours: gaas.Hour})
		assert.ErrorIs(t, err, gaas.ErrInvalid)
		j, err := db.Jobs.Submit(ctx, u.ID, gaas.SubmitRequest{Command: "x", GPUType: "k80", EstimatedHours: gaas.Hour})
		require.NoError(t, err)
		assert.Equal(t, "K80", j.GPUType)
		_, err = db.Allocations.CreateAllocation(ctx, f.admin.ID, gaas.CreateAllocationRequest{UserID: u.ID, Amount: gaas.Credit, GPUTypes: []string{"\u212A80"}})
		assert.ErrorIs(t, err, gaas.ErrInvalid)
	})
}
