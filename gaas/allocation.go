package gaas

import (
	"cmp"
	"context"
	"slices"
	"time"
)

// Allocation is credits given to an account for a time: a user's balance
// is the sum of the Remaining of their active allocations.
//
// Every account has one default allocation, made with it: unscoped and
// without expiry. It holds what Quota.Grant and Quota.Set give, so that
// they keep the meaning they had before allocations.
type Allocation struct {
	ID        int64
	AccountID int64
	// Amount is what grants gave it: its first grant, plus for the default
	// allocation every later grant and set.
	Amount Credits
	// Remaining is Amount plus every charge, refund, expiry and revocation
	// since: the sum of its ledger entries.
	Remaining Credits
	// GPUTypes is its scope: the GPU types it pays for; nil pays for every type.
	GPUTypes []string
	StartsAt time.Time
	// ExpiresAt, when set, is when it ends: from then on it pays for nothing.
	ExpiresAt *time.Time
	Reason    string
	// Who made it: the user CreatedByID, or the system under CreatedBySystem.
	CreatedByID     int64
	CreatedBySystem string
	CreatedAt       time.Time
	Default         bool
	// ScheduleID is the schedule that gave it, for the period that began
	// at PeriodStart; 0 and nil for an allocation given once.
	ScheduleID  int64
	PeriodStart *time.Time
}

// ActiveAt reports whether a pays for jobs at time t: it has started and
// not expired. An allocation expires at its ExpiresAt exactly.
func (a Allocation) ActiveAt(t time.Time) bool {
	return !t.Before(a.StartsAt) && (a.ExpiresAt == nil || t.Before(*a.ExpiresAt))
}

// Covers reports whether a pays for jobs of GPU type name (compared
// without regard to letter case).
func (a Allocation) Covers(name string) bool {
	return a.GPUTypes == nil || slices.ContainsFunc(a.GPUTypes, func(s string) bool { return SameGPUType(s, name) })
}

// Draw is what one job took from one allocation.
type Draw struct {
	AllocationID int64
	Amount       Credits
}

// DrawOrder sorts allocations into the order a submission draws from them:
// narrowest scope first (fewest GPU types; unscoped last), then soonest
// expiry (none last), then oldest (by id, which grows with time).
func DrawOrder(a, b Allocation) int {
	scope := func(x Allocation) int {
		if x.GPUTypes == nil {
			return MaxGPUTypesPerAllocation + 1
		}
		return len(x.GPUTypes)
	}
	if c := cmp.Compare(scope(a), scope(b)); c != 0 {
		return c
	}
	switch {
	case a.ExpiresAt == nil && b.ExpiresAt != nil:
		return 1
	case a.ExpiresAt != nil && b.ExpiresAt == nil:
		return -1
	case a.ExpiresAt != nil:
		if c := a.ExpiresAt.Compare(*b.ExpiresAt); c != 0 {
			return c
		}
	}
	return cmp.Compare(a.ID, b.ID)
}

// PlanDraws decides how cost for a job of GPU type gpuType at time now is
// drawn from allocs: from those active at now that cover the type, in
// DrawOrder, each emptied before the next is touched. It returns the draws
// and what those allocations hold together; when that is less than cost,
// draws is nil and nothing may be charged. allocs is not changed.
func PlanDraws(allocs []Allocation, gpuType string, cost Credits, now time.Time) (draws []Draw, available Credits) {
	usable := make([]Allocation, 0, len(allocs))
	for _, a := range allocs {
		if a.Remaining > 0 && a.ActiveAt(now) && a.Covers(gpuType) {
			usable = append(usable, a)
			available += a.Remaining
		}
	}
	if available < cost {
		return nil, available
	}
	slices.SortFunc(usable, DrawOrder)
	for _, a := range usable {
		if cost == 0 {
			break
		}
		take := min(a.Remaining, cost)
		draws = append(draws, Draw{AllocationID: a.ID, Amount: take})
		cost -= take
	}
	return draws, available
}

// Returns splits a refund among the draws of a job: the job's settled
// cost (charged − refund) is taken from its draws in the order they were
// drawn, and what is left of each goes back to the allocation it came
// from. So a job that drew from a scoped allocation and then the default
// one gives back to the default one first. The returns sum to refund,
// which must be between 0 and the sum of the draws.
func Returns(draws []Draw, refund Credits) []Draw {
	var charged Credits
	for _, d := range draws {
		charged += d.Amount
	}
	keep := charged - refund
	var out []Draw
	for _, d := range draws {
		kept := min(d.Amount, keep)
		keep -= kept
		if back := d.Amount - kept; back > 0 {
			out = append(out, Draw{AllocationID: d.AllocationID, Amount: back})
		}
	}
	return out
}

