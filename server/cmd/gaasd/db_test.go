package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A -db that names no database gaasd can open stops it at start with the
// reason, without a password, and creates no file of that name.
func TestRunRefusesDatabase(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	for name, tc := range map[string]struct{ db, want string }{
		"libpq":     {"host=db user=gaas password=pw-in-dsn", "open database host=db user=gaas password=xxxxx: store: open: a libpq key=value connection string is not supported"},
		"mysql":     {"mysql://gaas:pw-in-dsn@db/gaas", "mysql:// URLs are not supported"},
		"directory": {dir, "is a directory"},
		"no_parent": {filepath.Join(dir, "nope", "gaas.db"), "directory " + filepath.Join(dir, "nope") + " does not exist"},
		"empty":     {"", "no database named"},
	} {
		t.Run(name, func(t *testing.T) {
			err := run(context.Background(), []string{"-addr", "127.0.0.1:0", "-db", tc.db}, func(string) string { return "" }, io.Discard, io.Discard)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.NotContains(t, err.Error(), "pw-in-dsn")
		})
	}
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Empty(t, entries)
}
