package server_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/authn"
)

func TestUsersAndQuota(t *testing.T) {
	h := newHarness(t)
	aliceID, alice := h.user("alice")
	bobID, bob := h.user("bob")
	rootID, admin := h.admin("root")
	put := h.put
	patch := func(path, token, body string) response {
		return h.do(req{method: http.MethodPatch, path: path, token: token, body: body})
	}
	users := fmt.Sprintf("/users/%d", aliceID)

	t.Run("list", func(t *testing.T) {
		h.get("/users", alice).problem(t, http.StatusForbidden)
		page := h.get("/users?limit=2", admin).json(t)
		assert.Len(t, page["items"], 2)
		require.NotNil(t, page["next_cursor"])
		page = h.get("/users?limit=2&cursor="+page["next_cursor"].(string), admin).json(t)
		assert.Len(t, page["items"], 1)
		assert.Nil(t, page["next_cursor"])
	})

	t.Run("get", func(t *testing.T) {
		assert.JSONEq(t, `{"id": 1, "username": "alice", "role": "user", "gpu_hours_quota": 10.0}`, string(h.get(users, alice).body))
		assert.Equal(t, http.StatusOK, h.get(users, admin).status)
		h.get(users, bob).problem(t, http.StatusNotFound)
		h.get("/users/999", admin).problem(t, http.StatusNotFound)
	})

	t.Run("set_quota", func(t *testing.T) {
		put(users+"/quota", alice, `{"gpu_hours_quota": 1000}`).problem(t, http.StatusForbidden)
		r := put(users+"/quota", admin, `{"gpu_hours_quota": 25, "reason": "Q1 grant"}`)
		require.Equal(t, http.StatusOK, r.status, "%s", r.body)
		assert.Equal(t, 25.0, r.json(t)["gpu_hours_quota"])
		assert.Equal(t, []string{"gpu_hours_quota"}, put(users+"/quota", admin, `{"gpu_hours_quota": -1}`).errorFields(t))
		assert.Equal(t, []string{"gpu_hours_quota"}, put(users+"/quota", admin, `{"reason": "x"}`).errorFields(t))
		put("/users/999/quota", admin, `{"gpu_hours_quota": 1}`).problem(t, http.StatusNotFound)
	})

	t.Run("grants", func(t *testing.T) {
		grants := users + "/quota/grants"
		h.post(grants, alice, `{"hours": 5}`).problem(t, http.StatusForbidden)
		r := h.post(grants, admin, `{"hours": 0.1, "reason": "a tenth"}`)
		require.Equal(t, http.StatusOK, r.status, "%s", r.body)
		assert.Equal(t, 25.1, r.json(t)["gpu_hours_quota"])
		r = h.post(grants, admin, `{"hours": -0.1}`)
		require.Equal(t, http.StatusOK, r.status, "%s", r.body)
		assert.Equal(t, 25.0, r.json(t)["gpu_hours_quota"])
		p := h.post(grants, admin, `{"hours": -30}`).problem(t, http.StatusBadRequest)
		assert.Equal(t, fmt.Sprintf("Cannot take back 30 hours: user %d has 25 left.", aliceID), p["detail"])
		assert.Equal(t, []string{"hours"}, h.post(grants, admin, `{"hours": 0}`).errorFields(t))
		assert.Equal(t, 25.0, h.balance(aliceID))
	})

	t.Run("ledger", func(t *testing.T) {
		h.post("/jobs", alice, jobBody)
		ledger := users + "/ledger"
		h.get(ledger, bob).problem(t, http.StatusNotFound)
		page := h.get(ledger, alice).json(t)
		assert.Equal(t, page, h.get(ledger, admin).json(t))
		items := page["items"].([]any)
		require.Len(t, items, 5)
		first := items[0].(map[string]any)
		assert.Equal(t, "grant", first["kind"])
		assert.Nil(t, first["job_id"])
		assert.Nil(t, first["actor_id"], "the system gives the default quota")
		assert.Equal(t, "registration", first["actor_system"])
		last := items[4].(map[string]any)
		assert.Equal(t, "charge", last["kind"])
		assert.EqualValues(t, 1, last["job_id"])
		assert.EqualValues(t, aliceID, last["actor_id"])
		assert.Nil(t, last["actor_system"])
		assert.Equal(t, -2.5, last["delta_hours"])
		assert.Equal(t, 22.5, last["balance_hours"])
		set := items[1].(map[string]any)
		assert.Equal(t, "set", set["kind"])
		assert.Equal(t, "Q1 grant", set["reason"])
		assert.EqualValues(t, rootID, set["actor_id"])
		sum := 0.0
		for _, e := range items {
			sum += e.(map[string]any)["delta_hours"].(float64)
		}
		assert.InDelta(t, h.balance(aliceID), sum, 1e-9)
		for _, k := range []string{"id", "user_id", "job_id", "actor_id", "actor_system", "kind", "delta_hours", "balance_hours", "reason", "created_at"} {
			assert.Contains(t, last, k)
		}
	})

	t.Run("roles", func(t *testing.T) {
		patch(fmt.Sprintf("/users/%d", bobID), bob, `{"role": "admin"}`).problem(t, http.StatusForbidden)
		assert.Equal(t, []string{"role"}, patch(fmt.Sprintf("/users/%d", bobID), admin, `{"role": "superuser"}`).errorFields(t))
		r := patch(fmt.Sprintf("/users/%d", bobID), admin, `{"role": "admin"}`)
		require.Equal(t, http.StatusOK, r.status, "%s", r.body)
		assert.Equal(t, "admin", r.json(t)["role"])
		// A change of role ends bob's older tokens, within the revocation
		// bound; the token of his next login carries the new role.
		revokedWithin(t, h, bob, time.Now(), authn.DefaultRevocationBound)
		bob = h.login("bob", "pw-bob-secret")
		assert.Equal(t, http.StatusOK, h.get("/users", bob).status)

		r = patch(fmt.Sprintf("/users/%d", bobID), admin, `{"role": "user"}`)
		require.Equal(t, http.StatusOK, r.status)
		revokedWithin(t, h, bob, time.Now(), authn.DefaultRevocationBound)
		bob = h.login("bob", "pw-bob-secret")
		h.get("/users", bob).problem(t, http.StatusForbidden)
		job := h.post("/jobs", alice, jobBody).json(t)["id"]
		h.do(req{method: http.MethodPatch, path: fmt.Sprintf("/jobs/%v", job), token: bob, body: `{"status": "APPROVED"}`}).problem(t, http.StatusForbidden)

		p := patch(fmt.Sprintf("/users/%d", rootID), admin, `{"role": "user"}`).problem(t, http.StatusConflict)
		assert.Contains(t, p["detail"], "last enabled admin")
	})
}

