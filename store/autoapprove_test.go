package store_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/gaas"
	"github.com/gaas-io/gaas/store"
)

// A GPU type or a project that approves its jobs makes them APPROVED at
// submission, charged as any job; other jobs wait for an admin. Only
// admins say so.
func TestAutoApprove(t *testing.T) {
	forEachStore(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		f.gpuType(t, gaas.CreateGPUTypeRequest{Name: "A100", Rate: gaas.RateOne, AutoApprove: true})
		f.gpuType(t, gaas.CreateGPUTypeRequest{Name: "H100", Rate: 2 * gaas.RateOne})
		u := f.user(t, 10*gaas.Credit)
		submit := func(gpuType string, project int64) gaas.Job {
			t.Helper()
			req := gaas.SubmitRequest{Command: "train", GPUType: gpuType, EstimatedHours: gaas.Hour}
			if project != 0 {
				req.Project = gaas.ProjectRef(strconv.FormatInt(project, 10))
			}
			j, err := db.Jobs.Submit(ctx, u.ID, req)
			require.NoError(t, err)
			return j
		}
		assert.Equal(t, gaas.StatusApproved, submit("a100", 0).Status, "the type approves its jobs")
		assert.Equal(t, gaas.StatusPending, submit("H100", 0).Status)
		assert.Equal(t, 7*gaas.Credit, f.balance(t, u.ID), "charged alike")

		lab, err := db.Projects.CreateProject(ctx, f.admin.ID, gaas.CreateProjectRequest{Name: "lab", AutoApprove: true})
		require.NoError(t, err)
		assert.True(t, lab.AutoApprove)
		_, err = db.Projects.SetMember(ctx, f.admin.ID, gaas.SetMemberRequest{ProjectID: lab.ID, UserID: u.ID, Role: gaas.ProjectManager})
		require.NoError(t, err)
		_, err = db.Allocations.CreateAllocation(ctx, f.admin.ID, gaas.CreateAllocationRequest{ProjectID: lab.ID, Amount: 10 * gaas.Credit})
		require.NoError(t, err)
		assert.Equal(t, gaas.StatusApproved, submit("H100", lab.ID).Status, "the project approves its jobs")

		// A manager may not make their own project approve itself.
		no := false
		_, err = db.Projects.UpdateProject(ctx, u.ID, gaas.UpdateProjectRequest{ProjectID: lab.ID, AutoApprove: &no})
		assert.ErrorIs(t, err, gaas.ErrForbidden)
		lab, err = db.Projects.UpdateProject(ctx, f.admin.ID, gaas.UpdateProjectRequest{ProjectID: lab.ID, AutoApprove: &no})
		require.NoError(t, err)
		assert.False(t, lab.AutoApprove)
		assert.Equal(t, gaas.StatusPending, submit("H100", lab.ID).Status)
		_, err = db.Catalogue.UpdateGPUType(ctx, u.ID, gaas.UpdateGPUTypeRequest{Name: "H100", AutoApprove: new(true)})
		assert.ErrorIs(t, err, gaas.ErrForbidden)
		h100, err := db.Catalogue.UpdateGPUType(ctx, f.admin.ID, gaas.UpdateGPUTypeRequest{Name: "H100", AutoApprove: new(true)})
		require.NoError(t, err)
		assert.True(t, h100.AutoApprove)
		assert.Equal(t, gaas.StatusApproved, submit("H100", 0).Status)
	})
}
