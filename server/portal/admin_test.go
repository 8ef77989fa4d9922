package portal_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/gaas"
)

// admin is a browser signed in as the site's admin.
func (s *site) admin() *browser {
	b := s.browser()
	b.signIn("root", "root password")
	require.Equal(s.t, http.StatusOK, b.status, b.page)
	return b
}

// project makes a project; managersApprove lets its managers approve
// its jobs.
func (s *site) project(name string, managersApprove bool) gaas.Project {
	s.t.Helper()
	pr, err := s.db.Projects.CreateProject(context.Background(), s.root.ID, gaas.CreateProjectRequest{Name: name, ManagersApprove: managersApprove})
	require.NoError(s.t, err)
	return pr
}

// member puts user id in project pr with role.
func (s *site) member(pr gaas.Project, id int64, role gaas.ProjectRole) {
	s.t.Helper()
	_, err := s.db.Projects.SetMember(context.Background(), s.root.ID, gaas.SetMemberRequest{ProjectID: pr.ID, UserID: id, Role: role})
	require.NoError(s.t, err)
}

// fund gives project pr n credits.
func (s *site) fund(pr gaas.Project, n int64) gaas.Allocation {
	s.t.Helper()
	a, err := s.db.Allocations.CreateAllocation(context.Background(), s.root.ID, gaas.CreateAllocationRequest{ProjectID: pr.ID, Amount: credits(n)})
	require.NoError(s.t, err)
	return a
}

// projectJob submits a job for user id charged to project pr.
func (s *site) projectJob(id int64, pr gaas.Project, hours int64) gaas.Job {
	s.t.Helper()
	j, err := s.db.Jobs.Submit(context.Background(), id, gaas.SubmitRequest{Command: "train.sh", GPUType: "A100",
		EstimatedHours: gaas.Hours(hours) * gaas.Hour, GPUCount: 1, Project: gaas.ProjectRef(pr.Name)})
	require.NoError(s.t, err)
	return j
}

// jobOf reads job id as the admin sees it.
func (s *site) jobOf(id int64) gaas.Job {
	s.t.Helper()
	j, err := s.db.Jobs.Get(context.Background(), s.root.ID, gaas.GetJobRequest{JobID: id})
	require.NoError(s.t, err)
	return j
}

// csrfOf is the csrf field of the browser's current page.
func (b *browser) csrfOf() string {
	b.t.Helper()
	form, _ := b.form("/portal/sign-out")
	return form.Get("csrf")
}

// send posts fields to path with the csrf field of the current page, as
// a form of the page whose action the page has more than once.
func (b *browser) send(path string, fields url.Values) {
	b.t.Helper()
	fields.Set("csrf", b.csrfOf())
	b.post(path, fields)
}

// assertLabelled checks that every control of the browser's page has a
// label, and that the page has no script of its own.
func assertLabelled(t *testing.T, b *browser) {
	t.Helper()
	for _, c := range controlPattern.FindAllString(b.page, -1) {
		if strings.Contains(c, `type="hidden"`) {
			continue
		}
		id := idPattern.FindStringSubmatch(c)
		if assert.NotNil(t, id, "%s: a control without an id: %s", b.url, c) {
			assert.Contains(t, b.page, `<label for="`+id[1]+`"`, "%s: no label for %s", b.url, c)
		}
	}
	assert.NotRegexp(t, `<script>`, b.page)
}

// A fixture of every kind of thing the admin pages show.
type adminFixture struct {
	user    gaas.User
	project gaas.Project
	job     gaas.Job
	webhook gaas.Webhook
	// allocation is the project's.
	allocation gaas.Allocation
}

func newAdminFixture(t *testing.T, s *site) adminFixture {
	ctx := context.Background()
	s.gpuType("A100", 2, 4)
	u := s.user("ada")
	s.grant(u.ID, 100)
	pr := s.project("vision", true)
	s.member(pr, u.ID, gaas.ProjectManager)
	a := s.fund(pr, 50)
	j := s.projectJob(u.ID, pr, 1)
	_, err := s.db.Schedules.CreateSchedule(ctx, s.root.ID, gaas.CreateScheduleRequest{UserID: u.ID, Amount: credits(5), Period: gaas.PeriodMonthly})
	require.NoError(t, err)
	wh, err := s.db.Webhooks.CreateWebhook(ctx, s.root.ID, gaas.CreateWebhookRequest{URL: "https://hooks.example/gaas", Events: []gaas.EventType{gaas.EventJobStatusChanged}})
	require.NoError(t, err)
	return adminFixture{user: u, project: pr, job: j, webhook: wh, allocation: a}
}

// adminPages are the admin pages of f.
func (f adminFixture) adminPages() []string {
	return []string{"/portal/admin", "/portal/admin/queue", "/portal/admin/users", "/portal/admin/users?username=ada",
		fmt.Sprintf("/portal/admin/users/%d", f.user.ID), "/portal/admin/projects", "/portal/admin/gpu-types",
		"/portal/admin/webhooks", fmt.Sprintf("/portal/admin/webhooks/%d", f.webhook.ID), "/portal/admin/report", "/portal/admin/report.csv",
		"/portal/admin/report?from=2026-01-01&to=2027-01-01&period=month&group_by=user&group_by=project&group_by=gpu_type"}
}

