package executor_test

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/gaas"
	"github.com/gaas-io/gaas/server/executor"
)

func TestTailFile(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "1.log")
	require.NoError(t, os.WriteFile(log, []byte("one\ntwo\nthree\n"), 0o644))

	tail, truncated, err := executor.TailFile(log, 100)
	require.NoError(t, err)
	assert.Equal(t, "one\ntwo\nthree\n", string(tail))
	assert.False(t, truncated)
	tail, truncated, err = executor.TailFile(log, 6)
	require.NoError(t, err)
	assert.Equal(t, "three\n", string(tail))
	assert.True(t, truncated)

	_, _, err = executor.TailFile(filepath.Join(dir, "2.log"), 100)
	assert.ErrorIs(t, err, gaas.ErrNotFound)

	// A job that makes its log another file gets nothing of that file.
	secret := filepath.Join(dir, "secret")
	require.NoError(t, os.WriteFile(secret, []byte("the server's secret"), 0o600))
	require.NoError(t, os.Symlink(secret, filepath.Join(dir, "3.log")))
	_, _, err = executor.TailFile(filepath.Join(dir, "3.log"), 100)
	assert.ErrorContains(t, err, "not a file the server reads")
	require.NoError(t, os.Link(secret, filepath.Join(dir, "4.log")))
	_, _, err = executor.TailFile(filepath.Join(dir, "4.log"), 100)
	assert.ErrorContains(t, err, "not a regular file of one link")
	require.NoError(t, syscall.Mkfifo(filepath.Join(dir, "5.log"), 0o666))
	_, _, err = executor.TailFile(filepath.Join(dir, "5.log"), 100)
	assert.ErrorContains(t, err, "not a regular file", "a FIFO is neither waited on nor read")
}
