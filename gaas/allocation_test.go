package gaas_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/gaas"
)

var now = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

func at(d time.Duration) *time.Time { t := now.Add(d); return &t }

// drawn is the ids of draws, in order.
func drawn(draws []gaas.Draw) []int64 {
	var ids []int64
	for _, d := range draws {
		ids = append(ids, d.AllocationID)
	}
	return ids
}

func sum(draws []gaas.Draw) gaas.Credits {
	var s gaas.Credits
	for _, d := range draws {
		s += d.Amount
	}
	return s
}

// A submission draws from the narrowest scope first, then from what
// expires soonest (what never expires last), then from the oldest.
func TestPlanDrawsOrder(t *testing.T) {
	allocs := []gaas.Allocation{
		{ID: 1, Remaining: 100, Default: true},
		{ID: 2, Remaining: 100, GPUTypes: []string{"A100", "H100"}},
		{ID: 3, Remaining: 100, GPUTypes: []string{"A100"}, ExpiresAt: at(48 * time.Hour)},
		{ID: 8, Remaining: 100, GPUTypes: []string{"A100"}, ExpiresAt: at(24 * time.Hour)},
		{ID: 5, Remaining: 100, GPUTypes: []string{"A100"}},
		{ID: 6, Remaining: 100, ExpiresAt: at(time.Hour)},
		{ID: 4, Remaining: 100, GPUTypes: []string{"A100"}, ExpiresAt: at(24 * time.Hour)},
		{ID: 7, Remaining: 100, GPUTypes: []string{"H100", "A100"}, ExpiresAt: at(200 * time.Hour)},
	}
	want := []int64{
		4, 8, // one type, expiring in a day: the older first
		3, // one type, expiring in two days
		5, // one type, no expiry
		7, // two types, expiring
		2, // two types, no expiry
		6, // every type, expiring in an hour
		1, // every type, no expiry: the default allocation comes last
	}
	before := slices.Clone(allocs)

	draws, available := gaas.PlanDraws(allocs, "A100", 800, now)
	assert.Equal(t, want, drawn(draws))
	assert.Equal(t, gaas.Credits(800), available)
	assert.Equal(t, before, allocs, "PlanDraws changes no allocation")

	sorted := slices.Clone(allocs)
	slices.SortFunc(sorted, gaas.DrawOrder)
	var ids []int64
	for _, a := range sorted {
		ids = append(ids, a.ID)
	}
	assert.Equal(t, want, ids)
}

// Only allocations that are active at the time, pay for the type and hold
// something are drawn from.
func TestPlanDrawsSkips(t *testing.T) {
	allocs := []gaas.Allocation{
		{ID: 1, Remaining: 10, StartsAt: now.Add(time.Second)},                  // not started
		{ID: 2, Remaining: 10, StartsAt: now.Add(-time.Hour), ExpiresAt: at(0)}, // expired at now exactly
		{ID: 3, Remaining: 10, GPUTypes: []string{"H100"}},                      // another type
		{ID: 4, Remaining: 0},                        // empty
		{ID: 5, Remaining: -5},                       // overdrawn, holds nothing
		{ID: 6, Remaining: 10, GPUTypes: []string{}}, // scoped to no type
		{ID: 7, Remaining: 10, StartsAt: now, ExpiresAt: at(time.Nanosecond)}, // started at now exactly
		{ID: 8, Remaining: 10, GPUTypes: []string{"h100", "a100"}},            // the type in other letters
	}
	draws, available := gaas.PlanDraws(allocs, "A100", 20, now)
	assert.Equal(t, []gaas.Draw{{AllocationID: 8, Amount: 10}, {AllocationID: 7, Amount: 10}}, draws)
	assert.Equal(t, gaas.Credits(20), available)

	draws, available = gaas.PlanDraws(allocs, "A100", 21, now)
	assert.Nil(t, draws, "short: nothing is drawn")
	assert.Equal(t, gaas.Credits(20), available)

	// A nanosecond later the one that started at now has expired.
	draws, available = gaas.PlanDraws(allocs, "a100", 5, now.Add(time.Nanosecond))
	assert.Equal(t, []gaas.Draw{{AllocationID: 8, Amount: 5}}, draws)
	assert.Equal(t, gaas.Credits(10), available)

	// The one that had not started pays once it has, for every type.
	draws, available = gaas.PlanDraws(allocs, "V100", 10, now.Add(time.Second))
	assert.Equal(t, []gaas.Draw{{AllocationID: 1, Amount: 10}}, draws)
	assert.Equal(t, gaas.Credits(10), available)

	draws, available = gaas.PlanDraws(nil, "A100", 1, now)
	assert.Nil(t, draws)
	assert.Zero(t, available)
}

