package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/gaas"
	"github.com/gaas-io/gaas/store"
	"github.com/gaas-io/gaas/store/storetest"
)

// An operator gives a user a monthly schedule in Berlin time that rolls
// over, and a project a weekly one; lists them, pauses, resumes and ends
// one. The user's allocation of the period under way is given at once.
// Refusals exit 1, usage errors 2, and write nothing.
func TestSchedulesCLI(t *testing.T) {
	for name, target := range databaseTargets {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			db := target(t)
			_, _, err := admin(t, db, "a-good-password\n", "user", "add", "ada", "-password-stdin")
			require.NoError(t, err)
			_, _, err = admin(t, db, "", "project", "add", "-name", "qlab")
			require.NoError(t, err)

			out, code, err := admin(t, db, "", "schedules", "add", "-user", "ADA", "-amount", "5", "-period", "monthly",
				"-starts", "2026-01-31T00:00:00+01:00", "-time-zone", "Europe/Berlin", "-rollover-cap", "2.5", "-grant-current", "-reason", "monthly")
			require.NoError(t, err, out)
			assert.Equal(t, 0, code)
			assert.Regexp(t, `^ID +HOLDER +AMOUNT +PERIOD +SCOPE +LEFTOVER +NEXT +STATE +CREATOR +REASON\n`+
				`1 +user 1 +5 +monthly +all +rollover up to 2.5 +\S+\+0[12]:00 +active +cli:\S+ +"monthly"\n$`, out)
			out, _, err = admin(t, db, "", "schedules", "add", "-project", "qlab", "-amount", "10", "-period", "weekly", "-json")
			require.NoError(t, err, out)
			var weekly scheduleJSON
			require.NoError(t, json.Unmarshal([]byte(out), &weekly), out)
			assert.Equal(t, "project 1", weekly.Holder)
			assert.Equal(t, "expire", weekly.Leftover)
			assert.Equal(t, "UTC", weekly.TimeZone)

			out, _, err = admin(t, db, "", "allocations", "list", "-user", "ada", "-json")
			require.NoError(t, err, out)
			var allocs []allocationJSON
			require.NoError(t, json.Unmarshal([]byte(out), &allocs), out)
			require.Len(t, allocs, 2, "the default allocation and the month under way")
			assert.Equal(t, "5", allocs[1].Amount)
			assert.Equal(t, "schedule", allocs[1].CreatedBy)

			out, _, err = admin(t, db, "", "schedules", "list", "-json")
			require.NoError(t, err, out)
			var listed []scheduleJSON
			require.NoError(t, json.Unmarshal([]byte(out), &listed), out)
			assert.Len(t, listed, 2)
			out, _, err = admin(t, db, "", "schedules", "list", "-project", "qlab")
			require.NoError(t, err, out)
			assert.Regexp(t, `\n2 +project 1 +10 +weekly +all +expire +`, out)

			out, _, err = admin(t, db, "", "schedules", "pause", "2")
			require.NoError(t, err, out)
			assert.Contains(t, out, " paused ")
			out, _, err = admin(t, db, "", "schedules", "resume", "2")
			require.NoError(t, err, out)
			assert.Contains(t, out, " active ")
			out, _, err = admin(t, db, "", "schedules", "end", "2", "-json")
			require.NoError(t, err, out)
			var ended scheduleJSON
			require.NoError(t, json.Unmarshal([]byte(out), &ended), out)
			assert.Equal(t, "ended", ended.State)
			assert.NotNil(t, ended.EndedAt)

			before, _, err := admin(t, db, "", "schedules", "list", "-json")
			require.NoError(t, err)
			adminFails(t, db, []struct {
				args []string
				code int
				want string
			}{
				{[]string{"schedules", "add", "-user", "ada", "-amount", "1"}, 2, "-period are required"},
				{[]string{"schedules", "add", "-amount", "1", "-period", "daily"}, 2, "-user or -project"},
				{[]string{"schedules", "add", "-user", "ada", "-project", "qlab", "-amount", "1", "-period", "daily"}, 2, "one of them"},
				{[]string{"schedules", "add", "-user", "ada", "-amount", "1", "-period", "hourly"}, 1, "period: must be one of"},
				{[]string{"schedules", "add", "-user", "ada", "-amount", "1", "-period", "daily", "-time-zone", "Mars/Olympus"}, 1, "time_zone"},
				{[]string{"schedules", "add", "-user", "nobody", "-amount", "1", "-period", "daily"}, 1, `no user "nobody"`},
				{[]string{"schedules", "add", "-project", "nope", "-amount", "1", "-period", "daily"}, 1, `project "nope"`},
				{[]string{"schedules", "add", "-user", "ada", "-amount", "x", "-period", "daily"}, 2, "-amount"},
				{[]string{"schedules", "pause", "2"}, 1, "conflict"},
				{[]string{"schedules", "end", "99"}, 1, "not found"},
				{[]string{"schedules", "end", "x"}, 2, "a schedule's number"},
				{[]string{"schedules", "end"}, 2, "takes 1 arguments, not 0"},
				{[]string{"schedules", "list", "-user", "ada", "-project", "qlab"}, 2, "not both"},
				{[]string{"schedules", "drop", "1"}, 2, `no subcommand "drop"; there are list, add, pause, resume, end`},
			})
			after, _, err := admin(t, db, "", "schedules", "list", "-json")
			require.NoError(t, err)
			assert.Equal(t, before, after, "nothing refused was written")

			var checked bytes.Buffer
			require.NoError(t, run(ctx, []string{"check", "-db", db}, func(string) string { return "" }, &checked, &bytes.Buffer{}), checked.String())
		})
	}
}

