package portal_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/gaas"
	"github.com/gaas-io/gaas/store"
)

func TestAdminUsers(t *testing.T) {
	ctx := context.Background()
	forEachDB(t, func(t *testing.T, s *site) {
		s.user("bob")
		b := s.admin()
		b.get("/portal/admin/users")
		require.Equal(t, http.StatusOK, b.status)
		assert.Contains(t, b.page, ">bob<")
		assert.Contains(t, b.page, ">root</a>")
		b.get("/portal/admin/users?username=BOB")
		assert.Contains(t, b.page, ">bob<")
		assert.NotContains(t, b.page, ">root</a>", "a search finds one")

		b.get("/portal/admin/users")
		b.send("/portal/admin/users", url.Values{"username": {"cleo"}, "password": {"cleo password"}, "role": {"user"}})
		require.Equal(t, http.StatusOK, b.status, b.page)
		assert.Contains(t, b.page, "User cleo is created, with role user.")
		assert.Contains(t, b.page, "<h1>User cleo</h1>")
		page, err := s.db.Users.Users(ctx, s.root.ID, gaas.UserFilter{Username: "cleo"})
		require.NoError(t, err)
		require.Len(t, page.Items, 1)
		cleo := page.Items[0]
		userPage := fmt.Sprintf("/portal/admin/users/%d", cleo.ID)
		assert.Equal(t, userPage, b.url.Path)

		t.Run("refusals_in_words", func(t *testing.T) {
			b.get("/portal/admin/users")
			b.send("/portal/admin/users", url.Values{"username": {"Cleo"}, "password": {"cleo password"}})
			assert.Equal(t, http.StatusConflict, b.status)
			assert.Contains(t, b.page, `The user was not created: the username &#34;Cleo&#34; is taken.`)
			b.get("/portal/admin/users")
			b.send("/portal/admin/users", url.Values{"username": {"dan"}, "password": {"short"}})
			assert.Equal(t, http.StatusUnprocessableEntity, b.status)
			assert.Contains(t, b.page, "The user was not created: password must be 8 to 1024 characters.")
		})
		t.Run("grant", func(t *testing.T) {
			b.get(userPage)
			b.submit(userPage+"/grant", url.Values{"amount": {"12.5"}, "reason": {"welcome"}})
			require.Equal(t, http.StatusOK, b.status, b.page)
			assert.Contains(t, b.page, "12.5 credits granted to cleo: their balance is 12.5.")
			assert.Contains(t, b.page, `id="user-balance">12.5 credits<`)
			assert.Equal(t, gaas.Credits(12500), s.balance(cleo.ID))
			b.submit(userPage+"/grant", url.Values{"amount": {"-2.5"}})
			assert.Equal(t, credits(10), s.balance(cleo.ID))
			b.submit(userPage+"/grant", url.Values{"amount": {"-100"}})
			assert.Equal(t, http.StatusConflict, b.status)
			assert.Contains(t, b.page, "No credits were granted: it asks for 100 credits, and 10 are available.")
			b.get(userPage)
			b.submit(userPage+"/grant", url.Values{"amount": {"lots"}})
			assert.Equal(t, http.StatusUnprocessableEntity, b.status)
			assert.Equal(t, credits(10), s.balance(cleo.ID))
		})
		t.Run("reset_password", func(t *testing.T) {
			cleoB := s.browser()
			cleoB.signIn("cleo", "cleo password")
			require.Equal(t, "/", cleoB.url.Path)
			b.get(userPage)
			b.submit(userPage+"/password", url.Values{"password": {"a new password"}})
			require.Equal(t, http.StatusOK, b.status, b.page)
			assert.Contains(t, b.page, "The password of cleo is reset")
			cleoB.get("/")
			assert.Equal(t, "/portal/sign-in", cleoB.url.Path, "her session ended")
			cleoB.signIn("cleo", "a new password")
			assert.Equal(t, "/", cleoB.url.Path)
		})
		t.Run("disable_and_enable", func(t *testing.T) {
			b.get(userPage)
			b.submit(userPage+"/disabled", nil)
			require.Equal(t, http.StatusOK, b.status, b.page)
			assert.Contains(t, b.page, "User cleo is disabled")
			assert.Contains(t, b.page, `id="user-state">disabled<`)
			u, err := s.db.Users.User(ctx, s.root.ID, gaas.GetUserRequest{UserID: cleo.ID})
			require.NoError(t, err)
			assert.True(t, u.Disabled)
			fresh := s.browser()
			fresh.signIn("cleo", "a new password")
			assert.Equal(t, http.StatusUnauthorized, fresh.status)
			b.submit(userPage+"/disabled", nil)
			assert.Contains(t, b.page, "User cleo is enabled.")
			fresh.signIn("cleo", "a new password")
			assert.Equal(t, "/", fresh.url.Path)
		})
		t.Run("the_last_admin", func(t *testing.T) {
			b.get(fmt.Sprintf("/portal/admin/users/%d", s.root.ID))
			b.submit(fmt.Sprintf("/portal/admin/users/%d/disabled", s.root.ID), nil)
			assert.Equal(t, http.StatusConflict, b.status)
			assert.Contains(t, b.page, "they are the last enabled admin")
		})
	})
}

