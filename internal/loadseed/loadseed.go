// Package loadseed fills a store quickly with users and jobs for load and
// scale tests. It is not part of the library: gaas-load and the store's
// benchmarks use it. The SQL stays in package store, which registers it
// here when it is imported.
package loadseed

import (
	"context"
	"fmt"
)

// Hook is store's seeding, which package store sets; db is a *store.DB.
// Call Seed, not Hook.
var Hook func(ctx context.Context, db any, users, jobs int) error

// Seed fills db, a *store.DB, with users accounts "seed-N" (who cannot
// log in) with a large balance, and jobs spread over them and over every
// status, each with its charge, so that the ledger invariants hold. It
// writes in multi-row statements, a transaction per chunk of 2,000 rows.
func Seed(ctx context.Context, db any, users, jobs int) error {
	if Hook == nil {
		return fmt.Errorf("loadseed: package store is not linked in")
	}
	return Hook(ctx, db, users, jobs)
}
