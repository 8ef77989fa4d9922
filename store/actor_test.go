package store_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/dialect/sqlitedialect"
	"github.com/uptrace/bun/migrate"

	"github.com/gaas-io/gaas/gaas"
	"github.com/gaas-io/gaas/store"
)

// Every entry the import writes is made by the system, as "import", not by
// the user whose balance it changes; a move made afterwards is the admin's.
func TestImportActsAsTheSystem(t *testing.T) {
	ctx := context.Background()
	forEachStore(t, func(t *testing.T, db *store.DB) {
		_, err := db.ImportFastAPI(ctx, oldDB(t,
			`INSERT INTO users VALUES (1, 'root', 'h', 'admin', 0.0)`,
			`INSERT INTO users VALUES (10, 'ann', 'h', 'user', 4.0)`,
			`INSERT INTO jobs VALUES (1, 'x', 'A', 1.0, 'PENDING', 10)`,
			`INSERT INTO jobs VALUES (2, 'x', 'A', 2.5, 'REJECTED', 10)`,
		), store.ImportOptions{})
		require.NoError(t, err)
		_, err = db.Jobs.Transition(ctx, 1, gaas.TransitionRequest{JobID: 1, To: gaas.StatusRejected})
		require.NoError(t, err)
		requireChecked(t, db)

		page, err := db.Quota.Ledger(ctx, 1, gaas.LedgerRequest{UserID: 10})
		require.NoError(t, err)
		require.Len(t, page.Items, 5) // opening set, 2 charges, 1 imported refund, 1 refund by root
		for _, e := range page.Items[:4] {
			assert.Zero(t, e.ActorID, "%+v", e)
			assert.Equal(t, gaas.SystemImport, e.ActorSystem, "%+v", e)
		}
		last := page.Items[4]
		assert.Equal(t, gaas.LedgerRefund, last.Kind)
		assert.Equal(t, int64(1), last.ActorID)
		assert.Empty(t, last.ActorSystem)
	})
}

// Migration 0004 keeps every entry of a database made before it, with its
// actor, and the rebuilt ledger is still append-only and names exactly one
// actor per entry.
func TestMigrationLedgerActorSystem(t *testing.T) {
	ctx := context.Background()
	forEachBackend(t, func(t *testing.T, b backend) {
		if !b.shared {
			t.Skip("needs a second connection to the same database")
		}
		dsn, bdb := databaseAt(t, b, "0003")
		raw := bdb.DB
		for _, q := range []string{
			`INSERT INTO users (username, password_hash, role, balance, created_at) VALUES ('root', 'h', 'admin', 0, '2026-01-01')`,
			`INSERT INTO users (username, password_hash, role, balance, created_at) VALUES ('ann', 'h', 'user', 4000, '2026-01-01')`,
			`INSERT INTO ledger (user_id, job_id, actor_id, kind, delta, balance, reason, created_at) VALUES (2, NULL, 2, 'grant', 10000, 10000, 'default quota', '2026-01-01')`,
			`INSERT INTO ledger (user_id, job_id, actor_id, kind, delta, balance, reason, created_at) VALUES (2, NULL, 1, 'set', -6000, 4000, 'cut', '2026-01-01')`,
		} {
			_, err := raw.ExecContext(ctx, q)
			require.NoError(t, err, q)
		}

		var ids []int64
		require.NoError(t, bdb.NewRaw("SELECT id FROM users ORDER BY id").Scan(ctx, &ids))
		require.Equal(t, []int64{1, 2}, ids, "a fresh database numbers from 1")

		db, err := store.Open(ctx, dsn, store.Options{})
		require.NoError(t, err)
		defer db.Close()
		requireChecked(t, db)
		page, err := db.Quota.Ledger(ctx, 1, gaas.LedgerRequest{UserID: 2})
		require.NoError(t, err)
		require.Len(t, page.Items, 2)
		assert.Equal(t, []int64{2, 1}, []int64{page.Items[0].ActorID, page.Items[1].ActorID})
		assert.Equal(t, gaas.Credits(-6000), page.Items[1].Delta)

		// New entries go on after the old ones, by the system too.
		u, err := db.Accounts.CreateUser(ctx, "newcomer", "h", gaas.RoleUser)
		require.NoError(t, err)
		page, err = db.Quota.Ledger(ctx, u.ID, gaas.LedgerRequest{UserID: u.ID})
		require.NoError(t, err)
		require.Len(t, page.Items, 1)
		assert.Equal(t, gaas.SystemRegistration, page.Items[0].ActorSystem)

		// Ann's account and default allocation, as migration 0005 made them.
		ledgerOf2 := "INSERT INTO ledger (account_id, allocation_id, job_id, actor_id, actor_system, kind, delta, remaining, balance, reason, created_at)" +
			" VALUES ((SELECT id FROM accounts WHERE user_id = 2), (SELECT al.id FROM allocations al JOIN accounts a ON a.id = al.account_id WHERE a.user_id = 2), NULL, "
		for _, q := range []string{
			"UPDATE ledger SET delta = 0",
			"DELETE FROM ledger",
			ledgerOf2 + `1, 'import', 'grant', 0, 4000, 4000, 'two actors', '2026-01-01')`,
			ledgerOf2 + `NULL, NULL, 'grant', 0, 4000, 4000, 'no actor', '2026-01-01')`,
			ledgerOf2 + `NULL, '', 'grant', 0, 4000, 4000, 'no name', '2026-01-01')`,
		} {
			_, err := raw.ExecContext(ctx, q)
			assert.Error(t, err, "the database refuses: %s", q)
		}
		requireChecked(t, db)
	})
}

