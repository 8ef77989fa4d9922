package gaas_test

import (
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/gaas"
)

func zone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	require.NoError(t, err)
	return loc
}

// A monthly schedule started on January 31 in Berlin gives the last day of
// shorter months and the 31st again when a month has one, at midnight
// Berlin time whether that is CET or CEST.
func TestRecurrenceMonthlyFromMonthEnd(t *testing.T) {
	berlin := zone(t, "Europe/Berlin")
	r := gaas.Recurrence{Period: gaas.PeriodMonthly, Start: time.Date(2027, 1, 31, 0, 0, 0, 0, berlin), Location: berlin}
	want := []time.Time{
		time.Date(2027, 1, 30, 23, 0, 0, 0, time.UTC),  // Jan 31, CET
		time.Date(2027, 2, 27, 23, 0, 0, 0, time.UTC),  // Feb 28
		time.Date(2027, 3, 30, 22, 0, 0, 0, time.UTC),  // Mar 31, CEST since Mar 28
		time.Date(2027, 4, 29, 22, 0, 0, 0, time.UTC),  // Apr 30
		time.Date(2027, 5, 30, 22, 0, 0, 0, time.UTC),  // May 31
		time.Date(2027, 6, 29, 22, 0, 0, 0, time.UTC),  // Jun 30
		time.Date(2027, 7, 30, 22, 0, 0, 0, time.UTC),  // Jul 31
		time.Date(2027, 8, 30, 22, 0, 0, 0, time.UTC),  // Aug 31
		time.Date(2027, 9, 29, 22, 0, 0, 0, time.UTC),  // Sep 30
		time.Date(2027, 10, 30, 22, 0, 0, 0, time.UTC), // Oct 31, CEST until that morning
		time.Date(2027, 11, 29, 23, 0, 0, 0, time.UTC), // Nov 30, CET
		time.Date(2027, 12, 30, 23, 0, 0, 0, time.UTC), // Dec 31
		time.Date(2028, 1, 30, 23, 0, 0, 0, time.UTC),  // Jan 31
		time.Date(2028, 2, 28, 23, 0, 0, 0, time.UTC),  // Feb 29, a leap year
	}
	for i, w := range want {
		s := r.Nth(int64(i))
		assert.True(t, s.Start.Equal(w), "period %d begins %s, want %s", i, s.Start.UTC(), w)
		if i+1 < len(want) {
			assert.True(t, s.End.Equal(want[i+1]), "period %d ends %s, want %s", i, s.End.UTC(), want[i+1])
		}
		got, ok := r.At(w)
		require.True(t, ok)
		assert.Equal(t, int64(i), got.Index, "the instant period %d begins is in it", i)
		if i > 0 {
			got, _ = r.At(w.Add(-time.Nanosecond))
			assert.Equal(t, int64(i-1), got.Index, "the instant before period %d begins is in the one before", i)
		}
	}
	_, ok := r.At(want[0].Add(-time.Nanosecond))
	assert.False(t, ok, "before the start there is no period")
	assert.Equal(t, int64(0), r.Next(want[0].Add(-time.Hour)).Index)
	assert.Equal(t, int64(2), r.Next(want[1]).Index)
}

// Daily periods follow the wall clock: the one that holds the change to
// daylight saving time is 23 hours long, the one back 25.
func TestRecurrenceDailyAcrossDST(t *testing.T) {
	berlin := zone(t, "Europe/Berlin")
	r := gaas.Recurrence{Period: gaas.PeriodDaily, Start: time.Date(2027, 3, 1, 6, 0, 0, 0, berlin), Location: berlin}
	// The period from 06:00 on the 27th holds the change of the 28th.
	spring, ok := r.At(time.Date(2027, 3, 27, 12, 0, 0, 0, berlin))
	require.True(t, ok)
	assert.Equal(t, int64(26), spring.Index)
	assert.Equal(t, 23*time.Hour, spring.End.Sub(spring.Start))
	autumn, _ := r.At(time.Date(2027, 10, 30, 12, 0, 0, 0, berlin))
	assert.Equal(t, 25*time.Hour, autumn.End.Sub(autumn.Start))
	assert.Equal(t, "06:00", autumn.Start.In(berlin).Format("15:04"))
	assert.Equal(t, "06:00", autumn.End.In(berlin).Format("15:04"))

	// A wall clock time that the spring change skips still gives ordered,
	// contiguous days.
	gap := gaas.Recurrence{Period: gaas.PeriodDaily, Start: time.Date(2027, 3, 27, 2, 30, 0, 0, berlin), Location: berlin}
	for n := int64(0); n < 3; n++ {
		s := gap.Nth(n)
		assert.True(t, s.End.After(s.Start))
		assert.True(t, s.End.Equal(gap.Nth(n+1).Start))
	}
}

