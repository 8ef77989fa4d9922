package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gaas-io/gaas/gaas"
	"github.com/gaas-io/gaas/server"
)

// report is "gaasd report": the usage report of GET /reports/usage, read
// as the system, which sees everyone's, printed as aligned columns (as
// sreport prints them), CSV or JSON.
func (c *adminCmd) report(ctx context.Context, args []string) error {
	var req gaas.UsageRequest
	reportTime := func(set *time.Time) func(string) error {
		return func(s string) error {
			t, err := gaas.ParseReportTime(s)
			if err != nil {
				return fmt.Errorf("must be an RFC 3339 time such as 2026-12-01T00:00:00Z, or a date such as 2026-12-01")
			}
			*set = t
			return nil
		}
	}
	c.fs.Func("from", "the start, included: an RFC 3339 `time` or a date YYYY-MM-DD (UTC); 30 days before -to when not given", reportTime(&req.From))
	c.fs.Func("to", "the end, not included, as -from; now when not given", reportTime(&req.To))
	c.fs.StringVar((*string)(&req.Period), "period", "", "cut the range into UTC days, ISO weeks or months: day, week or month")
	c.fs.Func("group-by", "group by these `dimensions`, comma separated: user, project, gpu_type",
		func(s string) error { req.GroupBy = gaas.ParseReportGroups(s); return nil })
	owner := c.fs.String("user", "", "only this `user`'s jobs, by name or id")
	project := c.fs.String("project", "", "only the jobs charged to this `project`, by name or id")
	format := c.fs.String("format", "table", "table or csv (-json prints JSON)")
	return c.run(ctx, args, 0, func() error {
		if *format != "table" && *format != "csv" {
			return fmt.Errorf("%w: -format must be table or csv, not %q", errUsage, *format)
		}
		if req.To.IsZero() {
			req.To = time.Now().UTC()
		}
		if req.From.IsZero() {
			req.From = req.To.Add(-server.DefaultReportRange)
		}
		if *owner != "" {
			u, err := c.userByNameOrID(ctx, *owner)
			if err != nil {
				return err
			}
			req.UserID = u.ID
		}
		if *project != "" {
			p, err := c.project(ctx, *project)
			if err != nil {
				return err
			}
			req.ProjectID = p.ID
		}
		r, err := c.database.As(c.actor).Usage(ctx, req)
		if err != nil {
			return err
		}
		header, rows := r.Table()
		switch {
		case *c.asJSON:
			out := make([]map[string]string, len(rows))
			for i, row := range rows {
				out[i] = make(map[string]string, len(header))
				for j, h := range header {
					out[i][h] = row[j]
				}
			}
			return c.printJSON(out)
		case *format == "csv":
			return r.WriteCSV(c.stdout)
		}
		fmt.Fprintf(c.stdout, "Usage from %s to %s\n", r.From.Format(time.RFC3339), r.To.Format(time.RFC3339))
		tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, strings.ToUpper(strings.Join(header, "\t")))
		for _, row := range rows {
			fmt.Fprintln(tw, strings.Join(row, "\t"))
		}
		// The total, under the figures, when rows are more than one.
		if _, totals := (gaas.UsageReport{Rows: []gaas.UsageRow{r.Total}}).Table(); len(header) > len(totals[0]) {
			total := make([]string, len(header))
			total[0] = "total"
			copy(total[len(header)-len(totals[0]):], totals[0])
			fmt.Fprintln(tw, strings.Join(total, "\t"))
		}
		return tw.Flush()
	})
}
