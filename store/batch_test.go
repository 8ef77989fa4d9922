package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/gaas"
	"github.com/gaas-io/gaas/store"
	"github.com/gaas-io/gaas/store/storetest"
)

// Honest submitters and hostile ones submit at once, so that their
// submissions share batches: every honest one gets its job, every hostile
// one that the database refuses fails alone and writes nothing.
func TestBatchIsolatesSubmissions(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		if !b.shared {
			t.Skip("the trigger is made through a second connection")
		}
		dsn := b.dsn(t)
		db := openStore(t, dsn, store.Options{})
		storetest.Poison(t, dsn)
		f := newFixture(t, db)

		const honest, rounds = 8, 25
		hostile := []gaas.SubmitRequest{
			{Command: storetest.PoisonCommand, GPUType: "A100", EstimatedHours: gaas.Hour},
			// PostgreSQL cannot store a NUL in text (SQLSTATE 22021).
			// Validation may refuse it before it gets there; SQLite
			// stores it.
			{Command: "nul\x00byte", GPUType: "A100", EstimatedHours: gaas.Hour},
			{Command: storetest.PoisonCommand, GPUType: "A100", EstimatedHours: gaas.Hour, IdempotencyKey: "poison-key"},
			{Command: "python train.py", GPUType: "nul\x00byte", EstimatedHours: gaas.Hour},
		}
		start := 1000 * gaas.Credit
		users := make([]gaas.User, honest+len(hostile))
		for i := range users {
			users[i] = f.user(t, start)
		}
		var (
			wg       sync.WaitGroup
			mu       sync.Mutex
			failures []string
			accepted = make([]int, len(users)) // jobs made for each user
		)
		begin := make(chan struct{})
		for i, u := range users {
			wg.Go(func() {
				<-begin
				for n := range rounds {
					req := gaas.SubmitRequest{Command: fmt.Sprintf("honest %d", n), GPUType: "A100", EstimatedHours: gaas.Hour}
					if i >= honest {
						req = hostile[i-honest]
					}
					_, err := db.Jobs.Submit(context.Background(), u.ID, req)
					mu.Lock()
					switch {
					case err == nil:
						accepted[i]++
						if req.Command == storetest.PoisonCommand {
							failures = append(failures, "a poisoned job was accepted")
						}
					case i < honest:
						failures = append(failures, fmt.Sprintf("honest submission %d of user %d: %v", n, u.ID, err))
					case errors.Is(err, gaas.ErrUnavailable):
						failures = append(failures, fmt.Sprintf("hostile submission %q failed as if the store were down: %v", req.Command, err))
					}
					mu.Unlock()
				}
			})
		}
		close(begin)
		wg.Wait()
		require.Empty(t, failures)
		for i, u := range users {
			jobs := accepted[i]
			if i >= honest && hostile[i-honest].IdempotencyKey != "" && jobs > 0 {
				jobs = 1 // replays of one job
			}
			assert.Equal(t, start-gaas.Credits(jobs)*gaas.Credit, f.balance(t, u.ID), "the balance of user %d", i)
		}
		for i := range honest {
			assert.Equal(t, rounds, accepted[i])
		}
	})
}

