package server_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/authn"
	"github.com/gaas-io/gaas/server"
	"github.com/gaas-io/gaas/store"
	"github.com/gaas-io/gaas/store/storetest"
)

// backends are the databases the accounting routes are tested on.
var backends = []struct {
	name string
	dsn  func(t *testing.T) string
}{
	{"sqlite", func(*testing.T) string { return ":memory:" }},
	{"postgres", func(t *testing.T) string { return storetest.PostgresDSN(t) }},
}

func (h *harness) patch(path, token, body string) response {
	return h.do(req{method: http.MethodPatch, path: path, token: token, body: body})
}

// items is the list of a {"items": [...]} answer, which must be a 200.
func (r response) items(t *testing.T) []map[string]any {
	t.Helper()
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	var out []map[string]any
	for _, it := range r.json(t)["items"].([]any) {
		out = append(out, it.(map[string]any))
	}
	return out
}

// created is the body of an answer that must be a 201.
func (r response) created(t *testing.T) map[string]any {
	t.Helper()
	require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
	return r.json(t)
}

// ok is the body of an answer that must be a 200.
func (r response) ok(t *testing.T) map[string]any {
	t.Helper()
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	return r.json(t)
}

// TestGPUCatalogue: every user reads the catalogue, only admins change
// it, names match in any letter case, and bad input is a 422 naming its
// field that changes nothing.
func TestGPUCatalogue(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			h := newHarness(t, override{dsn: b.dsn(t)})
			_, admin := h.admin("root")
			_, alice := h.user("alice")

			assert.Empty(t, h.get("/gpu-types", alice).items(t), "an empty catalogue: open mode")
			p := h.post("/gpu-types", alice, `{"name": "NVIDIA A100", "rate": 1}`).problem(t, http.StatusForbidden)
			assert.Equal(t, "Only admins may change the GPU catalogue.", p["detail"])
			h.get("/gpu-types", "").problem(t, http.StatusUnauthorized)

			r := h.post("/gpu-types", admin, `{"name": "NVIDIA A100", "description": "80 GB", "rate": 2.5, "max_gpus_per_job": 8}`)
			require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
			assert.Equal(t, "/gpu-types/NVIDIA%20A100", r.header.Get("Location"))
			assert.JSONEq(t, `{"name": "NVIDIA A100", "description": "80 GB", "rate": 2.5, "max_gpus_per_job": 8, "enabled": true, "auto_approve": false}`, string(r.body))
			h.post("/gpu-types", admin, `{"name": "T4", "rate": 0.5}`).created(t)

			p = h.post("/gpu-types", admin, `{"name": "nvidia a100", "rate": 1}`).problem(t, http.StatusConflict)
			assert.Equal(t, "urn:gaas:problem:conflict", p["type"])

			t.Run("invalid", func(t *testing.T) {
				for _, tc := range []struct{ body, field string }{
					{`{"name": "H100", "rate": 2.0001}`, "rate"},
					{`{"name": "H100", "rate": 0}`, "rate"},
					{`{"name": "H100", "rate": 1000001}`, "rate"},
					{`{"name": "H100", "rate": "2"}`, "rate"},
					{`{"name": "H100"}`, "rate"},
					{`{"rate": 2}`, "name"},
					{`{"name": "H/100", "rate": 2}`, "name"},
					{`{"name": " H100", "rate": 2}`, "name"},
					{`{"name": "H100", "rate": 2, "max_gpus_per_job": 0}`, "max_gpus_per_job"},
					{`{"name": "H100", "rate": 2, "max_gpus_per_job": 1.5}`, "max_gpus_per_job"},
					{`{"name": "H100", "rate": 2, "enabled": "yes"}`, "enabled"},
					{`{"name": "H100", "rate": 2, "retired": true}`, "retired"},
				} {
					assert.Equal(t, []string{tc.field}, h.post("/gpu-types", admin, tc.body).errorFields(t), tc.body)
				}
				p := h.post("/gpu-types", admin, `{"name": "H100", "rate": 2.0001}`).problem(t, http.StatusUnprocessableEntity)
				assert.Contains(t, p["detail"], "the nearest amounts are 2 and 2.001")
				assert.Equal(t, []string{"rate"}, h.patch("/gpu-types/T4", admin, `{"rate": 0.0001}`).errorFields(t))
				assert.Equal(t, []string{"name"}, h.patch("/gpu-types/T4", admin, `{"name": "T5"}`).errorFields(t))
				assert.Equal(t, []string{"retired"}, h.get("/gpu-types?retired=maybe", alice).errorFields(t))
				assert.Equal(t, []string{"status"}, h.get("/gpu-types?status=x", alice).errorFields(t))
				assert.Len(t, h.get("/gpu-types?retired=true", admin).items(t), 2, "nothing was written")
			})

			t.Run("update", func(t *testing.T) {
				h.patch("/gpu-types/T4", alice, `{"rate": 9}`).problem(t, http.StatusForbidden)
				p := h.patch("/gpu-types/H100", admin, `{"rate": 9}`).problem(t, http.StatusNotFound)
				assert.Equal(t, `The GPU catalogue has no type named "H100".`, p["detail"])

				got := h.patch("/gpu-types/nvidia%20A100", admin, `{"rate": 3, "max_gpus_per_job": null}`).ok(t)
				assert.Equal(t, map[string]any{"name": "NVIDIA A100", "description": "80 GB", "rate": 3.0, "max_gpus_per_job": nil, "enabled": true, "auto_approve": false}, got)
				got = h.patch("/gpu-types/t4", admin, `{"enabled": false, "description": "retired"}`).ok(t)
				assert.Equal(t, false, got["enabled"])
				assert.Equal(t, 0.5, got["rate"], "what is not given stays")

				names := func(list []map[string]any) (out []string) {
					for _, it := range list {
						out = append(out, it["name"].(string))
					}
					return out
				}
				assert.Equal(t, []string{"NVIDIA A100"}, names(h.get("/gpu-types", alice).items(t)))
				assert.Equal(t, []string{"NVIDIA A100", "T4"}, names(h.get("/gpu-types?retired=true", alice).items(t)))
				assert.Equal(t, []string{"NVIDIA A100"}, names(h.get("/gpu-types?retired=false", alice).items(t)))
			})
		})
	}
}

