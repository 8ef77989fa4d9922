package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// gaasd delivers webhooks beside the API: a job's move reaches a
// receiver on its own, signed; without -webhook-allow-private a loopback
// endpoint is refused, and the delivery log says why.
func TestWebhooksDelivered(t *testing.T) {
	var (
		mu   sync.Mutex
		got  []string
		sigs []string
	)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, string(b))
		sigs = append(sigs, r.Header.Get("webhook-signature"))
		mu.Unlock()
	}))
	t.Cleanup(recv.Close)
	received := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(got)
	}
	env := map[string]string{"GAAS_ADMIN_USERNAME": "root", "GAAS_ADMIN_PASSWORD": "root-password-never-logged"}
	for _, allow := range []bool{true, false} {
		t.Run(fmt.Sprintf("allow_private=%t", allow), func(t *testing.T) {
			before := received()
			g := start(t, filepath.Join(t.TempDir(), "gaas.db"), env, "-worker-interval", "20ms", fmt.Sprintf("-webhook-allow-private=%t", allow))
			_, body := g.json(t, "POST", "/login", "", `{"username": "root", "password": "root-password-never-logged"}`)
			admin := body["access_token"].(string)
			status, hook := g.json(t, "POST", "/webhooks", admin, fmt.Sprintf(`{"url": %q, "events": ["job.status_changed"]}`, recv.URL))
			require.Equal(t, http.StatusCreated, status, "%v", hook)
			status, job := g.json(t, "POST", "/jobs", admin, `{"command": "train", "gpu_type": "A100", "estimated_hours": 1}`)
			require.Equal(t, http.StatusCreated, status, "%v", job)
			status, _ = g.json(t, "POST", fmt.Sprintf("/jobs/%d/cancel", int64(job["id"].(float64))), admin, "")
			require.Equal(t, http.StatusOK, status)

			path := fmt.Sprintf("/webhooks/%d/deliveries", int64(hook["id"].(float64)))
			var d map[string]any
			require.Eventually(t, func() bool {
				_, log := g.json(t, "GET", path, admin, "")
				items, _ := log["items"].([]any)
				if len(items) == 0 {
					return false
				}
				d = items[0].(map[string]any)
				return d["status"] == "delivered" || d["last_error"] != nil
			}, 10*time.Second, 20*time.Millisecond)
			if !allow {
				assert.Equal(t, "pending", d["status"])
				assert.Contains(t, d["last_error"], "private or loopback")
				assert.Equal(t, before, received())
				return
			}
			assert.Equal(t, "delivered", d["status"])
			require.Equal(t, before+1, received())
			mu.Lock()
			defer mu.Unlock()
			var env struct{ Type string }
			require.NoError(t, json.Unmarshal([]byte(got[before]), &env))
			assert.Equal(t, "job.status_changed", env.Type)
			assert.True(t, strings.HasPrefix(sigs[before], "v1,"))
			assert.NotContains(t, g.logs.String(), strings.TrimPrefix(hook["secret"].(string), "whsec_"))
		})
	}
}

func TestThresholdsFlag(t *testing.T) {
	for in, want := range map[string][]int{"80,100": {80, 100}, "none": {}, " 50 ": {50}} {
		got, err := parseThresholds(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, bad := range []string{"", "x", "100,80", "0", "101"} {
		_, err := parseThresholds(bad)
		assert.Error(t, err, bad)
	}
}
