package server_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/store/storetest"
)

// Text the database cannot hold, or that would forge what follows it in a
// log or a terminal, is refused before it reaches the store, with the field
// named, and both backends answer alike.
func TestControlCharactersRefused(t *testing.T) {
	backends := []struct {
		name string
		dsn  func(t *testing.T) string
	}{
		{"sqlite", func(*testing.T) string { return ":memory:" }},
		{"postgres", func(t *testing.T) string { return storetest.PostgresDSN(t) }},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			h := newHarness(t, override{dsn: b.dsn(t)})
			_, admin := h.admin("root")
			aliceID, alice := h.user("alice")
			users := fmt.Sprintf("/users/%d", aliceID)

			t.Run("login", func(t *testing.T) {
				wrong := h.do(req{method: http.MethodPost, path: "/login", contentType: "application/x-www-form-urlencoded",
					body: url.Values{"username": {"alice"}, "password": {"not her password"}}.Encode()})
				want := wrong.problem(t, http.StatusUnauthorized)
				delete(want, "request_id")
				for _, r := range []response{
					h.do(req{method: http.MethodPost, path: "/login", contentType: "application/x-www-form-urlencoded",
						body: "username=ali%00ce&password=pw-alice-secret"}),
					h.post("/login", "", `{"username": "ali\u0000ce", "password": "pw-alice-secret"}`),
					h.post("/login", "", `{"username": "alice\n", "password": "pw-alice-secret"}`),
				} {
					got := r.problem(t, http.StatusUnauthorized)
					delete(got, "request_id")
					assert.Equal(t, want, got, "the same answer as a wrong password")
				}
			})
			t.Run("register", func(t *testing.T) {
				fields := h.post("/register", "", `{"username": "bob\u0000", "password": "correct horse"}`).errorFields(t)
				assert.Equal(t, []string{"username"}, fields)
			})
			t.Run("submit", func(t *testing.T) {
				for _, tc := range []struct{ body, field, detail string }{
					{`{"command": "python\u0000 train.py", "gpu_type": "NVIDIA A100", "estimated_hours": 1}`, "command", "U+0000 at byte 6"},
					{`{"command": "echo \u001b[2J", "gpu_type": "NVIDIA A100", "estimated_hours": 1}`, "command", "U+001B at byte 5"},
					{`{"command": "python train.py", "gpu_type": "A100\u0000", "estimated_hours": 1}`, "gpu_type", "U+0000 at byte 4"},
					{`{"command": "python train.py", "gpu_type": "A100\n", "estimated_hours": 1}`, "gpu_type", "U+000A at byte 4"},
				} {
					r := h.post("/jobs", alice, tc.body)
					require.Equal(t, []string{tc.field}, r.errorFields(t), "%s", r.body)
					assert.Contains(t, string(r.body), tc.detail)
				}
				assert.Equal(t, 10.0, h.balance(aliceID), "nothing was charged")
				assert.Empty(t, h.get("/jobs", alice).json(t)["items"], "no job was made")

				// Tab and newline are a command's own; quotes and backslashes are text.
				command := "#!/bin/sh\n\tpython train.py --name 'a\\'b' \"c\\\\d\""
				r := h.post("/jobs", alice, `{"command": `+string(must(json.Marshal(command)))+`, "gpu_type": "NVIDIA A100", "estimated_hours": 1}`)
				require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
				assert.Equal(t, command, r.json(t)["command"])
			})
			t.Run("grant_reason", func(t *testing.T) {
				before := h.balance(aliceID)
				r := h.post(users+"/quota/grants", admin, `{"hours": 5, "reason": "bonus\u0000"}`)
				assert.Equal(t, []string{"reason"}, r.errorFields(t))
				r = h.do(req{method: http.MethodPut, path: users + "/quota", token: admin, body: `{"gpu_hours_quota": 5, "reason": "\u001b[1Aforged"}`})
				assert.Equal(t, []string{"reason"}, r.errorFields(t))
				assert.Equal(t, before, h.balance(aliceID), "nothing was granted")
				r = h.post(users+"/quota/grants", admin, `{"hours": 1, "reason": "line one\n\tline two"}`)
				require.Equal(t, http.StatusOK, r.status, "%s", r.body)
			})
		})
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
