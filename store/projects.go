package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"github.com/gaas-io/gaas/gaas"
)

type projectRow struct {
	ID              int64     `bun:"id"`
	Name            string    `bun:"name"`
	Description     string    `bun:"description"`
	ParentID        *int64    `bun:"parent_id"`
	Depth           int       `bun:"depth"`
	AccountID       int64     `bun:"account_id"`
	Cap             *int64    `bun:"cap"`
	Spent           int64     `bun:"spent"`
	ManagersApprove bool      `bun:"managers_approve"`
	AutoApprove     bool      `bun:"auto_approve"`
	CreatedAt       time.Time `bun:"created_at"`
	UpdatedAt       time.Time `bun:"updated_at"`
}

const projectColumns = "id, name, description, parent_id, depth, account_id, cap, spent, managers_approve, auto_approve, created_at, updated_at"

func (r *projectRow) project() gaas.Project {
	p := gaas.Project{
		ID: r.ID, Name: r.Name, Description: r.Description, AccountID: r.AccountID, Spent: gaas.Credits(r.Spent),
		ManagersApprove: r.ManagersApprove, AutoApprove: r.AutoApprove, CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(),
	}
	if r.ParentID != nil {
		p.ParentID = *r.ParentID
	}
	if r.Cap != nil {
		c := gaas.Credits(*r.Cap)
		p.Cap = &c
	}
	return p
}

type memberRow struct {
	ProjectID int64     `bun:"project_id"`
	UserID    int64     `bun:"user_id"`
	Role      string    `bun:"role"`
	Limit     *int64    `bun:"spend_limit"`
	GPUTypes  *string   `bun:"gpu_types"`
	Spent     int64     `bun:"spent"`
	Active    bool      `bun:"active"`
	CreatedAt time.Time `bun:"created_at"`
	// Username is the member's, read with the row (memberSelect); it is
	// no column of project_members.
	Username string `bun:"username"`
}

const memberColumns = "project_id, user_id, role, spend_limit, gpu_types, spent, active, created_at"

// memberSelect reads members with their usernames: whoever may see a
// project's members may see their names.
const memberSelect = "SELECT m.project_id, m.user_id, m.role, m.spend_limit, m.gpu_types, m.spent, m.active, m.created_at, u.username" +
	" FROM project_members m JOIN users u ON u.id = m.user_id"

func (r *memberRow) member() gaas.Member {
	m := gaas.Member{
		ProjectID: r.ProjectID, UserID: r.UserID, Username: r.Username, Role: gaas.ProjectRole(r.Role), GPUTypes: decodeScope(r.GPUTypes),
		Spent: gaas.Credits(r.Spent), CreatedAt: r.CreatedAt.UTC(),
	}
	if r.Limit != nil {
		l := gaas.Credits(*r.Limit)
		m.Limit = &l
	}
	return m
}

// role is the member's role while active; "" for someone taken out.
func (r *memberRow) role() gaas.ProjectRole {
	if !r.Active {
		return ""
	}
	return gaas.ProjectRole(r.Role)
}

// loadProject reads the project ref names: by id when it is all digits,
// else by name in any letter case. A project that does not exist is
// gaas.ErrNotFound.
func loadProject(ctx context.Context, idb bun.IDB, ref gaas.ProjectRef) (projectRow, error) {
	var r projectRow
	var err error
	if id, ok := ref.ID(); ok {
		err = query(ctx, idb, &r, "SELECT "+projectColumns+" FROM projects WHERE id = ?", id)
	} else {
		err = query(ctx, idb, &r, "SELECT "+projectColumns+" FROM projects WHERE lower(name) = lower(?)", string(ref))
	}
	return r, mapErr(err)
}

func projectRef(id int64) gaas.ProjectRef { return gaas.ProjectRef(fmt.Sprint(id)) }

// loadMember reads user's membership of project, with their username;
// someone who never was a member is a row with no role.
func loadMember(ctx context.Context, idb bun.IDB, project, user int64) (memberRow, error) {
	return loadMemberBy(ctx, idb, memberSelect, project, user)
}

// memberSelectUnnamed is memberSelect without the username, for the
// charge of a submission, which needs only the membership and is the hot
// path of a project's jobs.
const memberSelectUnnamed = "SELECT " + memberColumns + " FROM project_members m"

