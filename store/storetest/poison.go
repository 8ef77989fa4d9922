package storetest

import (
	"database/sql"
	"strings"
	"testing"

	"github.com/uptrace/bun/driver/sqliteshim"
)

// Commands of jobs that Poison makes the database treat apart.
const (
	// PoisonCommand is refused by the database, with an error of its own.
	PoisonCommand = "poison"
	// SlowCommand takes five seconds to insert, on PostgreSQL only.
	SlowCommand = "slow"
)

// Poison adds a trigger to the store's database at dsn (a SQLite file or a
// postgres:// URL) that refuses every job whose command is PoisonCommand,
// with an error the store knows nothing of: it stands for whatever a
// constraint, a driver or the database may refuse about one submission,
// which no validation in Go foresees. On PostgreSQL it also makes a job
// whose command is SlowCommand sleep for five seconds before it is inserted.
// Call it after the store has made its schema.
func Poison(t testing.TB, dsn string) {
	t.Helper()
	driver, name := sqliteshim.ShimName, "file:"+dsn+"?_pragma=busy_timeout(5000)"
	stmts := []string{`CREATE TRIGGER poison BEFORE INSERT ON jobs WHEN NEW.command = '` + PoisonCommand + `'
		BEGIN SELECT RAISE(ABORT, 'poisoned job'); END`}
	if strings.HasPrefix(dsn, "postgres") {
		driver, name = "pgx", dsn
		stmts = []string{`CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN
				IF NEW.command = '` + PoisonCommand + `' THEN RAISE EXCEPTION 'poisoned job'; END IF;
				IF NEW.command = '` + SlowCommand + `' THEN PERFORM pg_sleep(5); END IF;
				RETURN NEW;
			END $$`,
			`CREATE TRIGGER poison BEFORE INSERT ON jobs FOR EACH ROW EXECUTE FUNCTION poison()`}
	}
	raw, err := sql.Open(driver, name)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	for _, q := range stmts {
		if _, err := raw.Exec(q); err != nil {
			t.Fatalf("storetest: poison: %v", err)
		}
	}
}
