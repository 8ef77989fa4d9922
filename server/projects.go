package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/gaas-io/gaas/gaas"
)

// projectResponse is a project. parent_id is null at the top of the tree,
// cap when it has none; spent is what it and its descendants have spent.
type projectResponse struct {
	ID              int64        `json:"id"`
	Name            string       `json:"name"`
	Description     string       `json:"description"`
	ParentID        *int64       `json:"parent_id"`
	Cap             *creditsJSON `json:"cap"`
	Spent           creditsJSON  `json:"spent"`
	ManagersApprove bool         `json:"managers_approve"`
	AutoApprove     bool         `json:"auto_approve"`
	CreatedAt       time.Time    `json:"created_at"`
	UpdatedAt       time.Time    `json:"updated_at"`
}

func toProject(p gaas.Project) projectResponse {
	return projectResponse{ID: p.ID, Name: p.Name, Description: p.Description, ParentID: nonZero(p.ParentID),
		Cap: (*creditsJSON)(p.Cap), Spent: creditsJSON(p.Spent), ManagersApprove: p.ManagersApprove,
		AutoApprove: p.AutoApprove, CreatedAt: p.CreatedAt, UpdatedAt: p.UpdatedAt}
}

// nonZero is id, or nil when it is 0: the wire's null for "none".
func nonZero(id int64) *int64 {
	if id == 0 {
		return nil
	}
	return &id
}

// memberResponse is a member of a project. limit and gpu_types are null
// when they do not bound the member. username is optional in the API:
// servers before it answered without it.
type memberResponse struct {
	UserID   int64            `json:"user_id"`
	Username string           `json:"username,omitempty"`
	Role     gaas.ProjectRole `json:"role"`
	Limit    *creditsJSON     `json:"limit"`
	GPUTypes []string         `json:"gpu_types"`
	Spent    creditsJSON      `json:"spent"`
}

func toMember(m gaas.Member) memberResponse {
	return memberResponse{UserID: m.UserID, Username: m.Username, Role: m.Role, Limit: (*creditsJSON)(m.Limit), GPUTypes: m.GPUTypes, Spent: creditsJSON(m.Spent)}
}

// membershipResponse is one of the caller's projects, in GET /me.
type membershipResponse struct {
	ID        int64            `json:"id"`
	Name      string           `json:"name"`
	Role      gaas.ProjectRole `json:"role"`
	Balance   creditsJSON      `json:"balance"`
	Limit     *creditsJSON     `json:"limit"`
	LimitLeft *creditsJSON     `json:"limit_left"`
	Spent     creditsJSON      `json:"spent"`
	Default   bool             `json:"default"`
}

func toMembership(m gaas.Membership) membershipResponse {
	return membershipResponse{ID: m.Project.ID, Name: m.Project.Name, Role: m.Member.Role, Balance: creditsJSON(m.Balance),
		Limit: (*creditsJSON)(m.Member.Limit), LimitLeft: (*creditsJSON)(m.LimitLeft), Spent: creditsJSON(m.Member.Spent), Default: m.Default}
}

// meProjects is how many of the caller's projects GET /me lists: the
// first page of them.
const meProjects = 50

// projectField reads a reference to a project: a name string or a positive
// integer id. Absent or null is "" and ok false.
func projectField(v *gaas.ValidationError, raw json.RawMessage, field string) (ref gaas.ProjectRef, ok bool) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", false
	}
	var name string
	if json.Unmarshal(raw, &name) == nil {
		if name == "" {
			v.Add(field, "must be a project's name or id")
		}
		return gaas.ProjectRef(name), name != ""
	}
	id, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil || id <= 0 {
		v.Add(field, "must be a project's name (a string) or id (a positive integer)")
		return "", false
	}
	return gaas.ProjectRef(itoa(id)), true
}

// pathProject reads the {id} of a project's route: its id or its name.
func pathProject(r *http.Request) gaas.ProjectRef { return gaas.ProjectRef(r.PathValue("id")) }

