package store_test

import (
	"context"
	"reflect"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/gaas"
	"github.com/gaas-io/gaas/store"
	"github.com/gaas-io/gaas/store/storetest"
)

func TestSeedForLoad(t *testing.T) {
	ctx := context.Background()
	forEachStore(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		require.NoError(t, storetest.SeedForLoad(ctx, db, 50, 1234))
		report, err := db.Check(ctx)
		require.NoError(t, err)
		assert.Empty(t, report.Violations)
		assert.Equal(t, 51, report.Users)
		assert.Equal(t, 1234, report.Jobs)
		// The store goes on as usual after it.
		u := f.user(t, 5*gaas.Credit)
		j := f.submit(t, u.ID, gaas.Hour)
		assert.Equal(t, int64(1235), j.ID)
	})
}

// TestSeedIsNotAPI: the seeding of load tests is no method of the store's
// API; it lives with the test helpers, in storetest.
func TestSeedIsNotAPI(t *testing.T) {
	_, ok := reflect.TypeOf((*store.DB)(nil)).MethodByName("SeedForLoad")
	assert.False(t, ok, "store.DB has SeedForLoad")
}
