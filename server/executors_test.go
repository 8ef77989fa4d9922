package server_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/gaas"
)

// executorToken makes an executor through the admin API and returns its token.
func (h *harness) executorToken(adminToken, name string) string {
	h.t.Helper()
	r := h.post("/executors", adminToken, `{"name":"`+name+`"}`)
	require.Equal(h.t, http.StatusCreated, r.status, "%s", r.body)
	assert.Equal(h.t, "/executors/"+name, r.header.Get("Location"))
	assert.Equal(h.t, "no-store", r.header.Get("Cache-Control"))
	tok := r.json(h.t)["token"].(string)
	h.secret(tok)
	return tok
}

// approvedJob submits a job as userToken and approves it as adminToken.
func (h *harness) approvedJob(userToken, adminToken, gpuType string) int64 {
	h.t.Helper()
	r := h.post("/jobs", userToken, `{"command": "train", "gpu_type": "`+gpuType+`", "estimated_hours": 1}`)
	require.Equal(h.t, http.StatusCreated, r.status, "%s", r.body)
	id := int64(r.json(h.t)["id"].(float64))
	r = h.do(req{method: http.MethodPatch, path: fmt.Sprintf("/jobs/%d", id), token: adminToken, body: `{"status": "APPROVED"}`})
	require.Equal(h.t, http.StatusOK, r.status, "%s", r.body)
	return id
}

// The executor API is for executor tokens only, and the admin API for
// admins: each refuses the other's credentials.
func TestExecutorAuthentication(t *testing.T) {
	h := newHarness(t)
	_, adminToken := h.admin("root")
	_, aliceToken := h.user("alice")
	node := h.executorToken(adminToken, "node1")

	claim := `{"free": {"A100": 1}, "ttl": 60}`
	for _, tok := range []string{"", adminToken, aliceToken, "gaas_exec_" + strings.Repeat("A", 43), node + "x"} {
		p := h.post("/executor/claim", tok, claim).problem(t, http.StatusUnauthorized)
		assert.Contains(t, p["detail"], "executor token", "token %q", tok)
		h.get("/executor/leases", tok).problem(t, http.StatusUnauthorized)
		h.post("/executor/heartbeat", tok, `{"job_id": 1, "generation": 1, "ttl": 60}`).problem(t, http.StatusUnauthorized)
		h.post("/executor/finish", tok, `{"job_id": 1, "generation": 1, "status": "FAILED"}`).problem(t, http.StatusUnauthorized)
	}
	// An executor's token is nothing on the users' endpoints.
	for _, path := range []string{"/me", "/jobs", "/executors", "/gpu-types"} {
		h.get(path, node).problem(t, http.StatusUnauthorized)
	}
	h.post("/jobs", node, jobBody).problem(t, http.StatusUnauthorized)
	h.post("/executors", node, `{"name":"node2"}`).problem(t, http.StatusUnauthorized)

	// Only admins manage executors.
	h.post("/executors", aliceToken, `{"name":"node2"}`).problem(t, http.StatusForbidden)
	h.get("/executors", aliceToken).problem(t, http.StatusForbidden)
	h.do(req{method: http.MethodDelete, path: "/executors/node1", token: aliceToken}).problem(t, http.StatusForbidden)
	h.post("/executors", adminToken, `{"name":"NODE1"}`).problem(t, http.StatusConflict)
	assert.Contains(t, h.post("/executors", adminToken, `{"name":"node 2"}`).errorFields(t), "name")
	assert.Contains(t, h.post("/executors", adminToken, `{}`).errorFields(t), "name")

	r := h.post("/executor/claim", node, claim)
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	assert.Equal(t, []any{}, r.json(t)["items"])

	list := h.get("/executors", adminToken)
	require.Equal(t, http.StatusOK, list.status)
	items := list.json(t)["items"].([]any)
	require.Len(t, items, 1)
	x := items[0].(map[string]any)
	assert.Equal(t, "node1", x["name"])
	assert.NotNil(t, x["last_seen_at"])
	assert.Nil(t, x["revoked_at"])
	assert.NotContains(t, x, "token")

	// A revoked token is refused at once.
	rv := h.do(req{method: http.MethodDelete, path: "/executors/Node1", token: adminToken})
	require.Equal(t, http.StatusOK, rv.status, "%s", rv.body)
	assert.NotNil(t, rv.json(t)["revoked_at"])
	h.post("/executor/claim", node, claim).problem(t, http.StatusUnauthorized)
	h.do(req{method: http.MethodDelete, path: "/executors/nosuch", token: adminToken}).problem(t, http.StatusNotFound)
}

