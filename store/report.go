package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/uptrace/bun"

	"github.com/gaas-io/gaas/gaas"
)

// ReportService implements gaas.Reports on the store.
//
// A report is two aggregations, both grouped in the database by the
// dimensions asked for and by the UTC day (or month) they fall in: the
// charge and refund entries of the ledger written in the range, joined to
// the jobs that made them, and the jobs that reached a final status in
// the range (a final job's updated_at is when it got there: nothing moves
// a job that is final). Days are folded into weeks here, and the two
// are merged into rows by their keys.
type ReportService struct {
	db *DB
	// rolling makes one roll-up at a time in this process.
	rolling sync.Mutex
	// maxRows is the most rows of a report (Options.MaxReportRows).
	maxRows int
	// ledgerOnly reads every report from the ledger and the jobs alone,
	// for benchmarks that compare.
	ledgerOnly bool
}

var _ gaas.Reports = (*ReportService)(nil)

// Usage implements gaas.Reports.
func (s *ReportService) Usage(ctx context.Context, caller int64, req gaas.UsageRequest) (gaas.UsageReport, error) {
	return s.usageBy(ctx, gaas.Principal{UserID: caller}, req)
}

// usageRows are the rows of a report, or of a roll-up, by their keys: at
// most max of them (0: no bound), the reading stopping with
// gaas.TooManyRows at the first row beyond.
type usageRows struct {
	m   map[usageKey]*gaas.UsageRow
	max int
}

// usageKey is what a row of a report is keyed by.
type usageKey struct {
	period  time.Time
	user    int64
	project int64
	gpuType string
}

func (k usageKey) compare(o usageKey) int {
	if c := k.period.Compare(o.period); c != 0 {
		return c
	}
	if k.user != o.user {
		return cmpInt(k.user, o.user)
	}
	if k.project != o.project {
		return cmpInt(k.project, o.project)
	}
	return strings.Compare(k.gpuType, o.gpuType)
}

func cmpInt(a, b int64) int {
	if a < b {
		return -1
	}
	return 1
}

func (s *ReportService) usageBy(ctx context.Context, p gaas.Principal, req gaas.UsageRequest) (gaas.UsageReport, error) {
	if err := req.Validate(); err != nil {
		return gaas.UsageReport{}, fmt.Errorf("store: usage: %w", err)
	}
	req.From, req.To = req.From.UTC(), req.To.UTC()
	if !s.ledgerOnly {
		if _, err := s.tryRollUp(ctx, reportRollupDays); err != nil {
			return gaas.UsageReport{}, fmt.Errorf("store: usage: roll up: %w", err)
		}
	}
	rows := &usageRows{m: make(map[usageKey]*gaas.UsageRow), max: s.maxRows}
	err := s.db.readTx(ctx, func(tx bun.Tx) error {
		f, err := usageScope(ctx, tx, p, req)
		if err != nil {
			return err
		}
		var st rollupState // none: all from the ledger
		if !s.ledgerOnly {
			if st, err = loadRollupState(ctx, tx); err != nil {
				return err
			}
		}
		for _, part := range st.split(req) {
			r := req
			r.From, r.To = part.from, part.to
			if part.grain != "" {
				err = s.rolledUsage(ctx, tx, r, f, part.grain, rows)
				if err != nil {
					return err
				}
				continue
			}
			var ids idBounds // none: the whole ledger
			if !s.ledgerOnly {
				if ids, err = ledgerBounds(ctx, tx, r.From, r.To); err != nil {
					return err
				}
			}
			if err = s.ledgerUsage(ctx, tx, r, ids, f, rows); err == nil {
				err = s.jobUsage(ctx, tx, r, f, rows)
			}
			if err != nil {
				return err
			}
		}
		return nameRows(ctx, tx, rows)
	})
	if err != nil {
		return gaas.UsageReport{}, fmt.Errorf("store: usage for %s: %w", p, mapErr(err))
	}
	out := gaas.UsageReport{From: req.From, To: req.To, Period: req.Period, GroupBy: slices.Clone(req.GroupBy)}
	keys := make([]usageKey, 0, len(rows.m))
	for k := range rows.m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, usageKey.compare)
	out.Rows = make([]gaas.UsageRow, len(keys))
	out.Total.Jobs = emptyJobCounts()
	for i, k := range keys {
		r := rows.m[k]
		out.Rows[i] = *r
		out.Total.GPUHours += r.GPUHours
		out.Total.Charged += r.Charged
		out.Total.Returned += r.Returned
		for st, n := range r.Jobs {
			out.Total.Jobs[st] += n
		}
	}
	return out, nil
}