// resolveProject finds the project of the route for the caller; a project
// the caller may not see is a 404, as one that does not exist.
func resolveProject(r *http.Request, projects gaas.Projects) (gaas.Project, error) {
	ref := pathProject(r)
	p, err := projects.Project(r.Context(), callerID(r), gaas.GetProjectRequest{Project: ref})
	return p, explain(err, gaas.ErrNotFound, "Project %s does not exist.", ref)
}

// projectDetail words the refusals of an action on project ref.
func projectDetail(err error, ref any, forbidden string) error {
	err = explain(err, gaas.ErrForbidden, "%s", forbidden)
	return explain(err, gaas.ErrNotFound, "Project %v does not exist.", ref)
}

// limitDetail words a job refused by a project's member limit or cap.
func limitDetail(le *gaas.LimitError) string {
	return fmt.Sprintf("Not enough credits under the %s of project %s: the job costs %s, and %s are left there.", le.Bound, le.Project, le.Asked, le.Remaining)
}

// createProjectRequest is the body of POST /projects.
type createProjectRequest struct {
	Name            *string         `json:"name"`
	Description     *string         `json:"description"`
	ParentID        *int64          `json:"parent_id"`
	Cap             json.RawMessage `json:"cap"`
	ManagersApprove *bool           `json:"managers_approve"`
	AutoApprove     *bool           `json:"auto_approve"`

	cap *gaas.Credits
}

func (c *createProjectRequest) Valid() error {
	v := &gaas.ValidationError{}
	if c.Name == nil {
		v.Add("name", "is required")
	}
	if c.ParentID != nil && *c.ParentID <= 0 {
		v.Add("parent_id", "must be a project's id, or null for none")
	}
	c.cap = creditsField(v, c.Cap, "cap")
	return v.Err()
}

// creditsField reads an amount of credits into v's errors; nil when it is
// absent or null.
func creditsField(v *gaas.ValidationError, raw json.RawMessage, field string) *gaas.Credits {
	c, err := amountField[gaas.Credits](raw, field)
	if err != nil {
		v.Fields = append(v.Fields, err.(*gaas.ValidationError).Fields...)
	}
	return c
}

func handleCreateProject(logger *slog.Logger, projects gaas.Projects) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := decode[*createProjectRequest](w, r)
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		cr := gaas.CreateProjectRequest{Name: *req.Name, Description: deref(req.Description), Cap: req.cap,
			ManagersApprove: req.ManagersApprove != nil && *req.ManagersApprove, AutoApprove: req.AutoApprove != nil && *req.AutoApprove}
		if req.ParentID != nil {
			cr.ParentID = *req.ParentID
		}
		p, err := projects.CreateProject(r.Context(), callerID(r), cr)
		if err != nil {
			err = explain(err, gaas.ErrForbidden, "Only admins may create projects.")
			writeError(w, r, logger, explain(err, gaas.ErrConflict, "The project name %q is already taken.", *req.Name))
			return
		}
		w.Header().Set("Location", "/projects/"+itoa(p.ID))
		encode(w, http.StatusCreated, toProject(p))
	})
}

func handleListProjects(logger *slog.Logger, projects gaas.Projects) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		page, err := readPage(r)
		if err == nil {
			err = writeListing(w, r, logger, page, func(p gaas.Page) ([]gaas.Project, string, error) {
				got, err := projects.Projects(r.Context(), callerID(r), gaas.ProjectsRequest{Page: p})
				return got.Items, got.NextCursor, err
			}, func(p gaas.Project) int64 { return p.ID }, toProject)
		}
		if err != nil {
			writeError(w, r, logger, err)
		}
	})
}

func handleGetProject(logger *slog.Logger, projects gaas.Projects) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := resolveProject(r, projects)
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		encode(w, http.StatusOK, toProject(p))
	})
}

