package store_test

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/gaas"
	"github.com/gaas-io/gaas/store"
	"github.com/gaas-io/gaas/store/storetest"
)

var berlin = func() *time.Location {
	loc, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		panic(err)
	}
	return loc
}()

// scheduleAllocations lists the allocations schedule id gave to user, in
// order of their periods.
func scheduleAllocations(t *testing.T, f *fixture, user, id int64) []gaas.Allocation {
	t.Helper()
	var out []gaas.Allocation
	for _, a := range f.allocations(t, user) {
		if a.ScheduleID == id {
			out = append(out, a)
		}
	}
	return out
}

func grantDue(t *testing.T, db *store.DB) int {
	t.Helper()
	n, err := db.Upkeep.GrantDue(context.Background())
	require.NoError(t, err)
	return n
}

// A monthly schedule started on January 31 in Berlin gives one allocation
// for each month of a year, once each, on the month's last day when it has
// no 31st, however often GrantDue runs and when the store is reopened half
// way; each period's allocation starts and expires with its period, and
// what it holds at its end expires.
func TestScheduleYearOfMonths(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		rng := rand.New(rand.NewPCG(storetest.Seed(t), 1))
		start := time.Date(2026, 1, 31, 0, 0, 0, 0, berlin)
		clk := newClock(start.Add(-time.Hour))
		dsn := b.dsn(t)
		first, err := store.Open(ctx, dsn, store.Options{Now: clk.Now})
		require.NoError(t, err)
		f := newFixture(t, first)
		u := f.user(t, 0)
		s, err := first.Schedules.CreateSchedule(ctx, f.admin.ID, gaas.CreateScheduleRequest{
			UserID: u.ID, Amount: 10 * gaas.Credit, Period: gaas.PeriodMonthly, StartsAt: start, TimeZone: "Europe/Berlin", Reason: "monthly",
		})
		require.NoError(t, err)
		assert.Equal(t, int64(0), s.NextPeriod.Index)
		assert.True(t, s.NextPeriod.Start.Equal(start))
		assert.Equal(t, 0, grantDue(t, first), "nothing is due before the start")

		db := first
		reopened := false
		end := time.Date(2027, 1, 15, 0, 0, 0, 0, berlin)
		total := 0
		for clk.Now().Before(end) {
			clk.Add(time.Duration(rng.Int64N(int64(5 * 24 * time.Hour))))
			total += grantDue(t, db)
			if rng.IntN(4) == 0 {
				assert.Equal(t, 0, grantDue(t, db), "a second run at the same time gives nothing")
			}
			if !reopened && b.shared && clk.Now().After(time.Date(2026, 6, 15, 0, 0, 0, 0, berlin)) {
				require.NoError(t, db.Close())
				db = openStore(t, dsn, store.Options{Now: clk.Now})
				f.db, reopened = db, true
			}
		}
		if !b.shared {
			t.Cleanup(func() { assertInvariants(t, first); first.Close() })
		}
		assert.Equal(t, 12, total)
		allocs := scheduleAllocations(t, f, u.ID, s.ID)
		require.Len(t, allocs, 12)
		days := []int{31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}
		for i, a := range allocs {
			local := a.StartsAt.In(berlin)
			assert.Equal(t, time.Month(i+1), local.Month(), "allocation %d", i)
			assert.Equal(t, days[i], local.Day(), "allocation %d", i)
			assert.Equal(t, 0, local.Hour(), "allocation %d begins at midnight in Berlin", i)
			require.NotNil(t, a.PeriodStart)
			assert.True(t, a.PeriodStart.Equal(a.StartsAt))
			require.NotNil(t, a.ExpiresAt)
			if i+1 < len(allocs) {
				assert.True(t, a.ExpiresAt.Equal(allocs[i+1].StartsAt), "periods are contiguous")
				assert.Equal(t, gaas.Credits(0), a.Remaining, "an allocation whose successor was given has expired")
			}
			assert.Equal(t, 10*gaas.Credit, a.Amount)
			assert.Equal(t, gaas.SystemSchedule, a.CreatedBySystem)
		}
		assert.Equal(t, 10*gaas.Credit, f.balance(t, u.ID), "the current period's allocation holds the amount")
		got, err := db.Schedules.Schedule(ctx, f.admin.ID, gaas.GetScheduleRequest{ScheduleID: s.ID})
		require.NoError(t, err)
		assert.Equal(t, int64(12), got.NextPeriod.Index)
		var expired int
		for _, e := range f.ledger(t, u.ID) {
			if e.Kind == gaas.LedgerExpire {
				expired++
				assert.Equal(t, -10*gaas.Credit, e.Delta)
				assert.Equal(t, gaas.SystemSchedule, e.ActorSystem)
			}
		}
		assert.Equal(t, 11, expired)
	})
}

