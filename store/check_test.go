package store_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/gaas"
	"github.com/gaas-io/gaas/store"
)

// Check finds each kind of damage that code going around the store could
// do, and names the rule it breaks: each case below breaks one rule alone.
func TestCheckFindsViolations(t *testing.T) {
	// Each damage is SQL run around the store on a database holding a user
	// (id u) whose balance is b and whose last ledger entry says so, and a
	// REJECTED job (id j) of theirs, refunded.
	cases := []struct {
		rule   string
		damage func(u, j int64, b gaas.Hours) string
	}{
		{"balance", func(u, _ int64, _ gaas.Hours) string {
			return fmt.Sprintf("UPDATE users SET balance = balance + 1 WHERE id = %d", u)
		}},
		{"running-balance", func(u, _ int64, b gaas.Hours) string {
			return ledgerInsert(u, "NULL", "grant", 0, b+7)
		}},
		{"balance-max", func(u, _ int64, b gaas.Hours) string {
			// Balance and ledger agree, each entry follows the one before:
			// only the maximum is broken.
			return fmt.Sprintf("UPDATE users SET balance = %d WHERE id = %d; ", gaas.MaxHours+1, u) +
				ledgerInsert(u, "NULL", "grant", gaas.MaxHours+1-b, gaas.MaxHours+1)
		}},
		{"job-charge", func(u, _ int64, _ gaas.Hours) string {
			return fmt.Sprintf("INSERT INTO jobs (user_id, command, gpu_type, estimated, status, created_at, updated_at)"+
				" VALUES (%d, 'free', 'A100', 5000, 'PENDING', '2026-01-01', '2026-01-01')", u)
		}},
		{"job-refund", func(_, j int64, _ gaas.Hours) string {
			return fmt.Sprintf("UPDATE jobs SET status = 'COMPLETED', actual = 1000 WHERE id = %d", j)
		}},
		// A state no move reaches, though its refunds add up to what its
		// status returns: gaas.SettlementOf refuses it.
		{"job-refund", func(_, j int64, _ gaas.Hours) string {
			return fmt.Sprintf("UPDATE jobs SET actual = 1000 WHERE id = %d", j)
		}},
		{"entry", func(u, j int64, b gaas.Hours) string {
			return ledgerInsert(u, fmt.Sprint(j), "grant", 0, b)
		}},
	}
	forEachBackend(t, func(t *testing.T, b backend) {
		if !b.shared {
			t.Skip("needs a second connection to the same database")
		}
		for i, tc := range cases {
			t.Run(fmt.Sprintf("%d_%s", i, tc.rule), func(t *testing.T) {
				ctx := context.Background()
				dsn := b.dsn(t)
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

				q := tc.damage(u.ID, rejected.ID, f.balance(t, u.ID))
				_, err = rawOpen(t, dsn).ExecContext(ctx, q)
				require.NoError(t, err, q)
				report, err = db.Check(ctx)
				require.NoError(t, err)
				require.NotEmpty(t, report.Violations, "Check missed: %s", q)
				for _, v := range report.Violations {
					assert.Equal(t, tc.rule, v.Rule, "%s", v)
				}
			})
		}
	})
}

// ledgerInsert is an entry appended around the store.
func ledgerInsert(user int64, job, kind string, delta, balance gaas.Hours) string {
	return fmt.Sprintf("INSERT INTO ledger (user_id, job_id, actor_id, kind, delta, balance, reason, created_at)"+
		" VALUES (%d, %s, %d, '%s', %d, %d, 'around the store', '2026-01-01')", user, job, user, kind, delta, balance)
}

// Progress is told, in increasing counts, how many steps of the check are
// done, ending with all of them; the report is Check's.
func TestCheckProgress(t *testing.T) {
	db := newTestStore(t)
	f := newFixture(t, db)
	f.submit(t, f.user(t, 5000).ID, 1000)
	type call struct{ done, total int }
	var calls []call
	report, err := db.CheckWith(context.Background(), store.CheckOptions{Progress: func(done, total int) {
		calls = append(calls, call{done, total})
	}})
	require.NoError(t, err)
	assert.True(t, report.OK(), "%v", report.Violations)
	assert.Equal(t, 2, report.Users)
	require.NotEmpty(t, calls)
	total := calls[0].total
	for i, c := range calls {
		assert.Equal(t, total, c.total)
		if i > 0 {
			assert.Greater(t, c.done, calls[i-1].done)
		}
	}
	assert.Equal(t, call{total, total}, calls[len(calls)-1])
	assert.Len(t, calls, total, "one call per step")
}