// updateProjectRequest is the body of PATCH /projects/{id}: what is
// absent stays; cap null removes the cap.
type updateProjectRequest struct {
	Description     *string         `json:"description"`
	Cap             json.RawMessage `json:"cap"`
	ManagersApprove *bool           `json:"managers_approve"`
	AutoApprove     *bool           `json:"auto_approve"`

	cap *gaas.Credits
}

func (u *updateProjectRequest) Valid() error {
	v := &gaas.ValidationError{}
	u.cap = creditsField(v, u.Cap, "cap")
	return v.Err()
}

func handleUpdateProject(logger *slog.Logger, projects gaas.Projects) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := resolveProject(r, projects)
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		req, err := decode[*updateProjectRequest](w, r)
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		p, err = projects.UpdateProject(r.Context(), callerID(r), gaas.UpdateProjectRequest{ProjectID: p.ID,
			Description: req.Description, SetCap: len(req.Cap) > 0, Cap: req.cap, ManagersApprove: req.ManagersApprove,
			AutoApprove: req.AutoApprove})
		if err != nil {
			writeError(w, r, logger, projectDetail(err, pathProject(r), "Only admins may change projects."))
			return
		}
		encode(w, http.StatusOK, toProject(p))
	})
}

// memberRequest is the body of POST /projects/{id}/members (user_id
// required, role member when absent) and of PATCH
// /projects/{id}/members/{user_id} (no user_id; what is absent stays).
// limit and gpu_types null remove them.
type memberRequest struct {
	UserID   *int64          `json:"user_id"`
	Role     *string         `json:"role"`
	Limit    json.RawMessage `json:"limit"`
	GPUTypes json.RawMessage `json:"gpu_types"`

	limit    *gaas.Credits
	gpuTypes []string
}

func (m *memberRequest) Valid() error {
	v := &gaas.ValidationError{}
	if m.UserID != nil && *m.UserID <= 0 {
		v.Add("user_id", "must be a user's id")
	}
	m.limit = creditsField(v, m.Limit, "limit")
	if len(m.GPUTypes) > 0 && string(m.GPUTypes) != "null" {
		if err := json.Unmarshal(m.GPUTypes, &m.gpuTypes); err != nil {
			v.Add("gpu_types", "must be a list of GPU type names, or null for every type")
		}
	}
	return v.Err()
}

// apply sets on mem what the request gives.
func (m *memberRequest) apply(mem *gaas.SetMemberRequest) {
	if m.Role != nil {
		mem.Role = gaas.ProjectRole(*m.Role)
	}
	if len(m.Limit) > 0 {
		mem.Limit = m.limit
	}
	if len(m.GPUTypes) > 0 {
		mem.GPUTypes = m.gpuTypes
	}
}

// memberDetail words the refusals of a change to a member of a project
// the caller can see: a 404 left is about the user, said by missing.
func memberDetail(err error, missing string) error {
	err = explain(err, gaas.ErrForbidden, "Only admins appoint managers; a project's managers add, change and remove its members.")
	return explain(err, gaas.ErrNotFound, "%s", missing)
}

// notMember says that user is no member of project p.
func notMember(user int64, p gaas.Project) string {
	return fmt.Sprintf("User %d is not a member of project %s.", user, p.Name)
}

func handleAddMember(logger *slog.Logger, projects gaas.Projects) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := resolveProject(r, projects)
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		req, err := decode[*memberRequest](w, r)
		if err == nil && req.UserID == nil {
			err = errField("user_id", "is required")
		}
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		sr := gaas.SetMemberRequest{ProjectID: p.ID, UserID: *req.UserID, Role: gaas.ProjectMember}
		req.apply(&sr)
		m, err := projects.SetMember(r.Context(), callerID(r), sr)
		if err != nil {
			writeError(w, r, logger, memberDetail(err, fmt.Sprintf("User %d does not exist.", *req.UserID)))
			return
		}
		w.Header().Set("Location", "/projects/"+itoa(p.ID)+"/members/"+itoa(m.UserID))
		encode(w, http.StatusCreated, toMember(m))
	})
}

