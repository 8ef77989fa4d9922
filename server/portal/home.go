package portal

import (
	"cmp"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gaas-io/gaas/gaas"
)

// usageWeeks is how many weeks, this one included, the user's page charts.
const usageWeeks = 12

// homePage is the data of the signed-in user's own page.
type homePage struct {
	Balance gaas.Credits
	// Allocations are the user's active allocations, soonest expiry first.
	Allocations []gaas.Allocation
	// MoreAllocations is set when there were too many to list.
	MoreAllocations bool
	Memberships     []gaas.Membership
	// Usage is the chart of the user's GPU-hours by week and GPU type;
	// nil when there is none to show, and UsageNote says why.
	Usage     *chart
	UsageNote string
}

func (p *site) handleHome() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, me := r.Context(), callerID(r)
		var data homePage
		var err error
		if data.Balance, err = p.svc.Quota.Balance(ctx, me, gaas.BalanceRequest{UserID: me}); err != nil {
			p.showError(w, r, err)
			return
		}
		allocs, err := p.svc.Allocations.Allocations(ctx, me, gaas.AllocationsRequest{UserID: me, Page: gaas.Page{Limit: gaas.MaxLimit}})
		if err != nil {
			p.showError(w, r, err)
			return
		}
		now := time.Now()
		for _, a := range allocs.Items {
			if a.ActiveAt(now) {
				data.Allocations = append(data.Allocations, a)
			}
		}
		slices.SortStableFunc(data.Allocations, byExpiry)
		data.MoreAllocations = allocs.NextCursor != ""
		ms, err := p.svc.Projects.Memberships(ctx, me, gaas.MembershipsRequest{Page: gaas.Page{Limit: gaas.MaxLimit}})
		if err != nil {
			p.showError(w, r, err)
			return
		}
		data.Memberships = ms.Items
		data.Usage, data.UsageNote, err = p.weeklyUsage(r, gaas.UsageRequest{UserID: me}, now)
		if err != nil {
			p.showError(w, r, err)
			return
		}
		p.render(w, r, http.StatusOK, "home", "Your GPU time", data)
	})
}

// byExpiry orders allocations soonest expiry first, those that never
// expire last.
func byExpiry(a, b gaas.Allocation) int {
	switch {
	case a.ExpiresAt == nil && b.ExpiresAt == nil:
		return cmp.Compare(a.ID, b.ID)
	case a.ExpiresAt == nil:
		return 1
	case b.ExpiresAt == nil:
		return -1
	}
	return a.ExpiresAt.Compare(*b.ExpiresAt)
}

// weeklyUsage charts the GPU-hours that req selects (a user's, or a
// project's) in the usageWeeks weeks up to now, by GPU type, with its
// table of numbers shown. Without usage there is no chart, and the note
// says so.
func (p *site) weeklyUsage(r *http.Request, req gaas.UsageRequest, now time.Time) (*chart, string, error) {
	this := gaas.BucketWeek.Start(now)
	req.From, req.To = this.AddDate(0, 0, -7*(usageWeeks-1)), gaas.BucketWeek.Next(this)
	req.Period, req.GroupBy = gaas.BucketWeek, []gaas.ReportGroup{gaas.GroupByGPUType}
	rep, err := p.svc.Reports.Usage(r.Context(), callerID(r), req)
	if err != nil {
		return nil, "", err
	}
	c, ok := usageChart("GPU-hours by week and GPU type",
		"GPU-hours of jobs that ended in each of the last 12 weeks, stacked by GPU type", rep)
	if !ok {
		return nil, "No job ended in the last 12 weeks.", nil
	}
	c.Open = true
	return &c, "", nil
}

// usageChart charts a report by period and GPU type: a bar for every
// period of its range, a series for every GPU type. It reports false when
// the report has no GPU-hours to show.
func usageChart(title, desc string, rep gaas.UsageReport) (chart, bool) {
	var starts []time.Time
	for t := rep.Period.Start(rep.From); t.Before(rep.To); t = rep.Period.Next(t) {
		starts = append(starts, t)
	}
	byType := map[string][]int64{}
	var any bool
	for _, row := range rep.Rows {
		i, found := slices.BinarySearchFunc(starts, row.PeriodStart, func(a, b time.Time) int { return a.Compare(b) })
		if !found || row.GPUHours == 0 {
			continue
		}
		v := byType[row.GPUType]
		if v == nil {
			v = make([]int64, len(starts))
			byType[row.GPUType] = v
		}
		v[i] += int64(row.GPUHours)
		any = true
	}
	if !any {
		return chart{}, false
	}
	types := make([]string, 0, len(byType))
	for t := range byType {
		types = append(types, t)
	}
	slices.SortFunc(types, func(a, b string) int { return strings.Compare(strings.ToLower(a), strings.ToLower(b)) })
	series := make([]chartSeries, len(types))
	for i, t := range types {
		series[i] = chartSeries{Name: t, Values: byType[t]}
	}
	periods := make([]string, len(starts))
	for i, t := range starts {
		periods[i] = t.Format("2006-01-02")
	}
	label := map[gaas.Bucket]string{gaas.BucketDay: "Day", gaas.BucketWeek: "Week of", gaas.BucketMonth: "Month of"}[rep.Period]
	return newChart(title, desc, "GPU-hours", label, periods, series, func(v int64) string { return gaas.Hours(v).String() }), true
}
