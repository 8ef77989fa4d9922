package store_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/gaas"
	"github.com/gaas-io/gaas/store"
	"github.com/gaas-io/gaas/store/storetest"
)

// rolledUpTo is the first day the rollup does not hold (zero: none yet).
func rolledUpTo(t *testing.T, db *store.DB) time.Time {
	t.Helper()
	var days, months string
	require.NoError(t, store.RawQueryRow(context.Background(), db, "SELECT days, months FROM usage_rollup_state", &days, &months))
	if days == "" {
		return time.Time{}
	}
	d, err := time.Parse(time.DateOnly, days)
	require.NoError(t, err)
	return d
}

// TestRollUpUsage: a history of months that no report rolled up is caught
// up by Upkeep.RollUpUsage a few days a call, each call saying how many it
// did, up to the last closed day as the store's clock has it, and then one
// day for each day that closes; a report on the way rolls up at most a
// month itself. Every report before, during and after the catch-up is
// what the ledger sums to.
func TestRollUpUsage(t *testing.T) {
	ctx := context.Background()
	seed := storetest.Seed(t)
	forEachBackend(t, func(t *testing.T, b backend) {
		rng := rand.New(rand.NewPCG(seed, 21))
		s := newUsageSite(t, b, rng)
		s.quiet = true
		s.play(t, rng, 300)
		h := s.readBack(t)
		db := s.f.db
		end := s.clk.Now().Add(time.Second)
		closed := gaas.BucketDay.Start(s.clk.Now().Add(-24 * time.Hour))
		require.True(t, rolledUpTo(t, db).IsZero(), "nothing is rolled up before the first report or run")
		require.Greater(t, closed.Sub(s.start), 40*24*time.Hour, "the history is shorter than 40 days")

		u := s.users
		a := s.start.Add(time.Duration(rng.Int64N(int64(end.Sub(s.start)))))
		ranges := [][2]time.Time{{s.start.Add(-time.Hour), end}, {a, a.Add(time.Duration(rng.Int64N(int64(end.Sub(a)))) + time.Second)}}
		type ask struct {
			who    string
			caller int64
			req    gaas.UsageRequest
		}
		var asks []ask
		for _, rg := range ranges {
			for _, period := range []gaas.Bucket{gaas.BucketNone, gaas.BucketDay, gaas.BucketWeek, gaas.BucketMonth} {
				for _, groups := range [][]gaas.ReportGroup{nil, {gaas.GroupByGPUType}, gaas.ReportGroups()} {
					for _, who := range []struct {
						name   string
						caller int64
					}{{"admin", s.f.admin.ID}, {"dept manager", u[0].ID}, {"member", u[3].ID}} {
						asks = append(asks, ask{who.name, who.caller, gaas.UsageRequest{From: rg[0], To: rg[1], Period: period, GroupBy: groups}})
					}
				}
			}
		}
		rng.Shuffle(len(asks), func(i, j int) { asks[i], asks[j] = asks[j], asks[i] })
		reports := func() {
			t.Helper()
			for _, a := range asks {
				s.compare(t, h, a.who, a.caller, a.req)
			}
		}

		// The first report rolls up a month at most, and reads the rest
		// from the ledger.
		s.compare(t, h, "admin", s.f.admin.ID, gaas.UsageRequest{From: s.start, To: end, Period: gaas.BucketWeek, GroupBy: gaas.ReportGroups()})
		first := rolledUpTo(t, db)
		require.False(t, first.IsZero())
		firstUse := end
		for _, e := range h.entries {
			if e.JobID != nil && e.CreatedAt.Before(firstUse) {
				firstUse = e.CreatedAt
			}
		}
		// From the day before the first usage, a margin for late writes.
		assert.Equal(t, gaas.BucketDay.Start(firstUse.Add(-24*time.Hour)).AddDate(0, 0, 31), first, "a report rolled up to %s", first.Format(time.DateOnly))
		assert.True(t, first.Before(closed), "a report rolled up everything, to %s", first.Format(time.DateOnly))

		calls := 0
		for {
			before := rolledUpTo(t, db)
			n, err := db.Upkeep.RollUpUsage(ctx, 5)
			require.NoError(t, err)
			after := rolledUpTo(t, db)
			assert.LessOrEqual(t, n, 5)
			assert.Equal(t, before.AddDate(0, 0, n), after, "the call said it rolled up %d days", n)
			if n == 0 {
				assert.Equal(t, closed, after, "up to date when it rolls up nothing")
				break
			}
			// Halfway: a report reads what is not rolled up from the
			// ledger, after rolling up a month more.
			a := asks[calls%len(asks)]
			s.compare(t, h, a.who, a.caller, a.req)
			calls++
		}
		reports()

		// Days close as the clock moves: one a day, none until then.
		s.clk.Add(3 * 24 * time.Hour)
		n, err := db.Upkeep.RollUpUsage(ctx, 31)
		require.NoError(t, err)
		assert.Equal(t, 3, n)
		n, err = db.Upkeep.RollUpUsage(ctx, 31)
		require.NoError(t, err)
		assert.Zero(t, n)
		assert.Equal(t, closed.AddDate(0, 0, 3), rolledUpTo(t, db))
		reports()
		t.Logf("%d jobs, %d entries, from %s; rolled up to %s in %d calls after the first report's %s",
			len(h.jobs), len(h.entries), s.start.Format(time.DateOnly), closed.Format(time.DateOnly), calls, first.Format(time.DateOnly))
	})
}

// TestUsageMaxRows: a report of more rows than the store allows is
// refused with a detail that says what to narrow, and one of as many rows
// as it allows or fewer is answered in full, whether its rows come from the
// ledger, the rollup or both.
func TestUsageMaxRows(t *testing.T) {
	const max = 12
	seed := storetest.Seed(t)
	forEachBackend(t, func(t *testing.T, b backend) {
		rng := rand.New(rand.NewPCG(seed, 22))
		s := newUsageSite(t, b, rng, store.Options{MaxReportRows: max})
		s.quiet = true // its weekly reports would be too many rows; the reports below roll up
		s.play(t, rng, 150)
		h := s.readBack(t)
		end := s.clk.Now().Add(time.Second)
		var refused, answered, atMax int
		for range 200 {
			a := s.start.Add(time.Duration(rng.Int64N(int64(end.Sub(s.start)))))
			req := gaas.UsageRequest{From: a, To: a.Add(time.Duration(rng.Int64N(int64(end.Sub(a)))) + time.Second),
				Period:  []gaas.Bucket{gaas.BucketNone, gaas.BucketDay, gaas.BucketWeek, gaas.BucketMonth}[rng.IntN(4)],
				GroupBy: groupings()[rng.IntN(len(groupings()))]}
			want := len(s.expect(h, s.f.admin.ID, req))
			if want <= max {
				got := s.compare(t, h, "admin", s.f.admin.ID, req)
				answered++
				if len(got.Rows) == max {
					atMax++
				}
				continue
			}
			_, err := s.f.db.Reports.Usage(context.Background(), s.f.admin.ID, req)
			var v *gaas.ValidationError
			require.True(t, errors.As(err, &v), "%d rows: %v", want, err)
			assert.ErrorIs(t, err, gaas.ErrInvalid)
			assert.Equal(t, "group_by", v.Fields[0].Field)
			assert.Contains(t, v.Fields[0].Message, "narrow the range")
			refused++
		}
		t.Logf("%d reports refused, %d answered, %d of them of %d rows", refused, answered, atMax, max)
		assert.Positive(t, refused)
		assert.Positive(t, answered)
	})
}
