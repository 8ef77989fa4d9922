package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/store"
	"github.com/gaas-io/gaas/store/storetest"
)

func importInto(t *testing.T, db string, args ...string) (string, error) {
	out, _, err := importWithStderr(t, db, args...)
	return out, err
}

// importWithStderr runs import-fastapi of the sample into db and returns
// its stdout and its stderr.
func importWithStderr(t *testing.T, db string, args ...string) (string, string, error) {
	var out, errs bytes.Buffer
	err := run(context.Background(), append([]string{"import-fastapi", "-from", storetest.FastAPISample(t), "-db", db}, args...),
		func(string) string { return "" }, &out, &errs)
	return out.String(), errs.String(), err
}

// databaseTargets make a new database for a subtest, by kind.
var databaseTargets = map[string]func(t *testing.T) string{
	"sqlite":   func(t *testing.T) string { return filepath.Join(t.TempDir(), "gaas.db") },
	"postgres": func(t *testing.T) string { return storetest.PostgresDSN(t) },
}

// Users of the FastAPI version move over with one command and log in with
// their old passwords; a client written for that version keeps working.
func TestImportFastAPIAndOldClients(t *testing.T) {
	for name, target := range databaseTargets {
		t.Run(name, func(t *testing.T) {
			db := target(t)
			out, err := importInto(t, db)
			require.Error(t, err, "alice and Alice collide")
			assert.Contains(t, err.Error(), "nothing was imported")
			assert.Contains(t, err.Error(), "differ only in letter case")

			out, summary, err := importWithStderr(t, db, "-rename", "Alice=alice2")
			require.NoError(t, err)
			assert.Regexp(t, `^import-fastapi: 15 rows written in [0-9.]+ s \([0-9]+ rows/s\)\n$`, summary,
				"stderr, not a terminal here, holds the summary and no progress line")
			assert.Contains(t, out, "imported 6 users and 9 jobs")
			assert.Contains(t, out, `anomaly: user 5 (mallory): role "superuser" is not a role here; imported as user`)
			assert.Contains(t, out, "anomaly: job 7: estimated hours -3 are not positive")

			_, err = importInto(t, db, "-rename", "Alice=alice2")
			require.ErrorIs(t, err, store.ErrImport, "a second import is refused")

			g := start(t, db, nil)
			tokens := map[string]string{}
			users, _ := storetest.FastAPISampleContents(t)
			for _, u := range users {
				name := u.Username
				if name == "Alice" {
					name = "alice2"
				}
				tokens[name] = oldClientLogin(t, g, name, u.Password)
				_, me := g.json(t, "GET", "/me", tokens[name], "")
				want := 0.0
				if u.Quota != nil {
					want = float64(int64(*u.Quota*1000+0.5)) / 1000
				}
				assert.Equal(t, want, me["gpu_hours_quota"], name)
			}
			_, me := g.json(t, "GET", "/me", tokens["mallory"], "")
			assert.Equal(t, "user", me["role"], "superuser is not an admin")

			// An old client: the three original fields, detail from a 400,
			// {"status": ...} to move a job.
			status, body := g.json(t, "POST", "/jobs", tokens["alice"], `{"command": "python train.py", "gpu_type": "NVIDIA A100", "estimated_hours": 1.5}`)
			require.Equal(t, http.StatusCreated, status)
			assert.Equal(t, "PENDING", body["status"])
			status, body = g.json(t, "POST", "/jobs", tokens["alice"], `{"command": "python train.py", "gpu_type": "NVIDIA A100", "estimated_hours": 100}`)
			require.Equal(t, http.StatusBadRequest, status)
			assert.Equal(t, "Not enough credits for GPU type NVIDIA A100: the job costs 100, and 4.7 are available for that type.", body["detail"])
			status, body = g.json(t, "PATCH", "/jobs/4", tokens["root"], `{"status": "REJECTED"}`)
			require.Equal(t, http.StatusOK, status, "%v", body)
			_, me = g.json(t, "GET", "/me", tokens["alice"], "")
			assert.Equal(t, 7.2, me["gpu_hours_quota"], "the imported PENDING job's 2.5 hours came back")
			status, _ = g.json(t, "PATCH", "/jobs/4", tokens["alice"], `{"status": "APPROVED"}`)
			assert.Equal(t, http.StatusForbidden, status)
		})
	}
}

// oldClientLogin logs in exactly as a client of the original does: a form
// post, reading access_token and token_type.
func oldClientLogin(t *testing.T, g *instance, username, password string) string {
	t.Helper()
	resp, err := http.PostForm(g.url+"/login", url.Values{"username": {username}, "password": {password}})
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s logs in with the old password", username)
	var body struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	assert.Equal(t, "bearer", strings.ToLower(body.TokenType))
	return body.AccessToken
}

func TestHealthcheck(t *testing.T) {
	g := start(t, filepath.Join(t.TempDir(), "gaas.db"), nil)
	addr := strings.TrimPrefix(g.url, "http://")
	getenv := func(k string) string { return map[string]string{"GAAS_ADDR": addr}[k] }
	require.NoError(t, run(context.Background(), []string{"healthcheck"}, getenv, io.Discard, io.Discard))
	_, port, _ := strings.Cut(addr, ":")
	require.NoError(t, run(context.Background(), []string{"healthcheck", "-addr", ":" + port}, getenv, io.Discard, io.Discard),
		"an address with no host is this machine")
	g.stop(t)
	err := run(context.Background(), []string{"healthcheck"}, getenv, io.Discard, io.Discard)
	assert.ErrorIs(t, err, syscall.ECONNREFUSED)
	assert.ErrorIs(t, err, errUnhealthy, "gaasd exits 1")
}
