package server

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/gaas-io/gaas/gaas"
)

// scheduleResponse is a schedule of recurring allocations. Exactly one of
// user_id and project_id is set; rollover_cap is null unless leftover is
// "rollover"; ended_at is null until it is ended. next_period_start and
// next_period_end bound the first period not yet given.
type scheduleResponse struct {
	ID              int64        `json:"id"`
	UserID          *int64       `json:"user_id"`
	ProjectID       *int64       `json:"project_id"`
	Amount          creditsJSON  `json:"amount"`
	GPUTypes        []string     `json:"gpu_types"`
	Period          gaas.Period  `json:"period"`
	StartsAt        time.Time    `json:"starts_at"`
	TimeZone        string       `json:"time_zone"`
	Leftover        string       `json:"leftover"`
	RolloverCap     *creditsJSON `json:"rollover_cap"`
	Paused          bool         `json:"paused"`
	EndedAt         *time.Time   `json:"ended_at"`
	NextPeriodStart time.Time    `json:"next_period_start"`
	NextPeriodEnd   time.Time    `json:"next_period_end"`
	Reason          string       `json:"reason"`
	CreatedBy       *int64       `json:"created_by"`
	CreatedBySystem *string      `json:"created_by_system"`
	CreatedAt       time.Time    `json:"created_at"`
	UpdatedAt       time.Time    `json:"updated_at"`
}

func toSchedule(s gaas.Schedule) scheduleResponse {
	out := scheduleResponse{ID: s.ID, Amount: creditsJSON(s.Amount), GPUTypes: s.GPUTypes, Period: s.Period,
		StartsAt: s.StartsAt, TimeZone: s.TimeZone, Leftover: string(s.Leftover), Paused: s.Paused, EndedAt: s.EndedAt,
		NextPeriodStart: s.NextPeriod.Start, NextPeriodEnd: s.NextPeriod.End, Reason: s.Reason,
		CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt}
	if s.ProjectID != 0 {
		out.ProjectID = &s.ProjectID
	} else {
		out.UserID = &s.UserID
	}
	if s.Leftover == gaas.LeftoverRollover {
		c := creditsJSON(s.RolloverCap)
		out.RolloverCap = &c
	}
	if s.CreatedBySystem != "" {
		out.CreatedBySystem = &s.CreatedBySystem
	} else {
		out.CreatedBy = &s.CreatedByID
	}
	return out
}

// createScheduleRequest is the body of POST /schedules: user_id or
// project_id, amount and period are required; gpu_types absent pays for
// every type, starts_at absent is now, time_zone absent is UTC, leftover
// absent is "expire".
type createScheduleRequest struct {
	UserID       *int64          `json:"user_id"`
	ProjectID    *int64          `json:"project_id"`
	Amount       json.RawMessage `json:"amount"`
	GPUTypes     []string        `json:"gpu_types"`
	Period       *string         `json:"period"`
	StartsAt     *string         `json:"starts_at"`
	TimeZone     *string         `json:"time_zone"`
	Leftover     *string         `json:"leftover"`
	RolloverCap  json.RawMessage `json:"rollover_cap"`
	GrantCurrent *bool           `json:"grant_current"`
	Reason       *string         `json:"reason"`

	req gaas.CreateScheduleRequest
}

func (c *createScheduleRequest) Valid() error {
	v := &gaas.ValidationError{}
	amount, err := amountField[gaas.Credits](c.Amount, "amount")
	switch {
	case err != nil:
		v.Fields = append(v.Fields, err.(*gaas.ValidationError).Fields...)
	case amount == nil:
		v.Add("amount", "is required")
	}
	capped, err := amountField[gaas.Credits](c.RolloverCap, "rollover_cap")
	if err != nil {
		v.Fields = append(v.Fields, err.(*gaas.ValidationError).Fields...)
	}
	if c.Period == nil {
		v.Add("period", "is required: one of daily, weekly, monthly, quarterly, yearly")
	}
	starts := timeField(v, c.StartsAt, "starts_at")
	if err := v.Err(); err != nil {
		return err
	}
	c.req = gaas.CreateScheduleRequest{
		UserID: deref(c.UserID), ProjectID: deref(c.ProjectID), Amount: *amount, GPUTypes: c.GPUTypes,
		Period: gaas.Period(*c.Period), TimeZone: deref(c.TimeZone), Leftover: gaas.Leftover(deref(c.Leftover)),
		GrantCurrent: deref(c.GrantCurrent), Reason: deref(c.Reason),
	}
	if capped != nil {
		c.req.RolloverCap = *capped
	}
	if starts != nil {
		c.req.StartsAt = *starts
	}
	return c.req.Validate()
}

