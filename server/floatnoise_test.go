package server

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/gaas"
)

// TestHoursFloatNoise: a number that float64 arithmetic put a few units in
// the last place from a milli-hour multiple means that multiple; a number
// really finer than a milli-hour is refused, naming the nearest amounts.
func TestHoursFloatNoise(t *testing.T) {
	for in, want := range map[string]gaas.Hours{
		"0.30000000000000004":                  300,  // 0.1 + 0.2
		"3.3000000000000003":                   3300, // 1.1 + 2.2
		"0.9999999999999999":                   1000, // 0.1 added ten times
		"-0.30000000000000004":                 -300,
		"0.1000000000000000055511151231257827": 100, // the float64 nearest 0.1, written out
		"2.675000000000000266":                 2675,
		"999999999.9990000001":                 gaas.MaxHours - 1,
		"1e-3":                                 1,
	} {
		var h hoursJSON
		require.NoError(t, json.Unmarshal([]byte(in), &h), in)
		assert.Equal(t, want, gaas.Hours(h), in)
	}
	for in, near := range map[string][2]gaas.Hours{
		"0.0005":             {0, 1},
		"0.3333333333333333": {333, 334}, // 20/60
		"-0.0005":            {-1, 0},
		"2.0001":             {2000, 2001},
		"0.30000001":         {300, 301},
		"1e-400":             {0, 1},
		"-1e-400":            {-1, 0},
	} {
		var h hoursJSON
		err := json.Unmarshal([]byte(in), &h)
		assert.ErrorIs(t, err, gaas.ErrHoursPrecision, in)
		var fine *hoursPrecisionError
		if assert.True(t, errors.As(err, &fine), in) {
			assert.Equal(t, near, [2]gaas.Hours{fine.lo, fine.hi}, in)
		}
	}
	for _, in := range []string{"1000000000.0005", "12345678901234.5"} {
		var h hoursJSON
		assert.ErrorIs(t, json.Unmarshal([]byte(in), &h), gaas.ErrHoursRange, in)
	}
}
