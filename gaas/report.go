package gaas

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Usage reports say where GPU time went: over a range of time, cut into
// periods and grouped by user, project and GPU type, how many GPU-hours
// jobs used, what was charged and returned for them, and how many jobs
// ended in each final status. Every figure is read from the ledger and the
// jobs it names, and is attributed as follows (all times UTC):
//
//   - Charged is the credits of the charge entries written in the period,
//     Returned those of the refund entries: a job submitted in March and
//     settled in April is charged in March and returned to in April.
//   - GPUHours and Jobs count the jobs that reached a final status in the
//     period: GPUHours is the hours each was charged for (its actual hours,
//     or its estimate when it ended COMPLETED or FAILED without them; none
//     when it was rejected, or cancelled before it ran) times its GPUs.
//   - A row belongs to the job's submitter (user), the project it was
//     charged to (0: the submitter's own account) and its GPU type as the
//     catalogue spelled it.
//
// Entries that no job made (grants, expiry, transfers) are not usage.

// ReportGroup is a dimension a usage report can be grouped by.
type ReportGroup string

const (
	GroupByUser    ReportGroup = "user"
	GroupByProject ReportGroup = "project"
	GroupByGPUType ReportGroup = "gpu_type"
)

// ReportGroups lists the dimensions in the order rows are keyed by them.
func ReportGroups() []ReportGroup { return []ReportGroup{GroupByUser, GroupByProject, GroupByGPUType} }

// Bucket is how a usage report cuts its range of time.
type Bucket string

const (
	// BucketNone gives one row per group for the whole range.
	BucketNone Bucket = ""
	// BucketDay, BucketWeek and BucketMonth cut at UTC midnight, Monday
	// (ISO weeks) and the first of the month.
	BucketDay   Bucket = "day"
	BucketWeek  Bucket = "week"
	BucketMonth Bucket = "month"
)

// Start returns the start of the period that holds t, in UTC.
func (p Bucket) Start(t time.Time) time.Time {
	t = t.UTC()
	day := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	switch p {
	case BucketDay:
		return day
	case BucketWeek:
		return day.AddDate(0, 0, -((int(day.Weekday()) + 6) % 7))
	case BucketMonth:
		return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
	}
	return time.Time{}
}

// Next returns the start of the period after the one that begins at start.
func (p Bucket) Next(start time.Time) time.Time {
	switch p {
	case BucketDay:
		return start.AddDate(0, 0, 1)
	case BucketWeek:
		return start.AddDate(0, 0, 7)
	case BucketMonth:
		return start.AddDate(0, 1, 0)
	}
	return time.Time{}
}

// UsageRequest asks for a usage report of [From, To).
type UsageRequest struct {
	From, To time.Time
	Period   Bucket
	// GroupBy names the dimensions rows are keyed by, each at most once;
	// none gives one row per period.
	GroupBy []ReportGroup
	// UserID and ProjectID, when not 0, keep only that user's jobs, or
	// those charged to that project (and not its sub-projects).
	UserID, ProjectID int64
}

// UsageRow is the usage of one group in one bucket. The fields of the
// dimensions the report is not grouped by are zero.
type UsageRow struct {
	PeriodStart time.Time // zero for BucketNone
	UserID      int64
	Username    string
	ProjectID   int64 // 0: users' own accounts
	Project     string
	GPUType     string

	GPUHours Hours
	Charged  Credits
	Returned Credits
	// Jobs counts the jobs that reached each final status in the period.
	Jobs map[JobStatus]int
}

// UsageReport is the rows of a report in order of period, then user id,
// project id and GPU type, with their total. Periods and groups with no
// usage have no row.
type UsageReport struct {
	From, To time.Time
	Period   Bucket
	GroupBy  []ReportGroup
	Rows     []UsageRow
	Total    UsageRow
}

