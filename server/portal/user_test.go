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
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/gaas"
)

// credits is a whole number of credits.
func credits(n int64) gaas.Credits { return gaas.Credits(n) * gaas.Credit }

// grant gives user id n credits on their default allocation.
func (s *site) grant(id int64, n int64) {
	s.t.Helper()
	_, err := s.db.Quota.Grant(context.Background(), s.root.ID, gaas.GrantRequest{UserID: id, Delta: credits(n), Reason: "test grant"})
	require.NoError(s.t, err)
}

// gpuType adds a type to the catalogue at rate (in credits a GPU-hour).
func (s *site) gpuType(name string, rate int64, maxGPUs int) {
	s.t.Helper()
	_, err := s.db.Catalogue.CreateGPUType(context.Background(), s.root.ID,
		gaas.CreateGPUTypeRequest{Name: name, Rate: gaas.Rate(rate) * gaas.RateOne, MaxGPUsPerJob: maxGPUs})
	require.NoError(s.t, err)
}

// job submits a job for user id through the library.
func (s *site) job(id int64, gpuType string, hours int64) gaas.Job {
	s.t.Helper()
	j, err := s.db.Jobs.Submit(context.Background(), id, gaas.SubmitRequest{Command: "train.sh", GPUType: gpuType,
		EstimatedHours: gaas.Hours(hours) * gaas.Hour, GPUCount: 1})
	require.NoError(s.t, err)
	return j
}

func (s *site) balance(id int64) gaas.Credits {
	s.t.Helper()
	b, err := s.db.Quota.Balance(context.Background(), s.root.ID, gaas.BalanceRequest{UserID: id})
	require.NoError(s.t, err)
	return b
}

func TestHomePage(t *testing.T) {
	ctx := context.Background()
	forEachDB(t, func(t *testing.T, s *site) {
		s.gpuType("A100", 2, 0)
		b, u := s.signedIn("ada")
		s.grant(u.ID, 10)
		expires := time.Now().Add(30 * 24 * time.Hour).UTC().Truncate(time.Second)
		_, err := s.db.Allocations.CreateAllocation(ctx, s.root.ID, gaas.CreateAllocationRequest{UserID: u.ID, Amount: credits(7),
			GPUTypes: []string{"A100"}, ExpiresAt: &expires, Reason: "autumn A100 grant"})
		require.NoError(t, err)
		pr, err := s.db.Projects.CreateProject(ctx, s.root.ID, gaas.CreateProjectRequest{Name: "vision"})
		require.NoError(t, err)
		limit := credits(3)
		_, err = s.db.Projects.SetMember(ctx, s.root.ID, gaas.SetMemberRequest{ProjectID: pr.ID, UserID: u.ID, Role: gaas.ProjectMember, Limit: &limit})
		require.NoError(t, err)
		other := s.user("bob")
		s.grant(other.ID, 99)

		b.get("/")
		require.Equal(t, http.StatusOK, b.status, b.page)
		assert.Contains(t, b.page, `<div class="big" id="balance">17 credits</div>`)
		assert.Contains(t, b.page, "autumn A100 grant")
		assert.Contains(t, b.page, expires.Format("2006-01-02 15:04 UTC"), "the allocation's expiry")
		assert.Regexp(t, `Default</td>\s*<td data-label="Pays for">every GPU type</td>\s*<td data-label="Remaining" class="num">10</td>`, b.page)
		assert.Less(t, strings.Index(b.page, "autumn A100 grant"), strings.Index(b.page, "Default</td>"), "soonest expiry first")
		assert.Contains(t, b.page, ">vision<")
		assert.Regexp(t, `data-label="Your limit" class="num">3</td>`, b.page)
		assert.NotContains(t, b.page, "99", "nothing of another user's")
		assert.Contains(t, b.page, "No job ended in the last 12 weeks.")
		assert.NotContains(t, b.page, "/portal/projects/", "a member is not linked to the manager's page")
	})
}

