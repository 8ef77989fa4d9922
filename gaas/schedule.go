package gaas

import (
	"context"
	"fmt"
	"time"
	_ "time/tzdata" // time zones are named by IANA name whatever the host has installed
)

// Period is how often a schedule gives its allocation.
type Period string

const (
	PeriodDaily     Period = "daily"
	PeriodWeekly    Period = "weekly"
	PeriodMonthly   Period = "monthly"
	PeriodQuarterly Period = "quarterly"
	PeriodYearly    Period = "yearly"
)

// Periods returns every period, shortest first.
func Periods() []Period {
	return []Period{PeriodDaily, PeriodWeekly, PeriodMonthly, PeriodQuarterly, PeriodYearly}
}

// Valid reports whether p is one of Periods.
func (p Period) Valid() bool {
	_, _, ok := p.step()
	return ok
}

// step is the length of p in days or in months (one of them is 0).
func (p Period) step() (days, months int, ok bool) {
	switch p {
	case PeriodDaily:
		return 1, 0, true
	case PeriodWeekly:
		return 7, 0, true
	case PeriodMonthly:
		return 0, 1, true
	case PeriodQuarterly:
		return 0, 3, true
	case PeriodYearly:
		return 0, 12, true
	}
	return 0, 0, false
}

// Leftover says what happens to what a schedule's allocation still holds
// when its period ends.
type Leftover string

const (
	// LeftoverExpire lets it expire with the allocation.
	LeftoverExpire Leftover = "expire"
	// LeftoverRollover moves it, up to the schedule's RolloverCap, into
	// the next period's allocation; the rest expires.
	LeftoverRollover Leftover = "rollover"
)

// Recurrence is the periods of a schedule: period n (0, 1, ...) begins at
// Start's wall clock time in Location, n days, weeks, months, quarters or
// years after Start's date there, and ends where period n+1 begins. A day
// of the month that a month lacks (a monthly schedule started on the 31st)
// is that month's last day; each period is reckoned from Start, not from
// the period before, so the 31st comes back when a month has one. A wall
// clock time that a change of daylight saving time skips is read with the
// offset before the change, as RFC 5545 reads it (2:30 on the night clocks
// go from 2:00 to 3:00 is 3:30); one that happens twice is the first.
type Recurrence struct {
	Period   Period
	Start    time.Time
	Location *time.Location
}

// Span is one period of a Recurrence: [Start, End).
type Span struct {
	Index      int64
	Start, End time.Time
}

// Contains reports whether t is in s.
func (s Span) Contains(t time.Time) bool { return !t.Before(s.Start) && t.Before(s.End) }

// begin is when period n begins: Start itself for period 0.
func (r Recurrence) begin(n int64) time.Time {
	if n == 0 {
		return r.Start
	}
	days, months, _ := r.Period.step()
	l := r.Start.In(r.Location)
	y, m, d := l.Date()
	hh, mm, ss := l.Clock()
	if days != 0 {
		return wallTime(y, m, d+days*int(n), hh, mm, ss, l.Nanosecond(), r.Location)
	}
	total := int(m) - 1 + months*int(n)
	y, m = y+floorDiv(total, 12), time.Month(mod(total, 12)+1)
	d = min(d, daysIn(y, m))
	return wallTime(y, m, d, hh, mm, ss, l.Nanosecond(), r.Location)
}

// wallTime is time.Date, but a wall clock time that loc skips is read with
// the offset before the change, which puts it after the gap: time.Date
// may read it with the offset after, which puts it before.
func wallTime(y int, m time.Month, d, hh, mm, ss, ns int, loc *time.Location) time.Time {
	t := time.Date(y, m, d, hh, mm, ss, ns, loc)
	ty, tm, td := t.Date()
	th, tmin, ts := t.Clock()
	got := time.Date(ty, tm, td, th, tmin, ts, t.Nanosecond(), time.UTC)
	if short := time.Date(y, m, d, hh, mm, ss, ns, time.UTC).Sub(got); short > 0 {
		return t.Add(short)
	}
	return t
}

