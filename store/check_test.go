package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/gaas"
	"github.com/gaas-io/gaas/store"
)

// Check finds each kind of damage that code going around the store could
// do, and names the rule it breaks: each case below breaks one rule alone.
func TestCheckFindsViolations(t *testing.T) {
	// Each damage is SQL run around the store on a database holding a user
	// whose default allocation and a second, expiring one (x) hold credits,
	// a REJECTED job of theirs that drew from x and was refunded to it, and
	// a PENDING one that drew from x.
	cases := []struct {
		rule   string
		damage func(s checkState) string
	}{
		{"allocation", func(s checkState) string {
			return fmt.Sprintf("UPDATE allocations SET remaining = remaining + 1 WHERE id = %d", s.dflt)
		}},
		{"allocation", func(s checkState) string {
			return fmt.Sprintf("UPDATE allocations SET amount = amount - 1 WHERE id = %d", s.x)
		}},
		{"running-balance", func(s checkState) string {
			return ledgerInsert(s, s.dflt, "NULL", "grant", 0, s.dfltRemaining, s.balance+7)
		}},
		{"running-balance", func(s checkState) string {
			// The account's balance follows, the allocation's remaining does not.
			return ledgerInsert(s, s.dflt, "NULL", "grant", 0, s.dfltRemaining+1, s.balance)
		}},
		{"balance-max", func(s checkState) string {
			// Allocation and ledger agree, each entry follows the one
			// before: only the maximum is broken.
			d := gaas.MaxCredits + 1 - s.balance
			return fmt.Sprintf("UPDATE allocations SET amount = amount + %d, remaining = remaining + %d WHERE id = %d; ", d, d, s.dflt) +
				ledgerInsert(s, s.dflt, "NULL", "grant", d, s.dfltRemaining+d, gaas.MaxCredits+1)
		}},
		{"account", func(s checkState) string {
			return fmt.Sprintf("UPDATE allocations SET is_default = FALSE WHERE id = %d", s.dflt)
		}},
		{"run", func(s checkState) string {
			// A lease on a job that was rejected.
			return fmt.Sprintf("INSERT INTO job_runs (job_id, executor, generation, expires_at) VALUES (%d, 'node1', 1, '2026-01-01')", s.rejected)
		}},
		{"run", func(s checkState) string {
			// Ended, but the job waits.
			return fmt.Sprintf("INSERT INTO job_runs (job_id, executor, generation, ended_at) VALUES (%d, 'node1', 1, '2026-01-01')", s.pending)
		}},
		{"job", func(s checkState) string {
			// Drawn, but never charged.
			return fmt.Sprintf("INSERT INTO jobs (user_id, account_id, command, gpu_type, gpu_count, estimated, rate, cost, draws, status, created_at, updated_at)"+
				" VALUES (%d, %d, 'free', 'A100', 1, 5000, 1000, 5000, '%d:5000', 'PENDING', '2026-01-01', '2026-01-01')", s.user, s.account, s.dflt)
		}},
		{"job", func(s checkState) string {
			// Its draws name the default allocation; its charge took from x.
			return fmt.Sprintf("UPDATE jobs SET draws = '%d:2000' WHERE id = %d", s.dflt, s.pending)
		}},
		{"job", func(s checkState) string {
			return fmt.Sprintf("UPDATE jobs SET cost = 1000, draws = '%d:1000' WHERE id = %d", s.x, s.pending)
		}},
		{"job", func(s checkState) string {
			return fmt.Sprintf("UPDATE jobs SET rate = 2000 WHERE id = %d", s.pending)
		}},
		{"job", func(s checkState) string {
			return fmt.Sprintf("UPDATE jobs SET status = 'COMPLETED', actual = 1000 WHERE id = %d", s.rejected)
		}},
		// A state no move reaches, though its refunds add up to what its
		// status returns: gaas.SettlementOf refuses it.
		{"job", func(s checkState) string {
			return fmt.Sprintf("UPDATE jobs SET actual = 1000 WHERE id = %d", s.rejected)
		}},
		{"entry", func(s checkState) string {
			return ledgerInsert(s, s.dflt, fmt.Sprint(s.rejected), "grant", 0, s.dfltRemaining, s.balance)
		}},
		{"entry", func(s checkState) string {
			return ledgerInsert(s, s.x, "NULL", "expire", 1, s.xRemaining+1, s.balance+1) + "; " +
				fmt.Sprintf("UPDATE allocations SET remaining = remaining + 1 WHERE id = %d", s.x)
		}},
		{"entry", func(s checkState) string {
			// A second expire, of nothing: the allocation expired twice.
			return ledgerInsert(s, s.x, "NULL", "expire", 0, s.xRemaining, s.balance)
		}},
		{"entry", func(s checkState) string {
			// x's credits expire, and x empties, before x ends.
			return ledgerInsert(s, s.x, "NULL", "expire", -s.xRemaining, 0, s.balance-s.xRemaining) + "; " +
				fmt.Sprintf("UPDATE allocations SET remaining = 0 WHERE id = %d", s.x)
		}},
		{"notice", func(s checkState) string {
			return fmt.Sprintf("INSERT INTO allocation_notices (allocation_id, notice) VALUES (%d, 'threshold:80')", s.x)
		}},
		{"notice", func(s checkState) string {
			return fmt.Sprintf(`INSERT INTO events (type, payload, created_at) VALUES ('allocation.expiring', '{"allocation_id": %d}', '2026-01-01')`, s.x)
		}},
		{"delivery", func(s checkState) string {
			// A delivery of an event not yet fanned out.
			return fmt.Sprintf("INSERT INTO webhooks (url, events, secret, owner_id, disabled_reason, created_at, updated_at)"+
				" VALUES ('https://hooks.example/', 'job.status_changed', 'whsec_x', %d, '', '2026-01-01', '2026-01-01'); ", s.user) +
				"INSERT INTO deliveries (event_id, webhook_id, status, attempts, next_attempt_at, last_error, last_status_code, created_at)" +
				" VALUES ((SELECT max(id) FROM events), (SELECT max(id) FROM webhooks), 'pending', 0, '2026-01-01', '', 0, '2026-01-01')"
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
				u := f.user(t, 10*gaas.Credit)
				x := f.allocation(t, gaas.CreateAllocationRequest{UserID: u.ID, Amount: 5 * gaas.Credit, ExpiresAt: timePtr(time.Now().Add(time.Hour))})
				rejected := f.reach(t, u, gaas.StatusRejected)
				pending := f.reach(t, u, gaas.StatusPending)
				require.Equal(t, []gaas.Draw{{AllocationID: x.ID, Amount: 2 * gaas.Credit}}, pending.Draws)
				report, err := db.Check(ctx)
				require.NoError(t, err)
				require.True(t, report.OK(), "%v", report.Violations)
				assert.Equal(t, 2, report.Users)
				assert.Equal(t, 2, report.Jobs)
				assert.Equal(t, 3, report.Allocations, "two default allocations and x")

				s := checkState{user: u.ID, account: u.AccountID, x: x.ID, rejected: rejected.ID, pending: pending.ID, balance: f.balance(t, u.ID)}
				for _, a := range f.allocations(t, u.ID) {
					switch {
					case a.Default:
						s.dflt, s.dfltRemaining = a.ID, a.Remaining
					case a.ID == x.ID:
						s.xRemaining = a.Remaining
					}
				}
				assertCheckFinds(t, db, dsn, tc.damage(s), tc.rule)
			})
		}
	})
}

