package store_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/gaas"
	"github.com/gaas-io/gaas/store"
	"github.com/gaas-io/gaas/store/storetest"
)

// The randomized model test drives the real store with random operations
// from many goroutines and checks every answer against a plain in-memory
// model of what must be true: the GPU catalogue with its rates and limits,
// multi-GPU jobs, each user's allocations with their scopes, starts and
// expiries, the order a submission draws from them and how its refunds go
// back.
//
// Each worker owns a few users and a few GPU types of the catalogue, and
// alone acts on them, so the model can predict every answer exactly while
// the workers run at once; some operations race several goroutines against
// one user or one job on purpose (idempotent retries, concurrent
// rejections), and the model accepts exactly the outcomes that are
// allowed. The store's clock (Options.Now) stands still while the workers
// run a phase and moves between phases, in steps of half an hour, the
// grid every allocation starts and expires on, or to a microsecond before
// a step: so allocations start and expire mid-run, some exactly at the
// time of an operation, with no background work. Every worker's sequence
// of operations, and the clock's, comes from the seed: GAAS_SEED=...
// reproduces a run. The number of operations a worker makes is
// GAAS_MODEL_OPS (default 150; give it 20000 for a long run).
//
// At the end every balance, allocation and job is the model's, the
// ledger shows for every job that charged − refunded is the cost of the
// hours it is finally charged for, and Check finds nothing wrong.
func TestModel(t *testing.T) {
	seed := storetest.Seed(t)
	ops := 150
	if s := os.Getenv("GAAS_MODEL_OPS"); s != "" {
		var err error
		ops, err = strconv.Atoi(s)
		require.NoError(t, err, "GAAS_MODEL_OPS")
	}
	t.Logf("GAAS_MODEL_OPS=%d", ops)
	const workers, usersEach, phaseOps = 6, 3, 15
	forEachBackend(t, func(t *testing.T, b backend) {
		clk := newClock(t0)
		db := openStore(t, b.dsn(t), store.Options{Now: clk.Now})
		f := newFixture(t, db)
		ms := make([]*modelWorker, workers)
		for w := range ms {
			m := &modelWorker{t: workerT{t}, db: db, root: f.admin.ID, clk: clk, rnd: rand.New(rand.NewPCG(seed, uint64(w))), name: fmt.Sprintf("w%d", w), seen: map[string]int{}}
			m.addTypes()
			for range usersEach {
				m.addUser()
			}
			ms[w] = m
		}
		rnd := rand.New(rand.NewPCG(seed, workers))
		step := 0 // the clock is t0 + step half hours, or a microsecond less
		for done := 0; done < ops && !t.Failed(); done += phaseOps {
			var wg sync.WaitGroup
			for _, m := range ms {
				wg.Go(func() { m.phase(done, min(ops, done+phaseOps)) })
			}
			wg.Wait()
			if n := rnd.IntN(4); n > 0 {
				step += n
				at := t0.Add(time.Duration(step) * modelGrid)
				if rnd.IntN(3) == 0 {
					at = at.Add(-time.Microsecond)
				}
				clk.Set(at)
			}
		}
		if t.Failed() {
			t.Errorf("GAAS_SEED=%d: stopped at %s", seed, clk.Now())
			return
		}
		seen := map[string]int{}
		for _, m := range ms {
			m.verifyAll()
			for k, n := range m.seen {
				seen[k] += n
			}
		}
		t.Logf("seen: %v", seen)
		assertInvariants(t, db)
	})
}

// modelGrid is the step of the clock, and of the times allocations start
// and expire at.
const modelGrid = 30 * time.Minute

type modelType struct {
	name    string // as the catalogue spells it
	rate    gaas.Rate
	max     int // most GPUs per job; 0: no limit of its own
	enabled bool
}

type modelAlloc struct {
	id        int64
	remaining gaas.Credits
	scope     []string // canonical names; nil: every type
	starts    time.Time
	expires   *time.Time
	isDefault bool
}

func (a *modelAlloc) activeAt(now time.Time) bool {
	return !now.Before(a.starts) && (a.expires == nil || now.Before(*a.expires))
}

func (a *modelAlloc) ended(now time.Time) bool { return a.expires != nil && !now.Before(*a.expires) }

func (a *modelAlloc) covers(name string) bool {
	return a.scope == nil || slices.ContainsFunc(a.scope, func(s string) bool { return strings.EqualFold(s, name) })
}

