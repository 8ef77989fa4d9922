package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/gaas"
	"github.com/gaas-io/gaas/store"
)

// declared is a catalogue as a file declares it.
func declared() []gaas.GPUType {
	return []gaas.GPUType{
		{Name: "H100", Description: "NVIDIA H100", Rate: 4 * gaas.RateOne, MaxGPUsPerJob: 8, Enabled: true},
		{Name: "A100", Description: "NVIDIA A100", Rate: 2500, MaxGPUsPerJob: 8, Enabled: true},
		{Name: "V100", Rate: gaas.RateOne},
	}
}

// ApplyCatalogue creates what is missing, updates what differs, retires
// what it is not given, in order of name, and changes nothing the second
// time; a dry run says the same and changes nothing.
func TestApplyCatalogue(t *testing.T) {
	ctx := context.Background()
	forEachStore(t, func(t *testing.T, db *store.DB) {
		sys := db.As(gaas.System("catalogue"))
		_, err := sys.CreateGPUType(ctx, gaas.CreateGPUTypeRequest{Name: "T4", Rate: 500})
		require.NoError(t, err)

		changes, err := sys.ApplyCatalogue(ctx, store.ApplyCatalogueRequest{Types: declared(), DryRun: true})
		require.NoError(t, err)
		var lines []string
		for _, c := range changes {
			lines = append(lines, c.String())
		}
		assert.Equal(t, []string{
			`create A100: rate 2.5, max_gpus_per_job 8, enabled true, description "NVIDIA A100"`,
			`create H100: rate 4, max_gpus_per_job 8, enabled true, description "NVIDIA H100"`,
			`retire T4: not declared`,
			`create V100: rate 1, max_gpus_per_job 0, enabled false`,
		}, lines)
		types, err := sys.GPUTypes(ctx, gaas.GPUTypesRequest{Retired: true})
		require.NoError(t, err)
		require.Len(t, types, 1, "a dry run changes nothing")

		applied, err := sys.ApplyCatalogue(ctx, store.ApplyCatalogueRequest{Types: declared()})
		require.NoError(t, err)
		require.Len(t, applied, 4)
		for i := range applied {
			assert.Equal(t, changes[i].String(), applied[i].String(), "the dry run said what applying does")
		}
		assert.Equal(t, store.CatalogueRetire, applied[2].Action)
		assert.True(t, applied[2].Undeclared)
		assert.True(t, applied[2].Before.Enabled)
		assert.False(t, applied[2].After.Enabled)
		assert.False(t, applied[0].After.CreatedAt.IsZero())

		first, err := sys.GPUTypes(ctx, gaas.GPUTypesRequest{Retired: true})
		require.NoError(t, err)
		require.Len(t, first, 4, "T4 is retired, not deleted")
		byName := map[string]gaas.GPUType{}
		for _, ty := range first {
			byName[ty.Name] = ty
		}
		assert.Equal(t, gaas.Rate(2500), byName["A100"].Rate)
		assert.Equal(t, gaas.Rate(500), byName["T4"].Rate, "retiring changes nothing else")
		assert.False(t, byName["T4"].Enabled)
		assert.False(t, byName["V100"].Enabled)
		enabled, err := sys.GPUTypes(ctx, gaas.GPUTypesRequest{})
		require.NoError(t, err)
		assert.Len(t, enabled, 2)

		again, err := sys.ApplyCatalogue(ctx, store.ApplyCatalogueRequest{Types: declared()})
		require.NoError(t, err)
		assert.Empty(t, again, "applied twice, the second changes nothing")
		now, err := sys.GPUTypes(ctx, gaas.GPUTypesRequest{Retired: true})
		require.NoError(t, err)
		assert.Equal(t, first, now, "not even the times")

		// A new rate for A100, H100 no longer declared, V100 enabled.
		next := declared()[1:]
		next[0].Rate = 3 * gaas.RateOne
		next[1].Enabled = true
		changes, err = sys.ApplyCatalogue(ctx, store.ApplyCatalogueRequest{Types: next})
		require.NoError(t, err)
		lines = nil
		for _, c := range changes {
			lines = append(lines, c.Action+": "+c.String())
		}
		assert.Equal(t, []string{
			"update: update A100: rate 2.5 -> 3",
			"retire: retire H100: not declared",
			"update: update V100: enabled false -> true",
		}, lines)
		assert.Equal(t, byName["A100"].CreatedAt, changes[0].After.CreatedAt)
		assert.True(t, changes[0].After.UpdatedAt.After(byName["A100"].UpdatedAt) || changes[0].After.UpdatedAt.Equal(byName["A100"].UpdatedAt))
		job, err := db.Jobs.Submit(ctx, newFixture(t, db).user(t, 10*gaas.Credit).ID,
			gaas.SubmitRequest{Command: "x", GPUType: "a100", EstimatedHours: gaas.Hour})
		require.NoError(t, err)
		assert.Equal(t, gaas.Rate(3000), job.Rate, "jobs are priced at the applied rate")
	})
}

