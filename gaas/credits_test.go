package gaas_test

import (
	"fmt"
	"math/big"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/gaas"
)

// seed returns the seed of a randomized test, GAAS_SEED when it is set,
// and logs it so that any run can be repeated. (store/storetest has the
// same for the store's tests; gaas cannot import it.)
func seed(t *testing.T) *rand.Rand {
	t.Helper()
	s := uint64(time.Now().UnixNano())
	if env := os.Getenv("GAAS_SEED"); env != "" {
		var err error
		if s, err = strconv.ParseUint(env, 10, 64); err != nil {
			t.Fatalf("GAAS_SEED=%q: %v", env, err)
		}
	}
	t.Logf("seed %d: reproduce with GAAS_SEED=%d", s, s)
	return rand.New(rand.NewPCG(s, 0))
}

// upTo returns a number from 0 to max whose order of magnitude is itself
// random, so that small amounts, where rounding shows, come up as often
// as large ones, where overflow does.
func upTo(r *rand.Rand, max int64) int64 {
	n := int64(1)
	for range r.IntN(20) {
		if n > max/10 {
			break
		}
		n *= 10
	}
	return r.Int64N(min(n, max) + 1)
}

// exactCost is hours × gpus × rate in milli-credits, as a rational.
func exactCost(h gaas.Hours, gpus int, rate gaas.Rate) *big.Rat {
	n := new(big.Int).Mul(big.NewInt(int64(h)), big.NewInt(int64(gpus)))
	n.Mul(n, big.NewInt(int64(rate)))
	return new(big.Rat).SetFrac(n, big.NewInt(int64(gaas.RateOne)))
}

// At rate 1 on one GPU a job costs its hours, to the milli-credit.
func TestCostAtRateOne(t *testing.T) {
	r := seed(t)
	hs := []gaas.Hours{0, 1, 2, 999, 1000, 1001, 2500, 6 * gaas.Hour, gaas.MaxHours - 1, gaas.MaxHours}
	for range 10_000 {
		hs = append(hs, gaas.Hours(upTo(r, int64(gaas.MaxHours))))
	}
	for _, h := range hs {
		c, ok := gaas.Cost(h, 1, gaas.RateOne)
		if !ok || c != gaas.Credits(h) || c != gaas.CreditsOf(h) {
			t.Fatalf("Cost(%s hours, 1, rate 1) = %s, %v; want %s credits", h, c, ok, h)
		}
	}
}

// TestCostRounding holds Cost to exact rational arithmetic: the cost is
// the exact price rounded up to the next milli-credit, never more than one
// milli-credit above it, and it is refused (ok false, no number) exactly
// when that is above MaxCredits.
func TestCostRounding(t *testing.T) {
	r := seed(t)
	maxCredits := new(big.Rat).SetInt64(int64(gaas.MaxCredits))
	for range 100_000 {
		h := gaas.Hours(upTo(r, int64(gaas.MaxHours)))
		gpus := int(upTo(r, gaas.MaxGPUsPerJob))
		rate := gaas.Rate(1 + upTo(r, int64(gaas.MaxRate)-1))
		c, ok := gaas.Cost(h, gpus, rate)
		exact := exactCost(h, gpus, rate)
		// The smallest whole number of milli-credits not below exact.
		ceil := new(big.Int).Div(exact.Num(), exact.Denom()) // both are ≥ 0
		if !exact.IsInt() {
			ceil.Add(ceil, big.NewInt(1))
		}
		if new(big.Rat).SetInt(ceil).Cmp(maxCredits) > 0 {
			if ok || c != 0 {
				t.Fatalf("Cost(%s hours, %d, rate %s) = %s, %v; the exact price %s milli-credits is above MaxCredits", h, gpus, rate, c, ok, exact.FloatString(3))
			}
			continue
		}
		if !ok || big.NewInt(int64(c)).Cmp(ceil) != 0 {
			t.Fatalf("Cost(%s hours, %d, rate %s) = %d milli-credits, %v; exactly %s, so want %s", h, gpus, rate, c, ok, exact.FloatString(3), ceil)
		}
		over := new(big.Rat).Sub(new(big.Rat).SetInt64(int64(c)), exact)
		if over.Sign() < 0 || over.Cmp(big.NewRat(1, 1)) >= 0 {
			t.Fatalf("Cost(%s hours, %d, rate %s) = %d milli-credits, %s above the exact price", h, gpus, rate, c, over.FloatString(6))
		}
	}
}

