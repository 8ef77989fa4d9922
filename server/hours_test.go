package server

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/gaas"
)

func TestHoursJSON(t *testing.T) {
	for h, want := range map[gaas.Hours]string{0: "0.0", 2500: "2.5", 10000: "10.0", 1: "0.001", -1500: "-1.5", gaas.MaxHours: "1000000000.0"} {
		b, err := json.Marshal(hoursJSON(h))
		require.NoError(t, err)
		assert.Equal(t, want, string(b))
		var back hoursJSON
		require.NoError(t, json.Unmarshal(b, &back))
		assert.Equal(t, h, gaas.Hours(back))
	}
	var v struct{ H hoursJSON }
	for in, want := range map[string]error{
		`{"H": "2.5"}`: gaas.ErrHoursSyntax, `{"H": true}`: gaas.ErrHoursSyntax, `{"H": 0.0001}`: gaas.ErrHoursPrecision,
		`{"H": 1e300}`: gaas.ErrHoursRange, `{"H": null}`: gaas.ErrHoursSyntax,
	} {
		assert.ErrorIs(t, json.Unmarshal([]byte(in), &v), want, in)
	}
	var p struct{ H *hoursJSON }
	require.NoError(t, json.Unmarshal([]byte(`{"H": null}`), &p))
	assert.Nil(t, p.H, "a pointer reads null as nil")
}

// FuzzHoursJSON checks that every amount ParseHours accepts marshals to a
// JSON number, with a ".0" on whole hours, that reads back to itself.
func FuzzHoursJSON(f *testing.F) {
	for _, s := range []string{"0", "2.5", "0.1", "-4", "1e3", "1E-3", "1000000000", "-0.125e+2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, err := gaas.ParseHours(s)
		if err != nil {
			return
		}
		b, err := json.Marshal(hoursJSON(h))
		if err != nil || !json.Valid(b) {
			t.Fatalf("%d marshals to %s, %v", h, b, err)
		}
		if whole := h%gaas.Hour == 0; whole != (string(b[len(b)-2:]) == ".0") {
			t.Fatalf("%d marshals to %s", h, b)
		}
		var j hoursJSON
		if err := json.Unmarshal(b, &j); err != nil || gaas.Hours(j) != h {
			t.Fatalf("%d marshals to %s, which unmarshals to %d, %v", h, b, j, err)
		}
	})
}

// TestCreditsAndRateJSON: credits and rates travel as hours do, through
// the same code, each within its own range and named in its own words.
func TestCreditsAndRateJSON(t *testing.T) {
	for v, want := range map[any]string{creditsJSON(7500): "7.5", creditsJSON(gaas.MaxCredits): "1000000000.0",
		rateJSON(gaas.RateOne): "1.0", rateJSON(2501): "2.501", rateJSON(gaas.MaxRate): "1000000.0"} {
		b, err := json.Marshal(v)
		require.NoError(t, err)
		assert.Equal(t, want, string(b))
	}
	c, err := amountField[gaas.Credits]([]byte("0.30000000000000004"), "amount")
	require.NoError(t, err)
	assert.Equal(t, gaas.Credits(300), *c, "float noise means the milli-credit")

	for _, tc := range []struct {
		raw, message string
		read         func([]byte) error
	}{
		{"2.0001", "has more than 3 decimal places; rates are kept to the milli-credit per GPU-hour: the nearest amounts are 2 and 2.001",
			func(b []byte) error { _, err := amountField[gaas.Rate](b, "rate"); return err }},
		{"1000000.001", "must be at most 1000000",
			func(b []byte) error { _, err := amountField[gaas.Rate](b, "rate"); return err }},
		{"0.0005", "has more than 3 decimal places; credits are kept to the milli-credit: the nearest amounts are 0 and 0.001",
			func(b []byte) error { _, err := amountField[gaas.Credits](b, "rate"); return err }},
		{"1e10", "must be at most 1000000000",
			func(b []byte) error { _, err := amountField[gaas.Credits](b, "rate"); return err }},
		{`"2"`, "must be a number",
			func(b []byte) error { _, err := amountField[gaas.Rate](b, "rate"); return err }},
	} {
		var ve *gaas.ValidationError
		require.ErrorAs(t, tc.read([]byte(tc.raw)), &ve, tc.raw)
		assert.Equal(t, []gaas.FieldError{{Field: "rate", Message: tc.message}}, ve.Fields, tc.raw)
	}
}