// usageFilter is a condition on jobs j, to follow an AND, with its arguments.
type usageFilter struct {
	where string
	args  []any
}

// usageScope is the condition that keeps what p may see of the report req
// asks for. The policy decides whether p sees everyone's usage
// (ActionReadUsage of no one), may name req.UserID (ActionReadUsage of
// them, or anyone for whoever manages a project) and req.ProjectID
// (ActionReadProjectUsage, the managers of its ancestors counting as its
// managers); for whoever does not see everyone's, the condition keeps
// their own jobs and those charged to the projects they manage and below.
func usageScope(ctx context.Context, idb bun.IDB, p gaas.Principal, req gaas.UsageRequest) (usageFilter, error) {
	if !p.IsSystem() {
		c, err := loadCaller(ctx, idb, p.UserID)
		if err != nil {
			return usageFilter{}, err
		}
		p = c.principal()
	}
	var where []string
	var f usageFilter
	if req.ProjectID != 0 {
		if _, err := visibleProjectInherited(ctx, idb, p, projectRef(req.ProjectID), gaas.ActionReadProjectUsage); err != nil {
			return usageFilter{}, err
		}
		where, f.args = append(where, "j.project_id = ?"), append(f.args, req.ProjectID)
	}
	if req.UserID != 0 {
		if err := gaas.Allow(p, gaas.ActionReadUsage, req.UserID); err != nil {
			manages, merr := managesAny(ctx, idb, p)
			if merr != nil {
				return usageFilter{}, merr
			}
			if !manages {
				return usageFilter{}, fmt.Errorf("usage of user %d: %w", req.UserID, err)
			}
		}
		where, f.args = append(where, "j.user_id = ?"), append(f.args, req.UserID)
	}
	if gaas.Allow(p, gaas.ActionReadUsage, 0) != nil {
		where = append(where, "(j.user_id = ? OR j.project_id IN ("+managedProjectsSQL+"))")
		f.args = append(f.args, p.UserID, p.UserID)
	}
	for _, w := range where {
		f.where += " AND " + w
	}
	return f, nil
}

// managesAny reports whether p manages a project now.
func managesAny(ctx context.Context, idb bun.IDB, p gaas.Principal) (bool, error) {
	var n int
	err := query(ctx, idb, &n, "SELECT count(*) FROM project_members WHERE user_id = ? AND role = 'manager' AND active = TRUE", p.UserID)
	return n > 0, err
}

// usageColumns are the columns that key an aggregation of req over jobs
// (or rollup rows) j: its period, which periodText gives as a UTC day or
// month, or nothing, and the dimensions (0 or the empty string for those
// not grouped by), and the expressions it is grouped by.
func usageColumns(req gaas.UsageRequest, periodText func(month bool) string) (columns string, groupBy []string) {
	var period string
	switch req.Period {
	case gaas.BucketNone:
		period = "''"
	case gaas.BucketMonth:
		period = periodText(true)
	default: // days; weeks are folded from them
		period = periodText(false)
	}
	if req.Period != gaas.BucketNone {
		groupBy = append(groupBy, period)
	}
	cols := []string{period}
	for _, d := range []struct {
		g          gaas.ReportGroup
		expr, none string
	}{
		{gaas.GroupByUser, "j.user_id", "0"},
		{gaas.GroupByProject, "COALESCE(j.project_id, 0)", "0"},
		{gaas.GroupByGPUType, "j.gpu_type", "''"},
	} {
		if req.Grouped(d.g) {
			cols, groupBy = append(cols, d.expr), append(groupBy, d.expr)
		} else {
			cols = append(cols, d.none)
		}
	}
	return strings.Join(cols, ", "), groupBy
}

