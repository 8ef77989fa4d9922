package server_test

import (
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/authn"
	"github.com/gaas-io/gaas/server"
	"github.com/gaas-io/gaas/store/storetest"
)

// revokedWithin polls until token is refused, and requires that no
// request started later than bound after since, a time after the
// revocation's answer (so after its commit), was let through. It polls the
// hot path, POST /jobs, whose handler reads nothing of the caller before
// the job's insert: an empty body is 422 while the token works and 401
// once it does not. It polls on the test goroutine: the harness's requests
// may fail the test.
func revokedWithin(t *testing.T, h *harness, token string, since time.Time, bound time.Duration) {
	t.Helper()
	for {
		start := time.Now()
		r := h.post("/jobs", token, `{}`)
		if r.status == http.StatusUnauthorized {
			break
		}
		require.Equal(t, http.StatusUnprocessableEntity, r.status, "%s", r.body)
		require.False(t, start.After(since.Add(bound)), "a request sent %s after the revocation still got through", start.Sub(since))
		time.Sleep(10 * time.Millisecond)
	}
	p := h.post("/jobs", token, jobBody).problem(t, http.StatusUnauthorized)
	assert.Equal(t, "The token is invalid, expired or revoked.", p["detail"])
	h.get("/me", token).problem(t, http.StatusUnauthorized)
}

// loginAs logs in and returns the whole answer.
func (h *harness) loginAs(name, password string) response {
	h.t.Helper()
	return h.do(req{method: http.MethodPost, path: "/login", contentType: "application/x-www-form-urlencoded",
		body: url.Values{"username": {name}, "password": {password}}.Encode()})
}

func TestRevocationOverHTTP(t *testing.T) {
	h := newHarness(t)
	_, admin := h.admin("root")
	put := func(path, token, body string) response {
		return h.do(req{method: http.MethodPut, path: path, token: token, body: body})
	}

	t.Run("change_password", func(t *testing.T) {
		_, alice := h.user("alice")
		require.Equal(t, http.StatusOK, h.get("/me", alice).status)
		h.secret("wrong-old-password")
		assert.Equal(t, "The old password is wrong.",
			h.post("/me/password", alice, `{"old_password": "wrong-old-password", "new_password": "alice-new-secret"}`).problem(t, http.StatusForbidden)["detail"])
		assert.Equal(t, []string{"new_password"},
			h.post("/me/password", alice, `{"old_password": "pw-alice-secret", "new_password": "short"}`).errorFields(t))
		assert.ElementsMatch(t, []string{"old_password", "new_password"}, h.post("/me/password", alice, `{}`).errorFields(t))
		require.Equal(t, http.StatusOK, h.get("/me", alice).status, "refused changes leave the token working")

		h.secret("alice-new-secret")
		r := h.post("/me/password", alice, `{"old_password": "pw-alice-secret", "new_password": "alice-new-secret"}`)
		require.Equal(t, http.StatusOK, r.status, "%s", r.body)
		assert.Equal(t, "no-store", r.header.Get("Cache-Control"))
		fresh := r.json(t)["access_token"].(string)
		h.secret(fresh)
		revokedWithin(t, h, alice, time.Now(), 0)
		assert.Equal(t, http.StatusOK, h.get("/me", fresh).status, "the token the change returned works")
		h.loginAs("alice", "pw-alice-secret").problem(t, http.StatusUnauthorized)
		assert.Equal(t, http.StatusOK, h.get("/me", h.login("alice", "alice-new-secret")).status)
	})

	t.Run("logout_all", func(t *testing.T) {
		_, bob := h.user("bob")
		other := h.login("bob", "pw-bob-secret")
		r := h.post("/me/logout-all", bob, "")
		require.Equal(t, http.StatusNoContent, r.status, "%s", r.body)
		assert.Empty(t, r.body)
		revokedWithin(t, h, bob, time.Now(), 0)
		revokedWithin(t, h, other, time.Now(), 0)
		assert.Equal(t, http.StatusOK, h.get("/me", h.login("bob", "pw-bob-secret")).status)
	})

	t.Run("reset_password", func(t *testing.T) {
		carolID, carol := h.user("carol")
		_, dave := h.user("dave")
		path := fmt.Sprintf("/users/%d/password", carolID)
		h.secret("set-by-the-admin")
		put(path, dave, `{"password": "set-by-the-admin"}`).problem(t, http.StatusForbidden)
		put("/users/999/password", admin, `{"password": "set-by-the-admin"}`).problem(t, http.StatusNotFound)
		assert.Equal(t, []string{"password"}, put(path, admin, `{"password": "short"}`).errorFields(t))
		require.Equal(t, http.StatusOK, h.get("/me", carol).status)

		r := put(path, admin, `{"password": "set-by-the-admin"}`)
		require.Equal(t, http.StatusOK, r.status, "%s", r.body)
		assert.Equal(t, "carol", r.json(t)["username"])
		revokedWithin(t, h, carol, time.Now(), 0)
		assert.Equal(t, http.StatusOK, h.get("/me", h.login("carol", "set-by-the-admin")).status)
	})

	t.Run("role_change", func(t *testing.T) {
		erinID, erin := h.user("erin")
		r := h.do(req{method: http.MethodPatch, path: fmt.Sprintf("/users/%d", erinID), token: admin, body: `{"role": "admin"}`})
		require.Equal(t, http.StatusOK, r.status, "%s", r.body)
		revokedWithin(t, h, erin, time.Now(), authn.DefaultRevocationBound)
		fresh := h.login("erin", "pw-erin-secret")
		assert.Equal(t, "admin", h.get("/me", fresh).json(t)["role"])
	})

	t.Run("disable", func(t *testing.T) {
		frankID, frank := h.user("frank")
		_, grace := h.user("grace")
		disable, enable := fmt.Sprintf("/users/%d/disable", frankID), fmt.Sprintf("/users/%d/enable", frankID)
		h.post(disable, grace, "").problem(t, http.StatusForbidden)
		h.post("/users/999/disable", admin, "").problem(t, http.StatusNotFound)
		require.Equal(t, http.StatusOK, h.get("/me", frank).status)

		r := h.post(disable, admin, "")
		require.Equal(t, http.StatusOK, r.status, "%s", r.body)
		assert.Equal(t, true, r.json(t)["disabled"])
		revokedWithin(t, h, frank, time.Now(), authn.DefaultRevocationBound)

		// A disabled account's login answers exactly as a wrong password does.
		h.secret("not-franks-password")
		disabled := h.loginAs("frank", "pw-frank-secret").problem(t, http.StatusUnauthorized)
		wrong := h.loginAs("frank", "not-franks-password").problem(t, http.StatusUnauthorized)
		unknown := h.loginAs("nobody-at-all", "pw-frank-secret").problem(t, http.StatusUnauthorized)
		for _, p := range []map[string]any{disabled, wrong, unknown} {
			delete(p, "request_id")
		}
		assert.Equal(t, wrong, disabled)
		assert.Equal(t, unknown, disabled)
		assert.Equal(t, true, h.get(fmt.Sprintf("/users/%d", frankID), admin).json(t)["disabled"])

		r = h.post(enable, admin, "")
		require.Equal(t, http.StatusOK, r.status, "%s", r.body)
		assert.NotContains(t, r.json(t), "disabled", "an enabled account's user has no such field, as in the original")
		h.get("/me", frank).problem(t, http.StatusUnauthorized)
		assert.Equal(t, http.StatusOK, h.get("/me", h.login("frank", "pw-frank-secret")).status,
			"enabled again, it logs in; the tokens from before stay revoked")
	})

}

