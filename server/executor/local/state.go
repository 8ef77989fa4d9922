package local

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/gaas-io/gaas/gaas"
)

// state is what the state file holds: the runs not forgotten, and the boot
// of the machine their process ids belong to.
type state struct {
	BootID string   `json:"boot_id"`
	Runs   []record `json:"runs"`
}

func (e *Executor) statePath() string { return filepath.Join(e.logDir, "state.json") }

// save writes the state file anew (a new file renamed over the old, so a
// crash leaves one or the other).
func (e *Executor) save() error {
	s := state{BootID: e.boot, Runs: make([]record, 0, len(e.runs))}
	for _, r := range e.runs {
		s.Runs = append(s.Runs, r.rec)
	}
	b, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("local: save state: %w", err)
	}
	tmp := e.statePath() + ".new"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("local: save state: %w", err)
	}
	_, err = f.Write(b)
	err = errors.Join(err, f.Sync(), f.Close())
	if err == nil {
		err = os.Rename(tmp, e.statePath())
	}
	if err != nil {
		return fmt.Errorf("local: save state: %w", err)
	}
	return nil
}

// Lost is the start of the reason of a run that a predecessor started and
// whose end it did not see.
const Lost = "lost: the executor restarted"

// recover reads the state a predecessor left. Its ended runs are reported
// as they ended; each run it did not see end is lost, and its processes,
// if any still run, are killed:
//
//   - a run whose processes still ran ran until now: it ends FAILED with
//     the time since it started (it held its GPUs all that time);
//   - a run of which nothing runs ended at a time nobody saw: it ends
//     FAILED with an Elapsed of 0, which charges nothing (a loop that knows
//     its last heartbeat may charge up to that instead).
//
// Neither is a SystemFault: whether the job or the executor was at fault
// is not known.
func (e *Executor) recover() error {
	b, err := os.ReadFile(e.statePath())
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("local: read state: %w", err)
	}
	var s state
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("local: read state %s: %w", e.statePath(), err)
	}
	now := e.clock.Now()
	for _, rec := range s.Runs {
		if rec.Ended == nil {
			o := gaas.Outcome{Status: gaas.StatusFailed, Reason: Lost + "; its end was not seen"}
			if s.BootID != e.boot || e.boot == "" {
				o.Reason = Lost + " after the machine did; its end was not seen"
			} else if len(groupMembers(rec.PID, rec.StartTicks, rec.UID)) > 0 {
				signalGroup(rec.PID, syscall.SIGKILL)
				awaitGroup(rec.PID, 5*time.Second)
				o.Reason = Lost + "; its processes still ran and were killed"
				o.Elapsed = max(now.Sub(rec.Started), 0)
			}
			rec.Ended = &o
		}
		e.runs[rec.ExternalID] = &run{rec: rec, exited: true, done: closedChan}
	}
	return e.save()
}

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()
