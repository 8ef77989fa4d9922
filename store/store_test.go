package store_test

import (
	"context"
	"database/sql"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
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
	assert.ErrorContains(t, err, "directory "+filepath.Dir(path)+" does not exist")

	path = filepath.Join(t.TempDir(), "gaas #1.db")
	db, err := store.Open(ctx, path, store.Options{DefaultQuota: 3 * gaas.Credit})
	require.NoError(t, err)
	u, err := db.Accounts.CreateUser(ctx, "alice", "h", gaas.RoleUser)
	require.NoError(t, err)
	assert.Equal(t, 3*gaas.Credit, u.Balance)
	key, err := db.SigningKey(ctx)
	require.NoError(t, err)
	assert.Len(t, key, 32)
	require.NoError(t, db.Close())

	// Reopening runs no migration twice, and keeps data and key.
	db, err = store.Open(ctx, path, store.Options{})
	require.NoError(t, err)
	defer db.Close()
	got, err := db.Accounts.UserByID(ctx, u.ID)
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
	files, err := filepath.Glob(filepath.Join("migrations", "sqlite", "*.up.sql"))
	require.NoError(t, err)
	assert.Equal(t, len(files), migrations, "every migration of migrations/sqlite applied")
}

// Stores open on one database agree on the signing key, whoever asks
// first, even when they all ask at once.
func TestSigningKeyShared(t *testing.T) {
	ctx := context.Background()
	forEachBackend(t, func(t *testing.T, b backend) {
		if !b.shared {
			t.Skip("each in-memory store is a database of its own")
		}
		dsn := b.dsn(t)
		stores := make([]*store.DB, 4)
		for i := range stores {
			stores[i] = openStore(t, dsn, store.Options{})
		}
		keys := make([][]byte, len(stores))
		var wg sync.WaitGroup
		for i, db := range stores {
			wg.Go(func() {
				k, err := db.SigningKey(ctx)
				assert.NoError(t, err)
				keys[i] = k
			})
		}
		wg.Wait()
		for _, k := range keys {
			assert.Len(t, k, 32)
			assert.Equal(t, keys[0], k)
		}
	})
}

func TestMemoryStoresAreSeparate(t *testing.T) {
	ctx := context.Background()
	a, b := newTestStore(t), newTestStore(t)
	_, err := a.Accounts.CreateUser(ctx, "alice", "h", gaas.RoleUser)
	require.NoError(t, err)
	_, err = b.Accounts.CreateUser(ctx, "alice", "h", gaas.RoleUser)
	require.NoError(t, err)
}

// The database itself keeps the rules, whatever code writes to it.
func TestSchemaGuards(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		if !b.shared {
			t.Skip("needs a second connection to the same database")
		}
		testSchemaGuards(t, b.dsn(t))
	})
}