// dateText is the UTC date of the timestamp column at as text, YYYY-MM-DD,
// or its month, YYYY-MM. SQLite keeps timestamps as UTC text that starts
// with the date.
func (db *DB) dateText(at string) func(month bool) string {
	return func(month bool) string {
		n, layout := "10", "YYYY-MM-DD"
		if month {
			n, layout = "7", "YYYY-MM"
		}
		if db.postgres {
			return "to_char(" + at + " AT TIME ZONE 'UTC', '" + layout + "')"
		}
		return "substr(" + at + ", 1, " + n + ")"
	}
}

// indexedBy makes SQLite read a table by index, where it would choose
// another without the statistics of ANALYZE, which the store does not run
// (it would read every final job by jobs_status rather than a few days' by
// jobs_ended_at). PostgreSQL plans by the statistics it keeps.
func (db *DB) indexedBy(index string) string {
	if db.postgres {
		return ""
	}
	return " INDEXED BY " + index
}

// groupClause is GROUP BY exprs, with the extra ones after them.
func groupClause(exprs []string, extra ...string) string {
	exprs = append(slices.Clip(exprs), extra...)
	if len(exprs) == 0 {
		return ""
	}
	return " GROUP BY " + strings.Join(exprs, ", ")
}

// ledgerUsage adds to rows what the charge and refund entries of jobs
// written in the range came to, reading only the entries with ids in ids.
func (s *ReportService) ledgerUsage(ctx context.Context, idb bun.IDB, req gaas.UsageRequest, ids idBounds, f usageFilter, rows *usageRows) error {
	cols, groupBy := usageColumns(req, s.db.dateText("l.created_at"))
	where, args := ids.where()
	q := "SELECT " + cols + ", count(*)," +
		" SUM(CASE WHEN l.kind = 'charge' THEN -l.delta ELSE 0 END), SUM(CASE WHEN l.kind = 'refund' THEN l.delta ELSE 0 END)" +
		" FROM ledger l JOIN jobs j ON j.id = l.job_id" +
		" WHERE " + where + " AND l.job_id IS NOT NULL AND l.kind IN ('charge', 'refund') AND l.created_at >= ? AND l.created_at < ?" +
		f.where + groupClause(groupBy)
	args = append(append(args, req.From, req.To), f.args...)
	return scanUsage(ctx, idb, req, q, args, rows,
		func(r *gaas.UsageRow, rs *sql.Rows, k *usageScan) error {
			var charged, returned sql.NullInt64
			if err := rs.Scan(append(k.dest(), &charged, &returned)...); err != nil {
				return err
			}
			r.Charged += gaas.Credits(charged.Int64)
			r.Returned += gaas.Credits(returned.Int64)
			return nil
		})
}

// jobUsage adds to rows the jobs that reached a final status in the
// range, and the GPU-hours they were charged for.
func (s *ReportService) jobUsage(ctx context.Context, idb bun.IDB, req gaas.UsageRequest, f usageFilter, rows *usageRows) error {
	cols, groupBy := usageColumns(req, s.db.dateText("j.updated_at"))
	q := "SELECT " + cols + ", count(*), j.status," +
		" SUM(CASE WHEN j.actual IS NOT NULL THEN j.actual WHEN j.status IN ('COMPLETED', 'FAILED') THEN j.estimated ELSE 0 END * j.gpu_count)" +
		" FROM jobs j" + s.db.indexedBy("jobs_ended_at") + " WHERE " + ended("j.status") + " AND j.updated_at >= ? AND j.updated_at < ?" + f.where +
		groupClause(groupBy, "j.status")
	return scanUsage(ctx, idb, req, q, append([]any{req.From, req.To}, f.args...), rows,
		func(r *gaas.UsageRow, rs *sql.Rows, k *usageScan) error {
			var status string
			var hours sql.NullInt64
			if err := rs.Scan(append(k.dest(), &status, &hours)...); err != nil {
				return err
			}
			r.Jobs[gaas.JobStatus(status)] += int(k.count)
			r.GPUHours += gaas.Hours(hours.Int64)
			return nil
		})
}

// usageScan is the key and count that every aggregation's rows start with.
type usageScan struct {
	period string
	key    usageKey
	count  int64
}

func (k *usageScan) dest() []any {
	return []any{&k.period, &k.key.user, &k.key.project, &k.key.gpuType, &k.count}
}

