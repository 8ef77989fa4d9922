package portal

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gaas-io/gaas/gaas"
)

// allocationsView is a user's or a project's allocations, ended ones
// too, and the forms that give and end them (admins only, as the library
// has it). The "allocations" template shows it.
type allocationsView struct {
	UserID, ProjectID int64
	Items             []allocationRow
	More              bool
	// Balance is what the active ones hold.
	Balance gaas.Credits
	// Controls shows the forms.
	Controls   bool
	Back       string
	Base, CSRF string
}

// allocationRow is an allocation and whether it pays now.
type allocationRow struct {
	gaas.Allocation
	Active bool
	Ended  bool
}

// allocationsOf reads user userID's or project projectID's allocations.
func (p *site) allocationsOf(r *http.Request, userID, projectID int64) (allocationsView, error) {
	page, err := p.svc.Allocations.Allocations(r.Context(), callerID(r), gaas.AllocationsRequest{UserID: userID, ProjectID: projectID, Ended: true,
		Page: gaas.Page{Limit: gaas.MaxLimit}})
	if err != nil {
		return allocationsView{}, err
	}
	v := allocationsView{UserID: userID, ProjectID: projectID, More: page.NextCursor != "", Controls: visitorOf(r).user.IsAdmin(),
		Back: r.URL.Path, Base: p.base(r), CSRF: csrfToken(r)}
	now := time.Now()
	for _, a := range page.Items {
		row := allocationRow{Allocation: a, Active: a.ActiveAt(now), Ended: a.ExpiresAt != nil && !now.Before(*a.ExpiresAt)}
		if row.Active {
			v.Balance += a.Remaining
		}
		v.Items = append(v.Items, row)
	}
	return v, nil
}

// giving is what the forms that give an allocation, or a schedule of
// them, share: whose it is (the form's user_id or project_id), how much,
// for which GPU types, from when and why.
type giving struct {
	UserID, ProjectID int64
	Amount            gaas.Credits
	GPUTypes          []string
	StartsAt          time.Time
	Reason            string
}

func readGiving(r *http.Request) (giving, error) {
	f := r.PostForm
	g := giving{GPUTypes: gpuTypeList(f.Get("gpu_types")), Reason: strings.TrimSpace(f.Get("reason"))}
	g.UserID, _ = strconv.ParseInt(f.Get("user_id"), 10, 64)
	g.ProjectID, _ = strconv.ParseInt(f.Get("project_id"), 10, 64)
	g.UserID, g.ProjectID = max(g.UserID, 0), max(g.ProjectID, 0)
	var err error
	if g.Amount, err = requiredCredits("amount", f.Get("amount")); err != nil {
		return g, err
	}
	g.StartsAt, err = formTime("starts_at", f.Get("starts_at"))
	return g, err
}

// holderLink is the page of a user's or project's allocations.
func holderLink(userID, projectID int64) string {
	if projectID != 0 {
		return projectLink(projectID)
	}
	return "/portal/admin/users/" + strconv.FormatInt(userID, 10)
}

// handleCreateAllocation gives a user or a project an allocation.
func (p *site) handleCreateAllocation() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		const what = "The allocation was not given"
		f := r.PostForm
		g, err := readGiving(r)
		req := gaas.CreateAllocationRequest{UserID: g.UserID, ProjectID: g.ProjectID, Amount: g.Amount, GPUTypes: g.GPUTypes,
			StartsAt: g.StartsAt, Reason: g.Reason}
		if err == nil {
			var t time.Time
			if t, err = formTime("expires_at", f.Get("expires_at")); !t.IsZero() {
				req.ExpiresAt = &t
			}
		}
		if err != nil {
			p.failed(w, r, what, "", err)
			return
		}
		a, err := p.svc.Allocations.CreateAllocation(r.Context(), callerID(r), req)
		if err != nil {
			p.failed(w, r, what, fmt.Sprintf("the account holds %d allocations with credits already; end some first.", gaas.MaxLiveAllocations), err)
			return
		}
		p.redirect(w, r, backTo(r, holderLink(g.UserID, g.ProjectID)), fmt.Sprintf("Allocation %d of %s credits is given.", a.ID, a.Amount))
	})
}

