package gaas

import (
	"errors"
	"fmt"
	"math/bits"
)

// Credits is an amount of GPU time priced by GPU type, in milli-credits:
// one credit is one GPU-hour on a GPU type of rate 1. Balances,
// allocations, charges and refunds are kept in Credits, and a job's Hours
// become Credits only through [Cost], so the compiler stops anyone adding
// hours to credits.
//
// Like Hours it has no wire format: [Credits.String] and [ParseCredits]
// write and read a decimal number of credits.
type Credits int64

const (
	// MilliCredit is the smallest amount that Credits can hold.
	MilliCredit Credits = 1
	// Credit is one GPU-hour at rate 1.
	Credit Credits = 1000
	// MaxCredits is the largest amount that any balance, allocation, job
	// or grant may hold: one billion credits. It keeps every sum of two
	// amounts far from int64 overflow.
	MaxCredits Credits = 1_000_000_000 * Credit
)

// ErrCreditsRange is returned by ParseCredits for a number whose magnitude exceeds MaxCredits.
var ErrCreditsRange = errors.New("more than 1000000000 credits")

// ParseCredits parses a decimal number of credits ("2.5", "1e3"), with at
// most three decimal places and a magnitude of at most MaxCredits. It
// never rounds; the sign is kept.
func ParseCredits(s string) (Credits, error) {
	v, err := parseFixed(s, int64(MaxCredits), ErrCreditsRange)
	if err != nil {
		return 0, fmt.Errorf("gaas: parse credits %q: %w", truncate(s, 32), err)
	}
	return Credits(v), nil
}

// String formats c as a decimal number of credits with no trailing zeros.
func (c Credits) String() string { return string(appendFixed(nil, int64(c))) }

// CreditsOf is the credits a balance of hours held before GPU types had
// rates: one credit an hour, which is rate 1. The importer and the
// migration of existing balances read hours this way.
func CreditsOf(h Hours) Credits { return Credits(h) }

// Rate is what a GPU-hour of a GPU type costs, in milli-credits per
// GPU-hour: RateOne is one credit an hour. It is exact, like the amounts.
type Rate int64

const (
	// RateOne is one credit per GPU-hour, the rate of every GPU type while
	// the catalogue is empty.
	RateOne Rate = 1000
	// MaxRate is the highest rate a GPU type may have: a million credits
	// per GPU-hour.
	MaxRate Rate = 1_000_000 * RateOne
)

// ErrRateRange is returned by ParseRate for a number above MaxRate.
var ErrRateRange = errors.New("more than 1000000 credits per GPU-hour")

// ParseRate parses a decimal number of credits per GPU-hour ("2.5"), with
// at most three decimal places. It does not check the sign; ValidateRate does.
func ParseRate(s string) (Rate, error) {
	v, err := parseFixed(s, int64(MaxRate), ErrRateRange)
	if err != nil {
		return 0, fmt.Errorf("gaas: parse rate %q: %w", truncate(s, 32), err)
	}
	return Rate(v), nil
}

// String formats r as a decimal number of credits per GPU-hour.
func (r Rate) String() string { return string(appendFixed(nil, int64(r))) }

// ValidateRate reports whether r is a rate a GPU type may have: above
// zero and at most MaxRate.
func ValidateRate(r Rate) error {
	if r <= 0 || r > MaxRate {
		return Invalid("rate", "must be greater than 0 and at most %s", MaxRate)
	}
	return nil
}

// MaxGPUsPerJob is the most GPUs any job may ask for, whatever its type allows.
const MaxGPUsPerJob = 65536

// Cost is what gpus GPUs for hours cost at rate: hours × gpus × rate,
// rounded up to the next milli-credit. It is the one rule of pricing. The
// charge of a job is the Cost of its estimate, its settlement the Cost of
// its actual hours, both at the rate and GPU count it was submitted with;
// since the refund is their difference, charged − refunded is always
// exactly the Cost of the actual hours, and nothing is created or lost
// by rounding: a job pays at most one milli-credit above the exact price,
// once. At rate 1 on one GPU the cost in credits is the hours, to the unit.
//
// ok is false when the cost is above MaxCredits, or an argument is out of
// range (hours or gpus below zero, rate not above zero).
func Cost(hours Hours, gpus int, rate Rate) (c Credits, ok bool) {
	if hours < 0 || hours > MaxHours || gpus < 0 || gpus > MaxGPUsPerJob || rate <= 0 || rate > MaxRate {
		return 0, false
	}
	// milli-hours × gpus fits an int64 (1e12 × 65536 < 9.2e18); times the
	// rate in milli-credits it takes 128 bits, and one division by 1000
	// brings it back to milli-credits.
	hi, lo := bits.Mul64(uint64(hours)*uint64(gpus), uint64(rate))
	lo, carry := bits.Add64(lo, uint64(RateOne)-1, 0)
	hi += carry
	if hi >= uint64(RateOne) {
		return 0, false
	}
	q, _ := bits.Div64(hi, lo, uint64(RateOne))
	if q > uint64(MaxCredits) {
		return 0, false
	}
	return Credits(q), true
}
