package server_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestUnknownQueryParameters: a query parameter a route does not take, or
// one it takes given twice, is a 422 naming it, on routes with parameters
// and without, open and authenticated; nothing is done.
func TestUnknownQueryParameters(t *testing.T) {
	h := newHarness(t)
	_, admin := h.admin("root")
	_, alice := h.user("alice")

	for _, c := range []struct {
		method, path, token, body, field string
	}{
		{"GET", "/jobs?stauts=PENDING", alice, "", "stauts"},
		{"GET", "/jobs?limit=1&limit=2", alice, "", "limit"},
		{"GET", "/jobs?status=PENDING&status=RUNNING", alice, "", "status"},
		{"GET", "/users?user_name=alice&limit=5", admin, "", "user_name"},
		{"GET", "/users/1/ledger?since=2026-01-01T00:00:00Z", admin, "", "since"},
		{"GET", "/me?verbose=1", alice, "", "verbose"},
		{"GET", "/me?limit=1", alice, "", "limit"},
		{"POST", "/jobs?dry_run=true", alice, `{"command":"x","gpu_type":"A100","estimated_hours":1}`, "dry_run"},
		{"POST", "/me/logout-all?all", alice, "", "all"},
		{"GET", "/healthz?deep=1", "", "", "deep"},
		{"GET", "/version?x", "", "", "x"},
		{"POST", "/login?next=/", "", "username=alice&password=x", "next"},
	} {
		var ct string
		if c.path == "/login?next=/" {
			ct = "application/x-www-form-urlencoded"
		}
		r := h.do(req{method: c.method, path: c.path, token: c.token, body: c.body, contentType: ct})
		assert.Equal(t, []string{c.field}, r.errorFields(t), "%s %s", c.method, c.path)
		assert.Contains(t, r.json(t)["detail"], c.field, "%s %s", c.method, c.path)
	}
	// The refused submission was not made; alice is still logged in.
	jobs := h.get("/jobs", alice)
	require.Equal(t, http.StatusOK, jobs.status, "%s", jobs.body)
	assert.Empty(t, jobs.json(t)["items"])

	// The caller is known first: no token is a 401 whatever the query.
	h.get("/jobs?stauts=PENDING", "").problem(t, http.StatusUnauthorized)

	// Known parameters, once each, pass; an empty query is no query.
	assert.Equal(t, http.StatusOK, h.get("/jobs?status=PENDING&limit=5", alice).status)
	assert.Equal(t, http.StatusOK, h.get("/me?", alice).status)
	assert.Equal(t, http.StatusOK, h.get("/healthz", "").status)
}
