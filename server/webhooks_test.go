package server_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/server/webhook"
)

// TestWebhooks: admins register endpoints of every event, a project's
// managers of their project's only, users none; the secret is shown once;
// bad input is a 422 naming its fields; the delivery log and redelivery
// work over HTTP.
func TestWebhooks(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			h := newHarness(t, override{dsn: b.dsn(t)})
			s := newLabSite(t, h)
			var hits atomic.Int64
			recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
			t.Cleanup(recv.Close)

			r := h.post("/webhooks", s.admin, fmt.Sprintf(`{"url": %q, "events": ["job.status_changed"]}`, recv.URL))
			all := r.created(t)
			secret, _ := all["secret"].(string)
			require.True(t, strings.HasPrefix(secret, "whsec_"), "a secret is generated: %v", all["secret"])
			h.secret(strings.TrimPrefix(secret, "whsec_"))
			assert.Equal(t, fmt.Sprintf("/webhooks/%d", idOf(all)), r.header.Get("Location"))
			assert.Nil(t, all["project_id"])
			assert.Equal(t, true, all["enabled"])
			got := h.get(fmt.Sprintf("/webhooks/%d", idOf(all)), s.admin).ok(t)
			assert.NotContains(t, got, "secret", "the secret is shown once")

			// A manager registers for their project, with a secret of their own.
			mine := "whsec_" + strings.Repeat("QUJD", 8)
			lab := h.post("/webhooks", s.pi, fmt.Sprintf(`{"url": "https://hooks.example.com/lab", "events": ["allocation.threshold_crossed", "job.status_changed"], "secret": %q, "project_id": %d}`,
				mine, idOf(s.lab))).created(t)
			assert.Equal(t, mine, lab["secret"])
			assert.Equal(t, float64(idOf(s.lab)), lab["project_id"])
			// Not for another project, nor for every event; a user not at all.
			h.post("/webhooks", s.pi, fmt.Sprintf(`{"url": "https://x.example/", "events": ["job.status_changed"], "project_id": %d}`, idOf(s.dept))).
				problem(t, http.StatusNotFound)
			p := h.post("/webhooks", s.pi, `{"url": "https://x.example/", "events": ["job.status_changed"]}`).problem(t, http.StatusForbidden)
			assert.Contains(t, p["detail"], "project_id")
			h.post("/webhooks", s.ann, fmt.Sprintf(`{"url": "https://x.example/", "events": ["job.status_changed"], "project_id": %d}`, idOf(s.lab))).
				problem(t, http.StatusForbidden)
			h.post("/webhooks", s.stranger, `{"url": "https://x.example/", "events": ["job.status_changed"]}`).problem(t, http.StatusForbidden)

			// What each sees.
			assert.Len(t, h.get("/webhooks", s.admin).ok(t)["items"], 2)
			items := h.get("/webhooks", s.pi).ok(t)["items"].([]any)
			require.Len(t, items, 1)
			assert.Equal(t, lab["id"], items[0].(map[string]any)["id"])
			assert.Empty(t, h.get("/webhooks", s.ann).ok(t)["items"])
			h.get(fmt.Sprintf("/webhooks/%d", idOf(all)), s.pi).problem(t, http.StatusNotFound)
			h.do(req{method: http.MethodPatch, path: fmt.Sprintf("/webhooks/%d", idOf(all)), token: s.pi, body: `{"events": ["allocation.expired"]}`}).
				problem(t, http.StatusNotFound)

			// Bad input names its fields and changes nothing.
			for _, tc := range []struct {
				body   string
				fields []string
			}{
				{`{}`, []string{"url", "events"}},
				{`{"url": "ftp://x.example/", "events": ["job.status_changed"]}`, []string{"url"}},
				{`{"url": "https://user:pw@x.example/", "events": ["job.status_changed"]}`, []string{"url"}},
				{`{"url": "https://x.example/", "events": []}`, []string{"events"}},
				{`{"url": "https://x.example/", "events": ["job.created"]}`, []string{"events"}},
				{`{"url": "https://x.example/", "events": ["job.status_changed", "job.status_changed"]}`, []string{"events"}},
				{`{"url": "https://x.example/", "events": ["job.status_changed"], "secret": "hunter2"}`, []string{"secret"}},
				{`{"url": "https://x.example/", "events": ["job.status_changed"], "secret": "whsec_c2hvcnQ="}`, []string{"secret"}},
				{`{"url": "https://x.example/", "events": ["job.status_changed"], "project_id": 0}`, []string{"project_id"}},
			} {
				assert.Equal(t, tc.fields, h.post("/webhooks", s.admin, tc.body).errorFields(t), tc.body)
			}
			patch := func(id int64, token, body string) response {
				return h.do(req{method: http.MethodPatch, path: fmt.Sprintf("/webhooks/%d", id), token: token, body: body})
			}
			assert.Equal(t, []string{"enabled"}, patch(idOf(all), s.admin, `{"enabled": false}`).errorFields(t))
			assert.Equal(t, []string{"events"}, patch(idOf(all), s.admin, `{"events": ["nope"]}`).errorFields(t))
			assert.Len(t, h.get("/webhooks", s.admin).ok(t)["items"], 2)

			changed := patch(idOf(lab), s.pi, `{"events": ["allocation.expiring"], "url": "https://hooks.example.com/lab2"}`).ok(t)
			assert.Equal(t, []any{"allocation.expiring"}, changed["events"])
			assert.Equal(t, "https://hooks.example.com/lab2", changed["url"])
			patch(idOf(lab), s.pi, `{"enabled": true}`).ok(t)

			// A job's move is delivered; the log says so, and it can be sent again.
			h.post("/jobs", s.ann, projectJob(`"qlab"`, 1)).created(t)
			job := h.post("/jobs", s.ann, jobBody).created(t)
			h.post(fmt.Sprintf("/jobs/%d/cancel", idOf(job)), s.ann, "").ok(t)
			sender := webhook.New(h.db.Webhooks, webhook.Config{AllowPrivate: true})
			n, err := sender.RunOnce(context.Background())
			require.NoError(t, err)
			assert.Equal(t, 1, n, "the admin's endpoint; the lab's is not local and holds no job event now")
			assert.EqualValues(t, 1, hits.Load())
			log := h.get(fmt.Sprintf("/webhooks/%d/deliveries?limit=10", idOf(all)), s.admin).ok(t)
			ds := log["items"].([]any)
			require.Len(t, ds, 1)
			d := ds[0].(map[string]any)
			assert.Equal(t, "delivered", d["status"])
			assert.Equal(t, "job.status_changed", d["event_type"])
			assert.Equal(t, 1.0, d["attempts"])
			assert.Equal(t, 200.0, d["last_status_code"])
			assert.Nil(t, d["last_error"])
			h.get(fmt.Sprintf("/webhooks/%d/deliveries", idOf(all)), s.pi).problem(t, http.StatusNotFound)

			again := h.post(fmt.Sprintf("/webhooks/%d/deliveries/%d/redeliver", idOf(all), idOf(d)), s.admin, "")
			require.Equal(t, http.StatusAccepted, again.status, "%s", again.body)
			assert.Equal(t, "pending", again.json(t)["status"])
			_, err = sender.RunOnce(context.Background())
			require.NoError(t, err)
			assert.EqualValues(t, 2, hits.Load())
			h.post(fmt.Sprintf("/webhooks/%d/deliveries/%d/redeliver", idOf(lab), idOf(d)), s.pi, "").problem(t, http.StatusNotFound)
			assert.Equal(t, []string{"delivery_id"}, h.post(fmt.Sprintf("/webhooks/%d/deliveries/x/redeliver", idOf(all)), s.admin, "").errorFields(t))

			r = h.delete(fmt.Sprintf("/webhooks/%d", idOf(lab)), s.pi)
			require.Equal(t, http.StatusNoContent, r.status, "%s", r.body)
			h.get(fmt.Sprintf("/webhooks/%d", idOf(lab)), s.pi).problem(t, http.StatusNotFound)
			h.delete(fmt.Sprintf("/webhooks/%d", idOf(all)), s.pi).problem(t, http.StatusNotFound)
		})
	}
}
