package server_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/store/storetest"
)

// TestNonStandardStrings logs in and submits through the server on a
// PostgreSQL database whose sessions default to standard_conforming_strings
// off, under which a backslash in a quoted literal escapes its closing
// quote. A username crafted to end the literal there and fetch the admin's
// row with mallory's password hash must not log in as the admin, and a
// command and an idempotency key full of backslashes and quotes must be
// stored as sent.
func TestNonStandardStrings(t *testing.T) {
	h := newHarness(t, override{dsn: storetest.PostgresDatabase(t, "standard_conforming_strings = off")})
	h.admin("root")
	_, tok := h.user("mallory")

	crafted := `\') UNION SELECT a.id, a.username, m.password_hash, a.role, a.balance, a.created_at` +
		` FROM users a, users m WHERE a.role = $$admin$$ AND m.username = $$mallory$$ --`
	r := h.do(req{method: http.MethodPost, path: "/login", contentType: "application/x-www-form-urlencoded",
		body: url.Values{"username": {crafted}, "password": {"pw-mallory-secret"}}.Encode()})
	if r.status == http.StatusOK {
		h.secret(r.json(t)["access_token"].(string))
	}
	assert.Equal(t, "Wrong username or password.", r.problem(t, http.StatusUnauthorized)["detail"])

	const tricky = `echo \' '' \\' "\" \x41 ; -- \`
	body, err := json.Marshal(map[string]any{"command": tricky, "gpu_type": tricky, "estimated_hours": 1})
	require.NoError(t, err)
	submit := func() response {
		return h.do(req{method: http.MethodPost, path: "/jobs", token: tok, body: string(body),
			header: map[string]string{"Idempotency-Key": tricky}})
	}
	first := submit()
	require.Equal(t, http.StatusCreated, first.status, "%s", first.body)
	job := first.json(t)
	again := submit()
	require.Equal(t, http.StatusCreated, again.status, "%s", again.body)
	assert.Equal(t, job["id"], again.json(t)["id"], "a retry with the same key is the same job")
	got := h.get(first.header.Get("Location"), tok)
	require.Equal(t, http.StatusOK, got.status, "%s", got.body)
	assert.Equal(t, tricky, got.json(t)["command"])
	assert.Equal(t, tricky, got.json(t)["gpu_type"])
}
