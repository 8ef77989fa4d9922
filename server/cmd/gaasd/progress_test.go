package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// On a terminal the line is redrawn in place, at most every
// progressRefresh, with the rate and the time left, and the last count is
// always drawn; finish ends the line before the summary.
func TestProgressLineOnATerminal(t *testing.T) {
	var out bytes.Buffer
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := &progressLine{w: &out, label: "import-fastapi", unit: "rows", tty: true, rates: true, now: func() time.Time { return clock }, start: clock}

	clock = clock.Add(2 * time.Second)
	p.update(1000, 5000)
	clock = clock.Add(progressRefresh / 2)
	p.update(2000, 5000) // too soon: not drawn
	clock = clock.Add(progressRefresh / 2)
	p.update(3000, 5000)
	p.update(5000, 5000) // the last is drawn however soon
	p.finish()
	p.summary(5000, "rows", "written")
	assert.Equal(t, "\rimport-fastapi: 1000/5000 rows, 500 rows/s, 8s left\x1b[K"+
		"\rimport-fastapi: 3000/5000 rows, 1333 rows/s, 2s left\x1b[K"+
		"\rimport-fastapi: 5000/5000 rows, 2222 rows/s, 0s left\x1b[K\n"+
		"import-fastapi: 5000 rows written in 2.2 s (2222 rows/s)\n", out.String())
}

// Without rates, the line shows the time so far.
func TestProgressLineWithoutRates(t *testing.T) {
	var out bytes.Buffer
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := &progressLine{w: &out, label: "check", unit: "steps", tty: true, now: func() time.Time { return clock }, start: clock}
	clock = clock.Add(1500 * time.Millisecond)
	p.update(2, 6)
	assert.Equal(t, "\rcheck: 2/6 steps, 1.5 s\x1b[K", out.String())
}

// Elsewhere only the summary is written.
func TestProgressLineElsewhere(t *testing.T) {
	var out bytes.Buffer
	p := newProgressLine(&out, "check", "steps", false)
	assert.False(t, p.tty)
	for i := 1; i <= 6; i++ {
		p.update(i, 6)
	}
	p.finish()
	assert.Empty(t, out.String())
	p.summary(42, "rows", "checked")
	assert.Regexp(t, `^check: 42 rows checked in [0-9.]+ s \([0-9]+ rows/s\)\n$`, out.String())
}

func TestIsTerminal(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "log"))
	require.NoError(t, err)
	defer f.Close()
	assert.False(t, isTerminal(f), "a file")
	assert.False(t, isTerminal(&bytes.Buffer{}))
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	require.NoError(t, err)
	defer null.Close()
	assert.True(t, isTerminal(null), "a character device, as a terminal is")
}