// What a period's allocation holds at its end moves into the next one up
// to the cap; the rest expires.
func TestScheduleRollover(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		clk := newClock(t0)
		db := openStore(t, b.dsn(t), store.Options{Now: clk.Now})
		f := newFixture(t, db)
		u := f.user(t, 0)
		s, err := db.Schedules.CreateSchedule(ctx, f.admin.ID, gaas.CreateScheduleRequest{
			UserID: u.ID, Amount: 10 * gaas.Credit, Period: gaas.PeriodWeekly, StartsAt: t0,
			Leftover: gaas.LeftoverRollover, RolloverCap: 4 * gaas.Credit, GrantCurrent: true,
		})
		require.NoError(t, err)
		assert.Equal(t, 10*gaas.Credit, f.balance(t, u.ID), "the current period is given at once")
		j := f.submit(t, u.ID, 3*gaas.Hour)
		f.move(t, j, hoursPtr(3*gaas.Hour), gaas.StatusApproved, gaas.StatusRunning, gaas.StatusCompleted)

		clk.Add(7 * 24 * time.Hour)
		assert.Equal(t, 1, grantDue(t, db))
		allocs := scheduleAllocations(t, f, u.ID, s.ID)
		require.Len(t, allocs, 2)
		assert.Equal(t, gaas.Credits(0), allocs[0].Remaining)
		assert.Equal(t, 14*gaas.Credit, allocs[1].Remaining, "4 of the 7 left rolled over")
		assert.Equal(t, 14*gaas.Credit, allocs[1].Amount)
		assert.Equal(t, 14*gaas.Credit, f.balance(t, u.ID))

		// Less than the cap left: all of it moves.
		j = f.submit(t, u.ID, 12*gaas.Hour)
		f.move(t, j, hoursPtr(12*gaas.Hour), gaas.StatusApproved, gaas.StatusRunning, gaas.StatusCompleted)
		clk.Add(7 * 24 * time.Hour)
		assert.Equal(t, 1, grantDue(t, db))
		allocs = scheduleAllocations(t, f, u.ID, s.ID)
		require.Len(t, allocs, 3)

		assert.Equal(t, 12*gaas.Credit, allocs[2].Remaining)

		var kinds []gaas.LedgerKind
		for _, e := range f.ledger(t, u.ID) {
			if e.AllocationID == allocs[0].ID {
				kinds = append(kinds, e.Kind)
			}
		}
		assert.Equal(t, []gaas.LedgerKind{gaas.LedgerGrant, gaas.LedgerCharge, gaas.LedgerTransfer, gaas.LedgerExpire}, kinds)
	})
}

// Paused, a schedule gives nothing; resumed, it gives the period under way
// and not those that began and ended while it was paused. Ended, it gives
// nothing more and takes nothing back.
func TestSchedulePauseResumeEnd(t *testing.T) {
	forEachStoreWithClock(t, func(t *testing.T, db *store.DB, clk *clock) {
		ctx := context.Background()
		f := newFixture(t, db)
		u := f.user(t, 0)
		day := 24 * time.Hour
		s, err := db.Schedules.CreateSchedule(ctx, f.admin.ID, gaas.CreateScheduleRequest{
			UserID: u.ID, Amount: gaas.Credit, Period: gaas.PeriodDaily, StartsAt: t0, GrantCurrent: true,
		})
		require.NoError(t, err)
		paused := true
		s, err = db.Schedules.UpdateSchedule(ctx, f.admin.ID, gaas.UpdateScheduleRequest{ScheduleID: s.ID, Paused: &paused})
		require.NoError(t, err)
		assert.True(t, s.Paused)
		clk.Add(3*day + time.Hour)
		assert.Equal(t, 0, grantDue(t, db), "a paused schedule gives nothing")

		paused = false
		s, err = db.Schedules.UpdateSchedule(ctx, f.admin.ID, gaas.UpdateScheduleRequest{ScheduleID: s.ID, Paused: &paused})
		require.NoError(t, err)
		assert.False(t, s.Paused)
		assert.Equal(t, int64(4), s.NextPeriod.Index, "the period under way was given on resuming")
		allocs := scheduleAllocations(t, f, u.ID, s.ID)
		require.Len(t, allocs, 2)
		assert.True(t, allocs[1].StartsAt.Equal(t0.Add(3*day)))
		assert.Equal(t, gaas.Credit, f.balance(t, u.ID))

		s, err = db.Schedules.UpdateSchedule(ctx, f.admin.ID, gaas.UpdateScheduleRequest{ScheduleID: s.ID, End: true})
		require.NoError(t, err)
		require.NotNil(t, s.EndedAt)
		assert.Equal(t, gaas.Credit, f.balance(t, u.ID), "ending takes nothing back")
		clk.Add(5 * day)
		assert.Equal(t, 0, grantDue(t, db), "an ended schedule gives nothing")
		_, err = db.Schedules.UpdateSchedule(ctx, f.admin.ID, gaas.UpdateScheduleRequest{ScheduleID: s.ID, Paused: &paused})
		assert.ErrorIs(t, err, gaas.ErrConflict)
		_, err = db.Schedules.UpdateSchedule(ctx, f.admin.ID, gaas.UpdateScheduleRequest{ScheduleID: s.ID, End: true})
		assert.ErrorIs(t, err, gaas.ErrConflict)
		assert.Len(t, scheduleAllocations(t, f, u.ID, s.ID), 2)
	})
}