// Reports reads usage.
type Reports interface {
	// Usage returns the usage the caller may see: an admin everyone's; a
	// manager their own jobs' and those charged to the projects they
	// manage and their sub-projects; anyone else their own jobs'. A
	// UserID beyond that is ErrForbidden (a manager may name anyone, and
	// sees what that user's jobs in their projects used); a ProjectID the
	// caller is not a member of, or of a project below one they manage,
	// is ErrNotFound, as projects are hidden from strangers (a member sees
	// their own jobs in it). An empty or inverted range, an unknown period
	// or group, or a range that would give more than MaxReportPeriods
	// periods is ErrInvalid (see UsageRequest.Validate), as is a report of
	// more than MaxReportRows rows (TooManyRows).
	Usage(ctx context.Context, caller int64, req UsageRequest) (UsageReport, error)
}

// Validate lists every field of r that breaks a rule.
func (r UsageRequest) Validate() error {
	v := &ValidationError{}
	switch {
	case r.From.IsZero():
		v.Add("from", "is required")
	case r.To.IsZero():
		v.Add("to", "is required")
	case r.From.Year() < 1 || r.To.UTC().Year() > 9999:
		v.Add("from", "must be in the years 1 to 9999, as must to")
	case !r.From.Before(r.To):
		v.Add("to", "must be after from")
	case !r.Period.Valid():
		v.Add("period", "must be one of %s, %s or %s (or none)", BucketDay, BucketWeek, BucketMonth)
	case r.Period.Count(r.From, r.To) > MaxReportPeriods:
		v.Add("period", "the range from %s to %s holds more than %d periods of a %s",
			r.From.UTC().Format(time.RFC3339), r.To.UTC().Format(time.RFC3339), MaxReportPeriods, r.Period)
	}
	seen := make(map[ReportGroup]bool, len(r.GroupBy))
	for _, g := range r.GroupBy {
		switch {
		case !slices.Contains(ReportGroups(), g):
			v.Add("group_by", "%q is not one of user, project or gpu_type", truncate(string(g), 32))
		case seen[g]:
			v.Add("group_by", "names %s twice", g)
		}
		seen[g] = true
	}
	if r.UserID < 0 {
		v.Add("user_id", "must be a user's id")
	}
	if r.ProjectID < 0 {
		v.Add("project_id", "must be a project's id")
	}
	return v.Err()
}

// Valid reports whether p is a known bucket, BucketNone included.
func (p Bucket) Valid() bool {
	return p == BucketNone || p == BucketDay || p == BucketWeek || p == BucketMonth
}

// Count returns how many periods of p [from, to) touches (1 for
// BucketNone), counting no further than MaxReportPeriods+1.
func (p Bucket) Count(from, to time.Time) int {
	if p == BucketNone {
		return 1
	}
	n := 0
	for s := p.Start(from); s.Before(to) && n <= MaxReportPeriods; s = p.Next(s) {
		n++
	}
	return n
}

// Grouped reports whether the report is keyed by dimension g.
func (r UsageRequest) Grouped(g ReportGroup) bool { return slices.Contains(r.GroupBy, g) }

// FinalStatuses returns the statuses no transition leaves, in lifecycle
// order: the keys of UsageRow.Jobs.
func FinalStatuses() []JobStatus {
	var out []JobStatus
	for _, s := range statuses {
		if s.Final() {
			out = append(out, s)
		}
	}
	return out
}

// MaxReportPeriods bounds the periods of one report: ten years of days.
const MaxReportPeriods = 3660

// MaxReportRows bounds the rows of one report, what one client can make
// the server build and send: a report that would have more is ErrInvalid
// (see TooManyRows), and the store stops reading as soon as it passes the
// bound. A CSV export of a busy site's month by day, user, project and GPU
// type (a thousand active users on one or two types and projects) is tens
// of thousands of rows, and a year by month of the same under 100,000;
// the year of a million jobs of BENCHMARKS.md grouped by everything is
// about 200,000 rows, 4 seconds and 30 MB of JSON, and is refused: a
// quarter of it, or the year by user alone, is well within.
const MaxReportRows = 100_000

