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
