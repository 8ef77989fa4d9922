package server_test

import (
	"encoding/csv"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestUsageReport: a report over HTTP, as JSON and CSV, with what each
// caller may see of it, and its bad queries named.
func TestUsageReport(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			h := newHarness(t, override{dsn: b.dsn(t)})
			s := newLabSite(t, h)
			// ann runs 2 hours on the lab and is charged for 1.5; bob
			// cancels a job of his own account; the stranger's waits.
			ann := h.post("/jobs", s.ann, projectJob(`"qlab"`, 2)).created(t)
			for _, body := range []string{`{"status": "APPROVED"}`, `{"status": "RUNNING"}`, `{"status": "COMPLETED", "actual_hours": 1.5}`} {
				h.patch(fmt.Sprintf("/jobs/%d", idOf(ann)), s.admin, body).ok(t)
			}
			bob := h.post("/jobs", s.bob, `{"command": "x", "gpu_type": "A100", "estimated_hours": 2.5, "gpu_count": 2}`).created(t)
			h.post(fmt.Sprintf("/jobs/%d/cancel", idOf(bob)), s.bob, "").ok(t)
			h.post("/jobs", s.stranger, `{"command": "x", "gpu_type": "A100", "estimated_hours": 1}`).created(t)
			labID := idOf(s.lab)

			r := h.get("/reports/usage?group_by=user,project", s.admin).ok(t)
			assert.Nil(t, r["period"])
			assert.Equal(t, []any{"user", "project"}, r["group_by"])
			jobs := func(completed, cancelled int) map[string]any {
				return map[string]any{"COMPLETED": float64(completed), "FAILED": 0.0, "REJECTED": 0.0, "CANCELLED": float64(cancelled)}
			}
			row := func(user int64, name string, project any, projectName any, hours, charged, returned float64, j map[string]any) map[string]any {
				return map[string]any{"period_start": nil, "user_id": float64(user), "username": name, "project_id": project, "project": projectName,
					"gpu_type": nil, "gpu_hours": hours, "charged": charged, "returned": returned, "jobs": j}
			}
			assert.Equal(t, []any{
				row(s.annID, "ann", float64(labID), "qlab", 1.5, 2, 0.5, jobs(1, 0)),
				row(s.bobID, "bob", nil, nil, 0, 5, 5, jobs(0, 1)),
				row(s.strangerID, "stranger", nil, nil, 0, 1, 0, jobs(0, 0)),
			}, r["rows"])
			assert.Equal(t, map[string]any{"period_start": nil, "user_id": nil, "username": nil, "project_id": nil, "project": nil, "gpu_type": nil,
				"gpu_hours": 1.5, "charged": 8.0, "returned": 5.5, "jobs": jobs(1, 1)}, r["total"])

			// By day, from a date: one row, today's.
			today := time.Now().UTC().Format(time.DateOnly)
			r = h.get("/reports/usage?period=day&group_by=gpu_type&from="+today, s.admin).ok(t)
			rows := r["rows"].([]any)
			require.Len(t, rows, 1)
			assert.Equal(t, today+"T00:00:00Z", rows[0].(map[string]any)["period_start"])
			assert.Equal(t, "A100", rows[0].(map[string]any)["gpu_type"])
			assert.Equal(t, today+"T00:00:00Z", r["from"])

			// CSV, asked either way.
			for _, ask := range []req{
				{method: http.MethodGet, path: "/reports/usage?period=day&group_by=user&format=csv", token: s.admin},
				{method: http.MethodGet, path: "/reports/usage?period=day&group_by=user", token: s.admin, header: map[string]string{"Accept": "text/csv, application/json;q=0.5"}},
			} {
				got := h.do(ask)
				require.Equal(t, http.StatusOK, got.status, "%s", got.body)
				assert.Equal(t, "text/csv; charset=utf-8", got.header.Get("Content-Type"))
				assert.Regexp(t, `^attachment; filename=usage-\d{8}T\d{6}Z-\d{8}T\d{6}Z\.csv$`, got.header.Get("Content-Disposition"))
				records, err := csv.NewReader(strings.NewReader(string(got.body))).ReadAll()
				require.NoError(t, err)
				assert.Equal(t, [][]string{
					{"period_start", "user_id", "username", "gpu_hours", "charged", "returned", "completed", "failed", "rejected", "cancelled"},
					{today, fmt.Sprint(s.annID), "ann", "1.5", "2", "0.5", "1", "0", "0", "0"},
					{today, fmt.Sprint(s.bobID), "bob", "0", "5", "5", "0", "0", "0", "1"},
					{today, fmt.Sprint(s.strangerID), "stranger", "0", "1", "0", "0", "0", "0", "0"},
				}, records)
			}
			// JSON when Accept prefers it, or says nothing of CSV.
			got := h.do(req{method: http.MethodGet, path: "/reports/usage", token: s.admin, header: map[string]string{"Accept": "application/json, text/csv"}})
			assert.Equal(t, "application/json", got.header.Get("Content-Type"))

			// Who sees what: the lab's manager its jobs and their own (none),
			// a member and the stranger their own.
			users := func(token, query string) []float64 {
				var ids []float64
				for _, r := range h.get("/reports/usage?group_by=user"+query, token).ok(t)["rows"].([]any) {
					ids = append(ids, r.(map[string]any)["user_id"].(float64))
				}
				return ids
			}
			assert.Equal(t, []float64{float64(s.annID)}, users(s.pi, ""))
			assert.Equal(t, []float64{float64(s.annID)}, users(s.pi, fmt.Sprintf("&project_id=%d", labID)))
			assert.Equal(t, []float64{float64(s.annID)}, users(s.pi, fmt.Sprintf("&user_id=%d", s.annID)))
			assert.Empty(t, users(s.pi, fmt.Sprintf("&user_id=%d", s.bobID)), "a manager names anyone, and sees only their projects' jobs")
			assert.Equal(t, []float64{float64(s.bobID)}, users(s.bob, ""))
			assert.Equal(t, []float64{float64(s.strangerID)}, users(s.stranger, ""))
			assert.Empty(t, users(s.bob, fmt.Sprintf("&project_id=%d", labID)), "a member sees their own jobs in the project")
			assert.Equal(t, []float64{float64(s.annID), float64(s.bobID), float64(s.strangerID)}, users(s.admin, ""))

			h.get(fmt.Sprintf("/reports/usage?user_id=%d", s.annID), s.stranger).problem(t, http.StatusForbidden)
			h.get(fmt.Sprintf("/reports/usage?user_id=%d", s.annID), s.bob).problem(t, http.StatusForbidden)
			h.get(fmt.Sprintf("/reports/usage?project_id=%d", labID), s.stranger).problem(t, http.StatusNotFound)
			h.get(fmt.Sprintf("/reports/usage?project_id=%d", idOf(s.dept)), s.pi).problem(t, http.StatusNotFound)
			h.get("/reports/usage?project_id=999", s.admin).problem(t, http.StatusNotFound)
			h.get("/reports/usage", "").problem(t, http.StatusUnauthorized)

			for query, field := range map[string]string{
				"period=year":                              "period",
				"group_by=host":                            "group_by",
				"group_by=user,user":                       "group_by",
				"group_by=user,":                           "group_by",
				"from=yesterday":                           "from",
				"to=2026-13-01":                            "to",
				"from=2026-02-01&to=2026-01-01":            "to",
				"from=2000-01-01&to=2026-01-01&period=day": "period",
				"user_id=0":                                "user_id",
				"project_id=x":                             "project_id",
				"format=xml":                               "format",
				"limit=10":                                 "limit",
			} {
				assert.Equal(t, []string{field}, h.get("/reports/usage?"+query, s.admin).errorFields(t), query)
			}
		})
	}
}

