package store_test

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/gaas"
	"github.com/gaas-io/gaas/store"
)

// walPages reads a SQLite log's file: how many pages it has room for
// (SQLite writes over the file from its start when it starts the log
// again, so that is the most the log ever held), and the checkpoint
// sequence number of its header, which SQLite counts up each time it
// starts the log again (https://sqlite.org/fileformat2.html#walformat).
func walPages(t *testing.T, path string) (pages int64, restarts uint32) {
	t.Helper()
	b, err := os.ReadFile(path + "-wal")
	require.NoError(t, err)
	if len(b) < 32 {
		return 0, 0
	}
	return int64(len(b)-32) / (4096 + 24), binary.BigEndian.Uint32(b[12:16])
}

// commits counts group commits. Each writes at least three pages to the
// log: a user's balance, a job and a ledger entry, in three tables.
type commits struct{ n atomic.Int64 }

func (c *commits) BatchCommitted(int)                                    { c.n.Add(1) }
func (c *commits) JobSubmitted(gaas.Job)                                 {}
func (c *commits) QuotaExceeded(gaas.Credits)                            {}
func (c *commits) JobMoved(gaas.JobStatus, gaas.JobStatus, gaas.Credits) {}

// Under submissions that never pause, with the writer's own checkpoint
// turned off, the checkpointer copies the log back and has it started
// again, over and over: the log never holds more than half of what was
// written to it. A log never started again would hold all of it.
func TestCheckpointerBoundsLog(t *testing.T) {
	const restarts = 30
	store.SetCheckpoints(t, 5*time.Millisecond, 100, 0)
	path := filepath.Join(t.TempDir(), "gaas.db")
	var committed commits
	db := openStore(t, path, store.Options{Observer: &committed})
	f := newFixture(t, db)
	var users []gaas.User
	for range 8 {
		users = append(users, f.user(t, gaas.MaxCredits))
	}
	_, first := walPages(t, path)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, u := range users {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := db.Jobs.Submit(t.Context(), u.ID, gaas.SubmitRequest{
					Command: "python train.py", GPUType: "NVIDIA A100", EstimatedHours: gaas.Hour / 1000,
				}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	var logged, written int64
	var seq uint32
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
		logged, seq = walPages(t, path)
		written = 3 * committed.n.Load()
		if seq-first >= restarts && written >= 2*logged {
			break
		}
	}
	close(stop)
	wg.Wait()
	t.Logf("the log was started again %d times and held at most %d pages; at least %d were written", seq-first, logged, written)
	assert.GreaterOrEqual(t, seq-first, uint32(restarts), "the log was started again too few times within a minute")
	assert.GreaterOrEqual(t, written, 2*logged, "the log held more than half of what was written, for a minute")
}
