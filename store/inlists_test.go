package store

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// No statement of a submission or of a job's move builds a temporary table
// on SQLite: one built for an IN list in a CHECK or a partial index's
// condition cost every submission three (migration 0015). EXPLAIN lists
// the program SQLite runs for a statement, CHECKs, index conditions and
// all.
func TestHotStatementsBuildNoTemporaryTable(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, ":memory:", Options{})
	require.NoError(t, err)
	defer db.Close()

	statements := map[string]string{"transition": transitionSQL}
	for i, q := range hotSQL {
		statements["hot "+string(rune('0'+i))] = q
	}
	for name, q := range statements {
		rows, err := db.w.QueryContext(ctx, "EXPLAIN "+q, make([]any, strings.Count(q, "?"))...)
		require.NoError(t, err, name)
		var ops []string
		for rows.Next() {
			var (
				addr       int
				op         string
				p1, p2, p3 any
				p4, p5     any
				comment    any
			)
			require.NoError(t, rows.Scan(&addr, &op, &p1, &p2, &p3, &p4, &p5, &comment))
			ops = append(ops, op)
		}
		require.NoError(t, rows.Err())
		rows.Close()
		require.NotEmpty(t, ops, name)
		assert.NotContains(t, ops, "OpenEphemeral", "%s: %s", name, q)
	}

	// The conditions written as ORs refuse what the IN lists refused.
	for _, q := range []string{
		"INSERT INTO jobs (user_id, account_id, command, gpu_type, gpu_count, estimated, rate, cost, draws, status, created_at, updated_at)" +
			" VALUES (1, 1, 'x', 'y', 1, 1, 1000, 1, '', 'DONE', '2026-01-01', '2026-01-01')",
		"INSERT INTO ledger (account_id, allocation_id, actor_system, kind, delta, remaining, balance, reason, created_at)" +
			" VALUES (1, 1, 'test', 'gift', 1, 1, 1, 'x', '2026-01-01')",
	} {
		_, err := db.w.ExecContext(ctx, q)
		assert.ErrorContains(t, err, "CHECK constraint failed", q)
	}
}