// A batch that cannot commit before its deadline fails as a whole, for
// every submission in it, with gaas.ErrUnavailable and in time; the batches
// after it commit.
func TestBatchDeadline(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	const timeout = 300 * time.Millisecond
	db := openStore(t, dsn, store.Options{BatchTimeout: timeout})
	storetest.Poison(t, dsn) // a slow job takes 5s
	f := newFixture(t, db)
	slow, honest := f.user(t, 10*gaas.Credit), f.user(t, 100*gaas.Credit)

	var (
		wg          sync.WaitGroup
		mu          sync.Mutex
		ok, refused int
		unexpected  []error
	)
	begin := time.Now()
	for i := range 40 {
		wg.Go(func() {
			u, cmd := honest, "python train.py"
			if i%10 == 0 {
				u, cmd = slow, storetest.SlowCommand
			}
			_, err := db.Jobs.Submit(context.Background(), u.ID, gaas.SubmitRequest{Command: cmd, GPUType: "A100", EstimatedHours: gaas.Hour})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil && cmd != storetest.SlowCommand:
				ok++
			case errors.Is(err, gaas.ErrUnavailable):
				refused++
			default:
				unexpected = append(unexpected, fmt.Errorf("%s: %v", cmd, err))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(begin)
	require.Empty(t, unexpected)
	assert.GreaterOrEqual(t, refused, 4, "the slow submissions fail")
	assert.Less(t, elapsed, 4*time.Second, "every answer comes in time, not after the 5s sleep")
	assert.Equal(t, 10*gaas.Credit, f.balance(t, slow.ID))
	assert.Equal(t, 100*gaas.Credit-gaas.Credits(ok)*gaas.Credit, f.balance(t, honest.ID))

	// Once the slow ones are gone, submissions commit again.
	f.submit(t, honest.ID, gaas.Hour)
}

// Two hundred goroutines submit while the store closes: each gets its job
// or ErrClosed, nothing panics, and every job answered is in the database.
func TestCloseWhileSubmitting(t *testing.T) {
	ctx := context.Background()
	forEachBackend(t, func(t *testing.T, b backend) {
		dsn := b.dsn(t)
		db, err := store.Open(ctx, dsn, store.Options{})
		require.NoError(t, err)
		f := newFixture(t, db)
		u := f.user(t, 1000*gaas.Credit)
		req := gaas.SubmitRequest{Command: "python train.py", GPUType: "A100", EstimatedHours: gaas.Hour}

		var (
			wg         sync.WaitGroup
			mu         sync.Mutex
			ok, closed int
			unexpected []error
		)
		begin := make(chan struct{})
		for range 200 {
			wg.Go(func() {
				<-begin
				_, err := db.Jobs.Submit(ctx, u.ID, req)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					ok++
				case errors.Is(err, store.ErrClosed):
					closed++
				default:
					unexpected = append(unexpected, err)
				}
			})
		}
		close(begin)
		time.Sleep(time.Millisecond)
		require.NoError(t, db.Close())
		wg.Wait()
		require.Empty(t, unexpected)
		assert.Equal(t, 200, ok+closed)
		t.Logf("%d submitted, %d refused as closed", ok, closed)

		_, err = db.Jobs.Submit(ctx, u.ID, req)
		assert.ErrorIs(t, err, store.ErrClosed)
		assert.ErrorIs(t, err, gaas.ErrUnavailable)
		_, err = db.Jobs.List(ctx, u.ID, gaas.JobFilter{})
		assert.ErrorIs(t, err, store.ErrClosed)
		_, err = db.Quota.Balance(ctx, u.ID, gaas.BalanceRequest{UserID: u.ID})
		assert.ErrorIs(t, err, store.ErrClosed)
		assert.ErrorIs(t, db.Ping(ctx), store.ErrClosed)
		assert.NoError(t, db.Close(), "closing again")

		if b.shared {
			db := openStore(t, dsn, store.Options{}) // checks the ledger when the test ends
			f := &fixture{db: db, admin: f.admin}
			assert.Equal(t, 1000*gaas.Credit-gaas.Credits(ok)*gaas.Credit, f.balance(t, u.ID))
		}
	})
}

// A submission whose caller has given up before its batch begins is not
// applied, and says so with the context's error.
func TestSubmitCancelledBeforeItsBatch(t *testing.T) {
	forEachStore(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		u := f.user(t, 10*gaas.Credit)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		for range 20 {
			_, err := db.Jobs.Submit(ctx, u.ID, gaas.SubmitRequest{Command: "x", GPUType: "A100", EstimatedHours: gaas.Hour})
			require.ErrorIs(t, err, context.Canceled)
		}
		assert.Equal(t, 10*gaas.Credit, f.balance(t, u.ID))
	})
}
