package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/server/internal/browsertest"
)

// TestPortalInBrowser walks the portal of a real gaasd in headless Chromium
// as its people would: a researcher signs in, submits a job through the
// form and sees their balance fall; an admin signs in, approves the job
// from the queue and finds its charge in the usage report. On the way it
// checks that a form posted without its CSRF token is refused and changes
// nothing, and that another user's job is not reachable. A screenshot of
// every page it visits is kept in the test's artifact directory (go test
// -artifacts keeps them; .ci/run does).
func TestPortalInBrowser(t *testing.T) {
	browser := browsertest.Chromium(t)
	g := start(t, filepath.Join(t.TempDir(), "gaas.db"),
		map[string]string{"GAAS_ADMIN_USERNAME": "root", "GAAS_ADMIN_PASSWORD": "root-password-never-logged"})
	admin := login(t, g, "root")
	status, _ := g.json(t, "POST", "/gpu-types", admin, `{"name": "A100", "description": "80 GB", "rate": 2}`)
	require.Equal(t, http.StatusCreated, status)
	status, _ = g.json(t, "POST", "/gpu-types", admin, `{"name": "L4", "description": "24 GB", "rate": 0.5}`)
	require.Equal(t, http.StatusCreated, status)
	ada := login(t, g, "ada")
	// ada manages a project with credits of its own.
	status, project := g.json(t, "POST", "/projects", admin, `{"name": "vision", "description": "Vision group", "managers_approve": true}`)
	require.Equal(t, http.StatusCreated, status, "%v", project)
	projectPath := fmt.Sprintf("/projects/%v", project["id"])
	status, me := g.json(t, "GET", "/me", ada, "")
	require.Equal(t, http.StatusOK, status)
	status, body := g.json(t, "POST", projectPath+"/members", admin, fmt.Sprintf(`{"user_id": %v, "role": "manager"}`, me["id"]))
	require.Equal(t, http.StatusCreated, status, "%v", body)
	status, body = g.json(t, "POST", projectPath+"/allocations", admin, `{"amount": 50, "reason": "autumn term"}`)
	require.Equal(t, http.StatusCreated, status, "%v", body)
	// bob's job, which ada must not reach.
	status, bobs := g.json(t, "POST", "/jobs", login(t, g, "bob"),
		`{"command": "bob's secret", "gpu_type": "L4", "estimated_hours": 1}`)
	require.Equal(t, http.StatusCreated, status)

	shots := t.ArtifactDir()
	bctx := browsertest.Start(t, browser, 1280, 900)
	require.NoError(t, chromedp.Do(bctx, chromedp.Navigate(g.url+"/")), "the browser did not start")
	ctx, cancel := context.WithTimeout(bctx, 3*time.Minute)
	defer cancel()
	css := func(q string) chromedp.CSS { return chromedp.CSS(q) }
	text := func(q string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(css(q)))
		require.NoError(t, err, "reading %s", q)
		return strings.TrimSpace(s)
	}
	shot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(shots, name+".png"), png, 0o644))
	}
	visit := func(path, ready, name string) {
		t.Helper()
		require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(g.url+path), chromedp.WaitVisible(css(ready))), "opening %s", path)
		shot(name)
	}
	signIn := func(user, password string) {
		t.Helper()
		require.NoError(t, chromedp.Do(ctx,
			chromedp.Navigate(g.url+"/"),
			chromedp.WaitVisible(css("#username")),
			chromedp.SendKeys(css("#username"), user),
			chromedp.SendKeys(css("#password"), password),
			chromedp.Click(css("main button[type=submit]")),
			chromedp.WaitVisible(css("#balance")),
		), "signing in as %s", user)
	}
	signOut := func() {
		t.Helper()
		require.NoError(t, chromedp.Do(ctx,
			chromedp.Click(css("form.signout button")),
			chromedp.WaitVisible(css("#username")),
		), "signing out")
	}

	// The sign-in page, then ada's own page.
	require.NoError(t, chromedp.Do(ctx, chromedp.WaitVisible(css("#username"))))
	shot("sign-in")
	signIn("ada", "ada-password-secret")
	shot("home")
	assert.Equal(t, "10 credits", text("#balance"), "the default quota")

	// A job through the form: the cost is shown before it is sent.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(g.url+"/portal/jobs/new"),
		chromedp.WaitVisible(css("#estimated_hours")),
		chromedp.SendKeys(css("#command"), "python train.py --epochs 10"),
		chromedp.SetValue(css("#gpu_count"), ""),
		chromedp.SendKeys(css("#gpu_count"), "2"),
		chromedp.SendKeys(css("#estimated_hours"), "1.5"),
	), "filling in the submit form")
	assert.Contains(t, text("#cost"), "This job costs 6 credits", "2 GPUs × 1.5 hours of A100 at 2")
	shot("submit")
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Click(css(`button[value=submit]`)),
		chromedp.WaitVisible(css("#job-status")),
	), "submitting")
	assert.Equal(t, "PENDING", text("#job-status"))
	shot("job")
	jobURL, err := chromedp.Run(ctx, chromedp.Location())
	require.NoError(t, err)
	jobID := jobURL[strings.LastIndex(jobURL, "/")+1:]

	visit("/", "#balance", "home-after-submit")
	assert.Equal(t, "4 credits", text("#balance"), "the balance fell by the job's cost")
	visit("/portal/jobs", "main table", "jobs")
	visit("/portal"+projectPath, "main", "project")
	assert.Contains(t, text("main"), "Vision group")
	visit("/portal/ledger", "main table", "ledger")

	// A form posted without its CSRF token, from the page itself (so the
	// session cookie goes with it and the origin is the server's own):
	// refused, and nothing submitted.
	refused, err := chromedp.Run(ctx, chromedp.Evaluate[int](`fetch("/portal/jobs/new", {method: "POST",
		headers: {"Content-Type": "application/x-www-form-urlencoded"},
		body: "command=sneaky&gpu_type=L4&gpu_count=1&estimated_hours=1&action=submit"}).then(r => r.status)`,
		chromedp.EvalAwaitPromise))
	require.NoError(t, err)
	assert.Equal(t, http.StatusForbidden, refused)
	visit("/", "#balance", "home-after-refused-form")
	assert.Equal(t, "4 credits", text("#balance"), "the refused form charged nothing")

	// bob's job is not ada's to see, nor the admin pages.
	for _, path := range []string{fmt.Sprintf("/portal/jobs/%v", bobs["id"]), "/portal/admin/queue", "/portal/admin/report"} {
		status, err := chromedp.Run(ctx, chromedp.Evaluate[int](`fetch("`+path+`").then(r => r.status)`, chromedp.EvalAwaitPromise))
		require.NoError(t, err)
		assert.Equal(t, http.StatusNotFound, status, path)
	}
	signOut()

	// The admin approves it from the queue and finds it in the report.
	signIn("root", "root-password-never-logged")
	visit("/portal/admin", "main", "admin")
	visit("/portal/admin/queue", `button[name=approve][value="`+jobID+`"]`, "admin-queue")
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Click(css(`button[name=approve][value="`+jobID+`"]`)),
		chromedp.WaitVisible(css(".flash")),
	), "approving")
	assert.Equal(t, "Job "+jobID+" is approved.", text(".flash"))
	status, job := g.json(t, "GET", "/jobs/"+jobID, admin, "")
	require.Equal(t, http.StatusOK, status)
	assert.Equal(t, "APPROVED", job["status"])

	// It runs for an hour of its 1.5, on its 2 GPUs: 4 of its 6 credits
	// are used, 2 come back.
	for _, body := range []string{`{"status": "RUNNING"}`, `{"status": "COMPLETED", "actual_hours": 1}`} {
		status, job = g.json(t, "PATCH", "/jobs/"+jobID, admin, body)
		require.Equal(t, http.StatusOK, status, "%v", job)
	}

	visit("/portal/admin/report?group_by=user&group_by=gpu_type", "#report-table", "admin-report")
	rows, err := chromedp.Run(ctx, chromedp.Evaluate[[][]string](`Array.from(document.querySelectorAll("#report-table tbody tr"),
		tr => Array.from(tr.cells, td => td.textContent.trim()))`))
	require.NoError(t, err)
	labels, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("#report-table thead th"), th => th.textContent.trim())`))
	require.NoError(t, err)
	cells := map[string]map[string]string{}
	for _, r := range rows {
		require.Len(t, r, len(labels))
		row := map[string]string{}
		for i, l := range labels {
			row[l] = r[i]
		}
		cells[row["username"]+" "+row["gpu type"]] = row
	}
	require.Contains(t, cells, "ada A100", "ada's job is in the report: %v", rows)
	assert.Equal(t, "2", cells["ada A100"]["gpu hours"])
	assert.Equal(t, "6", cells["ada A100"]["charged"])
	assert.Equal(t, "2", cells["ada A100"]["returned"])
	assert.Equal(t, "1", cells["ada A100"]["completed"])
	assert.Equal(t, "0.5", cells["bob L4"]["charged"])
	assert.Equal(t, "0", cells["bob L4"]["gpu hours"], "bob's job has not ended")
	chart, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`!!document.querySelector("main svg[role=img]")`))
	require.NoError(t, err)
	assert.True(t, chart, "the report has its chart")
	visit("/portal/admin/users", "main table", "admin-users")
	visit(fmt.Sprintf("/portal/admin/users/%v", me["id"]), "main", "admin-user")
	visit("/portal/admin/projects", "main", "admin-projects")
	visit("/portal/admin/gpu-types", "main table", "admin-gpu-types")
	visit("/portal/admin/webhooks", "main", "admin-webhooks")
	signOut()
	shot("signed-out")

	// ada finds what came back, and her usage in the chart.
	signIn("ada", "ada-password-secret")
	assert.Equal(t, "6 credits", text("#balance"))
	require.NoError(t, chromedp.Do(ctx, chromedp.WaitVisible(css("main svg[role=img]"))), "ada's usage chart")
	shot("home-with-usage")
}
