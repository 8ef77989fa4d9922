package server

import (
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gaas-io/gaas/gaas"
)

// DefaultReportRange is the range of a usage report whose query names no
// start: the 30 days before its end.
const DefaultReportRange = 30 * 24 * time.Hour

// usageRowJSON is a row of a usage report, or its total. What the report
// is not cut or grouped by is null, as is the project of the users' own
// accounts.
type usageRowJSON struct {
	PeriodStart *time.Time             `json:"period_start"`
	UserID      *int64                 `json:"user_id"`
	Username    *string                `json:"username"`
	ProjectID   *int64                 `json:"project_id"`
	Project     *string                `json:"project"`
	GPUType     *string                `json:"gpu_type"`
	GPUHours    hoursJSON              `json:"gpu_hours"`
	Charged     creditsJSON            `json:"charged"`
	Returned    creditsJSON            `json:"returned"`
	Jobs        map[gaas.JobStatus]int `json:"jobs"`
}

type usageReportJSON struct {
	From    time.Time          `json:"from"`
	To      time.Time          `json:"to"`
	Period  *gaas.Bucket       `json:"period"`
	GroupBy []gaas.ReportGroup `json:"group_by"`
	Rows    []usageRowJSON     `json:"rows"`
	Total   usageRowJSON       `json:"total"`
}

func toUsageRow(u gaas.UsageRow, r gaas.UsageReport) usageRowJSON {
	out := usageRowJSON{GPUHours: hoursJSON(u.GPUHours), Charged: creditsJSON(u.Charged), Returned: creditsJSON(u.Returned), Jobs: u.Jobs}
	if r.Period != gaas.BucketNone && !u.PeriodStart.IsZero() {
		out.PeriodStart = &u.PeriodStart
	}
	for _, g := range r.GroupBy {
		switch g {
		case gaas.GroupByUser:
			out.UserID, out.Username = &u.UserID, &u.Username
		case gaas.GroupByProject:
			if u.ProjectID != 0 {
				out.ProjectID, out.Project = &u.ProjectID, &u.Project
			}
		case gaas.GroupByGPUType:
			out.GPUType = &u.GPUType
		}
	}
	return out
}

func toUsageReport(r gaas.UsageReport) usageReportJSON {
	out := usageReportJSON{From: r.From, To: r.To, GroupBy: r.GroupBy, Rows: make([]usageRowJSON, len(r.Rows))}
	if out.GroupBy == nil {
		out.GroupBy = []gaas.ReportGroup{}
	}
	if r.Period != gaas.BucketNone {
		out.Period = &r.Period
	}
	for i, u := range r.Rows {
		out.Rows[i] = toUsageRow(u, r)
	}
	out.Total = toUsageRow(r.Total, gaas.UsageReport{})
	return out
}

// handleUsage answers GET /reports/usage: the usage the caller may see,
// as JSON or, by ?format=csv or Accept: text/csv, as CSV.
func handleUsage(logger *slog.Logger, reports gaas.Reports) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, asCSV, err := readUsageRequest(r, time.Now())
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		report, err := reports.Usage(r.Context(), callerID(r), req)
		if err != nil {
			err = explain(err, gaas.ErrForbidden, "Only admins and managers may read the usage of another user.")
			writeError(w, r, logger, explain(err, gaas.ErrNotFound, "Project %d does not exist.", req.ProjectID))
			return
		}
		if !asCSV {
			encode(w, http.StatusOK, toUsageReport(report))
			return
		}
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": report.CSVName()}))
		w.WriteHeader(http.StatusOK)
		report.WriteCSV(w)
	})
}

// readUsageRequest reads the query of GET /reports/usage, with its
// defaults as of now, and whether the answer is to be CSV.
func readUsageRequest(r *http.Request, now time.Time) (gaas.UsageRequest, bool, error) {
	q := r.URL.Query()
	req := gaas.UsageRequest{To: now.UTC(), Period: gaas.Bucket(q.Get("period")), GroupBy: gaas.ParseReportGroups(q.Get("group_by"))}
	if req.Period == "none" {
		req.Period = gaas.BucketNone
	}
	for _, b := range []struct {
		name string
		t    *time.Time
	}{{"to", &req.To}, {"from", &req.From}} {
		if s := q.Get(b.name); s != "" {
			t, err := gaas.ParseReportTime(s)
			if err != nil {
				return req, false, errField(b.name, "must be an RFC 3339 time, such as 2026-11-28T17:34:24Z, or a date, such as 2026-11-28")
			}
			*b.t = t
		}
	}
	if req.From.IsZero() {
		req.From = req.To.Add(-DefaultReportRange)
	}
	for _, id := range []struct {
		name string
		v    *int64
	}{{"user_id", &req.UserID}, {"project_id", &req.ProjectID}} {
		if s := q.Get(id.name); s != "" {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil || n <= 0 {
				return req, false, errField(id.name, "must be a positive integer")
			}
			*id.v = n
		}
	}
	var asCSV bool
	switch f := q.Get("format"); f {
	case "csv":
		asCSV = true
	case "json":
	case "":
		asCSV = acceptsCSV(r.Header.Values("Accept"))
	default:
		return req, false, errField("format", "must be json or csv")
	}
	return req, asCSV, req.Validate()
}

// acceptsCSV reports whether an Accept header asks for text/csv rather
// than JSON: it names text/csv, and no JSON type before it.
func acceptsCSV(accept []string) bool {
	for _, v := range accept {
		for _, part := range strings.Split(v, ",") {
			mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
			switch {
			case err != nil:
			case mt == "text/csv":
				return true
			case mt == "application/json", strings.HasSuffix(mt, "+json"):
				return false
			}
		}
	}
	return false
}