// A cost is split across allocations, each emptied before the next is
// touched; what is not needed is not touched.
func TestPlanDrawsSplits(t *testing.T) {
	allocs := []gaas.Allocation{
		{ID: 1, Remaining: 1000},
		{ID: 2, Remaining: 300, GPUTypes: []string{"A100"}},
		{ID: 3, Remaining: 200, GPUTypes: []string{"A100"}, ExpiresAt: at(time.Hour)},
	}
	cases := []struct {
		cost gaas.Credits
		want []gaas.Draw
	}{
		{0, nil},
		{1, []gaas.Draw{{3, 1}}},
		{200, []gaas.Draw{{3, 200}}},
		{201, []gaas.Draw{{3, 200}, {2, 1}}},
		{500, []gaas.Draw{{3, 200}, {2, 300}}},
		{750, []gaas.Draw{{3, 200}, {2, 300}, {1, 250}}},
		{1500, []gaas.Draw{{3, 200}, {2, 300}, {1, 1000}}},
		{1501, nil},
	}
	for _, tc := range cases {
		t.Run(tc.cost.String(), func(t *testing.T) {
			draws, available := gaas.PlanDraws(allocs, "A100", tc.cost, now)
			assert.Equal(t, tc.want, draws)
			assert.Equal(t, gaas.Credits(1500), available)
		})
	}
	// For another type only the unscoped one pays.
	draws, available := gaas.PlanDraws(allocs, "H100", 1001, now)
	assert.Nil(t, draws)
	assert.Equal(t, gaas.Credits(1000), available)
}

func TestCovers(t *testing.T) {
	assert.True(t, gaas.Allocation{}.Covers("anything"))
	a := gaas.Allocation{GPUTypes: []string{"A100", "h100"}}
	assert.True(t, a.Covers("a100"))
	assert.True(t, a.Covers("H100"))
	assert.False(t, a.Covers("A10"))
	assert.False(t, a.Covers(""))
	assert.False(t, gaas.Allocation{GPUTypes: []string{}}.Covers("A100"))
}

func TestActiveAt(t *testing.T) {
	a := gaas.Allocation{StartsAt: now, ExpiresAt: at(time.Hour)}
	assert.False(t, a.ActiveAt(now.Add(-time.Nanosecond)))
	assert.True(t, a.ActiveAt(now))
	assert.True(t, a.ActiveAt(now.Add(time.Hour-time.Nanosecond)))
	assert.False(t, a.ActiveAt(now.Add(time.Hour)))
	assert.True(t, gaas.Allocation{}.ActiveAt(now), "no start and no end: always")
}