// scanUsage runs the aggregation q and adds each of its rows, which
// scan reads, to the row of rows its key falls in.
func scanUsage(ctx context.Context, idb bun.IDB, req gaas.UsageRequest, q string, args []any, rows *usageRows,
	scan func(r *gaas.UsageRow, rs *sql.Rows, k *usageScan) error) error {
	rs, err := queryRows(ctx, idb, q, args...)
	if err != nil {
		return err
	}
	defer rs.Close()
	for rs.Next() {
		var k usageScan
		r := gaas.UsageRow{Jobs: map[gaas.JobStatus]int{}}
		if err := scan(&r, rs, &k); err != nil {
			return err
		}
		if k.count == 0 {
			continue // an aggregate of no rows at all
		}
		if k.key.period, err = periodOf(req.Period, k.period); err != nil {
			return err
		}
		row := rows.m[k.key]
		if row == nil {
			if rows.max > 0 && len(rows.m) == rows.max {
				return gaas.TooManyRows(rows.max)
			}
			row = &gaas.UsageRow{PeriodStart: k.key.period, UserID: k.key.user, ProjectID: k.key.project, GPUType: k.key.gpuType, Jobs: emptyJobCounts()}
			rows.m[k.key] = row
		}
		row.GPUHours += r.GPUHours
		row.Charged += r.Charged
		row.Returned += r.Returned
		for st, n := range r.Jobs {
			row.Jobs[st] += n
		}
	}
	return rs.Err()
}

// periodOf is the start of the period of bucket that holds the date (or
// month) text.
func periodOf(bucket gaas.Bucket, text string) (time.Time, error) {
	layout := "2006-01-02"
	switch {
	case bucket == gaas.BucketNone:
		return time.Time{}, nil
	case bucket == gaas.BucketMonth:
		layout = "2006-01"
	}
	t, err := time.Parse(layout, text)
	if err != nil {
		return time.Time{}, fmt.Errorf("usage: period %q: %w", text, err)
	}
	return bucket.Start(t), nil
}

// emptyJobCounts is a count of 0 for every final status.
func emptyJobCounts() map[gaas.JobStatus]int {
	m := make(map[gaas.JobStatus]int, 4)
	for _, s := range gaas.FinalStatuses() {
		m[s] = 0
	}
	return m
}

// ended is the condition that a job's status (the column col) is final,
// as the index jobs_ended_at is made on it: SQLite uses a partial index
// only for a query that states its condition, and it is written as ORs,
// not IN (migration 0015).
func ended(col string) string {
	var terms []string
	for _, s := range gaas.FinalStatuses() {
		terms = append(terms, col+" = '"+string(s)+"'")
	}
	return "(" + strings.Join(terms, " OR ") + ")"
}

// nameRows fills in the names of the users and projects that rows name.
func nameRows(ctx context.Context, idb bun.IDB, rows *usageRows) error {
	users, projects := map[int64]string{}, map[int64]string{}
	for k := range rows.m {
		if k.user != 0 {
			users[k.user] = ""
		}
		if k.project != 0 {
			projects[k.project] = ""
		}
	}
	if err := namesOf(ctx, idb, "SELECT id, username FROM users WHERE id IN ", users); err != nil {
		return err
	}
	if err := namesOf(ctx, idb, "SELECT id, name FROM projects WHERE id IN ", projects); err != nil {
		return err
	}
	for _, r := range rows.m {
		r.Username, r.Project = users[r.UserID], projects[r.ProjectID]
	}
	return nil
}

// namesOf reads the name of every id of names by q, which ends in IN, a
// few hundred ids at a time.
func namesOf(ctx context.Context, idb bun.IDB, q string, names map[int64]string) error {
	ids := make([]any, 0, len(names))
	for id := range names {
		ids = append(ids, id)
	}
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), 500)]
		ids = ids[len(chunk):]
		rs, err := queryRows(ctx, idb, q+"("+strings.TrimSuffix(strings.Repeat("?, ", len(chunk)), ", ")+")", chunk...)
		if err != nil {
			return err
		}
		for rs.Next() {
			var id int64
			var name string
			if err := rs.Scan(&id, &name); err != nil {
				rs.Close()
				return err
			}
			names[id] = name
		}
		if err := errors.Join(rs.Err(), rs.Close()); err != nil {
			return err
		}
	}
	return nil
}
