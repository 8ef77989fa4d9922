package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/uptrace/bun"

	"github.com/gaas-io/gaas/gaas"
)

// Group commit. A transaction per submission spends most of its time
// beginning and committing; submissions that arrive together are instead
// queued to one goroutine, applied in one transaction (each with its own
// conditional charge, job and ledger rows, so that one that lacks quota
// fails alone and writes nothing), committed once, and only then answered.
//
// One submission must never fail another. A refusal (too few hours, a key
// reused, an unknown caller) is decided in Go after statements that
// succeeded, so the transaction goes on. A statement that fails, for
// whatever reason the database has (a byte PostgreSQL will not store, a
// constraint, a trigger), may leave the transaction unusable: PostgreSQL
// aborts it. Then the batch is rolled back and run again with each
// submission under a savepoint of its own, so that the failed one is undone
// and answered alone while the others commit. Savepoints are kept off the
// first run because they cost two statements a submission; see
// BENCHMARKS.md. Which errors belong to one submission is thus decided by
// where they happen, not by a list of kinds.
//
// Anything else that fails the transaction (the connection, the commit, the
// deadline) fails every submission in it, with gaas.ErrUnavailable: they
// may all be tried again.

// maxBatch bounds the submissions applied in one transaction.
const maxBatch = 256

type submitCall struct {
	ctx      context.Context
	deadline time.Time // when the caller must have its answer
	caller   int64
	req      gaas.SubmitRequest
	done     chan submitResult
}

// submitResult is a submission's answer: its job, or in err why it was
// refused or failed.
type submitResult struct {
	job   jobRow
	fresh bool // a new job, not the replay of an earlier one
	err   error
}

// batcher applies queued submissions in batches, one transaction each.
type batcher struct {
	db      *DB
	timeout time.Duration // from a call to Submit to its answer

	// mu is held for reading while a call is queued, and for writing by
	// close, so that no call is sent on calls once it is closed.
	mu     sync.RWMutex
	closed bool
	calls  chan *submitCall
	done   chan struct{}
}

// newBatcher starts workers goroutines that apply batches. SQLite has one
// writer, so one worker; PostgreSQL runs transactions side by side, and a
// worker spends most of its time waiting on round trips, so several.
func newBatcher(db *DB, workers int, timeout time.Duration) *batcher {
	b := &batcher{db: db, timeout: timeout, calls: make(chan *submitCall, maxBatch), done: make(chan struct{})}
	var running sync.WaitGroup
	for range workers {
		running.Go(b.run)
	}
	go func() { running.Wait(); close(b.done) }()
	return b
}

// close refuses new submissions with ErrClosed, and returns once every
// submission already queued has been applied and answered.
func (b *batcher) close() {
	b.mu.Lock()
	if !b.closed {
		b.closed = true
		close(b.calls)
	}
	b.mu.Unlock()
	<-b.done
}

func (b *batcher) run() {
	batch := make([]*submitCall, 0, maxBatch)
	wait := time.NewTimer(time.Hour)
	wait.Stop()
	target := 0 // the size of recent batches, decaying
	for first := range b.calls {
		batch = b.drain(append(batch[:0], first))
		// Under load, a batch committed as soon as its first submission
		// arrives holds few: the others are still on their way (decoding,
		// authenticating), and each pays a commit of its own. So when
		// recent batches were larger than what has queued, wait a moment
		// for as many, at most maxGather. A lone submitter never waits, and
		// after a burst the wait fades within a few batches.
		if len(batch) < target {
			wait.Reset(maxGather)
		gather:
			for len(batch) < target {
				select {
				case c, ok := <-b.calls:
					if !ok {
						break gather
					}
					batch = append(batch, c)
				case <-wait.C:
					break gather
				}
			}
			wait.Stop()
		}
		target = max(len(batch), target-target/8)
		b.apply(batch)
	}
}

// maxGather bounds how long a batch waits for latecomers: a fraction of
// what committing a batch takes.
const maxGather = 200 * time.Microsecond

// drain appends what is queued, without waiting, up to maxBatch.
func (b *batcher) drain(batch []*submitCall) []*submitCall {
	for len(batch) < maxBatch {
		select {
		case c, ok := <-b.calls:
			if !ok {
				return batch
			}
			batch = append(batch, c)
		default:
			return batch
		}
	}
	return batch
}