type modelJob struct {
	id       int64
	status   gaas.JobStatus
	estimate gaas.Hours
	actual   *gaas.Hours
	gpuType  string
	gpus     int
	rate     gaas.Rate
	cost     gaas.Credits
	draws    []gaas.Draw
	req      gaas.SubmitRequest
}

type modelUser struct {
	id     int64
	role   gaas.Role
	allocs []*modelAlloc // the default first, then by id
	jobs   []*modelJob
	keys   map[string]*modelJob
}

func (u *modelUser) dflt() *modelAlloc { return u.allocs[0] }

func (u *modelUser) alloc(id int64) *modelAlloc {
	for _, a := range u.allocs {
		if a.id == id {
			return a
		}
	}
	return nil
}

// balance is what u's active allocations hold at now.
func (u *modelUser) balance(now time.Time) gaas.Credits {
	var sum gaas.Credits
	for _, a := range u.allocs {
		if a.activeAt(now) {
			sum += a.remaining
		}
	}
	return sum
}

// modelCost is hours × GPUs × rate, rounded up to the milli-credit: the
// pricing rule, worked out here apart from gaas.Cost.
func modelCost(h gaas.Hours, gpus int, r gaas.Rate) gaas.Credits {
	return gaas.Credits((int64(h)*int64(gpus)*int64(r) + 999) / 1000)
}

// plan is the draws of cost for a job of type name at now, or the credits
// available when they are too few: narrowest scope first, then soonest
// expiry, then oldest, each emptied before the next.
func (u *modelUser) plan(name string, cost gaas.Credits, now time.Time) ([]gaas.Draw, gaas.Credits) {
	var usable []*modelAlloc
	var available gaas.Credits
	for _, a := range u.allocs {
		if a.remaining > 0 && a.activeAt(now) && a.covers(name) {
			usable = append(usable, a)
			available += a.remaining
		}
	}
	if available < cost {
		return nil, available
	}
	width := func(a *modelAlloc) int {
		if a.scope == nil {
			return 1 << 30
		}
		return len(a.scope)
	}
	end := func(a *modelAlloc) int64 {
		if a.expires == nil {
			return 1 << 62
		}
		return a.expires.UnixNano()
	}
	slices.SortFunc(usable, func(a, b *modelAlloc) int {
		return cmp.Or(cmp.Compare(width(a), width(b)), cmp.Compare(end(a), end(b)), cmp.Compare(a.id, b.id))
	})
	var draws []gaas.Draw
	for _, a := range usable {
		if cost == 0 {
			break
		}
		take := min(a.remaining, cost)
		draws = append(draws, gaas.Draw{AllocationID: a.id, Amount: take})
		cost -= take
	}
	return draws, available
}

// refund gives back credits of j: the job keeps the first it drew, and
// the rest goes back to the allocations it came from; what goes back to
// one that has ended expires at once. It returns how many had ended.
func (u *modelUser) refund(j *modelJob, refund gaas.Credits, now time.Time) (ended int) {
	keep := j.cost - refund
	for _, d := range j.draws {
		kept := min(d.Amount, keep)
		keep -= kept
		a := u.alloc(d.AllocationID)
		a.remaining += d.Amount - kept
		if a.ended(now) && d.Amount > kept {
			a.remaining = 0
			ended++
		}
	}
	return ended
}

// settled is what j is finally charged: the cost of its actual hours (its
// estimate when none were given) once it is final, nothing when rejected
// or cancelled, its cost until then.
func (j *modelJob) settled() gaas.Credits {
	switch {
	case j.actual != nil: // a RUNNING job cancelled pays the hours it ran too
		return modelCost(*j.actual, j.gpus, j.rate)
	case j.status.RefundsAll():
		return 0
	}
	return j.cost
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
	clk   *clock
	rnd   *rand.Rand
	name  string
	types []*modelType
	users []*modelUser
	// seen counts what the run went through, for the log: a run that
	// never expired an allocation or split a draw proves little.
	seen map[string]int
}

// phase runs operations from to until, and checks every user at its end
// (their ledgers are read once, at the end of the run).
func (m *modelWorker) phase(from, until int) {
	i := from
	defer func() {
		if m.t.Failed() {
			m.t.Errorf("worker %s stopped at operation %d", m.name, i)
		}
	}()
	for ; i < until; i++ {
		if m.step(i); m.t.Failed() {
			return
		}
	}
	for _, u := range m.users {
		m.verify(u)
	}
}

