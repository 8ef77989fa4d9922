package gaas

import (
	"context"
	"strconv"
	"time"
)

// Project is a group that shares GPU time: a research group, a team, a
// course. It has an account that holds allocations exactly as a user's
// does, members who charge jobs to it, and a place in a tree of projects:
// a project's Cap bounds what it and all its descendants spend.
type Project struct {
	ID          int64
	Name        string
	Description string
	// ParentID is the project above it; 0 for a project at the top. A
	// project keeps its parent for life.
	ParentID  int64
	AccountID int64
	// Cap, when set, is the most credits the project and all its
	// descendants may have spent at once: what their jobs were charged,
	// less what came back.
	Cap *Credits
	// Spent is what the project and all its descendants have spent.
	Spent Credits
	// ManagersApprove says whether its managers' approval of its jobs is
	// enough; when false, only admins approve them.
	ManagersApprove bool
	// AutoApprove makes the jobs charged to it APPROVED when they are
	// submitted. Only admins set it.
	AutoApprove bool
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// ProjectRole is what a member may do in a project.
type ProjectRole string

const (
	// ProjectManager adds and removes members, sets their limits, gives
	// the project's credits to its sub-projects, sees its jobs and ledger,
	// and approves or rejects its jobs when the project lets managers.
	ProjectManager ProjectRole = "manager"
	// ProjectMember charges jobs to the project, within their limit.
	ProjectMember ProjectRole = "member"
)

// Valid reports whether r is a known role.
func (r ProjectRole) Valid() bool { return r == ProjectManager || r == ProjectMember }

// Member is a user's place in a project.
type Member struct {
	ProjectID int64
	UserID    int64
	// Username is the member's: whoever may see a project's members may
	// see their names.
	Username string
	Role     ProjectRole
	// Limit, when set, is the most credits the member may have spent from
	// the project at once.
	Limit *Credits
	// GPUTypes, when not nil, are the only GPU types the member may use
	// from the project.
	GPUTypes []string
	// Spent is what the member's jobs in the project were charged, less
	// what came back.
	Spent     Credits
	CreatedAt time.Time
}

// Names of projects: 1 to 64 characters of [A-Za-z0-9_.-], not all digits
// (a project is named by its name or its id, and the two must not be confused).
const ProjectNameMaxLen = 64

// ValidateProjectName reports whether name may name a project.
func ValidateProjectName(name string) error {
	if len(name) < 1 || len(name) > ProjectNameMaxLen {
		return Invalid("name", "must be 1 to %d characters", ProjectNameMaxLen)
	}
	digits := true
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return Invalid("name", "may hold only letters A-Z and a-z, digits, '_', '.' and '-'")
		}
		digits = digits && c >= '0' && c <= '9'
	}
	if digits {
		return Invalid("name", "must not be all digits: a project is named by its name or its id")
	}
	return nil
}

// ProjectRef names a project by its name (in any letter case) or, when it
// is all digits, by its id.
type ProjectRef string

// ID returns the id the reference names, or ok false when it is a name.
func (r ProjectRef) ID() (id int64, ok bool) {
	n, err := strconv.ParseInt(string(r), 10, 64)
	return n, err == nil && n > 0
}

// MaxProjectDepth bounds how deep the tree of projects grows, so that a
// charge, which touches every ancestor, has a bounded cost.
const MaxProjectDepth = 16

// validateCap checks a cap or a limit: between 0 and MaxCredits.
func validateCap(v *ValidationError, field string, c *Credits) {
	if c != nil && (*c < 0 || *c > MaxCredits) {
		v.Add(field, "must be between 0 and %s, or null for none", MaxCredits)
	}
}

// CreateProjectRequest asks for a project; admins create them.
type CreateProjectRequest struct {
	Name            string
	Description     string
	ParentID        int64
	Cap             *Credits
	ManagersApprove bool
	AutoApprove     bool
}

// Validate lists every field of r that breaks a rule.
func (r CreateProjectRequest) Validate() error {
	v := &ValidationError{}
	if err := ValidateProjectName(r.Name); err != nil {
		v.Fields = append(v.Fields, err.(*ValidationError).Fields...)
	}
	descriptionText.add(v, "description", r.Description)
	if r.ParentID < 0 {
		v.Add("parent_id", "must be a project's id")
	}
	validateCap(v, "cap", r.Cap)
	return v.Err()
}

// UpdateProjectRequest changes the fields of project ProjectID that are
// set: a description, a cap (SetCap with Cap nil removes it), and whether
// managers approve.
type UpdateProjectRequest struct {
	ProjectID       int64
	Description     *string
	SetCap          bool
	Cap             *Credits
	ManagersApprove *bool
	AutoApprove     *bool
}

// Validate lists every field of r that breaks a rule.
func (r UpdateProjectRequest) Validate() error {
	v := &ValidationError{}
	if r.Description != nil {
		descriptionText.add(v, "description", *r.Description)
	}
	validateCap(v, "cap", r.Cap)
	return v.Err()
}

// GetProjectRequest names a project.
type GetProjectRequest struct {
	Project ProjectRef
}

// ProjectsRequest asks for a page of the projects the caller can see: all
// of them for an admin, else those they are a member of.
type ProjectsRequest struct {
	Page
}

// ProjectPage is one page of projects, in order of id.
type ProjectPage struct {
	Items      []Project
	NextCursor string
}