// A refund goes back to the allocations drawn from last first: the job
// keeps its settled cost from what it drew first.
func TestReturns(t *testing.T) {
	draws := []gaas.Draw{{1, 500}, {2, 300}, {3, 200}}
	cases := []struct {
		refund gaas.Credits
		want   []gaas.Draw
	}{
		{0, nil},
		{1, []gaas.Draw{{3, 1}}},
		{200, []gaas.Draw{{3, 200}}},
		{201, []gaas.Draw{{2, 1}, {3, 200}}},
		{450, []gaas.Draw{{2, 250}, {3, 200}}},
		{999, []gaas.Draw{{1, 499}, {2, 300}, {3, 200}}},
		{1000, draws},
	}
	for _, tc := range cases {
		t.Run(tc.refund.String(), func(t *testing.T) {
			got := gaas.Returns(draws, tc.refund)
			assert.Equal(t, tc.want, got)
			assert.Equal(t, tc.refund, sum(got))
		})
	}
	assert.Nil(t, gaas.Returns(nil, 0))
}

// TestPlanDrawsAndReturnsRandom draws random costs from random
// allocations and returns random refunds, and checks what any plan must
// hold whatever the order: only usable allocations are drawn from, none
// beyond what it holds nor twice, each emptied before the next in
// DrawOrder, the draws sum to the cost or there are none when it is
// short, and the returns sum to the refund with none beyond what was
// drawn.
func TestPlanDrawsAndReturnsRandom(t *testing.T) {
	r := seed(t)
	types := []string{"A100", "a100", "H100", "V100", "L4"}
	for i := range 20_000 {
		allocs := make([]gaas.Allocation, r.IntN(8))
		for j := range allocs {
			a := gaas.Allocation{ID: int64(j + 1), Remaining: gaas.Credits(r.Int64N(1000) - 100)}
			if r.IntN(3) > 0 {
				for _, ty := range types {
					if r.IntN(3) == 0 {
						a.GPUTypes = append(a.GPUTypes, ty)
					}
				}
			}
			a.StartsAt = now.Add(time.Duration(r.IntN(5)-3) * time.Hour)
			if r.IntN(2) == 0 {
				a.ExpiresAt = at(time.Duration(r.IntN(5)-2) * time.Hour)
			}
			allocs[j] = a
		}
		r.Shuffle(len(allocs), func(a, b int) { allocs[a], allocs[b] = allocs[b], allocs[a] })
		gpuType := types[r.IntN(len(types))]
		usable := map[int64]gaas.Credits{}
		var want gaas.Credits
		for _, a := range allocs {
			if a.Remaining > 0 && !now.Before(a.StartsAt) && (a.ExpiresAt == nil || now.Before(*a.ExpiresAt)) &&
				(a.GPUTypes == nil || slices.ContainsFunc(a.GPUTypes, func(s string) bool { return strings.EqualFold(s, gpuType) })) {
				usable[a.ID] = a.Remaining
				want += a.Remaining
			}
		}
		cost := gaas.Credits(r.Int64N(int64(want) + 200))
		draws, available := gaas.PlanDraws(allocs, gpuType, cost, now)
		require.Equal(t, want, available, "case %d", i)
		if cost > available {
			require.Nil(t, draws, "case %d: %s asked, %s available", i, cost, available)
			continue
		}
		require.Equal(t, cost, sum(draws), "case %d", i)
		seen := map[int64]bool{}
		for k, d := range draws {
			held, ok := usable[d.AllocationID]
			require.True(t, ok, "case %d: drew from allocation %d, which may not pay", i, d.AllocationID)
			require.False(t, seen[d.AllocationID], "case %d: drew from allocation %d twice", i, d.AllocationID)
			seen[d.AllocationID] = true
			require.True(t, d.Amount > 0 && d.Amount <= held, "case %d: drew %s of %s", i, d.Amount, held)
			if k < len(draws)-1 {
				require.Equal(t, held, d.Amount, "case %d: drew from the next allocation before emptying %d", i, d.AllocationID)
			}
		}
		// In DrawOrder: each drawn before the next, and every usable one
		// left untouched after the last drawn.
		byID := map[int64]gaas.Allocation{}
		for _, a := range allocs {
			byID[a.ID] = a
		}
		for k := 1; k < len(draws); k++ {
			require.Negative(t, gaas.DrawOrder(byID[draws[k-1].AllocationID], byID[draws[k].AllocationID]), "case %d: %v", i, draws)
		}
		for id := range usable {
			if len(draws) > 0 && !seen[id] {
				require.Negative(t, gaas.DrawOrder(byID[draws[len(draws)-1].AllocationID], byID[id]), "case %d: %d skipped for %v", i, id, draws)
			}
		}
		refund := gaas.Credits(r.Int64N(int64(cost) + 1))
		back := gaas.Returns(draws, refund)
		require.Equal(t, refund, sum(back), "case %d", i)
		took := map[int64]gaas.Credits{}
		for _, d := range draws {
			took[d.AllocationID] = d.Amount
		}
		for _, b := range back {
			require.True(t, b.Amount > 0 && b.Amount <= took[b.AllocationID], "case %d: gave back %s of %s to %d", i, b.Amount, took[b.AllocationID], b.AllocationID)
		}
	}
}

