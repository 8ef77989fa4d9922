package gaas

import (
	"unicode/utf8"
)

// Every text gaas stores follows one rule, the same on every backend: valid
// UTF-8 with no NUL and no other control character of C0 or DEL. A field
// that holds lines (a command, a reason) may also hold tab and newline;
// nothing else. PostgreSQL cannot store a NUL in text at all, and a control
// character in a log line, a CSV export or a terminal is a way to forge or
// hide what follows it, so such text is refused up front with the field
// named rather than passed on.

// Limits of the texts a user writes, counted in characters.
const (
	CommandMaxLen        = 8192
	GPUTypeMaxLen        = 128
	IdempotencyKeyMaxLen = 255
	// ReasonMaxLen is the longest reason that a ledger entry keeps.
	ReasonMaxLen = 1024
)

// textRule is what one kind of field allows.
type textRule struct {
	maxLen   int
	lines    bool // tab and newline allowed
	required bool
}

var (
	commandText = textRule{maxLen: CommandMaxLen, lines: true, required: true}
	gpuTypeText = textRule{maxLen: GPUTypeMaxLen, required: true}
	reasonText  = textRule{maxLen: ReasonMaxLen, lines: true}
)

// ValidateCommand reports whether s may be a job's command: 1 to 8192
// characters of valid UTF-8, with no control character but tab and newline.
func ValidateCommand(s string) error { return commandText.check("command", s) }

// ValidateGPUType reports whether s may be a job's GPU type: 1 to 128
// characters of valid UTF-8, with no control character.
func ValidateGPUType(s string) error { return gpuTypeText.check("gpu_type", s) }

// ValidateReason reports whether s may be the reason of a ledger entry: at
// most 1024 characters of valid UTF-8, with no control character but tab
// and newline. It may be empty.
func ValidateReason(s string) error { return reasonText.check("reason", s) }

func (t textRule) check(field, s string) error {
	v := &ValidationError{}
	t.add(v, field, s)
	return v.Err()
}

// add records on v what is wrong with s as field, if anything.
func (t textRule) add(v *ValidationError, field, s string) {
	switch n := utf8.RuneCountInString(s); {
	case !utf8.ValidString(s):
		v.Add(field, "must be valid UTF-8")
	case n == 0 && t.required:
		v.Add(field, "must not be empty")
	case n > t.maxLen:
		v.Add(field, "must be at most %d characters", t.maxLen)
	default:
		addControl(v, field, s, t.lines)
	}
}

// ValidateControls reports a control character in s, the text of field: any
// of C0 or DEL, but for tab and newline when lines is true. Importers use it
// on text that predates the other rules.
func ValidateControls(field, s string, lines bool) error {
	v := &ValidationError{}
	addControl(v, field, s, lines)
	return v.Err()
}

func addControl(v *ValidationError, field, s string, lines bool) {
	if i, c := controlChar(s, lines); i >= 0 {
		allowed := "no control characters"
		if lines {
			allowed = "no control characters other than tab and newline"
		}
		v.Add(field, "holds the control character U+%04X at byte %d; it may hold %s", c, i, allowed)
	}
}

// controlChar finds the first control character of C0 or DEL in s, other
// than tab and newline when lines allows them; it returns -1 when there is
// none.
func controlChar(s string, lines bool) (int, rune) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != 0x7f {
			continue
		}
		if lines && (c == '\t' || c == '\n') {
			continue
		}
		return i, rune(c)
	}
	return -1, 0
}