// TestJobsPricedByCatalogue: a client of the original three fields gets
// their original answer, with the cost beside it; once the catalogue has
// types, a job is priced by its type's rate and GPUs, and an unknown type
// is a 422 that lists the known ones.
func TestJobsPricedByCatalogue(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			h := newHarness(t, override{dsn: b.dsn(t)})
			_, admin := h.admin("root")
			aliceID, alice := h.user("alice")

			// Open mode: the original request, the original answer.
			job := h.post("/jobs", alice, jobBody).created(t)
			for k, want := range map[string]any{"id": 1.0, "user_id": float64(aliceID), "command": "python train.py",
				"gpu_type": "NVIDIA A100", "estimated_hours": 2.5, "actual_hours": nil, "status": "PENDING"} {
				assert.Equal(t, want, job[k], k)
			}
			assert.Contains(t, job, "created_at")
			assert.Contains(t, job, "updated_at")
			assert.Equal(t, 1.0, job["gpu_count"])
			assert.Equal(t, 1.0, job["rate"])
			assert.Equal(t, 2.5, job["cost"])
			allocs := h.get(fmt.Sprintf("/users/%d/allocations", aliceID), alice).items(t)
			require.Len(t, allocs, 1)
			assert.Equal(t, []any{map[string]any{"allocation_id": allocs[0]["id"], "credits": 2.5}}, job["draws"])
			assert.Equal(t, 7.5, h.balance(aliceID))
			// Two GPUs at rate 1.
			job = h.post("/jobs", alice, `{"command": "x", "gpu_type": "anything", "estimated_hours": 0.5, "gpu_count": 2}`).created(t)
			assert.Equal(t, 1.0, job["cost"])
			assert.Equal(t, 6.5, h.balance(aliceID))

			h.post("/gpu-types", admin, `{"name": "NVIDIA A100", "rate": 2, "max_gpus_per_job": 4}`).created(t)
			h.post("/gpu-types", admin, `{"name": "Odd", "rate": 1.001}`).created(t)

			t.Run("priced", func(t *testing.T) {
				job := h.post("/jobs", alice, `{"command": "x", "gpu_type": "nvidia a100", "estimated_hours": 1, "gpu_count": 2}`).created(t)
				assert.Equal(t, "NVIDIA A100", job["gpu_type"], "the catalogue's spelling")
				assert.Equal(t, 2.0, job["gpu_count"])
				assert.Equal(t, 2.0, job["rate"])
				assert.Equal(t, 4.0, job["cost"])
				assert.Equal(t, 2.5, h.balance(aliceID))
				// 0.001 hours at rate 1.001 is 0.001001 credits: rounded up, once.
				job = h.post("/jobs", alice, `{"command": "x", "gpu_type": "Odd", "estimated_hours": 0.001}`).created(t)
				assert.Equal(t, 0.002, job["cost"])
				assert.Equal(t, 2.498, h.balance(aliceID))
			})

			t.Run("refused", func(t *testing.T) {
				r := h.post("/jobs", alice, `{"command": "x", "gpu_type": "H100", "estimated_hours": 1}`)
				assert.Equal(t, []string{"gpu_type"}, r.errorFields(t))
				assert.Contains(t, r.problem(t, http.StatusUnprocessableEntity)["detail"], "NVIDIA A100")
				for _, body := range []string{
					`{"command": "x", "gpu_type": "NVIDIA A100", "estimated_hours": 1, "gpu_count": 5}`,
					`{"command": "x", "gpu_type": "NVIDIA A100", "estimated_hours": 1, "gpu_count": 0}`,
					`{"command": "x", "gpu_type": "NVIDIA A100", "estimated_hours": 1, "gpu_count": 1.5}`,
					`{"command": "x", "gpu_type": "NVIDIA A100", "estimated_hours": 1, "gpu_count": "2"}`,
				} {
					assert.Equal(t, []string{"gpu_count"}, h.post("/jobs", alice, body).errorFields(t), body)
				}
				p := h.post("/jobs", alice, `{"command": "x", "gpu_type": "NVIDIA A100", "estimated_hours": 1, "gpu_count": 2}`).problem(t, http.StatusBadRequest)
				assert.Equal(t, "urn:gaas:problem:quota-exceeded", p["type"])
				assert.Equal(t, "Not enough credits for GPU type NVIDIA A100: the job costs 4, and 2.498 are available for that type.", p["detail"])
				assert.Equal(t, 2.498, h.balance(aliceID), "nothing was written")
			})

			t.Run("settled_at_its_rate", func(t *testing.T) {
				// Job 3 (2 GPUs of NVIDIA A100 at rate 2, 4 credits) runs a
				// quarter of an hour after its type's rate changed: it is
				// charged 0.25 × 2 × 2 = 1, and 3 come back.
				h.patch("/gpu-types/NVIDIA%20A100", admin, `{"rate": 10}`).ok(t)
				for _, body := range []string{`{"status": "APPROVED"}`, `{"status": "RUNNING"}`, `{"status": "COMPLETED", "actual_hours": 0.25}`} {
					job = h.patch("/jobs/3", admin, body).ok(t)
				}
				assert.Equal(t, 2.0, job["rate"])
				assert.Equal(t, 4.0, job["cost"])
				assert.Equal(t, 5.498, h.balance(aliceID))
				assert.Equal(t, 5.498, h.get("/me", alice).ok(t)["gpu_hours_quota"])
			})
		})
	}
}

