package store_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/gaas"
	"github.com/gaas-io/gaas/store"
	"github.com/gaas-io/gaas/store/storetest"
)

// The randomized model test drives the real store with random operations
// from many goroutines and checks every answer against a plain in-memory
// model of what must be true.
//
// Each worker owns a few users and alone acts on their balances, so the
// model can predict every answer exactly while the workers run at once;
// some operations race several goroutines against one user or one job on
// purpose (idempotent retries, concurrent rejections), and the model
// accepts exactly the outcomes that are allowed. Every worker's sequence of
// operations comes from the seed: GAAS_SEED=... reproduces a run. The
// number of operations a worker makes is GAAS_MODEL_OPS (default 150;
// give it 20000 for a long run).
func TestModel(t *testing.T) {
	seed := storetest.Seed(t)
	ops := 150
	if s := os.Getenv("GAAS_MODEL_OPS"); s != "" {
		var err error
		ops, err = strconv.Atoi(s)
		require.NoError(t, err, "GAAS_MODEL_OPS")
	}
	t.Logf("GAAS_MODEL_OPS=%d", ops)
	forEachStore(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		const workers, usersEach = 6, 3
		var wg sync.WaitGroup
		for w := range workers {
			m := &modelWorker{t: workerT{t}, db: db, root: f.admin.ID, rnd: rand.New(rand.NewPCG(seed, uint64(w))), name: fmt.Sprintf("w%d", w)}
			for range usersEach {
				m.addUser(f)
			}
			wg.Go(func() {
				i := 0
				defer func() {
					if t.Failed() {
						t.Errorf("GAAS_SEED=%d: worker %s stopped at operation %d", seed, m.name, i)
					}
				}()
				for ; i < ops; i++ {
					if m.step(i); t.Failed() {
						return
					}
				}
				m.verifyAll()
			})
		}
		wg.Wait()
		assertInvariants(t, db)
	})
}

type modelJob struct {
	id       int64
	status   gaas.JobStatus
	estimate gaas.Hours
	actual   *gaas.Hours
	req      gaas.SubmitRequest
}

type modelUser struct {
	id      int64
	role    gaas.Role
	balance gaas.Credits
	jobs    []*modelJob
	keys    map[string]*modelJob
}

// workerT is the test as a worker goroutine sees it. require's checks end
// in FailNow, which the testing package allows only on the test's own
// goroutine; this one marks the test failed and ends the worker's
// goroutine alone, whose deferred report names the operation.
type workerT struct{ *testing.T }

func (w workerT) FailNow() {
	w.Fail()
	runtime.Goexit()
}

type modelWorker struct {
	t     workerT
	db    *store.DB
	root  int64
	rnd   *rand.Rand
	name  string
	users []*modelUser
}

var modelUserSeq sync.Map

func (m *modelWorker) addUser(f *fixture) {
	n, _ := modelUserSeq.LoadOrStore(m.name, new(int))
	*(n.(*int))++
	u, err := m.db.Accounts.CreateUser(context.Background(), fmt.Sprintf("%s-u%d", m.name, *(n.(*int))), "h", gaas.RoleUser)
	require.NoError(m.t, err)
	m.users = append(m.users, &modelUser{id: u.ID, role: gaas.RoleUser, balance: u.Balance, keys: map[string]*modelJob{}})
}

func (m *modelWorker) hours(max gaas.Hours) gaas.Hours {
	return gaas.Hours(m.rnd.Int64N(int64(max))) + 1
}

func (m *modelWorker) pick() *modelUser { return m.users[m.rnd.IntN(len(m.users))] }

// step runs one random operation and checks its answer.
func (m *modelWorker) step(i int) {
	ctx := context.Background()
	u := m.pick()
	switch op := m.rnd.IntN(100); {
	case op < 30:
		m.submit(u)
	case op < 35:
		m.racingRetries(u)
	case op < 60:
		m.transition(u)
	case op < 65:
		m.racingEnd(u)
	case op < 72:
		m.cancel(u)
	case op < 80:
		delta := gaas.Credits(m.hours(5*gaas.Hour) - 2*gaas.Hour)
		if delta == 0 {
			delta = 1
		}
		got, err := m.db.Quota.Grant(ctx, m.root, gaas.GrantRequest{UserID: u.id, Delta: delta, Reason: "model grant"})
		if u.balance+delta < 0 {
			var qe *gaas.QuotaError
			require.ErrorAs(m.t, err, &qe)
			require.Equal(m.t, u.balance, qe.Remaining)
			return
		}
		require.NoError(m.t, err)
		u.balance += delta
		require.Equal(m.t, u.balance, got.Balance)
	case op < 84:
		b := gaas.Credits(m.hours(8 * gaas.Hour))
		got, err := m.db.Quota.Set(ctx, m.root, gaas.SetBalanceRequest{UserID: u.id, Balance: b, Reason: "model set"})
		require.NoError(m.t, err)
		u.balance = b
		require.Equal(m.t, b, got.Balance)
	case op < 88:
		role := gaas.RoleAdmin
		if u.role == gaas.RoleAdmin {
			role = gaas.RoleUser
		}
		got, err := m.db.Users.SetRole(ctx, m.root, gaas.SetRoleRequest{UserID: u.id, Role: role})
		require.NoError(m.t, err)
		u.role = role
		require.Equal(m.t, role, got.Role)
	case op < 92:
		// Anyone but an admin is refused a transition, whoever's job it is.
		if len(u.jobs) == 0 || u.role == gaas.RoleAdmin {
			return
		}
		j := u.jobs[m.rnd.IntN(len(u.jobs))]
		_, err := m.db.Jobs.Transition(ctx, u.id, gaas.TransitionRequest{JobID: j.id, To: gaas.StatusApproved})
		require.ErrorIs(m.t, err, gaas.ErrForbidden)
	default:
		m.verify(u)
	}
	if i%25 == 0 {
		m.verify(u)
	}
}