func TestCreateAllocationRequestValidate(t *testing.T) {
	start := now
	ok := []gaas.CreateAllocationRequest{
		{UserID: 2, Amount: 1},
		{UserID: 2, Amount: gaas.MaxCredits, GPUTypes: []string{"A100", "NVIDIA H100 80GB"}, StartsAt: start, ExpiresAt: at(time.Nanosecond), Reason: "grant\n\tfor Q4"},
		{UserID: 2, Amount: 5, ExpiresAt: at(-time.Hour)}, // without a start, the store decides against now
		{UserID: 2, Amount: 5, GPUTypes: make64("T")},
	}
	for _, r := range ok {
		assert.NoError(t, r.Validate(), "%+v", r)
	}
	bad := []struct {
		name string
		r    gaas.CreateAllocationRequest
		want string
	}{
		{"zero_amount", gaas.CreateAllocationRequest{Amount: 0}, "amount: must be greater than 0 and at most 1000000000"},
		{"negative_amount", gaas.CreateAllocationRequest{Amount: -1}, "amount: must be greater than 0 and at most 1000000000"},
		{"amount_above_max", gaas.CreateAllocationRequest{Amount: gaas.MaxCredits + 1}, "amount: must be greater than 0 and at most 1000000000"},
		{"empty_scope", gaas.CreateAllocationRequest{Amount: 1, GPUTypes: []string{}}, "gpu_types: must name 1 to 64 GPU types, or be absent for every type"},
		{"scope_too_wide", gaas.CreateAllocationRequest{Amount: 1, GPUTypes: append(make64("T"), "one more")}, "gpu_types: must name 1 to 64 GPU types, or be absent for every type"},
		{"empty_type", gaas.CreateAllocationRequest{Amount: 1, GPUTypes: []string{"A100", ""}}, "gpu_types: entry 2 must not be empty"},
		{"control_character", gaas.CreateAllocationRequest{Amount: 1, GPUTypes: []string{"A\n100"}}, "gpu_types: entry 1 holds the control character U+000A at byte 1; it may hold no control characters"},
		{"twice_in_other_letters", gaas.CreateAllocationRequest{Amount: 1, GPUTypes: []string{"A100", "H100", "a100"}}, `gpu_types: names "a100" twice`},
		{"expires_at_its_start", gaas.CreateAllocationRequest{Amount: 1, StartsAt: start, ExpiresAt: at(0)}, "expires_at: must be after starts_at"},
		{"expires_before_its_start", gaas.CreateAllocationRequest{Amount: 1, StartsAt: start, ExpiresAt: at(-time.Hour)}, "expires_at: must be after starts_at"},
		{"reason", gaas.CreateAllocationRequest{Amount: 1, Reason: "\x00"}, "reason: holds the control character U+0000 at byte 0; it may hold no control characters other than tab and newline"},
		{"everything_at_once", gaas.CreateAllocationRequest{Amount: 0, GPUTypes: []string{}, StartsAt: start, ExpiresAt: at(0), Reason: "\r"},
			"amount: must be greater than 0 and at most 1000000000; gpu_types: must name 1 to 64 GPU types, or be absent for every type; expires_at: must be after starts_at; reason: holds the control character U+000D at byte 0; it may hold no control characters other than tab and newline"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.r.Validate()
			assert.ErrorIs(t, err, gaas.ErrInvalid)
			assert.EqualError(t, err, "gaas: invalid input: "+tc.want)
		})
	}
}