// forEachStoreWithClock runs fn on every backend with a store whose clock
// the test drives, starting at t0.
func forEachStoreWithClock(t *testing.T, fn func(t *testing.T, db *store.DB, clk *clock)) {
	forEachBackend(t, func(t *testing.T, b backend) {
		clk := newClock(t0)
		fn(t, openStore(t, b.dsn(t), store.Options{Now: clk.Now}), clk)
	})
}

// A schedule created mid-period without GrantCurrent gives its first
// allocation when the next period begins; one starting later, when it
// starts.
func TestScheduleCreateMidPeriod(t *testing.T) {
	forEachStoreWithClock(t, func(t *testing.T, db *store.DB, clk *clock) {
		ctx := context.Background()
		f := newFixture(t, db)
		u := f.user(t, 0)
		clk.Set(t0.Add(10 * 24 * time.Hour))
		s, err := db.Schedules.CreateSchedule(ctx, f.admin.ID, gaas.CreateScheduleRequest{
			UserID: u.ID, Amount: gaas.Credit, Period: gaas.PeriodMonthly, StartsAt: t0,
		})
		require.NoError(t, err)
		assert.Equal(t, int64(1), s.NextPeriod.Index)
		assert.Equal(t, gaas.Credits(0), f.balance(t, u.ID))
		assert.Equal(t, 0, grantDue(t, db))
		clk.Set(time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC))
		assert.Equal(t, 1, grantDue(t, db))
		assert.Equal(t, gaas.Credit, f.balance(t, u.ID))

		later, err := db.Schedules.CreateSchedule(ctx, f.admin.ID, gaas.CreateScheduleRequest{
			UserID: u.ID, Amount: gaas.Credit, Period: gaas.PeriodYearly, StartsAt: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC), GrantCurrent: true,
		})
		require.NoError(t, err)
		assert.Equal(t, int64(0), later.NextPeriod.Index)
		assert.Empty(t, scheduleAllocations(t, f, u.ID, later.ID), "a schedule that has not started gives nothing yet")
	})
}

// Two stores on one database call GrantDue at once, again and again, as a
// month passes for many schedules: each period is given once.
func TestScheduleGrantRace(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		if !b.shared {
			t.Skip("two stores share no in-memory database")
		}
		ctx := context.Background()
		clk := newClock(t0)
		dsn := b.dsn(t)
		one := openStore(t, dsn, store.Options{Now: clk.Now})
		two := openStore(t, dsn, store.Options{Now: clk.Now})
		f := newFixture(t, one)
		const users = 15
		var ids []gaas.User
		for i := 0; i < users; i++ {
			u := f.user(t, 0)
			ids = append(ids, u)
			_, err := one.Schedules.CreateSchedule(ctx, f.admin.ID, gaas.CreateScheduleRequest{
				UserID: u.ID, Amount: gaas.Credit, Period: gaas.PeriodDaily, StartsAt: t0,
				Leftover: gaas.LeftoverRollover, RolloverCap: gaas.Credit / 2, GrantCurrent: true,
			})
			require.NoError(t, err)
		}
		total := 0
		for day := 1; day <= 8; day++ {
			clk.Set(t0.Add(time.Duration(day)*24*time.Hour + time.Minute))
			var (
				wg sync.WaitGroup
				mu sync.Mutex
			)
			for _, db := range []*store.DB{one, two, one, two} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					n, err := db.Upkeep.GrantDue(ctx)
					assert.NoError(t, err)
					mu.Lock()
					total += n
					mu.Unlock()
				}()
			}
			wg.Wait()
		}
		assert.Equal(t, users*8, total, "each day of each schedule given once")
		for _, u := range ids {
			allocs := f.allocations(t, u.ID)
			assert.Len(t, allocs, 1+9, "the default allocation and nine days")
			assert.Equal(t, gaas.Credit*3/2, f.balance(t, u.ID), "a day's credits and half a day's rolled over")
		}
	})
}

