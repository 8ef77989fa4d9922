package store_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/gaas"
	"github.com/gaas-io/gaas/store"
)

// TestTally counts jobs by status, the hours reserved by jobs not final and
// accounts by kind, on each backend.
func TestTally(t *testing.T) {
	forEachStore(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		empty, err := db.Tally(ctx)
		require.NoError(t, err)
		assert.Empty(t, empty.Jobs)
		assert.Empty(t, empty.Accounts)

		f := newFixture(t, db)
		u := f.user(t, 10*gaas.Credit)
		f.user(t, 0)
		f.submit(t, u.ID, 2500)
		f.submit(t, u.ID, 1001)
		got, err := db.Tally(ctx)
		require.NoError(t, err)
		assert.Equal(t, map[gaas.JobStatus]int64{gaas.StatusPending: 2}, got.Jobs)
		assert.Equal(t, map[gaas.JobStatus]gaas.Credits{gaas.StatusPending: 3501}, got.Reserved)
		assert.Equal(t, map[gaas.AccountKind]int64{{Role: gaas.RoleAdmin}: 1, {Role: gaas.RoleUser}: 2}, got.Accounts)
	})
}
