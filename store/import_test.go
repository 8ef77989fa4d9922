package store_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun/driver/sqliteshim"

	"github.com/gaas-io/gaas/gaas"
	"github.com/gaas-io/gaas/store"
	"github.com/gaas-io/gaas/store/storetest"
)

var seedRename = map[string]string{"Alice": "alice2"}

func TestImportFastAPI(t *testing.T) {
	ctx := context.Background()
	forEachStore(t, func(t *testing.T, db *store.DB) {
		old := storetest.FastAPISample(t)
		users, jobs := storetest.FastAPISampleContents(t)

		_, err := db.ImportFastAPI(ctx, old, store.ImportOptions{})
		require.ErrorIs(t, err, store.ErrImport)
		assert.Contains(t, err.Error(), "users 2 (alice) and 4 (Alice) differ only in letter case")
		assert.Contains(t, err.Error(), "Alice=alice4")
		_, _, err = db.Users.Credentials(ctx, "root")
		require.ErrorIs(t, err, gaas.ErrNotFound, "a refused import writes nothing")

		rep, err := db.ImportFastAPI(ctx, old, store.ImportOptions{Rename: seedRename})
		require.NoError(t, err)
		assert.Equal(t, len(users), rep.Users)
		assert.Equal(t, len(jobs), rep.Jobs)
		assert.Equal(t, 7, rep.Charged)
		anomalies := strings.Join(rep.Anomalies, "\n")
		for _, want := range []string{
			"user 4: renamed from Alice to alice2",
			`user 5 (mallory): role "superuser" is not a role here; imported as user`,
			"user 6 (nan): balance NULL is not a number; imported as 0",
			"user 2 (alice): balance 6.200000000000001 rounded to 6.2",
			"job 7: estimated hours -3 are not positive; imported with 0 hours, nothing charged",
			"job 9: estimated hours NULL are not a number; imported with 0 hours, nothing charged",
		} {
			assert.Contains(t, anomalies, want)
		}

		root, _, err := db.Users.Credentials(ctx, "root")
		require.NoError(t, err)
		require.Equal(t, gaas.RoleAdmin, root.Role)
		for _, su := range users {
			u, err := db.Users.User(ctx, root.ID, su.ID)
			require.NoError(t, err, su.Username)
			want := gaas.Hours(0)
			if su.Quota != nil {
				want, _ = store.HoursFromFloat(*su.Quota)
			}
			assert.Equal(t, want, u.Balance, "balance of %s", su.Username)
			assert.Equal(t, su.Role == "admin", u.IsAdmin(), "only the exact role admin is an admin: %s", su.Username)
			if su.Username == "Alice" {
				assert.Equal(t, "alice2", u.Username)
			}
		}
		for _, sj := range jobs {
			j, err := db.Jobs.Get(ctx, root.ID, sj.ID)
			require.NoError(t, err)
			assert.Equal(t, sj.UserID, j.UserID)
			assert.Equal(t, gaas.JobStatus(sj.Status), j.Status)
		}

		// Rejecting an imported PENDING job refunds it exactly as a new one.
		alice, _, err := db.Users.Credentials(ctx, "alice")
		require.NoError(t, err)
		_, err = db.Jobs.Transition(ctx, root.ID, 4, gaas.StatusRejected, nil)
		require.NoError(t, err)
		after, err := db.Quota.Balance(ctx, root.ID, alice.ID)
		require.NoError(t, err)
		assert.Equal(t, alice.Balance+2500, after)
		// Rejecting the job whose hours were negative refunds nothing.
		bob, _, err := db.Users.Credentials(ctx, "bob")
		require.NoError(t, err)
		_, err = db.Jobs.Transition(ctx, root.ID, 7, gaas.StatusRejected, nil)
		require.NoError(t, err)
		after, err = db.Quota.Balance(ctx, root.ID, bob.ID)
		require.NoError(t, err)
		assert.Equal(t, bob.Balance, after)

		// New rows get new ids, after the imported ones.
		u, err := db.Users.CreateUser(ctx, "newcomer", "h", gaas.RoleUser)
		require.NoError(t, err)
		assert.Equal(t, int64(len(users)+1), u.ID)
		j, err := db.Jobs.Submit(ctx, u.ID, gaas.SubmitRequest{Command: "x", GPUType: "A100", EstimatedHours: 1})
		require.NoError(t, err)
		assert.Equal(t, int64(len(jobs)+1), j.ID)

		// A second run doubles nothing, merge or not.
		_, err = db.ImportFastAPI(ctx, old, store.ImportOptions{Rename: seedRename})
		require.ErrorIs(t, err, store.ErrImport)
		_, err = db.ImportFastAPI(ctx, old, store.ImportOptions{Rename: seedRename, Merge: true})
		require.ErrorIs(t, err, store.ErrImport)
		assert.Contains(t, err.Error(), "id 1 (root here, root imported)")
		page, err := db.Jobs.List(ctx, root.ID, gaas.JobFilter{Page: gaas.Page{Limit: 500}})
		require.NoError(t, err)
		assert.Len(t, page.Items, len(jobs)+1)
	})
}