// gaasd help schedules shows its subcommands.
func TestSchedulesCLIHelp(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), []string{"help", "schedules"}, func(string) string { return "" }, &out, &out)
	assert.Equal(t, 0, exitCode(err))
	assert.Contains(t, out.String(), "gaasd schedules pause|resume|end ID")
}

// With -default-quota-period, a new account's default quota is a schedule:
// the account has it at once, as a period's allocation that names it.
func TestDefaultQuotaPeriodFlag(t *testing.T) {
	db := filepath.Join(t.TempDir(), "gaas.db")
	g := start(t, db, map[string]string{"GAAS_ADMIN_USERNAME": "root", "GAAS_ADMIN_PASSWORD": "root-password-secret"},
		"-default-quota", "7", "-default-quota-period", "weekly")
	status, body := g.json(t, "POST", "/register", "", `{"username": "alice", "password": "alice-password"}`)
	require.Equal(t, http.StatusCreated, status, "%v", body)
	assert.Equal(t, 7.0, body["gpu_hours_quota"])
	_, login := g.call(t, "POST", "/login", "", "application/x-www-form-urlencoded",
		url.Values{"username": {"root"}, "password": {"root-password-secret"}}.Encode())
	token := login["access_token"].(string)
	status, page := g.call(t, "GET", "/schedules?user_id="+jsonID(body), token, "", "")
	require.Equal(t, http.StatusOK, status, "%v", page)
	items := page["items"].([]any)
	require.Len(t, items, 1)
	s := items[0].(map[string]any)
	assert.Equal(t, "weekly", s["period"])
	assert.Equal(t, 7.0, s["amount"])
	assert.Equal(t, "registration", s["created_by_system"])
	g.stop(t)

	err := run(context.Background(), []string{"-db", db, "-default-quota-period", "hourly"}, func(string) string { return "" }, io.Discard, io.Discard)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "-default-quota-period")
	assert.Contains(t, err.Error(), "daily, weekly, monthly, quarterly or yearly")
}

// gaasd's worker grants a backlog of schedules' periods, several runs'
// worth, and is killed (SIGKILL) at random moments while it does; a last
// process grants the rest. Every period of every schedule is given once,
// and gaasd check finds nothing wrong.
func TestGrantScheduleCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and restarts a process")
	}
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "gaas.db")
	const users, days = 30, 20
	past := time.Now().Add(-days * 24 * time.Hour).Add(time.Hour)
	seed, err := store.Open(ctx, db, store.Options{Now: func() time.Time { return past }})
	require.NoError(t, err)
	sys := seed.As(gaas.System("test"))
	for u := range users {
		user, err := seed.Accounts.CreateUser(ctx, fmt.Sprintf("scheduled%d", u), "!", gaas.RoleUser)
		require.NoError(t, err)
		req := gaas.CreateScheduleRequest{UserID: user.ID, Amount: gaas.Credit, Period: gaas.PeriodDaily, GrantCurrent: true}
		if u%2 == 0 {
			req.Leftover, req.RolloverCap = gaas.LeftoverRollover, gaas.Credit/2
		}
		_, err = sys.CreateSchedule(ctx, req)
		require.NoError(t, err)
	}
	require.NoError(t, seed.Close())
	want := users * days // each schedule's first day, and the days since
	rnd := rand.New(rand.NewPCG(storetest.Seed(t), 3))
	raw := rawDB(t, db)
	given := func() int {
		var n int
		require.NoError(t, raw.QueryRow("SELECT count(*) FROM allocations WHERE schedule_id IS NOT NULL").Scan(&n))
		return n
	}
	args := []string{"-worker-interval", "20ms", "-worker-lease-ttl", "5s"}
	for kills := 0; kills < 3 && given() < want; kills++ {
		p := startProcess(t, db, args...)
		target := given() + 1 + rnd.IntN(max(1, (want-given())/2))
		deadline := time.Now().Add(2 * time.Minute)
		for n := given(); n < target && n < want; n = given() {
			require.True(t, time.Now().Before(deadline), "%d of %d periods given, waiting for %d, after two minutes", n, want, target)
			time.Sleep(time.Millisecond)
		}
		p.kill()
		t.Logf("killed after %d of %d periods", given(), want)
	}
	p := startProcess(t, db, args...)
	defer p.kill()
	// A bound on liveness, not speed: under -race, beside other packages tests, a run is slow.
	deadline := time.Now().Add(3 * time.Minute)
	for given() < want {
		require.True(t, time.Now().Before(deadline), "%d of %d periods given in 3 minutes", given(), want)
		time.Sleep(20 * time.Millisecond)
	}
	p.kill()
	assert.Equal(t, want, given())
	var perSchedule int
	require.NoError(t, raw.QueryRow("SELECT count(*) FROM (SELECT schedule_id FROM allocations WHERE schedule_id IS NOT NULL"+
		" GROUP BY schedule_id HAVING count(*) != ?) d", days).Scan(&perSchedule))
	assert.Zero(t, perSchedule, "every schedule has one allocation a day")
	checkClean(t, db)
}
