package store

import (
	"context"

	"github.com/gaas-io/gaas/gaas"
)

// Acting is the checked services of the store for one principal, which
// may be the system (gaas.System): every call asks the policy about that
// principal, as DB.Users, DB.Quota and DB.Jobs ask about their caller.
// Operators' tools, which act as the system, hold one.
type Acting struct {
	db *DB
	p  gaas.Principal
}

// As is the store acting as p.
func (db *DB) As(p gaas.Principal) Acting { return Acting{db: db, p: p} }

// User is UserService.User for the principal.
func (a Acting) User(ctx context.Context, req gaas.GetUserRequest) (gaas.User, error) {
	return a.db.Users.userBy(ctx, a.p, req)
}

// Users is UserService.Users for the principal.
func (a Acting) Users(ctx context.Context, f gaas.UserFilter) (gaas.UserPage, error) {
	return a.db.Users.usersBy(ctx, a.p, f)
}

// SetRole is UserService.SetRole for the principal.
func (a Acting) SetRole(ctx context.Context, req gaas.SetRoleRequest) (gaas.User, error) {
	return a.db.Users.setRoleBy(ctx, a.p, req)
}

// SetDisabled is UserService.SetDisabled for the principal.
func (a Acting) SetDisabled(ctx context.Context, req gaas.SetDisabledRequest) (gaas.User, error) {
	return a.db.Users.setDisabledBy(ctx, a.p, req)
}

// Grant is Quota.Grant for the principal, whom the ledger names as the actor.
func (a Acting) Grant(ctx context.Context, req gaas.GrantRequest) (gaas.User, error) {
	return a.db.Quota.grantBy(ctx, a.p, req)
}

// SetBalance is Quota.Set for the principal, whom the ledger names as the actor.
func (a Acting) SetBalance(ctx context.Context, req gaas.SetBalanceRequest) (gaas.User, error) {
	return a.db.Quota.setBy(ctx, a.p, req)
}

// Ledger is Quota.Ledger for the principal.
func (a Acting) Ledger(ctx context.Context, req gaas.LedgerRequest) (gaas.LedgerPage, error) {
	return a.db.Quota.ledgerBy(ctx, a.p, req)
}

// Jobs is JobService.List for the principal.
func (a Acting) Jobs(ctx context.Context, f gaas.JobFilter) (gaas.JobPage, error) {
	return a.db.Jobs.listBy(ctx, a.p, f)
}

// GPUTypes is Catalogue.GPUTypes for the principal.
func (a Acting) GPUTypes(ctx context.Context, req gaas.GPUTypesRequest) ([]gaas.GPUType, error) {
	return a.db.Catalogue.listBy(ctx, a.p, req)
}

// CreateGPUType is Catalogue.CreateGPUType for the principal.
func (a Acting) CreateGPUType(ctx context.Context, req gaas.CreateGPUTypeRequest) (gaas.GPUType, error) {
	return a.db.Catalogue.createBy(ctx, a.p, req)
}

// UpdateGPUType is Catalogue.UpdateGPUType for the principal.
func (a Acting) UpdateGPUType(ctx context.Context, req gaas.UpdateGPUTypeRequest) (gaas.GPUType, error) {
	return a.db.Catalogue.updateBy(ctx, a.p, req)
}

// CreateAllocation is Allocations.CreateAllocation for the principal, whom
// the allocation and the ledger name as its maker.
func (a Acting) CreateAllocation(ctx context.Context, req gaas.CreateAllocationRequest) (gaas.Allocation, error) {
	return a.db.Allocations.createBy(ctx, a.p, req)
}

// Allocations is Allocations.Allocations for the principal.
func (a Acting) Allocations(ctx context.Context, req gaas.AllocationsRequest) (gaas.AllocationPage, error) {
	return a.db.Allocations.listBy(ctx, a.p, req)
}

// UpdateAllocation is Allocations.UpdateAllocation for the principal, whom
// the ledger names as the actor of a revoke.
func (a Acting) UpdateAllocation(ctx context.Context, req gaas.UpdateAllocationRequest) (gaas.Allocation, error) {
	return a.db.Allocations.updateBy(ctx, a.p, req)
}

// CreateProject is Projects.CreateProject for the principal.
func (a Acting) CreateProject(ctx context.Context, req gaas.CreateProjectRequest) (gaas.Project, error) {
	return a.db.Projects.createBy(ctx, a.p, req)
}

// Project is Projects.Project for the principal.
func (a Acting) Project(ctx context.Context, req gaas.GetProjectRequest) (gaas.Project, error) {
	return a.db.Projects.projectBy(ctx, a.p, req)
}

// Projects is Projects.Projects for the principal.
func (a Acting) Projects(ctx context.Context, req gaas.ProjectsRequest) (gaas.ProjectPage, error) {
	return a.db.Projects.listBy(ctx, a.p, req)
}

// UpdateProject is Projects.UpdateProject for the principal.
func (a Acting) UpdateProject(ctx context.Context, req gaas.UpdateProjectRequest) (gaas.Project, error) {
	return a.db.Projects.updateBy(ctx, a.p, req)
}

// SetMember is Projects.SetMember for the principal.
func (a Acting) SetMember(ctx context.Context, req gaas.SetMemberRequest) (gaas.Member, error) {
	return a.db.Projects.setMemberBy(ctx, a.p, req)
}

// RemoveMember is Projects.RemoveMember for the principal.
func (a Acting) RemoveMember(ctx context.Context, req gaas.RemoveMemberRequest) error {
	return a.db.Projects.removeMemberBy(ctx, a.p, req)
}

// Members is Projects.Members for the principal.
func (a Acting) Members(ctx context.Context, req gaas.MembersRequest) (gaas.MemberPage, error) {
	return a.db.Projects.membersBy(ctx, a.p, req)
}

// ProjectLedger is Projects.ProjectLedger for the principal.
func (a Acting) ProjectLedger(ctx context.Context, req gaas.ProjectLedgerRequest) (gaas.LedgerPage, error) {
	return a.db.Projects.ledgerBy(ctx, a.p, req)
}

// Transfer is Projects.Transfer for the principal, whom the new allocation
// and the ledger name as its maker.
func (a Acting) Transfer(ctx context.Context, req gaas.TransferRequest) (gaas.Allocation, error) {
	return a.db.Projects.transferBy(ctx, a.p, req)
}

// CreateSchedule is Schedules.CreateSchedule for the principal, whom the
// schedule names as its maker.
func (a Acting) CreateSchedule(ctx context.Context, req gaas.CreateScheduleRequest) (gaas.Schedule, error) {
	return a.db.Schedules.createBy(ctx, a.p, req)
}

// Schedules is Schedules.Schedules for the principal.
func (a Acting) Schedules(ctx context.Context, req gaas.SchedulesRequest) (gaas.SchedulePage, error) {
	return a.db.Schedules.listBy(ctx, a.p, req)
}

// Schedule is Schedules.Schedule for the principal.
func (a Acting) Schedule(ctx context.Context, req gaas.GetScheduleRequest) (gaas.Schedule, error) {
	return a.db.Schedules.getBy(ctx, a.p, req)
}

// UpdateSchedule is Schedules.UpdateSchedule for the principal.
func (a Acting) UpdateSchedule(ctx context.Context, req gaas.UpdateScheduleRequest) (gaas.Schedule, error) {
	return a.db.Schedules.updateBy(ctx, a.p, req)
}

// Usage is Reports.Usage for the principal.
func (a Acting) Usage(ctx context.Context, req gaas.UsageRequest) (gaas.UsageReport, error) {
	return a.db.Reports.usageBy(ctx, a.p, req)
}
