package store_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the pgx driver, for rawOpen
	"github.com/uptrace/bun/driver/sqliteshim"

	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/gaas"
	"github.com/gaas-io/gaas/store"
	"github.com/gaas-io/gaas/store/storetest"
)

// backend is one kind of database the tests run against. dsn returns the
// DSN of a fresh, empty database for one test.
type backend struct {
	name string
	dsn  func(t *testing.T) string
	// shared is whether two stores opened on one DSN see the same data.
	shared bool
}

// backends lists every database the store's tests run against: an
// in-memory SQLite, a SQLite file in a temp dir, and PostgreSQL when
// GAAS_TEST_POSTGRES names a server (a schema of its own for each test).
func backends() []backend {
	return []backend{
		{name: "memory", dsn: func(*testing.T) string { return ":memory:" }},
		{name: "file", shared: true, dsn: func(t *testing.T) string { return filepath.Join(t.TempDir(), "gaas.db") }},
		{name: "postgres", shared: true, dsn: func(t *testing.T) string { return storetest.PostgresDSN(t) }},
	}
}

// rawOpen opens a plain database/sql handle on a store's database, to do
// what code going around the store could.
func rawOpen(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	driver, name := sqliteshim.ShimName, "file:"+dsn+"?_pragma=foreign_keys(1)&_pragma=busy_timeout(5000)"
	if store.IsPostgres(dsn) {
		driver, name = "pgx", dsn
	}
	raw, err := sql.Open(driver, name)
	require.NoError(t, err)
	t.Cleanup(func() { raw.Close() })
	return raw
}

func openStore(t *testing.T, dsn string, opts store.Options) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), dsn, opts)
	require.NoError(t, err)
	t.Cleanup(func() {
		assertInvariants(t, db)
		require.NoError(t, db.Close())
	})
	return db
}

// forEachStore runs fn as a subtest on every backend. Every store is
// checked for the ledger invariants when the test ends.
func forEachStore(t *testing.T, fn func(t *testing.T, db *store.DB)) {
	forEachBackend(t, func(t *testing.T, b backend) { fn(t, openStore(t, b.dsn(t), store.Options{})) })
}

// forEachBackend runs fn as a subtest on every backend.
func forEachBackend(t *testing.T, fn func(t *testing.T, b backend)) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) { fn(t, b) })
	}
}

// forEachSharedBackend runs fn as a subtest on the backends that a file or
// a server holds (a SQLite file and PostgreSQL), for the slowest tests:
// the in-memory SQLite would run the same statements on the same engine
// as the file, and under the race detector SQLite is its slowest part.
func forEachSharedBackend(t *testing.T, fn func(t *testing.T, b backend)) {
	for _, b := range backends() {
		if b.shared {
			t.Run(b.name, func(t *testing.T) { fn(t, b) })
		}
	}
}

// newTestStore opens an in-memory store, for tests that need one only.
func newTestStore(t *testing.T) *store.DB {
	return openStore(t, ":memory:", store.Options{})
}

func assertInvariants(t *testing.T, db *store.DB) {
	t.Helper()
	report, err := db.Check(context.Background())
	require.NoError(t, err)
	for _, v := range report.Violations {
		t.Errorf("invariant broken: %s", v)
	}
}

// fixture holds an admin and users made in a store.
type fixture struct {
	db    *store.DB
	admin gaas.User
}

func newFixture(t *testing.T, db *store.DB) *fixture {
	t.Helper()
	admin, err := db.Accounts.EnsureAdmin(context.Background(), "root", "unused-hash", false)
	require.NoError(t, err)
	return &fixture{db: db, admin: admin}
}

var userSeq atomic.Int64

// user makes a user and sets their balance.
func (f *fixture) user(t *testing.T, balance gaas.Credits) gaas.User {
	t.Helper()
	ctx := context.Background()
	u, err := f.db.Accounts.CreateUser(ctx, fmt.Sprintf("user%d", userSeq.Add(1)), "unused-hash", gaas.RoleUser)
	require.NoError(t, err)
	if balance != u.Balance {
		u, err = f.db.Quota.Set(ctx, f.admin.ID, gaas.SetBalanceRequest{UserID: u.ID, Balance: balance, Reason: "test balance"})
		require.NoError(t, err)
	}
	return u
}

