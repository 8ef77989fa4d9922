package store_test

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/gaas"
	"github.com/gaas-io/gaas/store"
	"github.com/gaas-io/gaas/store/storetest"
)

// The environment of the process TestGrantDueKilled starts and kills.
const (
	grantChildDSN = "GAAS_TEST_GRANT_DSN"
	grantChildNow = "GAAS_TEST_GRANT_NOW"
)

// TestGrantDueChild is the process TestGrantDueKilled kills: it grants
// what is due at a fixed time, run after run, saying after each how many
// it gave, until nothing is left. Run alone it does nothing.
func TestGrantDueChild(t *testing.T) {
	dsn := os.Getenv(grantChildDSN)
	if dsn == "" {
		t.Skip("run by TestGrantDueKilled")
	}
	now, err := time.Parse(time.RFC3339Nano, os.Getenv(grantChildNow))
	require.NoError(t, err)
	db, err := store.Open(context.Background(), dsn, store.Options{Now: func() time.Time { return now }})
	require.NoError(t, err)
	for {
		n, err := db.Upkeep.GrantDue(context.Background())
		require.NoError(t, err)
		fmt.Printf("granted %d\n", n)
		if n == 0 {
			return
		}
	}
}

// A process granting a long backlog of periods is killed (SIGKILL) at a
// random moment of a run; another then grants the rest. Every period of
// every schedule is given exactly once, every rollover is paired, and
// Check finds nothing wrong.
func TestGrantDueKilled(t *testing.T) {
	if os.Getenv(grantChildDSN) != "" {
		t.Skip("the child runs TestGrantDueChild only")
	}
	forEachBackend(t, func(t *testing.T, b backend) {
		if !b.shared {
			t.Skip("a killed process takes an in-memory database with it")
		}
		ctx := context.Background()
		rng := rand.New(rand.NewPCG(storetest.Seed(t), 2))
		dsn := b.dsn(t)
		clk := newClock(t0)
		db := openStore(t, dsn, store.Options{Now: clk.Now})
		f := newFixture(t, db)
		const schedules, days = 20, 60
		var users []gaas.User
		for i := 0; i < schedules; i++ {
			u := f.user(t, 0)
			users = append(users, u)
			req := gaas.CreateScheduleRequest{UserID: u.ID, Amount: gaas.Credit, Period: gaas.PeriodDaily, StartsAt: t0, GrantCurrent: true}
			if i%2 == 0 {
				req.Leftover, req.RolloverCap = gaas.LeftoverRollover, gaas.Credit/4
			}
			_, err := db.Schedules.CreateSchedule(ctx, f.admin.ID, req)
			require.NoError(t, err)
		}
		now := t0.Add(days*24*time.Hour - time.Minute)
		clk.Set(now)

		exe, err := os.Executable()
		require.NoError(t, err)
		cmd := exec.Command(exe, "-test.run", "^TestGrantDueChild$", "-test.v")
		cmd.Env = append(os.Environ(), grantChildDSN+"="+dsn, grantChildNow+"="+now.Format(time.RFC3339Nano))
		stdout, err := cmd.StdoutPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		lines := bufio.NewScanner(stdout)
		for lines.Scan() && !strings.HasPrefix(lines.Text(), "granted") {
		}
		// Kill it within a run that follows, somewhere in its transactions.
		time.Sleep(time.Duration(rng.Int64N(int64(200 * time.Millisecond))))
		require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
		go func() {
			for lines.Scan() {
			}
		}()
		_ = cmd.Wait()

		given := 0
		for {
			n := grantDue(t, db)
			if n == 0 {
				break
			}
			given += n
		}
		t.Logf("the second process gave %d of %d periods", given, schedules*(days-1))
		for i, u := range users {
			var periods []int64
			for _, a := range f.allocations(t, u.ID) {
				if a.ScheduleID != 0 {
					periods = append(periods, a.PeriodStart.Unix())
				}
			}
			require.Len(t, periods, days, "user %d: one allocation for each day", u.ID)
			assert.IsIncreasing(t, periods)
			want := gaas.Credit
			if i%2 == 0 {
				want += gaas.Credit / 4
			}
			assert.Equal(t, want, f.balance(t, u.ID), "user %d: today's credit, and what rolled over", u.ID)
		}
	})
}