// A project's managers, and the managers of the projects above it, see,
// pause and end its schedules; its members and strangers do not. Only
// admins make or resume one, a user's or a project's: each period gives
// credits, and a manager gives none.
func TestSchedulePolicy(t *testing.T) {
	forEachStoreWithClock(t, func(t *testing.T, db *store.DB, clk *clock) {
		ctx := context.Background()
		f := newFixture(t, db)
		l := newLab(t, f)
		deptHead := f.user(t, 0)
		_, err := db.Projects.SetMember(ctx, f.admin.ID, gaas.SetMemberRequest{ProjectID: l.dept.ID, UserID: deptHead.ID, Role: gaas.ProjectManager})
		require.NoError(t, err)
		other, err := db.Projects.CreateProject(ctx, f.admin.ID, gaas.CreateProjectRequest{Name: "other"})
		require.NoError(t, err)
		monthly := func(project int64) gaas.CreateScheduleRequest {
			return gaas.CreateScheduleRequest{ProjectID: project, Amount: 5 * gaas.Credit, Period: gaas.PeriodMonthly, GrantCurrent: true}
		}

		labBefore, deptBefore := f.projectCredits(t, l.lab.ID), f.projectCredits(t, l.dept.ID)
		_, err = db.Schedules.CreateSchedule(ctx, l.pi.ID, monthly(l.lab.ID))
		assert.ErrorIs(t, err, gaas.ErrForbidden, "the lab's manager gives the lab no credits")
		_, err = db.Schedules.CreateSchedule(ctx, deptHead.ID, monthly(l.lab.ID))
		assert.ErrorIs(t, err, gaas.ErrForbidden, "nor does the manager of the department above it")
		_, err = db.Schedules.CreateSchedule(ctx, deptHead.ID, monthly(l.dept.ID))
		assert.ErrorIs(t, err, gaas.ErrForbidden)
		assert.Equal(t, labBefore, f.projectCredits(t, l.lab.ID))
		assert.Equal(t, deptBefore, f.projectCredits(t, l.dept.ID))
		labSched, err := db.Schedules.CreateSchedule(ctx, f.admin.ID, monthly(l.lab.ID))
		require.NoError(t, err, "an admin")
		assert.Equal(t, l.lab.ID, labSched.ProjectID)
		assert.Equal(t, f.admin.ID, labSched.CreatedByID)
		_, err = db.Schedules.CreateSchedule(ctx, f.admin.ID, monthly(l.lab.ID))
		require.NoError(t, err)
		deptSched, err := db.Schedules.CreateSchedule(ctx, f.admin.ID, monthly(l.dept.ID))
		require.NoError(t, err)
		_, err = db.Schedules.CreateSchedule(ctx, l.pi.ID, monthly(l.dept.ID))
		assert.ErrorIs(t, err, gaas.ErrNotFound, "the lab's manager is no one in the department")
		_, err = db.Schedules.CreateSchedule(ctx, l.ann.ID, monthly(l.lab.ID))
		assert.ErrorIs(t, err, gaas.ErrForbidden, "a member")
		_, err = db.Schedules.CreateSchedule(ctx, l.stranger.ID, monthly(l.lab.ID))
		assert.ErrorIs(t, err, gaas.ErrNotFound, "a stranger")
		_, err = db.Schedules.CreateSchedule(ctx, l.pi.ID, gaas.CreateScheduleRequest{UserID: l.ann.ID, Amount: gaas.Credit, Period: gaas.PeriodDaily})
		assert.ErrorIs(t, err, gaas.ErrForbidden, "a user's schedules are the admins'")
		otherSched, err := db.Schedules.CreateSchedule(ctx, f.admin.ID, monthly(other.ID))
		require.NoError(t, err)

		list := func(caller int64, req gaas.SchedulesRequest) []int64 {
			page, err := db.Schedules.Schedules(ctx, caller, req)
			require.NoError(t, err)
			var ids []int64
			for _, s := range page.Items {
				ids = append(ids, s.ID)
			}
			return ids
		}
		assert.Len(t, list(f.admin.ID, gaas.SchedulesRequest{}), 4)
		assert.Equal(t, []int64{otherSched.ID}, list(f.admin.ID, gaas.SchedulesRequest{ProjectID: other.ID}))
		assert.Len(t, list(l.pi.ID, gaas.SchedulesRequest{}), 2, "the lab's two")
		assert.Len(t, list(deptHead.ID, gaas.SchedulesRequest{}), 3, "the department's and the lab's")
		assert.Empty(t, list(l.ann.ID, gaas.SchedulesRequest{}))
		_, err = db.Schedules.Schedules(ctx, l.pi.ID, gaas.SchedulesRequest{ProjectID: other.ID})
		assert.ErrorIs(t, err, gaas.ErrNotFound)

		_, err = db.Schedules.Schedule(ctx, l.pi.ID, gaas.GetScheduleRequest{ScheduleID: deptSched.ID})
		assert.ErrorIs(t, err, gaas.ErrNotFound)
		_, err = db.Schedules.Schedule(ctx, l.ann.ID, gaas.GetScheduleRequest{ScheduleID: labSched.ID})
		assert.ErrorIs(t, err, gaas.ErrNotFound, "a member does not see the lab's schedules")
		_, err = db.Schedules.UpdateSchedule(ctx, l.ann.ID, gaas.UpdateScheduleRequest{ScheduleID: labSched.ID, End: true})
		assert.ErrorIs(t, err, gaas.ErrNotFound)
		paused := true
		_, err = db.Schedules.UpdateSchedule(ctx, l.pi.ID, gaas.UpdateScheduleRequest{ScheduleID: labSched.ID, Paused: &paused})
		assert.NoError(t, err, "the lab's manager pauses the lab's")
		paused = false
		_, err = db.Schedules.UpdateSchedule(ctx, l.pi.ID, gaas.UpdateScheduleRequest{ScheduleID: labSched.ID, Paused: &paused})
		assert.ErrorIs(t, err, gaas.ErrForbidden, "but does not resume it: resuming gives again")
		got, err := db.Schedules.Schedule(ctx, f.admin.ID, gaas.GetScheduleRequest{ScheduleID: labSched.ID})
		require.NoError(t, err)
		assert.True(t, got.Paused)
		_, err = db.Schedules.UpdateSchedule(ctx, f.admin.ID, gaas.UpdateScheduleRequest{ScheduleID: labSched.ID, Paused: &paused})
		assert.NoError(t, err, "an admin resumes it")
		_, err = db.Schedules.UpdateSchedule(ctx, deptHead.ID, gaas.UpdateScheduleRequest{ScheduleID: labSched.ID, End: true})
		assert.NoError(t, err)
		_, err = db.Schedules.Schedule(ctx, f.admin.ID, gaas.GetScheduleRequest{ScheduleID: 999999})
		assert.ErrorIs(t, err, gaas.ErrNotFound)
	})
}

