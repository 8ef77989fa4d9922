package gaas_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/gaas-io/gaas/gaas"
)

// TestAllow holds the policy to a table that a reader checks at a glance:
// for each action, what each kind of principal gets when the target
// belongs to the owner (user 2).
func TestAllow(t *testing.T) {
	const owner = 2
	principals := []struct {
		name string
		p    gaas.Principal
	}{
		{"admin", gaas.Principal{UserID: 1, Role: gaas.RoleAdmin}},
		{"owner", gaas.Principal{UserID: owner, Role: gaas.RoleUser}},
		{"other", gaas.Principal{UserID: 3, Role: gaas.RoleUser}},
		{"disabled", gaas.Principal{UserID: owner, Role: gaas.RoleAdmin, Disabled: true}},
		{"system", gaas.System(gaas.SystemImport)},
	}
	var (
		ok     error
		forbid = gaas.ErrForbidden
		hide   = gaas.ErrNotFound
		unauth = gaas.ErrUnauthorized
	)
	// Columns: admin, owner, other, disabled, system.
	want := map[gaas.Action][5]error{
		gaas.ActionReadJob:       {ok, ok, hide, unauth, ok},
		gaas.ActionListJobs:      {ok, ok, forbid, unauth, ok},
		gaas.ActionCancelJob:     {ok, ok, hide, unauth, hide},
		gaas.ActionMoveJob:       {ok, forbid, forbid, unauth, ok},
		gaas.ActionReadUser:      {ok, ok, hide, unauth, ok},
		gaas.ActionListUsers:     {ok, forbid, forbid, unauth, ok},
		gaas.ActionCreateUser:    {ok, forbid, forbid, unauth, ok},
		gaas.ActionSetRole:       {ok, forbid, forbid, unauth, ok},
		gaas.ActionSetDisabled:   {ok, forbid, forbid, unauth, ok},
		gaas.ActionResetPassword: {ok, forbid, forbid, unauth, ok},
		gaas.ActionSetBalance:    {ok, forbid, forbid, unauth, ok},
		gaas.ActionGrantHours:    {ok, forbid, forbid, unauth, ok},

		gaas.ActionReadCatalogue:    {ok, ok, ok, unauth, ok},
		gaas.ActionManageCatalogue:  {ok, forbid, forbid, unauth, ok},
		gaas.ActionManageExecutors:  {ok, forbid, forbid, unauth, ok},
		gaas.ActionReadAllocations:  {ok, ok, hide, unauth, ok},
		gaas.ActionCreateAllocation: {ok, forbid, forbid, unauth, ok},
		gaas.ActionUpdateAllocation: {ok, forbid, forbid, unauth, ok},

		// Actions on projects, asked of Allow: a user is no one's
		// manager or member here (AllowProject decides those).
		gaas.ActionCreateProject:     {ok, forbid, forbid, unauth, ok},
		gaas.ActionReadProject:       {ok, hide, hide, unauth, ok},
		gaas.ActionUpdateProject:     {ok, forbid, forbid, unauth, ok},
		gaas.ActionAppointManager:    {ok, forbid, forbid, unauth, ok},
		gaas.ActionManageMembers:     {ok, forbid, forbid, unauth, ok},
		gaas.ActionGrantProject:      {ok, forbid, forbid, unauth, ok},
		gaas.ActionReadProjectLedger: {ok, forbid, forbid, unauth, ok},
		gaas.ActionManageWebhooks:    {ok, forbid, forbid, unauth, ok},
		gaas.ActionChargeProject:     {forbid, forbid, forbid, unauth, forbid},

		gaas.ActionManageUserSchedules:    {ok, forbid, forbid, unauth, ok},
		gaas.ActionManageProjectSchedules: {ok, forbid, forbid, unauth, ok},
		gaas.ActionCreateSchedule:         {ok, forbid, forbid, unauth, ok},

		gaas.ActionReadUsage:        {ok, ok, forbid, unauth, ok},
		gaas.ActionReadProjectUsage: {ok, hide, hide, unauth, ok},
	}
	actions := gaas.Actions()
	assert.Len(t, want, len(actions), "every action of the policy has a row here")
	for _, a := range actions {
		row, ok := want[a]
		if !assert.True(t, ok, "no row for %q", a) {
			continue
		}
		for i, pr := range principals {
			got := gaas.Allow(pr.p, a, owner)
			if row[i] == nil {
				assert.NoError(t, got, "%s may %s", pr.name, a)
			} else {
				assert.ErrorIs(t, got, row[i], "%s may not %s", pr.name, a)
				for _, other := range []error{gaas.ErrForbidden, gaas.ErrNotFound, gaas.ErrUnauthorized} {
					if other != row[i] {
						assert.False(t, errors.Is(got, other), "%s %s: %v is also %v", pr.name, a, got, other)
					}
				}
			}
		}
	}
}

