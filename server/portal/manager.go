package portal

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gaas-io/gaas/gaas"
)

// projectsPage is the data of the list of the visitor's projects.
type projectsPage struct {
	Memberships []gaas.Membership
}

// handleProjects lists the visitor's projects, each linked to its page.
func (p *site) handleProjects() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ms, err := p.svc.Projects.Memberships(r.Context(), callerID(r), gaas.MembershipsRequest{Page: gaas.Page{Limit: gaas.MaxLimit}})
		if err != nil {
			p.showError(w, r, err)
			return
		}
		p.render(w, r, http.StatusOK, "projects", "Your projects", projectsPage{Memberships: ms.Items})
	})
}

// projectPage is the data of a project's page. What the library does not
// let the visitor see is left out, and its Hidden note says so.
type projectPage struct {
	Project gaas.Project
	Parent  string
	// Role is the visitor's in the project; empty for an admin who is
	// not a member.
	Role    gaas.ProjectRole
	Admin   bool
	Manager bool
	// Balance is what the project's active allocations hold.
	Balance     gaas.Credits
	Allocations *allocationsView
	Members     []memberRow
	MembersNext pager
	Usage       *chart
	UsageNote   string
	// Jobs are shown to managers and admins, with the controls to approve
	// and reject when the library lets the visitor.
	Jobs      *decideTable
	JobsPager pager
	Filter    jobsFilter
	Schedules *schedulesView
	Hidden    []string
}

// jobsFilter is a listing's filter of jobs, as given.
type jobsFilter struct {
	Status, GPUType string
	Statuses        []gaas.JobStatus
	GPUTypes        []string
	Error           string
}

// memberRow is a member as the project's page lists them.
type memberRow struct {
	gaas.Member
	Name string
}

// memberName names member m by the username the library gives with it,
// or "user N" when it gives none.
func memberName(m gaas.Member) string {
	if m.Username != "" {
		return m.Username
	}
	return "user " + strconv.FormatInt(m.UserID, 10)
}

// handleProject shows a project to its members and admins: more to its
// managers and admins. Anyone else is told there is no such page, as the
// library answers.
func (p *site) handleProject() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := pathID(r, "id")
		if !ok {
			p.handleNotFound().ServeHTTP(w, r)
			return
		}
		ctx, me := r.Context(), callerID(r)
		pr, err := p.svc.Projects.Project(ctx, me, gaas.GetProjectRequest{Project: gaas.ProjectRef(strconv.FormatInt(id, 10))})
		if err != nil {
			p.showError(w, r, err)
			return
		}
		data := projectPage{Project: pr, Admin: visitorOf(r).user.IsAdmin()}
		if pr.ParentID != 0 {
			data.Parent = "#" + strconv.FormatInt(pr.ParentID, 10)
			if parent, err := p.svc.Projects.Project(ctx, me, gaas.GetProjectRequest{Project: gaas.ProjectRef(strconv.FormatInt(pr.ParentID, 10))}); err == nil {
				data.Parent = parent.Name
			}
		}
		ms, err := p.svc.Projects.Memberships(ctx, me, gaas.MembershipsRequest{Page: gaas.Page{Limit: gaas.MaxLimit}})
		if err != nil {
			p.showError(w, r, err)
			return
		}
		for _, m := range ms.Items {
			if m.Project.ID == id {
				data.Role = m.Member.Role
			}
		}
		data.Manager = data.Admin || data.Role == gaas.ProjectManager
		hide := func(what string, err error) error {
			if errors.Is(err, gaas.ErrForbidden) || errors.Is(err, gaas.ErrNotFound) {
				data.Hidden = append(data.Hidden, what)
				return nil
			}
			return err
		}

		allocs, err := p.allocationsOf(r, 0, id)
		if err = hide("its allocations", err); err != nil {
			p.showError(w, r, err)
			return
		} else if allocs.Back != "" {
			data.Allocations, data.Balance = &allocs, allocs.Balance
		}
		members, err := p.svc.Projects.Members(ctx, me, gaas.MembersRequest{ProjectID: id, Page: gaas.Page{Cursor: r.URL.Query().Get("members")}})
		if err = hide("its members", err); err != nil {
			p.showError(w, r, err)
			return
		}
		for _, m := range members.Items {
			data.Members = append(data.Members, memberRow{Member: m, Name: memberName(m)})
		}
		if members.NextCursor != "" {
			q := r.URL.Query()
			q.Set("members", members.NextCursor)
			data.MembersNext.Next = p.link(r, r.URL.Path) + "?" + q.Encode()
		}

		data.Usage, data.UsageNote, err = p.weeklyUsage(r, gaas.UsageRequest{ProjectID: id}, time.Now())
		if err = hide("its usage", err); err != nil {
			p.showError(w, r, err)
			return
		}

		if err := p.projectJobs(r, &data); err != nil {
			if err = hide("its jobs", err); err != nil {
				p.showError(w, r, err)
				return
			}
		}
		schedules, err := p.schedulesOf(r, 0, id)
		if err = hide("its schedules", err); err != nil {
			p.showError(w, r, err)
			return
		} else if schedules.Back != "" {
			schedules.Controls = data.Manager
			data.Schedules = &schedules
		}
		status := http.StatusOK
		if data.Filter.Error != "" {
			status = http.StatusUnprocessableEntity
		}
		p.render(w, r, status, "project", "Project "+pr.Name, data)
	})
}