// The lease calls over HTTP: the executor is the token's, a stale lease
// is 409, and bad bodies are 422.
func TestExecutorLeaseCalls(t *testing.T) {
	h := newHarness(t)
	_, adminToken := h.admin("root")
	aliceID, aliceToken := h.user("alice")
	node1 := h.executorToken(adminToken, "node1")
	node2 := h.executorToken(adminToken, "node2")
	before := h.balance(aliceID)
	id := h.approvedJob(aliceToken, adminToken, "A100")

	// A body cannot name the executor: the token does.
	h.post("/executor/claim", node1, `{"free": {"A100": 1}, "ttl": 60, "executor": "node2"}`).errorFields(t)
	r := h.post("/executor/claim", node1, `{"free": {"A100": 1}, "max": 5, "ttl": 60}`)
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	items := r.json(t)["items"].([]any)
	require.Len(t, items, 1)
	lease := items[0].(map[string]any)["lease"].(map[string]any)
	assert.Equal(t, "node1", lease["executor"])
	assert.EqualValues(t, id, lease["job_id"])
	assert.EqualValues(t, 1, lease["generation"])
	assert.EqualValues(t, id, items[0].(map[string]any)["job"].(map[string]any)["id"])

	// A retried claim answers the same job; another executor gets none.
	again := h.post("/executor/claim", node1, `{"free": {"A100": 1}, "ttl": 60}`).json(t)["items"].([]any)
	require.Len(t, again, 1)
	assert.Equal(t, lease, again[0].(map[string]any)["lease"])
	assert.Empty(t, h.post("/executor/claim", node2, `{"free": {"A100": 1}, "ttl": 60}`).json(t)["items"])
	leases := h.get("/executor/leases", node1).json(t)
	assert.Equal(t, "node1", leases["executor"], "the token's executor")
	assert.Len(t, leases["items"], 1)
	assert.Empty(t, h.get("/executor/leases", node2).json(t)["items"])

	// Another executor's token cannot report on node1's lease.
	hb := fmt.Sprintf(`{"job_id": %d, "generation": 1, "external_id": "4711", "started_at": "2026-01-01T00:00:00Z", "ttl": 60}`, id)
	h.post("/executor/heartbeat", node2, hb).problem(t, http.StatusConflict)
	r = h.post("/executor/heartbeat", node1, hb)
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	assert.Equal(t, false, r.json(t)["cancel_requested"])
	job := h.get(fmt.Sprintf("/jobs/%d", id), aliceToken).json(t)
	assert.Equal(t, "RUNNING", job["status"])
	assert.Equal(t, "4711", job["run"].(map[string]any)["external_id"])

	// Cancelling it asks the executor to stop it.
	require.Equal(t, http.StatusOK, h.post(fmt.Sprintf("/jobs/%d/cancel", id), aliceToken, "").status)
	assert.Equal(t, true, h.post("/executor/heartbeat", node1, hb).json(t)["cancel_requested"])

	// Bad bodies.
	for _, body := range []string{
		`{"job_id": 1, "generation": 1}`,                 // no ttl
		`{"job_id": 1, "ttl": 60}`,                       // no generation
		`{"job_id": 1, "generation": 1, "ttl": -1}`,      // negative ttl
		`{"job_id": 1, "generation": 1, "ttl": 1e12}`,    // absurd ttl
		`{"job_id": 1, "generation": 1, "ttl": 7200}`,    // beyond the store's bound
		`{"job_id": 1, "generation": 1, "ttl": "sixty"}`, // not a number
	} {
		h.post("/executor/heartbeat", node1, body).errorFields(t)
	}
	for _, body := range []string{
		fmt.Sprintf(`{"job_id": %d, "generation": 1}`, id),                                    // no status
		fmt.Sprintf(`{"job_id": %d, "generation": 1, "status": "PENDING"}`, id),               // not an outcome
		fmt.Sprintf(`{"job_id": %d, "generation": 1, "status": "FAILED", "elapsed": -3}`, id), // negative elapsed
		fmt.Sprintf(`{"job_id": %d, "generation": 1, "status": "FAILED", "executor": "node2"}`, id),
	} {
		h.post("/executor/finish", node1, body).errorFields(t)
	}
	h.post("/executor/claim", node1, `{"free": {"A100": 1}}`).errorFields(t)
	h.post("/executor/claim", node1, `{"free": {"A100": 1}, "ttl": 60, "max": 1000}`).errorFields(t)

	// It stops after 1800 seconds: charged half an hour, as cancelled.
	fin := fmt.Sprintf(`{"job_id": %d, "generation": 1, "status": "CANCELLED", "elapsed": 1800, "reason": "cancelled"}`, id)
	r = h.post("/executor/finish", node1, fin)
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	done := r.json(t)
	assert.Equal(t, "CANCELLED", done["status"])
	assert.Equal(t, 0.5, done["actual_hours"])
	assert.InDelta(t, before-0.5, h.balance(aliceID), 1e-9)

	// The lease ended: every report on it is 409, a repeated finish too.
	p := h.post("/executor/finish", node1, fin).problem(t, http.StatusConflict)
	assert.Contains(t, p["detail"], "no longer yours")
	h.post("/executor/heartbeat", node1, hb).problem(t, http.StatusConflict)
	assert.Empty(t, h.get("/executor/leases", node1).json(t)["items"])
	report, err := h.db.Check(context.Background())
	require.NoError(t, err)
	assert.Empty(t, report.Violations)
	j, err := h.db.Jobs.Get(context.Background(), aliceID, gaas.GetJobRequest{JobID: id})
	require.NoError(t, err)
	assert.Equal(t, "node1", j.Run.Executor)
}
