package store_test

import (
	"context"
	"database/sql"
	"fmt"
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
		_, _, err = db.Accounts.Credentials(ctx, "root")
		require.ErrorIs(t, err, gaas.ErrNotFound, "a refused import writes nothing")

		rep, err := db.ImportFastAPI(ctx, old, store.ImportOptions{Rename: seedRename})
		require.NoError(t, err)
		requireChecked(t, db)
		assert.Equal(t, len(users), rep.Users)
		assert.Equal(t, len(jobs), rep.Jobs)
		assert.Equal(t, 7, rep.Charged)
		assertAnomalies(t, rep,
			"user 4: renamed from Alice to alice2",
			`user 5 (mallory): role "superuser" is not a role here; imported as user`,
			"user 6 (nan): balance NULL is not a number; imported as 0",
			"user 2 (alice): balance 6.200000000000001 rounded to 6.2",
			"job 7: estimated hours -3 are not positive; imported with 0 hours, nothing charged",
			"job 9: estimated hours NULL are not a number; imported with 0 hours, nothing charged",
		)

		root, _, err := db.Accounts.Credentials(ctx, "root")
		require.NoError(t, err)
		require.Equal(t, gaas.RoleAdmin, root.Role)
		for _, su := range users {
			u, err := db.Users.User(ctx, root.ID, gaas.GetUserRequest{UserID: su.ID})
			require.NoError(t, err, su.Username)
			var want gaas.Credits
			if su.Quota != nil {
				h, _ := store.HoursFromFloat(*su.Quota)
				want = gaas.CreditsOf(h)
			}
			assert.Equal(t, want, u.Balance, "balance of %s", su.Username)
			assert.Equal(t, su.Role == "admin", u.IsAdmin(), "only the exact role admin is an admin: %s", su.Username)
			if su.Username == "Alice" {
				assert.Equal(t, "alice2", u.Username)
			}
		}
		for _, sj := range jobs {
			j, err := db.Jobs.Get(ctx, root.ID, gaas.GetJobRequest{JobID: sj.ID})
			require.NoError(t, err)
			assert.Equal(t, sj.UserID, j.UserID)
			assert.Equal(t, gaas.JobStatus(sj.Status), j.Status)
		}

		// Rejecting an imported PENDING job refunds it exactly as a new one.
		alice, _, err := db.Accounts.Credentials(ctx, "alice")
		require.NoError(t, err)
		_, err = db.Jobs.Transition(ctx, root.ID, gaas.TransitionRequest{JobID: 4, To: gaas.StatusRejected})
		require.NoError(t, err)
		after, err := db.Quota.Balance(ctx, root.ID, gaas.BalanceRequest{UserID: alice.ID})
		require.NoError(t, err)
		assert.Equal(t, alice.Balance+2500, after)
		// Rejecting the job whose hours were negative refunds nothing.
		bob, _, err := db.Accounts.Credentials(ctx, "bob")
		require.NoError(t, err)
		_, err = db.Jobs.Transition(ctx, root.ID, gaas.TransitionRequest{JobID: 7, To: gaas.StatusRejected})
		require.NoError(t, err)
		after, err = db.Quota.Balance(ctx, root.ID, gaas.BalanceRequest{UserID: bob.ID})
		require.NoError(t, err)
		assert.Equal(t, bob.Balance, after)

		// New rows get new ids, after the imported ones.
		u, err := db.Accounts.CreateUser(ctx, "newcomer", "h", gaas.RoleUser)
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

// assertAnomalies asserts that the report holds each of the anomalies.
func assertAnomalies(t *testing.T, rep store.ImportReport, want ...string) {
	t.Helper()
	anomalies := strings.Join(rep.Anomalies, "\n")
	for _, w := range want {
		assert.Contains(t, anomalies, w)
	}
}

// requireChecked fails the test unless store.Check finds every invariant
// holding.
func requireChecked(t *testing.T, db *store.DB) {
	t.Helper()
	report, err := db.Check(context.Background())
	require.NoError(t, err)
	require.Empty(t, report.Violations)
}

func TestImportMergeAndDirtyData(t *testing.T) {
	ctx := context.Background()
	forEachStore(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db) // the target already holds an admin, id 1

		f.submit(t, f.admin.ID, 1000) // and job 1

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
			"NUL in a password hash": {`INSERT INTO users VALUES (100, 'zed', 'h' || char(0), 'user', 1.0)`},
			"NUL in a username":      {`INSERT INTO users VALUES (100, 'z' || char(0) || 'd', 'h', 'user', 1.0)`},
			"NUL in a status": {`INSERT INTO users VALUES (100, 'zed', 'h', 'user', 1.0)`,
				`INSERT INTO jobs VALUES (2, 'x', 'A', 1.0, 'PEND' || char(0), 100)`},
			"invalid UTF-8 in a username": {`INSERT INTO users VALUES (100, CAST(x'7a6564ff' AS TEXT), 'h', 'user', 1.0)`},
			"user id 0":                   {`INSERT INTO users VALUES (0, 'zed', 'h', 'user', 1.0)`},
			"negative job id": {`INSERT INTO users VALUES (100, 'zed', 'h', 'user', 1.0)`,
				`INSERT INTO jobs VALUES (-3, 'x', 'A', 1.0, 'PENDING', 100)`},
			"job id clash": {`INSERT INTO users VALUES (100, 'zed', 'h', 'user', 1.0)`,
				`INSERT INTO jobs VALUES (1, 'x', 'A', 1.0, 'PENDING', 100)`},
		} {
			t.Run(name, func(t *testing.T) {
				_, err := db.ImportFastAPI(ctx, oldDB(t, stmts...), store.ImportOptions{Merge: true})
				require.ErrorIs(t, err, store.ErrImport)
				want := map[string]string{
					"NUL in a command":            "job 1: gaas: invalid input: command: holds the control character U+0000 at byte 2",
					"escape in a gpu_type":        "job 1: gaas: invalid input: gpu_type: holds the control character U+001B at byte 1",
					"NUL in a password hash":      "user 100 (zed): gaas: invalid input: password_hash: holds the control character U+0000 at byte 1",
					"NUL in a username":           `user 100: username "z\x00d" is not valid here`,
					"NUL in a status":             `job 2: status "PEND\x00" is not a status here`,
					"invalid UTF-8 in a username": "user 100: username \"zed\uFFFD\" is not valid here",
					"user id 0":                   "user 0: ids must be 1 or more",
					"negative job id":             "job -3: ids must be 1 or more",
					"job id clash":                "already in the target: job ids 1",
				}[name]
				if want != "" {
					assert.Contains(t, err.Error(), want)
				}
				_, _, err = db.Accounts.Credentials(ctx, "zed")
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
		requireChecked(t, db)
		assert.Equal(t, 2, rep.Users)
		assertAnomalies(t, rep,
			`user 100 (zed): role "NULL" is not a role here; imported as user`,
			"user 100 (zed): balance -2 is negative; imported as 0",
			"user 101 (yan): the password hash is not pbkdf2_sha256",
			"job 50: command or gpu_type is NULL",
			"job 50: estimated hours 0.0001 are not positive; imported with 0 hours",
		)
		yan, err := db.Users.User(ctx, f.admin.ID, gaas.GetUserRequest{UserID: 101})
		require.NoError(t, err)
		assert.Equal(t, gaas.Credits(300), yan.Balance)
		assert.True(t, yan.IsAdmin())
	})
}

// REJECTED and CANCELLED jobs of the old service import with their charge
// and its refund, so that Check passes, and every balance stays the old one.
func TestImportRefundsRejectedAndCancelled(t *testing.T) {
	ctx := context.Background()
	forEachStore(t, func(t *testing.T, db *store.DB) {
		rep, err := db.ImportFastAPI(ctx, oldDB(t,
			`INSERT INTO users VALUES (1, 'root', 'h', 'admin', 0.0)`,
			`INSERT INTO users VALUES (10, 'ann', 'h', 'user', 4.0)`,
			`INSERT INTO users VALUES (11, 'bob', 'h', 'user', 0.0)`,
			`INSERT INTO jobs VALUES (1, 'x', 'A', 1.0, 'PENDING', 10)`,
			`INSERT INTO jobs VALUES (2, 'x', 'A', 2.5, 'REJECTED', 10)`,
			`INSERT INTO jobs VALUES (3, 'x', 'A', 0.5, 'CANCELLED', 10)`,
			`INSERT INTO jobs VALUES (4, 'x', 'A', 3.0, 'COMPLETED', 10)`,
			`INSERT INTO jobs VALUES (5, 'x', 'A', 1.0, 'FAILED', 10)`,
			`INSERT INTO jobs VALUES (6, 'x', 'A', NULL, 'REJECTED', 10)`,
			// bob's balance of 0 cannot have paid for job 7 before its refund.
			`INSERT INTO jobs VALUES (7, 'x', 'A', 2.0, 'CANCELLED', 11)`,
		), store.ImportOptions{})
		require.NoError(t, err)
		requireChecked(t, db)
		assert.Equal(t, 6, rep.Charged)
		assert.Equal(t, 3, rep.Refunded)
		assertAnomalies(t, rep,
			"job 2: REJECTED with no refund on record; its 2.5 hours are charged and refunded, and the balance stays the old one",
			"job 3: CANCELLED with no refund on record; its 0.5 hours are charged and refunded",
			"job 7: CANCELLED with no refund on record; its 2 hours are charged and refunded",
			"user 11 (bob): a balance of 0 cannot have paid for the charges before their refunds; the ledger opens 2 hours higher and a closing set entry takes them back",
		)
		assert.NotContains(t, strings.Join(rep.Anomalies, "\n"), "job 6: REJECTED", "a job charged nothing has nothing to refund")

		type entry struct {
			Kind    gaas.LedgerKind
			Delta   gaas.Credits
			Balance gaas.Credits
		}
		ledger := func(userID int64) []entry {
			page, err := db.Quota.Ledger(ctx, 1, gaas.LedgerRequest{UserID: userID, Page: gaas.Page{Limit: 100}})
			require.NoError(t, err)
			var out []entry
			for _, e := range page.Items {
				out = append(out, entry{e.Kind, e.Delta, e.Balance})
			}
			return out
		}
		assert.Equal(t, []entry{
			{gaas.LedgerSet, 9000, 9000},
			{gaas.LedgerCharge, -1000, 8000},
			{gaas.LedgerCharge, -2500, 5500}, {gaas.LedgerRefund, 2500, 8000},
			{gaas.LedgerCharge, -500, 7500}, {gaas.LedgerRefund, 500, 8000},
			{gaas.LedgerCharge, -3000, 5000},
			{gaas.LedgerCharge, -1000, 4000},
			// Job 6, of no hours, drew nothing: it has no charge entry.
		}, ledger(10))
		assert.Equal(t, []entry{
			{gaas.LedgerSet, 2000, 2000},
			{gaas.LedgerCharge, -2000, 0}, {gaas.LedgerRefund, 2000, 2000},
			{gaas.LedgerSet, -2000, 0},
		}, ledger(11))

		// Rejecting the imported PENDING job refunds it as a new one.
		_, err = db.Jobs.Transition(ctx, 1, gaas.TransitionRequest{JobID: 1, To: gaas.StatusRejected})
		require.NoError(t, err)
		balance, err := db.Quota.Balance(ctx, 1, gaas.BalanceRequest{UserID: 10})
		require.NoError(t, err)
		assert.Equal(t, gaas.Credits(5000), balance)
		requireChecked(t, db)
	})
}

// Text that is not valid UTF-8 is repaired with U+FFFD, each time with an
// anomaly naming the row and the field; a username so repaired must be
// renamed, by its name as stored or as it reads once repaired.
func TestImportInvalidUTF8(t *testing.T) {
	ctx := context.Background()
	forEachStore(t, func(t *testing.T, db *store.DB) {
		rep, err := db.ImportFastAPI(ctx, oldDB(t,
			`INSERT INTO users VALUES (1, 'root', CAST(x'2468ff' AS TEXT), 'admin', 1.0)`,
			`INSERT INTO users VALUES (2, CAST(x'7961ff6e' AS TEXT), 'h', 'user', 1.0)`,
			`INSERT INTO users VALUES (3, CAST(x'7862ff' AS TEXT), 'h', 'user', 1.0)`,
			`INSERT INTO jobs VALUES (1, CAST(x'66ff6f' AS TEXT), CAST(x'41ff' AS TEXT), 0.5, 'PENDING', 1)`,
		), store.ImportOptions{Rename: map[string]string{"ya\uFFFDn": "yan", "xb\xff": "xb2"}})
		require.NoError(t, err)
		requireChecked(t, db)
		assertAnomalies(t, rep,
			"user 1 (root): password_hash: invalid UTF-8 at byte 2 replaced with U+FFFD",
			"user 2: username \"ya\uFFFDn\": invalid UTF-8 at byte 2 replaced with U+FFFD",
			"user 2: renamed from \"ya\uFFFDn\" to yan",
			"user 3: username \"xb\uFFFD\": invalid UTF-8 at byte 2 replaced with U+FFFD",
			"user 3: renamed from \"xb\uFFFD\" to xb2",
			"job 1: command: invalid UTF-8 at byte 1 replaced with U+FFFD",
			"job 1: gpu_type: invalid UTF-8 at byte 1 replaced with U+FFFD",
		)
		j, err := db.Jobs.Get(ctx, 1, gaas.GetJobRequest{JobID: 1})
		require.NoError(t, err)
		assert.Equal(t, "f\uFFFDo", j.Command)
		assert.Equal(t, "A\uFFFD", j.GPUType)
		for id, name := range map[int64]string{2: "yan", 3: "xb2"} {
			u, err := db.Users.User(ctx, 1, gaas.GetUserRequest{UserID: id})
			require.NoError(t, err)
			assert.Equal(t, name, u.Username)
		}
	})
}

// Progress is told, in increasing counts, how many rows an import wrote.
func TestImportProgress(t *testing.T) {
	db := newTestStore(t)
	const jobs = 2500
	type call struct{ done, total int }
	var calls []call
	_, err := db.ImportFastAPI(context.Background(), oldDB(t,
		`INSERT INTO users VALUES (1, 'root', 'h', 'admin', 0.0)`,
		fmt.Sprintf(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %d)
			INSERT INTO jobs SELECT i, 'x', 'A', 0.001, 'PENDING', 1 FROM n`, jobs),
	), store.ImportOptions{Progress: func(done, total int) { calls = append(calls, call{done, total}) }})
	require.NoError(t, err)
	requireChecked(t, db)
	require.GreaterOrEqual(t, len(calls), 3, "%v", calls)
	for i, c := range calls {
		assert.Equal(t, 1+jobs, c.total)
		if i > 0 {
			assert.Greater(t, c.done, calls[i-1].done)
		}
	}
	assert.Equal(t, call{1 + jobs, 1 + jobs}, calls[len(calls)-1])
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