func TestScheduleValidation(t *testing.T) {
	db := newTestStore(t)
	ctx := context.Background()
	f := newFixture(t, db)
	u := f.user(t, 0)
	_, err := db.Schedules.CreateSchedule(ctx, f.admin.ID, gaas.CreateScheduleRequest{UserID: u.ID, Amount: gaas.Credit, Period: "hourly"})
	assert.ErrorIs(t, err, gaas.ErrInvalid)
	_, err = db.Schedules.CreateSchedule(ctx, f.admin.ID, gaas.CreateScheduleRequest{UserID: 99999, Amount: gaas.Credit, Period: gaas.PeriodDaily})
	assert.ErrorIs(t, err, gaas.ErrNotFound)
	_, err = db.Schedules.CreateSchedule(ctx, f.admin.ID, gaas.CreateScheduleRequest{ProjectID: 99999, Amount: gaas.Credit, Period: gaas.PeriodDaily})
	assert.ErrorIs(t, err, gaas.ErrNotFound)
	_, err = db.Schedules.CreateSchedule(ctx, f.admin.ID, gaas.CreateScheduleRequest{UserID: u.ID, Amount: gaas.Credit, Period: gaas.PeriodDaily, TimeZone: "Europe/Atlantis"})
	assert.ErrorIs(t, err, gaas.ErrInvalid)
	page, err := db.Schedules.Schedules(ctx, f.admin.ID, gaas.SchedulesRequest{})
	require.NoError(t, err)
	assert.Empty(t, page.Items, "nothing was written")
}

// Listing pages through schedules by id.
func TestSchedulePages(t *testing.T) {
	db := newTestStore(t)
	ctx := context.Background()
	f := newFixture(t, db)
	u := f.user(t, 0)
	for i := 0; i < 5; i++ {
		_, err := db.Schedules.CreateSchedule(ctx, f.admin.ID, gaas.CreateScheduleRequest{UserID: u.ID, Amount: gaas.Credit, Period: gaas.PeriodDaily})
		require.NoError(t, err)
	}
	var seen []int64
	req := gaas.SchedulesRequest{UserID: u.ID, Page: gaas.Page{Limit: 2}}
	for {
		page, err := db.Schedules.Schedules(ctx, f.admin.ID, req)
		require.NoError(t, err)
		for _, s := range page.Items {
			seen = append(seen, s.ID)
		}
		if req.Cursor = page.NextCursor; req.Cursor == "" {
			break
		}
	}
	assert.Len(t, seen, 5)
	assert.IsIncreasing(t, seen)
}

// With DefaultQuotaPeriod, a new user's default quota is a schedule that
// gives its first period at once and the next when it begins.
func TestDefaultQuotaRecurring(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		clk := newClock(t0.Add(12 * time.Hour))
		db := openStore(t, b.dsn(t), store.Options{Now: clk.Now, DefaultQuota: 7 * gaas.Credit, DefaultQuotaPeriod: gaas.PeriodMonthly})
		f := newFixture(t, db)
		u, err := db.Accounts.CreateUser(ctx, "recurring", "unused-hash", gaas.RoleUser)
		require.NoError(t, err)
		assert.Equal(t, 7*gaas.Credit, u.Balance)
		assert.Equal(t, 7*gaas.Credit, f.balance(t, u.ID))
		page, err := db.Schedules.Schedules(ctx, f.admin.ID, gaas.SchedulesRequest{UserID: u.ID})
		require.NoError(t, err)
		require.Len(t, page.Items, 1)
		s := page.Items[0]
		assert.Equal(t, gaas.PeriodMonthly, s.Period)
		assert.Equal(t, gaas.SystemRegistration, s.CreatedBySystem)
		assert.Equal(t, "UTC", s.TimeZone)

		clk.Add(31 * 24 * time.Hour)
		assert.GreaterOrEqual(t, grantDue(t, db), 1)
		assert.Equal(t, 7*gaas.Credit, f.balance(t, u.ID), "a new month's quota; last month's expired")
		assert.Len(t, scheduleAllocations(t, f, u.ID, s.ID), 2)
	})
	_, err := store.Open(context.Background(), ":memory:", store.Options{DefaultQuotaPeriod: "hourly"})
	assert.Error(t, err)
}

