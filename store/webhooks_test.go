package store_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/gaas"
	"github.com/gaas-io/gaas/store"
)

// Events go to the endpoints that may see them: an admin's every one, a
// project's those of its jobs; replicas fanning out and claiming at once
// make each delivery once and claim each once.
func TestDeliveriesRouted(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		dsn := b.dsn(t)
		db := openStore(t, dsn, store.Options{})
		replicas := []*store.DB{db}
		if b.shared {
			replicas = append(replicas, openStore(t, dsn, store.Options{}))
		}
		f := newFixture(t, db)
		p, err := db.Projects.CreateProject(ctx, f.admin.ID, gaas.CreateProjectRequest{Name: "lab"})
		require.NoError(t, err)
		f.allocation(t, gaas.CreateAllocationRequest{ProjectID: p.ID, Amount: 100 * gaas.Credit})
		pi, ann := f.user(t, 0), f.user(t, 10*gaas.Credit)
		for _, m := range []struct {
			id   int64
			role gaas.ProjectRole
		}{{pi.ID, gaas.ProjectManager}, {ann.ID, gaas.ProjectMember}} {
			_, err = db.Projects.SetMember(ctx, f.admin.ID, gaas.SetMemberRequest{ProjectID: p.ID, UserID: m.id, Role: m.role})
			require.NoError(t, err)
		}
		events := []gaas.EventType{gaas.EventJobStatusChanged}
		all, err := db.Webhooks.CreateWebhook(ctx, f.admin.ID, gaas.CreateWebhookRequest{URL: "https://a.example/", Events: events})
		require.NoError(t, err)
		lab, err := db.Webhooks.CreateWebhook(ctx, pi.ID, gaas.CreateWebhookRequest{URL: "https://b.example/", Events: events, ProjectID: p.ID})
		require.NoError(t, err)
		// A manager of no other project, and a member, register nothing else.
		other, err := db.Projects.CreateProject(ctx, f.admin.ID, gaas.CreateProjectRequest{Name: "other"})
		require.NoError(t, err)
		_, err = db.Webhooks.CreateWebhook(ctx, pi.ID, gaas.CreateWebhookRequest{URL: "https://c.example/", Events: events, ProjectID: other.ID})
		assert.ErrorIs(t, err, gaas.ErrNotFound)
		_, err = db.Webhooks.CreateWebhook(ctx, pi.ID, gaas.CreateWebhookRequest{URL: "https://c.example/", Events: events})
		assert.ErrorIs(t, err, gaas.ErrForbidden)
		_, err = db.Webhooks.CreateWebhook(ctx, ann.ID, gaas.CreateWebhookRequest{URL: "https://c.example/", Events: events, ProjectID: p.ID})
		assert.ErrorIs(t, err, gaas.ErrForbidden)
		_, err = db.Webhooks.Webhook(ctx, pi.ID, all.ID)
		assert.ErrorIs(t, err, gaas.ErrNotFound)

		labJob, err := db.Jobs.Submit(ctx, ann.ID, gaas.SubmitRequest{Command: "x", GPUType: "A100", EstimatedHours: gaas.Hour, Project: gaas.ProjectRef("lab")})
		require.NoError(t, err)
		own := f.submit(t, ann.ID, gaas.Hour)
		for _, j := range []gaas.Job{labJob, own} {
			f.move(t, j, nil, gaas.StatusApproved, gaas.StatusRunning)
		}

		var wg sync.WaitGroup
		for _, r := range replicas {
			wg.Go(func() {
				_, err := r.Webhooks.DispatchEvents(ctx)
				assert.NoError(t, err)
			})
		}
		wg.Wait()
		claimed := map[int64][]int64{} // endpoint: events
		var mu sync.Mutex
		for _, r := range replicas {
			wg.Go(func() {
				due, err := r.Webhooks.ClaimDeliveries(ctx, 100, time.Minute)
				assert.NoError(t, err)
				mu.Lock()
				defer mu.Unlock()
				for _, d := range due {
					claimed[d.WebhookID] = append(claimed[d.WebhookID], d.Event.ID)
					assert.Equal(t, 1, d.Attempt)
				}
			})
		}
		wg.Wait()
		assert.Len(t, claimed[all.ID], 4, "the admin's endpoint: both jobs' two moves, each once")
		require.Len(t, claimed[lab.ID], 2, "the lab's: its job's two moves")
		for _, id := range claimed[lab.ID] {
			assert.Contains(t, claimed[all.ID], id)
		}
		due, err := db.Webhooks.ClaimDeliveries(ctx, 100, time.Minute)
		require.NoError(t, err)
		assert.Empty(t, due, "claimed, they wait for their lease")

		page, err := db.Webhooks.Webhooks(ctx, pi.ID, gaas.Page{})
		require.NoError(t, err)
		require.Len(t, page.Items, 1)
		assert.Equal(t, lab.ID, page.Items[0].ID)
		assert.Empty(t, page.Items[0].Secret, "a listing shows no secret")
	})
}
