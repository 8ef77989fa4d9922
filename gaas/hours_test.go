package gaas_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/gaas"
)

func TestParseHours(t *testing.T) {
	ok := []struct {
		in   string
		want gaas.Hours
	}{
		{"0", 0},
		{"-0", 0},
		{"0.0", 0},
		{"1", 1000},
		{"2.5", 2500},
		{"0.1", 100},
		{"0.001", 1},
		{"10.000", 10000},
		{"2.500000000000", 2500},
		{"-4", -4000},
		{"-0.125", -125},
		{"1e3", 1_000_000},
		{"1E-3", 1},
		{"25e-1", 2500},
		{"0.5e+1", 5000},
		{"100e-5", 1},
		{"0e999999999999", 0},
		{"1000000000", gaas.MaxHours},
		{"-1000000000", -gaas.MaxHours},
		{"999999999.999", gaas.MaxHours - 1},
	}
	for _, tc := range ok {
		t.Run(tc.in, func(t *testing.T) {
			got, err := gaas.ParseHours(tc.in)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
	bad := []struct {
		in   string
		want error
	}{
		{"", gaas.ErrHoursSyntax},
		{"-", gaas.ErrHoursSyntax},
		{"NaN", gaas.ErrHoursSyntax},
		{"Infinity", gaas.ErrHoursSyntax},
		{"-Inf", gaas.ErrHoursSyntax},
		{"+1", gaas.ErrHoursSyntax},
		{"01", gaas.ErrHoursSyntax},
		{".5", gaas.ErrHoursSyntax},
		{"5.", gaas.ErrHoursSyntax},
		{"1e", gaas.ErrHoursSyntax},
		{"1e+", gaas.ErrHoursSyntax},
		{"0x10", gaas.ErrHoursSyntax},
		{"1_000", gaas.ErrHoursSyntax},
		{" 1", gaas.ErrHoursSyntax},
		{`"2.5"`, gaas.ErrHoursSyntax},
		{"null", gaas.ErrHoursSyntax},
		{"0.0001", gaas.ErrHoursPrecision},
		{"2.0005", gaas.ErrHoursPrecision},
		{"1e-4", gaas.ErrHoursPrecision},
		{"1e-99999999999", gaas.ErrHoursPrecision},
		{"0.1000000000000000055511151231257827", gaas.ErrHoursPrecision},
		{"1000000000.001", gaas.ErrHoursRange},
		{"1e10", gaas.ErrHoursRange},
		{"1e99999999999", gaas.ErrHoursRange},
		{"99999999999999999999999", gaas.ErrHoursRange},
	}
	for _, tc := range bad {
		t.Run("bad/"+tc.in, func(t *testing.T) {
			_, err := gaas.ParseHours(tc.in)
			assert.ErrorIs(t, err, tc.want)
		})
	}
}

func TestHoursString(t *testing.T) {
	for h, want := range map[gaas.Hours]string{
		0: "0", 1: "0.001", 10: "0.01", 100: "0.1", 1000: "1", 2500: "2.5", 1250: "1.25",
		10000: "10", -3250: "-3.25", -1: "-0.001", gaas.MaxHours: "1000000000",
	} {
		assert.Equal(t, want, h.String())
	}
}

// Every amount formats to text that parses back to itself.
func TestHoursRoundTrip(t *testing.T) {
	for _, h := range []gaas.Hours{0, 1, 9, 10, 99, 100, 999, 1000, 1001, 123456789, gaas.MaxHours, -gaas.MaxHours, -7} {
		got, err := gaas.ParseHours(h.String())
		require.NoError(t, err)
		assert.Equal(t, h, got)
	}
}

func ExampleParseHours() {
	tenth, _ := gaas.ParseHours("0.1")
	var total gaas.Hours
	for range 10 {
		total += tenth
	}
	fmt.Println(total, total == gaas.Hour)

	_, err := gaas.ParseHours("0.0001")
	fmt.Println(err)
	// Output:
	// 1 true
	// gaas: parse hours "0.0001": more than 3 decimal places
}
