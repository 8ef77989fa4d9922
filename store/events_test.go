package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/gaas"
	"github.com/gaas-io/gaas/store"
)

// eventsOf reads the outbox's events of type t.
func eventsOf(t *testing.T, db *store.DB, typ gaas.EventType) []gaas.Event {
	t.Helper()
	all, err := store.Events(context.Background(), db)
	require.NoError(t, err)
	var out []gaas.Event
	for _, e := range all {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

// dataOf decodes an event's data.
func dataOf[T any](t *testing.T, e gaas.Event) T {
	t.Helper()
	var v T
	require.NoError(t, json.Unmarshal(e.Data, &v), "%s", e.Data)
	return v
}

// Every change of a job's status is one event, in order, saying from and
// to, what came back and who moved it; a submission is not a change.
func TestJobMovesAreEvents(t *testing.T) {
	forEachStore(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		u := f.user(t, 100*gaas.Credit)
		j := f.submit(t, u.ID, 10*gaas.Hour)
		assert.Empty(t, eventsOf(t, db, gaas.EventJobStatusChanged))
		f.move(t, j, hoursPtr(4*gaas.Hour), gaas.StatusApproved, gaas.StatusRunning, gaas.StatusCompleted)
		other := f.submit(t, u.ID, gaas.Hour)
		_, err := db.Jobs.Cancel(context.Background(), u.ID, gaas.CancelRequest{JobID: other.ID})
		require.NoError(t, err)
		// A retry of a move already made changes nothing and says nothing.
		f.move(t, j, hoursPtr(4*gaas.Hour), gaas.StatusCompleted)

		evs := eventsOf(t, db, gaas.EventJobStatusChanged)
		require.Len(t, evs, 4)
		want := []struct {
			job      int64
			from, to gaas.JobStatus
			refund   gaas.Credits
			actor    int64
		}{
			{j.ID, gaas.StatusPending, gaas.StatusApproved, 0, f.admin.ID},
			{j.ID, gaas.StatusApproved, gaas.StatusRunning, 0, f.admin.ID},
			{j.ID, gaas.StatusRunning, gaas.StatusCompleted, 6 * gaas.Credit, f.admin.ID},
			{other.ID, gaas.StatusPending, gaas.StatusCancelled, gaas.Credit, u.ID},
		}
		for i, w := range want {
			e := evs[i]
			d := dataOf[gaas.JobStatusChanged](t, e)
			assert.Equal(t, w.job, d.JobID, "event %d", i)
			assert.Equal(t, w.from, d.From, "event %d", i)
			assert.Equal(t, w.to, d.To, "event %d", i)
			assert.Equal(t, gaas.Amount(w.refund), d.Refund, "event %d", i)
			require.NotNil(t, d.ActorID)
			assert.Equal(t, w.actor, *d.ActorID, "event %d", i)
			assert.Equal(t, u.ID, e.UserID)
			assert.Equal(t, u.ID, d.UserID)
			assert.Zero(t, e.ProjectID)
			assert.Nil(t, d.ProjectID)
		}
	})
}

// Each threshold of an allocation is one event, the first time a charge
// reaches it: a refund that brings it back under and a charge that
// crosses it again say nothing more.
func TestThresholdsOnce(t *testing.T) {
	forEachStore(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		u := f.user(t, 0) // no default credits
		a := f.allocation(t, gaas.CreateAllocationRequest{UserID: u.ID, Amount: 10 * gaas.Credit})

		seven := f.submit(t, u.ID, 7*gaas.Hour)
		assert.Empty(t, eventsOf(t, db, gaas.EventThresholdCrossed), "70% crosses nothing")
		f.submit(t, u.ID, gaas.Hour)
		evs := eventsOf(t, db, gaas.EventThresholdCrossed)
		require.Len(t, evs, 1, "80% is reached")
		d := dataOf[gaas.ThresholdCrossed](t, evs[0])
		assert.Equal(t, 80, d.Threshold)
		assert.Equal(t, a.ID, d.AllocationID)
		assert.Equal(t, gaas.Amount(10*gaas.Credit), d.Amount)
		assert.Equal(t, gaas.Amount(2*gaas.Credit), d.Remaining)
		require.NotNil(t, d.UserID)
		assert.Equal(t, u.ID, *d.UserID)
		assert.Equal(t, u.ID, evs[0].UserID)

		_, err := db.Jobs.Cancel(context.Background(), u.ID, gaas.CancelRequest{JobID: seven.ID})
		require.NoError(t, err) // 10% used again
		f.submit(t, u.ID, 8*gaas.Hour)
		assert.Len(t, eventsOf(t, db, gaas.EventThresholdCrossed), 1, "80% again is no news")

		f.submit(t, u.ID, gaas.Hour) // 100%
		evs = eventsOf(t, db, gaas.EventThresholdCrossed)
		require.Len(t, evs, 2)
		assert.Equal(t, 100, dataOf[gaas.ThresholdCrossed](t, evs[1]).Threshold)
	})
}