func loadMemberBy(ctx context.Context, idb bun.IDB, sel string, project, user int64) (memberRow, error) {
	var m memberRow
	err := query(ctx, idb, &m, sel+" WHERE m.project_id = ? AND m.user_id = ?", project, user)
	if err = mapErr(err); errors.Is(err, gaas.ErrNotFound) {
		return memberRow{ProjectID: project, UserID: user}, nil
	}
	return m, err
}

// principalIn is the principal p and its role in project: a user is read
// as they are now (an unknown or disabled one is refused).
func principalIn(ctx context.Context, idb bun.IDB, p gaas.Principal, project int64) (gaas.Principal, gaas.ProjectRole, error) {
	if p.IsSystem() {
		return p, "", nil
	}
	c, err := loadCaller(ctx, idb, p.UserID)
	if err != nil {
		return p, "", err
	}
	m, err := loadMember(ctx, idb, project, p.UserID)
	return c.principal(), m.role(), err
}

// visibleProject reads the project ref names for p, whom the policy must
// let take action a on it; whoever may not see it is told it does not exist.
func visibleProject(ctx context.Context, idb bun.IDB, p gaas.Principal, ref gaas.ProjectRef, a gaas.Action) (projectRow, error) {
	return projectFor(ctx, idb, p, ref, a, false)
}

// visibleProjectInherited is visibleProject for an action that the
// managers of the project's ancestors may take as its own managers do.
func visibleProjectInherited(ctx context.Context, idb bun.IDB, p gaas.Principal, ref gaas.ProjectRef, a gaas.Action) (projectRow, error) {
	return projectFor(ctx, idb, p, ref, a, true)
}

// projectFor reads the project ref names for p, whom the policy must let
// take action a on it, as a manager when inherit and p manages one of its
// ancestors.
func projectFor(ctx context.Context, idb bun.IDB, p gaas.Principal, ref gaas.ProjectRef, a gaas.Action, inherit bool) (projectRow, error) {
	pr, err := loadProject(ctx, idb, ref)
	if errors.Is(err, gaas.ErrNotFound) {
		// Who may not see a project learns nothing from its absence either.
		if !p.IsSystem() {
			if _, err := loadCaller(ctx, idb, p.UserID); err != nil {
				return projectRow{}, err
			}
		}
		return projectRow{}, fmt.Errorf("project %s: %w", ref, gaas.ErrNotFound)
	}
	if err != nil {
		return projectRow{}, err
	}
	who, role, err := principalIn(ctx, idb, p, pr.ID)
	if err == nil && inherit && role != gaas.ProjectManager && !p.IsSystem() {
		var n int
		if err = query(ctx, idb, &n, managesAncestorSQL, pr.ID, p.UserID); n > 0 {
			role = gaas.ProjectManager
		}
	}
	if err == nil {
		err = gaas.AllowProject(who, a, role)
	}
	if err != nil {
		return projectRow{}, fmt.Errorf("project %s: %w", ref, mapErr(err))
	}
	return pr, nil
}

// ProjectService implements gaas.Projects on the store.
type ProjectService struct{ db *DB }

var _ gaas.Projects = (*ProjectService)(nil)

// CreateProject implements gaas.Projects.
func (s *ProjectService) CreateProject(ctx context.Context, caller int64, req gaas.CreateProjectRequest) (gaas.Project, error) {
	return s.createBy(ctx, gaas.Principal{UserID: caller}, req)
}

