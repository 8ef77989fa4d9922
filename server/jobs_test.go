package server_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/gaas"
	"github.com/gaas-io/gaas/server"
	"github.com/gaas-io/gaas/server/executor"
)

func TestSubmitJob(t *testing.T) {
	h := newHarness(t)
	id, tok := h.user("alice")

	r := h.post("/jobs", tok, jobBody)
	require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
	job := r.json(t)
	assert.Equal(t, "/jobs/1", r.header.Get("Location"))
	assert.EqualValues(t, 1, job["id"])
	assert.EqualValues(t, id, job["user_id"])
	assert.Equal(t, "python train.py", job["command"])
	assert.Equal(t, "NVIDIA A100", job["gpu_type"])
	assert.Equal(t, 2.5, job["estimated_hours"])
	assert.Nil(t, job["actual_hours"])
	assert.Contains(t, job, "actual_hours")
	assert.Equal(t, "PENDING", job["status"])
	for _, k := range []string{"created_at", "updated_at"} {
		ts, err := time.Parse(time.RFC3339, job[k].(string))
		require.NoError(t, err)
		assert.Equal(t, time.UTC, ts.Location())
		assert.True(t, strings.HasSuffix(job[k].(string), "Z"))
	}
	assert.Equal(t, 7.5, h.balance(id))

	t.Run("not_enough_quota", func(t *testing.T) {
		p := h.post("/jobs", tok, `{"command": "x", "gpu_type": "A100", "estimated_hours": 8}`).problem(t, http.StatusBadRequest)
		assert.Equal(t, "Not enough credits for GPU type A100: the job costs 8, and 7.5 are available for that type.", p["detail"])
		assert.Equal(t, 7.5, h.balance(id))
		assert.Len(t, h.get("/jobs", tok).json(t)["items"], 1)
	})

	t.Run("invalid", func(t *testing.T) {
		for name, tc := range map[string]struct {
			body   string
			fields []string
		}{
			"nan":            {`{"command": "x", "gpu_type": "A", "estimated_hours": NaN}`, []string{"body"}},
			"infinity":       {`{"command": "x", "gpu_type": "A", "estimated_hours": Infinity}`, []string{"body"}},
			"negative":       {`{"command": "x", "gpu_type": "A", "estimated_hours": -1}`, []string{"estimated_hours"}},
			"zero":           {`{"command": "x", "gpu_type": "A", "estimated_hours": 0}`, []string{"estimated_hours"}},
			"too_precise":    {`{"command": "x", "gpu_type": "A", "estimated_hours": 0.0001}`, []string{"estimated_hours"}},
			"huge":           {`{"command": "x", "gpu_type": "A", "estimated_hours": 1e300}`, []string{"estimated_hours"}},
			"string_hours":   {`{"command": "x", "gpu_type": "A", "estimated_hours": "2"}`, []string{"estimated_hours"}},
			"missing":        {`{"gpu_type": "A"}`, []string{"command", "estimated_hours"}},
			"empty_command":  {`{"command": "", "gpu_type": "A", "estimated_hours": 1}`, []string{"command"}},
			"long_gpu_type":  {`{"command": "x", "gpu_type": "` + strings.Repeat("g", 129) + `", "estimated_hours": 1}`, []string{"gpu_type"}},
			"long_command":   {`{"command": "` + strings.Repeat("c", 8193) + `", "gpu_type": "A", "estimated_hours": 1}`, []string{"command"}},
			"unknown_field":  {`{"command": "x", "gpu_type": "A", "estimated_hours": 1, "user_id": 1}`, []string{"user_id"}},
			"duplicate":      {`{"command": "x", "gpu_type": "A", "estimated_hours": 1, "estimated_hours": 0.5}`, []string{"estimated_hours"}},
			"command_number": {`{"command": 1, "gpu_type": "A", "estimated_hours": 1}`, []string{"command"}},
			// encoding/json alone would fill command from COMMAND, the
			// second replacing the first.
			"duplicate_in_other_case": {`{"command": "x", "gpu_type": "A", "estimated_hours": 1, "ESTIMATED_HOURS": 5}`, []string{"ESTIMATED_HOURS"}},
			"name_in_other_case":      {`{"Command": "x", "gpu_type": "A", "estimated_hours": 1}`, []string{"Command"}},
		} {
			t.Run(name, func(t *testing.T) {
				r := h.post("/jobs", tok, tc.body)
				assert.Equal(t, tc.fields, r.errorFields(t), "%s", r.body)
			})
		}
		assert.Equal(t, 7.5, h.balance(id), "no refused request charged anything")
	})

	t.Run("unauthenticated", func(t *testing.T) {
		h.post("/jobs", "", jobBody).problem(t, http.StatusUnauthorized)
	})
}

