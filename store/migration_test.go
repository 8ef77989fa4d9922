package store_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"

	"github.com/gaas-io/gaas/gaas"
	"github.com/gaas-io/gaas/store"
)

// oldEntry is a ledger entry as gaas wrote it before accounts (0004).
type oldEntry struct {
	user, actor int64 // actor 0: the system, as "registration"
	job         *int64
	kind        gaas.LedgerKind
	delta       gaas.Hours
	balance     gaas.Hours
}

// oldJob is a job as gaas wrote it before accounts.
type oldJob struct {
	id, user  int64
	estimated gaas.Hours
	actual    *gaas.Hours
	status    gaas.JobStatus
}

// oldStore writes rows as gaas did at migration 0004: a balance of hours
// on each user, and ledger entries keyed by user.
type oldStore struct {
	t        *testing.T
	db       *bun.DB
	balances map[int64]gaas.Hours
	entries  []oldEntry
	jobs     []oldJob
}

func (o *oldStore) exec(q string, args ...any) {
	o.t.Helper()
	_, err := o.db.ExecContext(context.Background(), q, args...)
	require.NoError(o.t, err, q)
}

func (o *oldStore) user(name string, role gaas.Role) int64 {
	o.t.Helper()
	var id int64
	require.NoError(o.t, o.db.NewRaw("INSERT INTO users (username, password_hash, role, balance, created_at) VALUES (?, 'h', ?, 0, '2025-06-01') RETURNING id",
		name, string(role)).Scan(context.Background(), &id))
	return id
}

func (o *oldStore) entry(user, actor int64, job *int64, kind gaas.LedgerKind, delta gaas.Hours) {
	o.t.Helper()
	o.balances[user] += delta
	e := oldEntry{user: user, actor: actor, job: job, kind: kind, delta: delta, balance: o.balances[user]}
	var actorID, system any
	if actor == 0 {
		system = gaas.SystemRegistration
	} else {
		actorID = actor
	}
	o.exec("INSERT INTO ledger (user_id, job_id, actor_id, actor_system, kind, delta, balance, reason, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'old', '2025-06-02')",
		user, job, actorID, system, string(kind), int64(delta), int64(e.balance))
	o.entries = append(o.entries, e)
}

// job submits a job, charged, and moves it to status with its refund as
// the old store did.
func (o *oldStore) job(user, admin int64, est gaas.Hours, status gaas.JobStatus, actual *gaas.Hours) {
	o.t.Helper()
	var id int64
	var act any
	if actual != nil {
		act = int64(*actual)
	}
	require.NoError(o.t, o.db.NewRaw("INSERT INTO jobs (user_id, command, gpu_type, estimated, actual, status, created_at, updated_at)"+
		" VALUES (?, 'python train.py', 'A100', ?, ?, ?, '2025-06-02', '2025-06-02') RETURNING id",
		user, int64(est), act, string(status)).Scan(context.Background(), &id))
	o.entry(user, user, &id, gaas.LedgerCharge, -est)
	refund := gaas.Hours(0)
	switch {
	case status.RefundsAll():
		refund = est
	case actual != nil:
		refund = est - *actual
	}
	if refund > 0 {
		o.entry(user, admin, &id, gaas.LedgerRefund, refund)
	}
	o.jobs = append(o.jobs, oldJob{id: id, user: user, estimated: est, actual: actual, status: status})
}

