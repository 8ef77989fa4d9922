package server_test

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/gaas"
)

// The transition table of the API document is the library's table.
func TestAPIDocumentTransitions(t *testing.T) {
	b, err := os.ReadFile("../docs/API.md")
	require.NoError(t, err)
	_, section, ok := strings.Cut(string(b), "## Job statuses")
	require.True(t, ok)
	row := regexp.MustCompile(`(?m)^\| ([A-Z, ]+) \| ([A-Za-z, ()]+) \|$`)
	documented := map[gaas.JobStatus][]gaas.JobStatus{}
	final := 0
	for _, m := range row.FindAllStringSubmatch(section, -1) {
		for _, from := range strings.Split(m[1], ", ") {
			from := gaas.JobStatus(from)
			require.True(t, from.Valid(), from)
			if strings.HasPrefix(m[2], "none") {
				assert.True(t, from.Final(), "%s is documented as final", from)
				final++
				continue
			}
			for _, to := range strings.Split(m[2], ", ") {
				documented[from] = append(documented[from], gaas.JobStatus(to))
			}
		}
	}
	assert.Equal(t, gaas.Transitions(), documented)
	assert.Equal(t, len(gaas.Statuses()), len(documented)+final)
}