func (b *batcher) apply(batch []*submitCall) {
	// A submission whose caller gave up, or whose time ran out, while it
	// was queued is answered without being applied. The batch must end
	// before the earliest deadline of those that remain.
	now := time.Now()
	deadline := now.Add(b.timeout)
	order := make([]*submitCall, 0, len(batch))
	for _, c := range batch {
		switch {
		case c.ctx.Err() != nil:
			c.done <- submitResult{err: c.ctx.Err()}
		case !now.Before(c.deadline):
			c.done <- submitResult{err: fmt.Errorf("%w: the submission waited %s for its turn", gaas.ErrUnavailable, b.timeout)}
		default:
			order = append(order, c)
			if c.deadline.Before(deadline) {
				deadline = c.deadline
			}
		}
	}
	if len(order) == 0 {
		return
	}
	// On PostgreSQL a batch locks several users' rows; taking them in one
	// order keeps two batches, of this process or another, from deadlocking. The sort is
	// stable, so one user's submissions keep their order.
	if b.db.postgres {
		slices.SortStableFunc(order, func(x, y *submitCall) int { return int(x.caller - y.caller) })
	}
	// A batch on PostgreSQL may wait on the network, so its context has the
	// deadline. On SQLite a statement waits only for the file's lock, up to
	// the busy timeout; and the pure-Go driver starts a goroutine to watch
	// every statement run under a context that can be cancelled, three per
	// submission here. So a SQLite batch runs under one that cannot, and
	// checks the deadline between submissions.
	ctx := context.Background()
	if b.db.postgres {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline)
		defer cancel()
	}
	results := make([]submitResult, len(order))
	failed, err := b.commit(ctx, deadline, order, results, false)
	if err != nil && failed >= 0 {
		_, err = b.commit(ctx, deadline, order, results, true)
	}
	if err != nil {
		err = fmt.Errorf("a batch of %d submissions failed: %w", len(order), err)
		if !errors.Is(err, gaas.ErrUnavailable) {
			err = unavailable(err)
		}
	} else {
		b.observe(order, results)
	}
	for i, c := range order {
		if err != nil {
			c.done <- submitResult{err: err}
		} else {
			c.done <- results[i]
		}
	}
}

// commit applies the submissions of order in one transaction and puts
// their answers in results. When isolate is false, a submission that fails
// in the database fails the transaction, and failed is its index (or -1
// if something else did); when it is true, each runs under a savepoint and
// fails alone.
func (b *batcher) commit(ctx context.Context, deadline time.Time, order []*submitCall, results []submitResult, isolate bool) (failed int, err error) {
	err = b.db.tx(ctx, func(tx bun.Tx) error {
		failed = -1
		hot := b.db.hot.in(tx)
		if b.db.postgres {
			if err := b.db.Jobs.lockBatch(ctx, tx, hot, order); err != nil {
				return err
			}
		}
		for i, c := range order {
			if time.Now().After(deadline) {
				return fmt.Errorf("after %d of its submissions: %w", i, context.DeadlineExceeded)
			}
			if isolate {
				r, err := savepoint(ctx, tx.Tx, func() (submitResult, error) {
					return b.db.Jobs.submit(ctx, tx, hot, c.caller, c.req)
				})
				if err != nil {
					return err
				}
				results[i] = r
				continue
			}
			r, err := b.db.Jobs.submit(ctx, tx, hot, c.caller, c.req)
			if err != nil {
				failed = i
				return fmt.Errorf("submission %d: %w", i+1, err)
			}
			results[i] = r
		}
		return nil
	})
	return failed, err
}

// savepoint runs fn under a savepoint. When fn fails, what it wrote is
// undone and its error becomes its answer; savepoint itself fails only
// when the transaction cannot go on.
func savepoint(ctx context.Context, tx *sql.Tx, fn func() (submitResult, error)) (submitResult, error) {
	if _, err := tx.ExecContext(ctx, "SAVEPOINT submission"); err != nil {
		return submitResult{}, err
	}
	r, err := fn()
	if err != nil {
		if _, rerr := tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT submission"); rerr != nil {
			return submitResult{}, fmt.Errorf("roll back after %w: %w", err, rerr)
		}
		r = submitResult{err: err}
	}
	if _, err := tx.ExecContext(ctx, "RELEASE SAVEPOINT submission"); err != nil {
		return submitResult{}, err
	}
	return r, nil
}

// observe tells the store's observer what a committed batch did.
func (b *batcher) observe(order []*submitCall, results []submitResult) {
	o := b.db.observer
	o.BatchCommitted(len(order))
	var short *gaas.QuotaError
	for _, r := range results {
		switch {
		case r.fresh:
			o.JobSubmitted(r.job.job())
		case errors.As(r.err, &short):
			o.QuotaExceeded(short.Asked)
		}
	}
}

// submit queues a submission for the next group commit and waits for its
// answer, which comes within the batcher's timeout. It returns ctx's error
// only when the submission was not applied: once its batch has begun it is
// carried through, whatever becomes of ctx.
func (b *batcher) submit(ctx context.Context, caller int64, req gaas.SubmitRequest) (jobRow, error) {
	c := &submitCall{ctx: ctx, deadline: time.Now().Add(b.timeout), caller: caller, req: req, done: make(chan submitResult, 1)}
	if err := b.queue(c); err != nil {
		return jobRow{}, err
	}
	r := <-c.done
	return r.job, r.err
}

func (b *batcher) queue(c *submitCall) error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return ErrClosed
	}
	select {
	case b.calls <- c:
		return nil
	default:
	}
	wait := time.NewTimer(time.Until(c.deadline))
	defer wait.Stop()
	select {
	case b.calls <- c:
		return nil
	case <-c.ctx.Done():
		return c.ctx.Err()
	case <-wait.C:
		return fmt.Errorf("%w: the queue of submissions stayed full for %s", gaas.ErrUnavailable, b.timeout)
	}
}