// TestAllocations: admins give, shorten and end allocations; a user reads
// their own and no one else's; a job draws from the narrowest first, and a
// cancelled one gives back to where it drew from.
func TestAllocations(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			h := newHarness(t, override{dsn: b.dsn(t)})
			rootID, admin := h.admin("root")
			aliceID, alice := h.user("alice")
			_, bob := h.user("bob")
			list := fmt.Sprintf("/users/%d/allocations", aliceID)

			mine := h.get(list, alice).items(t)
			require.Len(t, mine, 1)
			def := mine[0]
			for k, want := range map[string]any{"amount": 10.0, "remaining": 10.0, "gpu_types": nil, "expires_at": nil,
				"created_by": nil, "created_by_system": "registration", "default": true, "active": true} {
				assert.Equal(t, want, def[k], k)
			}
			assert.Equal(t, mine, h.get(list, admin).items(t))
			p := h.get(list, bob).problem(t, http.StatusNotFound)
			assert.Equal(t, fmt.Sprintf("User %d does not exist.", aliceID), p["detail"])
			h.get("/users/999/allocations", admin).problem(t, http.StatusNotFound)

			soon := time.Now().Add(time.Hour).UTC().Format(time.RFC3339Nano)
			p = h.post(list, alice, `{"amount": 100}`).problem(t, http.StatusForbidden)
			assert.Equal(t, "Only admins may give allocations.", p["detail"])
			h.post("/users/999/allocations", admin, `{"amount": 1}`).problem(t, http.StatusNotFound)

			t.Run("invalid", func(t *testing.T) {
				for _, tc := range []struct{ body, field string }{
					{`{"amount": 0}`, "amount"},
					{`{"amount": -1}`, "amount"},
					{`{"amount": 0.0001}`, "amount"},
					{`{"amount": "5"}`, "amount"},
					{`{"reason": "x"}`, "amount"},
					{`{"amount": 5, "gpu_types": []}`, "gpu_types"},
					{`{"amount": 5, "gpu_types": "A100"}`, "gpu_types"},
					{`{"amount": 5, "gpu_types": ["A100", "a100"]}`, "gpu_types"},
					{`{"amount": 5, "expires_at": "tomorrow"}`, "expires_at"},
					{`{"amount": 5, "starts_at": 5}`, "starts_at"},
					{`{"amount": 5, "starts_at": "2027-01-02T00:00:00Z", "expires_at": "2027-01-01T00:00:00Z"}`, "expires_at"},
					{`{"amount": 5, "remaining": 5}`, "remaining"},
				} {
					assert.Equal(t, []string{tc.field}, h.post(list, admin, tc.body).errorFields(t), tc.body)
				}
				assert.Len(t, h.get(list+"?ended=true", admin).items(t), 1, "nothing was written")
				assert.Equal(t, []string{"ended"}, h.get(list+"?ended=yes", admin).errorFields(t))
			})

			a := h.post(list, admin, `{"amount": 5, "gpu_types": ["NVIDIA A100"], "expires_at": "`+soon+`", "reason": "Q1"}`).created(t)
			for k, want := range map[string]any{"amount": 5.0, "remaining": 5.0, "gpu_types": []any{"NVIDIA A100"}, "reason": "Q1",
				"created_by": float64(rootID), "created_by_system": nil, "default": false, "active": true} {
				assert.Equal(t, want, a[k], k)
			}
			expires, err := time.Parse(time.RFC3339, a["expires_at"].(string))
			require.NoError(t, err)
			wantExpiry, _ := time.Parse(time.RFC3339Nano, soon)
			assert.WithinDuration(t, wantExpiry, expires, time.Microsecond)
			scoped := a["id"]
			assert.Equal(t, 15.0, h.get("/me", alice).ok(t)["gpu_hours_quota"], "the balance is every active allocation")

			t.Run("draws", func(t *testing.T) {
				job := h.post("/jobs", alice, `{"command": "x", "gpu_type": "NVIDIA A100", "estimated_hours": 2}`).created(t)
				assert.Equal(t, []any{map[string]any{"allocation_id": scoped, "credits": 2.0}}, job["draws"], "the narrowest first")
				job = h.post("/jobs", alice, `{"command": "x", "gpu_type": "NVIDIA A100", "estimated_hours": 4}`).created(t)
				assert.Equal(t, []any{
					map[string]any{"allocation_id": scoped, "credits": 3.0},
					map[string]any{"allocation_id": def["id"], "credits": 1.0},
				}, job["draws"])
				job = h.post("/jobs", alice, `{"command": "x", "gpu_type": "T4", "estimated_hours": 1}`).created(t)
				assert.Equal(t, []any{map[string]any{"allocation_id": def["id"], "credits": 1.0}}, job["draws"], "not from an allocation of another type")
				p := h.post("/jobs", alice, `{"command": "x", "gpu_type": "T4", "estimated_hours": 9}`).problem(t, http.StatusBadRequest)
				assert.Equal(t, "Not enough credits for GPU type T4: the job costs 9, and 8 are available for that type.", p["detail"])

				entries := h.get(fmt.Sprintf("/users/%d/ledger", aliceID), alice).items(t)
				last := entries[len(entries)-1]
				assert.Equal(t, "charge", last["kind"])
				assert.Equal(t, def["id"], last["allocation_id"])
				assert.Equal(t, 8.0, last["allocation_remaining"])
				assert.Equal(t, 8.0, last["balance_hours"])
				assert.NotNil(t, last["account_id"])

				h.post("/jobs/2/cancel", alice, "").ok(t)
				got := h.get(list, alice).items(t)
				require.Len(t, got, 2)
				assert.Equal(t, 9.0, got[0]["remaining"], "the default allocation got its 1 back")
				assert.Equal(t, 3.0, got[1]["remaining"], "the scoped one its 3")
			})

			t.Run("quota_acts_on_the_default", func(t *testing.T) {
				u := h.put(fmt.Sprintf("/users/%d/quota", aliceID), admin, `{"gpu_hours_quota": 20}`).ok(t)
				assert.Equal(t, 23.0, u["gpu_hours_quota"], "the default's 20 and the scoped one's 3")
				u = h.post(fmt.Sprintf("/users/%d/quota/grants", aliceID), admin, `{"hours": -20}`).ok(t)
				assert.Equal(t, 3.0, u["gpu_hours_quota"])
				h.post(fmt.Sprintf("/users/%d/quota/grants", aliceID), admin, `{"hours": -1}`).problem(t, http.StatusBadRequest)
				h.post(fmt.Sprintf("/users/%d/quota/grants", aliceID), admin, `{"hours": 10}`).ok(t)
			})

			t.Run("update", func(t *testing.T) {
				path := fmt.Sprintf("/allocations/%v", scoped)
				p := h.patch(path, alice, `{"end": true}`).problem(t, http.StatusForbidden)
				assert.Equal(t, "Only admins may change allocations.", p["detail"])
				h.patch("/allocations/999", alice, `{"end": true}`).problem(t, http.StatusForbidden)
				p = h.patch("/allocations/999", admin, `{"end": true}`).problem(t, http.StatusNotFound)
				assert.Equal(t, "Allocation 999 does not exist.", p["detail"])
				for _, tc := range []struct{ body, field string }{
					{`{}`, "expires_at"},
					{`{"end": false}`, "expires_at"},
					{`{"expires_at": "soon"}`, "expires_at"},
					{`{"end": true, "expires_at": "` + soon + `"}`, "end"},
					{`{"end": "yes"}`, "end"},
					{`{"amount": 1}`, "amount"},
				} {
					assert.Equal(t, []string{tc.field}, h.patch(path, admin, tc.body).errorFields(t), tc.body)
				}

				sooner := time.Now().Add(30 * time.Minute).UTC().Truncate(time.Second)
				got := h.patch(path, admin, `{"expires_at": "`+sooner.Format(time.RFC3339)+`", "reason": "shortened"}`).ok(t)
				assert.Equal(t, sooner.Format(time.RFC3339), got["expires_at"])
				assert.Equal(t, true, got["active"])

				got = h.patch(path, admin, `{"end": true, "reason": "project over"}`).ok(t)
				assert.Equal(t, false, got["active"])
				assert.Equal(t, 0.0, got["remaining"])
				entries := h.get(fmt.Sprintf("/users/%d/ledger", aliceID), admin).items(t)
				last := entries[len(entries)-1]
				assert.Equal(t, "revoke", last["kind"])
				assert.Equal(t, -3.0, last["delta_hours"])
				assert.Equal(t, scoped, last["allocation_id"])
				assert.Equal(t, 0.0, last["allocation_remaining"])

				p = h.patch(path, admin, `{"end": true}`).problem(t, http.StatusConflict)
				assert.Contains(t, p["detail"], "it has ended already")
				p = h.patch(fmt.Sprintf("/allocations/%v", def["id"]), admin, `{"end": true}`).problem(t, http.StatusConflict)
				assert.Contains(t, p["detail"], "default allocation")

				assert.Len(t, h.get(list, alice).items(t), 1, "ended allocations are left out")
				assert.Len(t, h.get(list+"?ended=true", alice).items(t), 2)
				assert.Equal(t, 10.0, h.balance(aliceID))
			})

			t.Run("expiry_is_exact", func(t *testing.T) {
				// An allocation that ends in a moment pays until then, and
				// not at all from then on, with nothing run in between.
				end := time.Now().Add(time.Second)
				a := h.post(list, admin, `{"amount": 50, "gpu_types": ["H100"], "expires_at": "`+end.UTC().Format(time.RFC3339Nano)+`"}`).created(t)
				h.post("/jobs", alice, `{"command": "x", "gpu_type": "H100", "estimated_hours": 40}`).created(t)
				time.Sleep(time.Until(end) + 10*time.Millisecond)
				p := h.post("/jobs", alice, `{"command": "x", "gpu_type": "H100", "estimated_hours": 15}`).problem(t, http.StatusBadRequest)
				assert.Contains(t, p["detail"], "the job costs 15, and 10 are available")
				got := h.get(list+"?ended=true", alice).items(t)
				for _, it := range got {
					if it["id"] == a["id"] {
						assert.Equal(t, false, it["active"])
					}
				}
				assert.Equal(t, 10.0, h.get("/me", alice).ok(t)["gpu_hours_quota"])
			})

			t.Run("paged", func(t *testing.T) {
				all := h.get(list+"?ended=true", admin).items(t)
				require.GreaterOrEqual(t, len(all), 3)
				var got []any
				for path := list + "?ended=true&limit=2"; ; {
					page := h.get(path, admin).ok(t)
					items := page["items"].([]any)
					assert.LessOrEqual(t, len(items), 2)
					for _, it := range items {
						got = append(got, it.(map[string]any)["id"])
					}
					next, _ := page["next_cursor"].(string)
					if next == "" {
						break
					}
					path = list + "?ended=true&limit=2&cursor=" + next
				}
				var want []any
				for _, it := range all {
					want = append(want, it["id"])
				}
				assert.Equal(t, want, got, "the pages hold every allocation once, in order")
				assert.Equal(t, []string{"limit"}, h.get(list+"?limit=0", admin).errorFields(t))
			})
		})
	}
}