// pathUserID reads the {user_id} of a member's route.
func pathUserID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("user_id"), 10, 64)
	if err != nil {
		return 0, errField("user_id", "must be an integer")
	}
	return id, nil
}

func handleUpdateMember(logger *slog.Logger, projects gaas.Projects) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := resolveProject(r, projects)
		var user int64
		if err == nil {
			user, err = pathUserID(r)
		}
		var req *memberRequest
		if err == nil {
			req, err = decode[*memberRequest](w, r)
		}
		if err == nil && req.UserID != nil {
			err = errField("user_id", "is not a field of this request: the user is named in the path")
		}
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		ur := gaas.UpdateMemberRequest{ProjectID: p.ID, UserID: user, SetLimit: len(req.Limit) > 0, Limit: req.limit,
			SetGPUTypes: len(req.GPUTypes) > 0, GPUTypes: req.gpuTypes}
		if req.Role != nil {
			role := gaas.ProjectRole(*req.Role)
			ur.Role = &role
		}
		m, err := projects.UpdateMember(r.Context(), callerID(r), ur)
		if err != nil {
			writeError(w, r, logger, memberDetail(err, notMember(user, p)))
			return
		}
		encode(w, http.StatusOK, toMember(m))
	})
}

func handleRemoveMember(logger *slog.Logger, projects gaas.Projects) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := resolveProject(r, projects)
		var user int64
		if err == nil {
			user, err = pathUserID(r)
		}
		if err == nil {
			err = projects.RemoveMember(r.Context(), callerID(r), gaas.RemoveMemberRequest{ProjectID: p.ID, UserID: user})
			err = memberDetail(err, notMember(user, p))
		}
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

func handleListMembers(logger *slog.Logger, projects gaas.Projects) http.Handler {
	return handleProjectListing(logger, projects, "Your role does not allow this.",
		func(r *http.Request, project int64, pg gaas.Page) ([]gaas.Member, string, error) {
			got, err := projects.Members(r.Context(), callerID(r), gaas.MembersRequest{ProjectID: project, Page: pg})
			return got.Items, got.NextCursor, err
		}, func(m gaas.Member) int64 { return m.UserID }, toMember)
}

// handleProjectListing answers with a page of what list reads of the
// project of the route; forbidden words a refusal.
func handleProjectListing[S, T any](logger *slog.Logger, projects gaas.Projects, forbidden string,
	list func(r *http.Request, project int64, pg gaas.Page) ([]S, string, error), id func(S) int64, conv func(S) T) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := resolveProject(r, projects)
		var page gaas.Page
		if err == nil {
			page, err = readPage(r)
		}
		if err == nil {
			err = writeListing(w, r, logger, page, func(pg gaas.Page) ([]S, string, error) { return list(r, p.ID, pg) }, id, conv)
		}
		if err != nil {
			writeError(w, r, logger, projectDetail(err, pathProject(r), forbidden))
		}
	})
}

func handleCreateProjectAllocation(logger *slog.Logger, projects gaas.Projects, allocations gaas.Allocations) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := resolveProject(r, projects)
		var req *createAllocationRequest
		if err == nil {
			req, err = decode[*createAllocationRequest](w, r)
		}
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		cr := req.request()
		cr.ProjectID = p.ID
		a, err := allocations.CreateAllocation(r.Context(), callerID(r), cr)
		if err != nil {
			writeError(w, r, logger, projectDetail(err, pathProject(r), "Only admins may give allocations."))
			return
		}
		encode(w, http.StatusCreated, toAllocation(a, time.Now()))
	})
}

