package store

import (
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/gaas-io/gaas/gaas"
)

// ErrClosed is returned by the services of a DB that has been closed. It
// matches gaas.ErrUnavailable too: to a client, a store that is shutting
// down is one that cannot serve just now.
var ErrClosed = fmt.Errorf("%w: closed", gaas.ErrUnavailable)

// mapErr turns driver errors into gaas sentinels; it is the one place that
// looks at them. A missing row is gaas.ErrNotFound and a unique violation
// gaas.ErrConflict, alone: the caller adds what was missing or taken, and
// the driver's error is not kept, so that no caller can come to depend on
// it. An unavailable database is gaas.ErrUnavailable with the driver's
// text, for the operator who reads the log, but not its error. Errors that
// already carry a sentinel, and errors it does not know, pass through
// unchanged, so mapping twice changes nothing.
func mapErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, gaas.ErrUnavailable):
		return err
	case isClosed(err):
		return ErrClosed
	case errors.Is(err, sql.ErrNoRows):
		return gaas.ErrNotFound
	case isUniqueViolation(err):
		return gaas.ErrConflict
	case isUnavailable(err):
		return unavailable(err)
	}
	return err
}

// unavailable is gaas.ErrUnavailable with cause's text and without cause,
// which is a driver's error, in its chain.
func unavailable(cause error) error {
	return fmt.Errorf("%w: %v", gaas.ErrUnavailable, cause)
}

// isUnavailable reports an error that says the database cannot serve now,
// as opposed to one about the request: a lost or refused connection, a
// server shutting down, a statement timeout, a SQLite file that is busy,
// read-only, full or gone.
func isUnavailable(err error) bool {
	if errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNREFUSED) {
		return true
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return true
	}
	var connect *pgconn.ConnectError
	if errors.As(err, &connect) || errors.Is(err, pgconn.ErrConnClosed) {
		return true
	}
	if state := sqlState(err); state != "" {
		switch {
		case strings.HasPrefix(state, "08"), // connection exception
			strings.HasPrefix(state, "53"),                       // insufficient resources
			state == "57P01", state == "57P02", state == "57P03", // shutting down, cannot connect now
			state == "57014",                   // statement timeout
			state == "25006",                   // read-only transaction (a standby)
			state == "40001", state == "40P01": // still failing after the store's retries

			return true
		}
		return false
	}
	var coded interface{ Code() int }
	if errors.As(err, &coded) {
		const busy, readonly, ioerr, full, cantopen = 5, 8, 10, 13, 14
		switch coded.Code() & 0xff {
		case busy, readonly, ioerr, full, cantopen:
			return true
		}
	}
	return false
}

// isClosed reports database/sql's error for a pool that was closed, which
// it does not export.
func isClosed(err error) bool {
	return strings.HasSuffix(err.Error(), "sql: database is closed")
}

// isUniqueViolation reports a UNIQUE constraint failure: PostgreSQL's
// 23505, SQLite's SQLITE_CONSTRAINT_UNIQUE or PRIMARYKEY.
func isUniqueViolation(err error) bool {
	if state := sqlState(err); state != "" {
		return state == "23505"
	}
	var coded interface{ Code() int }
	if errors.As(err, &coded) {
		const constraintUnique, constraintPrimaryKey = 2067, 1555
		return coded.Code() == constraintUnique || coded.Code() == constraintPrimaryKey
	}
	return strings.Contains(err.Error(), "UNIQUE constraint failed")
}

// isRetryable reports an error after which the same transaction may well
// succeed: PostgreSQL's serialization failure (40001) or deadlock (40P01).
func isRetryable(err error) bool {
	state := sqlState(err)
	return state == "40001" || state == "40P01"
}

// sqlState is PostgreSQL's error code, or "" for other errors.
func sqlState(err error) string {
	var pg interface{ SQLState() string }
	if errors.As(err, &pg) {
		return pg.SQLState()
	}
	return ""
}

// cantOpen names the cause of SQLite's SQLITE_CANTOPEN (14) for the file at
// path, which SQLite reports only as "unable to open database file" or
// worse ("out of memory"). Other errors, and errors of a database in
// memory (path ""), pass through unchanged.
func cantOpen(path string, err error) error {
	var coded interface{ Code() int }
	if path == "" || !errors.As(err, &coded) || coded.Code()&0xff != 14 {
		return err
	}
	cause := whyCannotOpen(path, true)
	if cause == "" {
		return fmt.Errorf("%s: %w", path, err)
	}
	return &cantOpenError{msg: fmt.Sprintf("%s: %s (SQLITE_CANTOPEN)", path, cause), err: err}
}

// cantOpenError says why a SQLite file cannot be opened in place of
// SQLite's text, which can be misleading ("out of memory"), and unwraps to
// SQLite's error, whose code mapErr reads.
type cantOpenError struct {
	msg string
	err error
}

func (e *cantOpenError) Error() string { return e.msg }
func (e *cantOpenError) Unwrap() error { return e.err }