// assertCheckFinds runs damage, SQL around the store, on the database of
// db at dsn, and asserts that Check then finds violations of rule, and of
// no other.
func assertCheckFinds(t *testing.T, db *store.DB, dsn, damage, rule string) {
	t.Helper()
	ctx := context.Background()
	_, err := rawOpen(t, dsn).ExecContext(ctx, damage)
	require.NoError(t, err, damage)
	report, err := db.Check(ctx)
	require.NoError(t, err)
	require.NotEmpty(t, report.Violations, "Check missed: %s", damage)
	for _, v := range report.Violations {
		assert.Equal(t, rule, v.Rule, "%s", v)
	}
}

// checkState names what TestCheckFindsViolations damages.
type checkState struct {
	user, account, dflt, x, rejected, pending int64
	balance, dfltRemaining, xRemaining        gaas.Credits
}

// ledgerInsert is an entry appended around the store, made by the user.
func ledgerInsert(s checkState, allocation int64, job, kind string, delta, remaining, balance gaas.Credits) string {
	return fmt.Sprintf("INSERT INTO ledger (account_id, allocation_id, job_id, actor_id, kind, delta, remaining, balance, reason, created_at)"+
		" VALUES (%d, %d, %s, %d, '%s', %d, %d, %d, 'around the store', '2026-01-01')",
		s.account, allocation, job, s.user, kind, delta, remaining, balance)
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

// TestCheckFindsProjectViolations: what a project and its members have
// spent is held to their jobs, a job to the project it drew from, and a
// charge's member to its job.
func TestCheckFindsProjectViolations(t *testing.T) {
	type state struct{ project, parent, member, other, job, account, allocation int64 }
	cases := []struct {
		rule   string
		damage func(s state) string
	}{
		{"project", func(s state) string {
			return fmt.Sprintf("UPDATE projects SET spent = spent + 1 WHERE id = %d", s.project)
		}},
		{"project", func(s state) string {
			return fmt.Sprintf("UPDATE projects SET spent = spent - 1 WHERE id = %d", s.parent)
		}},
		{"project", func(s state) string {
			return fmt.Sprintf("UPDATE project_members SET spent = spent + 1 WHERE project_id = %d AND user_id = %d", s.project, s.member)
		}},
		{"project", func(s state) string {
			// Its refund would go to no project's caps and member.
			return fmt.Sprintf("UPDATE jobs SET project_id = NULL WHERE id = %d", s.job)
		}},
		{"project", func(s state) string {
			return fmt.Sprintf("UPDATE jobs SET project_id = %d WHERE id = %d", s.parent, s.job)
		}},
		{"entry", func(s state) string {
			// A zero entry, so every sum stays right: only its member is wrong.
			return fmt.Sprintf("INSERT INTO ledger (account_id, allocation_id, job_id, member_id, actor_id, kind, delta, remaining, balance, reason, created_at)"+
				" SELECT account_id, allocation_id, job_id, %d, actor_id, 'refund', 0, remaining, balance, 'around the store', created_at"+
				" FROM ledger WHERE job_id = %d", s.other, s.job)
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
				l := newLab(t, f)
				j, err := f.submitTo("qlab", l.ann.ID, 2*gaas.Hour)
				require.NoError(t, err)
				assertInvariants(t, db)
				assertCheckFinds(t, db, dsn, tc.damage(state{project: l.lab.ID, parent: l.dept.ID, member: l.ann.ID, other: l.bob.ID,
					job: j.ID, account: l.lab.AccountID, allocation: j.Draws[0].AllocationID}), tc.rule)
			})
		}
	})
}