// One charge that jumps past both thresholds reports both; thresholds are
// configurable, and an empty list turns them off.
func TestThresholdsConfigured(t *testing.T) {
	for _, tc := range []struct {
		name       string
		thresholds []int
		want       []int
	}{
		{"default", nil, []int{80, 100}},
		{"half", []int{50}, []int{50}},
		{"none", []int{}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := openStore(t, ":memory:", store.Options{Thresholds: tc.thresholds})
			f := newFixture(t, db)
			u := f.user(t, 0)
			f.allocation(t, gaas.CreateAllocationRequest{UserID: u.ID, Amount: 4 * gaas.Credit})
			f.submit(t, u.ID, 4*gaas.Hour)
			var got []int
			for _, e := range eventsOf(t, db, gaas.EventThresholdCrossed) {
				got = append(got, dataOf[gaas.ThresholdCrossed](t, e).Threshold)
			}
			assert.Equal(t, tc.want, got)
		})
	}
	for _, bad := range [][]int{{0}, {101}, {80, 50}, {80, 80}} {
		_, err := store.Open(context.Background(), ":memory:", store.Options{Thresholds: bad})
		assert.Error(t, err, "thresholds %v", bad)
	}
}

// Submissions that share group commits, many on one allocation and some
// on a project's, report each threshold once.
func TestThresholdsInGroupCommit(t *testing.T) {
	forEachStore(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		const users, each = 6, 10
		var ids []int64
		for range users {
			u := f.user(t, 0)
			f.allocation(t, gaas.CreateAllocationRequest{UserID: u.ID, Amount: each * gaas.Credit})
			ids = append(ids, u.ID)
		}
		p, err := db.Projects.CreateProject(ctx, f.admin.ID, gaas.CreateProjectRequest{Name: "lab"})
		require.NoError(t, err)
		pa := f.allocation(t, gaas.CreateAllocationRequest{ProjectID: p.ID, Amount: each * gaas.Credit})
		member := f.user(t, 0)
		_, err = db.Projects.SetMember(ctx, f.admin.ID, gaas.SetMemberRequest{ProjectID: p.ID, UserID: member.ID, Role: gaas.ProjectMember})
		require.NoError(t, err)

		var wg sync.WaitGroup
		errs := make(chan error, users*each*2)
		for _, id := range append(ids, member.ID) {
			req := gaas.SubmitRequest{Command: "train", GPUType: "A100", EstimatedHours: gaas.Hour}
			if id == member.ID {
				req.Project = gaas.ProjectRef(p.Name)
			}
			for range each + 2 { // two more than the allocation holds: refused
				wg.Go(func() {
					if _, err := db.Jobs.Submit(ctx, id, req); err != nil && !assert.ErrorIs(t, err, gaas.ErrQuotaExceeded) {
						errs <- err
					}
				})
			}
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		seen := map[string]int{}
		for _, e := range eventsOf(t, db, gaas.EventThresholdCrossed) {
			d := dataOf[gaas.ThresholdCrossed](t, e)
			seen[fmt.Sprintf("%d:%d", d.AllocationID, d.Threshold)]++
			if d.AllocationID == pa.ID {
				assert.Equal(t, p.ID, e.ProjectID, "a project's allocation is the project's event")
				assert.Nil(t, d.UserID)
			}
		}
		assert.Len(t, seen, 2*(users+1), "both thresholds of every allocation: %v", seen)
		for k, n := range seen {
			assert.Equal(t, 1, n, "threshold %s reported %d times", k, n)
		}
	})
}