// The original lost most of its deductions to a race. Sixty-four
// concurrent requests for one hour on a ten-hour quota: exactly ten succeed.
func TestSubmitJobRace(t *testing.T) {
	// One user's requests in flight are bounded; this test is about
	// what the store does when they are not.
	h := newHarness(t, override{cfg: server.Config{RequestsPerUser: -1}})
	id, tok := h.user("alice")
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		statuses = map[int]int{}
	)
	for i := range 64 {
		wg.Go(func() {
			r, err := h.send(req{method: http.MethodPost, path: "/jobs", token: tok,
				body: fmt.Sprintf(`{"command": "job %d", "gpu_type": "A100", "estimated_hours": 1}`, i)})
			if !assert.NoError(t, err) {
				return
			}
			mu.Lock()
			statuses[r.status]++
			mu.Unlock()
		})
	}
	wg.Wait()
	assert.Equal(t, map[int]int{http.StatusCreated: 10, http.StatusBadRequest: 54}, statuses)
	assert.Equal(t, 0.0, h.balance(id))
}

func TestSubmitJobIdempotent(t *testing.T) {
	h := newHarness(t)
	id, tok := h.user("alice")
	submit := func(key, body string) response {
		return h.do(req{method: http.MethodPost, path: "/jobs", token: tok, body: body, header: map[string]string{"Idempotency-Key": key}})
	}
	first := submit("k-1", jobBody)
	require.Equal(t, http.StatusCreated, first.status)
	again := submit("k-1", jobBody)
	require.Equal(t, http.StatusCreated, again.status, "a retry gets the same status code")
	assert.JSONEq(t, string(first.body), string(again.body))
	assert.Equal(t, 7.5, h.balance(id))

	p := submit("k-1", `{"command": "python other.py", "gpu_type": "NVIDIA A100", "estimated_hours": 2.5}`).problem(t, http.StatusConflict)
	assert.Contains(t, p["detail"], "Idempotency-Key")

	assert.Equal(t, []string{"Idempotency-Key"}, submit(strings.Repeat("k", 256), jobBody).errorFields(t))
	assert.Equal(t, []string{"Idempotency-Key"}, submit("tab\there", jobBody).errorFields(t))

	// Racing retries over HTTP make one job.
	var wg sync.WaitGroup
	bodies := make([]string, 16)
	for i := range bodies {
		wg.Go(func() {
			r := submit("race", jobBody)
			assert.Equal(t, http.StatusCreated, r.status)
			bodies[i] = string(r.body)
		})
	}
	wg.Wait()
	for _, b := range bodies {
		assert.JSONEq(t, bodies[0], b)
	}
	assert.Equal(t, 5.0, h.balance(id))
}