func handleListProjectAllocations(logger *slog.Logger, projects gaas.Projects, allocations gaas.Allocations) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := resolveProject(r, projects)
		if err == nil {
			err = listAllocations(w, r, logger, allocations, gaas.AllocationsRequest{ProjectID: p.ID})
		}
		if err != nil {
			writeError(w, r, logger, projectDetail(err, pathProject(r), "Your role does not allow this."))
		}
	})
}

// transferRequest is the body of POST /projects/{id}/transfers.
type transferRequest struct {
	To        *int64          `json:"to"`
	Amount    json.RawMessage `json:"amount"`
	ExpiresAt *string         `json:"expires_at"`
	Reason    *string         `json:"reason"`

	amount  *gaas.Credits
	expires *time.Time
}

func (t *transferRequest) Valid() error {
	v := &gaas.ValidationError{}
	if t.To == nil {
		v.Add("to", "is required")
	}
	t.amount = creditsField(v, t.Amount, "amount")
	if len(t.Amount) == 0 || string(t.Amount) == "null" {
		v.Add("amount", "is required")
	}
	t.expires = timeField(v, t.ExpiresAt, "expires_at")
	return v.Err()
}

func handleTransfer(logger *slog.Logger, projects gaas.Projects) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := resolveProject(r, projects)
		var req *transferRequest
		if err == nil {
			req, err = decode[*transferRequest](w, r)
		}
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		a, err := projects.Transfer(r.Context(), callerID(r), gaas.TransferRequest{FromID: p.ID, ToID: *req.To,
			Amount: *req.amount, ExpiresAt: req.expires, Reason: deref(req.Reason)})
		var short *gaas.QuotaError
		if errors.As(err, &short) {
			err = explain(err, gaas.ErrQuotaExceeded, "Not enough credits to transfer: asked for %s, %s left that can be given.", short.Asked, short.Remaining)
		}
		if err != nil {
			writeError(w, r, logger, projectDetail(err, pathProject(r), "Only admins and the project's managers may transfer its credits."))
			return
		}
		encode(w, http.StatusCreated, toAllocation(a, time.Now()))
	})
}

func handleProjectLedger(logger *slog.Logger, projects gaas.Projects) http.Handler {
	return handleProjectListing(logger, projects, "Only admins and the project's managers may read its ledger.",
		func(r *http.Request, project int64, pg gaas.Page) ([]gaas.LedgerEntry, string, error) {
			got, err := projects.ProjectLedger(r.Context(), callerID(r), gaas.ProjectLedgerRequest{ProjectID: project, Page: pg})
			return got.Items, got.NextCursor, err
		}, func(e gaas.LedgerEntry) int64 { return e.ID }, toLedger)
}

func handleProjectJobs(logger *slog.Logger, projects gaas.Projects, jobs gaas.JobService) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := resolveProject(r, projects)
		if err == nil {
			err = listJobs(w, r, logger, jobs, p.ID)
		}
		if err != nil {
			writeError(w, r, logger, projectDetail(err, pathProject(r), "Only admins and the project's managers may list its jobs."))
		}
	})
}

// defaultProjectRequest is the body of PUT /me/default-project: project
// null clears the default.
type defaultProjectRequest struct {
	Project json.RawMessage `json:"project"`

	ref gaas.ProjectRef
}

func (d *defaultProjectRequest) Valid() error {
	v := &gaas.ValidationError{}
	if len(d.Project) == 0 {
		v.Add("project", "is required: a project's name or id, or null for none")
	}
	d.ref, _ = projectField(v, d.Project, "project")
	return v.Err()
}

func handleSetDefaultProject(logger *slog.Logger, projects gaas.Projects) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := decode[*defaultProjectRequest](w, r)
		if err == nil {
			err = projects.SetDefaultProject(r.Context(), callerID(r), gaas.SetDefaultProjectRequest{Project: req.ref})
			err = explain(err, gaas.ErrNotFound, "Project %s does not exist.", req.ref)
		}
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}
