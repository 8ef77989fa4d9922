package portal

import (
	"fmt"
	"html"
	"html/template"
	"math"
	"strings"
)

// chart is a stacked bar chart of amounts by period, drawn as SVG on the
// server, and the table of its numbers, which the "chart" template shows
// together: a reader who cannot see the picture, or wants the figures,
// has them exactly.
type chart struct {
	Title string
	// Desc says in words what the chart shows; it is the SVG's <desc>.
	Desc        string
	Unit        string // of every amount, such as "GPU-hours"
	PeriodLabel string // the heading of the periods' column, such as "Week of"
	Periods     []string
	Series      []chartSeries
	// TotalLabels are each period's total, written by the chart's format.
	TotalLabels []string
	// Open shows the table without a click.
	Open bool
	SVG  template.HTML
}

// chartSeries is one stacked part of every bar: one GPU type, say.
type chartSeries struct {
	Name string
	// Values are the amounts by period, in the unit's smallest step
	// (milli-hours): integers, so that the totals are exact.
	Values []int64
	// Labels are Values written by the chart's format.
	Labels []string
	Color  string
}

// chartColors are the Okabe–Ito colours, which readers with any common
// colour blindness tell apart; the legend names them anyway.
var chartColors = []string{"#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"}

// Geometry of the SVG, in its own units (it scales to its box).
const (
	chartWidth   = 720
	chartPlotTop = 16
	chartPlotH   = 220
	chartLeft    = 64
	chartRight   = 16
	chartLegendH = 22
)

// newChart makes a chart of series (each with one value per period),
// writing amounts with format. Every series needs a name; colours are
// given in order.
func newChart(title, desc, unit, periodLabel string, periods []string, series []chartSeries, format func(int64) string) chart {
	c := chart{Title: title, Desc: desc, Unit: unit, PeriodLabel: periodLabel, Periods: periods, Series: series}
	totals := make([]int64, len(periods))
	for i := range c.Series {
		s := &c.Series[i]
		s.Color = chartColors[i%len(chartColors)]
		s.Labels = make([]string, len(periods))
		for j := range periods {
			var v int64
			if j < len(s.Values) {
				v = s.Values[j]
			}
			s.Labels[j] = format(v)
			totals[j] += v
		}
	}
	c.TotalLabels = make([]string, len(periods))
	for j, t := range totals {
		c.TotalLabels[j] = format(t)
	}
	c.SVG = c.draw(totals, format)
	return c
}

// niceCeiling is the smallest of 1, 2, 2.5, 5 times a power of ten that
// is at least v, so that the axis reads in round numbers.
func niceCeiling(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

// draw writes the SVG: a y axis of four steps, one bar per period with
// its series stacked in order from the bottom, each part titled with its
// figure (a tooltip), period labels under the bars (thinned when they
// would crowd), and the legend below.
func (c chart) draw(totals []int64, format func(int64) string) template.HTML {
	var most int64
	for _, t := range totals {
		most = max(most, t)
	}
	top := niceCeiling(float64(most))
	plotW := float64(chartWidth - chartLeft - chartRight)
	legendRows := (len(c.Series) + 3) / 4
	height := chartPlotTop + chartPlotH + 30 + legendRows*chartLegendH + 8
	base := float64(chartPlotTop + chartPlotH)

	var b strings.Builder
	esc := html.EscapeString
	id := "chart-" + idOf(c.Title)
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" role="img" aria-labelledby="%s-title %s-desc">`,
		chartWidth, height, id, id)
	fmt.Fprintf(&b, `<title id="%s-title">%s</title><desc id="%s-desc">%s</desc>`, id, esc(c.Title), id, esc(c.Desc))
	b.WriteString(`<g font-family="system-ui, sans-serif" font-size="12" fill="#1b1f24">`)
	for i := 0; i <= 4; i++ {
		y := base - float64(i)*chartPlotH/4
		v := int64(math.Round(top * float64(i) / 4))
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#c9d1d9"/>`, chartLeft, chartWidth-chartRight, y, y)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end" dominant-baseline="middle">%s</text>`, chartLeft-6, y, esc(format(v)))
	}
	fmt.Fprintf(&b, `<text x="12" y="%.1f" transform="rotate(-90 12 %.1f)" text-anchor="middle">%s</text>`,
		base-chartPlotH/2, base-chartPlotH/2, esc(c.Unit))
	if n := len(c.Periods); n > 0 {
		band := plotW / float64(n)
		barW := math.Max(1, band*0.7)
		every := int(math.Ceil(float64(n) * 70 / plotW)) // a label needs about 70 units
		for j, p := range c.Periods {
			x := chartLeft + float64(j)*band + (band-barW)/2
			y := base
			for _, s := range c.Series {
				v := s.Values[j]
				if v <= 0 {
					continue
				}
				h := float64(v) / top * chartPlotH
				y -= h
				fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s, %s: %s %s</title></rect>`,
					x, y, barW, h, s.Color, esc(p), esc(s.Name), esc(s.Labels[j]), esc(c.Unit))
			}
			if j%every == 0 {
				fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`, x+barW/2, base+18, esc(p))
			}
		}
	}
	fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#4f5863"/>`, chartLeft, chartWidth-chartRight, base, base)
	for i, s := range c.Series {
		x := chartLeft + float64(i%4)*plotW/4
		y := base + 34 + float64(i/4*chartLegendH)
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="12" height="12" fill="%s"/><text x="%.1f" y="%.1f" dominant-baseline="middle">%s</text>`,
			x, y, s.Color, x+18, y+6, esc(s.Name))
	}
	b.WriteString(`</g></svg>`)
	return template.HTML(b.String()) // every text in it was escaped above
}

// idOf is s as the letters and digits of an id attribute.
func idOf(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		case b.Len() > 0 && !strings.HasSuffix(b.String(), "-"):
			b.WriteByte('-')
		}
	}
	return strings.TrimSuffix(b.String(), "-")
}
