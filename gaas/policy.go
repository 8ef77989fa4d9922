package gaas

import (
	"fmt"
	"slices"
)

// Principal is who acts: a user, as the store holds them at the time of
// the call, or the system under a name, for work that no user asked for (an
// import, the default quota of a new account and, later, executors).
type Principal struct {
	UserID   int64 // the acting user; 0 for the system
	Role     Role
	Disabled bool
	System   string // the system's name; empty for a user
}

// Names the system acts under in the ledger.
const (
	// SystemImport is import-fastapi: opening balances, and the charges and
	// refunds of imported jobs.
	SystemImport = "import"
	// SystemRegistration gives a new account its default quota.
	SystemRegistration = "registration"
	// SystemExpiry lets what an allocation holds when it ends expire.
	SystemExpiry = "expiry"
	// SystemStale cancels jobs left PENDING, or APPROVED and not started,
	// too long.
	SystemStale = "stale-reservations"
)

// UserPrincipal is u acting.
func UserPrincipal(u User) Principal {
	return Principal{UserID: u.ID, Role: u.Role, Disabled: u.Disabled}
}

// System is the system acting under name.
func System(name string) Principal { return Principal{System: name} }

// IsSystem reports whether p is the system rather than a user.
func (p Principal) IsSystem() bool { return p.System != "" }

func (p Principal) String() string {
	if p.IsSystem() {
		return "system " + p.System
	}
	return fmt.Sprintf("user %d", p.UserID)
}

// Active refuses, with ErrUnauthorized, a principal that can do nothing: a
// disabled account (whoever holds its token is no one now), or one that
// names neither a user nor the system.
func (p Principal) Active() error {
	switch {
	case p.IsSystem():
		return nil
	case p.UserID <= 0:
		return fmt.Errorf("no caller: %w", ErrUnauthorized)
	case p.Disabled:
		return fmt.Errorf("caller %d is disabled: %w", p.UserID, ErrUnauthorized)
	}
	return nil
}

// Action is something a principal asks to do to a target: a job or a user.
type Action string

const (
	ActionReadJob       Action = "read job"       // Get; the target is the job's owner
	ActionListJobs      Action = "list jobs"      // List; the target is the user whose jobs, 0 for everyone's
	ActionCancelJob     Action = "cancel job"     // Cancel; the target is the job's owner
	ActionMoveJob       Action = "move job"       // Transition, decided before the job is read
	ActionReadUser      Action = "read user"      // User, Balance, Ledger; the target is that user
	ActionListUsers     Action = "list users"     // Users
	ActionCreateUser    Action = "create user"    // CreateUser by a caller (not public registration)
	ActionSetRole       Action = "set role"       // SetRole; the target is the user
	ActionSetDisabled   Action = "set disabled"   // SetDisabled; the target is the user
	ActionResetPassword Action = "reset password" // ResetPassword; the target is the user
	ActionSetBalance    Action = "set balance"    // Quota.Set; the target is the user
	ActionGrantHours    Action = "grant hours"    // Quota.Grant; the target is the user

	ActionReadCatalogue    Action = "read catalogue"    // Catalogue.GPUTypes
	ActionManageCatalogue  Action = "manage catalogue"  // CreateGPUType, UpdateGPUType
	ActionReadAllocations  Action = "read allocations"  // Allocations; the target is the user who holds them
	ActionCreateAllocation Action = "create allocation" // CreateAllocation; the target is the user
	ActionUpdateAllocation Action = "update allocation" // UpdateAllocation, decided before the allocation is read

	// Actions on a project, decided by AllowProject from the caller's
	// role in it.
	ActionCreateProject     Action = "create project"      // CreateProject
	ActionReadProject       Action = "read project"        // Project, Members, the project's balance
	ActionUpdateProject     Action = "update project"      // UpdateProject
	ActionAppointManager    Action = "appoint manager"     // SetMember or RemoveMember of a manager
	ActionManageMembers     Action = "manage members"      // SetMember or RemoveMember of a member
	ActionGrantProject      Action = "grant project"       // an allocation for the project
	ActionReadProjectLedger Action = "read project ledger" // the project's ledger and jobs
	ActionChargeProject     Action = "charge project"      // Submit against the project
	ActionManageWebhooks    Action = "manage webhooks"     // the endpoints of the project's events; of every event for admins

	// Schedules of recurring allocations: a user's are the admins'; a
	// project's are also its managers', and its ancestors' managers', to
	// read, pause and end. Only admins make or resume one: each period
	// gives credits, which a manager gives none of (they move the
	// project's to the projects below it, by transfer).
	ActionManageUserSchedules    Action = "manage user schedules"    // create, read, pause, resume, end a user's schedule
	ActionManageProjectSchedules Action = "manage project schedules" // read, pause, end a project's, decided by AllowProject
	ActionCreateSchedule         Action = "create schedule"          // CreateSchedule, and resuming one, for a user or a project

	ActionManageExecutors Action = "manage executors" // CreateExecutor, Executors, RevokeExecutor

	// Usage reports: everyone's are the admins'; a user's own are theirs;
	// a project's are its managers' and its ancestors' managers', and its
	// members see their own jobs in it.
	ActionReadUsage        Action = "read usage"         // Reports.Usage; the target is the user whose usage, 0 for everyone's
	ActionReadProjectUsage Action = "read project usage" // Reports.Usage of one project, decided by AllowProject
)

// Names the system acts under for schedules.
const (
	// SystemSchedule gives each period's allocation of a schedule.
	SystemSchedule = "schedule"
)

// Who a rule admits.
type party uint8

