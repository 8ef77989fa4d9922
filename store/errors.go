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

// isUniqueViolation reports a UNIQUE constraint failure (SQLite's
// SQLITE_CONSTRAINT_UNIQUE or PRIMARYKEY).
func isUniqueViolation(err error) bool {
	var coded interface{ Code() int }
	if errors.As(err, &coded) {
		const constraintUnique, constraintPrimaryKey = 2067, 1555
		return coded.Code() == constraintUnique || coded.Code() == constraintPrimaryKey
	}
	return strings.Contains(err.Error(), "UNIQUE constraint failed")
}
