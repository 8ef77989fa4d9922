package store_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/gaas"
	"github.com/gaas-io/gaas/store"
	"github.com/gaas-io/gaas/store/storetest"
)

// escapesLiteral is a login username that, formatted into SQL as a quoted
// literal on a server with standard_conforming_strings off, closes the
// literal with its backslash and returns the admin's row with mallory's
// password hash: whoever knows mallory's password logs in as the admin.
const escapesLiteral = `\') UNION SELECT a.id, a.username, m.password_hash, a.role, a.balance, a.created_at` +
	` FROM users a, users m WHERE a.role = $$admin$$ AND m.username = $$mallory$$ --`

// tricky holds what a backslash-escaping server would misread in a quoted
// literal: backslashes before quotes, doubled quotes, a comment.
const tricky = `echo \' '' \\' "\" \x41 ; -- \`

// TestNonStandardStrings runs the paths that take user-supplied text on a
// database whose sessions default to standard_conforming_strings off, the
// setting under which a backslash in a quoted literal escapes its closing
// quote. Every value must mean itself, byte for byte.
func TestNonStandardStrings(t *testing.T) {
	dsn := storetest.PostgresDatabase(t, "standard_conforming_strings = off")
	db := openStore(t, dsn, store.Options{})
	ctx := context.Background()

	root, err := db.Users.EnsureAdmin(ctx, "root", "root-hash")
	require.NoError(t, err)
	mallory, err := db.Users.CreateUser(ctx, "mallory", "mallory-hash", gaas.RoleUser)
	require.NoError(t, err)

	t.Run("login", func(t *testing.T) {
		u, hash, err := db.Users.Credentials(ctx, escapesLiteral)
		assert.ErrorIs(t, err, gaas.ErrNotFound, "found user %d (%s) with hash %q", u.ID, u.Username, hash)
		u, hash, err = db.Users.Credentials(ctx, "MALLORY")
		require.NoError(t, err)
		assert.Equal(t, mallory.ID, u.ID)
		assert.Equal(t, "mallory-hash", hash)
	})

	t.Run("ensure admin", func(t *testing.T) {
		_, err := db.Users.EnsureAdmin(ctx, escapesLiteral, "new-hash")
		assert.ErrorIs(t, err, gaas.ErrInvalid)
		_, hash, err := db.Users.Credentials(ctx, "root")
		require.NoError(t, err)
		assert.Equal(t, "root-hash", hash, "the admin's hash changed")
	})

	t.Run("submission", func(t *testing.T) {
		req := gaas.SubmitRequest{Command: tricky, GPUType: tricky, EstimatedHours: gaas.Hour, IdempotencyKey: tricky}
		j, err := db.Jobs.Submit(ctx, mallory.ID, req)
		require.NoError(t, err)
		again, err := db.Jobs.Submit(ctx, mallory.ID, req)
		require.NoError(t, err, "a retry with the same key")
		assert.Equal(t, j.ID, again.ID, "a retry with the same key is the same job")
		got, err := db.Jobs.Get(ctx, mallory.ID, j.ID)
		require.NoError(t, err)
		assert.Equal(t, tricky, got.Command)
		assert.Equal(t, tricky, got.GPUType)

		var command, key string
		require.NoError(t, rawOpen(t, dsn).QueryRow("SELECT command, idempotency_key FROM jobs WHERE id = $1", j.ID).Scan(&command, &key))
		assert.Equal(t, tricky, command, "the bytes stored")
		assert.Equal(t, tricky, key, "the bytes stored")
	})

	t.Run("reason", func(t *testing.T) {
		_, err := db.Quota.Grant(ctx, root.ID, mallory.ID, gaas.Hour, tricky)
		require.NoError(t, err)
		page, err := db.Quota.Ledger(ctx, root.ID, mallory.ID, gaas.Page{})
		require.NoError(t, err)
		last := page.Items[len(page.Items)-1]
		assert.Equal(t, tricky, last.Reason)
	})
}