func TestAdminPagesRenderLabelled(t *testing.T) {
	s := newSite(t)
	f := newAdminFixture(t, s)
	b := s.admin()
	for _, path := range append(f.adminPages(), fmt.Sprintf("/portal/projects/%d", f.project.ID), "/portal/projects") {
		b.get(path)
		require.Equal(t, http.StatusOK, b.status, "%s: %s", path, b.page)
		if !strings.HasSuffix(b.url.Path, ".csv") {
			assertLabelled(t, b)
			assert.Contains(t, b.page, `<meta name="viewport"`)
		}
	}
	b.get("/portal/admin")
	assert.Contains(t, b.page, "(1 waiting)")
	assert.Contains(t, b.page, `href="/portal/admin" aria-current="page"`)
}

// Every admin page and form answers 404 to anyone but an admin, and a
// form refused changes nothing.
func TestAdminPagesHiddenFromUsers(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *site) {
		f := newAdminFixture(t, s)
		b := s.browser()
		b.signIn("ada", "ada password") // a manager, but no admin
		require.Equal(t, http.StatusOK, b.status)
		assert.NotContains(t, b.page, `href="/portal/admin"`)
		for _, path := range f.adminPages() {
			b.get(path)
			assert.Equal(t, http.StatusNotFound, b.status, path)
			assert.Contains(t, b.page, "There is no such page", path)
		}
		b.get("/")
		csrf := b.csrfOf()
		id := strconv.FormatInt(f.user.ID, 10)
		for path, form := range map[string]url.Values{
			"/portal/admin/users":                                                         {"username": {"mallory"}, "password": {"a long password"}, "role": {"admin"}},
			"/portal/admin/users/" + id + "/disabled":                                     {"disabled": {"true"}},
			"/portal/admin/users/" + id + "/password":                                     {"password": {"another password"}},
			"/portal/admin/users/" + id + "/grant":                                        {"amount": {"1000"}},
			"/portal/admin/projects":                                                      {"name": {"mine"}},
			"/portal/admin/allocations":                                                   {"user_id": {id}, "amount": {"1000"}},
			"/portal/admin/gpu-types":                                                     {"name": {"H100"}, "rate": {"1"}},
			"/portal/admin/gpu-types/update":                                              {"name": {"A100"}, "rate": {"0.001"}, "enabled": {"1"}},
			"/portal/admin/webhooks":                                                      {"url": {"https://evil.example/"}, "events": {"job.status_changed"}},
			fmt.Sprintf("/portal/admin/webhooks/%d/delete", f.webhook.ID):                 {},
			fmt.Sprintf("/portal/admin/webhooks/%d/enable", f.webhook.ID):                 {},
			fmt.Sprintf("/portal/admin/webhooks/%d/deliveries/1/redeliver", f.webhook.ID): {},
			fmt.Sprintf("/portal/admin/projects/%d", f.project.ID):                        {"description": {"mine now"}, "auto_approve": {"1"}},
			fmt.Sprintf("/portal/admin/allocations/%d", f.allocation.ID):                  {"end": {"1"}},
		} {
			form.Set("csrf", csrf)
			b.post(path, form)
			assert.Equal(t, http.StatusNotFound, b.status, path)
		}
		ctx := context.Background()
		users, err := s.db.Users.Users(ctx, s.root.ID, gaas.UserFilter{})
		require.NoError(t, err)
		assert.Len(t, users.Items, 2, "no user was made")
		u, err := s.db.Users.User(ctx, s.root.ID, gaas.GetUserRequest{UserID: f.user.ID})
		require.NoError(t, err)
		assert.False(t, u.Disabled)
		assert.Equal(t, credits(100), s.balance(f.user.ID))
		types, err := s.db.Catalogue.GPUTypes(ctx, s.root.ID, gaas.GPUTypesRequest{Retired: true})
		require.NoError(t, err)
		require.Len(t, types, 1)
		assert.Equal(t, 2*gaas.RateOne, types[0].Rate)
		_, err = s.db.Webhooks.Webhook(ctx, s.root.ID, f.webhook.ID)
		assert.NoError(t, err, "the webhook is still there")
		pr, err := s.db.Projects.Project(ctx, s.root.ID, gaas.GetProjectRequest{Project: "vision"})
		require.NoError(t, err)
		assert.Empty(t, pr.Description)
		assert.False(t, pr.AutoApprove)
		allocs, err := s.db.Allocations.Allocations(ctx, s.root.ID, gaas.AllocationsRequest{ProjectID: f.project.ID})
		require.NoError(t, err)
		assert.Len(t, allocs.Items, 2, "the allocation has not ended")
		fresh := s.browser()
		fresh.signIn("ada", "another password")
		assert.Equal(t, http.StatusUnauthorized, fresh.status, "the password is unchanged")
	})
}

