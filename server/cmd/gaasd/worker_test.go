package main

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun/driver/sqliteshim"

	"github.com/gaas-io/gaas/gaas"
	"github.com/gaas-io/gaas/store"
	"github.com/gaas-io/gaas/store/storetest"
)

// ended is what seedEnded wrote.
type ended struct {
	allocations int   // ended allocations that hold credits
	staleJob    int64 // a job PENDING for an hour
}

// seedEnded writes, through a store whose clock is an hour behind, users
// with allocations that ended half an hour ago holding credits, and a job
// of another user submitted an hour ago that is still PENDING.
func seedEnded(t *testing.T, dsn string, users, each int) ended {
	t.Helper()
	ctx := context.Background()
	past := time.Now().Add(-time.Hour)
	db, err := store.Open(ctx, dsn, store.Options{Now: func() time.Time { return past }})
	require.NoError(t, err)
	defer db.Close()
	sys := db.As(gaas.System("test"))
	var out ended
	for u := range users {
		user, err := db.Accounts.CreateUser(ctx, fmt.Sprintf("ended%d", u), "!", gaas.RoleUser)
		require.NoError(t, err)
		for i := range each {
			_, err := sys.CreateAllocation(ctx, gaas.CreateAllocationRequest{UserID: user.ID, Amount: gaas.Credits(1000 + i),
				ExpiresAt: timePtr(past.Add(30 * time.Minute)), Reason: "ends"})
			require.NoError(t, err)
			out.allocations++
		}
	}
	user, err := db.Accounts.CreateUser(ctx, "forgetful", "!", gaas.RoleUser)
	require.NoError(t, err)
	j, err := db.Jobs.Submit(ctx, user.ID, gaas.SubmitRequest{Command: "forgotten", GPUType: "A100", EstimatedHours: gaas.Hour})
	require.NoError(t, err)
	out.staleJob = j.ID
	return out
}

func timePtr(t time.Time) *time.Time { return &t }

// rawDB opens a plain database/sql handle on gaasd's database, to count
// rows while gaasd runs.
func rawDB(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	driver := sqliteshim.ShimName
	if store.IsPostgres(dsn) {
		driver = "pgx"
	}
	raw, err := sql.Open(driver, dsn)
	require.NoError(t, err)
	t.Cleanup(func() { raw.Close() })
	return raw
}

// expiries counts the expire entries, and the allocations with more than
// one.
func expiries(t *testing.T, raw *sql.DB) (entries, doubled int) {
	t.Helper()
	require.NoError(t, raw.QueryRow("SELECT count(*) FROM ledger WHERE kind = 'expire'").Scan(&entries))
	require.NoError(t, raw.QueryRow("SELECT count(*) FROM (SELECT allocation_id FROM ledger WHERE kind = 'expire' GROUP BY allocation_id HAVING count(*) > 1) d").
		Scan(&doubled))
	return entries, doubled
}

// awaitExpiries waits until want expire entries are written, requiring
// that no allocation ever has two. It bounds liveness, not speed: it
// fails when 30 s pass with no expiry written, however long all of them
// take on a machine busy with other packages' tests.
func awaitExpiries(t *testing.T, raw *sql.DB, want int) {
	t.Helper()
	const still = 30 * time.Second
	last, deadline := -1, time.Now().Add(still)
	for {
		n, doubled := expiries(t, raw)
		require.Zero(t, doubled)
		if n == want {
			return
		}
		if n != last {
			last, deadline = n, time.Now().Add(still)
		}
		require.True(t, time.Now().Before(deadline), "%d of %d allocations expired, and none more in %v", n, want, still)
		time.Sleep(20 * time.Millisecond)
	}
}

// checkClean requires store.Check to find nothing wrong.
func checkClean(t *testing.T, dsn string) {
	t.Helper()
	db, err := store.Open(context.Background(), dsn, store.Options{})
	require.NoError(t, err)
	defer db.Close()
	report, err := db.Check(context.Background())
	require.NoError(t, err)
	assert.True(t, report.OK(), "%v", report.Violations)
}

