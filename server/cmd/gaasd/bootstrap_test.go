package main

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// GAAS_ADMIN_USERNAME naming an account someone registered: gaasd refuses
// to start, with one line that says how to proceed, and promotes it only
// with -adopt-admin, which ends the tokens the account held. A restart with
// the same password leaves the admin's tokens working; a new password ends
// them.
func TestBootstrapAdmin(t *testing.T) {
	db := filepath.Join(t.TempDir(), "gaas.db")
	login := func(g *instance, user, password string) (int, string) {
		status, body := g.call(t, "POST", "/login", "", "application/x-www-form-urlencoded",
			url.Values{"username": {user}, "password": {password}}.Encode())
		token, _ := body["access_token"].(string)
		return status, token
	}

	g := start(t, db, nil)
	status, _ := g.json(t, "POST", "/register", "", `{"username": "Root", "password": "squatter-password"}`)
	require.Equal(t, http.StatusCreated, status)
	_, squatter := login(g, "Root", "squatter-password")
	g.stop(t)

	env := map[string]string{"GAAS_ADMIN_USERNAME": "root", "GAAS_ADMIN_PASSWORD": "root-password-secret"}
	err := run(context.Background(), []string{"-addr", "127.0.0.1:0", "-db", db, "-pbkdf2-iterations", "1000"},
		func(k string) string { return env[k] }, io.Discard, io.Discard)
	require.Error(t, err, "an existing user is not promoted unasked")
	assert.NotContains(t, err.Error(), "\n", "one line")
	for _, s := range []string{"GAAS_ADMIN_USERNAME", `"root"`, "not an admin", "-adopt-admin", "GAAS_ADOPT_ADMIN", "another name"} {
		assert.Contains(t, err.Error(), s)
	}
	assert.NotContains(t, err.Error(), "root-password-secret")

	g = start(t, db, nil)
	status, me := g.json(t, "GET", "/me", squatter, "")
	require.Equal(t, http.StatusOK, status, "the refusal changed nothing")
	assert.Equal(t, "user", me["role"])
	g.stop(t)

	g = start(t, db, env, "-adopt-admin")
	status, _ = g.json(t, "GET", "/me", squatter, "")
	assert.Equal(t, http.StatusUnauthorized, status, "the adopted account's old tokens are revoked")
	status, _ = login(g, "root", "squatter-password")
	assert.Equal(t, http.StatusUnauthorized, status)
	status, admin := login(g, "root", "root-password-secret")
	require.Equal(t, http.StatusOK, status)
	_, me = g.json(t, "GET", "/me", admin, "")
	assert.Equal(t, "admin", me["role"])
	g.stop(t)

	g = start(t, db, env)
	status, _ = g.json(t, "GET", "/me", admin, "")
	assert.Equal(t, http.StatusOK, status, "a restart with the same password leaves the admin's tokens working")
	g.stop(t)

	env["GAAS_ADMIN_PASSWORD"] = "a-new-root-password"
	g = start(t, db, env)
	status, _ = g.json(t, "GET", "/me", admin, "")
	assert.Equal(t, http.StatusUnauthorized, status, "a new password ends the old tokens")
	status, _ = login(g, "root", "a-new-root-password")
	assert.Equal(t, http.StatusOK, status)
	g.stop(t)

	// GAAS_ADOPT_ADMIN does what the flag does, and must be a boolean.
	db2 := filepath.Join(t.TempDir(), "gaas.db")
	g = start(t, db2, nil)
	status, _ = g.json(t, "POST", "/register", "", `{"username": "root", "password": "squatter-password"}`)
	require.Equal(t, http.StatusCreated, status)
	g.stop(t)
	env["GAAS_ADOPT_ADMIN"] = "maybe"
	err = run(context.Background(), []string{"-addr", "127.0.0.1:0", "-db", db2}, func(k string) string { return env[k] }, io.Discard, io.Discard)
	require.Error(t, err)
	assert.True(t, strings.HasPrefix(err.Error(), "GAAS_ADOPT_ADMIN"), err.Error())
	env["GAAS_ADOPT_ADMIN"] = "true"
	g = start(t, db2, env)
	status, admin = login(g, "root", "a-new-root-password")
	require.Equal(t, http.StatusOK, status)
	_, me = g.json(t, "GET", "/me", admin, "")
	assert.Equal(t, "admin", me["role"])
	g.stop(t)

	for _, s := range []string{"root-password-secret", "a-new-root-password", "squatter-password"} {
		assert.NotContains(t, g.logs.String(), s)
	}
}