func TestLastEnabledAdminOverHTTP(t *testing.T) {
	h := newHarness(t)
	rootID, root := h.admin("root")
	secondID, second := h.admin("second")
	r := h.post(fmt.Sprintf("/users/%d/disable", secondID), root, "")
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	p := h.post(fmt.Sprintf("/users/%d/disable", rootID), root, "").problem(t, http.StatusConflict)
	assert.Contains(t, p["detail"], "last enabled admin", "the disabled admin does not count")
	p = h.do(req{method: http.MethodPatch, path: fmt.Sprintf("/users/%d", rootID), token: root, body: `{"role": "user"}`}).problem(t, http.StatusConflict)
	assert.Contains(t, p["detail"], "last enabled admin")
	assert.Equal(t, http.StatusOK, h.get("/me", root).status)
	h.get("/me", second).problem(t, http.StatusUnauthorized)
}

// Two servers, each with its own store and Authenticator, on one database:
// a revocation through one is seen by the other within the bound.
func TestRevocationAcrossReplicas(t *testing.T) {
	for name, dsn := range map[string]func(t *testing.T) string{
		"sqlite":   func(t *testing.T) string { return filepath.Join(t.TempDir(), "gaas.db") },
		"postgres": func(t *testing.T) string { return storetest.PostgresDSN(t) },
	} {
		t.Run(name, func(t *testing.T) {
			dsn := dsn(t)
			one := newHarness(t, override{dsn: dsn})
			two := newHarness(t, override{dsn: dsn})
			_, admin := one.admin("root")
			aliceID, alice := one.user("alice")
			two.secret(alice)
			two.account("alice", "pw-alice-secret")
			require.Equal(t, http.StatusOK, two.get("/me", alice).status)

			require.Equal(t, http.StatusNoContent, one.post("/me/logout-all", alice, "").status)
			revokedWithin(t, two, alice, time.Now(), authn.DefaultRevocationBound)

			fresh := two.login("alice", "pw-alice-secret")
			one.secret(fresh)
			require.Equal(t, http.StatusOK, one.get("/me", fresh).status)
			r := one.post(fmt.Sprintf("/users/%d/disable", aliceID), admin, "")
			require.Equal(t, http.StatusOK, r.status, "%s", r.body)
			since := time.Now()
			revokedWithin(t, two, fresh, since, authn.DefaultRevocationBound)
			revokedWithin(t, one, fresh, since, authn.DefaultRevocationBound)
		})
	}
}

// Guesses of the old password count as failed logins of the account: past
// the limit they are 429 before any hashing, and the right one is not
// counted.
func TestChangePasswordGuessesAreLimited(t *testing.T) {
	h := newHarness(t, override{cfg: server.Config{LoginsPerUser: 2}})
	_, alice := h.user("alice")
	h.secret("wrong-old-password")
	guess := `{"old_password": "wrong-old-password", "new_password": "alice-new-secret"}`
	h.post("/me/password", alice, guess).problem(t, http.StatusForbidden)
	h.post("/me/password", alice, guess).problem(t, http.StatusForbidden)
	r := h.post("/me/password", alice, guess)
	r.problem(t, http.StatusTooManyRequests)
	assert.NotEmpty(t, r.header.Get("Retry-After"))

	_, bob := h.user("bob")
	for range 3 {
		h.secret("bob-new-secret")
		r := h.post("/me/password", bob, `{"old_password": "pw-bob-secret", "new_password": "bob-new-secret"}`)
		require.Equal(t, http.StatusOK, r.status, "%s", r.body)
		bob = r.json(t)["access_token"].(string)
		h.secret(bob)
		r = h.post("/me/password", bob, `{"old_password": "bob-new-secret", "new_password": "pw-bob-secret"}`)
		require.Equal(t, http.StatusOK, r.status, "successful changes are not counted: %s", r.body)
		bob = r.json(t)["access_token"].(string)
		h.secret(bob)
	}
}