// Check finds a schedule whose allocations do not follow it.
func TestCheckSchedules(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		if !b.shared {
			t.Skip("the raw handle needs a database of its own")
		}
		ctx := context.Background()
		clk := newClock(t0)
		dsn := b.dsn(t)
		db, err := store.Open(ctx, dsn, store.Options{Now: clk.Now})
		require.NoError(t, err)
		defer db.Close()
		f := newFixture(t, db)
		u := f.user(t, 0)
		s, err := db.Schedules.CreateSchedule(ctx, f.admin.ID, gaas.CreateScheduleRequest{
			UserID: u.ID, Amount: gaas.Credit, Period: gaas.PeriodDaily, StartsAt: t0, GrantCurrent: true,
			Leftover: gaas.LeftoverRollover, RolloverCap: gaas.Credit,
		})
		require.NoError(t, err)
		clk.Add(24 * time.Hour)
		grantDue(t, db)
		report, err := db.Check(ctx)
		require.NoError(t, err)
		require.True(t, report.OK(), "%v", report.Violations)

		raw := rawOpen(t, dsn)
		for _, c := range []struct{ tamper, restore, want string }{
			{"UPDATE schedules SET rollover_cap = 1 WHERE id = ?", "UPDATE schedules SET rollover_cap = 1000 WHERE id = ?", "a cap of 0.001"},
			{"UPDATE schedules SET next_period = 1 WHERE id = ?", "UPDATE schedules SET next_period = 2 WHERE id = ?", "next period to give is 1"},
		} {
			_, err = raw.ExecContext(ctx, rebind(dsn, c.tamper), s.ID)
			require.NoError(t, err)
			report, err = db.Check(ctx)
			require.NoError(t, err)
			require.Len(t, report.Violations, 1, "%v", report.Violations)
			assert.Equal(t, "schedule", report.Violations[0].Rule)
			assert.Contains(t, report.Violations[0].Detail, c.want)
			_, err = raw.ExecContext(ctx, rebind(dsn, c.restore), s.ID)
			require.NoError(t, err)
		}
		report, err = db.Check(ctx)
		require.NoError(t, err)
		assert.True(t, report.OK(), "%v", report.Violations)
	})
}

// rebind writes ? placeholders as $1, $2 ... for PostgreSQL.
func rebind(dsn, q string) string {
	if !store.IsPostgres(dsn) {
		return q
	}
	out, n := []byte{}, 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			out = append(out, []byte("$"+string(rune('0'+n)))...)
			continue
		}
		out = append(out, q[i])
	}
	return string(out)
}

// An ended allocation awaits its rollover while its schedule, active, has
// not given the next period; not once it has, nor while it is paused.
func TestAwaitsRollover(t *testing.T) {
	forEachStoreWithClock(t, func(t *testing.T, db *store.DB, clk *clock) {
		ctx := context.Background()
		f := newFixture(t, db)
		u := f.user(t, 0)
		s, err := db.Schedules.CreateSchedule(ctx, f.admin.ID, gaas.CreateScheduleRequest{
			UserID: u.ID, Amount: gaas.Credit, Period: gaas.PeriodDaily, StartsAt: t0, GrantCurrent: true,
			Leftover: gaas.LeftoverRollover, RolloverCap: gaas.Credit,
		})
		require.NoError(t, err)
		awaiting := func() int {
			var n int
			require.NoError(t, store.RawQueryRow(ctx, db, "SELECT count(*) FROM allocations WHERE "+store.AwaitsRolloverSQL, &n))
			return n
		}
		assert.Equal(t, 1, awaiting(), "the current period's allocation will roll over")
		clk.Add(24*time.Hour + time.Second)
		assert.Equal(t, 1, awaiting())
		paused := true
		_, err = db.Schedules.UpdateSchedule(ctx, f.admin.ID, gaas.UpdateScheduleRequest{ScheduleID: s.ID, Paused: &paused})
		require.NoError(t, err)
		assert.Equal(t, 0, awaiting(), "paused, it gives no next period to roll into")
		paused = false
		_, err = db.Schedules.UpdateSchedule(ctx, f.admin.ID, gaas.UpdateScheduleRequest{ScheduleID: s.ID, Paused: &paused})
		require.NoError(t, err)
		assert.Equal(t, 1, awaiting(), "resumed, it gave the next period and its allocation awaits the one after")
		assert.Equal(t, 2*gaas.Credit, f.balance(t, u.ID), "the first day's credit rolled over")
	})
}