func TestRecurrencePeriods(t *testing.T) {
	utc := time.UTC
	ny := zone(t, "America/New_York")
	for _, c := range []struct {
		name   string
		r      gaas.Recurrence
		n      int64
		starts time.Time
	}{
		{"weekly", gaas.Recurrence{gaas.PeriodWeekly, time.Date(2026, 12, 28, 9, 0, 0, 0, utc), utc}, 2, time.Date(2027, 1, 11, 9, 0, 0, 0, utc)},
		{"quarterly from the 31st", gaas.Recurrence{gaas.PeriodQuarterly, time.Date(2026, 8, 31, 0, 0, 0, 0, utc), utc}, 2, time.Date(2027, 2, 28, 0, 0, 0, 0, utc)},
		{"quarterly comes back to the 31st", gaas.Recurrence{gaas.PeriodQuarterly, time.Date(2026, 8, 31, 0, 0, 0, 0, utc), utc}, 3, time.Date(2027, 5, 31, 0, 0, 0, 0, utc)},
		{"yearly from a leap day", gaas.Recurrence{gaas.PeriodYearly, time.Date(2028, 2, 29, 0, 0, 0, 0, utc), utc}, 1, time.Date(2029, 2, 28, 0, 0, 0, 0, utc)},
		{"yearly leap day again", gaas.Recurrence{gaas.PeriodYearly, time.Date(2028, 2, 29, 0, 0, 0, 0, utc), utc}, 4, time.Date(2032, 2, 29, 0, 0, 0, 0, utc)},
		{"monthly in New York", gaas.Recurrence{gaas.PeriodMonthly, time.Date(2027, 1, 15, 0, 0, 0, 0, ny), ny}, 3, time.Date(2027, 4, 15, 4, 0, 0, 0, utc)},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := c.r.Nth(c.n)
			assert.True(t, s.Start.Equal(c.starts), "period %d begins %s, want %s", c.n, s.Start.UTC(), c.starts)
			at, ok := c.r.At(c.starts.Add(time.Minute))
			require.True(t, ok)
			assert.Equal(t, c.n, at.Index)
		})
	}
}