func TestRoutesAndHealth(t *testing.T) {
	h := newHarness(t)
	r := h.get("/healthz", "")
	require.Equal(t, http.StatusOK, r.status)
	assert.JSONEq(t, `{"status": "ok"}`, string(r.body))

	p := h.get("/nowhere", "").problem(t, http.StatusNotFound)
	assert.Equal(t, "No route matches GET /nowhere.", p["detail"])
	r = h.do(req{method: http.MethodDelete, path: "/jobs/1"})
	r.problem(t, http.StatusMethodNotAllowed)
	assert.Equal(t, "GET, HEAD, PATCH", r.header.Get("Allow"))

	r = h.do(req{method: http.MethodGet, path: "/healthz", header: map[string]string{"X-Request-ID": "abc-123"}})
	assert.Equal(t, "abc-123", r.header.Get("X-Request-ID"))
	r = h.do(req{method: http.MethodGet, path: "/healthz", header: map[string]string{"X-Request-ID": "evil\" injected=1"}})
	assert.Len(t, r.header.Get("X-Request-ID"), 32, "an unsafe id is replaced")

	assert.Contains(t, h.logs.String(), `"route":"GET /healthz"`)
	assert.Contains(t, h.logs.String(), `"request_id":"abc-123"`)

	require.NoError(t, h.db.Close())
	h.dbClosed = true
	h.get("/healthz", "").problem(t, http.StatusServiceUnavailable)
}

func TestUserEndpointErrors(t *testing.T) {
	h := newHarness(t)
	_, alice := h.user("alice")
	_, admin := h.admin("root")
	for _, path := range []string{"/users/x", "/users/1.5/ledger"} {
		assert.Equal(t, []string{"id"}, h.get(path, admin).errorFields(t), path)
	}
	for _, path := range []string{"/users/0", "/users/-1/ledger"} {
		h.get(path, admin).problem(t, http.StatusNotFound)
	}
	for _, path := range []string{"/me", "/users", "/users/1", "/users/1/ledger", "/jobs", "/jobs/1"} {
		h.get(path, "").problem(t, http.StatusUnauthorized)
	}
	h.do(req{method: http.MethodPatch, path: "/users/999", token: admin, body: `{"role": "admin"}`}).problem(t, http.StatusNotFound)
	h.post("/users/999/quota/grants", admin, `{"hours": 1}`).problem(t, http.StatusNotFound)
	h.get("/users/999/ledger", admin).problem(t, http.StatusNotFound)
	assert.Equal(t, []string{"role"}, h.do(req{method: http.MethodPatch, path: "/users/1", token: admin, body: `{}`}).errorFields(t))
	assert.Equal(t, []string{"hours"}, h.post("/users/1/quota/grants", admin, `{"hours": "5"}`).errorFields(t))
	assert.Equal(t, []string{"reason"}, h.post("/users/1/quota/grants", admin, `{"hours": 5, "reason": 5}`).errorFields(t))
	assert.Equal(t, []string{"limit"}, h.get("/users?limit=0", admin).errorFields(t))
	h.post("/users/1/quota/grants", alice, `{"hours": 1}`).problem(t, http.StatusForbidden)
}

// TestFindUserByName: GET /users?username= answers admins a page of the
// one user of that name, whatever its case, or an empty page (a name no
// one could have included); others are refused.
func TestFindUserByName(t *testing.T) {
	h := newHarness(t)
	_, admin := h.admin("root")
	aliceID, alice := h.user("Alice")

	for _, name := range []string{"Alice", "alice", "ALICE"} {
		page := h.get("/users?username="+name, admin).json(t)
		items := page["items"].([]any)
		require.Len(t, items, 1, name)
		assert.EqualValues(t, aliceID, items[0].(map[string]any)["id"])
		assert.Nil(t, page["next_cursor"])
	}
	for _, name := range []string{"Alic", "Alice_", "al%25", "no%20one", strings.Repeat("x", 300)} {
		r := h.get("/users?username="+name, admin)
		require.Equal(t, http.StatusOK, r.status, "%s: %s", name, r.body)
		assert.Empty(t, r.json(t)["items"], name)
	}
	assert.Equal(t, "Only admins may list users.", h.get("/users?username=Alice", alice).problem(t, http.StatusForbidden)["detail"])
	assert.Equal(t, []string{"username"}, h.get("/users?username=Alice&username=root", admin).errorFields(t))
}
