package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCrashDuringDelivery kills gaasd with SIGKILL while an endpoint holds
// a delivery unanswered, and restarts it: the delivery is made again once
// its claim runs out, under the same webhook-id, and recorded once.
func TestCrashDuringDelivery(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for a delivery's claim to run out")
	}
	var (
		mu    sync.Mutex
		ids   []string
		first = make(chan struct{})
		hold  = make(chan struct{})
	)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		mu.Lock()
		ids = append(ids, r.Header.Get("webhook-id"))
		n := len(ids)
		mu.Unlock()
		if n == 1 {
			close(first)
			select { // the first attempt is never answered
			case <-hold:
			case <-r.Context().Done():
			}
		}
	}))
	t.Cleanup(func() { close(hold); recv.Close() })

	db := filepath.Join(t.TempDir(), "gaas.db")
	args := []string{"-worker-interval", "50ms", "-worker-lease-ttl", "1s", "-webhook-allow-private", "-webhook-timeout", "1s"}
	p := startProcess(t, db, args...)
	_, body, _ := send("POST", p.url+"/login", "", `{"username": "root", "password": "root-password"}`, nil)
	admin := body["access_token"].(string)
	status, hook, _ := send("POST", p.url+"/webhooks", admin, fmt.Sprintf(`{"url": %q, "events": ["job.status_changed"]}`, recv.URL), nil)
	require.Equal(t, http.StatusCreated, status, "%v", hook)
	status, job, _ := send("POST", p.url+"/jobs", admin, `{"command": "train", "gpu_type": "A100", "estimated_hours": 1}`, nil)
	require.Equal(t, http.StatusCreated, status, "%v", job)
	status, _, _ = send("POST", fmt.Sprintf("%s/jobs/%d/cancel", p.url, int64(job["id"].(float64))), admin, "", nil)
	require.Equal(t, http.StatusOK, status)

	select {
	case <-first:
	case <-time.After(10 * time.Second):
		t.Fatal("no delivery was attempted")
	}
	p.kill()
	p = startProcess(t, db, args...)
	defer p.kill()
	_, body, _ = send("POST", p.url+"/login", "", `{"username": "root", "password": "root-password"}`, nil)
	admin = body["access_token"].(string)

	path := fmt.Sprintf("%s/webhooks/%d/deliveries", p.url, int64(hook["id"].(float64)))
	var d map[string]any
	require.Eventually(t, func() bool {
		_, log, _ := send("GET", path, admin, "", nil)
		items, _ := log["items"].([]any)
		if len(items) != 1 {
			return false
		}
		d = items[0].(map[string]any)
		return d["status"] == "delivered"
	}, 30*time.Second, 100*time.Millisecond)
	assert.Equal(t, 2.0, d["attempts"], "the attempt cut off by the kill counts")
	mu.Lock()
	assert.Equal(t, []string{ids[0], ids[0]}, ids, "sent again under the same webhook-id, and once more only")
	mu.Unlock()
	p.kill()
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"check", "-db", db}, func(string) string { return "" }, &out, io.Discard), out.String())
}
