package store

import (
	"context"
	"testing"
	"time"

	"github.com/gaas-io/gaas/gaas"
)

// RawQueryRow runs a query on the store's pool, for tests that look at the
// connection itself.
func RawQueryRow(ctx context.Context, db *DB, query string, dest ...any) error {
	return db.r.QueryRowContext(ctx, query).Scan(dest...)
}

// SetCheckpoints makes the stores opened until t ends copy their log back
// every so often and start it again past pages, with the writer's own
// checkpoint at backstop pages (0: none).
func SetCheckpoints(t testing.TB, every time.Duration, pages, backstop int) {
	oldEvery, oldPages, oldBackstop := checkpointEvery, checkpointPages, backstopPages
	checkpointEvery, checkpointPages, backstopPages = every, pages, backstop
	t.Cleanup(func() { checkpointEvery, checkpointPages, backstopPages = oldEvery, oldPages, oldBackstop })
}

// AwaitsRolloverSQL is awaitsRolloverSQL, for tests of what it picks.
const AwaitsRolloverSQL = awaitsRolloverSQL

// Events reads every event of the outbox, oldest first, for tests that
// look at what a change wrote.
func Events(ctx context.Context, db *DB) ([]gaas.Event, error) {
	var rows []eventRow
	if err := query(ctx, db.r, &rows, "SELECT "+eventColumns+" FROM events e ORDER BY e.id"); err != nil {
		return nil, err
	}
	out := make([]gaas.Event, len(rows))
	for i := range rows {
		out[i] = rows[i].event()
	}
	return out, nil
}

// ReadUsageFromLedger makes db read usage reports from the ledger and the
// jobs alone, or again by the rollup, for benchmarks that compare.
func ReadUsageFromLedger(db *DB, ledgerOnly bool) { db.Reports.ledgerOnly = ledgerOnly }
