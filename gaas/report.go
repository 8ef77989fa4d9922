package gaas

import (
	"context"
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
	// UserID or ProjectID beyond that is ErrForbidden; an empty or
	// inverted range, an unknown period or group, or a range that would
	// give more than MaxReportPeriods periods is ErrInvalid.
	Usage(ctx context.Context, caller int64, req UsageRequest) (UsageReport, error)
}

// MaxReportPeriods bounds the periods of one report: ten years of days.
const MaxReportPeriods = 3660
