package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/authn"
	"github.com/gaas-io/gaas/store"
	"github.com/gaas-io/gaas/store/storetest"
)

// Two gaasd replicas, each with its own pool, on one PostgreSQL database,
// started at once on an empty schema: every guarantee holds across them.
func TestReplicasOnPostgres(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	env := map[string]string{"GAAS_ADMIN_USERNAME": "root", "GAAS_ADMIN_PASSWORD": "root-password"}

	replicas := make([]*instance, 3)
	errs := make([]error, len(replicas))
	var wg sync.WaitGroup
	for i := range replicas {
		// One user's requests in flight are unbounded here: the races
		// below put more than 16 of alice's on one replica at once.
		wg.Go(func() { replicas[i], errs[i] = launch(t, dsn, env, "-db-max-conns", "8", "-requests-per-user", "0") })
	}
	wg.Wait()
	require.NoError(t, errors.Join(errs...), "replicas starting together")
	pick := func(i int) *instance { return replicas[i%len(replicas)] }

	status, _ := pick(0).json(t, "POST", "/register", "", `{"username": "alice", "password": "alice-password"}`)
	require.Equal(t, http.StatusCreated, status)
	login := func(g *instance, user, password string) string {
		status, body := g.call(t, "POST", "/login", "", "application/x-www-form-urlencoded",
			url.Values{"username": {user}, "password": {password}}.Encode())
		require.Equal(t, http.StatusOK, status)
		return body["access_token"].(string)
	}
	alice := login(pick(1), "alice", "alice-password")
	admin := login(pick(2), "root", "root-password")
	for i := range replicas {
		status, _ := pick(i).json(t, "GET", "/me", alice, "")
		require.Equal(t, http.StatusOK, status, "every replica verifies a token that another issued: the key is shared")
	}

	t.Run("64_submissions_across_replicas", func(t *testing.T) {
		var (
			mu       sync.Mutex
			statuses = map[int]int{}
			wg       sync.WaitGroup
		)
		for i := range 64 {
			wg.Go(func() {
				status, _, err := pick(i).send("POST", "/jobs", alice, "application/json", fmt.Sprintf(`{"command": "job %d", "gpu_type": "A100", "estimated_hours": 1}`, i))
				if !assert.NoError(t, err) {
					return
				}
				mu.Lock()
				statuses[status]++
				mu.Unlock()
			})
		}
		wg.Wait()
		assert.Equal(t, map[int]int{http.StatusCreated: 10, http.StatusBadRequest: 54}, statuses)
		_, me := pick(0).json(t, "GET", "/me", alice, "")
		assert.Equal(t, 0.0, me["gpu_hours_quota"])
	})

	t.Run("concurrent_rejects_refund_once", func(t *testing.T) {
		_, jobs := pick(0).json(t, "GET", "/jobs?limit=1", alice, "")
		id := jobs["items"].([]any)[0].(map[string]any)["id"]
		var wg sync.WaitGroup
		for i := range 16 {
			wg.Go(func() {
				status, body, err := pick(i).send("PATCH", fmt.Sprintf("/jobs/%v", id), admin, "application/json", `{"status": "REJECTED"}`)
				if assert.NoError(t, err) {
					assert.Equal(t, http.StatusOK, status, "%v", body)
				}
			})
		}
		wg.Wait()
		_, me := pick(1).json(t, "GET", "/me", alice, "")
		assert.Equal(t, 1.0, me["gpu_hours_quota"], "one refund of one hour")
	})

	t.Run("racing_idempotent_retries_make_one_job", func(t *testing.T) {
		ids := make([]any, 16)
		var wg sync.WaitGroup
		for i := range ids {
			wg.Go(func() {
				g := pick(i)
				req, _ := http.NewRequest("POST", g.url+"/jobs", stringsReader(`{"command": "retry", "gpu_type": "A100", "estimated_hours": 0.5}`))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer "+alice)
				req.Header.Set("Idempotency-Key", "same-key")
				status, body := do(t, req)
				assert.Equal(t, http.StatusCreated, status, "%v", body)
				ids[i] = body["id"]
			})
		}
		wg.Wait()
		for _, id := range ids {
			assert.Equal(t, ids[0], id)
		}
		_, me := pick(2).json(t, "GET", "/me", alice, "")
		assert.Equal(t, 0.5, me["gpu_hours_quota"])
	})

	t.Run("revocation_reaches_every_replica", func(t *testing.T) {
		status, _ := pick(0).json(t, "POST", "/register", "", `{"username": "bob", "password": "bob-password"}`)
		require.Equal(t, http.StatusCreated, status)
		bob := login(pick(0), "bob", "bob-password")
		for i := range replicas {
			status, _ := pick(i).json(t, "GET", "/me", bob, "")
			require.Equal(t, http.StatusOK, status)
		}
		req, _ := http.NewRequest("POST", pick(1).url+"/me/logout-all", nil)
		req.Header.Set("Authorization", "Bearer "+bob)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusNoContent, resp.StatusCode)
		since := time.Now() // after the answer, so after the commit
		for i := range replicas {
			// The hot path: an empty submission is 422 while the token
			// works, 401 once it does not. No request sent later than the
			// bound after the revocation may get through.
			for {
				start := time.Now()
				status, _ := pick(i).json(t, "POST", "/jobs", bob, `{}`)
				if status == http.StatusUnauthorized {
					break
				}
				require.Equal(t, http.StatusUnprocessableEntity, status)
				require.False(t, start.After(since.Add(authn.DefaultRevocationBound)),
					"replica %d let a request sent %s after the revocation through", i, start.Sub(since))
				time.Sleep(10 * time.Millisecond)
			}
		}
		fresh := login(pick(2), "bob", "bob-password")
		for i := range replicas {
			status, _ := pick(i).json(t, "GET", "/me", fresh, "")
			assert.Equal(t, http.StatusOK, status, "a token issued after the revocation works on every replica at once")
		}
	})

	db, err := store.Open(context.Background(), dsn, store.Options{})
	require.NoError(t, err)
	defer db.Close()
	report, err := db.Check(context.Background())
	require.NoError(t, err)
	assert.Empty(t, report.Violations)
	assert.Equal(t, 3, report.Users, "the admin was made once, not once per replica")
}
