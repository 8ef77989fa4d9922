package server_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSchedules: admins give users and projects recurring allocations,
// which a project's managers may pause and end; the period under way is given at once when
// asked, its allocation names the schedule, and pausing, resuming and
// ending answer the schedule; bad input is a 422 naming its field that
// writes nothing.
func TestSchedules(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			h := newHarness(t, override{dsn: b.dsn(t)})
			s := newLabSite(t, h)
			before := h.balance(s.annID)

			body := fmt.Sprintf(`{"user_id": %d, "amount": 5, "period": "monthly", "starts_at": "2026-01-31T00:00:00+01:00",
				"time_zone": "Europe/Berlin", "leftover": "rollover", "rollover_cap": 2.5, "grant_current": true, "reason": "monthly"}`, s.annID)
			sched := h.post("/schedules", s.admin, body).created(t)
			id := idOf(sched)
			assert.Equal(t, float64(s.annID), sched["user_id"])
			assert.Nil(t, sched["project_id"])
			assert.Equal(t, 5.0, sched["amount"])
			assert.Equal(t, "monthly", sched["period"])
			assert.Equal(t, "Europe/Berlin", sched["time_zone"])
			assert.Equal(t, 2.5, sched["rollover_cap"])
			assert.Equal(t, "2026-01-30T23:00:00Z", sched["starts_at"])
			next, err := time.Parse(time.RFC3339, sched["next_period_start"].(string))
			require.NoError(t, err)
			assert.True(t, next.After(time.Now()), "the period under way was given")
			assert.Equal(t, before+5, h.balance(s.annID))

			var given []map[string]any
			for _, a := range h.get(fmt.Sprintf("/users/%d/allocations", s.annID), s.admin).items(t) {
				if a["schedule_id"] != nil {
					given = append(given, a)
				}
			}
			require.Len(t, given, 1)
			assert.Equal(t, float64(id), given[0]["schedule_id"])
			assert.Equal(t, given[0]["starts_at"], given[0]["period_start"])
			assert.Equal(t, "schedule", given[0]["created_by_system"])
			assert.Equal(t, given[0]["expires_at"], sched["next_period_start"])

			assert.Equal(t, sched, h.get(fmt.Sprintf("/schedules/%d", id), s.admin).ok(t))
			p := h.get(fmt.Sprintf("/schedules/%d", id), s.ann).problem(t, http.StatusNotFound)
			assert.Equal(t, fmt.Sprintf("Schedule %d does not exist.", id), p["detail"])

			// Only admins make schedules, for a project too: a project's
			// manager, who manages them, gives no credits.
			theory := s.theory(t, h)
			for _, project := range []int64{idOf(s.lab), idOf(theory)} {
				p = h.post("/schedules", s.pi, fmt.Sprintf(`{"project_id": %d, "amount": 10, "period": "weekly"}`, project)).problem(t, http.StatusForbidden)
				assert.Contains(t, p["detail"], "Only admins make or resume schedules")
			}
			labSched := h.post("/schedules", s.admin, fmt.Sprintf(`{"project_id": %d, "amount": 10, "period": "weekly"}`, idOf(s.lab))).created(t)
			assert.Equal(t, idOf(s.lab), int64(labSched["project_id"].(float64)))
			assert.Equal(t, sched["created_by"], labSched["created_by"], "the admin")
			h.post("/schedules", s.admin, fmt.Sprintf(`{"project_id": %d, "amount": 1, "period": "daily"}`, idOf(theory))).created(t)
			p = h.post("/schedules", s.pi, fmt.Sprintf(`{"user_id": %d, "amount": 1, "period": "daily"}`, s.annID)).problem(t, http.StatusForbidden)
			assert.Contains(t, p["detail"], "Only admins make or resume schedules")
			h.post("/schedules", s.ann, fmt.Sprintf(`{"project_id": %d, "amount": 1, "period": "daily"}`, idOf(s.lab))).problem(t, http.StatusForbidden)
			p = h.post("/schedules", s.stranger, fmt.Sprintf(`{"project_id": %d, "amount": 1, "period": "daily"}`, idOf(s.lab))).problem(t, http.StatusNotFound)
			assert.Equal(t, fmt.Sprintf("Project %d does not exist.", idOf(s.lab)), p["detail"])
			p = h.post("/schedules", s.admin, `{"user_id": 999999, "amount": 1, "period": "daily"}`).problem(t, http.StatusNotFound)
			assert.Equal(t, "User 999999 does not exist.", p["detail"])

			assert.Len(t, h.get("/schedules", s.admin).items(t), 3)
			assert.Len(t, h.get("/schedules", s.pi).items(t), 2, "the lab's and its sub-project's")
			assert.Len(t, h.get(fmt.Sprintf("/schedules?project_id=%d", idOf(theory)), s.pi).items(t), 1)
			assert.Empty(t, h.get("/schedules", s.ann).items(t))
			h.get(fmt.Sprintf("/schedules?user_id=%d", s.annID), s.pi).problem(t, http.StatusForbidden)
			assert.Len(t, h.get(fmt.Sprintf("/schedules?user_id=%d", s.annID), s.admin).items(t), 1)
			page := h.get("/schedules?limit=2", s.admin).ok(t)
			assert.Len(t, page["items"], 2)
			assert.NotEmpty(t, page["next_cursor"])

			// Pause, resume, end.
			path := fmt.Sprintf("/schedules/%d", idOf(labSched))
			assert.Equal(t, true, h.patch(path, s.pi, `{"paused": true}`).ok(t)["paused"])
			p = h.patch(path, s.pi, `{"paused": false}`).problem(t, http.StatusForbidden)
			assert.Contains(t, p["detail"], "Only admins make or resume schedules")
			assert.Equal(t, false, h.patch(path, s.admin, `{"paused": false}`).ok(t)["paused"])
			h.patch(path, s.ann, `{"ended": true}`).problem(t, http.StatusNotFound)
			ended := h.patch(path, s.pi, `{"ended": true}`).ok(t)
			assert.NotNil(t, ended["ended_at"])
			p = h.patch(path, s.pi, `{"paused": true}`).problem(t, http.StatusConflict)
			assert.Contains(t, p["detail"], "has ended")
			assert.Equal(t, []string{"ended"}, h.patch(path, s.pi, `{"ended": false}`).errorFields(t))
			assert.Equal(t, []string{"paused"}, h.patch(path, s.pi, `{}`).errorFields(t))
			h.patch("/schedules/999999", s.admin, `{"paused": true}`).problem(t, http.StatusNotFound)

			// Bad input names its field and writes nothing.
			for _, c := range []struct{ body, field string }{
				{fmt.Sprintf(`{"user_id": %d, "amount": 1, "period": "hourly"}`, s.annID), "period"},
				{fmt.Sprintf(`{"user_id": %d, "amount": 1}`, s.annID), "period"},
				{fmt.Sprintf(`{"user_id": %d, "period": "daily"}`, s.annID), "amount"},
				{fmt.Sprintf(`{"user_id": %d, "amount": 1, "period": "daily", "time_zone": "Mars/Olympus"}`, s.annID), "time_zone"},
				{fmt.Sprintf(`{"user_id": %d, "amount": 1, "period": "daily", "leftover": "rollover"}`, s.annID), "rollover_cap"},
				{fmt.Sprintf(`{"user_id": %d, "amount": 1, "period": "daily", "rollover_cap": 1}`, s.annID), "rollover_cap"},
				{fmt.Sprintf(`{"user_id": %d, "amount": 1, "period": "daily", "starts_at": "tomorrow"}`, s.annID), "starts_at"},
				{fmt.Sprintf(`{"user_id": %d, "project_id": %d, "amount": 1, "period": "daily"}`, s.annID, idOf(s.lab)), "project_id"},
			} {
				r := h.post("/schedules", s.admin, c.body)
				assert.Contains(t, r.errorFields(t), c.field, "%s", c.body)
			}
			assert.Len(t, h.get("/schedules", s.admin).items(t), 3, "nothing was written")
		})
	}
}

// The schedule routes answer 401 without a token.
func TestScheduleRoutesNeedAToken(t *testing.T) {
	h := newHarness(t)
	for _, r := range []req{
		{method: http.MethodGet, path: "/schedules"},
		{method: http.MethodPost, path: "/schedules", body: `{"user_id": 1, "amount": 1, "period": "daily"}`},
		{method: http.MethodGet, path: "/schedules/1"},
		{method: http.MethodPatch, path: "/schedules/1", body: `{"paused": true}`},
	} {
		h.do(r).problem(t, http.StatusUnauthorized)
	}
}
