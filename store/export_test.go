package store

import "context"

// RawQueryRow runs a query on the store's pool, for tests that look at the
// connection itself.
func RawQueryRow(ctx context.Context, db *DB, query string, dest ...any) error {
	return db.r.QueryRowContext(ctx, query).Scan(dest...)
}