// projectJobs lists the project's jobs by the page's filter, for its
// managers and admins, with the controls to decide PENDING ones when the
// library would let the visitor: admins, and managers of a project that
// lets them approve.
func (p *site) projectJobs(r *http.Request, data *projectPage) error {
	q := r.URL.Query()
	data.Filter = jobsFilter{Status: q.Get("status"), GPUType: q.Get("gpu_type"), Statuses: gaas.Statuses()}
	types, err := p.gpuTypeNames(r)
	if err != nil {
		return err
	}
	data.Filter.GPUTypes = types
	if data.Filter.Status != "" && !gaas.JobStatus(data.Filter.Status).Valid() {
		data.Filter.Error = "status must be one of " + joinStatuses() + "."
		data.Jobs = &decideTable{}
		return nil
	}
	page, err := p.svc.Jobs.List(r.Context(), callerID(r), gaas.JobFilter{ProjectID: data.Project.ID, Status: gaas.JobStatus(data.Filter.Status),
		GPUType: data.Filter.GPUType, Page: gaas.Page{Cursor: q.Get("cursor")}})
	var ve *gaas.ValidationError
	switch {
	case errors.As(err, &ve):
		data.Filter.Error = fieldErrors(ve)
		data.Jobs = &decideTable{}
		return nil
	case err != nil:
		return err
	}
	controls := data.Admin || (data.Role == gaas.ProjectManager && data.Project.ManagersApprove)
	t := p.newDecideTable(r, "The project's jobs, newest first", page.Items, controls)
	data.Jobs, data.JobsPager = &t, p.pageLinks(r, page.NextCursor)
	return nil
}

// projectOf is the project of r's path, as the library shows it to the
// visitor.
func (p *site) projectOf(r *http.Request) (gaas.Project, error) {
	id, ok := pathID(r, "id")
	if !ok {
		return gaas.Project{}, gaas.ErrNotFound
	}
	return p.svc.Projects.Project(r.Context(), callerID(r), gaas.GetProjectRequest{Project: gaas.ProjectRef(strconv.FormatInt(id, 10))})
}

// projectID is the id of the project that a form's field names by name
// or id; one the visitor may not see names none.
func (p *site) projectID(r *http.Request, field, ref string) (int64, error) {
	pr, err := p.svc.Projects.Project(r.Context(), callerID(r), gaas.GetProjectRequest{Project: gaas.ProjectRef(ref)})
	if errors.Is(err, gaas.ErrNotFound) {
		return 0, gaas.Invalid(field, "names no project")
	}
	return pr.ID, err
}

// projectMemberOf is the project of r's path and the user its "user"
// names.
func (p *site) projectMemberOf(r *http.Request) (gaas.Project, int64, error) {
	pr, err := p.projectOf(r)
	user, ok := pathID(r, "user")
	if err == nil && !ok {
		err = gaas.ErrNotFound
	}
	return pr, user, err
}