func TestAdminProjectsAllocationsSchedules(t *testing.T) {
	ctx := context.Background()
	forEachDB(t, func(t *testing.T, s *site) {
		ada := s.user("ada")
		b := s.admin()
		b.get("/portal/admin/projects")
		b.submit("/portal/admin/projects", url.Values{"name": {"vision"}, "description": {"computer vision"}, "managers_approve": {"1"}, "cap": {"100"}})
		require.Equal(t, http.StatusOK, b.status, b.page)
		assert.Contains(t, b.page, "Project vision is created.")
		pr, err := s.db.Projects.Project(ctx, s.root.ID, gaas.GetProjectRequest{Project: "vision"})
		require.NoError(t, err)
		assert.True(t, pr.ManagersApprove)
		require.NotNil(t, pr.Cap)
		assert.Equal(t, credits(100), *pr.Cap)
		projectPage := fmt.Sprintf("/portal/projects/%d", pr.ID)
		assert.Equal(t, projectPage, b.url.Path, "the new project's page")
		b.get("/portal/admin/projects")
		b.submit("/portal/admin/projects", url.Values{"name": {"VISION"}})
		assert.Equal(t, http.StatusConflict, b.status)
		b.get("/portal/admin/projects")
		b.submit("/portal/admin/projects", url.Values{"name": {"detection"}, "parent": {"vision"}})
		require.Equal(t, http.StatusOK, b.status, b.page)
		b.get("/portal/admin/projects")
		assert.Contains(t, b.page, ">detection<")

		t.Run("admin_changes_the_project", func(t *testing.T) {
			b.get(projectPage)
			b.submit(fmt.Sprintf("/portal/admin/projects/%d", pr.ID), url.Values{"description": {"vision and video"}, "cap": {""}, "auto_approve": {"1"}})
			require.Equal(t, http.StatusOK, b.status, b.page)
			assert.Contains(t, b.page, "Project vision is saved.")
			got, err := s.db.Projects.Project(ctx, s.root.ID, gaas.GetProjectRequest{Project: "vision"})
			require.NoError(t, err)
			assert.Equal(t, "vision and video", got.Description)
			assert.Nil(t, got.Cap, "an empty cap is none")
			assert.False(t, got.ManagersApprove)
			assert.True(t, got.AutoApprove)
			b.submit(fmt.Sprintf("/portal/admin/projects/%d", pr.ID), url.Values{"cap": {"-1"}})
			assert.Equal(t, http.StatusUnprocessableEntity, b.status)
		})
		t.Run("admin_appoints_a_manager_by_name", func(t *testing.T) {
			b.get(projectPage)
			b.submit(projectPage+"/members", url.Values{"user": {"ada"}, "role": {"manager"}})
			require.Equal(t, http.StatusOK, b.status, b.page)
			assert.Contains(t, b.page, "ada is a manager of project vision.")
		})
		t.Run("project_allocation", func(t *testing.T) {
			b.get(projectPage)
			b.submit("/portal/admin/allocations", url.Values{"amount": {"30"}, "reason": {"autumn"}, "expires_at": {"2099-01-01"}})
			require.Equal(t, http.StatusOK, b.status, b.page)
			assert.Equal(t, projectPage, b.url.Path)
			assert.Contains(t, b.page, `id="project-balance">30 credits<`)
			allocs, err := s.db.Allocations.Allocations(ctx, s.root.ID, gaas.AllocationsRequest{ProjectID: pr.ID})
			require.NoError(t, err)
			var a gaas.Allocation
			for _, x := range allocs.Items {
				if x.Reason == "autumn" {
					a = x
				}
			}
			require.NotZero(t, a.ID)
			b.submit(fmt.Sprintf("/portal/admin/allocations/%d", a.ID), url.Values{"expires_at": {"2098-06-30T12:00"}})
			require.Equal(t, http.StatusOK, b.status, b.page)
			assert.Contains(t, b.page, fmt.Sprintf("Allocation %d ends at 2098-06-30 12:00 UTC.", a.ID))
			b.submit(fmt.Sprintf("/portal/admin/allocations/%d", a.ID), url.Values{"expires_at": {"2099-06-30"}})
			assert.Equal(t, http.StatusUnprocessableEntity, b.status, "an end is only made sooner")
			b.get(projectPage)
			b.submit(fmt.Sprintf("/portal/admin/allocations/%d", a.ID), url.Values{"end": {"1"}})
			require.Equal(t, http.StatusOK, b.status, b.page)
			assert.Contains(t, b.page, fmt.Sprintf("Allocation %d is ended; what it held was taken back.", a.ID))
			assert.Contains(t, b.page, `id="project-balance">0 credits<`)
		})
		t.Run("user_allocation_and_schedule", func(t *testing.T) {
			userPage := fmt.Sprintf("/portal/admin/users/%d", ada.ID)
			b.get(userPage)
			b.submit("/portal/admin/allocations", url.Values{"amount": {"8"}, "gpu_types": {"A100, T4"}})
			require.Equal(t, http.StatusOK, b.status, b.page)
			assert.Equal(t, userPage, b.url.Path)
			assert.Contains(t, b.page, `id="account-balance">8 credits<`)
			assert.Contains(t, b.page, "A100, T4")
			assert.Equal(t, credits(8), s.balance(ada.ID))
			b.submit("/portal/admin/allocations", url.Values{"amount": {"0"}})
			assert.Equal(t, http.StatusUnprocessableEntity, b.status)
			assert.Contains(t, b.page, "The allocation was not given: amount must be greater than 0")

			b.get(userPage)
			b.submit("/portal/schedules", url.Values{"amount": {"5"}, "period": {"monthly"}, "time_zone": {"Europe/Berlin"}, "rollover_cap": {"2"}, "grant_current": {"1"}})
			require.Equal(t, http.StatusOK, b.status, b.page)
			assert.Contains(t, b.page, "gives 5 credits monthly.")
			page, err := s.db.Schedules.Schedules(ctx, s.root.ID, gaas.SchedulesRequest{UserID: ada.ID})
			require.NoError(t, err)
			require.Len(t, page.Items, 1)
			sc := page.Items[0]
			assert.Equal(t, "Europe/Berlin", sc.TimeZone)
			assert.Equal(t, gaas.LeftoverRollover, sc.Leftover)
			assert.Equal(t, credits(13), s.balance(ada.ID), "the period under way is given at once")
			for _, step := range []struct{ action, says string }{{"pause", "paused"}, {"resume", "resumed"}, {"end", "ended"}} {
				b.submit(fmt.Sprintf("/portal/schedules/%d", sc.ID), url.Values{"action": {step.action}})
				require.Equal(t, http.StatusOK, b.status, b.page)
				assert.Contains(t, b.page, fmt.Sprintf("Schedule %d is %s.", sc.ID, step.says))
				got, err := s.db.Schedules.Schedule(ctx, s.root.ID, gaas.GetScheduleRequest{ScheduleID: sc.ID})
				require.NoError(t, err)
				assert.Equal(t, step.action == "pause", got.Paused && got.EndedAt == nil, step.action)
				if step.action != "end" {
					b.get(userPage)
				}
			}
			csrf := b.csrfOf()
			b.post(fmt.Sprintf("/portal/schedules/%d", sc.ID), url.Values{"csrf": {csrf}, "action": {"pause"}})
			assert.Equal(t, http.StatusConflict, b.status)
			assert.Contains(t, b.page, "it is ended already.")
		})
	})
}

