package gaas_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/gaas"
)

// A GPU type or username that a spreadsheet would run as a formula is
// neutralised in CSV; negative numbers stay numbers.
func TestUsageReportWriteCSVNeutralisesFormulas(t *testing.T) {
	r := gaas.UsageReport{GroupBy: []gaas.ReportGroup{gaas.GroupByUser, gaas.GroupByGPUType}, Rows: []gaas.UsageRow{
		{UserID: 1, Username: "-cmd", GPUType: `=HYPERLINK("http://evil")`},
		{UserID: 2, Username: "ann", GPUType: "@SUM(1)"},
	}}
	var b strings.Builder
	require.NoError(t, r.WriteCSV(&b))
	out := b.String()
	assert.Contains(t, out, `'-cmd,"'=HYPERLINK(""http://evil"")"`)
	assert.Contains(t, out, "ann,'@SUM(1)")
	assert.NotContains(t, out, ",=")
}