func (s *ProjectService) createBy(ctx context.Context, p gaas.Principal, req gaas.CreateProjectRequest) (gaas.Project, error) {
	if err := req.Validate(); err != nil {
		return gaas.Project{}, fmt.Errorf("store: create project: %w", err)
	}
	now := s.db.timestamp()
	r := projectRow{
		Name: req.Name, Description: req.Description, Depth: 1, ManagersApprove: req.ManagersApprove,
		AutoApprove: req.AutoApprove, CreatedAt: now, UpdatedAt: now,
	}
	if req.Cap != nil {
		c := int64(*req.Cap)
		r.Cap = &c
	}
	err := s.db.tx(ctx, func(tx bun.Tx) error {
		if err := allow(ctx, tx, p, gaas.ActionCreateProject, 0); err != nil {
			return err
		}
		if req.ParentID != 0 {
			parent, err := loadProject(ctx, tx, projectRef(req.ParentID))
			if errors.Is(err, gaas.ErrNotFound) {
				return gaas.Invalid("parent_id", "no project has id %d", req.ParentID)
			} else if err != nil {
				return err
			}
			if parent.Depth >= gaas.MaxProjectDepth {
				return gaas.Invalid("parent_id", "project %s is %d deep, the most a project may be", parent.Name, parent.Depth)
			}
			r.ParentID, r.Depth = &parent.ID, parent.Depth+1
		}
		var err error
		if r.AccountID, _, err = newAccount(ctx, tx, nil, 0, p, now); err != nil {
			return err
		}
		return mapErr(query(ctx, tx, &r.ID,
			"INSERT INTO projects (name, description, parent_id, depth, account_id, cap, spent, managers_approve, auto_approve, created_at, updated_at)"+
				" VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?) RETURNING id",
			r.Name, r.Description, r.ParentID, r.Depth, r.AccountID, r.Cap, r.ManagersApprove, r.AutoApprove, r.CreatedAt, r.UpdatedAt))
	})
	if err != nil {
		return gaas.Project{}, fmt.Errorf("store: create project %q: %w", req.Name, mapErr(err))
	}
	return r.project(), nil
}

// Project implements gaas.Projects.
func (s *ProjectService) Project(ctx context.Context, caller int64, req gaas.GetProjectRequest) (gaas.Project, error) {
	return s.projectBy(ctx, gaas.Principal{UserID: caller}, req)
}

func (s *ProjectService) projectBy(ctx context.Context, p gaas.Principal, req gaas.GetProjectRequest) (gaas.Project, error) {
	r, err := visibleProject(ctx, s.db.r, p, req.Project, gaas.ActionReadProject)
	if err != nil {
		return gaas.Project{}, fmt.Errorf("store: %w", err)
	}
	return r.project(), nil
}

// Projects implements gaas.Projects.
func (s *ProjectService) Projects(ctx context.Context, caller int64, req gaas.ProjectsRequest) (gaas.ProjectPage, error) {
	return s.listBy(ctx, gaas.Principal{UserID: caller}, req)
}

func (s *ProjectService) listBy(ctx context.Context, p gaas.Principal, req gaas.ProjectsRequest) (gaas.ProjectPage, error) {
	limit, after, err := readPage(req.Page, 0)
	if err != nil {
		return gaas.ProjectPage{}, fmt.Errorf("store: list projects: %w", err)
	}
	q, args := "SELECT "+projectColumns+" FROM projects WHERE id > ?", []any{after}
	if !p.IsSystem() {
		c, err := loadCaller(ctx, s.db.r, p.UserID)
		if err != nil {
			return gaas.ProjectPage{}, fmt.Errorf("store: list projects: %w", err)
		}
		if gaas.AllowProject(c.principal(), gaas.ActionReadProject, "") != nil {
			// Not an admin: the projects they are a member of.
			q += " AND id IN (SELECT project_id FROM project_members WHERE user_id = ? AND active = ?)"
			args = append(args, p.UserID, true)
		}
	}
	var rows []projectRow
	if err := query(ctx, s.db.r, &rows, q+" ORDER BY id LIMIT ?", append(args, limit+1)...); err != nil {
		return gaas.ProjectPage{}, fmt.Errorf("store: list projects: %w", mapErr(err))
	}
	var out gaas.ProjectPage
	out.Items, out.NextCursor = pageOf(rows, limit, func(r projectRow) int64 { return r.ID }, (*projectRow).project)
	return out, nil
}

// UpdateProject implements gaas.Projects.
func (s *ProjectService) UpdateProject(ctx context.Context, caller int64, req gaas.UpdateProjectRequest) (gaas.Project, error) {
	return s.updateBy(ctx, gaas.Principal{UserID: caller}, req)
}