// handleUpdateAllocation ends an allocation now (end=1), or shortens it
// to expires_at; what it holds at its end is taken back.
func (p *site) handleUpdateAllocation() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := pathID(r, "id")
		if !ok {
			p.handleNotFound().ServeHTTP(w, r)
			return
		}
		const what = "The allocation was not changed"
		f := r.PostForm
		req := gaas.UpdateAllocationRequest{AllocationID: id, End: f.Get("end") != "", Reason: strings.TrimSpace(f.Get("reason"))}
		if !req.End {
			t, err := formTime("expires_at", f.Get("expires_at"))
			if err != nil {
				p.failed(w, r, what, "", err)
				return
			}
			if !t.IsZero() {
				req.ExpiresAt = &t
			}
		}
		a, err := p.svc.Allocations.UpdateAllocation(r.Context(), callerID(r), req)
		if err != nil {
			p.failed(w, r, what, "", err)
			return
		}
		msg := fmt.Sprintf("Allocation %d ends at %s.", a.ID, formatDate(*a.ExpiresAt))
		if req.End {
			msg = fmt.Sprintf("Allocation %d is ended; what it held was taken back.", a.ID)
		}
		p.redirect(w, r, backTo(r, "/portal/admin"), msg)
	})
}

// schedulesView is a user's or a project's schedules and the forms that
// pause and end them (admins; managers for a project), and make or resume
// one (Create: admins, as each period gives credits). The "schedules"
// template shows it.
type schedulesView struct {
	UserID, ProjectID int64
	Items             []gaas.Schedule
	More              bool
	Controls          bool
	Create            bool
	Periods           []gaas.Period
	Back              string
	Base, CSRF        string
}

// schedulesOf reads user userID's or project projectID's schedules.
func (p *site) schedulesOf(r *http.Request, userID, projectID int64) (schedulesView, error) {
	page, err := p.svc.Schedules.Schedules(r.Context(), callerID(r), gaas.SchedulesRequest{UserID: userID, ProjectID: projectID,
		Page: gaas.Page{Limit: gaas.MaxLimit}})
	if err != nil {
		return schedulesView{}, err
	}
	return schedulesView{UserID: userID, ProjectID: projectID, Items: page.Items, More: page.NextCursor != "", Controls: true,
		Create: visitorOf(r).user.IsAdmin(), Periods: gaas.Periods(), Back: r.URL.Path, Base: p.base(r), CSRF: csrfToken(r)}, nil
}

// handleCreateSchedule makes a schedule of a user or a project: the
// library lets only admins.
func (p *site) handleCreateSchedule() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		const what = "The schedule was not made"
		f := r.PostForm
		g, err := readGiving(r)
		req := gaas.CreateScheduleRequest{UserID: g.UserID, ProjectID: g.ProjectID, Amount: g.Amount, GPUTypes: g.GPUTypes,
			StartsAt: g.StartsAt, Reason: g.Reason, Period: gaas.Period(f.Get("period")), TimeZone: strings.TrimSpace(f.Get("time_zone")),
			GrantCurrent: f.Get("grant_current") != ""}
		if err == nil {
			var c *gaas.Credits
			if c, err = optionalCredits("rollover_cap", f.Get("rollover_cap")); c != nil && *c > 0 {
				req.Leftover, req.RolloverCap = gaas.LeftoverRollover, *c
			}
		}
		if err != nil {
			p.failed(w, r, what, "", err)
			return
		}
		s, err := p.svc.Schedules.CreateSchedule(r.Context(), callerID(r), req)
		if err != nil {
			p.failed(w, r, what, fmt.Sprintf("the account has %d schedules already; end some first.", gaas.MaxSchedulesPerAccount), err)
			return
		}
		p.redirect(w, r, backTo(r, holderLink(g.UserID, g.ProjectID)), fmt.Sprintf("Schedule %d gives %s credits %s.", s.ID, s.Amount, s.Period))
	})
}

// handleUpdateSchedule pauses, resumes or ends a schedule: the form's
// action.
func (p *site) handleUpdateSchedule() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := pathID(r, "id")
		if !ok {
			p.handleNotFound().ServeHTTP(w, r)
			return
		}
		req := gaas.UpdateScheduleRequest{ScheduleID: id}
		paused, resumed := true, false
		var done string
		switch r.PostForm.Get("action") {
		case "pause":
			req.Paused, done = &paused, "paused"
		case "resume":
			req.Paused, done = &resumed, "resumed"
		case "end":
			req.End, done = true, "ended"
		default:
			p.renderError(w, r, http.StatusUnprocessableEntity, "Say whether to pause, resume or end the schedule; nothing was changed.")
			return
		}
		if _, err := p.svc.Schedules.UpdateSchedule(r.Context(), callerID(r), req); err != nil {
			p.failed(w, r, "The schedule was not changed", "it is ended already.", err)
			return
		}
		p.redirect(w, r, backTo(r, "/portal/admin"), fmt.Sprintf("Schedule %d is %s.", id, done))
	})
}