// Two replicas on one PostgreSQL run the worker: a backlog of ended
// allocations, more than one batch, expires, each allocation in one expire
// entry by the system, and a stale job is cancelled once, saying why.
func TestWorkerReplicasOnPostgres(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	seeded := seedEnded(t, dsn, 12, 20) // 240 allocations: more than store.ExpireBatch
	require.Greater(t, seeded.allocations, store.ExpireBatch)
	env := map[string]string{"GAAS_ADMIN_USERNAME": "root", "GAAS_ADMIN_PASSWORD": "root-password"}
	var replicas []*instance
	for range 2 {
		g, err := launch(t, dsn, env, "-worker-interval", "20ms", "-stale-after", "30m")
		require.NoError(t, err)
		replicas = append(replicas, g)
	}
	raw := rawDB(t, dsn)
	awaitExpiries(t, raw, seeded.allocations)
	time.Sleep(200 * time.Millisecond) // ten intervals more: nothing is added
	n, doubled := expiries(t, raw)
	assert.Equal(t, seeded.allocations, n)
	assert.Zero(t, doubled)
	var actors []string
	rows, err := raw.Query("SELECT DISTINCT actor_system FROM ledger WHERE kind = 'expire'")
	require.NoError(t, err)
	for rows.Next() {
		var a string
		require.NoError(t, rows.Scan(&a))
		actors = append(actors, a)
	}
	require.NoError(t, rows.Err())
	assert.Equal(t, []string{gaas.SystemExpiry}, actors)

	_, body := replicas[0].json(t, "POST", "/login", "", `{"username": "root", "password": "root-password"}`)
	admin := body["access_token"].(string)
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		if _, job := replicas[1].json(t, "GET", fmt.Sprintf("/jobs/%d", seeded.staleJob), admin, ""); job["status"] == "CANCELLED" {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	status, job := replicas[1].json(t, "GET", fmt.Sprintf("/jobs/%d", seeded.staleJob), admin, "")
	require.Equal(t, http.StatusOK, status)
	assert.Equal(t, "CANCELLED", job["status"])
	assert.Equal(t, "stale: pending longer than 30m0s", job["end_reason"])
	var refunds int
	require.NoError(t, raw.QueryRow("SELECT count(*) FROM ledger WHERE kind = 'refund' AND job_id = $1 AND actor_system = $2",
		seeded.staleJob, gaas.SystemStale).Scan(&refunds))
	assert.Equal(t, 1, refunds)
	for _, g := range replicas {
		assert.Contains(t, g.logs.String(), `"msg":"background worker running"`)
	}
	for _, g := range replicas {
		g.stop(t)
	}
	checkClean(t, dsn)
}

// gaasd is killed with SIGKILL while its worker works off a backlog of
// ended allocations, and started again, a few times: when the backlog is
// done, every allocation has expired once, none twice, and Check is clean.
func TestWorkerCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and restarts a process")
	}
	db := filepath.Join(t.TempDir(), "gaas.db")
	seeded := seedEnded(t, db, 40, 25) // 1000 allocations, five batches
	rnd := rand.New(rand.NewPCG(storetest.Seed(t), 2))
	raw := rawDB(t, db)
	args := []string{"-worker-interval", "20ms", "-worker-lease-ttl", "200ms"}
	kills := 0
	for kills < 3 {
		p := startProcess(t, db, args...)
		// Kill it at a random moment while it expires.
		done, _ := expiries(t, raw)
		target := done + 1 + rnd.IntN(max(1, (seeded.allocations-done)/2))
		for {
			n, doubled := expiries(t, raw)
			require.Zero(t, doubled)
			if n >= target || n == seeded.allocations {
				break
			}
			time.Sleep(time.Millisecond)
		}
		p.kill()
		n, _ := expiries(t, raw)
		t.Logf("killed after %d of %d expiries", n, seeded.allocations)
		kills++
		if n == seeded.allocations {
			break
		}
	}
	p := startProcess(t, db, args...)
	defer p.kill()
	awaitExpiries(t, raw, seeded.allocations)
	p.kill()
	var left int
	require.NoError(t, raw.QueryRow("SELECT count(*) FROM allocations WHERE expires_at IS NOT NULL AND remaining > 0").Scan(&left))
	assert.Zero(t, left, "every ended allocation is empty")
	checkClean(t, db)
}

// With -worker=false gaasd leaves expiry and stale jobs to other replicas.
func TestWorkerOff(t *testing.T) {
	db := filepath.Join(t.TempDir(), "gaas.db")
	seeded := seedEnded(t, db, 1, 3)
	g, err := launch(t, db, nil, "-worker=false", "-worker-interval", "10ms", "-stale-after", "1m")
	require.NoError(t, err)
	time.Sleep(100 * time.Millisecond) // ten intervals, had the worker run
	n, _ := expiries(t, rawDB(t, db))
	assert.Zero(t, n)
	assert.Contains(t, g.logs.String(), `"msg":"background worker off`)
	g.stop(t)
	require.Equal(t, 3, seeded.allocations)
}

