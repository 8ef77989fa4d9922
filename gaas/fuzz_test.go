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
	f.Fuzz(func(t *testing.T, s string) {
		h, err := gaas.ParseHours(s)
		if err != nil {
			return
		}
		exact, ok := new(big.Rat).SetString(s)
		if !ok {
			// big.Rat refuses exponents beyond its range; only a zero
			// survives one here.
			if h != 0 || strings.Trim(strings.SplitN(strings.ToLower(s), "e", 2)[0], "-0.") != "" {
				t.Fatalf("ParseHours(%q) = %d, but it is not a number", s, h)
			}
			return
		}
		milli := new(big.Rat).Mul(exact, big.NewRat(1000, 1))
		if !milli.IsInt() || milli.Num().Cmp(big.NewInt(int64(h))) != 0 {
			t.Fatalf("ParseHours(%q) = %d milli-hours, exactly %s", s, h, milli.RatString())
		}
		if h > gaas.MaxHours || h < -gaas.MaxHours {
			t.Fatalf("ParseHours(%q) = %d, beyond MaxHours", s, h)
		}
		back, err := gaas.ParseHours(h.String())
		if err != nil || back != h {
			t.Fatalf("%d prints as %q, which parses to %d, %v", h, h.String(), back, err)
		}
	})
}