// More hours never cost less, at any rate and GPU count.
func TestCostMonotoneInHours(t *testing.T) {
	r := seed(t)
	for range 100_000 {
		gpus := 1 + int(upTo(r, gaas.MaxGPUsPerJob-1))
		rate := gaas.Rate(1 + upTo(r, int64(gaas.MaxRate)-1))
		h1 := gaas.Hours(upTo(r, int64(gaas.MaxHours)))
		h2 := h1 + gaas.Hours(upTo(r, int64(gaas.MaxHours-h1)))
		if r.IntN(2) == 0 && h1 < gaas.MaxHours {
			h2 = h1 + 1 // neighbours, where rounding could step back
		}
		c1, ok1 := gaas.Cost(h1, gpus, rate)
		c2, ok2 := gaas.Cost(h2, gpus, rate)
		if ok2 && (!ok1 || c1 > c2) {
			t.Fatalf("rate %s on %d GPUs: %s hours cost %s (%v), %s hours cost %s", rate, gpus, h1, c1, ok1, h2, c2)
		}
	}
}

// Arguments out of range, and prices beyond MaxCredits however large the
// product, give ok false and no number.
func TestCostRange(t *testing.T) {
	cases := []struct {
		name  string
		hours gaas.Hours
		gpus  int
		rate  gaas.Rate
	}{
		{"negative_hours", -1, 1, gaas.RateOne},
		{"hours_above_max", gaas.MaxHours + 1, 1, gaas.RateOne},
		{"negative_gpus", gaas.Hour, -1, gaas.RateOne},
		{"gpus_above_max", gaas.Hour, gaas.MaxGPUsPerJob + 1, gaas.RateOne},
		{"zero_rate", gaas.Hour, 1, 0},
		{"negative_rate", gaas.Hour, 1, -gaas.RateOne},
		{"rate_above_max", gaas.Hour, 1, gaas.MaxRate + 1},
		{"everything_at_its_max", gaas.MaxHours, gaas.MaxGPUsPerJob, gaas.MaxRate},
		{"max_hours_at_a_rate_just_above_one", gaas.MaxHours, 1, gaas.RateOne + 1},
		// 10000100001 × 99999 = 10¹⁵ − 1 and 9999900001 × 100001 = 10¹⁵ + 1:
		// a thousandth of a milli-credit either side of MaxCredits.
		{"rounding_up_crosses_max", 9_999_900_001, 1, 100_001},
		{"two_gpus_of_the_max", gaas.MaxHours, 2, gaas.RateOne},
		{"max_rate_for_a_thousand_and_one_hours", 1001 * gaas.Hour, 1, gaas.MaxRate},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, ok := gaas.Cost(tc.hours, tc.gpus, tc.rate)
			assert.False(t, ok)
			assert.Zero(t, c)
		})
	}
	// Right at the edges it is still a number.
	for _, tc := range []struct {
		hours gaas.Hours
		gpus  int
		rate  gaas.Rate
		want  gaas.Credits
	}{
		{gaas.MaxHours, 1, gaas.RateOne, gaas.MaxCredits},
		{10_000_100_001, 1, 99_999, gaas.MaxCredits}, // rounded up to MaxCredits exactly
		{1000 * gaas.Hour, 1, gaas.MaxRate, gaas.MaxCredits},
		{0, gaas.MaxGPUsPerJob, gaas.MaxRate, 0},
		{gaas.MaxHours, 0, gaas.MaxRate, 0},
		{1, gaas.MaxGPUsPerJob, gaas.MaxRate, 65_536 * gaas.Credit * 1000},
		{1, 1, 1, 1},
		{gaas.Hour, 3, 333, 999},
	} {
		c, ok := gaas.Cost(tc.hours, tc.gpus, tc.rate)
		assert.True(t, ok, "Cost(%s, %d, %s)", tc.hours, tc.gpus, tc.rate)
		assert.Equal(t, tc.want, c, "Cost(%s, %d, %s)", tc.hours, tc.gpus, tc.rate)
	}
}