func (s *ProjectService) updateBy(ctx context.Context, p gaas.Principal, req gaas.UpdateProjectRequest) (gaas.Project, error) {
	if err := req.Validate(); err != nil {
		return gaas.Project{}, fmt.Errorf("store: update project: %w", err)
	}
	var r projectRow
	err := s.db.tx(ctx, func(tx bun.Tx) (err error) {
		if r, err = visibleProject(ctx, tx, p, projectRef(req.ProjectID), gaas.ActionUpdateProject); err != nil {
			return err
		}
		if err := s.db.lockAccount(ctx, tx, r.AccountID); err != nil {
			return err
		}
		if req.Description != nil {
			r.Description = *req.Description
		}
		if req.SetCap {
			r.Cap = nil
			if req.Cap != nil {
				c := int64(*req.Cap)
				r.Cap = &c
			}
		}
		if req.ManagersApprove != nil {
			r.ManagersApprove = *req.ManagersApprove
		}
		if req.AutoApprove != nil {
			r.AutoApprove = *req.AutoApprove
		}
		r.UpdatedAt = s.db.timestamp()
		_, err = exec(ctx, tx, "UPDATE projects SET description = ?, cap = ?, managers_approve = ?, auto_approve = ?, updated_at = ? WHERE id = ?",
			r.Description, r.Cap, r.ManagersApprove, r.AutoApprove, r.UpdatedAt, r.ID)
		return err
	})
	if err != nil {
		return gaas.Project{}, fmt.Errorf("store: update project %d: %w", req.ProjectID, mapErr(err))
	}
	return r.project(), nil
}

// SetMember implements gaas.Projects.
func (s *ProjectService) SetMember(ctx context.Context, caller int64, req gaas.SetMemberRequest) (gaas.Member, error) {
	return s.setMemberBy(ctx, gaas.Principal{UserID: caller}, req)
}

func (s *ProjectService) setMemberBy(ctx context.Context, p gaas.Principal, req gaas.SetMemberRequest) (gaas.Member, error) {
	return s.changeMember(ctx, p, req.ProjectID, req.UserID, func(memberRow) (gaas.SetMemberRequest, error) { return req, nil })
}

// UpdateMember implements gaas.Projects.
func (s *ProjectService) UpdateMember(ctx context.Context, caller int64, req gaas.UpdateMemberRequest) (gaas.Member, error) {
	return s.updateMemberBy(ctx, gaas.Principal{UserID: caller}, req)
}

func (s *ProjectService) updateMemberBy(ctx context.Context, p gaas.Principal, req gaas.UpdateMemberRequest) (gaas.Member, error) {
	return s.changeMember(ctx, p, req.ProjectID, req.UserID, func(m memberRow) (gaas.SetMemberRequest, error) {
		if m.role() == "" {
			return gaas.SetMemberRequest{}, fmt.Errorf("user %d is not a member: %w", req.UserID, gaas.ErrNotFound)
		}
		was := m.member()
		set := gaas.SetMemberRequest{ProjectID: req.ProjectID, UserID: req.UserID, Role: was.Role, Limit: was.Limit, GPUTypes: was.GPUTypes}
		if req.Role != nil {
			set.Role = *req.Role
		}
		if req.SetLimit {
			set.Limit = req.Limit
		}
		if req.SetGPUTypes {
			set.GPUTypes = req.GPUTypes
		}
		return set, nil
	})
}

// changeMember sets user's membership of project to what decide makes of
// it as it stands, under the project's lock, if the policy lets p.
func (s *ProjectService) changeMember(ctx context.Context, p gaas.Principal, project, user int64,
	decide func(memberRow) (gaas.SetMemberRequest, error)) (gaas.Member, error) {
	var m memberRow
	err := s.db.tx(ctx, func(tx bun.Tx) error {
		pr, err := visibleProject(ctx, tx, p, projectRef(project), gaas.ActionReadProject)
		if err != nil {
			return err
		}
		if err := s.db.lockAccount(ctx, tx, pr.AccountID); err != nil {
			return err
		}
		if m, err = loadMember(ctx, tx, pr.ID, user); err != nil {
			return err
		}
		req, err := decide(m)
		if err != nil {
			return err
		}
		if err := req.Validate(); err != nil {
			return err
		}
		if err := s.allowMemberChange(ctx, tx, p, pr.ID, m, req.Role); err != nil {
			return err
		}
		u, err := loadUser(ctx, tx, user)
		if err != nil {
			return fmt.Errorf("user %d: %w", user, err)
		}
		m.Username = u.Username
		scope, err := canonicalScope(ctx, tx, req.GPUTypes)
		if err != nil {
			return err
		}
		existed := m.CreatedAt != (time.Time{})
		m.Role, m.GPUTypes, m.Active = string(req.Role), encodeScope(scope), true
		m.Limit = nil
		if req.Limit != nil {
			l := int64(*req.Limit)
			m.Limit = &l
		}
		if existed {
			_, err = exec(ctx, tx, "UPDATE project_members SET role = ?, spend_limit = ?, gpu_types = ?, active = ? WHERE project_id = ? AND user_id = ?",
				m.Role, m.Limit, m.GPUTypes, true, pr.ID, user)
			return err
		}
		m.CreatedAt = s.db.timestamp()
		_, err = exec(ctx, tx, "INSERT INTO project_members ("+memberColumns+") VALUES (?, ?, ?, ?, ?, 0, ?, ?)",
			pr.ID, user, m.Role, m.Limit, m.GPUTypes, true, m.CreatedAt)
		return err
	})
	if err != nil {
		return gaas.Member{}, fmt.Errorf("store: member %d of project %d: %w", user, project, mapErr(err))
	}
	return m.member(), nil
}