// scheduleForbidden is what a caller who may not manage schedules is told.
const scheduleForbidden = "Only admins may manage a user's schedules; a project's managers, and the managers of the projects above it, may read, pause and end the project's."

// scheduleGiveForbidden is what a caller who may not make or resume a
// schedule is told.
const scheduleGiveForbidden = "Only admins make or resume schedules: each period gives credits. A project's managers, and the managers of the projects above it, " +
	"may read, pause and end the project's, and move its credits to the projects below it with transfers."

func handleCreateSchedule(logger *slog.Logger, schedules gaas.Schedules) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := decode[*createScheduleRequest](w, r)
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		s, err := schedules.CreateSchedule(r.Context(), callerID(r), req.req)
		if err != nil {
			err = explain(err, gaas.ErrForbidden, scheduleGiveForbidden)
			err = explain(err, gaas.ErrConflict, "The account already has %d schedules, the most it may have, or too many allocations holding credits; "+
				"end a schedule first.", gaas.MaxSchedulesPerAccount)
			if req.req.ProjectID != 0 {
				err = explain(err, gaas.ErrNotFound, "Project %d does not exist.", req.req.ProjectID)
			} else {
				err = explain(err, gaas.ErrNotFound, "User %d does not exist.", req.req.UserID)
			}
			writeError(w, r, logger, err)
			return
		}
		encode(w, http.StatusCreated, toSchedule(s))
	})
}

// queryPositive reads the positive integer of the query parameter name;
// 0 when it is absent.
func queryPositive(r *http.Request, name string) (int64, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, errField(name, "must be a positive integer")
	}
	return n, nil
}

func handleListSchedules(logger *slog.Logger, schedules gaas.Schedules) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req gaas.SchedulesRequest
		page, err := readPage(r)
		if err == nil {
			req.UserID, err = queryPositive(r, "user_id")
		}
		if err == nil {
			req.ProjectID, err = queryPositive(r, "project_id")
		}
		if err == nil {
			err = writeListing(w, r, logger, page, func(p gaas.Page) ([]gaas.Schedule, string, error) {
				req.Page = p
				got, err := schedules.Schedules(r.Context(), callerID(r), req)
				return got.Items, got.NextCursor, err
			}, func(s gaas.Schedule) int64 { return s.ID }, toSchedule)
		}
		if err != nil {
			err = explain(err, gaas.ErrForbidden, scheduleForbidden)
			if req.ProjectID != 0 {
				err = explain(err, gaas.ErrNotFound, "Project %d does not exist.", req.ProjectID)
			} else {
				err = explain(err, gaas.ErrNotFound, "User %d does not exist.", req.UserID)
			}
			writeError(w, r, logger, err)
		}
	})
}

func handleGetSchedule(logger *slog.Logger, schedules gaas.Schedules) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := pathID(r)
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		s, err := schedules.Schedule(r.Context(), callerID(r), gaas.GetScheduleRequest{ScheduleID: id})
		if err != nil {
			writeError(w, r, logger, explain(err, gaas.ErrNotFound, "Schedule %d does not exist.", id))
			return
		}
		encode(w, http.StatusOK, toSchedule(s))
	})
}

// updateScheduleRequest is the body of PATCH /schedules/{id}:
// {"paused": true} or {"paused": false}, or {"ended": true}.
type updateScheduleRequest struct {
	Paused *bool `json:"paused"`
	Ended  *bool `json:"ended"`
}

func (u *updateScheduleRequest) Valid() error {
	if u.Ended != nil && !*u.Ended {
		return errField("ended", "may only be true: an ended schedule stays ended")
	}
	return nil
}

func handleUpdateSchedule(logger *slog.Logger, schedules gaas.Schedules) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := pathID(r)
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		req, err := decode[*updateScheduleRequest](w, r)
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		s, err := schedules.UpdateSchedule(r.Context(), callerID(r), gaas.UpdateScheduleRequest{ScheduleID: id, Paused: req.Paused, End: req.Ended != nil})
		if err != nil {
			err = explain(err, gaas.ErrConflict, "Schedule %d has ended: it can be neither paused nor resumed, nor ended again.", id)
			err = explain(err, gaas.ErrForbidden, scheduleGiveForbidden)
			writeError(w, r, logger, explain(err, gaas.ErrNotFound, "Schedule %d does not exist.", id))
			return
		}
		encode(w, http.StatusOK, toSchedule(s))
	})
}
