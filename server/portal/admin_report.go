package portal

import (
	"errors"
	"mime"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gaas-io/gaas/gaas"
)

// reportPage is the data of the usage report's page.
type reportPage struct {
	// The form as given.
	From, To, Period string
	GroupBy          []string
	// Periods and Groups are the form's choices.
	Periods []choice
	Groups  []choice
	Chart   *chart
	// Header and Rows are the report's table, as its CSV has it, and
	// Total its last line; Labels are the header in words.
	Header, Labels []string
	Rows           [][]string
	Total          []string
	// CSV links the same report as CSV.
	CSV   string
	Error string
}

// usageForm reads the report's form from r's query: from and to (dates,
// or RFC 3339 times; by default the 30 days up to tomorrow), period (day,
// week, month or none; by default week) and group_by (any of user,
// project, gpu_type, repeated or separated by commas; by default
// gpu_type).
func usageForm(r *http.Request, now time.Time) (reportPage, gaas.UsageRequest, error) {
	q := r.URL.Query()
	tomorrow := gaas.BucketDay.Next(gaas.BucketDay.Start(now))
	data := reportPage{From: q.Get("from"), To: q.Get("to"), Period: q.Get("period")}
	if data.To == "" {
		data.To = tomorrow.Format(time.DateOnly)
	}
	if data.From == "" {
		data.From = tomorrow.AddDate(0, 0, -30).Format(time.DateOnly)
	}
	if _, set := q["period"]; !set {
		data.Period = string(gaas.BucketWeek)
	}
	if _, set := q["group_by"]; !set && len(q) == 0 {
		data.GroupBy = []string{string(gaas.GroupByGPUType)}
	}
	req := gaas.UsageRequest{Period: gaas.Bucket(data.Period)}
	if data.Period == "none" {
		req.Period = gaas.BucketNone
	}
	for _, v := range q["group_by"] {
		for _, g := range gaas.ParseReportGroups(v) {
			data.GroupBy = append(data.GroupBy, string(g))
		}
	}
	for _, g := range data.GroupBy {
		req.GroupBy = append(req.GroupBy, gaas.ReportGroup(g))
	}
	for _, v := range []string{"day", "week", "month", "none"} {
		label := "by " + v
		if v == "none" {
			label = "the whole range"
		}
		data.Periods = append(data.Periods, choice{Value: v, Label: label, Chosen: v == data.Period})
	}
	for _, g := range gaas.ReportGroups() {
		data.Groups = append(data.Groups, choice{Value: string(g), Label: strings.ReplaceAll(string(g), "_", " "), Chosen: slices.Contains(data.GroupBy, string(g))})
	}
	var err error
	if req.From, err = gaas.ParseReportTime(data.From); err != nil {
		return data, req, gaas.Invalid("from", "must be a date, such as 2026-11-01, or an RFC 3339 time")
	}
	if req.To, err = gaas.ParseReportTime(data.To); err != nil {
		return data, req, gaas.Invalid("to", "must be a date, such as 2026-12-01, or an RFC 3339 time")
	}
	return data, req, req.Validate()
}

// choice is an option of a form: a value, its words, and whether it is
// chosen.
type choice struct {
	Value, Label string
	Chosen       bool
}

// handleReport shows the usage report the form asks for: a chart of
// GPU-hours by period and GPU type when it is cut into periods, and its
// table, the same as its CSV.
func (p *site) handleReport() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		data, req, err := usageForm(r, time.Now())
		var rep gaas.UsageReport
		if err == nil {
			rep, err = p.svc.Reports.Usage(r.Context(), callerID(r), req)
		}
		var ve *gaas.ValidationError
		if errors.As(err, &ve) {
			data.Error = fieldErrors(ve)
			p.render(w, r, http.StatusUnprocessableEntity, "admin_report", "Usage report", data)
			return
		} else if err != nil {
			p.showError(w, r, err)
			return
		}
		data.CSV = p.link(r, "/portal/admin/report.csv") + "?" + r.URL.RawQuery
		data.Header, data.Rows = rep.Table()
		for _, h := range data.Header {
			data.Labels = append(data.Labels, strings.ReplaceAll(h, "_", " "))
		}
		_, total := gaas.UsageReport{Rows: []gaas.UsageRow{rep.Total}}.Table()
		data.Total = append(make([]string, len(data.Header)-len(total[0])), total[0]...)
		if len(data.Total) > len(total[0]) {
			data.Total[0] = "Total"
		}
		if rep.Period != gaas.BucketNone {
			byType := rep
			byType.Rows = slices.Clone(rep.Rows)
			for i := range byType.Rows {
				if !req.Grouped(gaas.GroupByGPUType) {
					byType.Rows[i].GPUType = "every GPU type"
				}
			}
			if c, ok := usageChart("GPU-hours by "+string(rep.Period)+" and GPU type",
				"GPU-hours of the jobs that ended in each period of the report, stacked by GPU type", byType); ok {
				data.Chart = &c
			}
		}
		p.render(w, r, http.StatusOK, "admin_report", "Usage report", data)
	})
}

// handleReportCSV answers the report of the same form as CSV, as GET
// /reports/usage?format=csv does: the same header, rows and file name.
func (p *site) handleReportCSV() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, req, err := usageForm(r, time.Now())
		var rep gaas.UsageReport
		if err == nil {
			rep, err = p.svc.Reports.Usage(r.Context(), callerID(r), req)
		}
		if err != nil {
			p.failed(w, r, "The report was not made", "", err)
			return
		}
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": rep.CSVName()}))
		w.WriteHeader(http.StatusOK)
		rep.WriteCSV(w) // cells that a spreadsheet would take for formulas neutralised
	})
}