// TestAllowProject holds the policy of projects to a table: for each
// action on a project, what each principal gets by their role in it.
// Whoever cannot see the project is told it does not exist.
func TestAllowProject(t *testing.T) {
	user := gaas.Principal{UserID: 2, Role: gaas.RoleUser}
	principals := []struct {
		name string
		p    gaas.Principal
		role gaas.ProjectRole
	}{
		{"admin", gaas.Principal{UserID: 1, Role: gaas.RoleAdmin}, ""},
		{"manager", user, gaas.ProjectManager},
		{"member", user, gaas.ProjectMember},
		{"stranger", user, ""},
		{"disabled manager", gaas.Principal{UserID: 2, Role: gaas.RoleUser, Disabled: true}, gaas.ProjectManager},
		{"system", gaas.System(gaas.SystemImport), ""},
	}
	var (
		ok     error
		forbid = gaas.ErrForbidden
		hide   = gaas.ErrNotFound
		unauth = gaas.ErrUnauthorized
	)
	// Columns: admin, manager, member, stranger, disabled manager, system.
	want := map[gaas.Action][6]error{
		gaas.ActionCreateProject:     {ok, forbid, forbid, hide, unauth, ok},
		gaas.ActionReadProject:       {ok, ok, ok, hide, unauth, ok},
		gaas.ActionUpdateProject:     {ok, forbid, forbid, hide, unauth, ok},
		gaas.ActionAppointManager:    {ok, forbid, forbid, hide, unauth, ok},
		gaas.ActionManageMembers:     {ok, ok, forbid, hide, unauth, ok},
		gaas.ActionGrantProject:      {ok, forbid, forbid, hide, unauth, ok},
		gaas.ActionReadProjectLedger: {ok, ok, forbid, hide, unauth, ok},
		gaas.ActionChargeProject:     {forbid, ok, ok, hide, unauth, forbid},
		gaas.ActionManageWebhooks:    {ok, ok, forbid, hide, unauth, ok},
		// A manager of a project's ancestor counts as its manager here.
		gaas.ActionManageProjectSchedules: {ok, ok, forbid, hide, unauth, ok},
		// A member sees their own jobs in it; a manager everyone's.
		gaas.ActionReadProjectUsage: {ok, ok, ok, hide, unauth, ok},
	}
	for a, row := range want {
		for i, pr := range principals {
			got := gaas.AllowProject(pr.p, a, pr.role)
			if row[i] == nil {
				assert.NoError(t, got, "%s may %s", pr.name, a)
				continue
			}
			assert.ErrorIs(t, got, row[i], "%s may not %s", pr.name, a)
			for _, other := range []error{gaas.ErrForbidden, gaas.ErrNotFound, gaas.ErrUnauthorized} {
				if other != row[i] {
					assert.False(t, errors.Is(got, other), "%s %s: %v is also %v", pr.name, a, got, other)
				}
			}
		}
	}
}

// A target that belongs to no one (0: everyone's jobs) is nobody's own,
// an unknown action is refused, and so is a principal that names no one.
func TestAllowEdges(t *testing.T) {
	user := gaas.UserPrincipal(gaas.User{ID: 5, Role: gaas.RoleUser})
	assert.ErrorIs(t, gaas.Allow(user, gaas.ActionListJobs, 0), gaas.ErrForbidden)
	assert.NoError(t, gaas.Allow(user, gaas.ActionListJobs, 5))
	admin := gaas.UserPrincipal(gaas.User{ID: 1, Role: gaas.RoleAdmin})
	assert.NoError(t, gaas.Allow(admin, gaas.ActionListJobs, 0))
	assert.ErrorIs(t, gaas.Allow(admin, gaas.Action("launch missiles"), 0), gaas.ErrForbidden)
	assert.ErrorIs(t, gaas.Allow(gaas.Principal{}, gaas.ActionReadJob, 0), gaas.ErrUnauthorized)
	assert.ErrorIs(t, gaas.Allow(gaas.Principal{Role: gaas.RoleAdmin}, gaas.ActionListUsers, 0), gaas.ErrUnauthorized)
	assert.Equal(t, "system import", gaas.System(gaas.SystemImport).String())

	// The catalogue is for anyone signed in, whatever the target; being
	// anyone still takes an enabled account.
	assert.NoError(t, gaas.Allow(user, gaas.ActionReadCatalogue, 0))
	assert.NoError(t, gaas.Allow(gaas.System(gaas.SystemRegistration), gaas.ActionReadCatalogue, 0))
	disabled := gaas.UserPrincipal(gaas.User{ID: 6, Role: gaas.RoleUser, Disabled: true})
	assert.ErrorIs(t, gaas.Allow(disabled, gaas.ActionReadCatalogue, 0), gaas.ErrUnauthorized)
	assert.ErrorIs(t, gaas.Allow(gaas.Principal{}, gaas.ActionReadCatalogue, 0), gaas.ErrUnauthorized)
	// Anyone reads the catalogue, but no one else's allocations.
	assert.ErrorIs(t, gaas.Allow(user, gaas.ActionReadAllocations, 0), gaas.ErrNotFound)
	assert.Equal(t, "user 5", user.String())
}
