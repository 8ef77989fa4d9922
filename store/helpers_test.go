package store_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/gaas"
	"github.com/gaas-io/gaas/store"
)

// backend opens a fresh store of one kind for a test.
type backend struct {
	name string
	open func(t *testing.T, opts store.Options) *store.DB
}

// backends lists every store the tests run against: an in-memory SQLite
// and a SQLite file in a temp dir.
func backends() []backend {
	return []backend{
		{"memory", func(t *testing.T, opts store.Options) *store.DB { return openStore(t, ":memory:", opts) }},
		{"file", func(t *testing.T, opts store.Options) *store.DB {
			return openStore(t, filepath.Join(t.TempDir(), "gaas.db"), opts)
		}},
	}
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
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) { fn(t, b.open(t, store.Options{})) })
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
	admin, err := db.Users.EnsureAdmin(context.Background(), "root", "unused-hash")
	require.NoError(t, err)
	return &fixture{db: db, admin: admin}
}

var userSeq atomic.Int64

// user makes a user and sets their balance.
func (f *fixture) user(t *testing.T, balance gaas.Hours) gaas.User {
	t.Helper()
	ctx := context.Background()
	u, err := f.db.Users.CreateUser(ctx, fmt.Sprintf("user%d", userSeq.Add(1)), "unused-hash", gaas.RoleUser)
	require.NoError(t, err)
	if balance != u.Balance {
		u, err = f.db.Quota.Set(ctx, f.admin.ID, u.ID, balance, "test balance")
		require.NoError(t, err)
	}
	return u
}

func (f *fixture) balance(t *testing.T, id int64) gaas.Hours {
	t.Helper()
	h, err := f.db.Quota.Balance(context.Background(), f.admin.ID, id)
	require.NoError(t, err)
	return h
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
