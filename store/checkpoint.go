package store

import (
	"context"
	"database/sql"
	"time"
)

// Checkpoints. In WAL mode a commit appends the pages it changed to the
// log, and a checkpoint copies them back into the database file, waiting
// for two fsyncs: the log's, then the file's. SQLite runs one, unless told
// otherwise, in the connection whose commit takes the log past
// wal_autocheckpoint pages: here the one writer, and so the batch whose
// commit it was, and every submission queued behind it, waited for a
// checkpoint of the whole log. A runtime trace of gaasd under load showed
// that as the tail of POST /jobs: one batch in a thousand took 130 to 160
// ms, nearly all of it the fsync of the log, 40 MB that no commit had
// synced (synchronous = NORMAL), before it could be copied back (see
// BENCHMARKS.md).
//
// So a SQLite file has a checkpointer: a connection of its own that copies
// the log back every checkpointEvery, PASSIVE, which takes no lock that
// the writer waits for, while the writer goes on committing. What it
// cannot do alone is start the log again from its beginning: SQLite does
// that at the start of a write that finds the whole log copied back, and a
// stream of commits, each adding pages while the copy runs, never lets that
// happen, so the log would grow without end. So once the log holds
// checkpointPages, the checkpointer takes the writer's connection between
// two transactions, copies back the little written since its last pass,
// and gives the connection back; the next write starts the log again. The
// writer waits only for that last copy, a few milliseconds.
//
// A checkpoint syncs as the connection that runs it is set to, and the
// checkpointer's connection has the writer's pragmas (synchronous =
// NORMAL), so what survives a crash is unchanged. The writer keeps its own
// automatic checkpoint as a backstop, at a size the log reaches only if the
// checkpointer fails or falls behind.

// checkpointEvery is how often the checkpointer copies the log back.
var checkpointEvery = 100 * time.Millisecond

// checkpointPages is the log's size, in pages, past which the checkpointer
// has it started again: about 40 MiB, as the writer's own checkpoints kept
// it before.
var checkpointPages = 10_000

// backstopPages is the writer's wal_autocheckpoint: only a log that the
// checkpointer did not start again grows to it. 0 turns it off.
var backstopPages = 4 * checkpointPages

// checkpointer copies a SQLite file's log back into it, off the writer's
// path; see above.
type checkpointer struct {
	conn   *sql.DB // a connection of its own
	writer *sql.DB // the writer's pool, of one connection
	every  time.Duration
	pages  int
	stop   context.CancelFunc
	done   chan struct{}
}

// startCheckpointer starts copying back the log of the file that conn
// opens, taking writer's connection when the log is to be started again.
func startCheckpointer(conn, writer *sql.DB) *checkpointer {
	conn.SetMaxOpenConns(1)
	conn.SetMaxIdleConns(1)
	conn.SetConnMaxLifetime(0)
	conn.SetConnMaxIdleTime(0)
	ctx, stop := context.WithCancel(context.Background())
	c := &checkpointer{conn: conn, writer: writer, every: checkpointEvery, pages: checkpointPages, stop: stop, done: make(chan struct{})}
	go c.run(ctx)
	return c
}

// close stops the checkpointer and closes its connection.
func (c *checkpointer) close() error {
	c.stop()
	<-c.done
	return c.conn.Close()
}

func (c *checkpointer) run(ctx context.Context) {
	defer close(c.done)
	tick := time.NewTicker(c.every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		// A pass that fails (a full disk, say) is tried again at the next
		// tick; meanwhile the log grows, and the writer's backstop bounds it.
		logged, err := c.pass(ctx)
		if err != nil || logged < c.pages {
			continue
		}
		c.restart(ctx, logged)
	}
}

// pass copies back what the log holds, and returns how many pages it held.
func (c *checkpointer) pass(ctx context.Context) (logged int, err error) {
	var busy, copied int
	err = c.conn.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &logged, &copied)
	return logged, err
}

// restart holds the writer's connection, so that nothing is committed,
// while a last pass copies back the rest of the log: the next write then
// finds it all copied back and starts it again. A reader in the middle of
// a transaction can keep that from happening; the next pass tries again.
//
// The writer waits for that last pass and its two fsyncs, which take the
// longer the more there is to write. Each pass leaves behind what was
// committed while it ran, so a few passes run back to back first, each
// leaving less, until one leaves under catchUpPages.
func (c *checkpointer) restart(ctx context.Context, logged int) {
	for range catchUpPasses {
		next, err := c.pass(ctx)
		if err != nil {
			return
		}
		added := next - logged
		logged = next
		if added < catchUpPages {
			break
		}
	}
	w, err := c.writer.Conn(ctx)
	if err != nil {
		return
	}
	defer w.Close()
	c.pass(ctx)
}

// At most catchUpPasses passes run before the last one, and a pass that
// leaves under catchUpPages (400 KiB) is the last.
const (
	catchUpPasses = 3
	catchUpPages  = 100
)