func TestSubmitJob(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *site) {
		s.gpuType("A100", 2, 4)
		s.gpuType("T4", 1, 0)
		b, u := s.signedIn("ada")
		s.grant(u.ID, 10)

		b.get("/portal/jobs/new")
		require.Equal(t, http.StatusOK, b.status)
		for _, id := range []string{"command", "gpu_type", "gpu_count", "estimated_hours", "project"} {
			assert.Contains(t, b.page, `<label for="`+id+`">`, id)
		}
		assert.Contains(t, b.page, `data-rate="2000"`, "the script reads each type's rate")
		assert.Contains(t, b.page, `<script src="/portal/static/submit.js" defer></script>`)

		fields := url.Values{"command": {"python train.py"}, "gpu_type": {"A100"}, "gpu_count": {"2"}, "estimated_hours": {"1.5"}}
		t.Run("preview", func(t *testing.T) {
			form := cloneValues(fields)
			form.Set("action", "preview")
			b.submit("/portal/jobs/new", form)
			require.Equal(t, http.StatusOK, b.status, b.page)
			assert.Contains(t, b.page, `This job costs <strong id="cost-credits">6</strong> credits: 2 credits a GPU-hour × 2 GPUs × 1.5 hours.`)
			assert.Contains(t, b.page, "Your allocations that pay for A100 hold 10 credits.")
			assert.Contains(t, b.page, `value="1.5"`, "the form keeps what was typed")
			assert.Equal(t, credits(10), s.balance(u.ID), "a preview charges nothing")
		})
		t.Run("refused", func(t *testing.T) {
			form := cloneValues(fields)
			form.Set("estimated_hours", "100")
			form.Set("action", "submit")
			b.submit("/portal/jobs/new", form)
			assert.Equal(t, http.StatusUnprocessableEntity, b.status)
			assert.Contains(t, b.page, "Not enough credits for GPU type A100: this job costs 400 credits, and 10 are available for that type.")
			assert.Equal(t, credits(10), s.balance(u.ID))
		})
		t.Run("bad_fields", func(t *testing.T) {
			for _, tc := range []struct{ action, field, value, says string }{
				{"submit", "estimated_hours", "soon", "Estimated hours must be a number of hours"},
				{"preview", "estimated_hours", "0", "Estimated hours must be greater than 0."},
				{"submit", "gpu_count", "9", "GPUs must be at most 4 for A100."},
				{"preview", "gpu_count", "9", "GPUs must be at most 4 for A100."},
				{"submit", "gpu_count", "two", "GPUs must be a whole number"},
				{"submit", "gpu_type", "Z80", `GPU type &#34;Z80&#34; is not in the GPU catalogue; it holds A100, T4.`},
				{"preview", "gpu_type", "Z80", "GPU type is not a GPU type of the catalogue."},
				{"submit", "command", "", "Command "},
				{"submit", "project", "nowhere", "Project is not a project you may charge."},
			} {
				form := cloneValues(fields)
				form.Set(tc.field, tc.value)
				form.Set("action", tc.action)
				b.submit("/portal/jobs/new", form)
				assert.Equal(t, http.StatusUnprocessableEntity, b.status, tc.field)
				assert.Contains(t, b.page, tc.says, tc.field)
				assert.Contains(t, b.page, `aria-invalid="true" aria-describedby="`+tc.field+`-error"`)
			}
			assert.Equal(t, credits(10), s.balance(u.ID))
		})
		t.Run("without_csrf", func(t *testing.T) {
			form := cloneValues(fields)
			form.Set("action", "submit")
			b.post("/portal/jobs/new", form)
			assert.Equal(t, http.StatusForbidden, b.status)
			assert.Equal(t, credits(10), s.balance(u.ID))
		})
		t.Run("submit", func(t *testing.T) {
			b.get("/portal/jobs/new")
			hidden, _ := b.form("/portal/jobs/new")
			form := cloneValues(fields)
			form.Set("action", "submit")
			b.submit("/portal/jobs/new", form)
			require.Equal(t, http.StatusOK, b.status, b.page)
			assert.Regexp(t, `^/portal/jobs/\d+$`, b.url.Path)
			assert.Contains(t, b.page, "is submitted: 6 credits are charged; it waits for approval.")
			assert.Contains(t, b.page, `<span class="status" id="job-status">PENDING</span>`)
			assert.Equal(t, credits(4), s.balance(u.ID), "the balance falls by the cost")

			// The same form posted again (a double click, a reload) is the same job.
			form.Set("csrf", hidden.Get("csrf"))
			form.Set("key", hidden.Get("key"))
			b.post("/portal/jobs/new", form)
			assert.Equal(t, credits(4), s.balance(u.ID))
			b.get("/")
			assert.Contains(t, b.page, `id="balance">4 credits<`)
		})
	})
}