// allowMemberChange asks the policy whether p may give member m the role
// to ("" to take them out): making or unmaking a manager is appointing
// one; anything else is managing members.
func (s *ProjectService) allowMemberChange(ctx context.Context, idb bun.IDB, p gaas.Principal, project int64, m memberRow, to gaas.ProjectRole) error {
	who, role, err := principalIn(ctx, idb, p, project)
	if err != nil {
		return err
	}
	a := gaas.ActionManageMembers
	if to == gaas.ProjectManager || m.role() == gaas.ProjectManager {
		a = gaas.ActionAppointManager
	}
	return gaas.AllowProject(who, a, role)
}

// RemoveMember implements gaas.Projects.
func (s *ProjectService) RemoveMember(ctx context.Context, caller int64, req gaas.RemoveMemberRequest) error {
	return s.removeMemberBy(ctx, gaas.Principal{UserID: caller}, req)
}

func (s *ProjectService) removeMemberBy(ctx context.Context, p gaas.Principal, req gaas.RemoveMemberRequest) error {
	err := s.db.tx(ctx, func(tx bun.Tx) error {
		pr, err := visibleProject(ctx, tx, p, projectRef(req.ProjectID), gaas.ActionReadProject)
		if err != nil {
			return err
		}
		if err := s.db.lockAccount(ctx, tx, pr.AccountID); err != nil {
			return err
		}
		m, err := loadMember(ctx, tx, pr.ID, req.UserID)
		if err != nil {
			return err
		}
		if err := s.allowMemberChange(ctx, tx, p, pr.ID, m, ""); err != nil {
			return err
		}
		if m.role() == "" {
			return fmt.Errorf("user %d is not a member: %w", req.UserID, gaas.ErrNotFound)
		}
		if _, err := exec(ctx, tx, "UPDATE project_members SET active = ? WHERE project_id = ? AND user_id = ?", false, pr.ID, req.UserID); err != nil {
			return err
		}
		// Their jobs that name no project go to their own account again.
		_, err = exec(ctx, tx, "UPDATE users SET default_project_id = NULL WHERE id = ? AND default_project_id = ?", req.UserID, pr.ID)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: remove member %d of project %d: %w", req.UserID, req.ProjectID, mapErr(err))
	}
	return nil
}

// Members implements gaas.Projects.
func (s *ProjectService) Members(ctx context.Context, caller int64, req gaas.MembersRequest) (gaas.MemberPage, error) {
	return s.membersBy(ctx, gaas.Principal{UserID: caller}, req)
}

func (s *ProjectService) membersBy(ctx context.Context, p gaas.Principal, req gaas.MembersRequest) (gaas.MemberPage, error) {
	limit, after, err := readPage(req.Page, 0)
	var pr projectRow
	if err == nil {
		pr, err = visibleProject(ctx, s.db.r, p, projectRef(req.ProjectID), gaas.ActionReadProject)
	}
	if err != nil {
		return gaas.MemberPage{}, fmt.Errorf("store: members: %w", err)
	}
	var rows []memberRow
	if err := query(ctx, s.db.r, &rows, memberSelect+" WHERE m.project_id = ? AND m.active = ? AND m.user_id > ? ORDER BY m.user_id LIMIT ?",
		pr.ID, true, after, limit+1); err != nil {
		return gaas.MemberPage{}, fmt.Errorf("store: members: %w", mapErr(err))
	}
	var out gaas.MemberPage
	out.Items, out.NextCursor = pageOf(rows, limit, func(r memberRow) int64 { return r.UserID }, (*memberRow).member)
	return out, nil
}

// ProjectLedger implements gaas.Projects.
func (s *ProjectService) ProjectLedger(ctx context.Context, caller int64, req gaas.ProjectLedgerRequest) (gaas.LedgerPage, error) {
	return s.ledgerBy(ctx, gaas.Principal{UserID: caller}, req)
}

func (s *ProjectService) ledgerBy(ctx context.Context, p gaas.Principal, req gaas.ProjectLedgerRequest) (gaas.LedgerPage, error) {
	pr, err := visibleProject(ctx, s.db.r, p, projectRef(req.ProjectID), gaas.ActionReadProjectLedger)
	if err != nil {
		return gaas.LedgerPage{}, fmt.Errorf("store: project ledger: %w", err)
	}
	return ledgerPage(ctx, s.db.r, pr.AccountID, 0, req.Page)
}

// Memberships implements gaas.Projects.
func (s *ProjectService) Memberships(ctx context.Context, caller int64, req gaas.MembershipsRequest) (gaas.MembershipPage, error) {
	limit, after, err := readPage(req.Page, 0)
	var c userRow
	if err == nil {
		c, err = loadCaller(ctx, s.db.r, caller)
	}
	if err != nil {
		return gaas.MembershipPage{}, fmt.Errorf("store: memberships: %w", err)
	}
	var projects []projectRow
	if err := query(ctx, s.db.r, &projects, "SELECT "+projectColumns+" FROM projects WHERE id > ?"+
		" AND id IN (SELECT project_id FROM project_members WHERE user_id = ? AND active = ?) ORDER BY id LIMIT ?",
		after, caller, true, limit+1); err != nil {
		return gaas.MembershipPage{}, fmt.Errorf("store: memberships: %w", mapErr(err))
	}
	var out gaas.MembershipPage
	projects, out.NextCursor = cutPage(projects, limit, func(r projectRow) int64 { return r.ID })
	accounts := make([]int64, len(projects))
	for i, pr := range projects {
		accounts[i] = pr.AccountID
	}
	held, err := balances(ctx, s.db.r, s.db.timestamp(), accounts...)
	if err != nil {
		return gaas.MembershipPage{}, fmt.Errorf("store: memberships: %w", err)
	}
	var def *int64
	if err := query(ctx, s.db.r, &def, "SELECT default_project_id FROM users WHERE id = ?", c.ID); err != nil {
		return gaas.MembershipPage{}, fmt.Errorf("store: memberships: %w", mapErr(err))
	}
	out.Items = make([]gaas.Membership, len(projects))
	for i, pr := range projects {
		m, err := loadMember(ctx, s.db.r, pr.ID, caller)
		if err != nil {
			return gaas.MembershipPage{}, fmt.Errorf("store: memberships: %w", err)
		}
		ms := gaas.Membership{Project: pr.project(), Member: m.member(), Balance: held[pr.AccountID], Default: def != nil && *def == pr.ID}
		if ms.Member.Limit != nil {
			left := max(*ms.Member.Limit-ms.Member.Spent, 0)
			ms.LimitLeft = &left
		}
		out.Items[i] = ms
	}
	return out, nil
}

// SetDefaultProject implements gaas.Projects.
func (s *ProjectService) SetDefaultProject(ctx context.Context, caller int64, req gaas.SetDefaultProjectRequest) error {
	err := s.db.tx(ctx, func(tx bun.Tx) error {
		c, err := loadCaller(ctx, tx, caller)
		if err != nil {
			return err
		}
		var id *int64
		if req.Project != "" {
			pr, err := visibleProject(ctx, tx, c.principal(), req.Project, gaas.ActionReadProject)
			if err != nil {
				return err
			}
			if err := gaas.AllowProject(c.principal(), gaas.ActionChargeProject, mustRole(ctx, tx, pr.ID, caller)); err != nil {
				return fmt.Errorf("project %s: %w", req.Project, err)
			}
			id = &pr.ID
		}
		_, err = exec(ctx, tx, "UPDATE users SET default_project_id = ? WHERE id = ?", id, caller)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: set default project: %w", mapErr(err))
	}
	return nil
}

// mustRole is user's role in project, "" when they are none or it cannot be read.
func mustRole(ctx context.Context, idb bun.IDB, project, user int64) gaas.ProjectRole {
	m, err := loadMember(ctx, idb, project, user)
	if err != nil {
		return ""
	}
	return m.role()
}

// Transfer implements gaas.Projects.
func (s *ProjectService) Transfer(ctx context.Context, caller int64, req gaas.TransferRequest) (gaas.Allocation, error) {
	return s.transferBy(ctx, gaas.Principal{UserID: caller}, req)
}

func (s *ProjectService) transferBy(ctx context.Context, p gaas.Principal, req gaas.TransferRequest) (gaas.Allocation, error) {
	if err := req.Validate(); err != nil {
		return gaas.Allocation{}, fmt.Errorf("store: transfer: %w", err)
	}
	now := s.db.timestamp()
	if req.ExpiresAt != nil && !req.ExpiresAt.After(now) {
		return gaas.Allocation{}, fmt.Errorf("store: transfer: %w", gaas.Invalid("expires_at", "must be in the future"))
	}
	var out allocationRow
	err := s.db.tx(ctx, func(tx bun.Tx) error {
		from, err := visibleProject(ctx, tx, p, projectRef(req.FromID), gaas.ActionManageMembers)
		if err != nil {
			return err
		}
		to, err := loadProject(ctx, tx, projectRef(req.ToID))
		if errors.Is(err, gaas.ErrNotFound) || (err == nil && (to.ParentID == nil || *to.ParentID != from.ID)) {
			return gaas.Invalid("to", "must be a sub-project of project %s", from.Name)
		} else if err != nil {
			return err
		}
		if err := s.db.lockAccounts(ctx, tx, from.AccountID, to.AccountID); err != nil {
			return err
		}
		// Only credits that pay for every type and last as long as the
		// new allocation move: a transfer never widens or lengthens them.
		rows, err := loadAllocations(ctx, tx, false, from.AccountID)
		if err != nil {
			return err
		}
		var usable []gaas.Allocation
		for i := range rows {
			a := rows[i].allocation()
			lasts := a.ExpiresAt == nil || (req.ExpiresAt != nil && !a.ExpiresAt.Before(*req.ExpiresAt))
			if a.GPUTypes == nil && lasts {
				usable = append(usable, a)
			}
		}
		draws, available := gaas.PlanDraws(usable, "", req.Amount, now)
		if draws == nil {
			return &gaas.QuotaError{Asked: req.Amount, Remaining: available}
		}
		if err := roomFor(ctx, tx, to.AccountID, req.Amount, "amount"); err != nil {
			return err
		}
		if err := roomForAllocation(ctx, tx, to.AccountID, now, holder(0, to.ID)); err != nil {
			return err
		}
		reason := req.Reason
		if reason == "" {
			reason = fmt.Sprintf("from project %s to %s", from.Name, to.Name)
		}
		who := actor(p)
		for _, d := range draws {
			if err := change(ctx, tx, entry{AccountID: from.AccountID, AllocationID: d.AllocationID, Actor: who,
				Kind: gaas.LedgerTransfer, Delta: -d.Amount, Reason: reason, At: now}); err != nil {
				return err
			}
		}
		out = allocationRow{AccountID: to.AccountID, StartsAt: now, ExpiresAt: req.ExpiresAt, Reason: reason, ledgerActor: who, CreatedAt: now}
		if out.ExpiresAt != nil {
			t := out.ExpiresAt.UTC().Truncate(time.Microsecond)
			out.ExpiresAt = &t
		}
		if err := insertAllocation(ctx, tx, &out); err != nil {
			return err
		}
		out.Amount, out.Remaining = int64(req.Amount), int64(req.Amount)
		return change(ctx, tx, entry{AccountID: to.AccountID, AllocationID: out.ID, Actor: who,
			Kind: gaas.LedgerTransfer, Delta: req.Amount, Reason: reason, At: now})
	})
	if err != nil {
		return gaas.Allocation{}, fmt.Errorf("store: transfer from project %d to %d: %w", req.FromID, req.ToID, mapErr(err))
	}
	return out.allocation(), nil
}
