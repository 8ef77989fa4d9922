package gaas_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/gaas-io/gaas/gaas"
)

func TestTextRules(t *testing.T) {
	type rule struct {
		name     string
		validate func(string) error
		lines    bool // tab and newline allowed
		empty    bool // the empty text allowed
		max      int
	}
	rules := []rule{
		{"command", gaas.ValidateCommand, true, false, gaas.CommandMaxLen},
		{"gpu_type", gaas.ValidateGPUType, false, false, gaas.GPUTypeMaxLen},
		{"reason", gaas.ValidateReason, true, true, gaas.ReasonMaxLen},
	}
	for _, r := range rules {
		t.Run(r.name, func(t *testing.T) {
			ok := func(s string) { assert.NoError(t, r.validate(s), "%q", s) }
			bad := func(s, message string) {
				err := r.validate(s)
				if assert.ErrorIs(t, err, gaas.ErrInvalid, "%q", s) {
					assert.Equal(t, "gaas: invalid input: "+r.name+": "+message, err.Error())
				}
			}
			ok("NVIDIA A100 — ünïcode 'quotes' \"and\" \\backslashes\\")
			ok(strings.Repeat("é", r.max))
			bad(strings.Repeat("é", r.max+1), "must be at most "+strconv.Itoa(r.max)+" characters")
			bad("a\x00b", "holds the control character U+0000 at byte 1; it may hold "+allowed(r.lines))
			bad("\x1b[31mred", "holds the control character U+001B at byte 0; it may hold "+allowed(r.lines))
			bad("del\x7f", "holds the control character U+007F at byte 3; it may hold "+allowed(r.lines))
			bad("cr\r", "holds the control character U+000D at byte 2; it may hold "+allowed(r.lines))
			bad("\xffbad", "must be valid UTF-8")
			if r.lines {
				ok("line one\n\tline two")
			} else {
				bad("two\nlines", "holds the control character U+000A at byte 3; it may hold no control characters")
				bad("tab\t", "holds the control character U+0009 at byte 3; it may hold no control characters")
			}
			if r.empty {
				ok("")
			} else {
				bad("", "must not be empty")
			}
		})
	}
}

func allowed(lines bool) string {
	if lines {
		return "no control characters other than tab and newline"
	}
	return "no control characters"
}