func TestTransitionJob(t *testing.T) {
	h := newHarness(t)
	id, tok := h.user("alice")
	_, admin := h.admin("root")
	patch := func(job any, token, body string) response {
		return h.do(req{method: http.MethodPatch, path: fmt.Sprintf("/jobs/%v", job), token: token, body: body})
	}
	newJob := func() float64 {
		r := h.post("/jobs", tok, jobBody)
		require.Equal(t, http.StatusCreated, r.status)
		return r.json(t)["id"].(float64)
	}

	j := newJob()
	p := patch(j, tok, `{"status": "APPROVED"}`).problem(t, http.StatusForbidden)
	assert.Equal(t, "Only admins may change the status of a job.", p["detail"])
	patch(999, admin, `{"status": "APPROVED"}`).problem(t, http.StatusNotFound)
	assert.Equal(t, []string{"id"}, patch("abc", admin, `{"status": "APPROVED"}`).errorFields(t))
	assert.Equal(t, []string{"status"}, patch(j, admin, `{"status": "DONE"}`).errorFields(t))
	assert.Equal(t, []string{"status"}, patch(j, admin, `{}`).errorFields(t))

	for _, step := range []string{"APPROVED", "APPROVED", "RUNNING"} {
		r := patch(j, admin, `{"status": "`+step+`"}`)
		require.Equal(t, http.StatusOK, r.status, "%s", r.body)
		assert.Equal(t, step, r.json(t)["status"])
	}
	p = patch(j, admin, `{"status": "PENDING"}`).problem(t, http.StatusConflict)
	assert.Equal(t, "RUNNING cannot move to PENDING (allowed: COMPLETED, FAILED, CANCELLED).", p["detail"])
	p = patch(j, admin, `{"status": "CANCELLED"}`).problem(t, http.StatusConflict)
	assert.Equal(t, "RUNNING cannot move to CANCELLED: no executor runs it, so an admin cancels it with actual_hours, the hours it ran.", p["detail"])
	assert.Equal(t, []string{"actual_hours"}, patch(j, admin, `{"status": "COMPLETED", "actual_hours": 3}`).errorFields(t))
	assert.Equal(t, []string{"actual_hours"}, patch(j, admin, `{"status": "COMPLETED", "actual_hours": -1}`).errorFields(t))

	r := patch(j, admin, `{"status": "COMPLETED", "actual_hours": 1.25}`)
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	assert.Equal(t, 1.25, r.json(t)["actual_hours"])
	assert.Equal(t, 10.0-1.25, h.balance(id))
	patch(j, admin, `{"status": "FAILED"}`).problem(t, http.StatusConflict)

	j = newJob()
	assert.Equal(t, []string{"reason"}, patch(j, admin, `{"status": "APPROVED", "reason": "fine"}`).errorFields(t), "a reason is a rejection's")
	r = patch(j, admin, `{"status": "REJECTED", "reason": "the queue is closed this week"}`)
	require.Equal(t, http.StatusOK, r.status)
	assert.Equal(t, 10.0-1.25, h.balance(id), "a rejected job is refunded whole")
	assert.Equal(t, "the queue is closed this week", r.json(t)["end_reason"])
	r = h.get(fmt.Sprintf("/jobs/%v", j), tok)
	assert.Equal(t, "the queue is closed this week", r.json(t)["end_reason"], "its owner reads why")
}

// Sixteen concurrent rejections of one job refund it once.
func TestTransitionJobRace(t *testing.T) {
	h := newHarness(t)
	id, tok := h.user("alice")
	_, admin := h.admin("root")
	j := h.post("/jobs", tok, jobBody).json(t)["id"].(float64)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			r, err := h.send(req{method: http.MethodPatch, path: fmt.Sprintf("/jobs/%v", j), token: admin, body: `{"status": "REJECTED"}`})
			if assert.NoError(t, err) {
				assert.Equal(t, http.StatusOK, r.status, "repeating the status a job has is a no-op")
			}
		})
	}
	wg.Wait()
	assert.Equal(t, 10.0, h.balance(id))
}

func TestGetListCancelJobs(t *testing.T) {
	h := newHarness(t)
	_, alice := h.user("alice")
	_, bob := h.user("bob")
	_, admin := h.admin("root")
	var aliceJobs []float64
	for range 3 {
		aliceJobs = append(aliceJobs, h.post("/jobs", alice, jobBody).json(t)["id"].(float64))
	}
	bobJob := h.post("/jobs", bob, jobBody).json(t)["id"].(float64)

	require.Equal(t, http.StatusOK, h.get(fmt.Sprintf("/jobs/%v", bobJob), bob).status)
	require.Equal(t, http.StatusOK, h.get(fmt.Sprintf("/jobs/%v", bobJob), admin).status)
	p := h.get(fmt.Sprintf("/jobs/%v", bobJob), alice).problem(t, http.StatusNotFound)
	assert.Equal(t, fmt.Sprintf("Job %v does not exist.", bobJob), p["detail"], "existence is not leaked")
	assert.Equal(t, "Job 424242 does not exist.", h.get("/jobs/424242", alice).problem(t, http.StatusNotFound)["detail"])

	page := h.get("/jobs?limit=2", alice).json(t)
	items := page["items"].([]any)
	require.Len(t, items, 2)
	assert.Equal(t, aliceJobs[2], items[0].(map[string]any)["id"])
	cursor := page["next_cursor"].(string)
	page = h.get("/jobs?limit=2&cursor="+cursor, alice).json(t)
	require.Len(t, page["items"], 1)
	assert.Nil(t, page["next_cursor"])

	assert.Len(t, h.get("/jobs", admin).json(t)["items"], 4)
	assert.Len(t, h.get("/jobs?user_id=2", admin).json(t)["items"], 1)
	h.get("/jobs?user_id=2", alice).problem(t, http.StatusForbidden)
	assert.Equal(t, []string{"limit"}, h.get("/jobs?limit=501", alice).errorFields(t))
	assert.Equal(t, []string{"status"}, h.get("/jobs?status=DONE", alice).errorFields(t))
	assert.Equal(t, []string{"cursor"}, h.get("/jobs?cursor=zzz", alice).errorFields(t))

	// Cancel: the owner, a PENDING job; refunded.
	h.post(fmt.Sprintf("/jobs/%v/cancel", bobJob), alice, "").problem(t, http.StatusNotFound)
	r := h.post(fmt.Sprintf("/jobs/%v/cancel", aliceJobs[0]), alice, "")
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	assert.Equal(t, "CANCELLED", r.json(t)["status"])
	assert.Len(t, h.get("/jobs?status=CANCELLED", alice).json(t)["items"], 1)
	me := h.get("/me", alice).json(t)
	assert.Equal(t, 10.0-5.0, me["gpu_hours_quota"])
}