// A declared catalogue that breaks a rule, or that a caller may not
// apply, is refused whole: nothing changes, not even the types that were
// fine.
func TestApplyCatalogueRefused(t *testing.T) {
	ctx := context.Background()
	forEachStore(t, func(t *testing.T, db *store.DB) {
		sys := db.As(gaas.System("catalogue"))
		_, err := sys.ApplyCatalogue(ctx, store.ApplyCatalogueRequest{Types: declared()})
		require.NoError(t, err)
		before, err := sys.GPUTypes(ctx, gaas.GPUTypesRequest{Retired: true})
		require.NoError(t, err)
		f := newFixture(t, db)
		user, admin := f.user(t, 0), f.user(t, 0)
		_, err = db.As(gaas.System("test")).SetRole(ctx, gaas.SetRoleRequest{UserID: admin.ID, Role: gaas.RoleAdmin})
		require.NoError(t, err)

		with := func(t gaas.GPUType) []gaas.GPUType { return append([]gaas.GPUType{{Name: "New", Rate: 1}}, t) }
		for name, tc := range map[string]struct {
			as    gaas.Principal
			types []gaas.GPUType
			want  error
			msg   string
		}{
			"zero_rate":     {gaas.System("x"), with(gaas.GPUType{Name: "B200"}), gaas.ErrInvalid, `GPU type 2 ("B200"): gaas: invalid input: rate`},
			"rate_too_high": {gaas.System("x"), with(gaas.GPUType{Name: "B200", Rate: gaas.MaxRate + 1}), gaas.ErrInvalid, "rate"},
			"bad_name":      {gaas.System("x"), with(gaas.GPUType{Name: " B200", Rate: 1}), gaas.ErrInvalid, "name"},
			"bad_limit":     {gaas.System("x"), with(gaas.GPUType{Name: "B200", Rate: 1, MaxGPUsPerJob: -1}), gaas.ErrInvalid, "max_gpus_per_job"},
			"twice":         {gaas.System("x"), with(gaas.GPUType{Name: "NEW", Rate: 1}), gaas.ErrInvalid, `GPU type 2 ("NEW"): gaas: invalid input: name: names the type of GPU type 1 ("New") again`},
			"respelled":     {gaas.System("x"), with(gaas.GPUType{Name: "a100", Rate: 1}), gaas.ErrInvalid, `the catalogue spells it "A100"`},
			"user":          {gaas.Principal{UserID: user.ID}, with(gaas.GPUType{Name: "B200", Rate: 1}), gaas.ErrForbidden, ""},
		} {
			t.Run(name, func(t *testing.T) {
				for _, dry := range []bool{true, false} {
					_, err := db.As(tc.as).ApplyCatalogue(ctx, store.ApplyCatalogueRequest{Types: tc.types, DryRun: dry})
					require.ErrorIs(t, err, tc.want)
					assert.Contains(t, err.Error(), tc.msg)
				}
				after, err := sys.GPUTypes(ctx, gaas.GPUTypesRequest{Retired: true})
				require.NoError(t, err)
				assert.Equal(t, before, after)
			})
		}
		changes, err := db.As(gaas.Principal{UserID: admin.ID}).ApplyCatalogue(ctx, store.ApplyCatalogueRequest{Types: with(gaas.GPUType{Name: "B200", Rate: 1, Enabled: true})})
		require.NoError(t, err, "an admin may")
		assert.Len(t, changes, 4, "B200 and New created, A100 and H100 retired; V100 was retired already")
	})
}