func TestAdminCatalogue(t *testing.T) {
	ctx := context.Background()
	forEachDB(t, func(t *testing.T, s *site) {
		b := s.admin()
		b.get("/portal/admin/gpu-types")
		assert.Contains(t, b.page, "The catalogue is empty")
		b.submit("/portal/admin/gpu-types", url.Values{"name": {"A100"}, "rate": {"2.5"}, "description": {"80 GB"}, "max_gpus_per_job": {"8"}})
		require.Equal(t, http.StatusOK, b.status, b.page)
		assert.Contains(t, b.page, "GPU type A100 is added at 2.5 credits a GPU-hour.")
		b.submit("/portal/admin/gpu-types", url.Values{"name": {"K80"}, "rate": {"0.5"}, "retired": {"1"}})
		require.Equal(t, http.StatusOK, b.status, b.page)
		assert.Contains(t, b.page, "K80</strong> <span class=\"muted\">(retired)</span>", "retired types are listed")
		b.submit("/portal/admin/gpu-types", url.Values{"name": {"a100"}, "rate": {"1"}})
		assert.Equal(t, http.StatusConflict, b.status)
		b.get("/portal/admin/gpu-types")
		b.submit("/portal/admin/gpu-types", url.Values{"name": {"T4"}, "rate": {"0"}})
		assert.Equal(t, http.StatusUnprocessableEntity, b.status)
		assert.Contains(t, b.page, "The GPU type was not added: rate must be greater than 0")

		b.get("/portal/admin/gpu-types")
		b.submit("/portal/admin/gpu-types/update", url.Values{"name": {"A100"}, "rate": {"3"}, "description": {"80 GB, NVLink"},
			"max_gpus_per_job": {""}, "auto_approve": {"1"}})
		require.Equal(t, http.StatusOK, b.status, b.page)
		assert.Contains(t, b.page, "GPU type A100 is saved: 3 credits a GPU-hour, retired.")
		types, err := s.db.Catalogue.GPUTypes(ctx, s.root.ID, gaas.GPUTypesRequest{Retired: true})
		require.NoError(t, err)
		require.Len(t, types, 2)
		a := types[0]
		assert.Equal(t, "A100", a.Name)
		assert.Equal(t, 3*gaas.RateOne, a.Rate)
		assert.Equal(t, "80 GB, NVLink", a.Description)
		assert.Zero(t, a.MaxGPUsPerJob)
		assert.False(t, a.Enabled, "an unticked box is a retired type")
		assert.True(t, a.AutoApprove)
		b.submit("/portal/admin/gpu-types/update", url.Values{"name": {"A100"}, "rate": {"3"}, "enabled": {"1"}, "max_gpus_per_job": {"4"}})
		types, err = s.db.Catalogue.GPUTypes(ctx, s.root.ID, gaas.GPUTypesRequest{})
		require.NoError(t, err)
		require.Len(t, types, 1)
		assert.Equal(t, 4, types[0].MaxGPUsPerJob)
		b.submit("/portal/admin/gpu-types/update", url.Values{"name": {"Z80"}, "rate": {"3"}})
		assert.Equal(t, http.StatusNotFound, b.status)
	})
}