// A job service that fails as a broken database would, in front of the real one.
type brokenJobs struct {
	gaas.JobService
	panics bool
}

func (b brokenJobs) Submit(ctx context.Context, caller int64, r gaas.SubmitRequest) (gaas.Job, error) {
	if b.panics {
		panic("boom")
	}
	return gaas.Job{}, fmt.Errorf("store: submit: SELECT secret_column FROM jobs: disk I/O error")
}

func TestInternalErrorsSayNothing(t *testing.T) {
	for _, panics := range []bool{false, true} {
		t.Run(fmt.Sprintf("panics=%v", panics), func(t *testing.T) {
			h := newHarness(t, override{jobs: brokenJobs{panics: panics}})
			_, tok := h.user("alice")
			r := h.do(req{method: http.MethodPost, path: "/jobs", token: tok, body: jobBody, header: map[string]string{"X-Request-ID": "req-42"}})
			p := r.problem(t, http.StatusInternalServerError)
			assert.Equal(t, "internal error", p["detail"])
			assert.Equal(t, "req-42", p["request_id"])
			assert.NotContains(t, string(r.body), "SELECT")
			assert.NotContains(t, string(r.body), "boom")
			assert.Contains(t, h.logs.String(), `"request_id":"req-42"`, "the real error is logged with the request id")
		})
	}
}

func TestCancelJobErrors(t *testing.T) {
	h := newHarness(t)
	id, alice := h.user("alice")
	_, admin := h.admin("root")
	j := h.post("/jobs", alice, jobBody).json(t)["id"]
	for _, s := range []string{"APPROVED", "RUNNING"} {
		require.Equal(t, http.StatusOK, h.do(req{method: http.MethodPatch, path: fmt.Sprintf("/jobs/%v", j), token: admin, body: `{"status": "` + s + `"}`}).status)
	}
	p := h.post(fmt.Sprintf("/jobs/%v/cancel", j), alice, "").problem(t, http.StatusConflict)
	assert.Equal(t, "RUNNING cannot move to CANCELLED: no executor runs it, so an admin cancels it with actual_hours, the hours it ran.", p["detail"])
	h.post("/jobs/424242/cancel", alice, "").problem(t, http.StatusNotFound)
	h.post("/jobs/0/cancel", alice, "").problem(t, http.StatusNotFound)
	h.post("/jobs/-1/cancel", alice, "").problem(t, http.StatusNotFound)
	assert.Equal(t, []string{"id"}, h.post("/jobs/one/cancel", alice, "").errorFields(t))
	h.post(fmt.Sprintf("/jobs/%v/cancel", j), "", "").problem(t, http.StatusUnauthorized)
	assert.Equal(t, 7.5, h.balance(id))
}