// A refund that comes back to a period's allocation after the period
// ended, before the next was given, rolls over with the rest; once the
// next period was given, a refund to the old one expires at once.
func TestScheduleRefundAfterPeriod(t *testing.T) {
	forEachStoreWithClock(t, func(t *testing.T, db *store.DB, clk *clock) {
		ctx := context.Background()
		f := newFixture(t, db)
		u := f.user(t, 0)
		s, err := db.Schedules.CreateSchedule(ctx, f.admin.ID, gaas.CreateScheduleRequest{
			UserID: u.ID, Amount: 10 * gaas.Credit, Period: gaas.PeriodDaily, StartsAt: t0, GrantCurrent: true,
			Leftover: gaas.LeftoverRollover, RolloverCap: 6 * gaas.Credit,
		})
		require.NoError(t, err)
		first := f.submit(t, u.ID, 8*gaas.Hour)
		second := f.submit(t, u.ID, 2*gaas.Hour)
		f.move(t, first, nil, gaas.StatusApproved, gaas.StatusRunning)
		f.move(t, second, nil, gaas.StatusApproved, gaas.StatusRunning)

		clk.Add(24*time.Hour + time.Minute)
		f.move(t, first, hoursPtr(3*gaas.Hour), gaas.StatusCompleted) // 5 come back, after the day ended
		grantDue(t, db)
		allocs := scheduleAllocations(t, f, u.ID, s.ID)
		require.Len(t, allocs, 2)
		assert.Equal(t, gaas.Credits(0), allocs[0].Remaining)
		assert.Equal(t, 15*gaas.Credit, allocs[1].Remaining, "the 5 refunded rolled over")

		f.move(t, second, hoursPtr(gaas.Hour), gaas.StatusCompleted) // 1 comes back to the first day's, settled already
		allocs = scheduleAllocations(t, f, u.ID, s.ID)
		assert.Equal(t, gaas.Credits(0), allocs[0].Remaining, "it expired at once")
		assert.Equal(t, 15*gaas.Credit, f.balance(t, u.ID))
	})
}

// The worker's expiry leaves a period's allocation that its schedule will
// roll over to GrantDue, and expires one whose leftover expires; GrantDue
// then rolls over the one and finds nothing left in the other, and nothing
// is taken twice.
func TestScheduleExpiryAndGrant(t *testing.T) {
	forEachStoreWithClock(t, func(t *testing.T, db *store.DB, clk *clock) {
		ctx := context.Background()
		f := newFixture(t, db)
		rolls, expires := f.user(t, 0), f.user(t, 0)
		for _, u := range []gaas.User{rolls, expires} {
			req := gaas.CreateScheduleRequest{UserID: u.ID, Amount: 4 * gaas.Credit, Period: gaas.PeriodDaily, StartsAt: t0, GrantCurrent: true}
			if u.ID == rolls.ID {
				req.Leftover, req.RolloverCap = gaas.LeftoverRollover, 3*gaas.Credit
			}
			_, err := db.Schedules.CreateSchedule(ctx, f.admin.ID, req)
			require.NoError(t, err)
		}
		clk.Add(24*time.Hour + time.Second)
		n, err := db.Upkeep.ExpireEnded(ctx)
		require.NoError(t, err)
		assert.Equal(t, 1, n, "only the allocation whose leftover expires")
		assert.Equal(t, 2, grantDue(t, db))
		n, err = db.Upkeep.ExpireEnded(ctx)
		require.NoError(t, err)
		assert.Equal(t, 0, n)
		assert.Equal(t, 7*gaas.Credit, f.balance(t, rolls.ID), "a day's 4 and 3 rolled over")
		assert.Equal(t, 4*gaas.Credit, f.balance(t, expires.ID))
		var expiries []string
		for _, e := range f.ledger(t, expires.ID) {
			if e.Kind == gaas.LedgerExpire {
				expiries = append(expiries, e.ActorSystem)
			}
		}
		assert.Equal(t, []string{gaas.SystemExpiry}, expiries, "one expiry, by the worker's")

		// Paused, a rolling schedule's ended allocation is the worker's to expire.
		paused := true
		page, err := db.Schedules.Schedules(ctx, f.admin.ID, gaas.SchedulesRequest{UserID: rolls.ID})
		require.NoError(t, err)
		_, err = db.Schedules.UpdateSchedule(ctx, f.admin.ID, gaas.UpdateScheduleRequest{ScheduleID: page.Items[0].ID, Paused: &paused})
		require.NoError(t, err)
		clk.Add(24 * time.Hour)
		n, err = db.Upkeep.ExpireEnded(ctx)
		require.NoError(t, err)
		assert.Equal(t, 2, n, "both users' day ended")
		assert.Equal(t, gaas.Credits(0), f.balance(t, rolls.ID))
	})
}