// Replicas starting at once with one file each apply it; the catalogue
// then holds each type once, and the one that lost the race to create a
// type reads again and finds nothing left to do.
func TestApplyCatalogueConcurrently(t *testing.T) {
	ctx := context.Background()
	forEachBackend(t, func(t *testing.T, b backend) {
		if !b.shared {
			t.Skip("needs two stores on one database")
		}
		dsn := b.dsn(t)
		dbs := []*store.DB{openStore(t, dsn, store.Options{}), openStore(t, dsn, store.Options{})}
		for round := 0; round < 5; round++ {
			types := declared()
			types[0].Rate += gaas.Rate(round)
			types = append(types, gaas.GPUType{Name: "R" + string(rune('0'+round)), Rate: 1, Enabled: true})
			var wg sync.WaitGroup
			errs := make([]error, len(dbs))
			for i, db := range dbs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, errs[i] = db.As(gaas.System("catalogue")).ApplyCatalogue(ctx, store.ApplyCatalogueRequest{Types: types})
				}()
			}
			wg.Wait()
			for _, err := range errs {
				require.NoError(t, err, "round %d", round)
			}
			changes, err := dbs[0].As(gaas.System("catalogue")).ApplyCatalogue(ctx, store.ApplyCatalogueRequest{Types: types, DryRun: true})
			require.NoError(t, err)
			assert.Empty(t, changes, "round %d: the catalogue is the one declared", round)
		}
		all, err := dbs[1].As(gaas.System("catalogue")).GPUTypes(ctx, gaas.GPUTypesRequest{Retired: true})
		require.NoError(t, err)
		assert.Len(t, all, 3+5, "each type once")
	})
}

// A declared catalogue may hold gaas.MaxGPUTypes types, and applying one
// that would leave more in the store, retired ones included, is refused.
func TestApplyCatalogueBounded(t *testing.T) {
	ctx := context.Background()
	forEachStore(t, func(t *testing.T, db *store.DB) {
		sys := db.As(gaas.System("catalogue"))
		types := make([]gaas.GPUType, gaas.MaxGPUTypes+1)
		for i := range types {
			types[i] = gaas.GPUType{Name: fmt.Sprintf("T%04d", i), Rate: gaas.RateOne, Enabled: true}
		}
		_, err := sys.ApplyCatalogue(ctx, store.ApplyCatalogueRequest{Types: types})
		require.ErrorIs(t, err, gaas.ErrInvalid)
		assert.ErrorContains(t, err, "gpu_types: holds 1001 types; a catalogue holds at most 1000")

		changes, err := sys.ApplyCatalogue(ctx, store.ApplyCatalogueRequest{Types: types[:gaas.MaxGPUTypes]})
		require.NoError(t, err)
		assert.Len(t, changes, gaas.MaxGPUTypes)
		_, err = sys.ApplyCatalogue(ctx, store.ApplyCatalogueRequest{Types: types[gaas.MaxGPUTypes:], DryRun: true})
		require.ErrorIs(t, err, gaas.ErrConflict, "1000 retired and one new")
		assert.ErrorContains(t, err, "would hold 1001 types, retired ones included")
		all, err := sys.GPUTypes(ctx, gaas.GPUTypesRequest{Retired: true})
		require.NoError(t, err)
		assert.Len(t, all, gaas.MaxGPUTypes)
		for _, ty := range all {
			require.True(t, ty.Enabled, "nothing was retired: %s", ty.Name)
		}
	})
}
