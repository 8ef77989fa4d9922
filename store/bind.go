package store

import (
	"context"
	"database/sql"
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"
)

// Statements with arguments.
//
// bun formats a statement's arguments into its text, as literals quoted by
// the dialect's rules, before the database sees it; the database then
// reads those literals by rules its settings change. On a PostgreSQL
// server with standard_conforming_strings off, a backslash escapes the
// quote that closes a literal, and a login username ending in one ran SQL
// of its choosing and logged in as the admin. So every statement the store
// runs with arguments goes through query or exec: they send the arguments
// apart from the text, as bind parameters, on the database/sql handle
// beneath the bun.DB or bun.Tx, and no setting makes a parameter mean more
// than its value. bun only scans the rows, and runs what has no arguments.
// TestNoFormattedArguments holds the package to this.

// query runs q with args as bind parameters (marked ? in q) and scans the
// rows into dest as bun's Scan does: a pointer to a slice gets every row;
// a struct or a single value gets the first row, and no row is
// sql.ErrNoRows.
func query(ctx context.Context, idb bun.IDB, dest any, q string, args ...any) error {
	_, scanner := handle(idb)
	rows, err := queryRows(ctx, idb, q, args...)
	if err != nil {
		return err
	}
	if t := reflect.TypeOf(dest); t.Kind() == reflect.Pointer && t.Elem().Kind() == reflect.Slice && t.Elem().Elem().Kind() != reflect.Uint8 {
		return scanner.ScanRows(ctx, rows, dest)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return err
		}
		return sql.ErrNoRows
	}
	if err := scanner.ScanRow(ctx, rows, dest); err != nil {
		return err
	}
	// Read to the end: SQLite can report a failed write after the row
	// that its RETURNING gave.
	for rows.Next() {
	}
	return rows.Err()
}

// queryRows runs q with args as bind parameters (marked ? in q) and
// returns its rows, for a caller that reads them one at a time.
func queryRows(ctx context.Context, idb bun.IDB, q string, args ...any) (*sql.Rows, error) {
	h, _ := handle(idb)
	return h.QueryContext(ctx, native(idb, q), args...)
}

// exec runs q with args as bind parameters (marked ? in q).
func exec(ctx context.Context, idb bun.IDB, q string, args ...any) (sql.Result, error) {
	h, _ := handle(idb)
	return h.ExecContext(ctx, native(idb, q), args...)
}

// sqlHandle is the database/sql side of a bun.IDB: a *sql.DB, *sql.Tx or
// *sql.Conn, whose methods pass arguments as bind parameters. (bun's own
// methods of these names format them into the text.)
type sqlHandle interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// handle returns idb's database/sql handle, and the bun.DB it belongs to,
// which knows how to scan rows into the store's structs.
func handle(idb bun.IDB) (sqlHandle, *bun.DB) {
	switch c := idb.(type) {
	case *bun.DB:
		return c.DB, c
	case bun.Tx:
		return c.Tx, c.NewRaw("").DB()
	case bun.Conn:
		return c.Conn, c.NewRaw("").DB()
	}
	panic(fmt.Sprintf("store: %T is not a bun.DB, bun.Tx or bun.Conn", idb))
}

// native writes q's ? placeholders as idb's database reads them.
func native(idb bun.IDB, q string) string {
	if idb.Dialect().Name() == dialect.PG {
		return dollarPlaceholders(q)
	}
	return q
}

// dollarPlaceholders turns ? into PostgreSQL's $1, $2, ...
func dollarPlaceholders(q string) string {
	var b strings.Builder
	b.Grow(len(q) + 16)
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] != '?' {
			b.WriteByte(q[i])
			continue
		}
		n++
		b.WriteByte('$')
		b.WriteString(strconv.Itoa(n))
	}
	return b.String()
}
