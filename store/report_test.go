package store_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/gaas"
	"github.com/gaas-io/gaas/store"
	"github.com/gaas-io/gaas/store/storetest"
)

// usageSite is a store with a history made through its services: users,
// a tree of projects with managers and members, a catalogue with rates,
// and jobs submitted, approved, rejected, cancelled and settled over
// weeks of a clock that moves only when told.
type usageSite struct {
	f        *fixture
	clk      *clock
	users    []gaas.User
	projects []gaas.Project // dept, lab (under dept), astro
	// managers: users[0] manages dept (and so lab), users[1] lab, users[2] astro.
	managed map[int64][]int64 // a manager's id: the projects they see
	member  map[int64][]int64 // a user's id: the projects they may charge
	types   []string
	start   time.Time
	// quiet plays without the reports that roll up now and then.
	quiet bool
}

// newUsageSite makes a site on backend b; opts, when given, are the
// store's (its clock is the site's).
func newUsageSite(t *testing.T, b backend, rng *rand.Rand, opts ...store.Options) *usageSite {
	t.Helper()
	ctx := context.Background()
	// Start somewhere in a year, at any second, so that weeks and months
	// are cut at every offset.
	start := time.Date(2026, time.Month(1+rng.IntN(12)), 1+rng.IntN(28), rng.IntN(24), rng.IntN(60), rng.IntN(60), 0, time.UTC)
	clk := newClock(start)
	var o store.Options
	if len(opts) > 0 {
		o = opts[0]
	}
	o.Now = clk.Now
	f := newFixture(t, openStore(t, b.dsn(t), o))
	s := &usageSite{f: f, clk: clk, start: start, managed: map[int64][]int64{}, member: map[int64][]int64{}}
	for _, g := range []struct {
		name string
		rate gaas.Rate
	}{{"A100", rate(2, 500)}, {"H100", rate(4, 0)}, {"T4", rate(0, 333)}} {
		f.gpuType(t, gaas.CreateGPUTypeRequest{Name: g.name, Rate: g.rate})
		s.types = append(s.types, g.name)
	}
	for range 6 {
		s.users = append(s.users, f.user(t, 1_000_000*gaas.Credit))
	}
	admin := f.admin.ID
	mk := func(name string, parent int64, managersApprove bool) gaas.Project {
		p, err := f.db.Projects.CreateProject(ctx, admin, gaas.CreateProjectRequest{Name: name, ParentID: parent, ManagersApprove: managersApprove})
		require.NoError(t, err)
		f.allocation(t, gaas.CreateAllocationRequest{ProjectID: p.ID, Amount: 1_000_000 * gaas.Credit})
		return p
	}
	dept := mk("dept", 0, false)
	lab := mk("lab", dept.ID, true)
	astro := mk("astro", 0, false)
	s.projects = []gaas.Project{dept, lab, astro}
	join := func(p gaas.Project, u gaas.User, role gaas.ProjectRole) {
		_, err := f.db.Projects.SetMember(ctx, admin, gaas.SetMemberRequest{ProjectID: p.ID, UserID: u.ID, Role: role})
		require.NoError(t, err)
		s.member[u.ID] = append(s.member[u.ID], p.ID)
	}
	join(dept, s.users[0], gaas.ProjectManager)
	join(lab, s.users[1], gaas.ProjectManager)
	join(astro, s.users[2], gaas.ProjectManager)
	join(lab, s.users[3], gaas.ProjectMember)
	join(astro, s.users[3], gaas.ProjectMember)
	join(dept, s.users[4], gaas.ProjectMember)
	join(lab, s.users[0], gaas.ProjectMember) // a manager above who charges below
	s.managed[s.users[0].ID] = []int64{dept.ID, lab.ID}
	s.managed[s.users[1].ID] = []int64{lab.ID}
	s.managed[s.users[2].ID] = []int64{astro.ID}
	return s
}