func TestPriceOf(t *testing.T) {
	p := gaas.Price{Estimate: 3 * gaas.Hour, GPUs: 4, Rate: 2500}
	c, ok := p.Of(p.Estimate)
	assert.True(t, ok)
	assert.Equal(t, 30*gaas.Credit, c)
	j := gaas.Job{EstimatedHours: p.Estimate, GPUCount: p.GPUs, Rate: p.Rate}
	assert.Equal(t, p, j.Price())
}

// checkParse runs a parser of thousandths (ParseHours, ParseCredits,
// ParseRate) over what it must accept and what it must refuse, and why.
func checkParse[T ~int64](t *testing.T, parse func(string) (T, error), ok map[string]T, bad map[string]error) {
	t.Helper()
	for in, want := range ok {
		t.Run(in, func(t *testing.T) {
			got, err := parse(in)
			require.NoError(t, err)
			assert.Equal(t, want, got)
		})
	}
	for in, want := range bad {
		t.Run("bad/"+in, func(t *testing.T) {
			got, err := parse(in)
			assert.ErrorIs(t, err, want)
			assert.Zero(t, got)
		})
	}
}

func TestParseCredits(t *testing.T) {
	checkParse(t, gaas.ParseCredits, map[string]gaas.Credits{
		"0":             0,
		"-0":            0,
		"1":             gaas.Credit,
		"2.5":           2500,
		"0.001":         gaas.MilliCredit,
		"10.000":        10 * gaas.Credit,
		"-4":            -4 * gaas.Credit,
		"1e3":           1000 * gaas.Credit,
		"25e-1":         2500,
		"1000000000":    gaas.MaxCredits,
		"1e9":           gaas.MaxCredits,
		"-1000000000":   -gaas.MaxCredits,
		"999999999.999": gaas.MaxCredits - 1,
	}, map[string]error{
		"":               gaas.ErrHoursSyntax,
		"NaN":            gaas.ErrHoursSyntax,
		"+1":             gaas.ErrHoursSyntax,
		"01":             gaas.ErrHoursSyntax,
		".5":             gaas.ErrHoursSyntax,
		"1 credit":       gaas.ErrHoursSyntax,
		"0.0001":         gaas.ErrHoursPrecision,
		"2.0005":         gaas.ErrHoursPrecision,
		"1e-4":           gaas.ErrHoursPrecision,
		"1000000000.001": gaas.ErrCreditsRange,
		"-1e10":          gaas.ErrCreditsRange,
		"1e99999999999":  gaas.ErrCreditsRange,
	})
	_, err := gaas.ParseCredits("1e10")
	assert.EqualError(t, err, `gaas: parse credits "1e10": more than 1000000000 credits`)
	assert.NotErrorIs(t, err, gaas.ErrHoursRange)
}

func TestParseRate(t *testing.T) {
	checkParse(t, gaas.ParseRate, map[string]gaas.Rate{
		"1":           gaas.RateOne,
		"2.5":         2500,
		"0.001":       1,
		"0":           0, // parsed; ValidateRate refuses it
		"-1":          -gaas.RateOne,
		"1000000":     gaas.MaxRate,
		"1e6":         gaas.MaxRate,
		"999999.999":  gaas.MaxRate - 1,
		"0.125e+1":    1250,
		"1.500000000": 1500,
	}, map[string]error{
		"":            gaas.ErrHoursSyntax,
		"Infinity":    gaas.ErrHoursSyntax,
		"1/2":         gaas.ErrHoursSyntax,
		"2.5x":        gaas.ErrHoursSyntax,
		"0.0005":      gaas.ErrHoursPrecision,
		"1000000.001": gaas.ErrRateRange,
		"1e7":         gaas.ErrRateRange,
		"-1e7":        gaas.ErrRateRange,
	})
	_, err := gaas.ParseRate("0.0005")
	assert.EqualError(t, err, `gaas: parse rate "0.0005": more than 3 decimal places`)
}