// databaseAt makes a fresh database of backend b that the store's
// migrations have brought up to the one numbered last, as an older gaas
// left it, and returns its DSN and a handle on it that goes around the
// store.
func databaseAt(t *testing.T, b backend, last string) (string, *bun.DB) {
	t.Helper()
	dsn := b.dsn(t)
	raw := rawOpen(t, dsn)
	dir := "migrations/sqlite"
	var bdb *bun.DB
	if store.IsPostgres(dsn) {
		dir = "migrations/postgres"
		bdb = bun.NewDB(raw, pgdialect.New())
	} else {
		bdb = bun.NewDB(raw, sqlitedialect.New())
	}
	migrateUpTo(t, bdb, dir, last)
	return dsn, bdb
}

// migrateUpTo applies the store's migrations in dir up to and including
// the one numbered last, as an older gaas would have.
func migrateUpTo(t *testing.T, db *bun.DB, dir, last string) {
	t.Helper()
	ctx := context.Background()
	tmp := t.TempDir()
	files, err := filepath.Glob(filepath.Join(dir, "*.up.sql"))
	require.NoError(t, err)
	for _, f := range files {
		if strings.Split(filepath.Base(f), "_")[0] > last {
			continue
		}
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(tmp, filepath.Base(f)), b, 0o600))
	}
	ms := migrate.NewMigrations()
	require.NoError(t, ms.Discover(os.DirFS(tmp)))
	m := migrate.NewMigrator(db, ms,
		migrate.WithTableName("schema_migrations"),
		migrate.WithLocksTableName("schema_migration_locks"),
		migrate.WithMarkAppliedOnSuccess(true))
	require.NoError(t, m.Init(ctx))
	_, err = m.Migrate(ctx)
	require.NoError(t, err)
}

// Check's entry rule knows the actor: an entry that names no actor, or
// both a user and the system, is reported even where the database's own
// constraint was bypassed (SQLite's ignore_check_constraints).
func TestCheckFindsEntriesWithoutOneActor(t *testing.T) {
	ctx := context.Background()
	dsn := filepath.Join(t.TempDir(), "gaas.db")
	db, err := store.Open(ctx, dsn, store.Options{})
	require.NoError(t, err)
	defer db.Close()
	f := newFixture(t, db)
	u := f.user(t, 10*gaas.Credit)
	bal := f.balance(t, u.ID)
	dflt := f.allocations(t, u.ID)[0].ID // the default allocation, which holds it all
	requireChecked(t, db)

	conn, err := rawOpen(t, dsn).Conn(ctx)
	require.NoError(t, err)
	defer conn.Close()
	_, err = conn.ExecContext(ctx, "PRAGMA ignore_check_constraints = ON")
	require.NoError(t, err)
	for _, actors := range []string{"NULL, NULL", "1, 'import'", "NULL, ''"} {
		_, err = conn.ExecContext(ctx, "INSERT INTO ledger (account_id, allocation_id, job_id, actor_id, actor_system, kind, delta, remaining, balance, reason, created_at)"+
			" VALUES (?, ?, NULL, "+actors+", 'grant', 0, ?, ?, 'around the store', '2026-01-01')", u.AccountID, dflt, int64(bal), int64(bal))
		require.NoError(t, err)
	}
	report, err := db.Check(ctx)
	require.NoError(t, err)
	var details []string
	for _, v := range report.Violations {
		assert.Equal(t, "entry", v.Rule, "%s", v)
		details = append(details, v.Detail)
	}
	assert.Equal(t, []string{"names no actor", "names a user and the system as actor", "names the system without a name"}, details)
}