func TestAdminWebhooks(t *testing.T) {
	ctx := context.Background()
	forEachDB(t, func(t *testing.T, s *site) {
		b := s.admin()
		b.get("/portal/admin/webhooks")
		assertLabelled(t, b)
		b.submit("/portal/admin/webhooks", url.Values{"url": {"https://hooks.example/gaas"}, "events": {"job.status_changed", "allocation.granted"}})
		require.Equal(t, http.StatusCreated, b.status, b.page)
		assert.Contains(t, b.page, "is created. Its secret")
		page, err := s.db.Webhooks.Webhooks(ctx, s.root.ID, gaas.Page{})
		require.NoError(t, err)
		require.Len(t, page.Items, 1)
		wh := page.Items[0]
		assert.Equal(t, []gaas.EventType{gaas.EventJobStatusChanged, gaas.EventAllocationGranted}, wh.Events)
		assert.Contains(t, b.page, `id="webhook-secret" type="text" readonly value="whsec_`)
		assert.Nil(t, b.cookie("gaas_flash"), "the secret is in no cookie")
		b.get("/portal/admin/webhooks")
		assert.NotContains(t, b.page, "whsec_", "the secret is shown once")
		b.submit("/portal/admin/webhooks", url.Values{"url": {"ftp://hooks.example/"}, "events": {"job.status_changed"}})
		assert.Equal(t, http.StatusUnprocessableEntity, b.status)
		assert.Contains(t, b.page, "url must be an http or https URL")

		u := s.user("ada")
		s.grant(u.ID, 5)
		_, err = s.db.Jobs.Cancel(ctx, u.ID, gaas.CancelRequest{JobID: s.job(u.ID, "A100", 1).ID}) // a job.status_changed event
		require.NoError(t, err)
		_, err = s.db.Webhooks.DispatchEvents(ctx)
		require.NoError(t, err)
		hook := fmt.Sprintf("/portal/admin/webhooks/%d", wh.ID)
		b.get(hook)
		require.Equal(t, http.StatusOK, b.status, b.page)
		assert.Contains(t, b.page, "https://hooks.example/gaas")
		deliveries, err := s.db.Webhooks.Deliveries(ctx, s.root.ID, gaas.DeliveriesRequest{WebhookID: wh.ID})
		require.NoError(t, err)
		require.NotEmpty(t, deliveries.Items)
		d := deliveries.Items[0]
		assert.Contains(t, b.page, fmt.Sprintf(`<td data-label="Delivery">%d</td>`, d.ID))
		assertLabelled(t, b)
		b.submit(fmt.Sprintf("%s/deliveries/%d/redeliver", hook, d.ID), nil)
		require.Equal(t, http.StatusOK, b.status, b.page)
		assert.Equal(t, hook, b.url.Path)
		assert.Contains(t, b.page, fmt.Sprintf("Delivery %d is due again now.", d.ID))
		assert.Contains(t, b.page, "cannot be disabled by hand")

		b.submit(hook+"/delete", nil)
		require.Equal(t, http.StatusOK, b.status, b.page)
		assert.Contains(t, b.page, fmt.Sprintf("Webhook %d and its deliveries are deleted.", wh.ID))
		_, err = s.db.Webhooks.Webhook(ctx, s.root.ID, wh.ID)
		assert.ErrorIs(t, err, gaas.ErrNotFound)
		b.get(hook)
		assert.Equal(t, http.StatusNotFound, b.status)
	})
}