func testSchemaGuards(t *testing.T, dsn string) {
	ctx := context.Background()
	db := openStore(t, dsn, store.Options{})
	f := newFixture(t, db)
	u := f.user(t, gaas.Credit)
	f.submit(t, u.ID, gaas.Hour)

	raw := rawOpen(t, dsn)
	for _, q := range []string{
		"UPDATE ledger SET delta = delta + 1000",
		"DELETE FROM ledger",
		"UPDATE ledger SET reason = 'rewritten' WHERE id = 1",
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

// Both dialects have the same numbered migrations, so that a schema
// version means one thing on either.
func TestMigrationsMatch(t *testing.T) {
	names := func(dir string) []string {
		entries, err := os.ReadDir(filepath.Join("migrations", dir))
		require.NoError(t, err)
		var out []string
		for _, e := range entries {
			out = append(out, e.Name())
		}
		return out
	}
	sqlite := names("sqlite")
	require.NotEmpty(t, sqlite)
	assert.Equal(t, sqlite, names("postgres"))
}

func TestRedactDSN(t *testing.T) {
	assert.Equal(t, "postgres://gaas:xxxxx@db:5432/gaas?sslmode=require", store.RedactDSN("postgres://gaas:s3cret@db:5432/gaas?sslmode=require"))
	assert.Equal(t, "postgres://gaas@db/gaas", store.RedactDSN("postgres://gaas@db/gaas"))
	assert.Equal(t, "gaas.db", store.RedactDSN("gaas.db"))
	assert.Equal(t, "postgres://gaas@db/gaas?password=xxxxx", store.RedactDSN("postgres://gaas@db/gaas?password=s3cret"))
}

func TestOpenPostgresErrors(t *testing.T) {
	ctx := context.Background()
	_, err := store.Open(ctx, "postgres://gaas:s3cret@127.0.0.1:1/gaas?connect_timeout=1", store.Options{})
	require.ErrorContains(t, err, "store: connect to postgres at 127.0.0.1: ")
	assert.NotContains(t, err.Error(), "s3cret")
	_, err = store.Open(ctx, "postgres://gaas:s3cret@[bad", store.Options{})
	require.ErrorContains(t, err, "store: postgres URL: ")
	assert.NotContains(t, err.Error(), "s3cret")
}

// Open refuses what names no database it can open, and says why, rather
// than creating a SQLite file of that name or failing with SQLite's code.
func TestOpenRefuses(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	file := filepath.Join(dir, "plain")
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	cases := []struct {
		name, dsn, want string
	}{
		{"empty", "", "no database named"},
		{"blank", "  ", "no database named"},
		{"libpq key=value", "host=db user=gaas password=s3cret dbname=gaas", "key=value connection string is not supported"},
		{"libpq key=value, spaced", " dbname = gaas", "key=value connection string is not supported"},
		{"mysql URL", "mysql://gaas:s3cret@db/gaas", "mysql:// URLs are not supported"},
		{"sqlite URL", "sqlite://" + filepath.Join(dir, "x.db"), "sqlite:// URLs are not supported"},
		{"directory", dir, "is a directory"},
		{"missing directory", filepath.Join(dir, "nope", "gaas.db"), "directory " + filepath.Join(dir, "nope") + " does not exist"},
		{"parent is a file", filepath.Join(file, "gaas.db"), file + " is not a directory"},
		{"file: URI of a directory", "file:" + dir, "is a directory"},
		{"file: URI with a host", "file://db.internal/gaas.db", "names no host but localhost"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			db, err := store.Open(ctx, tc.dsn, store.Options{})
			if err == nil {
				db.Close()
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.NotContains(t, err.Error(), "s3cret")
			assert.NotContains(t, err.Error(), "out of memory")
		})
	}
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1, "no file created: %v", entries)
	_, err = os.Stat(filepath.Join(filepath.Dir(dir), "host=db user=gaas password=s3cret dbname=gaas"))
	assert.ErrorIs(t, err, os.ErrNotExist)
}

// A file SQLite cannot open is named with its cause, not SQLite's code 14.
func TestOpenUnwritable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gaas.db")
	require.NoError(t, os.WriteFile(path, nil, 0o400))
	if os.Geteuid() == 0 {
		// Root opens any file, but not one in sysfs.
		path = "/sys/gaas-test.db"
		if fi, err := os.Stat("/sys"); err != nil || !fi.IsDir() {
			t.Skip("root opens any file, and there is no /sys")
		}
	}
	_, err := store.Open(context.Background(), path, store.Options{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), path+": cannot open it for writing: permission denied")
	assert.NotContains(t, err.Error(), "out of memory (14)")
}

// A path is a name, whatever characters it holds: the writer and the
// readers open the same file, so what Submit writes Get and List read.
func TestOpenPathCharacters(t *testing.T) {
	for _, name := range []string{"a?b#c.db", "100% sure & done=1.db", "mode=memory?x", "sp ace;#.db"} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, name)
			db := openStore(t, path, store.Options{})
			u, j := writeAndRead(t, db)
			assertReads(t, db, u, j)

			entries, err := os.ReadDir(dir)
			require.NoError(t, err)
			for _, e := range entries {
				assert.True(t, strings.HasPrefix(e.Name(), name), "%s is not the database file or its -wal/-shm", e.Name())
			}
			_, err = os.Stat(path)
			require.NoError(t, err)
		})
	}
}

// A file: URI opens the file it names, with its parameters, in both pools;
// the same data is seen through the plain path.
func TestOpenFileURI(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a b#.db")
	uri := "file:" + (&url.URL{Path: path}).EscapedPath() + "?cache=private#ignored"
	db := openStore(t, uri, store.Options{})
	u, j := writeAndRead(t, db)
	assertReads(t, openStore(t, path, store.Options{}), u, j)
}

// writeAndRead submits a job through the writer and reads it back.
func writeAndRead(t *testing.T, db *store.DB) (gaas.User, gaas.Job) {
	t.Helper()
	f := newFixture(t, db)
	u := f.user(t, 10*gaas.Credit)
	j := f.submit(t, u.ID, gaas.Hour)
	assertReads(t, db, u, j)
	return u, j
}

// assertReads checks that Get and List, which go through the reader pool,
// find u's job j and only it.
func assertReads(t *testing.T, db *store.DB, u gaas.User, j gaas.Job) {
	t.Helper()
	ctx := context.Background()
	got, err := db.Jobs.Get(ctx, u.ID, gaas.GetJobRequest{JobID: j.ID})
	require.NoError(t, err)
	assert.Equal(t, j, got)
	page, err := db.Jobs.List(ctx, u.ID, gaas.JobFilter{})
	require.NoError(t, err)
	require.Len(t, page.Items, 1)
	assert.Equal(t, j.ID, page.Items[0].ID)
}

func TestRedactKeyValueDSN(t *testing.T) {
	assert.Equal(t, "host=db user=gaas password=xxxxx dbname=gaas", store.RedactDSN("host=db user=gaas password=s3cret dbname=gaas"))
	assert.Equal(t, "host=db password = xxxxx", store.RedactDSN("host=db password = 'a b\\' c'"))
	assert.Equal(t, "mysql://gaas:xxxxx@db/gaas", store.RedactDSN("mysql://gaas:s3cret@db/gaas"))
}