// rowButtons are the buttons of the approval queue's row of job id.
func rowButtons(page string, id int64) []string {
	return regexp.MustCompile(fmt.Sprintf(`<button type="submit" name="(approve|reject)" value="%d"[^>]*>(\w+)</button>`, id)).FindAllString(page, -1)
}

func TestApprovalQueue(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *site) {
		s.gpuType("A100", 1, 0)
		ada, bob := s.user("ada"), s.user("bob")
		s.grant(ada.ID, 20)
		s.grant(bob.ID, 20)
		j1, j2, j3, j4 := s.job(ada.ID, "A100", 1), s.job(bob.ID, "A100", 2), s.job(bob.ID, "A100", 3), s.job(ada.ID, "A100", 4)
		_, err := s.db.Jobs.Cancel(context.Background(), ada.ID, gaas.CancelRequest{JobID: j4.ID})
		require.NoError(t, err)

		b := s.admin()
		b.get("/portal/admin/queue")
		require.Equal(t, http.StatusOK, b.status)
		assert.Equal(t, []int64{j3.ID, j2.ID, j1.ID}, queueIDs(b.page), "PENDING jobs, newest first")
		assert.Len(t, rowButtons(b.page, j1.ID), 2)
		assert.Contains(t, rowButtons(b.page, j1.ID)[0], ">Approve<")
		assert.Contains(t, rowButtons(b.page, j1.ID)[1], ">Reject<")
		assert.Contains(t, b.page, `<label for="reason">`)
		assert.Contains(t, b.page, ">bob<", "the owner by name")
		assert.NotContains(t, b.page, " checked>")

		t.Run("select_all", func(t *testing.T) {
			b.get("/portal/admin/queue?select=all")
			assert.Equal(t, 3, strings.Count(b.page, " checked>"))
		})
		t.Run("without_csrf", func(t *testing.T) {
			b.post("/portal/jobs/decide", url.Values{"approve": {strconv.FormatInt(j1.ID, 10)}})
			assert.Equal(t, http.StatusForbidden, b.status)
			assert.Equal(t, gaas.StatusPending, s.jobOf(j1.ID).Status)
		})
		t.Run("approve_one", func(t *testing.T) {
			b.get("/portal/admin/queue")
			b.submit("/portal/jobs/decide", url.Values{"approve": {strconv.FormatInt(j1.ID, 10)}, "job": {strconv.FormatInt(j2.ID, 10)}})
			require.Equal(t, http.StatusOK, b.status, b.page)
			assert.Equal(t, "/portal/admin/queue", b.url.Path)
			assert.Contains(t, b.page, fmt.Sprintf("Job %d is approved.", j1.ID))
			assert.Equal(t, gaas.StatusApproved, s.jobOf(j1.ID).Status)
			assert.Equal(t, gaas.StatusPending, s.jobOf(j2.ID).Status, "a row's button moves its row only")
			assert.Equal(t, []int64{j3.ID, j2.ID}, queueIDs(b.page))
		})
		t.Run("reject_many_with_a_reason", func(t *testing.T) {
			before := s.balance(bob.ID)
			b.get("/portal/admin/queue")
			b.submit("/portal/jobs/decide", url.Values{"reject": {"selected"}, "reason": {"the cluster is down for maintenance"},
				"job": {strconv.FormatInt(j2.ID, 10), strconv.FormatInt(j3.ID, 10), strconv.FormatInt(j4.ID, 10)}})
			require.Equal(t, http.StatusOK, b.status, b.page)
			assert.Contains(t, b.page, fmt.Sprintf("Jobs %d, %d are rejected. Their credits were returned.", j2.ID, j3.ID))
			assert.Contains(t, b.page, fmt.Sprintf("Job %d was not rejected: it is CANCELLED now.", j4.ID))
			for _, id := range []int64{j2.ID, j3.ID} {
				j := s.jobOf(id)
				assert.Equal(t, gaas.StatusRejected, j.Status)
				assert.Equal(t, "the cluster is down for maintenance", j.EndReason)
			}
			assert.Equal(t, before+credits(5), s.balance(bob.ID))
			assert.Contains(t, b.page, "No jobs wait for approval.")
		})
		t.Run("none_ticked", func(t *testing.T) {
			b.get("/portal/admin/queue")
			b.post("/portal/jobs/decide", url.Values{"csrf": {b.csrfOf()}, "approve": {"selected"}})
			assert.Contains(t, b.page, "No job was ticked, so none was approved.")
		})
	})
}

// queueIDs are the ids of the jobs of a decide table, in order.
func queueIDs(page string) []int64 {
	var ids []int64
	for _, m := range regexp.MustCompile(`<td data-label="Job">(\d+)</td>`).FindAllStringSubmatch(page, -1) {
		id, _ := strconv.ParseInt(m[1], 10, 64)
		ids = append(ids, id)
	}
	return ids
}
