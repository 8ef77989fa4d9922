package store

import (
	"context"
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

// maxBatch bounds the submissions applied in one transaction.
const maxBatch = 256

type submitCall struct {
	caller int64
	req    gaas.SubmitRequest
	done   chan submitResult
}

type submitResult struct {
	job   jobRow
	fresh bool // a new job, not the replay of an earlier one
	err   error
}

// batcher applies queued submissions in batches, one transaction each.
type batcher struct {
	db    *DB
	calls chan *submitCall
	done  chan struct{}
}

// newBatcher starts workers goroutines that apply batches. SQLite has one
// writer, so one worker; PostgreSQL runs transactions side by side, and a
// worker spends most of its time waiting on round trips, so several.
func newBatcher(db *DB, workers int) *batcher {
	b := &batcher{db: db, calls: make(chan *submitCall, maxBatch), done: make(chan struct{})}
	var running sync.WaitGroup
	for range workers {
		running.Go(b.run)
	}
	go func() { running.Wait(); close(b.done) }()
	return b
}

func (b *batcher) close() {
	close(b.calls)
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

// perCall reports an error that belongs to one submission, which wrote
// nothing, rather than to the whole transaction.
func perCall(err error) bool {
	return errors.Is(err, gaas.ErrQuotaExceeded) || errors.Is(err, gaas.ErrUnauthorized) || errors.Is(err, errKeyReused)
}

func (b *batcher) apply(batch []*submitCall) {
	// On PostgreSQL a batch locks several users' rows; taking them in one
	// order keeps two batches, of this process or another, from deadlocking. The sort is
	// stable, so one user's submissions keep their order.
	order := slices.Clone(batch)
	if b.db.postgres {
		slices.SortStableFunc(order, func(x, y *submitCall) int { return int(x.caller - y.caller) })
	}
	results := make([]submitResult, len(order))
	// A batch on PostgreSQL may wait on the network, so it has a deadline.
	// On SQLite a statement waits only for the file's lock, up to the busy
	// timeout; and the pure-Go driver starts a goroutine to watch every
	// statement run under a context that can be cancelled, three per
	// submission here. So a SQLite batch runs under one that cannot.
	ctx := context.Background()
	if b.db.postgres {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
	}
	err := b.db.tx(ctx, func(tx bun.Tx) error {
		hot := b.db.hot.in(tx.Tx)
		for i, c := range order {
			j, fresh, err := b.db.Jobs.submit(ctx, tx, hot, c.caller, c.req)
			if err != nil && !perCall(err) {
				return fmt.Errorf("submission %d of a batch of %d: %w", i+1, len(order), err)
			}
			results[i] = submitResult{job: j, fresh: fresh, err: err}
		}
		return nil
	})
	if err == nil {
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

// observe tells the store's observer what a committed batch did.
func (b *batcher) observe(order []*submitCall, results []submitResult) {
	o := b.db.observer
	o.BatchCommitted(len(order))
	for i, r := range results {
		switch {
		case r.fresh:
			o.JobSubmitted(r.job.job())
		case errors.Is(r.err, gaas.ErrQuotaExceeded):
			o.QuotaExceeded(order[i].req.EstimatedHours)
		}
	}
}

// submitBatched queues a submission for the next group commit and waits
// for its answer.
func (b *batcher) submit(ctx context.Context, caller int64, req gaas.SubmitRequest) (jobRow, error) {
	c := &submitCall{caller: caller, req: req, done: make(chan submitResult, 1)}
	select {
	case b.calls <- c:
	case <-ctx.Done():
		return jobRow{}, ctx.Err()
	}
	// Once queued, the submission is applied whatever the caller does; as
	// with any request whose answer is lost, a retry with the same
	// idempotency key finds it.
	r := <-c.done
	return r.job, r.err
}