func TestAdminReport(t *testing.T) {
	ctx := context.Background()
	forEachDB(t, func(t *testing.T, s *site) {
		s.gpuType("A100", 2, 0)
		s.gpuType("T4", 1, 0)
		ada := s.user("ada")
		s.grant(ada.ID, 100)
		for _, tc := range []struct {
			gpuType string
			hours   int64
			to      gaas.JobStatus
		}{{"A100", 2, gaas.StatusCompleted}, {"T4", 3, gaas.StatusCompleted}, {"T4", 1, gaas.StatusRejected}} {
			j := s.job(ada.ID, tc.gpuType, tc.hours)
			if tc.to == gaas.StatusCompleted {
				for _, st := range []gaas.JobStatus{gaas.StatusApproved, gaas.StatusRunning} {
					_, err := s.db.Jobs.Transition(ctx, s.root.ID, gaas.TransitionRequest{JobID: j.ID, To: st})
					require.NoError(t, err)
				}
			}
			_, err := s.db.Jobs.Transition(ctx, s.root.ID, gaas.TransitionRequest{JobID: j.ID, To: tc.to})
			require.NoError(t, err)
		}
		from, to := time.Now().UTC().AddDate(0, 0, -3).Format(time.DateOnly), time.Now().UTC().AddDate(0, 0, 2).Format(time.DateOnly)
		query := "from=" + from + "&to=" + to + "&period=day&group_by=user,gpu_type"

		b := s.admin()
		b.get("/portal/admin/report")
		require.Equal(t, http.StatusOK, b.status, b.page)
		assert.Contains(t, b.page, `<option value="week" selected>`)
		assert.Contains(t, b.page, `id="group-gpu_type" name="group_by" type="checkbox" value="gpu_type" checked`)
		assert.Contains(t, b.page, `role="img"`, "a chart")
		b.get("/portal/admin/report?" + strings.Replace(query, "group_by=user,gpu_type", "group_by=user&group_by=gpu_type", 1))
		require.Equal(t, http.StatusOK, b.status, b.page)
		assert.Contains(t, b.page, `<svg`)
		assert.Contains(t, b.page, "<title id=\"chart-gpu-hours-by-day-and-gpu-type-title\">GPU-hours by day and GPU type</title>")
		assert.Contains(t, b.page, `<td data-label="gpu type">A100</td><td data-label="gpu hours">2</td><td data-label="charged">4</td>`)
		assert.Contains(t, b.page, `<td data-label="gpu type">T4</td><td data-label="gpu hours">3</td><td data-label="charged">4</td><td data-label="returned">1</td>`)
		assert.Contains(t, b.page, `<tfoot><tr><td data-label="period start">Total</td>`)
		assert.Contains(t, b.page, `href="/portal/admin/report.csv?`, "a link to the CSV")

		b.get("/portal/admin/report.csv?" + query)
		require.Equal(t, http.StatusOK, b.status, b.page)
		portalCSV := b.page

		// The API's CSV of the same report, with a token of the same admin.
		resp, err := http.PostForm(s.url("/login"), url.Values{"username": {"root"}, "password": {"root password"}})
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		token := strings.Split(strings.Split(string(body), `"access_token":"`)[1], `"`)[0]
		req, _ := http.NewRequest(http.MethodGet, s.url("/reports/usage?format=csv&"+query), nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err = http.DefaultClient.Do(req)
		require.NoError(t, err)
		apiCSV, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, string(apiCSV))
		assert.Equal(t, string(apiCSV), portalCSV, "the portal's CSV is the API's")
		assert.Contains(t, portalCSV, "period_start,user_id,username,gpu_type,gpu_hours,charged,returned")
		assert.Equal(t, 3, strings.Count(portalCSV, "\n"), "a header and a row a type")

		b.get("/portal/admin/report?from=" + to + "&to=" + from)
		assert.Equal(t, http.StatusUnprocessableEntity, b.status)
		assert.Contains(t, b.page, `class="error" role="alert"`)
		b.get("/portal/admin/report?from=yesterday")
		assert.Equal(t, http.StatusUnprocessableEntity, b.status)
		assert.Contains(t, b.page, "from must be a date")
	})
}