func (f *fixture) balance(t *testing.T, id int64) gaas.Credits {
	t.Helper()
	c, err := f.db.Quota.Balance(context.Background(), f.admin.ID, gaas.BalanceRequest{UserID: id})
	require.NoError(t, err)
	return c
}

func (f *fixture) submit(t *testing.T, userID int64, hours gaas.Hours) gaas.Job {
	t.Helper()
	j, err := f.db.Jobs.Submit(context.Background(), userID, gaas.SubmitRequest{
		Command: "python train.py", GPUType: "NVIDIA A100", EstimatedHours: hours,
	})
	require.NoError(t, err)
	return j
}

func hoursPtr(h gaas.Hours) *gaas.Hours { return &h }

// allocation gives a user an allocation, as the admin.
func (f *fixture) allocation(t *testing.T, req gaas.CreateAllocationRequest) gaas.Allocation {
	t.Helper()
	if req.Reason == "" {
		req.Reason = "test allocation"
	}
	a, err := f.db.Allocations.CreateAllocation(context.Background(), f.admin.ID, req)
	require.NoError(t, err)
	return a
}

// allocations lists every allocation of a user, ended ones too, as the admin.
func (f *fixture) allocations(t *testing.T, userID int64) []gaas.Allocation {
	t.Helper()
	return listAllocations(t, f.db, f.admin.ID, gaas.AllocationsRequest{UserID: userID, Ended: true})
}

// listAllocations reads every page of a listing of allocations, for caller.
func listAllocations(t require.TestingT, db *store.DB, caller int64, req gaas.AllocationsRequest) []gaas.Allocation {
	var out []gaas.Allocation
	req.Limit = gaas.MaxLimit
	for {
		page, err := db.Allocations.Allocations(context.Background(), caller, req)
		require.NoError(t, err)
		out = append(out, page.Items...)
		if req.Cursor = page.NextCursor; req.Cursor == "" {
			return out
		}
	}
}

func timePtr(t time.Time) *time.Time { return &t }

// clock is a clock for store.Options.Now that moves only when told.
type clock struct{ ns atomic.Int64 }

func newClock(at time.Time) *clock {
	c := &clock{}
	c.Set(at)
	return c
}

func (c *clock) Now() time.Time                { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) Set(at time.Time)              { c.ns.Store(at.UnixNano()) }
func (c *clock) Add(d time.Duration)           { c.ns.Add(int64(d)) }
func (c *clock) At(d time.Duration) *time.Time { return timePtr(c.Now().Add(d)) }

// t0 is when tests with a clock begin.
var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// ledger reads a user's whole ledger, as the admin.
func (f *fixture) ledger(t *testing.T, userID int64) []gaas.LedgerEntry {
	t.Helper()
	var out []gaas.LedgerEntry
	cursor := ""
	for {
		page, err := f.db.Quota.Ledger(context.Background(), f.admin.ID, gaas.LedgerRequest{UserID: userID, Page: gaas.Page{Limit: gaas.MaxLimit, Cursor: cursor}})
		require.NoError(t, err)
		out = append(out, page.Items...)
		if cursor = page.NextCursor; cursor == "" {
			return out
		}
	}
}

// move takes a job through statuses, as the admin.
func (f *fixture) move(t *testing.T, j gaas.Job, actual *gaas.Hours, to ...gaas.JobStatus) gaas.Job {
	t.Helper()
	for i, s := range to {
		req := gaas.TransitionRequest{JobID: j.ID, To: s}
		if i == len(to)-1 {
			req.ActualHours = actual
		}
		var err error
		j, err = f.db.Jobs.Transition(context.Background(), f.admin.ID, req)
		require.NoError(t, err)
	}
	return j
}