// Property: for random schedules and instants, the periods are ordered
// and contiguous, At finds the one period holding an instant, Next the one
// after it, and every period begins on the start's day of the month (or
// the month's last day) at the start's wall clock time, unless daylight
// saving time skips that time.
func TestRecurrenceProperties(t *testing.T) {
	seed := time.Now().UnixNano()
	if s := os.Getenv("GAAS_SEED"); s != "" {
		var err error
		seed, err = strconv.ParseInt(s, 10, 64)
		require.NoError(t, err)
	}
	t.Logf("seed %d: reproduce with GAAS_SEED=%d", seed, seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	zones := []string{"UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata", "Pacific/Chatham", "America/Sao_Paulo", "Europe/London"}
	periods := gaas.Periods()
	for i := 0; i < 2000; i++ {
		loc := zone(t, zones[rng.IntN(len(zones))])
		start := time.Date(2000+rng.IntN(100), time.Month(1+rng.IntN(12)), 1+rng.IntN(31), rng.IntN(24), rng.IntN(4)*15, 0, 0, loc)
		r := gaas.Recurrence{Period: periods[rng.IntN(len(periods))], Start: start, Location: loc}
		at := start.Add(time.Duration(rng.Int64N(int64(40 * 365 * 24 * time.Hour))))
		s, ok := r.At(at)
		require.True(t, ok)
		if !s.Contains(at) || s.Start.After(at) || !s.End.After(at) {
			t.Fatalf("seed %d: %s from %s: period %d [%s, %s) does not hold %s", seed, r.Period, start, s.Index, s.Start, s.End, at)
		}
		require.Equal(t, s, r.Nth(s.Index), "seed %d", seed)
		if s.Index > 0 {
			prev := r.Nth(s.Index - 1)
			require.True(t, prev.End.Equal(s.Start), "seed %d: periods are contiguous", seed)
			require.True(t, prev.Start.Before(s.Start), "seed %d: periods are ordered", seed)
		}
		next := r.Next(at)
		require.Equal(t, s.Index+1, next.Index, "seed %d", seed)
		require.True(t, next.Start.Equal(s.End), "seed %d", seed)
		back, _ := r.At(s.Start)
		require.Equal(t, s.Index, back.Index, "seed %d: a period holds its own start", seed)

		if s.Index == 0 {
			continue
		}
		// The period begins on the calendar day reckoned from the start's
		// (the month's last day when it has no such day), at the start's
		// wall clock time, or later when the zone skipped that time.
		want := start.In(loc)
		y, m, d := want.Year(), int(want.Month())-1, want.Day()
		switch r.Period {
		case gaas.PeriodDaily:
			d += int(s.Index)
		case gaas.PeriodWeekly:
			d += 7 * int(s.Index)
		default:
			months := map[gaas.Period]int{gaas.PeriodMonthly: 1, gaas.PeriodQuarterly: 3, gaas.PeriodYearly: 12}[r.Period]
			m += months * int(s.Index)
			y, m = y+m/12, m%12
			d = min(d, time.Date(y, time.Month(m+2), 0, 0, 0, 0, 0, time.UTC).Day())
		}
		day := time.Date(y, time.Month(m+1), d, 0, 0, 0, 0, time.UTC)
		local := s.Start.In(loc)
		gotDay := time.Date(local.Year(), local.Month(), local.Day(), 0, 0, 0, 0, time.UTC)
		wall := local.Hour()*60 + local.Minute()
		wantWall := want.Hour()*60 + want.Minute()
		switch {
		case gotDay.Equal(day) && wall == wantWall:
		case gotDay.Equal(day) && wall > wantWall, gotDay.Equal(day.AddDate(0, 0, 1)) && wall < wantWall:
			// Skipped: the wall clock time did not exist that day.
			if h, mi, _ := time.Date(y, time.Month(m+1), d, want.Hour(), want.Minute(), 0, 0, loc).Clock(); h*60+mi == wantWall {
				t.Fatalf("seed %d: %s from %s: period %d begins at %s, though %02d:%02d existed that day", seed, r.Period, start, s.Index, local, want.Hour(), want.Minute())
			}
		default:
			t.Fatalf("seed %d: %s from %s: period %d begins at %s, want %s at %02d:%02d", seed, r.Period, start, s.Index, local, day.Format(time.DateOnly), want.Hour(), want.Minute())
		}
	}
}

func TestCreateScheduleRequestValidate(t *testing.T) {
	ok := gaas.CreateScheduleRequest{UserID: 2, Amount: 10 * gaas.Credit, Period: gaas.PeriodMonthly, TimeZone: "Europe/Berlin"}
	require.NoError(t, ok.Validate())
	for _, c := range []struct {
		name, field string
		edit        func(*gaas.CreateScheduleRequest)
	}{
		{"no account", "project_id", func(r *gaas.CreateScheduleRequest) { r.UserID = 0 }},
		{"two accounts", "project_id", func(r *gaas.CreateScheduleRequest) { r.ProjectID = 3 }},
		{"no amount", "amount", func(r *gaas.CreateScheduleRequest) { r.Amount = 0 }},
		{"too much", "amount", func(r *gaas.CreateScheduleRequest) { r.Amount = gaas.MaxCredits + 1 }},
		{"unknown period", "period", func(r *gaas.CreateScheduleRequest) { r.Period = "fortnightly" }},
		{"no period", "period", func(r *gaas.CreateScheduleRequest) { r.Period = "" }},
		{"unknown zone", "time_zone", func(r *gaas.CreateScheduleRequest) { r.TimeZone = "Mars/Olympus" }},
		{"host zone", "time_zone", func(r *gaas.CreateScheduleRequest) { r.TimeZone = "Local" }},
		{"ancient start", "starts_at", func(r *gaas.CreateScheduleRequest) { r.StartsAt = time.Date(1999, 1, 1, 0, 0, 0, 0, time.UTC) }},
		{"unknown leftover", "leftover", func(r *gaas.CreateScheduleRequest) { r.Leftover = "keep" }},
		{"rollover without cap", "rollover_cap", func(r *gaas.CreateScheduleRequest) { r.Leftover = gaas.LeftoverRollover }},
		{"cap without rollover", "rollover_cap", func(r *gaas.CreateScheduleRequest) { r.RolloverCap = gaas.Credit }},
		{"empty scope", "gpu_types", func(r *gaas.CreateScheduleRequest) { r.GPUTypes = []string{} }},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := ok
			c.edit(&r)
			err := r.Validate()
			var v *gaas.ValidationError
			require.ErrorAs(t, err, &v)
			assert.ErrorIs(t, err, gaas.ErrInvalid)
			assert.Equal(t, c.field, v.Fields[0].Field, "%v", err)
		})
	}
	paused := true
	assert.NoError(t, gaas.UpdateScheduleRequest{ScheduleID: 1, Paused: &paused}.Validate())
	assert.NoError(t, gaas.UpdateScheduleRequest{ScheduleID: 1, End: true}.Validate())
	assert.ErrorIs(t, gaas.UpdateScheduleRequest{ScheduleID: 1}.Validate(), gaas.ErrInvalid)
	assert.ErrorIs(t, gaas.UpdateScheduleRequest{ScheduleID: 1, Paused: &paused, End: true}.Validate(), gaas.ErrInvalid)
}

func TestScheduleRollover(t *testing.T) {
	s := gaas.Schedule{Leftover: gaas.LeftoverRollover, RolloverCap: 5 * gaas.Credit}
	assert.Equal(t, 3*gaas.Credit, s.Rollover(3*gaas.Credit))
	assert.Equal(t, 5*gaas.Credit, s.Rollover(8*gaas.Credit))
	assert.Equal(t, gaas.Credits(0), s.Rollover(0))
	s.Leftover = gaas.LeftoverExpire
	assert.Equal(t, gaas.Credits(0), s.Rollover(8*gaas.Credit))
}