// An endpoint that gaas disabled, after failing for a day, is enabled on
// its page.
func TestAdminEnablesWebhook(t *testing.T) {
	ctx := context.Background()
	dsn := filepath.Join(t.TempDir(), "gaas.db")
	s := newSite(t, siteOptions{dsn: dsn})
	wh, err := s.db.Webhooks.CreateWebhook(ctx, s.root.ID, gaas.CreateWebhookRequest{URL: "https://hooks.example/gaas", Events: []gaas.EventType{gaas.EventJobStatusChanged}})
	require.NoError(t, err)
	u := s.user("ada")
	s.grant(u.ID, 5)
	_, err = s.db.Jobs.Cancel(ctx, u.ID, gaas.CancelRequest{JobID: s.job(u.ID, "A100", 1).ID})
	require.NoError(t, err)
	_, err = s.db.Webhooks.DispatchEvents(ctx)
	require.NoError(t, err)
	// The endpoint fails now, and again a day later, seen by a store
	// whose clock is a day ahead: it is disabled.
	later, err := store.Open(ctx, dsn, store.Options{DefaultQuota: -1, Now: func() time.Time { return time.Now().Add(gaas.DisableAfter + time.Hour) }})
	require.NoError(t, err)
	defer later.Close()
	for _, db := range []*store.DB{s.db, later} {
		due, err := db.Webhooks.ClaimDeliveries(ctx, 10, time.Minute)
		require.NoError(t, err)
		require.Len(t, due, 1)
		_, err = db.Webhooks.RecordAttempt(ctx, gaas.AttemptResult{DeliveryID: due[0].ID, Attempt: due[0].Attempt, StatusCode: 500, Err: "HTTP 500"})
		require.NoError(t, err)
	}
	got, err := s.db.Webhooks.Webhook(ctx, s.root.ID, wh.ID)
	require.NoError(t, err)
	require.NotNil(t, got.DisabledAt, "the endpoint is disabled")

	b := s.admin()
	hook := fmt.Sprintf("/portal/admin/webhooks/%d", wh.ID)
	b.get(hook)
	assert.Contains(t, b.page, `id="webhook-state">disabled since`)
	assert.Contains(t, b.page, "HTTP 500")
	b.submit(hook+"/enable", nil)
	require.Equal(t, http.StatusOK, b.status, b.page)
	assert.Contains(t, b.page, fmt.Sprintf("Webhook %d is enabled; its pending deliveries resume.", wh.ID))
	assert.Contains(t, b.page, `id="webhook-state">enabled<`)
	got, err = s.db.Webhooks.Webhook(ctx, s.root.ID, wh.ID)
	require.NoError(t, err)
	assert.Nil(t, got.DisabledAt)
}

