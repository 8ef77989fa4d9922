package store_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/gaas"
	"github.com/gaas-io/gaas/store"
)

// Check finds each kind of damage that code going around the store could do.
func TestCheckFindsViolations(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		if !b.shared {
			t.Skip("needs a second connection to the same database")
		}
		testCheckFindsViolations(t, b.dsn(t))
	})
}

func testCheckFindsViolations(t *testing.T, dsn string) {
	ctx := context.Background()
	db, err := store.Open(ctx, dsn, store.Options{})
	require.NoError(t, err)
	defer db.Close()
	f := newFixture(t, db)
	u := f.user(t, 10*gaas.Hour)
	rejected := f.reach(t, u, gaas.StatusRejected)
	report, err := db.Check(ctx)
	require.NoError(t, err)
	require.True(t, report.OK(), "%v", report.Violations)
	assert.Equal(t, 2, report.Users)
	assert.Equal(t, 1, report.Jobs)

	raw := rawOpen(t, dsn)
	for _, q := range []string{
		"UPDATE users SET balance = balance + 1 WHERE id = " + itoa(u.ID),
		"INSERT INTO jobs (user_id, command, gpu_type, estimated, status, created_at, updated_at) VALUES (" + itoa(u.ID) + ", 'free', 'A100', 5000, 'PENDING', '2026-01-01', '2026-01-01')",
		"UPDATE jobs SET status = 'COMPLETED', actual = 1000 WHERE id = " + itoa(rejected.ID),
	} {
		_, err := raw.ExecContext(ctx, q)
		require.NoError(t, err, q)
	}
	report, err = db.Check(ctx)
	require.NoError(t, err)
	rules := map[string]bool{}
	for _, v := range report.Violations {
		rules[v.Rule] = true
	}
	assert.Equal(t, map[string]bool{"balance": true, "job-charge": true, "job-refund": true}, rules, "%v", report.Violations)
}
