package server_test

import (
	"bufio"
	"bytes"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/server"
)

// scrape reads /metrics as Prometheus would and returns each sample's value
// by its name and labels, as written ("name{a=\"b\"}").
func scrape(t *testing.T, h *harness) map[string]float64 {
	t.Helper()
	r := h.get("/metrics", "")
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	assert.Contains(t, r.header.Get("Content-Type"), "text/plain")
	samples := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(r.body))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		require.NoError(t, err, line)
		samples[line[:i]] = v
	}
	return samples
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	metrics := server.NewMetrics(reg)
	h := newHarness(t, override{cfg: server.Config{Metrics: metrics, ServeMetrics: true, LoginsPerUser: 2}})
	metrics.TallyState(h.db)
	_, admin := h.admin("root")
	uid, tok := h.user("alice")
	h.post("/login", "", `{"username": "alice", "password": "wrong password"}`).problem(t, http.StatusUnauthorized)
	h.post("/login", "", `{"username": "alice", "password": "wrong password"}`).problem(t, http.StatusUnauthorized)
	h.post("/login", "", `{"username": "alice", "password": "wrong password"}`).problem(t, http.StatusTooManyRequests)

	var ids []string
	for range 3 {
		r := h.post("/jobs", tok, jobBody) // 2.5 hours each, of 10
		require.Equal(t, http.StatusCreated, r.status)
		ids = append(ids, strconv.Itoa(int(r.json(t)["id"].(float64))))
	}
	retry := req{method: http.MethodPost, path: "/jobs", token: tok, body: jobBody, header: map[string]string{"Idempotency-Key": "k"}}
	require.Equal(t, http.StatusCreated, h.do(retry).status)
	require.Equal(t, http.StatusCreated, h.do(retry).status, "a retry: no new job, no charge")
	h.post("/jobs", tok, jobBody).problem(t, http.StatusBadRequest) // 0 left
	patch := func(id, body string) {
		r := h.do(req{method: http.MethodPatch, path: "/jobs/" + id, token: admin, body: body})
		require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	}
	patch(ids[0], `{"status": "REJECTED"}`)
	patch(ids[0], `{"status": "REJECTED"}`) // a no-op
	patch(ids[1], `{"status": "APPROVED"}`)
	patch(ids[1], `{"status": "RUNNING"}`)
	patch(ids[1], `{"status": "COMPLETED", "actual_hours": 1.5}`)
	require.Equal(t, 3.5, h.balance(uid))

	m := scrape(t, h)
	assert.Equal(t, 4.0, m["gaas_jobs_submitted_total"])
	assert.Equal(t, 10.0, m["gaas_jobs_charged_credits_total"])
	assert.Equal(t, 3.5, m["gaas_jobs_refunded_credits_total"])
	assert.Equal(t, 1.0, m["gaas_quota_exceeded_total"])
	assert.Equal(t, 1.0, m[`gaas_jobs_transitions_total{status="REJECTED"}`])
	assert.Equal(t, 1.0, m[`gaas_jobs_transitions_total{status="COMPLETED"}`])
	assert.Equal(t, 0.0, m[`gaas_jobs_transitions_total{status="CANCELLED"}`])
	// The state, counted in the store at the scrape: two jobs pending
	// (one of them the retried one) with 2.5 credits each.
	assert.Equal(t, 1.0, m["gaas_store_up"])
	for status, n := range map[string]float64{"PENDING": 2, "APPROVED": 0, "RUNNING": 0, "COMPLETED": 1, "FAILED": 0, "REJECTED": 1, "CANCELLED": 0} {
		assert.Equal(t, n, m[`gaas_jobs{status="`+status+`"}`], status)
	}
	assert.Equal(t, 5.0, m[`gaas_jobs_reserved_credits{status="PENDING"}`])
	assert.Contains(t, m, `gaas_jobs_reserved_credits{status="RUNNING"}`)
	assert.NotContains(t, m, `gaas_jobs_reserved_credits{status="COMPLETED"}`, "a final job reserves nothing")
	assert.Equal(t, 1.0, m[`gaas_accounts{disabled="false",role="admin"}`])
	assert.Equal(t, 1.0, m[`gaas_accounts{disabled="false",role="user"}`])
	assert.Equal(t, 0.0, m[`gaas_accounts{disabled="true",role="user"}`])
	assert.Equal(t, 2.0, m["gaas_login_failures_total"])
	assert.Equal(t, 1.0, m[`gaas_logins_rate_limited_total{by="username"}`])
	assert.Equal(t, 6.0, m["gaas_store_batch_size_count"], "every submission went through a batch")
	assert.Equal(t, 5.0, m[`gaas_http_requests_total{code="201",route="POST /jobs"}`])
	assert.Equal(t, 1.0, m[`gaas_http_requests_total{code="400",route="POST /jobs"}`])
	assert.Equal(t, 5.0, m[`gaas_http_request_duration_seconds_count{code="201",route="POST /jobs"}`])
	assert.Equal(t, 1.0, m[`gaas_http_requests_total{code="429",route="POST /login"}`])

	// The path's own ids never become labels: the route pattern does.
	h.get("/nowhere/"+ids[0], "")
	m = scrape(t, h)
	assert.Equal(t, 1.0, m[`gaas_http_requests_total{code="404",route="unmatched"}`])
	assert.Equal(t, 5.0, m[`gaas_http_requests_total{code="200",route="PATCH /jobs/{id}"}`])
}

func TestMetricsNotServedUnlessAsked(t *testing.T) {
	h := newHarness(t, override{cfg: server.Config{Metrics: server.NewMetrics(prometheus.NewRegistry())}})
	h.get("/metrics", "").problem(t, http.StatusNotFound)
}

// TestMetricsLint holds /metrics to Prometheus's naming conventions, as
// promtool check metrics does (base units, _total on counters, help text),
// with every series present: the counters after some traffic and the state
// gauges.
func TestMetricsLint(t *testing.T) {
	metrics := server.NewMetrics(prometheus.NewRegistry())
	h := newHarness(t, override{cfg: server.Config{Metrics: metrics, ServeMetrics: true}})
	metrics.TallyState(h.db)
	_, tok := h.user("alice")
	require.Equal(t, http.StatusCreated, h.post("/jobs", tok, jobBody).status)
	_, admin := h.admin("root")
	bob, _ := h.user("bob")
	require.Equal(t, http.StatusOK, h.post("/users/"+strconv.FormatInt(bob, 10)+"/disable", admin, "").status)
	assert.Equal(t, 1.0, scrape(t, h)[`gaas_accounts{disabled="true",role="user"}`])
	r := h.get("/metrics", "")
	require.Equal(t, http.StatusOK, r.status)
	problems, err := promlint.New(bytes.NewReader(r.body)).Lint()
	require.NoError(t, err)
	assert.Empty(t, problems)
	assert.Contains(t, string(r.body), "gaas_jobs_reserved_credits")
}

// TestMetricsStoreDown: when the store cannot count, the scrape still
// answers, with gaas_store_up 0 and no state gauges, rather than failing.
func TestMetricsStoreDown(t *testing.T) {
	metrics := server.NewMetrics(prometheus.NewRegistry())
	h := newHarness(t, override{cfg: server.Config{Metrics: metrics, ServeMetrics: true}})
	metrics.TallyState(h.db)
	h.dbClosed = true
	require.NoError(t, h.db.Close())
	m := scrape(t, h)
	assert.Equal(t, 0.0, m["gaas_store_up"])
	assert.NotContains(t, m, `gaas_jobs{status="PENDING"}`)
	assert.Contains(t, m, "gaas_jobs_submitted_total")
}