// play makes n random steps of history: the clock moves, jobs are
// submitted, and open jobs are moved on by their owners, their managers
// and the admin.
func (s *usageSite) play(t *testing.T, rng *rand.Rand, n int) {
	t.Helper()
	ctx := context.Background()
	db, admin := s.f.db, s.f.admin.ID
	var open []gaas.Job
	hours := func(max gaas.Hours) *gaas.Hours { h := gaas.Hours(rng.Int64N(int64(max) + 1)); return &h }
	for step := range n {
		if step%30 == 29 && !s.quiet {
			// A report now and then rolls up the days that closed.
			_, err := db.Reports.Usage(ctx, admin, gaas.UsageRequest{From: s.start, To: s.clk.Now(), Period: gaas.BucketWeek})
			require.NoError(t, err)
		}
		switch r := rng.IntN(10); {
		case r == 0: // to the next UTC midnight, exactly: a boundary
			now := s.clk.Now()
			s.clk.Set(gaas.BucketDay.Next(gaas.BucketDay.Start(now)))
		case r <= 2:
			s.clk.Add(time.Duration(rng.Int64N(int64(4 * 24 * time.Hour))))
		default:
			s.clk.Add(time.Duration(rng.Int64N(int64(3 * time.Hour))))
		}
		if len(open) == 0 || rng.IntN(3) == 0 {
			u := s.users[rng.IntN(len(s.users))]
			req := gaas.SubmitRequest{
				Command: "train", GPUType: s.types[rng.IntN(len(s.types))], GPUCount: 1 + rng.IntN(4),
				EstimatedHours: gaas.Hours(1 + rng.Int64N(int64(20*gaas.Hour))),
			}
			if ps := s.member[u.ID]; len(ps) > 0 && rng.IntN(3) > 0 {
				req.Project = gaas.ProjectRef(fmt.Sprint(ps[rng.IntN(len(ps))]))
			}
			j, err := db.Jobs.Submit(ctx, u.ID, req)
			require.NoError(t, err)
			open = append(open, j)
			continue
		}
		i := rng.IntN(len(open))
		j := open[i]
		var err error
		switch j.Status {
		case gaas.StatusPending:
			switch rng.IntN(4) {
			case 0:
				j, err = db.Jobs.Cancel(ctx, j.UserID, gaas.CancelRequest{JobID: j.ID})
			case 1:
				j, err = db.Jobs.Transition(ctx, admin, gaas.TransitionRequest{JobID: j.ID, To: gaas.StatusRejected})
			default:
				approver := admin
				if j.ProjectID == s.projects[1].ID && rng.IntN(2) == 0 {
					approver = s.users[1].ID // lab's managers approve
				}
				j, err = db.Jobs.Transition(ctx, approver, gaas.TransitionRequest{JobID: j.ID, To: gaas.StatusApproved})
			}
		case gaas.StatusApproved:
			if rng.IntN(5) == 0 {
				j, err = db.Jobs.Cancel(ctx, j.UserID, gaas.CancelRequest{JobID: j.ID})
			} else {
				j, err = db.Jobs.Transition(ctx, admin, gaas.TransitionRequest{JobID: j.ID, To: gaas.StatusRunning})
			}
		case gaas.StatusRunning:
			req := gaas.TransitionRequest{JobID: j.ID}
			switch rng.IntN(5) {
			case 0:
				req.To, req.ActualHours = gaas.StatusCancelled, hours(j.EstimatedHours)
			case 1:
				req.To = gaas.StatusFailed
				if rng.IntN(2) == 0 {
					req.ActualHours = hours(j.EstimatedHours)
				}
			default:
				req.To = gaas.StatusCompleted
				if rng.IntN(3) > 0 {
					req.ActualHours = hours(j.EstimatedHours)
				}
			}
			j, err = db.Jobs.Transition(ctx, admin, req)
		}
		require.NoError(t, err)
		if open[i] = j; j.Status.Final() {
			open = slices.Delete(open, i, i+1)
		}
	}
}

// history is what the store's public API gives back of everything: every
// job, and every ledger entry of every user's and project's account.
type history struct {
	jobs    map[int64]gaas.Job
	entries []gaas.LedgerEntry
	names   map[int64]string // users'
	pnames  map[int64]string // projects'
}

func (s *usageSite) readBack(t *testing.T) history {
	t.Helper()
	ctx := context.Background()
	db, admin := s.f.db, s.f.admin.ID
	h := history{jobs: map[int64]gaas.Job{}, names: map[int64]string{}, pnames: map[int64]string{}}
	f := gaas.JobFilter{Page: gaas.Page{Limit: gaas.MaxLimit}}
	for {
		page, err := db.Jobs.List(ctx, admin, f)
		require.NoError(t, err)
		for _, j := range page.Items {
			h.jobs[j.ID] = j
		}
		if f.Cursor = page.NextCursor; f.Cursor == "" {
			break
		}
	}
	seen := map[int64]bool{}
	add := func(es []gaas.LedgerEntry) {
		for _, e := range es {
			if !seen[e.ID] {
				seen[e.ID] = true
				h.entries = append(h.entries, e)
			}
		}
	}
	for _, u := range append([]gaas.User{s.f.admin}, s.users...) {
		h.names[u.ID] = u.Username
		add(s.f.ledger(t, u.ID))
	}
	for _, p := range s.projects {
		h.pnames[p.ID] = p.Name
		req := gaas.ProjectLedgerRequest{ProjectID: p.ID, Page: gaas.Page{Limit: gaas.MaxLimit}}
		for {
			page, err := db.Projects.ProjectLedger(ctx, admin, req)
			require.NoError(t, err)
			add(page.Items)
			if req.Cursor = page.NextCursor; req.Cursor == "" {
				break
			}
		}
	}
	return h
}