// A change whose transaction rolls back, at its commit here, leaves no
// event and no notice: the threshold is reported by the charge that
// commits after it.
func TestRolledBackChangeLeavesNoEvent(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		if !b.shared {
			t.Skip("the trigger is made through a second connection")
		}
		dsn := b.dsn(t)
		db := openStore(t, dsn, store.Options{})
		doom(t, dsn)
		f := newFixture(t, db)
		ctx := context.Background()
		u := f.user(t, 0)
		f.allocation(t, gaas.CreateAllocationRequest{UserID: u.ID, Amount: 10 * gaas.Credit})
		j := f.submit(t, u.ID, 7*gaas.Hour)
		before := eventsOf(t, db, gaas.EventJobStatusChanged)

		_, err := db.Jobs.Submit(ctx, u.ID, gaas.SubmitRequest{Command: doomedSubmit, GPUType: "A100", EstimatedHours: 2 * gaas.Hour})
		require.Error(t, err, "the commit fails")
		assert.Empty(t, eventsOf(t, db, gaas.EventThresholdCrossed), "the rolled back charge crossed 80% and said nothing")

		_, err = db.Jobs.Submit(ctx, u.ID, gaas.SubmitRequest{Command: doomedMove, GPUType: "A100", EstimatedHours: gaas.Hour})
		require.NoError(t, err)
		jobs, err := db.Jobs.List(ctx, u.ID, gaas.JobFilter{})
		require.NoError(t, err)
		doomed := jobs.Items[0]
		_, err = db.Jobs.Cancel(ctx, u.ID, gaas.CancelRequest{JobID: doomed.ID})
		require.Error(t, err, "the commit fails")
		assert.Equal(t, before, eventsOf(t, db, gaas.EventJobStatusChanged), "the rolled back move said nothing")

		f.submit(t, u.ID, gaas.Hour) // 7 + 1 + 1 of 10: 90%
		evs := eventsOf(t, db, gaas.EventThresholdCrossed)
		require.Len(t, evs, 1)
		assert.Equal(t, 80, dataOf[gaas.ThresholdCrossed](t, evs[0]).Threshold)
		f.move(t, j, nil, gaas.StatusCancelled)
		assert.Len(t, eventsOf(t, db, gaas.EventJobStatusChanged), len(before)+1)
	})
}

// Commands of jobs whose transactions doom makes fail at commit.
const (
	doomedSubmit = "doomed-submit" // the submission's
	doomedMove   = "doomed-move"   // any move's
)

// doom makes the database at dsn fail, at commit, a transaction that
// inserts a job of command doomedSubmit or changes one of command
// doomedMove: a deferred foreign key, checked only then, is broken.
func doom(t *testing.T, dsn string) {
	t.Helper()
	raw := rawOpen(t, dsn)
	stmts := []string{
		"CREATE TABLE doom (ref INTEGER REFERENCES users (id) DEFERRABLE INITIALLY DEFERRED)",
		"CREATE TRIGGER doom_submit AFTER INSERT ON jobs WHEN NEW.command = '" + doomedSubmit + "' BEGIN INSERT INTO doom VALUES (-1); END",
		"CREATE TRIGGER doom_move AFTER UPDATE ON jobs WHEN NEW.command = '" + doomedMove + "' BEGIN INSERT INTO doom VALUES (-1); END",
	}
	if store.IsPostgres(dsn) {
		stmts = []string{
			"CREATE TABLE doom (ref BIGINT REFERENCES users (id) DEFERRABLE INITIALLY DEFERRED)",
			"CREATE FUNCTION doom() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO doom VALUES (-1); RETURN NEW; END $$",
			"CREATE TRIGGER doom_submit AFTER INSERT ON jobs FOR EACH ROW WHEN (NEW.command = '" + doomedSubmit + "') EXECUTE FUNCTION doom()",
			"CREATE TRIGGER doom_move AFTER UPDATE ON jobs FOR EACH ROW WHEN (NEW.command = '" + doomedMove + "') EXECUTE FUNCTION doom()",
		}
	}
	for _, q := range stmts {
		_, err := raw.Exec(q)
		require.NoError(t, err, q)
	}
}

