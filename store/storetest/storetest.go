// Package storetest gives tests a fresh PostgreSQL database to open a
// store on, when one is available, the FastAPI version's sample database,
// and the seed of a randomized test.
package storetest

import (
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
)

// PostgresEnv names the environment variable that points the tests at a
// PostgreSQL server: a postgres:// URL of a database they may create
// schemas in. .ci/run starts a throw-away server and sets it.
const PostgresEnv = "GAAS_TEST_POSTGRES"

var seq atomic.Int64

// PostgresDSN creates a schema of its own for the test on the server that
// GAAS_TEST_POSTGRES names, drops it when the test ends, and returns a DSN
// whose search_path is that schema: to the store, an empty database. Without
// the variable the test is skipped, with a message that says how to run it.
func PostgresDSN(t testing.TB) string {
	t.Helper()
	admin, u := postgres(t)
	schema := fmt.Sprintf("t_%d_%d", time.Now().UnixNano(), seq.Add(1))
	create(t, admin, "SCHEMA "+schema, "DROP SCHEMA "+schema+" CASCADE")
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// SeedEnv names the environment variable that fixes the seed of a
// randomized test, so that a failing run can be repeated.
const SeedEnv = "GAAS_SEED"

// Seed returns the seed of a randomized test: GAAS_SEED when it is set,
// else one from the clock. It logs the seed, so that every run, failing or
// not, says how to repeat it.
func Seed(t testing.TB) uint64 {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv(SeedEnv); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("%s=%q: %v", SeedEnv, s, err)
		}
	}
	t.Logf("seed %d: reproduce with %s=%d", seed, SeedEnv, seed)
	return seed
}

// PostgresDatabase creates a database of its own for the test on the
// server that GAAS_TEST_POSTGRES names, with settings ("name = value") as
// the defaults of its sessions (ALTER DATABASE ... SET), drops it when the
// test ends, and returns its DSN: for what a schema cannot give, such as a
// server configured in a way the store must withstand. Without the
// variable the test is skipped, as by PostgresDSN.
func PostgresDatabase(t testing.TB, settings ...string) string {
	t.Helper()
	admin, u := postgres(t)
	name := fmt.Sprintf("gaas_t_%d_%d", time.Now().UnixNano(), seq.Add(1))
	create(t, admin, "DATABASE "+name, "DROP DATABASE "+name+" WITH (FORCE)")
	for _, s := range settings {
		if _, err := admin.Exec("ALTER DATABASE " + name + " SET " + s); err != nil {
			t.Fatalf("set %s on database %s: %v", s, name, err)
		}
	}
	u.Path = "/" + name
	return u.String()
}

// postgres connects to the server that GAAS_TEST_POSTGRES names, until
// the test ends, and returns the connection and the variable's URL; without
// the variable it skips the test.
func postgres(t testing.TB) (*sql.DB, *url.URL) {
	t.Helper()
	base := os.Getenv(PostgresEnv)
	if base == "" {
		t.Skip("PostgreSQL tests skipped: set " + PostgresEnv + " to a postgres:// URL (.ci/run starts a server and sets it)")
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("%s: %v", PostgresEnv, err)
	}
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	return admin, u
}

// create runs CREATE what on admin, and drop when the test ends.
func create(t testing.TB, admin *sql.DB, what, drop string) {
	t.Helper()
	if _, err := admin.Exec("CREATE " + what); err != nil {
		t.Fatalf("create %s on %s: %v", what, PostgresEnv, err)
	}
	t.Cleanup(func() { admin.Exec(drop) })
}
