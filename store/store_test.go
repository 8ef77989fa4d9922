package store_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun/driver/sqliteshim"

	"github.com/gaas-io/gaas/gaas"
	"github.com/gaas-io/gaas/store"
)

func TestOpenFile(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "dir with space", "gaas.db")
	_, err := store.Open(ctx, path, store.Options{})
	require.Error(t, err, "a missing directory is an error, not a silent in-memory store")

	path = filepath.Join(t.TempDir(), "gaas #1.db")
	db, err := store.Open(ctx, path, store.Options{DefaultQuota: 3 * gaas.Hour})
	require.NoError(t, err)
	u, err := db.Users.CreateUser(ctx, "alice", "h", gaas.RoleUser)
	require.NoError(t, err)
	assert.Equal(t, 3*gaas.Hour, u.Balance)
	key, err := db.SigningKey(ctx)
	require.NoError(t, err)
	assert.Len(t, key, 32)
	require.NoError(t, db.Close())

	// Reopening runs no migration twice, and keeps data and key.
	db, err = store.Open(ctx, path, store.Options{})
	require.NoError(t, err)
	defer db.Close()
	got, err := db.Users.UserByID(ctx, u.ID)
	require.NoError(t, err)
	assert.Equal(t, u, got)
	again, err := db.SigningKey(ctx)
	require.NoError(t, err)
	assert.Equal(t, key, again)

	// Another process's view of the file: WAL mode and the schema.
	raw, err := sql.Open(sqliteshim.ShimName, path)
	require.NoError(t, err)
	defer raw.Close()
	var mode string
	require.NoError(t, raw.QueryRow("PRAGMA journal_mode").Scan(&mode))
	assert.Equal(t, "wal", mode)
	var migrations int
	require.NoError(t, raw.QueryRow("SELECT count(*) FROM schema_migrations").Scan(&migrations))
	assert.Equal(t, 1, migrations)
}

// Two stores open on one file agree on the signing key, whoever asks first.
func TestSigningKeyShared(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "gaas.db")
	a, err := store.Open(ctx, path, store.Options{})
	require.NoError(t, err)
	defer a.Close()
	b, err := store.Open(ctx, path, store.Options{})
	require.NoError(t, err)
	defer b.Close()
	kb, err := b.SigningKey(ctx)
	require.NoError(t, err)
	ka, err := a.SigningKey(ctx)
	require.NoError(t, err)
	assert.Equal(t, ka, kb)
}

func TestMemoryStoresAreSeparate(t *testing.T) {
	ctx := context.Background()
	a, b := newTestStore(t), newTestStore(t)
	_, err := a.Users.CreateUser(ctx, "alice", "h", gaas.RoleUser)
	require.NoError(t, err)
	_, err = b.Users.CreateUser(ctx, "alice", "h", gaas.RoleUser)
	require.NoError(t, err)
}

// The database itself keeps the rules, whatever code writes to it.
func TestSchemaGuards(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "gaas.db")
	db := openStore(t, path, store.Options{})
	f := newFixture(t, db)
	u := f.user(t, gaas.Hour)
	f.submit(t, u.ID, gaas.Hour)

	raw, err := sql.Open(sqliteshim.ShimName, "file:"+path+"?_pragma=foreign_keys(1)&_pragma=busy_timeout(5000)")
	require.NoError(t, err)
	defer raw.Close()
	for _, q := range []string{
		"UPDATE ledger SET delta = delta + 1000",
		"DELETE FROM ledger",
		"UPDATE users SET balance = -1 WHERE id = " + itoa(u.ID),
		"INSERT INTO users (username, password_hash, role, balance, created_at) VALUES ('ALICE', 'h', 'user', 0, '2026-01-01'), ('alice', 'h', 'user', 0, '2026-01-01')",
		"INSERT INTO users (username, password_hash, role, balance, created_at) VALUES ('mallory', 'h', 'superuser', 0, '2026-01-01')",
		"INSERT INTO jobs (user_id, command, gpu_type, estimated, status, created_at, updated_at) VALUES (999, 'x', 'y', 1, 'PENDING', '2026-01-01', '2026-01-01')",
		"UPDATE jobs SET status = 'DONE'",
	} {
		_, err := raw.ExecContext(ctx, q)
		assert.Error(t, err, q)
	}
}

func itoa(i int64) string { return strconv.FormatInt(i, 10) }