// A schedule whose period cannot be given (here its account would hold
// more than gaas.MaxCredits) fails once and is then left until a retry
// time that doubles with each failure in a row, while the schedules
// beside it are given; once its account has room it is given at the next
// try, and its count of failures starts again.
func TestGrantDueRetriesAFailingScheduleLater(t *testing.T) {
	forEachStoreWithClock(t, func(t *testing.T, db *store.DB, clk *clock) {
		ctx := context.Background()
		f := newFixture(t, db)
		full, other := f.user(t, gaas.MaxCredits), f.user(t, 0)
		day := 24 * time.Hour
		var stuck int64
		for _, u := range []gaas.User{full, other} {
			s, err := db.Schedules.CreateSchedule(ctx, f.admin.ID, gaas.CreateScheduleRequest{
				UserID: u.ID, Amount: gaas.Credit, Period: gaas.PeriodDaily, StartsAt: t0.Add(time.Hour),
			})
			require.NoError(t, err)
			if u.ID == full.ID {
				stuck = s.ID
			}
		}
		// fails reports whether GrantDue failed on the stuck schedule, and
		// what it gave.
		fails := func() (bool, int) {
			t.Helper()
			n, err := db.Upkeep.GrantDue(ctx)
			if err != nil {
				require.ErrorContains(t, err, "grant schedule "+itoa(stuck)+":")
				require.ErrorContains(t, err, "tried again from ")
			}
			return err != nil, n
		}

		clk.Add(2 * time.Hour)
		failed, n := fails()
		assert.True(t, failed, "the full account's period")
		assert.Equal(t, 1, n, "the other schedule's period was given beside it")
		failed, _ = fails()
		assert.False(t, failed, "not tried again at once")
		clk.Add(time.Minute)
		failed, _ = fails()
		assert.True(t, failed, "tried again a minute later")
		clk.Add(time.Minute)
		failed, _ = fails()
		assert.False(t, failed, "then two minutes later, not one")
		clk.Add(time.Minute)
		failed, _ = fails()
		assert.True(t, failed, "two minutes after the second")

		// Room, and the next try, four minutes after the third, gives the
		// period.
		_, err := db.Quota.Set(ctx, f.admin.ID, gaas.SetBalanceRequest{UserID: full.ID, Balance: gaas.MaxCredits - gaas.Credit, Reason: "room"})
		require.NoError(t, err)
		clk.Add(3 * time.Minute)
		failed, n = fails()
		assert.False(t, failed)
		assert.Equal(t, 0, n, "not before its retry time")
		clk.Add(time.Minute)
		failed, n = fails()
		assert.False(t, failed)
		assert.Equal(t, 1, n)
		assert.Equal(t, gaas.MaxCredits, f.balance(t, full.ID))

		// Full again: the next period fails, and is tried again a minute
		// later, as a first failure is.
		clk.Set(t0.Add(day + 2*time.Hour))
		failed, _ = fails()
		assert.True(t, failed)
		clk.Add(time.Minute)
		failed, _ = fails()
		assert.True(t, failed, "the count started again after the period was given")

		// An admin's resume tries at once, whatever the retry time.
		_, err = db.Quota.Set(ctx, f.admin.ID, gaas.SetBalanceRequest{UserID: full.ID, Balance: 0, Reason: "room"})
		require.NoError(t, err)
		for _, paused := range []bool{true, false} {
			_, err := db.Schedules.UpdateSchedule(ctx, f.admin.ID, gaas.UpdateScheduleRequest{ScheduleID: stuck, Paused: &paused})
			require.NoError(t, err)
		}
		assert.Equal(t, gaas.Credit, f.balance(t, full.ID), "the period under way, given on resuming")
		failed, n = fails()
		assert.False(t, failed)
		assert.Equal(t, 0, n)
	})
}

// A try that fails for want of the database (here the account's lock,
// held elsewhere past the store's timeout) is no failure of the
// schedule: the next run gives the period at once, not a minute later.
func TestGrantDueDoesNotDeferAfterATransientError(t *testing.T) {
	forEachSharedBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		clk := newClock(t0)
		dsn := b.dsn(t)
		db := openStore(t, dsn, store.Options{Now: clk.Now})
		hasty := openStore(t, dsn, store.Options{Now: clk.Now, StatementTimeout: 200 * time.Millisecond, BusyTimeout: 200 * time.Millisecond})
		f := newFixture(t, db)
		u := f.user(t, 0)
		s, err := db.Schedules.CreateSchedule(ctx, f.admin.ID, gaas.CreateScheduleRequest{
			UserID: u.ID, Amount: gaas.Credit, Period: gaas.PeriodDaily, StartsAt: t0.Add(time.Hour),
		})
		require.NoError(t, err)
		clk.Add(2 * time.Hour)

		// Another client holds the account (PostgreSQL) or the database's
		// write lock (SQLite) while hasty tries.
		conn, err := rawOpen(t, dsn).Conn(ctx)
		require.NoError(t, err)
		defer conn.Close()
		if store.IsPostgres(dsn) {
			_, err = conn.ExecContext(ctx, "BEGIN")
			require.NoError(t, err)
			_, err = conn.ExecContext(ctx, "SELECT id FROM accounts WHERE id = (SELECT account_id FROM schedules WHERE id = $1) FOR UPDATE", s.ID)
		} else {
			_, err = conn.ExecContext(ctx, "BEGIN IMMEDIATE")
		}
		require.NoError(t, err)
		n, err := hasty.Upkeep.GrantDue(ctx)
		assert.ErrorIs(t, err, gaas.ErrUnavailable)
		assert.Equal(t, 0, n)
		_, err = conn.ExecContext(ctx, "ROLLBACK")
		require.NoError(t, err)

		n, err = db.Upkeep.GrantDue(ctx)
		require.NoError(t, err)
		assert.Equal(t, 1, n, "the period is given at the next run")
		assert.Equal(t, gaas.Credit, f.balance(t, u.ID))
	})
}