// expect computes the report req asks of caller from the history, by
// its own sums: who sees which job, which period and row each entry and
// final job falls in.
func (s *usageSite) expect(h history, caller int64, req gaas.UsageRequest) map[string]gaas.UsageRow {
	visible := func(j gaas.Job) bool {
		if caller == s.f.admin.ID || j.UserID == caller {
			return true
		}
		return slices.Contains(s.managed[caller], j.ProjectID)
	}
	keep := func(j gaas.Job) bool {
		return visible(j) && (req.UserID == 0 || j.UserID == req.UserID) && (req.ProjectID == 0 || j.ProjectID == req.ProjectID)
	}
	rows := map[string]gaas.UsageRow{}
	row := func(at time.Time, j gaas.Job) (string, gaas.UsageRow) {
		var r gaas.UsageRow
		if req.Period != gaas.BucketNone {
			r.PeriodStart = req.Period.Start(at)
		}
		if req.Grouped(gaas.GroupByUser) {
			r.UserID, r.Username = j.UserID, h.names[j.UserID]
		}
		if req.Grouped(gaas.GroupByProject) {
			r.ProjectID, r.Project = j.ProjectID, h.pnames[j.ProjectID]
		}
		if req.Grouped(gaas.GroupByGPUType) {
			r.GPUType = j.GPUType
		}
		k := fmt.Sprint(r.PeriodStart.Format(time.RFC3339), "|", r.UserID, "|", r.ProjectID, "|", r.GPUType)
		if old, ok := rows[k]; ok {
			return k, old
		}
		r.Jobs = map[gaas.JobStatus]int{}
		for _, st := range gaas.FinalStatuses() {
			r.Jobs[st] = 0
		}
		return k, r
	}
	in := func(at time.Time) bool { return !at.Before(req.From) && at.Before(req.To) }
	for _, e := range h.entries {
		if e.JobID == nil || (e.Kind != gaas.LedgerCharge && e.Kind != gaas.LedgerRefund) || !in(e.CreatedAt) {
			continue
		}
		j := h.jobs[*e.JobID]
		if !keep(j) {
			continue
		}
		k, r := row(e.CreatedAt, j)
		if e.Kind == gaas.LedgerCharge {
			r.Charged -= e.Delta
		} else {
			r.Returned += e.Delta
		}
		rows[k] = r
	}
	for _, j := range h.jobs {
		if !j.Status.Final() || !in(j.UpdatedAt) || !keep(j) {
			continue
		}
		k, r := row(j.UpdatedAt, j)
		r.Jobs[j.Status]++
		switch {
		case j.ActualHours != nil:
			r.GPUHours += *j.ActualHours * gaas.Hours(j.GPUCount)
		case j.Status == gaas.StatusCompleted || j.Status == gaas.StatusFailed:
			r.GPUHours += j.EstimatedHours * gaas.Hours(j.GPUCount)
		}
		rows[k] = r
	}
	return rows
}

// compare asks the store for the report req of caller and requires every
// cell, its order and its total to be what expect sums from the history.
func (s *usageSite) compare(t *testing.T, h history, who string, caller int64, req gaas.UsageRequest) gaas.UsageReport {
	t.Helper()
	got, err := s.f.db.Reports.Usage(context.Background(), caller, req)
	require.NoError(t, err, "%s: %+v", who, req)
	want := s.expect(h, caller, req)
	var total gaas.UsageRow
	total.Jobs = map[gaas.JobStatus]int{}
	for _, st := range gaas.FinalStatuses() {
		total.Jobs[st] = 0
	}
	gotRows := map[string]gaas.UsageRow{}
	for i, r := range got.Rows {
		k := fmt.Sprint(r.PeriodStart.Format(time.RFC3339), "|", r.UserID, "|", r.ProjectID, "|", r.GPUType)
		gotRows[k] = r
		if i > 0 {
			prev := got.Rows[i-1]
			assert.True(t, prev.PeriodStart.Before(r.PeriodStart) || prev.PeriodStart.Equal(r.PeriodStart) &&
				(prev.UserID < r.UserID || prev.UserID == r.UserID && (prev.ProjectID < r.ProjectID ||
					prev.ProjectID == r.ProjectID && prev.GPUType < r.GPUType)), "rows out of order: %+v then %+v", prev, r)
		}
	}
	for _, r := range want {
		total.GPUHours += r.GPUHours
		total.Charged += r.Charged
		total.Returned += r.Returned
		for st, n := range r.Jobs {
			total.Jobs[st] += n
		}
	}
	if !assert.Equal(t, want, gotRows, "%s: %+v", who, req) {
		t.FailNow()
	}
	assert.Equal(t, total, got.Total, "%s: %+v", who, req)
	return got
}