func (m *modelWorker) request(u *modelUser) gaas.SubmitRequest {
	req := gaas.SubmitRequest{Command: fmt.Sprintf("train %d", m.rnd.IntN(4)), GPUType: "A100", EstimatedHours: m.hours(3 * gaas.Hour)}
	if m.rnd.IntN(10) == 0 {
		req.EstimatedHours = -req.EstimatedHours // invalid
	}
	if m.rnd.IntN(3) == 0 {
		req.IdempotencyKey = fmt.Sprintf("k%d", m.rnd.IntN(8)) // often a key used before
	}
	return req
}

func (m *modelWorker) submit(u *modelUser) {
	req := m.request(u)
	got, err := m.db.Jobs.Submit(context.Background(), u.id, req)
	m.expectSubmit(u, req, got, err)
}

// expectSubmit checks one submission's answer and applies it to the model.
func (m *modelWorker) expectSubmit(u *modelUser, req gaas.SubmitRequest, got gaas.Job, err error) {
	t := m.t
	if req.EstimatedHours <= 0 {
		require.ErrorIs(t, err, gaas.ErrInvalid)
		return
	}
	if first, ok := u.keys[req.IdempotencyKey]; ok && req.IdempotencyKey != "" {
		if first.req.Command == req.Command && first.req.GPUType == req.GPUType && first.req.EstimatedHours == req.EstimatedHours {
			require.NoError(t, err)
			require.Equal(t, first.id, got.ID, "a retry returns the first job")
			require.Equal(t, first.status, got.Status)
		} else {
			require.ErrorIs(t, err, gaas.ErrConflict)
		}
		return
	}
	if gaas.Credits(req.EstimatedHours) > u.balance {
		var qe *gaas.QuotaError
		require.ErrorAs(t, err, &qe)
		require.Equal(t, gaas.QuotaError{Asked: gaas.Credits(req.EstimatedHours), Remaining: u.balance, GPUType: req.GPUType}, *qe)
		return
	}
	require.NoError(t, err)
	require.Equal(t, gaas.StatusPending, got.Status)
	j := &modelJob{id: got.ID, status: gaas.StatusPending, estimate: req.EstimatedHours, req: req}
	u.jobs = append(u.jobs, j)
	if req.IdempotencyKey != "" {
		u.keys[req.IdempotencyKey] = j
	}
	u.balance -= gaas.Credits(req.EstimatedHours)
}

// racingRetries sends one new idempotent request from four goroutines at
// once: one job, one charge, or four refusals.
func (m *modelWorker) racingRetries(u *modelUser) {
	req := gaas.SubmitRequest{Command: "race", GPUType: "H100", EstimatedHours: m.hours(2 * gaas.Hour),
		IdempotencyKey: fmt.Sprintf("race-%d", m.rnd.Int64())}
	jobs, errs := make([]gaas.Job, 4), make([]error, 4)
	var wg sync.WaitGroup
	for i := range jobs {
		wg.Go(func() { jobs[i], errs[i] = m.db.Jobs.Submit(context.Background(), u.id, req) })
	}
	wg.Wait()
	m.expectSubmit(u, req, jobs[0], errs[0])
	for i := 1; i < 4; i++ {
		if errs[0] == nil {
			require.NoError(m.t, errs[i])
			require.Equal(m.t, jobs[0].ID, jobs[i].ID)
		} else {
			require.ErrorIs(m.t, errs[i], gaas.ErrQuotaExceeded)
		}
	}
}

// applyMove predicts a transition of j to `to` with actual hours; it
// returns the error class expected, and applies a success to the model.
func (m *modelWorker) applyMove(u *modelUser, j *modelJob, to gaas.JobStatus, actual *gaas.Hours) error {
	switch {
	case !to.Valid():
		return gaas.ErrInvalid
	case actual != nil && (!to.TakesActualHours() || *actual < 0):
		return gaas.ErrInvalid
	case j.status == to:
		return nil
	case !j.status.CanMove(to):
		return gaas.ErrInvalidTransition
	case actual != nil && *actual > j.estimate:
		return gaas.ErrInvalid
	}
	j.status = to
	switch {
	case to.RefundsAll():
		u.balance += gaas.Credits(j.estimate)
	case actual != nil:
		a := *actual
		j.actual = &a
		u.balance += gaas.Credits(j.estimate - a)
	}
	return nil
}