// A GPU type named like a spreadsheet formula reaches the portal's CSV as
// text, as it reaches the API's: a spreadsheet opening the download does
// not run it.
func TestAdminReportCSVFormulas(t *testing.T) {
	ctx := context.Background()
	s := newSite(t)
	s.gpuType("=HYPERLINK(1)", 1, 0)
	ada := s.user("ada")
	s.grant(ada.ID, 10)
	j := s.job(ada.ID, "=HYPERLINK(1)", 1)
	for _, st := range []gaas.JobStatus{gaas.StatusApproved, gaas.StatusRunning, gaas.StatusCompleted} {
		_, err := s.db.Jobs.Transition(ctx, s.root.ID, gaas.TransitionRequest{JobID: j.ID, To: st})
		require.NoError(t, err)
	}
	from, to := time.Now().UTC().AddDate(0, 0, -1).Format(time.DateOnly), time.Now().UTC().AddDate(0, 0, 1).Format(time.DateOnly)
	b := s.admin()
	b.get("/portal/admin/report.csv?from=" + from + "&to=" + to + "&group_by=gpu_type")
	require.Equal(t, http.StatusOK, b.status, b.page)
	assert.Contains(t, b.page, `'=HYPERLINK(1)`)
	assert.NotContains(t, b.page, `,=HYPERLINK`)
}
