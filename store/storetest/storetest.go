// Package storetest gives tests a fresh PostgreSQL database to open a
// store on, when one is available.
package storetest

import (
	"database/sql"
	"fmt"
	"net/url"
	"os"
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
	base := os.Getenv(PostgresEnv)
	if base == "" {
		t.Skip("PostgreSQL tests skipped: set " + PostgresEnv + " to a postgres:// URL (.ci/run starts a server and sets it)")
	}
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	schema := fmt.Sprintf("t_%d_%d", time.Now().UnixNano(), seq.Add(1))
	if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
		admin.Close()
		t.Fatalf("create schema on %s: %v", PostgresEnv, err)
	}
	t.Cleanup(func() {
		admin.Exec("DROP SCHEMA " + schema + " CASCADE")
		admin.Close()
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