// TestUsageReportTooManyRows: a report of more rows than the store allows
// is a 422 problem naming group_by and saying what to narrow, as JSON and
// as CSV; the same range with fewer groups is answered.
func TestUsageReportTooManyRows(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			h := newHarness(t, override{dsn: b.dsn(t), maxReportRows: 2})
			s := newLabSite(t, h)
			for _, token := range []string{s.ann, s.bob, s.stranger} {
				h.post("/jobs", token, `{"command": "x", "gpu_type": "A100", "estimated_hours": 1}`).created(t)
			}
			for _, query := range []string{"group_by=user", "group_by=user&format=csv"} {
				r := h.get("/reports/usage?"+query, s.admin)
				p := r.problem(t, http.StatusUnprocessableEntity)
				assert.Equal(t, []string{"group_by"}, r.errorFields(t), query)
				assert.Equal(t, "Invalid request: group_by with this range and period gives more than 2 rows; narrow the range from and to,"+
					" choose a longer period, or group by fewer of user, project and gpu_type.", p["detail"], query)
			}
			rows := h.get("/reports/usage?group_by=gpu_type", s.admin).ok(t)["rows"].([]any)
			assert.Len(t, rows, 1)
			rows = h.get("/reports/usage?group_by=user", s.ann).ok(t)["rows"].([]any)
			assert.Len(t, rows, 1, "ann sees her own row alone")
		})
	}
}