func (m *modelWorker) transition(u *modelUser) {
	if len(u.jobs) == 0 {
		return
	}
	j := u.jobs[m.rnd.IntN(len(u.jobs))]
	var to gaas.JobStatus
	if m.rnd.IntN(12) == 0 {
		to = "DONE"
	} else if allowed := j.status.Next(); len(allowed) > 0 && m.rnd.IntN(4) > 0 {
		to = allowed[m.rnd.IntN(len(allowed))]
	} else {
		to = gaas.Statuses()[m.rnd.IntN(len(gaas.Statuses()))]
	}
	var actual *gaas.Hours
	if to.TakesActualHours() && m.rnd.IntN(2) == 0 {
		a := gaas.Hours(m.rnd.Int64N(int64(j.estimate) + 2))
		actual = &a
	}
	caller := m.root
	for _, other := range m.users {
		if other.role == gaas.RoleAdmin && m.rnd.IntN(2) == 0 {
			caller = other.id // an admin of this worker's, promoted earlier
		}
	}
	got, err := m.db.Jobs.Transition(context.Background(), caller, gaas.TransitionRequest{JobID: j.id, To: to, ActualHours: actual})
	if want := m.applyMove(u, j, to, actual); want != nil {
		require.ErrorIs(m.t, err, want, "%s -> %s (actual %v)", j.status, to, actual)
		return
	}
	require.NoError(m.t, err)
	require.Equal(m.t, j.status, got.Status)
}

// racingEnd rejects and cancels one PENDING job from four goroutines at
// once: it ends once, and is refunded once.
func (m *modelWorker) racingEnd(u *modelUser) {
	var j *modelJob
	for _, c := range u.jobs {
		if c.status == gaas.StatusPending {
			j = c
		}
	}
	if j == nil {
		return
	}
	errs := make([]error, 4)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Go(func() {
			if i%2 == 0 {
				_, errs[i] = m.db.Jobs.Transition(context.Background(), m.root, gaas.TransitionRequest{JobID: j.id, To: gaas.StatusRejected})
			} else {
				_, errs[i] = m.db.Jobs.Cancel(context.Background(), u.id, gaas.CancelRequest{JobID: j.id})
			}
		})
	}
	wg.Wait()
	got, err := m.db.Jobs.Get(context.Background(), u.id, gaas.GetJobRequest{JobID: j.id})
	require.NoError(m.t, err)
	require.Contains(m.t, []gaas.JobStatus{gaas.StatusRejected, gaas.StatusCancelled}, got.Status)
	for _, err := range errs {
		if err != nil {
			require.ErrorIs(m.t, err, gaas.ErrInvalidTransition, "only the loser of the race may fail")
		}
	}
	j.status = got.Status
	u.balance += gaas.Credits(j.estimate)
}

func (m *modelWorker) cancel(u *modelUser) {
	if len(u.jobs) == 0 {
		return
	}
	j := u.jobs[m.rnd.IntN(len(u.jobs))]
	got, err := m.db.Jobs.Cancel(context.Background(), u.id, gaas.CancelRequest{JobID: j.id})
	if want := m.applyMove(u, j, gaas.StatusCancelled, nil); want != nil {
		require.True(m.t, errors.Is(err, want), "cancel from %s: %v", j.status, err)
		return
	}
	require.NoError(m.t, err)
	require.Equal(m.t, gaas.StatusCancelled, got.Status)
}

// verify compares what the store says of one user with the model.
func (m *modelWorker) verify(u *modelUser) {
	ctx := context.Background()
	bal, err := m.db.Quota.Balance(ctx, u.id, gaas.BalanceRequest{UserID: u.id})
	require.NoError(m.t, err)
	require.Equal(m.t, u.balance, bal, "balance of user %d", u.id)
	page, err := m.db.Jobs.List(ctx, u.id, gaas.JobFilter{UserID: u.id, Page: gaas.Page{Limit: gaas.MaxLimit}})
	require.NoError(m.t, err)
	if len(u.jobs) > gaas.MaxLimit {
		return
	}
	require.Len(m.t, page.Items, len(u.jobs))
	want := slices.Clone(u.jobs)
	slices.Reverse(want) // newest first
	for i, j := range want {
		got := page.Items[i]
		require.Equal(m.t, j.id, got.ID)
		require.Equal(m.t, j.status, got.Status, "job %d", j.id)
		require.Equal(m.t, j.estimate, got.EstimatedHours)
		require.Equal(m.t, j.actual, got.ActualHours)
	}
}

func (m *modelWorker) verifyAll() {
	for _, u := range m.users {
		m.verify(u)
	}
}