// projectLink is the page of project id.
func projectLink(id int64) string { return "/portal/projects/" + strconv.FormatInt(id, 10) }

// memberUser finds the user a form names: by id, or by username for a
// visitor the library lets look users up (admins).
func (p *site) memberUser(r *http.Request, s string) (int64, error) {
	s = strings.TrimSpace(s)
	if id, err := strconv.ParseInt(s, 10, 64); err == nil && id > 0 {
		return id, nil
	}
	if err := gaas.ValidateUsername(s); err != nil {
		return 0, gaas.Invalid("user", "must be a user's id or username")
	}
	page, err := p.svc.Users.Users(r.Context(), callerID(r), gaas.UserFilter{Username: s})
	switch {
	case errors.Is(err, gaas.ErrForbidden):
		return 0, gaas.Invalid("user", "must be the user's id: only admins look users up by name")
	case err != nil:
		return 0, err
	case len(page.Items) == 0:
		return 0, gaas.Invalid("user", "names no user")
	}
	return page.Items[0].ID, nil
}

// handleSetMember adds a member to a project, or changes a member's role
// and limit: managers add members, admins anyone.
func (p *site) handleSetMember() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pr, err := p.projectOf(r)
		if err != nil {
			p.showError(w, r, err)
			return
		}
		const what = "The member was not added"
		user, err := p.memberUser(r, r.PostForm.Get("user"))
		if err != nil {
			p.failed(w, r, what, "", err)
			return
		}
		limit, err := optionalCredits("limit", r.PostForm.Get("limit"))
		if err != nil {
			p.failed(w, r, what, "", err)
			return
		}
		req := gaas.SetMemberRequest{ProjectID: pr.ID, UserID: user, Role: gaas.ProjectRole(r.PostForm.Get("role")), Limit: limit,
			GPUTypes: gpuTypeList(r.PostForm.Get("gpu_types"))}
		m, err := p.svc.Projects.SetMember(r.Context(), callerID(r), req)
		if err != nil {
			p.failed(w, r, what, "", err)
			return
		}
		p.redirect(w, r, projectLink(pr.ID), fmt.Sprintf("%s is a %s of project %s.", memberName(m), req.Role, pr.Name))
	})
}

// handleMemberLimit sets or (empty) removes a member's limit.
func (p *site) handleMemberLimit() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pr, user, err := p.projectMemberOf(r)
		if err != nil {
			p.showError(w, r, err)
			return
		}
		const what = "The limit was not changed"
		limit, err := optionalCredits("limit", r.PostForm.Get("limit"))
		if err != nil {
			p.failed(w, r, what, "", err)
			return
		}
		m, err := p.svc.Projects.UpdateMember(r.Context(), callerID(r), gaas.UpdateMemberRequest{ProjectID: pr.ID, UserID: user, SetLimit: true, Limit: limit})
		if err != nil {
			p.failed(w, r, what, "", err)
			return
		}
		name := memberName(m)
		msg := fmt.Sprintf("%s has no limit in project %s now.", name, pr.Name)
		if limit != nil {
			msg = fmt.Sprintf("%s may have spent at most %s credits of project %s at once now.", name, *limit, pr.Name)
		}
		p.redirect(w, r, projectLink(pr.ID), msg)
	})
}

// handleRemoveMember takes a member out of a project; their jobs stay
// the project's.
func (p *site) handleRemoveMember() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pr, user, err := p.projectMemberOf(r)
		if err != nil {
			p.showError(w, r, err)
			return
		}
		name := p.usernames(r, []int64{user})[user]
		if err := p.svc.Projects.RemoveMember(r.Context(), callerID(r), gaas.RemoveMemberRequest{ProjectID: pr.ID, UserID: user}); err != nil {
			p.failed(w, r, "The member was not removed", "", err)
			return
		}
		p.redirect(w, r, projectLink(pr.ID), fmt.Sprintf("%s is no longer a member of project %s.", name, pr.Name))
	})
}