func cloneValues(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

func TestSubmitOpenModeAndProject(t *testing.T) {
	ctx := context.Background()
	s := newSite(t)
	b, u := s.signedIn("ada")
	pr, err := s.db.Projects.CreateProject(ctx, s.root.ID, gaas.CreateProjectRequest{Name: "vision"})
	require.NoError(t, err)
	limit := credits(2)
	_, err = s.db.Projects.SetMember(ctx, s.root.ID, gaas.SetMemberRequest{ProjectID: pr.ID, UserID: u.ID, Role: gaas.ProjectMember, Limit: &limit})
	require.NoError(t, err)
	_, err = s.db.Allocations.CreateAllocation(ctx, s.root.ID, gaas.CreateAllocationRequest{ProjectID: pr.ID, Amount: credits(50)})
	require.NoError(t, err)

	b.get("/portal/jobs/new")
	assert.Contains(t, b.page, `<input id="gpu_type" name="gpu_type" type="text"`, "no catalogue: any type")
	form := url.Values{"command": {"run"}, "gpu_type": {"anything"}, "gpu_count": {"1"}, "estimated_hours": {"3"}, "project": {"vision"}, "action": {"preview"}}
	b.submit("/portal/jobs/new", form)
	assert.Contains(t, b.page, "This job costs <strong id=\"cost-credits\">3</strong> credits")
	assert.Contains(t, b.page, "Project vision holds 50 credits; your limit there leaves you 2.")
	assert.Contains(t, b.page, "That is not enough for this job.")
	form.Set("action", "submit")
	b.submit("/portal/jobs/new", form)
	assert.Equal(t, http.StatusUnprocessableEntity, b.status)
	assert.Contains(t, b.page, "Not enough credits under the member limit of project vision: this job costs 3 credits, and 2 are left there.")
	form.Set("estimated_hours", "2")
	b.submit("/portal/jobs/new", form)
	require.Equal(t, http.StatusOK, b.status, b.page)
	assert.Contains(t, b.page, "Charged to</dt><dd>project vision")
}

// jobIDs are the ids of the jobs listed on page, in order.
func jobIDs(page string) []int64 {
	var ids []int64
	for _, m := range regexp.MustCompile(`<td data-label="Job"><a href="[^"]*/portal/jobs/(\d+)">`).FindAllStringSubmatch(page, -1) {
		id, _ := strconv.ParseInt(m[1], 10, 64)
		ids = append(ids, id)
	}
	return ids
}

func TestJobsListAndCancel(t *testing.T) {
	ctx := context.Background()
	forEachDB(t, func(t *testing.T, s *site) {
		s.gpuType("A100", 1, 0)
		s.gpuType("T4", 1, 0)
		b, u := s.signedIn("ada")
		s.grant(u.ID, 100)
		var jobs []gaas.Job
		for i := range 5 {
			jobs = append(jobs, s.job(u.ID, []string{"A100", "T4"}[i%2], int64(i+1)))
		}
		_, err := s.db.Jobs.Transition(ctx, s.root.ID, gaas.TransitionRequest{JobID: jobs[0].ID, To: gaas.StatusRejected})
		require.NoError(t, err)
		other := s.user("bob")
		s.grant(other.ID, 10)
		theirs := s.job(other.ID, "A100", 1)

		b.get("/portal/jobs")
		require.Equal(t, http.StatusOK, b.status)
		assert.Equal(t, []int64{jobs[4].ID, jobs[3].ID, jobs[2].ID, jobs[1].ID, jobs[0].ID}, jobIDs(b.page), "newest first, only one's own")
		for _, id := range []string{"status", "gpu_type"} {
			assert.Contains(t, b.page, `<label for="`+id+`">`)
		}

		b.get("/portal/jobs?status=REJECTED")
		assert.Equal(t, []int64{jobs[0].ID}, jobIDs(b.page))
		b.get("/portal/jobs?gpu_type=t4")
		assert.Equal(t, []int64{jobs[3].ID, jobs[1].ID}, jobIDs(b.page))
		b.get("/portal/jobs?status=LOST")
		assert.Equal(t, http.StatusUnprocessableEntity, b.status)
		assert.Contains(t, b.page, "status must be one of PENDING")

		t.Run("pages", func(t *testing.T) {
			b.get("/portal/jobs?gpu_type=A100&limit=2")
			assert.Equal(t, []int64{jobs[4].ID, jobs[2].ID}, jobIDs(b.page))
			next := regexp.MustCompile(`<a href="([^"]+)" rel="next">`).FindStringSubmatch(b.page)
			require.NotNil(t, next, b.page)
			u, err := url.Parse(strings.ReplaceAll(next[1], "&amp;", "&"))
			require.NoError(t, err)
			assert.Equal(t, "A100", u.Query().Get("gpu_type"), "the filter is kept")
			b.get(u.RequestURI())
			assert.Equal(t, []int64{jobs[0].ID}, jobIDs(b.page))
			assert.NotContains(t, b.page, `rel="next"`)
			assert.Contains(t, b.page, "First page")
		})

		t.Run("cancel", func(t *testing.T) {
			before := s.balance(u.ID)
			b.get("/portal/jobs?status=PENDING")
			assert.NotContains(t, b.page, fmt.Sprintf(`name="job" value="%d"`, jobs[0].ID), "a rejected job has no cancel button")
			require.Contains(t, b.page, fmt.Sprintf(`<button type="submit" name="job" value="%d"`, jobs[2].ID))
			b.submit("/portal/jobs/cancel", url.Values{"job": {strconv.FormatInt(jobs[2].ID, 10)}})
			require.Equal(t, http.StatusOK, b.status, b.page)
			assert.Equal(t, "/portal/jobs", b.url.Path, "back to the list")
			assert.Equal(t, "status=PENDING", b.url.RawQuery, "with its filter")
			assert.Contains(t, b.page, fmt.Sprintf("Job %d is cancelled; its 3 credits were returned.", jobs[2].ID))
			assert.Equal(t, before+credits(3), s.balance(u.ID))
			j, err := s.db.Jobs.Get(ctx, u.ID, gaas.GetJobRequest{JobID: jobs[2].ID})
			require.NoError(t, err)
			assert.Equal(t, gaas.StatusCancelled, j.Status)

			// A second cancel of it (a stale page) says why not.
			csrf, _ := b.form("/portal/sign-out")
			b.post("/portal/jobs/cancel", url.Values{"csrf": csrf["csrf"], "job": {strconv.FormatInt(jobs[2].ID, 10)}, "back": {"https://evil.example/"}})
			assert.Equal(t, "/portal/jobs", b.url.Path, "no redirect off the site")
			assert.Contains(t, b.page, "was not cancelled: it is CANCELLED now.")
		})

		t.Run("others_jobs_are_not_found", func(t *testing.T) {
			b.get(fmt.Sprintf("/portal/jobs/%d", theirs.ID))
			assert.Equal(t, http.StatusNotFound, b.status)
			b.get("/portal/jobs/999999")
			assert.Equal(t, http.StatusNotFound, b.status)
			csrf, _ := b.form("/portal/sign-out")
			csrf.Set("job", strconv.FormatInt(theirs.ID, 10))
			b.post("/portal/jobs/cancel", csrf)
			assert.Equal(t, http.StatusNotFound, b.status)
			j, err := s.db.Jobs.Get(ctx, other.ID, gaas.GetJobRequest{JobID: theirs.ID})
			require.NoError(t, err)
			assert.Equal(t, gaas.StatusPending, j.Status, "unchanged")
			b.get(fmt.Sprintf("/portal/jobs/%d", jobs[1].ID))
			assert.Equal(t, http.StatusOK, b.status)
		})
	})
}

func TestLedger(t *testing.T) {
	s := newSite(t)
	b, u := s.signedIn("ada")
	for range gaas.DefaultLimit + 3 {
		s.grant(u.ID, 1)
	}
	j := s.job(u.ID, "A100", 2)
	b.get("/portal/ledger")
	require.Equal(t, http.StatusOK, b.status)
	assert.Equal(t, gaas.DefaultLimit, strings.Count(b.page, `<td data-label="What">`))
	assert.Contains(t, b.page, `<td data-label="Change" class="num">+1</td>`)
	next := regexp.MustCompile(`<a href="([^"]+)" rel="next">`).FindStringSubmatch(b.page)
	require.NotNil(t, next)
	b.get(strings.TrimPrefix(strings.ReplaceAll(next[1], "&amp;", "&"), s.prefix))
	assert.Contains(t, b.page, `<td data-label="What">charge</td>`)
	assert.Contains(t, b.page, `<td data-label="Change" class="num">-2</td>`)
	assert.Contains(t, b.page, fmt.Sprintf(`/portal/jobs/%d">%d</a>`, j.ID, j.ID))
	assert.NotContains(t, b.page, `rel="next"`)
}

var (
	controlPattern = regexp.MustCompile(`<(input|select|textarea)\b[^>]*>`)
	idPattern      = regexp.MustCompile(`\bid="([^"]+)"`)
	scriptPattern  = regexp.MustCompile(`<script\b[^>]*>`)
)

// Every control of every page has a label, and no page has a script of
// its own: the CSP would refuse it.
func TestPagesLabelledAndScriptFree(t *testing.T) {
	s := newSite(t)
	s.gpuType("A100", 1, 0)
	b, u := s.signedIn("ada")
	s.grant(u.ID, 10)
	s.job(u.ID, "A100", 1)
	for _, path := range []string{"/", "/portal/jobs", "/portal/jobs/new", "/portal/ledger", "/portal/jobs/1"} {
		b.get(path)
		require.Equal(t, http.StatusOK, b.status, path)
		for _, c := range controlPattern.FindAllString(b.page, -1) {
			if strings.Contains(c, `type="hidden"`) {
				continue
			}
			id := idPattern.FindStringSubmatch(c)
			if assert.NotNil(t, id, "%s: a control without an id: %s", path, c) {
				assert.Contains(t, b.page, `<label for="`+id[1]+`">`, "%s: no label for %s", path, c)
			}
		}
		for _, sc := range scriptPattern.FindAllString(b.page, -1) {
			assert.Contains(t, sc, `src="/portal/static/`, "%s: an inline script", path)
		}
		assert.Contains(t, b.page, `<meta name="viewport" content="width=device-width, initial-scale=1">`)
	}
	b.get("/portal/static/submit.js")
	assert.Equal(t, http.StatusOK, b.status)
	assert.Contains(t, b.page, "BigInt")
}