// A non-admin's PATCH is 403 whatever the id, as in the original, which
// checks the role first: a 404 would tell them which ids exist. For an
// admin, an id that names no job, 0 and below included, is 404.
func TestTransitionChecksTheRoleFirst(t *testing.T) {
	h := newHarness(t)
	_, alice := h.user("alice")
	_, bob := h.user("bob")
	_, admin := h.admin("root")
	own := h.post("/jobs", alice, jobBody).json(t)["id"]
	other := h.post("/jobs", bob, jobBody).json(t)["id"]
	patch := func(path, token string) response {
		return h.do(req{method: http.MethodPatch, path: path, token: token, body: `{"status": "APPROVED"}`})
	}
	for _, path := range []string{fmt.Sprintf("/jobs/%v", own), fmt.Sprintf("/jobs/%v", other), "/jobs/424242", "/jobs/0", "/jobs/-7"} {
		p := patch(path, alice).problem(t, http.StatusForbidden)
		assert.Equal(t, "Only admins may change the status of a job.", p["detail"], path)
	}
	for _, path := range []string{"/jobs/424242", "/jobs/0", "/jobs/-7"} {
		patch(path, admin).problem(t, http.StatusNotFound)
	}
	assert.Equal(t, []string{"id"}, patch("/jobs/x", admin).errorFields(t))
	assert.Equal(t, []string{"id"}, patch("/jobs/99999999999999999999", admin).errorFields(t))
	require.Equal(t, http.StatusOK, patch(fmt.Sprintf("/jobs/%v", own), admin).status)
}

// TestSubmitFloatNoise: a client computing hours in floats submits
// 0.1 + 0.2 and is charged 0.3; an amount really finer than a milli-hour is
// a 422 whose detail names the nearest amounts, and charges nothing.
func TestSubmitFloatNoise(t *testing.T) {
	h := newHarness(t)
	id, tok := h.user("alice")
	before := h.balance(id)
	job := h.post("/jobs", tok, `{"command": "x", "gpu_type": "A100", "estimated_hours": 0.30000000000000004}`).json(t)
	assert.Equal(t, 0.3, job["estimated_hours"])
	assert.InDelta(t, before-0.3, h.balance(id), 1e-9)

	for in, nearest := range map[string]string{"0.0005": "0 and 0.001", "0.3333333333333333": "0.333 and 0.334"} {
		r := h.post("/jobs", tok, `{"command": "x", "gpu_type": "A100", "estimated_hours": `+in+`}`)
		assert.Equal(t, []string{"estimated_hours"}, r.errorFields(t), in)
		assert.Contains(t, r.json(t)["detail"], "the nearest amounts are "+nearest, in)
	}
	assert.InDelta(t, before-0.3, h.balance(id), 1e-9, "a refused job charges nothing")
}

// TestTrailingSlashRedirects: as FastAPI did, a route asked for with a
// trailing slash answers 307 to the route without it (query kept), so a
// client that follows it submits and lists as before; a path that is no
// route either way stays a 404.
func TestTrailingSlashRedirects(t *testing.T) {
	h := newHarness(t)
	_, tok := h.user("alice")
	raw := h.srv.Client()
	raw.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	for path, want := range map[string]string{"/jobs/": "../jobs", "/jobs/?limit=5": "../jobs?limit=5", "/users/1/": "../1", "/me/": "../me"} {
		r := h.doWith(raw, req{method: http.MethodGet, path: path, token: tok})
		assert.Equal(t, http.StatusTemporaryRedirect, r.status, path)
		assert.Equal(t, want, r.header.Get("Location"), path)
	}
	job := h.post("/jobs/", tok, jobBody)
	require.Equal(t, http.StatusCreated, job.status, "body: %s", job.body)
	list := h.get("/jobs/", tok)
	require.Equal(t, http.StatusOK, list.status)
	assert.Contains(t, string(list.body), `"python train.py"`)
	for _, path := range []string{"/nothing/", "/jobs/1/cancel/x/", "/"} {
		h.get(path, tok).problem(t, http.StatusNotFound)
	}
}