// groupings is every subset of the dimensions, in their order and in another.
func groupings() [][]gaas.ReportGroup {
	all := gaas.ReportGroups()
	var out [][]gaas.ReportGroup
	for mask := range 1 << len(all) {
		var g []gaas.ReportGroup
		for i, d := range all {
			if mask&(1<<i) != 0 {
				g = append(g, d)
			}
		}
		out = append(out, g)
	}
	return append(out, []gaas.ReportGroup{gaas.GroupByGPUType, gaas.GroupByUser})
}

// TestUsageAgreesWithLedger builds random histories through the store's
// services and holds every cell of every report (each period, each
// grouping, filtered by user and by project, for the admin, managers and
// a plain user) to the sums of the ledger entries and jobs read back.
func TestUsageAgreesWithLedger(t *testing.T) {
	ctx := context.Background()
	seed := storetest.Seed(t)
	forEachSharedBackend(t, func(t *testing.T, b backend) {
		rng := rand.New(rand.NewPCG(seed, 20))
		s := newUsageSite(t, b, rng)
		steps := 400
		if testing.Short() {
			steps = 120
		}
		s.play(t, rng, steps)
		h := s.readBack(t)
		end := s.clk.Now().Add(time.Second)
		ranges := [][2]time.Time{
			{s.start.Add(-time.Hour), end},
			{gaas.BucketMonth.Start(s.start), gaas.BucketMonth.Next(gaas.BucketMonth.Start(end))},
		}
		for range 2 { // a random part, cut anywhere
			a := s.start.Add(time.Duration(rng.Int64N(int64(end.Sub(s.start)))))
			ranges = append(ranges, [2]time.Time{a, a.Add(time.Duration(rng.Int64N(int64(end.Sub(a)))) + time.Second)})
		}
		type ask struct {
			who       string
			caller    int64
			user, prj int64
		}
		u, p := s.users, s.projects
		asks := []ask{
			{"admin", s.f.admin.ID, 0, 0},
			{"admin user", s.f.admin.ID, u[3].ID, 0},
			{"admin project", s.f.admin.ID, 0, p[1].ID},
			{"admin user in project", s.f.admin.ID, u[0].ID, p[1].ID},
			{"dept manager", u[0].ID, 0, 0},
			{"dept manager of lab", u[0].ID, 0, p[1].ID},
			{"dept manager of a member", u[0].ID, u[3].ID, 0},
			{"lab manager", u[1].ID, 0, 0},
			{"astro manager", u[2].ID, 0, p[2].ID},
			{"member", u[3].ID, 0, 0},
			{"member in project", u[3].ID, 0, p[2].ID},
			{"plain user", u[5].ID, u[5].ID, 0},
		}
		cells := 0
		for _, rg := range ranges {
			for _, period := range []gaas.Bucket{gaas.BucketNone, gaas.BucketDay, gaas.BucketWeek, gaas.BucketMonth} {
				for _, groups := range groupings() {
					for _, a := range asks {
						req := gaas.UsageRequest{From: rg[0], To: rg[1], Period: period, GroupBy: groups, UserID: a.user, ProjectID: a.prj}
						got := s.compare(t, h, a.who, a.caller, req)
						cells += len(got.Rows)
					}
				}
			}
		}
		// The history must have had something of everything to compare.
		statuses := map[gaas.JobStatus]int{}
		for _, j := range h.jobs {
			statuses[j.Status]++
		}
		var days, months string
		require.NoError(t, store.RawQueryRow(ctx, s.f.db, "SELECT days, months FROM usage_rollup_state", &days, &months))
		t.Logf("%d jobs %v, %d ledger entries, %d cells compared; rolled up days before %s and months before %s, from %s to %s",
			len(h.jobs), statuses, len(h.entries), cells, days, months, s.start.Format(time.DateOnly), end.Format(time.DateOnly))
		assert.NotEqual(t, s.start.Format("2006-01"), months, "no month was rolled up")
		for _, st := range gaas.FinalStatuses() {
			assert.Positive(t, statuses[st], "no job ended %s", st)
		}
	})
}