// A database written before accounts (migration 0004), with jobs in every
// status and their refunds, is carried over by migration 0005 without
// changing one balance: each user's hours become credits at rate 1 in a
// default allocation that every old entry and job is attributed to, and
// Check finds nothing wrong.
func TestMigrationToAllocations(t *testing.T) {
	ctx := context.Background()
	forEachBackend(t, func(t *testing.T, b backend) {
		if !b.shared {
			t.Skip("needs a second connection to the same database")
		}
		dsn, bdb := databaseAt(t, b, "0004")

		o := &oldStore{t: t, db: bdb, balances: map[int64]gaas.Hours{}}
		root := o.user("root", gaas.RoleAdmin)
		ann := o.user("ann", gaas.RoleUser)
		bob := o.user("bob", gaas.RoleUser)
		idle := o.user("idle", gaas.RoleUser) // no entry at all: a balance of 0
		o.entry(ann, 0, nil, gaas.LedgerGrant, 10*gaas.Hour)
		o.entry(bob, 0, nil, gaas.LedgerGrant, 10*gaas.Hour)
		o.job(ann, root, 1000, gaas.StatusPending, nil)
		o.job(ann, root, 500, gaas.StatusApproved, nil)
		o.job(ann, root, 1500, gaas.StatusRunning, nil)
		o.job(ann, root, 1000, gaas.StatusCompleted, hoursPtr(250))
		o.job(ann, root, 500, gaas.StatusFailed, nil)
		o.job(ann, root, 2000, gaas.StatusRejected, nil)
		o.job(ann, root, 300, gaas.StatusCancelled, nil)
		o.job(bob, root, 3000, gaas.StatusCompleted, hoursPtr(3000))
		o.job(bob, root, 1000, gaas.StatusFailed, hoursPtr(0))
		o.entry(ann, root, nil, gaas.LedgerSet, -1250)
		o.entry(ann, root, nil, gaas.LedgerGrant, 2*gaas.Hour)
		o.entry(bob, root, nil, gaas.LedgerSet, -o.balances[bob])
		for id, h := range o.balances {
			o.exec("UPDATE users SET balance = ? WHERE id = ?", int64(h), id)
		}
		require.Equal(t, map[int64]gaas.Hours{ann: 7000, bob: 0}, o.balances)

		db, err := store.Open(ctx, dsn, store.Options{})
		require.NoError(t, err)
		defer db.Close()
		requireChecked(t, db)
		f := &fixture{db: db}
		f.admin, err = db.Accounts.UserByID(ctx, root)
		require.NoError(t, err)

		for _, id := range []int64{root, ann, bob, idle} {
			u, err := db.Users.User(ctx, root, gaas.GetUserRequest{UserID: id})
			require.NoError(t, err)
			assert.Equal(t, gaas.CreditsOf(o.balances[id]), u.Balance, "user %d", id)
			allocs := f.allocations(t, id)
			require.Len(t, allocs, 1, "user %d", id)
			d := allocs[0]
			assert.True(t, d.Default)
			assert.Equal(t, u.AccountID, d.AccountID)
			assert.Nil(t, d.GPUTypes)
			assert.Nil(t, d.ExpiresAt)
			assert.Equal(t, gaas.CreditsOf(o.balances[id]), d.Remaining)
			var given gaas.Hours
			var old []oldEntry
			for _, e := range o.entries {
				if e.user == id {
					old = append(old, e)
					if e.kind == gaas.LedgerGrant || e.kind == gaas.LedgerSet {
						given += e.delta
					}
				}
			}
			assert.Equal(t, gaas.CreditsOf(given), d.Amount, "the grants and sets of user %d", id)

			// Every old entry is there, on the default allocation, and the
			// ledger still sums to the balance.
			led := f.ledger(t, id)
			require.Len(t, led, len(old), "user %d", id)
			var sum gaas.Credits
			for i, e := range led {
				sum += e.Delta
				assert.Equal(t, u.AccountID, e.AccountID)
				assert.Equal(t, d.ID, e.AllocationID)
				assert.Equal(t, id, e.UserID)
				assert.Equal(t, old[i].kind, e.Kind)
				assert.Equal(t, gaas.CreditsOf(old[i].delta), e.Delta)
				assert.Equal(t, gaas.CreditsOf(old[i].balance), e.Balance)
				assert.Equal(t, e.Balance, e.Remaining, "the default allocation is all the account holds")
				assert.Equal(t, sum, e.Balance)
				assert.Equal(t, old[i].job, e.JobID)
				if old[i].actor == 0 {
					assert.Equal(t, gaas.SystemRegistration, e.ActorSystem)
				} else {
					assert.Equal(t, old[i].actor, e.ActorID)
				}
			}
			assert.Equal(t, u.Balance, sum)

			for _, oj := range o.jobs {
				if oj.user != id {
					continue
				}
				j, err := db.Jobs.Get(ctx, root, gaas.GetJobRequest{JobID: oj.id})
				require.NoError(t, err)
				assert.Equal(t, oj.status, j.Status)
				assert.Equal(t, oj.estimated, j.EstimatedHours)
				assert.Equal(t, oj.actual, j.ActualHours)
				assert.Equal(t, u.AccountID, j.AccountID)
				assert.Equal(t, 1, j.GPUCount)
				assert.Equal(t, gaas.RateOne, j.Rate)
				assert.Equal(t, gaas.CreditsOf(oj.estimated), j.Cost)
				assert.Equal(t, []gaas.Draw{{AllocationID: d.ID, Amount: gaas.CreditsOf(oj.estimated)}}, j.Draws)
			}
		}

		// The store goes on from there: old jobs settle into the default
		// allocation, new ones draw from it.
		_, err = db.Jobs.Transition(ctx, root, gaas.TransitionRequest{JobID: o.jobs[0].id, To: gaas.StatusRejected})
		require.NoError(t, err)
		_, err = db.Jobs.Transition(ctx, root, gaas.TransitionRequest{JobID: o.jobs[2].id, To: gaas.StatusCompleted, ActualHours: hoursPtr(500)})
		require.NoError(t, err)
		assert.Equal(t, gaas.Credits(7000+1000+1000), f.balance(t, ann))
		j := f.submit(t, ann, gaas.Hour)
		assert.Len(t, j.Draws, 1)
		assert.Equal(t, gaas.Credits(8000), f.balance(t, ann))
		requireChecked(t, db)
	})
}
