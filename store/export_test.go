package store

import (
	"context"
	"testing"
	"time"
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
