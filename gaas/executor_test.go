package gaas_test

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/gaas-io/gaas/gaas"
)

func TestHoursOf(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		want gaas.Hours
	}{
		{-time.Second, 0},
		{0, 0},
		{time.Nanosecond, 1},
		{3600 * time.Millisecond, 1},
		{3600*time.Millisecond + 1, 2},
		{time.Hour, gaas.Hour},
		{90 * time.Minute, 1500},
		{math.MaxInt64, gaas.Hours(math.MaxInt64/int64(3600*time.Millisecond)) + 1},
	} {
		assert.Equal(t, c.want, gaas.HoursOf(c.d), "%v", c.d)
	}
}

func TestTimeLimit(t *testing.T) {
	for _, c := range []struct {
		h    gaas.Hours
		want time.Duration
	}{
		{0, 0},
		{1, time.Minute}, // 3.6 s rounds up to a minute
		{16, time.Minute},
		{17, 2 * time.Minute}, // 61.2 s
		{gaas.Hour, time.Hour},
		{2500, 150 * time.Minute},
		{gaas.MaxHours, math.MaxInt64 / time.Minute * time.Minute},
	} {
		assert.Equal(t, c.want, gaas.TimeLimit(c.h), "%v hours", c.h)
	}
}

func TestOutcomeActualHours(t *testing.T) {
	estimate := 2 * gaas.Hour
	exit := 0
	for _, c := range []struct {
		name string
		o    gaas.Outcome
		want gaas.Hours
	}{
		{"completed", gaas.Outcome{Status: gaas.StatusCompleted, Elapsed: 30 * time.Minute, ExitCode: &exit}, 500},
		{"rounded up to a milli-hour", gaas.Outcome{Status: gaas.StatusCompleted, Elapsed: 3601 * time.Millisecond}, 2},
		{"overrun capped at the estimate", gaas.Outcome{Status: gaas.StatusFailed, Elapsed: 2*time.Hour + 40*time.Second, Reason: "TIMEOUT"}, estimate},
		{"failed by its own fault pays", gaas.Outcome{Status: gaas.StatusFailed, Elapsed: time.Hour}, gaas.Hour},
		{"the system's fault is free", gaas.Outcome{Status: gaas.StatusFailed, Elapsed: time.Hour, SystemFault: true}, 0},
		{"cancelled before start is free", gaas.Outcome{Status: gaas.StatusCancelled}, 0},
		{"cancelled while running pays its time", gaas.Outcome{Status: gaas.StatusCancelled, Elapsed: time.Hour}, gaas.Hour},
		{"no time", gaas.Outcome{Status: gaas.StatusCompleted}, 0},
	} {
		assert.Equal(t, c.want, c.o.ActualHours(estimate), c.name)
	}
}