// addTypes puts the worker's GPU types in the catalogue: one with a limit
// of GPUs per job, one without, at rates that are not whole credits.
func (m *modelWorker) addTypes() {
	for i, max := range []int{4, 0, 2} {
		g, err := m.db.Catalogue.CreateGPUType(context.Background(), m.root, gaas.CreateGPUTypeRequest{
			Name: fmt.Sprintf("%s-Type%c", strings.ToUpper(m.name), 'A'+i), Rate: m.rate(), MaxGPUsPerJob: max,
		})
		require.NoError(m.t, err)
		m.types = append(m.types, &modelType{name: g.Name, rate: g.Rate, max: max, enabled: true})
	}
}

func (m *modelWorker) rate() gaas.Rate { return gaas.Rate(100 + m.rnd.Int64N(3900)) }

var modelUserSeq sync.Map

func (m *modelWorker) addUser() {
	n, _ := modelUserSeq.LoadOrStore(m.name, new(int))
	*(n.(*int))++
	u, err := m.db.Accounts.CreateUser(context.Background(), fmt.Sprintf("%s-u%d", m.name, *(n.(*int))), "h", gaas.RoleUser)
	require.NoError(m.t, err)
	as := listAllocations(m.t, m.db, m.root, gaas.AllocationsRequest{UserID: u.ID})
	require.Len(m.t, as, 1)
	mu := &modelUser{id: u.ID, role: gaas.RoleUser, keys: map[string]*modelJob{}}
	mu.allocs = []*modelAlloc{{id: as[0].ID, remaining: u.Balance, starts: as[0].StartsAt, isDefault: true}}
	m.users = append(m.users, mu)
	m.createAllocation(mu)
}

func (m *modelWorker) hours(max gaas.Hours) gaas.Hours {
	return gaas.Hours(m.rnd.Int64N(int64(max))) + 1
}

func (m *modelWorker) pick() *modelUser { return m.users[m.rnd.IntN(len(m.users))] }

// spell writes a type's name as a client might: in any letter case.
func (m *modelWorker) spell(name string) string {
	switch m.rnd.IntN(3) {
	case 0:
		return strings.ToLower(name)
	case 1:
		return strings.ToUpper(name)
	}
	return name
}

func (m *modelWorker) now() time.Time { return m.clk.Now() }

// later is a time on the grid after now, at most n steps on.
func (m *modelWorker) later(n int) time.Time {
	steps := m.now().Sub(t0)/modelGrid + 1
	return t0.Add((steps + time.Duration(m.rnd.IntN(n))) * modelGrid)
}

