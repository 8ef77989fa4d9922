package portal

import (
	"encoding/xml"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/gaas"
)

func hours(v int64) string { return gaas.Hours(v).String() }

func TestChart(t *testing.T) {
	c := newChart("Usage <by> week", "GPU-hours by week & type", "GPU-hours", "Week of",
		[]string{"2026-11-02", "2026-11-09", "2026-11-16"},
		[]chartSeries{
			{Name: "A100", Values: []int64{1500, 0, 250}},
			{Name: `H100 "<x>"`, Values: []int64{2000, 0, 0}},
		}, hours)
	assert.Equal(t, []string{"3.5", "0", "0.25"}, c.TotalLabels, "totals are exact sums")
	assert.Equal(t, []string{"1.5", "0", "0.25"}, c.Series[0].Labels)
	assert.NotEqual(t, c.Series[0].Color, c.Series[1].Color)

	svg := string(c.SVG)
	// It is well-formed XML, and every text was escaped.
	dec := xml.NewDecoder(strings.NewReader(svg))
	var rects, texts int
	var title, desc string
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		require.NoError(t, err, svg)
		if se, ok := tok.(xml.StartElement); ok {
			switch se.Name.Local {
			case "svg":
				assert.Contains(t, se.Attr, xml.Attr{Name: xml.Name{Local: "role"}, Value: "img"})
			case "rect":
				rects++
			case "text":
				texts++
			case "title":
				if title == "" {
					require.NoError(t, dec.DecodeElement(&title, &se))
				}
			case "desc":
				require.NoError(t, dec.DecodeElement(&desc, &se))
			}
		}
	}
	assert.Equal(t, "Usage <by> week", title)
	assert.Equal(t, "GPU-hours by week & type", desc)
	// Three non-zero parts of bars, and two swatches of the legend.
	assert.Equal(t, 5, rects)
	assert.Contains(t, svg, `H100 &#34;&lt;x&gt;&#34;`)
	assert.Contains(t, svg, "2026-11-16, A100: 0.25 GPU-hours", "each part says its figure")
}

func TestChartEmptyAndCrowded(t *testing.T) {
	c := newChart("Nothing", "No usage", "GPU-hours", "Week of", nil, nil, hours)
	assert.Contains(t, string(c.SVG), `role="img"`)

	periods := make([]string, 60)
	values := make([]int64, 60)
	for i := range periods {
		periods[i] = "p" + string(rune('A'+i%26))
		values[i] = int64(i * 1000)
	}
	c = newChart("Busy", "Sixty periods", "GPU-hours", "Day", periods, []chartSeries{{Name: "A100", Values: values}}, hours)
	labels := strings.Count(string(c.SVG), `text-anchor="middle">p`)
	assert.Less(t, labels, 60, "labels are thinned so they do not overlap")
	assert.Greater(t, labels, 5)
}

func TestNiceCeiling(t *testing.T) {
	for in, want := range map[float64]float64{0: 1, 1: 1, 3: 5, 7: 10, 1500: 2000, 2300: 2500, 9999: 10000} {
		assert.Equal(t, want, niceCeiling(in), in)
	}
}

// A report by week and GPU type becomes a bar for every week of its range,
// empty weeks too, and a series for every type, in order of name.
func TestUsageChart(t *testing.T) {
	from := time.Date(2026, 10, 5, 0, 0, 0, 0, time.UTC) // a Monday
	rep := gaas.UsageReport{From: from, To: from.AddDate(0, 0, 21), Period: gaas.BucketWeek,
		Rows: []gaas.UsageRow{
			{PeriodStart: from, GPUType: "h100", GPUHours: 2 * gaas.Hour},
			{PeriodStart: from, GPUType: "A100", GPUHours: 1500},
			{PeriodStart: from.AddDate(0, 0, 14), GPUType: "A100", GPUHours: 250},
			{PeriodStart: from.AddDate(0, 0, 7), GPUType: "T4", GPUHours: 0, Charged: gaas.Credit}, // charged, no hours yet
		}}
	c, ok := usageChart("Usage", "by week", rep)
	require.True(t, ok)
	assert.Equal(t, []string{"2026-10-05", "2026-10-12", "2026-10-19"}, c.Periods)
	require.Len(t, c.Series, 2, "a type with no hours is no series")
	assert.Equal(t, "A100", c.Series[0].Name)
	assert.Equal(t, []int64{1500, 0, 250}, c.Series[0].Values)
	assert.Equal(t, "h100", c.Series[1].Name)
	assert.Equal(t, []string{"3.5", "0", "0.25"}, c.TotalLabels)
	assert.Equal(t, "Week of", c.PeriodLabel)

	_, ok = usageChart("Usage", "by week", gaas.UsageReport{From: from, To: from.AddDate(0, 0, 7), Period: gaas.BucketWeek})
	assert.False(t, ok, "nothing to chart")
}