// TestListJobsFilters: GET /jobs narrows by gpu_type and by created_at,
// since included and until not, with the offset of a bound written as
// %2B; a bound that is not RFC 3339 is a 422 naming its parameter.
func TestListJobsFilters(t *testing.T) {
	h := newHarness(t)
	_, alice := h.user("alice")
	var ids []float64
	var created []string
	for _, gpu := range []string{"A100", "H100", "A100"} {
		j := h.post("/jobs", alice, `{"command":"x","gpu_type":"`+gpu+`","estimated_hours":1}`)
		require.Equal(t, http.StatusCreated, j.status, "%s", j.body)
		ids = append(ids, j.json(t)["id"].(float64))
		created = append(created, j.json(t)["created_at"].(string))
		time.Sleep(2 * time.Millisecond)
	}
	list := func(query string) []float64 {
		t.Helper()
		r := h.get("/jobs?"+query, alice)
		require.Equal(t, http.StatusOK, r.status, "%s: %s", query, r.body)
		var got []float64
		for _, it := range r.json(t)["items"].([]any) {
			got = append(got, it.(map[string]any)["id"].(float64))
		}
		return got
	}
	second, err := time.Parse(time.RFC3339Nano, created[1])
	require.NoError(t, err)
	east := second.In(time.FixedZone("", 5*60*60+30*60)).Format(time.RFC3339Nano)
	require.Contains(t, east, "+05:30")

	assert.Equal(t, []float64{ids[2], ids[0]}, list("gpu_type=A100"))
	assert.Empty(t, list("gpu_type=a100"))
	assert.Equal(t, []float64{ids[2], ids[1]}, list("since="+created[1]))
	assert.Equal(t, []float64{ids[0]}, list("until="+created[1]))
	assert.Equal(t, []float64{ids[1]}, list("since="+strings.Replace(east, "+", "%2B", 1)+"&until="+created[2]))
	assert.Equal(t, []float64{ids[2]}, list("gpu_type=A100&since="+created[1]+"&status=PENDING&limit=1"))

	for query, field := range map[string]string{
		"since=yesterday":              "since",
		"until=2026-11-28":             "until",
		"since=2026-11-28T17:34:24":    "since",
		"until=" + east:                "until", // an unescaped + is a space
		"since=2026-13-01T00:00:00Z":   "since",
		"gpu_type=A100&gpu_type=H100":  "gpu_type",
		"since=" + created[0] + "&x=1": "x",
	} {
		assert.Equal(t, []string{field}, h.get("/jobs?"+query, alice).errorFields(t), query)
	}
}

// logDir serves the logs of a directory as an executor keeps them: <id>.log.
type logDir string

func (d logDir) Log(jobID int64, maxBytes int64) ([]byte, bool, error) {
	return executor.TailFile(filepath.Join(string(d), strconv.FormatInt(jobID, 10)+".log"), maxBytes)
}

func TestJobLog(t *testing.T) {
	dir := t.TempDir()
	h := newHarness(t, override{logs: logDir(dir)})
	_, alice := h.user("alice")
	_, bob := h.user("bob")
	_, admin := h.admin("root")
	j := h.post("/jobs", alice, jobBody).json(t)["id"]
	path := fmt.Sprintf("/jobs/%v/log", j)

	h.get(path, alice).problem(t, http.StatusNotFound) // not started: no log yet
	require.NoError(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("%v.log", j)), []byte("epoch 1\nepoch 2\n"), 0o644))
	for _, tok := range []string{alice, admin} {
		r := h.get(path, tok)
		require.Equal(t, http.StatusOK, r.status, "%s", r.body)
		assert.Equal(t, "epoch 1\nepoch 2\n", string(r.body))
		assert.Equal(t, "text/plain; charset=utf-8", r.header.Get("Content-Type"))
		assert.Equal(t, "false", r.header.Get("X-Log-Truncated"))
	}
	r := h.get(path+"?bytes=8", alice)
	assert.Equal(t, "epoch 2\n", string(r.body))
	assert.Equal(t, "true", r.header.Get("X-Log-Truncated"))
	p := h.get(path, bob).problem(t, http.StatusNotFound)
	assert.Equal(t, fmt.Sprintf("Job %v does not exist.", j), p["detail"], "another user's job, whether or not it has a log")
	for _, q := range []string{"?bytes=0", "?bytes=1048577", "?bytes=x"} {
		assert.Equal(t, []string{"bytes"}, h.get(path+q, alice).errorFields(t), q)
	}
	h.get(path, "").problem(t, http.StatusUnauthorized)

	// A server that runs no executor has no logs.
	h2 := newHarness(t)
	_, carol := h2.user("carol")
	k := h2.post("/jobs", carol, jobBody).json(t)["id"]
	p = h2.get(fmt.Sprintf("/jobs/%v/log", k), carol).problem(t, http.StatusNotFound)
	assert.Contains(t, p["detail"], "it runs no executor")
}
