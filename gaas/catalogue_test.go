package gaas_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/gaas-io/gaas/gaas"
)

func TestValidateGPUTypeName(t *testing.T) {
	for _, ok := range []string{
		"A100", "a", "NVIDIA A100 80GB", "h100-sxm_5.x", "~!@#$%^&*()[]{}<>?|\\'\"`+=,;:",
		strings.Repeat("x", gaas.GPUTypeNameMaxLen), "in the middle  is fine", "..%2F",
	} {
		assert.NoError(t, gaas.ValidateGPUTypeName(ok), "%q", ok)
	}
	const (
		length = "name: must be 1 to 64 characters"
		ascii  = "name: may hold only printable ASCII characters other than '/'"
		spaces = "name: must not begin or end with a space"
	)
	for bad, want := range map[string]string{
		"":                               length,
		strings.Repeat("x", 65):          length,
		strings.Repeat("é", 32):          ascii, // 64 bytes, not ASCII
		"A100/80GB":                      ascii,
		"/":                              ascii,
		"A\t100":                         ascii,
		"A100\n":                         ascii,
		"\x00":                           ascii,
		"del\x7f":                        ascii,
		"Ä100":                           ascii,
		"A100\u00a0":                     ascii, // a no-break space is not ASCII
		" A100":                          spaces,
		"A100 ":                          spaces,
		" ":                              spaces,
		strings.Repeat("é", 33):          length,
		strings.Repeat(" ", 64) + "A100": length,
	} {
		err := gaas.ValidateGPUTypeName(bad)
		if assert.ErrorIs(t, err, gaas.ErrInvalid, "%q", bad) {
			assert.EqualError(t, err, "gaas: invalid input: "+want, "%q", bad)
		}
	}
}

func TestCreateGPUTypeRequestValidate(t *testing.T) {
	for _, r := range []gaas.CreateGPUTypeRequest{
		{Name: "A100", Rate: gaas.RateOne},
		{Name: "H100", Description: "Hopper\n\t80 GB", Rate: 1, MaxGPUsPerJob: 8},
		{Name: "B200", Description: strings.Repeat("é", gaas.DescriptionMaxLen), Rate: gaas.MaxRate, MaxGPUsPerJob: gaas.MaxGPUsPerJob, Retired: true},
	} {
		assert.NoError(t, r.Validate(), "%+v", r)
	}
	for _, tc := range []struct {
		name string
		r    gaas.CreateGPUTypeRequest
		want string
	}{
		{"no_name", gaas.CreateGPUTypeRequest{Rate: gaas.RateOne}, "name: must be 1 to 64 characters"},
		{"slash", gaas.CreateGPUTypeRequest{Name: "a/b", Rate: gaas.RateOne}, "name: may hold only printable ASCII characters other than '/'"},
		{"no_rate", gaas.CreateGPUTypeRequest{Name: "A100"}, "rate: must be greater than 0 and at most 1000000"},
		{"rate_above_max", gaas.CreateGPUTypeRequest{Name: "A100", Rate: gaas.MaxRate + 1}, "rate: must be greater than 0 and at most 1000000"},
		{"negative_limit", gaas.CreateGPUTypeRequest{Name: "A100", Rate: gaas.RateOne, MaxGPUsPerJob: -1}, "max_gpus_per_job: must be between 1 and 65536, or 0 for no limit"},
		{"limit_above_max", gaas.CreateGPUTypeRequest{Name: "A100", Rate: gaas.RateOne, MaxGPUsPerJob: gaas.MaxGPUsPerJob + 1}, "max_gpus_per_job: must be between 1 and 65536, or 0 for no limit"},
		{"long_description", gaas.CreateGPUTypeRequest{Name: "A100", Rate: gaas.RateOne, Description: strings.Repeat("x", gaas.DescriptionMaxLen+1)}, "description: must be at most 1024 characters"},
		{"everything_at_once", gaas.CreateGPUTypeRequest{Name: " A100", Description: "\x1b[31m", Rate: -1, MaxGPUsPerJob: -1},
			"name: must not begin or end with a space; description: holds the control character U+001B at byte 0; it may hold no control characters other than tab and newline; rate: must be greater than 0 and at most 1000000; max_gpus_per_job: must be between 1 and 65536, or 0 for no limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.r.Validate()
			assert.ErrorIs(t, err, gaas.ErrInvalid)
			assert.EqualError(t, err, "gaas: invalid input: "+tc.want)
		})
	}
}

func TestUpdateGPUTypeRequestValidate(t *testing.T) {
	text := func(s string) *string { return &s }
	rate := func(r gaas.Rate) *gaas.Rate { return &r }
	n := func(n int) *int { return &n }
	no := false
	for _, r := range []gaas.UpdateGPUTypeRequest{
		{Name: "A100"}, // changes nothing
		{Name: "a100", Description: text(""), Rate: rate(2500), MaxGPUsPerJob: n(0), Enabled: &no},
		{Name: "A100", Rate: rate(gaas.MaxRate), MaxGPUsPerJob: n(gaas.MaxGPUsPerJob)},
	} {
		assert.NoError(t, r.Validate(), "%+v", r)
	}
	for _, tc := range []struct {
		r    gaas.UpdateGPUTypeRequest
		want string
	}{
		{gaas.UpdateGPUTypeRequest{Name: "A100", Rate: rate(0)}, "rate: must be greater than 0 and at most 1000000"},
		{gaas.UpdateGPUTypeRequest{Name: "A100", MaxGPUsPerJob: n(-1)}, "max_gpus_per_job: must be between 1 and 65536, or 0 for no limit"},
		{gaas.UpdateGPUTypeRequest{Name: "A100", Description: text("\xff")}, "description: must be valid UTF-8"},
		{gaas.UpdateGPUTypeRequest{Name: "A100", Description: text("\x00"), Rate: rate(-1), MaxGPUsPerJob: n(gaas.MaxGPUsPerJob + 1)},
			"description: holds the control character U+0000 at byte 0; it may hold no control characters other than tab and newline; rate: must be greater than 0 and at most 1000000; max_gpus_per_job: must be between 1 and 65536, or 0 for no limit"},
	} {
		err := tc.r.Validate()
		assert.ErrorIs(t, err, gaas.ErrInvalid)
		assert.EqualError(t, err, "gaas: invalid input: "+tc.want)
	}
}

func TestGPUsAllowed(t *testing.T) {
	assert.Equal(t, gaas.MaxGPUsPerJob, gaas.GPUType{}.GPUsAllowed(), "no limit of its own")
	assert.Equal(t, 8, gaas.GPUType{MaxGPUsPerJob: 8}.GPUsAllowed())
}

// TestSameGPUType: GPU types match without regard to the case of ASCII
// letters only, as SQL's lower() folds them on every backend.
func TestSameGPUType(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		same bool
	}{
		{"A100", "a100", true},
		{"NVIDIA H100", "nvidia h100", true},
		{"K80", "\u212A80", false}, // the Kelvin sign folds to k in Unicode, not here
		{"A100", "A1000", false},
		{"ä100", "Ä100", false},
		{"", "", true},
	} {
		assert.Equal(t, tc.same, gaas.SameGPUType(tc.a, tc.b), "%q %q", tc.a, tc.b)
		assert.Equal(t, tc.same, gaas.Allocation{GPUTypes: []string{tc.a}}.Covers(tc.b), "%q covers %q", tc.a, tc.b)
	}
}