// TestAccountingRoutesNeedAToken: every new route is 401 without one.
func TestAccountingRoutesNeedAToken(t *testing.T) {
	h := newHarness(t)
	h.user("alice")
	for _, r := range []req{
		{method: http.MethodGet, path: "/gpu-types"},
		{method: http.MethodPost, path: "/gpu-types", body: `{"name": "A100", "rate": 1}`},
		{method: http.MethodPatch, path: "/gpu-types/A100", body: `{"rate": 1}`},
		{method: http.MethodGet, path: "/users/1/allocations"},
		{method: http.MethodPost, path: "/users/1/allocations", body: `{"amount": 1}`},
		{method: http.MethodPatch, path: "/allocations/1", body: `{"end": true}`},
	} {
		h.do(r).problem(t, http.StatusUnauthorized)
	}
}

// TestNewServerNeedsEveryService: a missing service is a panic at start-up
// that names it, not a nil dereference at the first request that needs it.
func TestNewServerNeedsEveryService(t *testing.T) {
	db, err := store.Open(context.Background(), ":memory:", store.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	tokens, err := authn.NewTokens(signingKey, time.Minute, nil)
	require.NoError(t, err)
	logger := slog.New(slog.NewJSONHandler(io.Discard, nil))
	svc := servicesOf(authn.NewAuthenticator(db.Accounts, authn.Hasher{Iterations: 1000}, tokens), db)
	assert.NotPanics(t, func() { server.NewServer(logger, server.Config{}, svc) })
	svc.Allocations = nil
	assert.PanicsWithValue(t, "server: NewServer: Services.Allocations is nil; every service is required",
		func() { server.NewServer(logger, server.Config{}, svc) })
}
