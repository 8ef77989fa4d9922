package main

import (
	"fmt"
	"io"
	"os"
	"time"
)

// progressRefresh is how often at most the progress line is redrawn.
const progressRefresh = 250 * time.Millisecond

// progressLine shows how far a long subcommand is. On a terminal it keeps
// one line redrawn in place: the count done, then the rate and the time
// left when the units are alike enough for a rate to foretell anything,
// else the time so far.
// Anywhere else (a pipe, a log file) it writes nothing, so that no log
// fills with carriage returns; the subcommand's summary line is written in
// either case.
type progressLine struct {
	w           io.Writer
	label, unit string
	tty         bool
	rates       bool // units of alike cost: a rate and the time left mean something
	now         func() time.Time
	start       time.Time
	shown       time.Time // when the line was last drawn; zero before
}

func newProgressLine(w io.Writer, label, unit string, rates bool) *progressLine {
	return &progressLine{w: w, label: label, unit: unit, rates: rates, tty: isTerminal(w), now: time.Now, start: time.Now()}
}

// update is the Progress option of a store call: done of total units.
func (p *progressLine) update(done, total int) {
	if !p.tty {
		return
	}
	now := p.now()
	if done < total && now.Sub(p.shown) < progressRefresh {
		return
	}
	p.shown = now
	text := fmt.Sprintf("%s: %d/%d %s", p.label, done, total, p.unit)
	switch secs := now.Sub(p.start).Seconds(); {
	case !p.rates:
		text += fmt.Sprintf(", %.1f s", secs)
	case secs > 0 && done > 0:
		rate := float64(done) / secs
		left := time.Duration(float64(total-done) / rate * float64(time.Second)).Round(time.Second)
		text += fmt.Sprintf(", %.0f %s/s, %s left", rate, p.unit, left)
	}
	fmt.Fprintf(p.w, "\r%s\x1b[K", text) // back to the line's start, and erase what is left of the last one
}

// finish ends the redrawn line, if any.
func (p *progressLine) finish() {
	if !p.shown.IsZero() {
		fmt.Fprintln(p.w)
		p.shown = time.Time{}
	}
}

// summary writes the line that ends every run, terminal or not: n units,
// what was done to them, in how long and at what rate.
func (p *progressLine) summary(n int, unit, done string) {
	took := p.now().Sub(p.start).Seconds()
	rate := 0.0
	if took > 0 {
		rate = float64(n) / took
	}
	fmt.Fprintf(p.w, "%s: %d %s %s in %.1f s (%.0f %s/s)\n", p.label, n, unit, done, took, rate, unit)
}

// isTerminal reports whether w is a terminal, where a line can be redrawn.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
