package gaas

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Hours is an amount of GPU time in milli-hours, the unit in which every
// balance, charge and refund is kept. Integers make the arithmetic exact:
// granting 0.1 ten times and spending 1.0 leaves exactly zero.
//
// Hours has no wire format of its own: [Hours.String] and [ParseHours] write
// and read a decimal number of hours ("2.5"), and a transport decides how
// that number travels (package server writes whole hours as "10.0").
type Hours int64

const (
	// MilliHour is the smallest amount that Hours can hold.
	MilliHour Hours = 1
	// Hour is one GPU hour.
	Hour Hours = 1000

	// MaxHours is the largest amount that any balance, job or grant may
	// hold: one billion hours. It keeps every sum of two amounts far from
	// int64 overflow.
	MaxHours Hours = 1_000_000_000 * Hour

	// unitDigits is the number of decimal digits below one hour that the unit holds.
	unitDigits = 3
)

// ErrHoursSyntax is returned by ParseHours, ParseCredits and ParseRate for
// text that is not a decimal number.
var ErrHoursSyntax = errors.New("not a decimal number")

// ErrHoursPrecision is returned by ParseHours, ParseCredits and ParseRate
// for a number with more decimal places than their unit (a thousandth) holds.
var ErrHoursPrecision = errors.New("more than 3 decimal places")

// ErrHoursRange is returned by ParseHours for a number whose magnitude exceeds MaxHours.
var ErrHoursRange = errors.New("more than 1000000000 hours")

// ParseHours parses a decimal number of hours, in the syntax of a JSON number
// ("2.5", "10", "1e-3", "-4"). It never rounds: a value with more precision
// than a milli-hour, or beyond MaxHours, is an error. NaN and infinities are
// not numbers and are rejected as syntax errors. The sign is kept; callers
// decide where negative amounts are allowed.
func ParseHours(s string) (Hours, error) {
	v, err := parseFixed(s, int64(MaxHours), ErrHoursRange)
	if err != nil {
		return 0, fmt.Errorf("gaas: parse hours %q: %w", truncate(s, 32), err)
	}
	return Hours(v), nil
}

// parseFixed parses a decimal number, in the syntax of a JSON number, as
// an integer of thousandths, refusing more precision than that and any
// magnitude above max (with errRange). It is the one parser of Hours,
// Credits and Rate.
func parseFixed(s string, max int64, errRange error) (int64, error) {
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	mant, expText, hasExp := s, "", false
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		mant, expText, hasExp = s[:i], s[i+1:], true
	}
	intPart, frac, hasPoint := strings.Cut(mant, ".")
	if intPart == "" || !digitsOnly(intPart) || !digitsOnly(frac) || (hasPoint && frac == "") ||
		(len(intPart) > 1 && intPart[0] == '0') { // JSON forbids leading zeros such as "01"
		return 0, ErrHoursSyntax
	}
	exp := 0
	if hasExp {
		expNeg := strings.HasPrefix(expText, "-")
		if expNeg || strings.HasPrefix(expText, "+") {
			expText = expText[1:]
		}
		if expText == "" || !digitsOnly(expText) {
			return 0, ErrHoursSyntax
		}
		expText = strings.TrimLeft(expText, "0")
		if len(expText) > 9 {
			// Far beyond any digit count; only zero survives it.
			expText = "999999999"
		}
		exp, _ = strconv.Atoi("0" + expText)
		if expNeg {
			exp = -exp
		}
	}
	// The value is digits × 10^(exp - len(frac)), which is
	// digits × 10^scale thousandths.
	digits := strings.TrimLeft(intPart+frac, "0")
	if digits == "" {
		return 0, nil
	}
	scale := exp - len(frac) + unitDigits
	trimmed := strings.TrimRight(digits, "0")
	scale += len(digits) - len(trimmed)
	digits = trimmed
	if scale < 0 {
		return 0, ErrHoursPrecision
	}
	if len(digits)+scale > 18 { // every max has at most 16 digits; 18 still fits an int64
		return 0, errRange
	}
	v, err := strconv.ParseInt(digits+strings.Repeat("0", scale), 10, 64)
	if err != nil || v > max {
		return 0, errRange
	}
	if neg {
		v = -v
	}
	return v, nil
}

func digitsOnly(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// String formats h as a decimal number of hours with no trailing zeros:
// "2.5", "10", "0.001", "-3.25".
func (h Hours) String() string {
	return string(appendFixed(nil, int64(h)))
}

// appendFixed appends v thousandths as a decimal number with no trailing
// zeros: the one formatter of Hours, Credits and Rate.
func appendFixed(b []byte, v int64) []byte {
	u := uint64(v)
	if v < 0 {
		b = append(b, '-')
		u = uint64(-v)
	}
	b = strconv.AppendUint(b, u/uint64(Hour), 10)
	if frac := u % uint64(Hour); frac != 0 {
		digits := strconv.FormatUint(frac+uint64(Hour), 10)[1:] // zero-padded to three digits
		b = append(b, '.')
		b = append(b, strings.TrimRight(digits, "0")...)
	}
	return b
}
