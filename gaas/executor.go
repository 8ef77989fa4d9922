package gaas

import (
	"math"
	"time"
)

// Outcome is how an executor saw a job end: what it reports when it gives
// the job back.
type Outcome struct {
	// Status is StatusCompleted or StatusFailed for a job that ran, or
	// StatusCancelled for one that ended before it started.
	Status JobStatus
	// Elapsed is how long the job ran, as the executor measured it.
	Elapsed time.Duration
	// ExitCode is the command's exit status, when it exited of itself.
	ExitCode *int
	// Reason says why the job ended, in the executor's words ("TIMEOUT",
	// "exit status 3", "node failure").
	Reason string
	// SystemFault says the job failed through no fault of its own (its node
	// failed, or it was preempted): it is charged nothing.
	SystemFault bool
}

// ActualHours is what the outcome charges for a job that estimated
// estimate: the elapsed time, rounded up to the next milli-hour and capped
// at the estimate (schedulers overrun a time limit by seconds), or nothing
// for a job that never started or failed through the system's fault.
func (o Outcome) ActualHours(estimate Hours) Hours {
	if o.Status == StatusCancelled || o.SystemFault || o.Elapsed <= 0 {
		return 0
	}
	return min(HoursOf(o.Elapsed), estimate)
}

// milliHour is the time that one MilliHour of GPU time lasts.
const milliHour = time.Hour / 1000

// HoursOf is d in hours, rounded up to the next milli-hour (3.6 seconds);
// 0 for d ≤ 0. No time.Duration reaches MaxHours.
func HoursOf(d time.Duration) Hours {
	if d <= 0 {
		return 0
	}
	h := Hours(d / milliHour)
	if d%milliHour != 0 {
		h++
	}
	return h
}

// TimeLimit is the wall time a job that estimated h may run: h itself,
// rounded up to the next whole minute, the unit schedulers take. An
// estimate beyond what a time.Duration holds (about 290 years) is limited
// to that.
func TimeLimit(h Hours) time.Duration {
	minutes := (int64(h)*60 + 999) / 1000 // h ≤ MaxHours: no overflow
	if minutes > int64(math.MaxInt64/time.Minute) {
		minutes = int64(math.MaxInt64 / time.Minute)
	}
	return time.Duration(max(minutes, 0)) * time.Minute
}