// oldDB writes a database in the FastAPI service's schema.
func oldDB(t *testing.T, statements ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "old.db")
	raw, err := sql.Open(sqliteshim.ShimName, path)
	require.NoError(t, err)
	defer raw.Close()
	for _, s := range append([]string{
		`CREATE TABLE users (id INTEGER NOT NULL, username VARCHAR, password_hash VARCHAR, role VARCHAR, gpu_hours_quota FLOAT, PRIMARY KEY (id), UNIQUE (username))`,
		`CREATE TABLE jobs (id INTEGER NOT NULL, command VARCHAR, gpu_type VARCHAR, estimated_hours FLOAT, status VARCHAR(9), user_id INTEGER, PRIMARY KEY (id), FOREIGN KEY(user_id) REFERENCES users (id))`,
	}, statements...) {
		_, err := raw.Exec(s)
		require.NoError(t, err, s)
	}
	return path
}

func TestImportMergeAndDirtyData(t *testing.T) {
	ctx := context.Background()
	forEachStore(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db) // the target already holds an admin, id 1

		_, err := db.ImportFastAPI(ctx, oldDB(t, `INSERT INTO users VALUES (100, 'zed', '$pbkdf2-sha256$1$AA$AA', 'user', 1.0)`), store.ImportOptions{})
		require.ErrorIs(t, err, store.ErrImport)
		assert.Contains(t, err.Error(), "use merge")

		for name, stmts := range map[string][]string{
			"unknown status": {`INSERT INTO users VALUES (100, 'zed', 'h', 'user', 1.0)`, `INSERT INTO jobs VALUES (1, 'x', 'A', 1.0, 'DONE', 100)`},
			"orphan job":     {`INSERT INTO users VALUES (100, 'zed', 'h', 'user', 1.0)`, `INSERT INTO jobs VALUES (1, 'x', 'A', 1.0, 'PENDING', 7)`},
			"bad username":   {`INSERT INTO users VALUES (100, 'zed zed', 'h', 'user', 1.0)`},
			"name clash":     {`INSERT INTO users VALUES (100, 'ROOT', 'h', 'user', 1.0)`},
			"id clash":       {`INSERT INTO users VALUES (1, 'zed', 'h', 'user', 1.0)`},
			"huge balance":   {`INSERT INTO users VALUES (100, 'zed', 'h', 'user', 1e300)`},
			"NUL in a command": {`INSERT INTO users VALUES (100, 'zed', 'h', 'user', 1.0)`,
				`INSERT INTO jobs VALUES (1, 'py' || char(0) || 'thon', 'A', 1.0, 'PENDING', 100)`},
			"escape in a gpu_type": {`INSERT INTO users VALUES (100, 'zed', 'h', 'user', 1.0)`,
				`INSERT INTO jobs VALUES (1, 'x', 'A' || char(27) || '[2J', 1.0, 'PENDING', 100)`},
		} {
			t.Run(name, func(t *testing.T) {
				_, err := db.ImportFastAPI(ctx, oldDB(t, stmts...), store.ImportOptions{Merge: true})
				require.ErrorIs(t, err, store.ErrImport)
				switch name {
				case "NUL in a command":
					assert.Contains(t, err.Error(), "job 1: invalid input: command: holds the control character U+0000 at byte 2")
				case "escape in a gpu_type":
					assert.Contains(t, err.Error(), "job 1: invalid input: gpu_type: holds the control character U+001B at byte 1")
				}
				_, _, err = db.Users.Credentials(ctx, "zed")
				require.ErrorIs(t, err, gaas.ErrNotFound, "nothing was written")
			})
		}
		_, err = db.ImportFastAPI(ctx, oldDB(t), store.ImportOptions{Merge: true, Rename: map[string]string{"ghost": "spirit"}})
		require.ErrorIs(t, err, store.ErrImport)

		rep, err := db.ImportFastAPI(ctx, oldDB(t,
			`INSERT INTO users VALUES (100, 'zed', '$pbkdf2-sha256$1$AA$AA', NULL, -2.0)`,
			`INSERT INTO users VALUES (101, 'yan', 'plain-text', 'admin', 0.30000000000000004)`,
			`INSERT INTO jobs VALUES (50, NULL, NULL, 0.0001, 'PENDING', 100)`,
			`INSERT INTO jobs VALUES (51, 'y', 'H100', 0.1, 'RUNNING', 101)`,
		), store.ImportOptions{Merge: true})
		require.NoError(t, err)
		assert.Equal(t, 2, rep.Users)
		anomalies := strings.Join(rep.Anomalies, "\n")
		for _, want := range []string{
			`user 100 (zed): role "NULL" is not a role here; imported as user`,
			"user 100 (zed): balance -2 is negative; imported as 0",
			"user 101 (yan): the password hash is not pbkdf2_sha256",
			"job 50: command or gpu_type is NULL",
			"job 50: estimated hours 0.0001 are not positive; imported with 0 hours",
		} {
			assert.Contains(t, anomalies, want)
		}
		yan, err := db.Users.User(ctx, f.admin.ID, 101)
		require.NoError(t, err)
		assert.Equal(t, gaas.Hours(300), yan.Balance)
		assert.True(t, yan.IsAdmin())
	})
}

func TestHoursFromFloat(t *testing.T) {
	for f, want := range map[float64]gaas.Hours{
		6.200000000000001: 6200, 0.1: 100, 0.30000000000000004: 300, 2.5: 2500, 0.0004: 0, 0.0005: 1, -3: -3000, 1e9: gaas.MaxHours,
	} {
		got, ok := store.HoursFromFloat(f)
		assert.True(t, ok, "%v", f)
		assert.Equal(t, want, got, "%v", f)
	}
	for _, f := range []float64{1e300, -1e10} {
		_, ok := store.HoursFromFloat(f)
		assert.False(t, ok, "%v", f)
	}
}