const (
	byAdmin   party = 1 << iota // an enabled admin
	byOwner                     // the user the target belongs to (a job's owner, a user themselves)
	bySystem                    // the system, under any name
	byAnyone                    // any enabled user
	byManager                   // a manager of the project in question
	byMember                    // a member (not a manager) of the project in question
)

// rule says who may take an action, and what anyone else is told: a
// refusal that must not tell whether the target exists is ErrNotFound.
type rule struct {
	who     party
	refusal error
}

// policy is who may do what: every decision of the store reads this
// table, and a new action or kind of principal is a row or a column here.
var policy = map[Action]rule{
	ActionReadJob:       {byAdmin | byOwner | bySystem, ErrNotFound},
	ActionListJobs:      {byAdmin | byOwner | bySystem, ErrForbidden},
	ActionCancelJob:     {byAdmin | byOwner, ErrNotFound},
	ActionMoveJob:       {byAdmin | bySystem, ErrForbidden},
	ActionReadUser:      {byAdmin | byOwner | bySystem, ErrNotFound},
	ActionListUsers:     {byAdmin | bySystem, ErrForbidden},
	ActionCreateUser:    {byAdmin | bySystem, ErrForbidden},
	ActionSetRole:       {byAdmin | bySystem, ErrForbidden},
	ActionSetDisabled:   {byAdmin | bySystem, ErrForbidden},
	ActionResetPassword: {byAdmin | bySystem, ErrForbidden},
	ActionSetBalance:    {byAdmin | bySystem, ErrForbidden},
	ActionGrantHours:    {byAdmin | bySystem, ErrForbidden},

	ActionReadCatalogue:    {byAnyone | bySystem, ErrForbidden},
	ActionManageCatalogue:  {byAdmin | bySystem, ErrForbidden},
	ActionReadAllocations:  {byAdmin | byOwner | bySystem, ErrNotFound},
	ActionCreateAllocation: {byAdmin | bySystem, ErrForbidden},
	ActionUpdateAllocation: {byAdmin | bySystem, ErrForbidden},

	ActionCreateProject:     {byAdmin | bySystem, ErrForbidden},
	ActionReadProject:       {byAdmin | bySystem | byManager | byMember, ErrNotFound},
	ActionUpdateProject:     {byAdmin | bySystem, ErrForbidden},
	ActionAppointManager:    {byAdmin | bySystem, ErrForbidden},
	ActionManageMembers:     {byAdmin | bySystem | byManager, ErrForbidden},
	ActionGrantProject:      {byAdmin | bySystem, ErrForbidden},
	ActionReadProjectLedger: {byAdmin | bySystem | byManager, ErrForbidden},
	ActionChargeProject:     {byManager | byMember, ErrForbidden},
	ActionManageWebhooks:    {byAdmin | bySystem | byManager, ErrForbidden},

	ActionManageUserSchedules:    {byAdmin | bySystem, ErrForbidden},
	ActionManageProjectSchedules: {byAdmin | bySystem | byManager, ErrForbidden},
	ActionCreateSchedule:         {byAdmin | bySystem, ErrForbidden},

	ActionManageExecutors: {byAdmin | bySystem, ErrForbidden},

	ActionReadUsage:        {byAdmin | byOwner | bySystem, ErrForbidden},
	ActionReadProjectUsage: {byAdmin | bySystem | byManager | byMember, ErrNotFound},
}

// Actions returns every action the policy knows, sorted.
func Actions() []Action {
	out := make([]Action, 0, len(policy))
	for a := range policy {
		out = append(out, a)
	}
	slices.Sort(out)
	return out
}

// AllowProject decides whether p, whose role in a project is role (empty
// when p is not one of its members), may take action a on it. Whoever may
// not read the project is told it does not exist (ErrNotFound), whatever
// the action, so that no refusal tells a stranger which projects exist.
func AllowProject(p Principal, a Action, role ProjectRole) error {
	if err := p.Active(); err != nil {
		return err
	}
	r, ok := policy[a]
	if !ok {
		return fmt.Errorf("%s may not %s: no such action: %w", p, a, ErrForbidden)
	}
	admits := func(r rule) bool {
		switch {
		case p.IsSystem():
			return r.who&bySystem != 0
		case p.Role == RoleAdmin && r.who&byAdmin != 0:
			return true
		case role == ProjectManager:
			return r.who&byManager != 0
		case role == ProjectMember:
			return r.who&byMember != 0
		}
		return false
	}
	switch {
	case admits(r):
		return nil
	case !admits(policy[ActionReadProject]):
		return fmt.Errorf("%s may not see the project: %w", p, ErrNotFound)
	}
	return fmt.Errorf("%s may not %s: %w", p, a, r.refusal)
}

// Allow decides whether p may take action a on a target that belongs to
// user owner (0 when it belongs to no one, or to everyone). It returns nil,
// ErrUnauthorized for a principal that is not Active, or the action's
// refusal: ErrForbidden, or ErrNotFound where the target's existence must
// stay hidden. An action the policy does not know is refused.
func Allow(p Principal, a Action, owner int64) error {
	if err := p.Active(); err != nil {
		return err
	}
	r, ok := policy[a]
	if !ok {
		return fmt.Errorf("%s may not %s: no such action: %w", p, a, ErrForbidden)
	}
	switch {
	case p.IsSystem() && r.who&bySystem != 0,
		!p.IsSystem() && p.Role == RoleAdmin && r.who&byAdmin != 0,
		!p.IsSystem() && owner != 0 && p.UserID == owner && r.who&byOwner != 0,
		!p.IsSystem() && r.who&byAnyone != 0:
		return nil
	}
	return fmt.Errorf("%s may not %s: %w", p, a, r.refusal)
}