// TestUsageRefusals: who names a user or project beyond what they may see
// is refused (projects stay hidden from strangers), and a bad request
// names its field.
func TestUsageRefusals(t *testing.T) {
	ctx := context.Background()
	forEachBackend(t, func(t *testing.T, b backend) {
		s := newUsageSite(t, b, rand.New(rand.NewPCG(1, 2)))
		u, p := s.users, s.projects
		from := s.clk.Now().Add(-time.Hour)
		month := gaas.UsageRequest{From: from, To: from.AddDate(0, 1, 0), Period: gaas.BucketDay}
		with := func(user, project int64) gaas.UsageRequest {
			r := month
			r.UserID, r.ProjectID = user, project
			return r
		}
		for _, c := range []struct {
			name   string
			caller int64
			req    gaas.UsageRequest
			want   error
		}{
			{"plain user names another", u[5].ID, with(u[4].ID, 0), gaas.ErrForbidden},
			{"member names another", u[3].ID, with(u[4].ID, 0), gaas.ErrForbidden},
			{"stranger names a project", u[5].ID, with(0, p[0].ID), gaas.ErrNotFound},
			{"stranger names no project", u[5].ID, with(0, 999), gaas.ErrNotFound},
			{"lab manager names the dept above", u[1].ID, with(0, p[0].ID), gaas.ErrNotFound},
			{"astro manager names lab", u[2].ID, with(0, p[1].ID), gaas.ErrNotFound},
			{"unknown caller", 999, month, gaas.ErrUnauthorized},
			{"plain user names themselves", u[5].ID, with(u[5].ID, 0), nil},
			{"manager names anyone", u[2].ID, with(u[5].ID, 0), nil},
			{"manager above names a sub-project", u[0].ID, with(0, p[1].ID), nil},
			{"member names their project", u[4].ID, with(0, p[0].ID), nil},
			{"admin names anyone", s.f.admin.ID, with(u[5].ID, p[2].ID), nil},
		} {
			_, err := s.f.db.Reports.Usage(ctx, c.caller, c.req)
			if c.want == nil {
				assert.NoError(t, err, c.name)
			} else {
				assert.ErrorIs(t, err, c.want, c.name)
			}
		}
		admin := s.f.admin.ID
		for _, c := range []struct {
			field string
			req   gaas.UsageRequest
		}{
			{"from", gaas.UsageRequest{To: from}},
			{"to", gaas.UsageRequest{From: from}},
			{"to", gaas.UsageRequest{From: from, To: from}},
			{"to", gaas.UsageRequest{From: from, To: from.Add(-time.Second)}},
			{"period", gaas.UsageRequest{From: from, To: from.Add(time.Hour), Period: "year"}},
			{"period", gaas.UsageRequest{From: from, To: from.AddDate(11, 0, 0), Period: gaas.BucketDay}},
			{"group_by", gaas.UsageRequest{From: from, To: from.Add(time.Hour), GroupBy: []gaas.ReportGroup{"host"}}},
			{"group_by", gaas.UsageRequest{From: from, To: from.Add(time.Hour), GroupBy: []gaas.ReportGroup{gaas.GroupByUser, gaas.GroupByUser}}},
			{"user_id", gaas.UsageRequest{From: from, To: from.Add(time.Hour), UserID: -1}},
			{"project_id", gaas.UsageRequest{From: from, To: from.Add(time.Hour), ProjectID: -1}},
		} {
			_, err := s.f.db.Reports.Usage(ctx, admin, c.req)
			var v *gaas.ValidationError
			if assert.ErrorAs(t, err, &v, "%+v", c.req) {
				assert.Equal(t, c.field, v.Fields[0].Field, "%+v", c.req)
			}
		}
		// Ten years of days is the most; weeks and months over them are fine.
		long := gaas.UsageRequest{From: from, To: from.AddDate(10, 0, 0), Period: gaas.BucketWeek}
		r, err := s.f.db.Reports.Usage(ctx, admin, long)
		require.NoError(t, err)
		assert.Empty(t, r.Rows)
		assert.Equal(t, map[gaas.JobStatus]int{gaas.StatusCompleted: 0, gaas.StatusFailed: 0, gaas.StatusRejected: 0, gaas.StatusCancelled: 0}, r.Total.Jobs)
	})
}