// step runs one random operation and checks its answer.
func (m *modelWorker) step(i int) {
	ctx := context.Background()
	u := m.pick()
	switch op := m.rnd.IntN(100); {
	case op < 28:
		m.submit(u)
	case op < 32:
		m.racingRetries(u)
	case op < 54:
		m.transition(u)
	case op < 58:
		m.racingEnd(u)
	case op < 64:
		m.cancel(u)
	case op < 70:
		delta := gaas.Credits(m.hours(5*gaas.Hour) - 2*gaas.Hour)
		if delta == 0 {
			delta = 1
		}
		got, err := m.db.Quota.Grant(ctx, m.root, gaas.GrantRequest{UserID: u.id, Delta: delta, Reason: "model grant"})
		d := u.dflt()
		if d.remaining+delta < 0 {
			var qe *gaas.QuotaError
			require.ErrorAs(m.t, err, &qe)
			require.Equal(m.t, gaas.QuotaError{Asked: -delta, Remaining: d.remaining}, *qe)
			return
		}
		require.NoError(m.t, err)
		d.remaining += delta
		require.Equal(m.t, u.balance(m.now()), got.Balance)
	case op < 73:
		b := gaas.Credits(m.hours(8 * gaas.Hour))
		got, err := m.db.Quota.Set(ctx, m.root, gaas.SetBalanceRequest{UserID: u.id, Balance: b, Reason: "model set"})
		require.NoError(m.t, err)
		u.dflt().remaining = b
		require.Equal(m.t, u.balance(m.now()), got.Balance)
	case op < 79:
		m.createAllocation(u)
	case op < 83:
		m.updateAllocation(u)
	case op < 87:
		m.changeType()
	case op < 90:
		role := gaas.RoleAdmin
		if u.role == gaas.RoleAdmin {
			role = gaas.RoleUser
		}
		got, err := m.db.Users.SetRole(ctx, m.root, gaas.SetRoleRequest{UserID: u.id, Role: role})
		require.NoError(m.t, err)
		u.role = role
		require.Equal(m.t, role, got.Role)
	case op < 93:
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

// createAllocation gives u an allocation: of a scope of the worker's
// types or none, expiring or not, starting now or later.
func (m *modelWorker) createAllocation(u *modelUser) {
	req := gaas.CreateAllocationRequest{UserID: u.id, Amount: gaas.Credits(m.hours(6 * gaas.Hour)), Reason: "model allocation"}
	a := &modelAlloc{starts: m.now()}
	if m.rnd.IntN(3) > 0 {
		for _, i := range m.rnd.Perm(len(m.types))[:1+m.rnd.IntN(2)] {
			req.GPUTypes = append(req.GPUTypes, m.spell(m.types[i].name))
			a.scope = append(a.scope, m.types[i].name)
		}
	}
	if m.rnd.IntN(4) == 0 {
		req.StartsAt = m.later(3)
		a.starts = req.StartsAt
		m.seen["starting later"]++
	}
	if m.rnd.IntN(3) > 0 {
		at := m.later(8)
		for !at.After(a.starts) {
			at = at.Add(modelGrid)
		}
		req.ExpiresAt, a.expires = &at, &at
	}
	got, err := m.db.Allocations.CreateAllocation(context.Background(), m.root, req)
	require.NoError(m.t, err)
	a.id, a.remaining = got.ID, req.Amount
	require.Equal(m.t, a.scope, got.GPUTypes, "the scope is spelled as the catalogue does")
	require.True(m.t, a.starts.Equal(got.StartsAt))
	u.allocs = append(u.allocs, a)
}

// updateAllocation shortens or ends one of u's allocations, the default
// one and ended ones included, which it may not.
func (m *modelWorker) updateAllocation(u *modelUser) {
	a := u.allocs[m.rnd.IntN(len(u.allocs))]
	now := m.now()
	req := gaas.UpdateAllocationRequest{AllocationID: a.id}
	end := now
	if m.rnd.IntN(2) == 0 {
		req.End = true
	} else {
		end = t0.Add(time.Duration(m.rnd.IntN(int(now.Sub(t0)/modelGrid)+6)) * modelGrid)
		req.ExpiresAt = &end
	}
	got, err := m.db.Allocations.UpdateAllocation(context.Background(), m.root, req)
	switch {
	case a.isDefault, a.ended(now):
		require.ErrorIs(m.t, err, gaas.ErrConflict)
		return
	case req.ExpiresAt != nil && a.expires != nil && !end.Before(*a.expires),
		req.ExpiresAt != nil && now.Before(end) && !end.After(a.starts): // an end to come, not after the start
		require.ErrorIs(m.t, err, gaas.ErrInvalid)
		return
	}
	require.NoError(m.t, err)
	a.expires = &end
	if !now.Before(end) {
		a.remaining = 0 // revoked
		m.seen["ended"]++
	}
	require.Equal(m.t, a.remaining, got.Remaining)
	require.True(m.t, end.Equal(*got.ExpiresAt))
}

// changeType changes the rate of one of the worker's types, or retires or
// enables it.
func (m *modelWorker) changeType() {
	g := m.types[m.rnd.IntN(len(m.types))]
	req := gaas.UpdateGPUTypeRequest{Name: m.spell(g.name)}
	if m.rnd.IntN(3) == 0 {
		enabled := !g.enabled
		req.Enabled = &enabled
		g.enabled = enabled
	} else {
		r := m.rate()
		req.Rate = &r
		g.rate = r
		m.seen["rate changed"]++
	}
	got, err := m.db.Catalogue.UpdateGPUType(context.Background(), m.root, req)
	require.NoError(m.t, err)
	require.Equal(m.t, gaas.GPUType{Name: g.name, Rate: g.rate, MaxGPUsPerJob: g.max, Enabled: g.enabled, CreatedAt: got.CreatedAt, UpdatedAt: got.UpdatedAt}, got)
}

func (m *modelWorker) request() gaas.SubmitRequest {
	g := m.types[m.rnd.IntN(len(m.types))]
	req := gaas.SubmitRequest{Command: fmt.Sprintf("train %d", m.rnd.IntN(4)), GPUType: m.spell(g.name), EstimatedHours: m.hours(3 * gaas.Hour)}
	limit := g.max
	if limit == 0 {
		limit = 8
	}
	req.GPUCount = m.rnd.IntN(limit + 2) // 0 is 1; one more than the limit is refused
	switch m.rnd.IntN(20) {
	case 0:
		req.EstimatedHours = -req.EstimatedHours // invalid
	case 1:
		req.GPUType = m.name + "-unknown"
	}
	if m.rnd.IntN(3) == 0 {
		req.IdempotencyKey = fmt.Sprintf("k%d", m.rnd.IntN(8)) // often a key used before
	}
	return req
}

func (m *modelWorker) submit(u *modelUser) {
	req := m.request()
	got, err := m.db.Jobs.Submit(context.Background(), u.id, req)
	m.expectSubmit(u, req, got, err)
}

func (m *modelWorker) lookup(name string) *modelType {
	for _, g := range m.types {
		if strings.EqualFold(g.name, name) {
			return g
		}
	}
	return nil
}

// expectSubmit checks one submission's answer and applies it to the model.
func (m *modelWorker) expectSubmit(u *modelUser, req gaas.SubmitRequest, got gaas.Job, err error) {
	t := m.t
	if req.EstimatedHours <= 0 {
		require.ErrorIs(t, err, gaas.ErrInvalid)
		return
	}
	gpus := max(req.GPUCount, 1)
	if first, ok := u.keys[req.IdempotencyKey]; ok && req.IdempotencyKey != "" {
		if first.req.Command == req.Command && strings.EqualFold(first.req.GPUType, req.GPUType) &&
			first.req.EstimatedHours == req.EstimatedHours && first.gpus == gpus {
			require.NoError(t, err)
			require.Equal(t, first.id, got.ID, "a retry returns the first job")
			require.Equal(t, first.status, got.Status)
		} else {
			require.ErrorIs(t, err, gaas.ErrConflict)
		}
		return
	}
	g := m.lookup(req.GPUType)
	switch {
	case g == nil || !g.enabled:
		assertInvalid(t.T, err, "gpu_type")
		return
	case g.max > 0 && gpus > g.max:
		assertInvalid(t.T, err, "gpu_count")
		return
	}
	cost := modelCost(req.EstimatedHours, gpus, g.rate)
	draws, available := u.plan(g.name, cost, m.now())
	if draws == nil {
		var qe *gaas.QuotaError
		require.ErrorAs(t, err, &qe)
		require.Equal(t, gaas.QuotaError{Asked: cost, Remaining: available, GPUType: g.name}, *qe)
		m.seen["refused for credits"]++
		return
	}
	require.NoError(t, err)
	require.Equal(t, gaas.StatusPending, got.Status)
	require.Equal(t, g.name, got.GPUType)
	require.Equal(t, gpus, got.GPUCount)
	require.Equal(t, g.rate, got.Rate)
	require.Equal(t, cost, got.Cost)
	require.Equal(t, draws, got.Draws)
	j := &modelJob{id: got.ID, status: gaas.StatusPending, estimate: req.EstimatedHours, gpuType: g.name, gpus: gpus, rate: g.rate,
		cost: cost, draws: draws, req: req}
	u.jobs = append(u.jobs, j)
	if req.IdempotencyKey != "" {
		u.keys[req.IdempotencyKey] = j
	}
	for _, d := range draws {
		u.alloc(d.AllocationID).remaining -= d.Amount
	}
	m.seen["submitted"]++
	if len(draws) > 1 {
		m.seen["split across allocations"]++
	}
	if gpus > 1 {
		m.seen["on several GPUs"]++
	}
}

// racingRetries sends one new idempotent request from four goroutines at
// once: one job, one charge, or four refusals.
func (m *modelWorker) racingRetries(u *modelUser) {
	req := m.request()
	req.EstimatedHours, req.GPUCount = m.hours(2*gaas.Hour), 1
	req.IdempotencyKey = fmt.Sprintf("race-%d", m.rnd.Int64())
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
			require.Equal(m.t, errors.Is(errs[0], gaas.ErrInvalid), errors.Is(errs[i], gaas.ErrInvalid), "%v and %v", errs[0], errs[i])
			require.Equal(m.t, errors.Is(errs[0], gaas.ErrQuotaExceeded), errors.Is(errs[i], gaas.ErrQuotaExceeded), "%v and %v", errs[0], errs[i])
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
	case to == gaas.StatusCancelled && j.status == gaas.StatusRunning && actual == nil:
		// A RUNNING job is cancelled with the hours it ran (no executor
		// runs the model's jobs).
		return gaas.ErrInvalidTransition
	case to == gaas.StatusCancelled && j.status != gaas.StatusRunning && actual != nil:
		return gaas.ErrInvalid
	case actual != nil && *actual > j.estimate:
		return gaas.ErrInvalid
	}
	before := j.settled()
	j.status = to
	if actual != nil {
		a := *actual
		j.actual = &a
	}
	if refund := before - j.settled(); refund > 0 {
		m.seen["refunded to an ended allocation"] += u.refund(j, refund, m.now())
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
	require.NoError(m.t, m.applyMove(u, j, got.Status, nil))
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

// verify compares what the store says of one user with the model: the
// balance, every allocation, every job.
func (m *modelWorker) verify(u *modelUser) {
	ctx := context.Background()
	bal, err := m.db.Quota.Balance(ctx, u.id, gaas.BalanceRequest{UserID: u.id})
	require.NoError(m.t, err)
	require.Equal(m.t, u.balance(m.now()), bal, "balance of user %d at %s", u.id, m.now())
	as := listAllocations(m.t, m.db, u.id, gaas.AllocationsRequest{UserID: u.id, Ended: true})
	require.Len(m.t, as, len(u.allocs))
	for i, a := range u.allocs {
		if a.ended(m.now()) && a.remaining > 0 {
			m.seen["expired holding credits"]++
		}
		got := as[i]
		require.Equal(m.t, a.id, got.ID)
		require.Equal(m.t, a.remaining, got.Remaining, "allocation %d", a.id)
		require.Equal(m.t, a.isDefault, got.Default)
		require.Equal(m.t, a.scope, got.GPUTypes)
		require.True(m.t, a.starts.Equal(got.StartsAt))
		if a.expires == nil {
			require.Nil(m.t, got.ExpiresAt)
		} else {
			require.True(m.t, a.expires.Equal(*got.ExpiresAt), "allocation %d expires at %s, not %v", a.id, a.expires, got.ExpiresAt)
		}
	}
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
		require.Equal(m.t, j.gpuType, got.GPUType)
		require.Equal(m.t, j.gpus, got.GPUCount)
		require.Equal(m.t, j.rate, got.Rate, "job %d keeps the rate it was charged at", j.id)
		require.Equal(m.t, j.cost, got.Cost)
		require.Equal(m.t, j.draws, got.Draws)
	}
}

// verifyLedger holds the ledger of one user to the model's jobs: each job
// was charged its cost, and charged − refunded is what it is finally
// charged for, the cost of its actual hours once settled.
func (m *modelWorker) verifyLedger(u *modelUser) {
	charged, refunded := map[int64]gaas.Credits{}, map[int64]gaas.Credits{}
	cursor := ""
	for {
		page, err := m.db.Quota.Ledger(context.Background(), m.root, gaas.LedgerRequest{UserID: u.id, Page: gaas.Page{Limit: gaas.MaxLimit, Cursor: cursor}})
		require.NoError(m.t, err)
		for _, e := range page.Items {
			switch {
			case e.JobID == nil:
			case e.Kind == gaas.LedgerCharge:
				charged[*e.JobID] -= e.Delta
			case e.Kind == gaas.LedgerRefund:
				refunded[*e.JobID] += e.Delta
			}
		}
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	for _, j := range u.jobs {
		require.Equal(m.t, j.cost, charged[j.id], "job %d was charged its cost", j.id)
		require.Equal(m.t, j.settled(), charged[j.id]-refunded[j.id], "job %d, %s with actual hours %v", j.id, j.status, j.actual)
		if j.status.Final() && j.actual != nil {
			require.Equal(m.t, modelCost(*j.actual, j.gpus, j.rate), charged[j.id]-refunded[j.id])
		}
	}
}

func (m *modelWorker) verifyAll() {
	for _, u := range m.users {
		m.verify(u)
		m.verifyLedger(u)
	}
}