// MaxGPUTypesPerAllocation bounds the scope of one allocation.
const MaxGPUTypesPerAllocation = 64

// CreateAllocationRequest gives user UserID, or project ProjectID, an
// allocation of Amount credits, for GPUTypes (nil: every type), from
// StartsAt (zero: now) until ExpiresAt (nil: no end).
type CreateAllocationRequest struct {
	UserID    int64
	ProjectID int64
	Amount    Credits
	GPUTypes  []string
	StartsAt  time.Time
	ExpiresAt *time.Time
	Reason    string
}

// Validate lists every field of r that breaks a rule that needs nothing
// but r. The store checks the rest: the user exists, each scoped type is
// in the catalogue (when it is not empty).
func (r CreateAllocationRequest) Validate() error {
	v := &ValidationError{}
	if r.Amount <= 0 || r.Amount > MaxCredits {
		v.Add("amount", "must be greater than 0 and at most %s", MaxCredits)
	}
	validateScope(v, r.GPUTypes)
	if r.ExpiresAt != nil && !r.StartsAt.IsZero() && !r.ExpiresAt.After(r.StartsAt) {
		v.Add("expires_at", "must be after starts_at")
	}
	reasonText.add(v, "reason", r.Reason)
	return v.Err()
}

// validateScope checks a list of GPU types that bounds what something pays
// for or may use: nil (every type), or 1 to MaxGPUTypesPerAllocation
// distinct names.
func validateScope(v *ValidationError, names []string) {
	if names == nil {
		return
	}
	if len(names) == 0 || len(names) > MaxGPUTypesPerAllocation {
		v.Add("gpu_types", "must name 1 to %d GPU types, or be absent for every type", MaxGPUTypesPerAllocation)
	}
	for i, name := range names {
		if err := ValidateGPUType(name); err != nil {
			v.Add("gpu_types", "entry %d %s", i+1, err.(*ValidationError).Fields[0].Message)
			return
		}
		if slices.ContainsFunc(names[:i], func(s string) bool { return SameGPUType(s, name) }) {
			v.Add("gpu_types", "names %q twice", name)
			return
		}
	}
}

// AllocationsRequest asks Allocations.Allocations for a page of user
// UserID's allocations, or project ProjectID's; ended ones (past their
// expiry, or ended early) are listed only when Ended is true.
type AllocationsRequest struct {
	UserID    int64
	ProjectID int64
	Ended     bool
	Page
}

// AllocationPage is one page of allocations, in order of id: the default
// allocation, made with the account, first. NextCursor is empty on the
// last page.
type AllocationPage struct {
	Items      []Allocation
	NextCursor string
}

// MaxLiveAllocations bounds the allocations of one account that hold
// credits and have not ended, which every submission reads: an admin
// giving more is refused until some are spent, expire or are ended. The
// default allocation, and those that unfinished jobs drew from, count even
// when empty, since a grant or a refund fills them again.
const MaxLiveAllocations = 1000

// UpdateAllocationRequest shortens or ends allocation AllocationID. A
// non-nil ExpiresAt must be earlier than the allocation's end (any time,
// when it has none); End ends it now. Ending it, or an ExpiresAt not after
// now, takes back what remains in one revoke entry of the ledger.
type UpdateAllocationRequest struct {
	AllocationID int64
	ExpiresAt    *time.Time
	End          bool
	Reason       string
}

// Validate lists every field of r that breaks a rule.
func (r UpdateAllocationRequest) Validate() error {
	v := &ValidationError{}
	if r.ExpiresAt == nil && !r.End {
		v.Add("expires_at", "is required unless end is true")
	}
	if r.ExpiresAt != nil && r.End {
		v.Add("end", "may not be given with expires_at")
	}
	reasonText.add(v, "reason", r.Reason)
	return v.Err()
}

// Allocations gives and ends allocations. Only admins (and the system)
// create or change them; a user may read their own.
type Allocations interface {
	// CreateAllocation gives an allocation, recorded as a grant entry. An
	// account that already has MaxLiveAllocations holding credits and not
	// ended is ErrConflict.
	CreateAllocation(ctx context.Context, caller int64, req CreateAllocationRequest) (Allocation, error)

	// Allocations lists a user's allocations by id, the default first.
	Allocations(ctx context.Context, caller int64, req AllocationsRequest) (AllocationPage, error)

	// UpdateAllocation shortens or ends an allocation.
	UpdateAllocation(ctx context.Context, caller int64, req UpdateAllocationRequest) (Allocation, error)
}