// seedUsage writes, through a store whose clock walks the days days before
// now, a job a day that runs and completes, and returns the credits they
// were charged (in milli-credits, as the ledger keeps them).
func seedUsage(t *testing.T, dsn string, days int) int64 {
	t.Helper()
	ctx := context.Background()
	var at atomic.Int64
	db, err := store.Open(ctx, dsn, store.Options{Now: func() time.Time { return time.Unix(0, at.Load()).UTC() }, DefaultQuota: 1000 * gaas.Credit})
	require.NoError(t, err)
	defer db.Close()
	admin, err := db.Accounts.CreateUser(ctx, "usage-admin", "!", gaas.RoleAdmin)
	require.NoError(t, err)
	user, err := db.Accounts.CreateUser(ctx, "busy", "!", gaas.RoleUser)
	require.NoError(t, err)
	start := time.Now().AddDate(0, 0, -days)
	var charged int64
	for d := range days {
		at.Store(start.AddDate(0, 0, d).UnixNano())
		j, err := db.Jobs.Submit(ctx, user.ID, gaas.SubmitRequest{Command: "train", GPUType: "A100", EstimatedHours: gaas.Hour})
		require.NoError(t, err)
		charged += int64(j.Cost)
		for _, to := range []gaas.JobStatus{gaas.StatusApproved, gaas.StatusRunning, gaas.StatusCompleted} {
			_, err = db.Jobs.Transition(ctx, admin.ID, gaas.TransitionRequest{JobID: j.ID, To: to})
			require.NoError(t, err)
		}
	}
	return charged
}

// gaasd's worker rolls up the closed days of a history of weeks that no
// report has asked for, a week a run, and the report then answered agrees
// with the ledger.
func TestWorkerRollsUpUsage(t *testing.T) {
	for _, b := range []struct{ name, dsn string }{{"sqlite", filepath.Join(t.TempDir(), "gaas.db")}, {"postgres", ""}} {
		t.Run(b.name, func(t *testing.T) {
			dsn := b.dsn
			if dsn == "" {
				dsn = storetest.PostgresDSN(t)
			}
			charged := seedUsage(t, dsn, 50)
			raw := rawDB(t, dsn)
			var days string
			require.NoError(t, raw.QueryRow("SELECT days FROM usage_rollup_state").Scan(&days))
			require.Empty(t, days, "rolled up before gaasd ran")
			env := map[string]string{"GAAS_ADMIN_USERNAME": "root", "GAAS_ADMIN_PASSWORD": "root-password"}
			g := start(t, dsn, env, "-worker-interval", "20ms")
			deadline := time.Now().Add(30 * time.Second)
			for {
				closed := time.Now().UTC().Add(-24 * time.Hour).Format(time.DateOnly)
				require.NoError(t, raw.QueryRow("SELECT days FROM usage_rollup_state").Scan(&days))
				if days >= closed {
					break
				}
				require.True(t, time.Now().Before(deadline), "rolled up to %q in 30s, not to %s", days, closed)
				time.Sleep(20 * time.Millisecond)
			}
			var rows int
			require.NoError(t, raw.QueryRow("SELECT count(*) FROM usage_rollup WHERE grain = 'day'").Scan(&rows))
			assert.GreaterOrEqual(t, rows, 45, "a row a day of the history")
			assert.Contains(t, g.logs.String(), `"msg":"days of usage rolled up for reports"`)
			assert.Contains(t, g.logs.String(), `"rollup-usage"`)

			_, body := g.json(t, "POST", "/login", "", `{"username": "root", "password": "root-password"}`)
			admin := body["access_token"].(string)
			from := time.Now().UTC().AddDate(0, 0, -60).Format(time.DateOnly)
			status, report := g.json(t, "GET", "/reports/usage?period=month&from="+from, admin, "")
			require.Equal(t, http.StatusOK, status, "%v", report)
			total := report["total"].(map[string]any)
			assert.InDelta(t, float64(charged)/1000, total["charged"], 1e-9)
			assert.Equal(t, 50.0, total["jobs"].(map[string]any)["COMPLETED"])
			g.stop(t)
		})
	}
}
