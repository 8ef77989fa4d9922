package store_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/authn"
	"github.com/gaas-io/gaas/gaas"
	"github.com/gaas-io/gaas/store"
)

// Executor accounts: a token verifies as its executor's name until it is
// revoked, names are unique in any letter case, only admins and the
// system manage them, and only the token's hash is kept.
func TestExecutorAccounts(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		clk := newClock(t0)
		dsn := b.dsn(t)
		db := openStore(t, dsn, store.Options{Now: clk.Now})
		f := newFixture(t, db)
		alice := f.user(t, 0)

		x, token, err := db.Executors.CreateExecutor(ctx, f.admin.ID, "node1")
		require.NoError(t, err)
		assert.Equal(t, "node1", x.Name)
		assert.Equal(t, t0, x.CreatedAt)
		assert.Nil(t, x.RevokedAt)
		assert.True(t, strings.HasPrefix(token, authn.ExecutorTokenPrefix), token)
		assert.True(t, authn.IsExecutorToken(token))

		name, err := db.Executors.AuthenticateExecutor(ctx, token)
		require.NoError(t, err)
		assert.Equal(t, "node1", name)

		// Names are unique without regard to case; bad names are refused.
		_, _, err = db.Executors.CreateExecutor(ctx, f.admin.ID, "NODE1")
		assert.ErrorIs(t, err, gaas.ErrConflict)
		for _, bad := range []string{"", "-node", "node 1", "nöde", "a/b", strings.Repeat("n", gaas.MaxExecutorName+1)} {
			_, _, err = db.Executors.CreateExecutor(ctx, f.admin.ID, bad)
			assert.ErrorIs(t, err, gaas.ErrInvalid, "%q", bad)
		}
		// Only admins and the system manage executors.
		_, _, err = db.Executors.CreateExecutor(ctx, alice.ID, "node2")
		assert.ErrorIs(t, err, gaas.ErrForbidden)
		_, err = db.Executors.Executors(ctx, alice.ID)
		assert.ErrorIs(t, err, gaas.ErrForbidden)
		_, err = db.Executors.RevokeExecutor(ctx, alice.ID, "node1")
		assert.ErrorIs(t, err, gaas.ErrForbidden)
		_, err = db.Executors.Executors(ctx, 0)
		assert.ErrorIs(t, err, gaas.ErrUnauthorized)
		cli := db.As(gaas.System("cli:test"))
		y, token2, err := cli.CreateExecutor(ctx, "gpu-host.b_2")
		require.NoError(t, err)
		assert.NotEqual(t, token, token2)

		// Tokens that were never issued, or are not tokens, do not verify.
		forged, _ := authn.NewExecutorToken()
		for _, bad := range []string{"", forged, token + "x", token[:len(token)-1], "Bearer " + token, strings.ToUpper(token)} {
			_, err := db.Executors.AuthenticateExecutor(ctx, bad)
			assert.ErrorIs(t, err, gaas.ErrUnauthorized, "%q", bad)
		}

		// Verification records when the executor was last seen.
		clk.Add(2 * time.Minute)
		_, err = db.Executors.AuthenticateExecutor(ctx, token2)
		require.NoError(t, err)
		list, err := db.Executors.Executors(ctx, f.admin.ID)
		require.NoError(t, err)
		require.Len(t, list, 2)
		assert.Equal(t, y.Name, list[0].Name, "sorted by name")
		require.NotNil(t, list[0].LastSeenAt)
		assert.Equal(t, t0.Add(2*time.Minute), *list[0].LastSeenAt)
		assert.Equal(t, t0, *list[1].LastSeenAt)

		// A revoked token never verifies again, and its name stays taken.
		r, err := db.Executors.RevokeExecutor(ctx, f.admin.ID, "Node1")
		require.NoError(t, err)
		require.NotNil(t, r.RevokedAt)
		assert.Equal(t, t0.Add(2*time.Minute), *r.RevokedAt)
		_, err = db.Executors.AuthenticateExecutor(ctx, token)
		assert.ErrorIs(t, err, gaas.ErrUnauthorized)
		clk.Add(time.Minute)
		again, err := cli.RevokeExecutor(ctx, "node1")
		require.NoError(t, err)
		assert.Equal(t, *r.RevokedAt, *again.RevokedAt, "revoking twice changes nothing")
		_, _, err = db.Executors.CreateExecutor(ctx, f.admin.ID, "node1")
		assert.ErrorIs(t, err, gaas.ErrConflict)
		_, err = db.Executors.RevokeExecutor(ctx, f.admin.ID, "nosuch")
		assert.ErrorIs(t, err, gaas.ErrNotFound)
		name, err = db.Executors.AuthenticateExecutor(ctx, token2)
		require.NoError(t, err)
		assert.Equal(t, "gpu-host.b_2", name, "the other executor is untouched")

		// Only the hash is stored.
		if b.shared {
			var hashes []string
			rows, err := rawOpen(t, dsn).Query("SELECT token_hash FROM executors ORDER BY id")
			require.NoError(t, err)
			for rows.Next() {
				var h string
				require.NoError(t, rows.Scan(&h))
				hashes = append(hashes, h)
			}
			require.NoError(t, rows.Err())
			assert.Equal(t, []string{authn.HashExecutorToken(token), authn.HashExecutorToken(token2)}, hashes)
		}
	})
}