func TestValidateRate(t *testing.T) {
	for _, r := range []gaas.Rate{1, gaas.RateOne, 2500, gaas.MaxRate} {
		assert.NoError(t, gaas.ValidateRate(r), "%s", r)
	}
	for _, r := range []gaas.Rate{0, -1, -gaas.RateOne, gaas.MaxRate + 1} {
		err := gaas.ValidateRate(r)
		if assert.ErrorIs(t, err, gaas.ErrInvalid, "%s", r) {
			assert.EqualError(t, err, "gaas: invalid input: rate: must be greater than 0 and at most 1000000")
		}
	}
}

func TestCreditsAndRateString(t *testing.T) {
	for c, want := range map[gaas.Credits]string{
		0: "0", 1: "0.001", 250: "0.25", 1000: "1", 2500: "2.5", -3250: "-3.25", gaas.MaxCredits: "1000000000",
	} {
		assert.Equal(t, want, c.String())
	}
	for r, want := range map[gaas.Rate]string{
		1: "0.001", gaas.RateOne: "1", 2500: "2.5", gaas.MaxRate: "1000000",
	} {
		assert.Equal(t, want, r.String())
	}
	assert.Equal(t, "gaas: quota exceeded: asked for 2.5 credits, 1 left for GPU type A100",
		(&gaas.QuotaError{Asked: 2500, Remaining: gaas.Credit, GPUType: "A100"}).Error())
	assert.Equal(t, "gaas: quota exceeded: asked for 0.001 credits, 0 left",
		(&gaas.QuotaError{Asked: 1}).Error())
}

// Every amount and rate formats to text that parses back to itself.
func TestCreditsAndRateRoundTrip(t *testing.T) {
	r := seed(t)
	cs := []gaas.Credits{0, 1, 9, 10, 999, 1000, 1001, gaas.MaxCredits, -gaas.MaxCredits, -7}
	rs := []gaas.Rate{0, 1, 10, 999, 1000, 1001, gaas.MaxRate, -gaas.MaxRate}
	for range 1000 {
		cs = append(cs, gaas.Credits(upTo(r, int64(gaas.MaxCredits))))
		rs = append(rs, gaas.Rate(upTo(r, int64(gaas.MaxRate))))
	}
	for _, c := range cs {
		got, err := gaas.ParseCredits(c.String())
		require.NoError(t, err, "%d", c)
		assert.Equal(t, c, got)
	}
	for _, rate := range rs {
		got, err := gaas.ParseRate(rate.String())
		require.NoError(t, err, "%d", rate)
		assert.Equal(t, rate, got)
	}
}

func ExampleCost() {
	// 2.5 hours on one GPU at rate 1: the hours, in credits.
	fmt.Println(gaas.Cost(2500, 1, gaas.RateOne))
	// 3 hours on 4 GPUs of a type at 2.5 credits per GPU-hour.
	fmt.Println(gaas.Cost(3*gaas.Hour, 4, 2500))
	// A milli-hour at a thousandth of a credit an hour is a millionth of
	// a credit: rounded up to the milli-credit, once.
	fmt.Println(gaas.Cost(1, 1, 1))
	// Beyond MaxCredits there is no cost.
	fmt.Println(gaas.Cost(gaas.MaxHours, gaas.MaxGPUsPerJob, gaas.MaxRate))
	// Output:
	// 2.5 true
	// 30 true
	// 0.001 true
	// 0 false
}
