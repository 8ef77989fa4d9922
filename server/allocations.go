package server

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"time"

	"github.com/gaas-io/gaas/gaas"
)

// allocationResponse is an allocation. gpu_types is null when it pays for
// every type, expires_at when it has no end; who made it is either a user,
// created_by, or the system, created_by_system, and the other is null.
// active is whether it pays for jobs at the time of the answer;
// schedule_id and period_start name the schedule that gave it and the
// period it is for, and are null for an allocation given once.
type allocationResponse struct {
	ID              int64       `json:"id"`
	Amount          creditsJSON `json:"amount"`
	Remaining       creditsJSON `json:"remaining"`
	GPUTypes        []string    `json:"gpu_types"`
	StartsAt        time.Time   `json:"starts_at"`
	ExpiresAt       *time.Time  `json:"expires_at"`
	Reason          string      `json:"reason"`
	CreatedBy       *int64      `json:"created_by"`
	CreatedBySystem *string     `json:"created_by_system"`
	CreatedAt       time.Time   `json:"created_at"`
	Default         bool        `json:"default"`
	Active          bool        `json:"active"`
	ScheduleID      *int64      `json:"schedule_id"`
	PeriodStart     *time.Time  `json:"period_start"`
}

// toAllocation gives a's wire form at time now.
func toAllocation(a gaas.Allocation, now time.Time) allocationResponse {
	out := allocationResponse{ID: a.ID, Amount: creditsJSON(a.Amount), Remaining: creditsJSON(a.Remaining),
		GPUTypes: a.GPUTypes, StartsAt: a.StartsAt, ExpiresAt: a.ExpiresAt, Reason: a.Reason,
		CreatedAt: a.CreatedAt, Default: a.Default, Active: a.ActiveAt(now), PeriodStart: a.PeriodStart}
	if a.ScheduleID != 0 {
		out.ScheduleID = &a.ScheduleID
	}
	if a.CreatedBySystem != "" {
		out.CreatedBySystem = &a.CreatedBySystem
	} else {
		out.CreatedBy = &a.CreatedByID
	}
	return out
}

// timeField reads an RFC 3339 timestamp of a body, naming field in
// errors; nil when it is absent or null.
func timeField(v *gaas.ValidationError, s *string, field string) *time.Time {
	if s == nil {
		return nil
	}
	t, err := time.Parse(time.RFC3339Nano, *s)
	if err != nil {
		v.Add(field, "must be an RFC 3339 timestamp, such as 2026-11-28T17:34:24Z")
		return nil
	}
	return &t
}

func handleListAllocations(logger *slog.Logger, allocations gaas.Allocations) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := pathID(r)
		if err == nil {
			err = listAllocations(w, r, logger, allocations, gaas.AllocationsRequest{UserID: id})
		}
		if err != nil {
			writeError(w, r, logger, explain(err, gaas.ErrNotFound, "User %d does not exist.", id))
		}
	})
}

// listAllocations answers with a page of the allocations req names, read
// with the query's ended, limit and cursor.
func listAllocations(w http.ResponseWriter, r *http.Request, logger *slog.Logger, allocations gaas.Allocations, req gaas.AllocationsRequest) error {
	ended, err := queryBool(r, "ended")
	if err != nil {
		return err
	}
	page, err := readPage(r)
	if err != nil {
		return err
	}
	now := time.Now()
	return writeListing(w, r, logger, page, func(p gaas.Page) ([]gaas.Allocation, string, error) {
		req.Ended, req.Page = ended, p
		got, err := allocations.Allocations(r.Context(), callerID(r), req)
		return got.Items, got.NextCursor, err
	}, func(a gaas.Allocation) int64 { return a.ID }, func(a gaas.Allocation) allocationResponse { return toAllocation(a, now) })
}

// createAllocationRequest is the body of POST /users/{id}/allocations.
// gpu_types absent or null pays for every type; starts_at absent is now,
// expires_at absent is no end.
type createAllocationRequest struct {
	Amount    json.RawMessage `json:"amount"`
	GPUTypes  []string        `json:"gpu_types"`
	StartsAt  *string         `json:"starts_at"`
	ExpiresAt *string         `json:"expires_at"`
	Reason    *string         `json:"reason"`

	amount          *gaas.Credits
	starts, expires *time.Time
}

func (c *createAllocationRequest) Valid() error {
	v := &gaas.ValidationError{}
	amount, err := amountField[gaas.Credits](c.Amount, "amount")
	switch {
	case err != nil:
		v.Fields = append(v.Fields, err.(*gaas.ValidationError).Fields...)
	case amount == nil:
		v.Add("amount", "is required")
	}
	c.amount = amount
	c.starts = timeField(v, c.StartsAt, "starts_at")
	c.expires = timeField(v, c.ExpiresAt, "expires_at")
	return v.Err()
}

// request is the library's request for the body, to an account not yet named.
func (c *createAllocationRequest) request() gaas.CreateAllocationRequest {
	cr := gaas.CreateAllocationRequest{Amount: *c.amount, GPUTypes: c.GPUTypes, ExpiresAt: c.expires, Reason: deref(c.Reason)}
	if c.starts != nil {
		cr.StartsAt = *c.starts
	}
	return cr
}

func handleCreateAllocation(logger *slog.Logger, allocations gaas.Allocations) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := pathID(r)
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		req, err := decode[*createAllocationRequest](w, r)
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		cr := req.request()
		cr.UserID = id
		a, err := allocations.CreateAllocation(r.Context(), callerID(r), cr)
		if err != nil {
			writeError(w, r, logger, userDetail(err, id, "Only admins may give allocations.", ""))
			return
		}
		encode(w, http.StatusCreated, toAllocation(a, time.Now()))
	})
}

// updateAllocationRequest is the body of PATCH /allocations/{id}: a new,
// earlier expires_at, or end: true to end it now.
type updateAllocationRequest struct {
	ExpiresAt *string `json:"expires_at"`
	End       *bool   `json:"end"`
	Reason    *string `json:"reason"`

	expires *time.Time
}

func (u *updateAllocationRequest) Valid() error {
	v := &gaas.ValidationError{}
	u.expires = timeField(v, u.ExpiresAt, "expires_at")
	return v.Err()
}

func handleUpdateAllocation(logger *slog.Logger, allocations gaas.Allocations) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := pathID(r)
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		req, err := decode[*updateAllocationRequest](w, r)
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		ur := gaas.UpdateAllocationRequest{AllocationID: id, ExpiresAt: req.expires, End: req.End != nil && *req.End,
			Reason: deref(req.Reason)}
		a, err := allocations.UpdateAllocation(r.Context(), callerID(r), ur)
		if err != nil {
			err = explain(err, gaas.ErrForbidden, "Only admins may change allocations.")
			err = explain(err, gaas.ErrConflict, "Allocation %d cannot be shortened or ended: it is its account's default allocation, "+
				"which has no end (set or grant its credits instead), or it has ended already.", id)
			writeError(w, r, logger, explain(err, gaas.ErrNotFound, "Allocation %d does not exist.", id))
			return
		}
		encode(w, http.StatusOK, toAllocation(a, time.Now()))
	})
}
