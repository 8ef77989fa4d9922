package slurm

import (
	"strings"
	"time"

	"github.com/gaas-io/gaas/gaas"
)

// Slurm's job states that are not final: the job waits, runs, or is on its
// way to one or the other.
var waiting = map[string]bool{
	"PENDING": true, "REQUEUED": true, "REQUEUE_FED": true, "REQUEUE_HOLD": true,
	"RESV_DEL_HOLD": true, "RESIZING": true,
}

var running = map[string]bool{
	"RUNNING": true, "CONFIGURING": true, "COMPLETING": true, "SUSPENDED": true,
	"STOPPED": true, "SIGNALING": true, "STAGE_OUT": true, "POWER_UP_NODE": true, "UPDATE_DB": true,
}

// Final reports whether Slurm's state ends a job. sacct writes some states
// with who caused them ("CANCELLED by 1000"); the first word is the state.
func Final(state string) bool {
	s := word(state)
	return s != "" && !waiting[s] && !running[s]
}

// Started reports whether a job in state has begun to run (and so, if it
// has not ended, gaas counts it RUNNING).
func Started(state string) bool { return running[word(state)] }

func word(state string) string {
	s, _, _ := strings.Cut(strings.TrimSpace(state), " ")
	return s
}

// OutcomeOf maps the state a job ended in to how gaas settles it:
//
//   - COMPLETED is COMPLETED, charged the time used;
//   - FAILED, TIMEOUT, OUT_OF_MEMORY, DEADLINE and CANCELLED after the job
//     started are FAILED, charged the time used;
//   - CANCELLED before it started is CANCELLED, charged nothing;
//   - NODE_FAIL, BOOT_FAIL and PREEMPTED are FAILED through the system's
//     fault, charged nothing;
//   - any other final state is FAILED, charged the time used.
//
// The reason is Slurm's state.
func OutcomeOf(state string, started bool, elapsed time.Duration) gaas.Outcome {
	s := word(state)
	o := gaas.Outcome{Status: gaas.StatusFailed, Elapsed: elapsed, Reason: s}
	switch s {
	case "COMPLETED":
		o.Status = gaas.StatusCompleted
	case "CANCELLED":
		if !started {
			o.Status, o.Elapsed = gaas.StatusCancelled, 0
		}
	case "NODE_FAIL", "BOOT_FAIL", "PREEMPTED":
		o.SystemFault = true
	}
	return o
}