// make64 returns 64 distinct GPU type names.
func make64(prefix string) []string {
	out := make([]string, gaas.MaxGPUTypesPerAllocation)
	for i := range out {
		out[i] = fmt.Sprintf("%s%d", prefix, i)
	}
	return out
}

func TestUpdateAllocationRequestValidate(t *testing.T) {
	for _, r := range []gaas.UpdateAllocationRequest{
		{AllocationID: 1, End: true},
		{AllocationID: 1, ExpiresAt: at(time.Hour), Reason: "shortened"},
		{AllocationID: 1, ExpiresAt: at(-time.Hour)}, // in the past: ends it now, decided by the store
	} {
		assert.NoError(t, r.Validate(), "%+v", r)
	}
	for _, tc := range []struct {
		r    gaas.UpdateAllocationRequest
		want string
	}{
		{gaas.UpdateAllocationRequest{AllocationID: 1}, "expires_at: is required unless end is true"},
		{gaas.UpdateAllocationRequest{AllocationID: 1, End: true, ExpiresAt: at(time.Hour)}, "end: may not be given with expires_at"},
		{gaas.UpdateAllocationRequest{AllocationID: 1, End: true, Reason: strings.Repeat("x", gaas.ReasonMaxLen+1)}, "reason: must be at most 1024 characters"},
	} {
		err := tc.r.Validate()
		assert.ErrorIs(t, err, gaas.ErrInvalid)
		assert.EqualError(t, err, "gaas: invalid input: "+tc.want)
	}
}

func ExamplePlanDraws() {
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	yearEnd := time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC)
	allocs := []gaas.Allocation{
		{ID: 1, Remaining: 10 * gaas.Credit, Default: true},                     // every type, no end
		{ID: 2, Remaining: 4 * gaas.Credit, GPUTypes: []string{"A100"}},         // A100 only
		{ID: 3, Remaining: 3 * gaas.Credit, ExpiresAt: &yearEnd},                // every type, ends with the year
		{ID: 4, Remaining: 50 * gaas.Credit, GPUTypes: []string{"H100"}},        // not for A100
		{ID: 5, Remaining: 8 * gaas.Credit, StartsAt: yearEnd.AddDate(0, 0, 1)}, // not yet
	}
	draws, available := gaas.PlanDraws(allocs, "a100", 9*gaas.Credit, now)
	fmt.Println(draws, available)

	draws, available = gaas.PlanDraws(allocs, "A100", 20*gaas.Credit, now)
	fmt.Println(draws, available)
	// Output:
	// [{2 4} {3 3} {1 2}] 17
	// [] 17
}

func ExampleReturns() {
	// A job drew 4 credits from allocation 2, 3 from 3 and 2 from the
	// default one, 1; it took a third of its estimate, so 6 of its 9
	// credits come back, to the allocations drawn from last first.
	draws := []gaas.Draw{{AllocationID: 2, Amount: 4000}, {AllocationID: 3, Amount: 3000}, {AllocationID: 1, Amount: 2000}}
	for _, d := range gaas.Returns(draws, 6*gaas.Credit) {
		fmt.Printf("allocation %d gets %s credits back\n", d.AllocationID, d.Amount)
	}
	// Output:
	// allocation 2 gets 1 credits back
	// allocation 3 gets 3 credits back
	// allocation 1 gets 2 credits back
}