func floorDiv(a, b int) int {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func mod(a, b int) int { return a - floorDiv(a, b)*b }

// daysIn is the number of days of month m of year y.
func daysIn(y int, m time.Month) int {
	return time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// Nth is period n, which must not be negative.
func (r Recurrence) Nth(n int64) Span {
	return Span{Index: n, Start: r.begin(n), End: r.begin(n + 1)}
}

// At is the period that contains t; ok is false when t is before Start.
func (r Recurrence) At(t time.Time) (s Span, ok bool) {
	if t.Before(r.Start) {
		return Span{}, false
	}
	n := r.estimate(t)
	for n > 0 && r.begin(n).After(t) {
		n--
	}
	for !r.begin(n + 1).After(t) {
		n++
	}
	return r.Nth(n), true
}

// Next is the first period that begins after t.
func (r Recurrence) Next(t time.Time) Span {
	s, ok := r.At(t)
	if !ok {
		return r.Nth(0)
	}
	return r.Nth(s.Index + 1)
}

// estimate is a period index within one or two of the one holding t, from
// the calendar of Location: days or months from Start's date to t's.
func (r Recurrence) estimate(t time.Time) int64 {
	days, months, _ := r.Period.step()
	a, b := r.Start.In(r.Location), t.In(r.Location)
	if days != 0 {
		ay, am, ad := a.Date()
		by, bm, bd := b.Date()
		elapsed := time.Date(by, bm, bd, 0, 0, 0, 0, time.UTC).Sub(time.Date(ay, am, ad, 0, 0, 0, 0, time.UTC))
		return max(0, int64(elapsed/(24*time.Hour))/int64(days)-1)
	}
	elapsed := (b.Year()-a.Year())*12 + int(b.Month()) - int(a.Month())
	return max(0, int64(elapsed/months)-1)
}

// Schedules are bounded in time so that every period's arithmetic stays
// within what time.Time and an int64 index hold.
var (
	ScheduleEarliest = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	ScheduleLatest   = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
)

// Schedule gives an account an allocation every period: a user's or a
// project's recurring allocation. Each period's allocation is made once,
// starting when the period begins and expiring when it ends.
type Schedule struct {
	ID int64
	// The account it gives to: user UserID's, or project ProjectID's.
	AccountID int64
	UserID    int64
	ProjectID int64
	Amount    Credits
	// GPUTypes is the scope of its allocations; nil pays for every type.
	GPUTypes []string
	Period   Period
	// StartsAt is when the first period begins; TimeZone the IANA time
	// zone whose calendar and clocks its periods follow.
	StartsAt time.Time
	TimeZone string
	Leftover Leftover
	// RolloverCap bounds what moves into the next period (LeftoverRollover).
	RolloverCap Credits
	Paused      bool
	// EndedAt, when set, is when it was ended: it gives nothing more.
	EndedAt *time.Time
	// NextPeriod is the first period not yet given: it is given when it
	// begins, while the schedule is neither paused nor ended.
	NextPeriod Span
	Reason     string
	// Who made it: the user CreatedByID, or the system under CreatedBySystem.
	CreatedByID     int64
	CreatedBySystem string
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

// Recurrence is the periods of s. Its time zone must load (Validate).
func (s Schedule) Recurrence() Recurrence {
	loc, err := time.LoadLocation(s.TimeZone)
	if err != nil {
		loc = time.UTC
	}
	return Recurrence{Period: s.Period, Start: s.StartsAt, Location: loc}
}

// Active reports whether s still gives allocations.
func (s Schedule) Active() bool { return !s.Paused && s.EndedAt == nil }

// Rollover is what of left, held by the allocation of a period of s when
// it ends, moves into the next period's allocation.
func (s Schedule) Rollover(left Credits) Credits {
	if s.Leftover != LeftoverRollover || left <= 0 {
		return 0
	}
	return min(left, s.RolloverCap)
}

// MaxSchedulesPerAccount bounds the schedules, not ended, of one account.
const MaxSchedulesPerAccount = 100

// CreateScheduleRequest gives user UserID, or project ProjectID, Amount
// credits for GPUTypes (nil: every type) every Period from StartsAt (zero:
// now) in TimeZone (empty: UTC). What is left at a period's end expires
// (Leftover empty or LeftoverExpire), or moves into the next period's
// allocation up to RolloverCap (LeftoverRollover). GrantCurrent, when the
// schedule starts before now, gives the period under way at once;
// otherwise the first allocation is the next period's.
type CreateScheduleRequest struct {
	UserID       int64
	ProjectID    int64
	Amount       Credits
	GPUTypes     []string
	Period       Period
	StartsAt     time.Time
	TimeZone     string
	Leftover     Leftover
	RolloverCap  Credits
	GrantCurrent bool
	Reason       string
}

// Validate lists every field of r that breaks a rule that needs nothing
// but r; the store checks the account and the GPU types.
func (r CreateScheduleRequest) Validate() error {
	v := &ValidationError{}
	if (r.UserID == 0) == (r.ProjectID == 0) {
		v.Add("project_id", "a schedule is a user's or a project's: name exactly one of user_id and project_id")
	}
	if r.UserID < 0 {
		v.Add("user_id", "must be a positive id")
	}
	if r.ProjectID < 0 {
		v.Add("project_id", "must be a positive id")
	}
	if r.Amount <= 0 || r.Amount > MaxCredits {
		v.Add("amount", "must be greater than 0 and at most %s", MaxCredits)
	}
	validateScope(v, r.GPUTypes)
	if !r.Period.Valid() {
		v.Add("period", "must be one of daily, weekly, monthly, quarterly, yearly, not %q", r.Period)
	}
	if !r.StartsAt.IsZero() && (r.StartsAt.Before(ScheduleEarliest) || !r.StartsAt.Before(ScheduleLatest)) {
		v.Add("starts_at", "must be from %s and before %s", ScheduleEarliest.Format(time.DateOnly), ScheduleLatest.Format(time.DateOnly))
	}
	if err := ValidateTimeZone(r.TimeZone); err != nil {
		v.Add("time_zone", "%s", err)
	}
	switch r.Leftover {
	case "", LeftoverExpire:
		if r.RolloverCap != 0 {
			v.Add("rollover_cap", "may be given only with leftover %q", LeftoverRollover)
		}
	case LeftoverRollover:
		if r.RolloverCap <= 0 || r.RolloverCap > MaxCredits {
			v.Add("rollover_cap", "must be greater than 0 and at most %s with leftover %q", MaxCredits, LeftoverRollover)
		}
	default:
		v.Add("leftover", "must be %q or %q, not %q", LeftoverExpire, LeftoverRollover, r.Leftover)
	}
	reasonText.add(v, "reason", r.Reason)
	return v.Err()
}

// ValidateTimeZone accepts an IANA time zone name ("Europe/Berlin",
// "UTC") and the empty string, read as UTC. "Local", which would mean
// whatever the server's host is set to, is refused.
func ValidateTimeZone(name string) error {
	if name == "" {
		return nil
	}
	if name == "Local" {
		return fmt.Errorf("must name a time zone, such as %q or %q; %q would follow the server's host", "UTC", "Europe/Berlin", name)
	}
	if len(name) > 64 {
		return fmt.Errorf("is longer than 64 characters")
	}
	if _, err := time.LoadLocation(name); err != nil {
		return fmt.Errorf("%q is not an IANA time zone, such as %q or %q", name, "UTC", "Europe/Berlin")
	}
	return nil
}

// SchedulesRequest asks for a page of schedules, in order of id: those of
// user UserID, or of project ProjectID, or with neither every schedule
// the caller may see (an admin: all; a project manager: their projects'
// and their sub-projects').
type SchedulesRequest struct {
	UserID    int64
	ProjectID int64
	Page
}

// SchedulePage is one page of schedules; NextCursor is empty on the last page.
type SchedulePage struct {
	Items      []Schedule
	NextCursor string
}

// GetScheduleRequest names the schedule to read.
type GetScheduleRequest struct {
	ScheduleID int64
}

// UpdateScheduleRequest pauses or resumes schedule ScheduleID, or ends it.
// A paused schedule gives nothing; resumed, it gives the period under way
// if that was not given, and the next ones. Ending is for good, and takes
// back nothing already given.
type UpdateScheduleRequest struct {
	ScheduleID int64
	Paused     *bool
	End        bool
}

// Validate lists every field of r that breaks a rule.
func (r UpdateScheduleRequest) Validate() error {
	v := &ValidationError{}
	switch {
	case r.Paused == nil && !r.End:
		v.Add("paused", "give paused (true or false) or ended (true)")
	case r.Paused != nil && r.End:
		v.Add("ended", "may not be given with paused")
	}
	return v.Err()
}

// Schedules keeps recurring allocations. Admins make them for anyone, a
// project manager for their projects and the projects below them.
type Schedules interface {
	// CreateSchedule makes a schedule, and when asked gives its current
	// period at once.
	CreateSchedule(ctx context.Context, caller int64, req CreateScheduleRequest) (Schedule, error)
	// Schedules lists schedules by id.
	Schedules(ctx context.Context, caller int64, req SchedulesRequest) (SchedulePage, error)
	// Schedule reads one; one the caller may not see is ErrNotFound.
	Schedule(ctx context.Context, caller int64, req GetScheduleRequest) (Schedule, error)
	// UpdateSchedule pauses, resumes or ends one; an ended one is ErrConflict.
	UpdateSchedule(ctx context.Context, caller int64, req UpdateScheduleRequest) (Schedule, error)
}
