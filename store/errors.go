package store

import (
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/gaas-io/gaas/gaas"
)

// mapErr turns driver errors into gaas sentinels; it is the one place that
// looks at them. Errors it does not know pass through unchanged.
func mapErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("%w: %w", gaas.ErrNotFound, err)
	case isUniqueViolation(err):
		return fmt.Errorf("%w: %w", gaas.ErrConflict, err)
	}
	return err
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
