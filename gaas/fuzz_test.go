package gaas_test

import (
	"math/big"
	"strings"
	"testing"

	"github.com/gaas-io/gaas/gaas"
)

// FuzzParseHours checks ParseHours against exact rational arithmetic: what
// it accepts is exactly the number written, in milli-hours; what it prints
// parses back to itself; and nothing panics.
func FuzzParseHours(f *testing.F) {
	for _, s := range []string{"0", "2.5", "0.1", "-4", "1e3", "1E-3", "0.0001", "1000000000", "NaN", "01", "1e99999999999", "-0.125e+2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { checkFixed(t, s, gaas.ParseHours, gaas.MaxHours) })
}

// FuzzParseCredits holds ParseCredits to the same: exactly the number
// written, in milli-credits, within MaxCredits, printed back to itself.
func FuzzParseCredits(f *testing.F) {
	for _, s := range []string{"0", "2.5", "-0.001", "1e9", "1000000000.001", "0.0001", "1e", "0e99999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { checkFixed(t, s, gaas.ParseCredits, gaas.MaxCredits) })
}

// checkFixed checks one input of a parser of thousandths (Hours, Credits):
// what it accepts is exactly the number written, in thousandths, of
// magnitude at most max, and its String parses back to it.
func checkFixed[T interface {
	~int64
	String() string
}](t *testing.T, s string, parse func(string) (T, error), max T) {
	v, err := parse(s)
	if err != nil {
		return
	}
	exact, ok := new(big.Rat).SetString(s)
	if !ok {
		// big.Rat refuses exponents beyond its range; only a zero
		// survives one here.
		if v != 0 || strings.Trim(strings.SplitN(strings.ToLower(s), "e", 2)[0], "-0.") != "" {
			t.Fatalf("parse(%q) = %d, but it is not a number", s, v)
		}
		return
	}
	milli := new(big.Rat).Mul(exact, big.NewRat(1000, 1))
	if !milli.IsInt() || milli.Num().Cmp(big.NewInt(int64(v))) != 0 {
		t.Fatalf("parse(%q) = %d thousandths, exactly %s", s, v, milli.RatString())
	}
	if v > max || v < -max {
		t.Fatalf("parse(%q) = %d, beyond %d", s, v, max)
	}
	back, err := parse(v.String())
	if err != nil || back != v {
		t.Fatalf("%d prints as %q, which parses to %d, %v", v, v.String(), back, err)
	}
}