// TooManyRows is the error of a report that would have more than max
// rows (MaxReportRows, or less where a store is set to).
func TooManyRows(max int) error {
	return Invalid("group_by", "with this range and period gives more than %d rows; narrow the range from and to, choose a longer period, or group by fewer of user, project and gpu_type",
		max)
}

// ParseReportTime reads a bound of a report's range: an RFC 3339 time, or
// a date YYYY-MM-DD, which is that day's midnight UTC.
func ParseReportTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("gaas: %q is neither an RFC 3339 time nor a date YYYY-MM-DD", truncate(s, 40))
	}
	return t, nil
}

// ParseReportGroups reads a comma-separated list of dimensions, such as
// "user,gpu_type"; UsageRequest.Validate checks the names.
func ParseReportGroups(s string) []ReportGroup {
	if strings.TrimSpace(s) == "" {
		return nil
	}
	var out []ReportGroup
	for _, g := range strings.Split(s, ",") {
		out = append(out, ReportGroup(strings.TrimSpace(g)))
	}
	return out
}

// Table is the report as text cells, as CSV and aligned columns print it:
// a header, then a row for each row of the report. It has a column for the
// period when the report is cut into periods and for each dimension it is
// grouped by (user and project by id and name; project 0 and "" for the
// users' own accounts), then the GPU-hours, the credits charged and
// returned, and the jobs that ended in each final status.
func (r UsageReport) Table() (header []string, rows [][]string) {
	periods := r.Period != BucketNone
	if periods {
		header = append(header, "period_start")
	}
	byUser, byProject, byType := slices.Contains(r.GroupBy, GroupByUser), slices.Contains(r.GroupBy, GroupByProject), slices.Contains(r.GroupBy, GroupByGPUType)
	if byUser {
		header = append(header, "user_id", "username")
	}
	if byProject {
		header = append(header, "project_id", "project")
	}
	if byType {
		header = append(header, "gpu_type")
	}
	header = append(header, "gpu_hours", "charged", "returned")
	for _, s := range FinalStatuses() {
		header = append(header, strings.ToLower(string(s)))
	}
	for _, u := range r.Rows {
		var row []string
		if periods {
			row = append(row, u.PeriodStart.Format(time.DateOnly))
		}
		if byUser {
			row = append(row, strconv.FormatInt(u.UserID, 10), u.Username)
		}
		if byProject {
			row = append(row, strconv.FormatInt(u.ProjectID, 10), u.Project)
		}
		if byType {
			row = append(row, u.GPUType)
		}
		row = append(row, u.GPUHours.String(), u.Charged.String(), u.Returned.String())
		for _, s := range FinalStatuses() {
			row = append(row, strconv.Itoa(u.Jobs[s]))
		}
		rows = append(rows, row)
	}
	return header, rows
}

// CSVName is what the report is saved as in CSV: usage-FROM-TO.csv.
func (r UsageReport) CSVName() string {
	const layout = "20060102T150405Z"
	return "usage-" + r.From.UTC().Format(layout) + "-" + r.To.UTC().Format(layout) + ".csv"
}

// WriteCSV writes the report's Table as CSV. A text cell that a spreadsheet
// would take for a formula (one beginning with '=', '+', '-', '@', tab or
// carriage return, as a GPU type or username may) is prefixed with a single
// quote, as OWASP advises; numbers are written as they are.
func (r UsageReport) WriteCSV(w io.Writer) error {
	header, rows := r.Table()
	cw := csv.NewWriter(w)
	cw.Write(header)
	for _, row := range rows {
		for i, cell := range row {
			row[i] = csvCell(cell)
		}
		cw.Write(row)
	}
	cw.Flush()
	return cw.Error()
}

func csvCell(s string) string {
	if s == "" || !strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return s
	}
	if _, err := strconv.ParseFloat(s, 64); err == nil {
		return s
	}
	return "'" + s
}