// SetMemberRequest adds user UserID to project ProjectID, or changes their
// role, limit or GPU types when they are a member already.
type SetMemberRequest struct {
	ProjectID int64
	UserID    int64
	Role      ProjectRole
	Limit     *Credits
	GPUTypes  []string
}

// Validate lists every field of r that breaks a rule.
func (r SetMemberRequest) Validate() error {
	v := &ValidationError{}
	if !r.Role.Valid() {
		v.Add("role", "must be %q or %q", ProjectManager, ProjectMember)
	}
	validateCap(v, "limit", r.Limit)
	validateScope(v, r.GPUTypes)
	return v.Err()
}

// UpdateMemberRequest changes what is set of member UserID of project
// ProjectID, in one step: a role, a limit (SetLimit with Limit nil removes
// it), GPU types (SetGPUTypes with GPUTypes nil allows every type).
type UpdateMemberRequest struct {
	ProjectID   int64
	UserID      int64
	Role        *ProjectRole
	SetLimit    bool
	Limit       *Credits
	SetGPUTypes bool
	GPUTypes    []string
}

// RemoveMemberRequest takes user UserID out of project ProjectID. Their
// jobs stay the project's.
type RemoveMemberRequest struct {
	ProjectID int64
	UserID    int64
}

// MembersRequest asks for a page of a project's members.
type MembersRequest struct {
	ProjectID int64
	Page
}

// MemberPage is one page of members, in order of user id.
type MemberPage struct {
	Items      []Member
	NextCursor string
}

// ProjectLedgerRequest asks for a page of project ProjectID's ledger.
type ProjectLedgerRequest struct {
	ProjectID int64
	Page
}

// SetDefaultProjectRequest makes Project the caller's default: where
// their jobs go when they name no project. An empty Project clears it.
type SetDefaultProjectRequest struct {
	Project ProjectRef
}

// MembershipsRequest asks for a page of the caller's projects.
type MembershipsRequest struct {
	Page
}

// Membership is one of a user's projects, as they see it: the project,
// their place in it, what the project's active allocations hold now, and
// what their limit leaves them (nil: no limit).
type Membership struct {
	Project   Project
	Member    Member
	Balance   Credits
	LimitLeft *Credits
	Default   bool // the project their jobs go to when they name none
}

// MembershipPage is one page of memberships, in order of project id.
type MembershipPage struct {
	Items      []Membership
	NextCursor string
}

// TransferRequest gives Amount credits of project FromID to its
// sub-project ToID, as a new allocation of ToID that ends at ExpiresAt
// (nil: never). The credits come from FromID's active allocations that
// pay for every GPU type and last at least as long, in draw order; a
// manager divides a project's credits this way, and creates none.
type TransferRequest struct {
	FromID    int64
	ToID      int64
	Amount    Credits
	ExpiresAt *time.Time
	Reason    string
}

// Validate lists every field of r that breaks a rule.
func (r TransferRequest) Validate() error {
	v := &ValidationError{}
	if r.Amount <= 0 || r.Amount > MaxCredits {
		v.Add("amount", "must be greater than 0 and at most %s", MaxCredits)
	}
	reasonText.add(v, "reason", r.Reason)
	return v.Err()
}

// Projects keeps projects and their members. Every method takes the
// caller's user id, then a request that names everything else.
type Projects interface {
	// CreateProject makes a project with an account (admins only). A name
	// taken in any letter case is ErrConflict; an unknown parent, or a tree
	// deeper than MaxProjectDepth, is ErrInvalid.
	CreateProject(ctx context.Context, caller int64, req CreateProjectRequest) (Project, error)

	// Project returns a project to an admin or a member; anyone else is
	// told it does not exist (ErrNotFound).
	Project(ctx context.Context, caller int64, req GetProjectRequest) (Project, error)

	// Projects lists the projects the caller can see.
	Projects(ctx context.Context, caller int64, req ProjectsRequest) (ProjectPage, error)

	// UpdateProject changes a project (admins only).
	UpdateProject(ctx context.Context, caller int64, req UpdateProjectRequest) (Project, error)

	// SetMember adds or changes a member: admins appoint anyone; a manager
	// adds, limits and changes members, but makes no one a manager.
	SetMember(ctx context.Context, caller int64, req SetMemberRequest) (Member, error)

	// UpdateMember changes a member who is one, by the rules of SetMember;
	// anyone else is ErrNotFound.
	UpdateMember(ctx context.Context, caller int64, req UpdateMemberRequest) (Member, error)

	// RemoveMember takes a member out (admins; managers for members).
	RemoveMember(ctx context.Context, caller int64, req RemoveMemberRequest) error

	// Members lists a project's members, to an admin or a member.
	Members(ctx context.Context, caller int64, req MembersRequest) (MemberPage, error)

	// ProjectLedger lists a project's ledger, oldest first, to an admin or
	// a manager.
	ProjectLedger(ctx context.Context, caller int64, req ProjectLedgerRequest) (LedgerPage, error)

	// Memberships lists the caller's projects, with balances and what
	// their limits leave.
	Memberships(ctx context.Context, caller int64, req MembershipsRequest) (MembershipPage, error)

	// SetDefaultProject sets or clears the caller's default project, one
	// they are a member of.
	SetDefaultProject(ctx context.Context, caller int64, req SetDefaultProjectRequest) error

	// Transfer gives credits of a project to one of its sub-projects
	// (admins, or the project's managers).
	Transfer(ctx context.Context, caller int64, req TransferRequest) (Allocation, error)
}