// An allocation that holds credits and ends within the configured time is
// one allocation.expiring event, whatever how often the scan runs; an
// empty one, or one further off, is none.
func TestNotifyExpiring(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		clk := newClock(t0)
		db := openStore(t, b.dsn(t), store.Options{Now: clk.Now, ExpiringWithin: 3 * 24 * time.Hour})
		f := newFixture(t, db)
		ctx := context.Background()
		u := f.user(t, 0)
		soon := f.allocation(t, gaas.CreateAllocationRequest{UserID: u.ID, Amount: 5 * gaas.Credit, StartsAt: t0, ExpiresAt: clk.At(5 * 24 * time.Hour)})
		empty := f.user(t, 0)
		f.allocation(t, gaas.CreateAllocationRequest{UserID: empty.ID, Amount: gaas.Credit, StartsAt: t0, ExpiresAt: clk.At(24 * time.Hour)})
		f.submit(t, empty.ID, gaas.Hour)
		f.allocation(t, gaas.CreateAllocationRequest{UserID: u.ID, Amount: gaas.Credit, StartsAt: t0, ExpiresAt: clk.At(30 * 24 * time.Hour)})

		n, err := db.Upkeep.NotifyExpiring(ctx)
		require.NoError(t, err)
		assert.Zero(t, n, "nothing holding credits ends within 3 days")

		clk.Add(2*24*time.Hour + time.Minute)
		for range 3 {
			_, err = db.Upkeep.NotifyExpiring(ctx)
			require.NoError(t, err)
		}
		evs := eventsOf(t, db, gaas.EventAllocationExpiring)
		require.Len(t, evs, 1)
		d := dataOf[gaas.AllocationEvent](t, evs[0])
		assert.Equal(t, soon.ID, d.AllocationID)
		assert.Equal(t, gaas.Amount(5*gaas.Credit), d.Remaining)
		require.NotNil(t, d.ExpiresAt)
		assert.True(t, d.ExpiresAt.Equal(*soon.ExpiresAt))
		assert.Equal(t, u.ID, evs[0].UserID)
	})
}

// An allocation's expiry by the worker is one allocation.expired event,
// saying what it took, in the expiry's transaction: a second run, which
// expires nothing, says nothing.
func TestExpiredIsAnEvent(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		clk := newClock(t0)
		db := openStore(t, b.dsn(t), store.Options{Now: clk.Now})
		f := newFixture(t, db)
		ctx := context.Background()
		u := f.user(t, 0)
		a := f.allocation(t, gaas.CreateAllocationRequest{UserID: u.ID, Amount: 5 * gaas.Credit, StartsAt: t0, ExpiresAt: clk.At(24 * time.Hour)})
		f.submit(t, u.ID, 2*gaas.Hour)
		clk.Add(25 * time.Hour)
		for range 2 {
			_, err := db.Upkeep.ExpireEnded(ctx)
			require.NoError(t, err)
		}
		evs := eventsOf(t, db, gaas.EventAllocationExpired)
		require.Len(t, evs, 1)
		d := dataOf[gaas.AllocationEvent](t, evs[0])
		assert.Equal(t, a.ID, d.AllocationID)
		require.NotNil(t, d.Expired)
		assert.Equal(t, gaas.Amount(3*gaas.Credit), *d.Expired)
		assert.Equal(t, gaas.Amount(0), d.Remaining)
		require.NotNil(t, d.UserID)
		assert.Equal(t, u.ID, *d.UserID)
		assert.Equal(t, u.ID, evs[0].UserID)
	})
}

// Each period a schedule gives is an allocation.granted event naming the
// schedule, and what of the last period's leftover expires is an
// allocation.expired event, each in the grant's transaction.
func TestScheduleEvents(t *testing.T) {
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
		f.submit(t, u.ID, 3*gaas.Hour)
		clk.Add(7 * 24 * time.Hour)
		_, err = db.Upkeep.GrantDue(ctx)
		require.NoError(t, err)

		granted := eventsOf(t, db, gaas.EventAllocationGranted)
		require.Len(t, granted, 2, "the current period, then the next")
		for _, e := range granted {
			d := dataOf[gaas.AllocationEvent](t, e)
			require.NotNil(t, d.ScheduleID)
			assert.Equal(t, s.ID, *d.ScheduleID)
			assert.Equal(t, u.ID, e.UserID)
		}
		assert.Equal(t, gaas.Amount(10*gaas.Credit), dataOf[gaas.AllocationEvent](t, granted[1]).Amount,
			"as granted, before the rollover moved into it")
		expired := eventsOf(t, db, gaas.EventAllocationExpired)
		require.Len(t, expired, 1)
		d := dataOf[gaas.AllocationEvent](t, expired[0])
		require.NotNil(t, d.Expired)
		assert.Equal(t, gaas.Amount(3*gaas.Credit), *d.Expired, "7 were left, 4 rolled over")
	})
}
