package store_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/gaas"
	"github.com/gaas-io/gaas/store"
)

// TestProjectReplicaRaces: members of two sibling projects under a capped
// parent submit and cancel through two stores on one database, while an
// admin lowers and raises the parent's cap and the parent's manager moves
// credits to the siblings; nothing passes a limit, a cap or an allocation,
// and nothing deadlocks.
func TestProjectReplicaRaces(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		if !b.shared {
			t.Skip("two stores do not share an in-memory database")
		}
		ctx := context.Background()
		dsn := b.dsn(t)
		db1 := openStore(t, dsn, store.Options{})
		db2 := openStore(t, dsn, store.Options{})
		f := newFixture(t, db1)
		admin := f.admin.ID
		capped := 60 * gaas.Credit
		parent, err := db1.Projects.CreateProject(ctx, admin, gaas.CreateProjectRequest{Name: "dept", Cap: &capped})
		require.NoError(t, err)
		_, err = db1.Allocations.CreateAllocation(ctx, admin, gaas.CreateAllocationRequest{ProjectID: parent.ID, Amount: 30 * gaas.Credit})
		require.NoError(t, err)
		boss := f.user(t, 0)
		_, err = db1.Projects.SetMember(ctx, admin, gaas.SetMemberRequest{ProjectID: parent.ID, UserID: boss.ID, Role: gaas.ProjectManager})
		require.NoError(t, err)
		limit := 15 * gaas.Credit
		users := []gaas.User{f.user(t, 0), f.user(t, 0), f.user(t, 0)}
		var kids []gaas.Project
		for _, name := range []string{"left", "right"} {
			p, err := db1.Projects.CreateProject(ctx, admin, gaas.CreateProjectRequest{Name: name, ParentID: parent.ID})
			require.NoError(t, err)
			_, err = db1.Allocations.CreateAllocation(ctx, admin, gaas.CreateAllocationRequest{ProjectID: p.ID, Amount: 20 * gaas.Credit})
			require.NoError(t, err)
			for _, u := range users {
				_, err = db1.Projects.SetMember(ctx, admin, gaas.SetMemberRequest{ProjectID: p.ID, UserID: u.ID, Role: gaas.ProjectMember, Limit: &limit})
				require.NoError(t, err)
			}
			kids = append(kids, p)
		}
		seed := time.Now().UnixNano()
		t.Logf("seed %d", seed)
		rng := rand.New(rand.NewPCG(uint64(seed), 0))
		stores := []*store.DB{db1, db2}
		var wg sync.WaitGroup
		for i := range 80 {
			db := stores[rng.IntN(2)]
			kid, u, cancel := kids[rng.IntN(2)], users[rng.IntN(3)], rng.IntN(3) == 0
			hours := gaas.Hours(1+rng.IntN(3)) * gaas.Hour
			wg.Go(func() {
				j, err := db.Jobs.Submit(ctx, u.ID, gaas.SubmitRequest{Command: "x", GPUType: "A100", EstimatedHours: hours, Project: gaas.ProjectRef(kid.Name)})
				var limit *gaas.LimitError
				var short *gaas.QuotaError
				switch {
				case err == nil:
					if cancel {
						_, err = db.Jobs.Cancel(ctx, u.ID, gaas.CancelRequest{JobID: j.ID})
						assert.NoError(t, err, "cancel %d", i)
					}
				case errors.As(err, &limit), errors.As(err, &short):
				default:
					t.Errorf("submission %d: %v", i, err)
				}
			})
		}
		for i := range 10 {
			db := stores[i%2]
			kid := kids[i%2]
			wg.Go(func() {
				_, err := db.Projects.Transfer(ctx, boss.ID, gaas.TransferRequest{FromID: parent.ID, ToID: kid.ID, Amount: 3 * gaas.Credit})
				var short *gaas.QuotaError
				if err != nil && !errors.As(err, &short) {
					t.Errorf("transfer %d: %v", i, err)
				}
			})
			wg.Go(func() {
				c := gaas.Credits(40+2*i) * gaas.Credit
				_, err := db.Projects.UpdateProject(ctx, admin, gaas.UpdateProjectRequest{ProjectID: parent.ID, SetCap: true, Cap: &c})
				assert.NoError(t, err, "cap %d", i)
			})
		}
		wg.Wait()
		got, err := db2.Projects.Project(ctx, admin, gaas.GetProjectRequest{Project: "dept"})
		require.NoError(t, err)
		assert.LessOrEqual(t, got.Spent, capped, "the highest cap ever set")
		for _, kid := range kids {
			ms, err := db2.Projects.Members(ctx, admin, gaas.MembersRequest{ProjectID: kid.ID})
			require.NoError(t, err)
			for _, m := range ms.Items {
				assert.LessOrEqual(t, m.Spent, limit, "member %d of %s", m.UserID, kid.Name)
			}
		}
		assertInvariants(t, db1)
	})
}

// TestProjectTransferLoopholes: a transfer never moves credits that are
// scoped to GPU types, that expire before the new allocation, that have
// not started yet, nor to any project but a child.
func TestProjectTransferLoopholes(t *testing.T) {
	forEachStore(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		l := newLab(t, f)
		admin := f.admin.ID
		// Replace the lab's unscoped grant by a scoped one, an expiring
		// one and one that starts tomorrow.
		other, err := db.Projects.CreateProject(ctx, admin, gaas.CreateProjectRequest{Name: "other"})
		require.NoError(t, err)
		sub, err := db.Projects.CreateProject(ctx, admin, gaas.CreateProjectRequest{Name: "sub", ParentID: other.ID})
		require.NoError(t, err)
		grand, err := db.Projects.CreateProject(ctx, admin, gaas.CreateProjectRequest{Name: "grand", ParentID: sub.ID})
		require.NoError(t, err)
		_, err = db.Projects.SetMember(ctx, admin, gaas.SetMemberRequest{ProjectID: other.ID, UserID: l.pi.ID, Role: gaas.ProjectManager})
		require.NoError(t, err)
		now := time.Now().UTC()
		f.allocation(t, gaas.CreateAllocationRequest{ProjectID: other.ID, Amount: 10 * gaas.Credit, GPUTypes: []string{"A100"}})
		f.allocation(t, gaas.CreateAllocationRequest{ProjectID: other.ID, Amount: 10 * gaas.Credit, ExpiresAt: timePtr(now.Add(time.Hour))})
		f.allocation(t, gaas.CreateAllocationRequest{ProjectID: other.ID, Amount: 10 * gaas.Credit, StartsAt: now.Add(24 * time.Hour)})

		transfer := func(from, to int64, amount gaas.Credits, expires *time.Time) error {
			_, err := db.Projects.Transfer(ctx, l.pi.ID, gaas.TransferRequest{FromID: from, ToID: to, Amount: amount, ExpiresAt: expires})
			return err
		}
		var short *gaas.QuotaError
		require.ErrorAs(t, transfer(other.ID, sub.ID, gaas.Credit, nil), &short, "no credit lasts forever and pays for every type")
		assert.Equal(t, gaas.Credits(0), short.Remaining)
		require.ErrorAs(t, transfer(other.ID, sub.ID, gaas.Credit, timePtr(now.Add(2*time.Hour))), &short, "the expiring credits end sooner")
		assert.NoError(t, transfer(other.ID, sub.ID, 4*gaas.Credit, timePtr(now.Add(30*time.Minute))), "credits that last as long move")
		require.ErrorAs(t, transfer(other.ID, sub.ID, 7*gaas.Credit, timePtr(now.Add(30*time.Minute))), &short)
		assert.Equal(t, 6*gaas.Credit, short.Remaining)

		assert.ErrorIs(t, transfer(other.ID, other.ID, gaas.Credit, timePtr(now.Add(time.Minute))), gaas.ErrInvalid, "to itself")
		assert.ErrorIs(t, transfer(other.ID, grand.ID, gaas.Credit, timePtr(now.Add(time.Minute))), gaas.ErrInvalid, "to a grandchild")
		assert.ErrorIs(t, transfer(other.ID, l.lab.ID, gaas.Credit, timePtr(now.Add(time.Minute))), gaas.ErrInvalid, "to an unrelated project")
		assert.ErrorIs(t, transfer(sub.ID, grand.ID, gaas.Credit, timePtr(now.Add(time.Minute))), gaas.ErrNotFound, "from a project the caller does not manage")
		assert.ErrorIs(t, transfer(l.lab.ID, l.dept.ID, gaas.Credit, nil), gaas.ErrInvalid, "to the parent")
		assert.ErrorIs(t, transfer(other.ID, 999999, gaas.Credit, timePtr(now.Add(time.Minute))), gaas.ErrInvalid)

		// What moved is worth exactly what left.
		var total gaas.Credits
		for _, p := range []gaas.Project{other, sub} {
			for _, a := range listAllocations(t, db, admin, gaas.AllocationsRequest{ProjectID: p.ID}) {
				total += a.Remaining
			}
		}
		assert.Equal(t, 30*gaas.Credit, total)
		assertInvariants(t, db)
	})
}

// TestProjectMembershipLoopholes: removing a member with a pending job,
// refunding it and adding them again restores their spending and keeps
// it counted; taken out of their default project, a member's jobs go to
// their own account again; a cap lowered below what was spent refuses
// everything; managers approve only their project's PENDING jobs.
func TestProjectMembershipLoopholes(t *testing.T) {
	forEachStore(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		l := newLab(t, f)
		admin := f.admin.ID

		require.NoError(t, db.Projects.SetDefaultProject(ctx, l.ann.ID, gaas.SetDefaultProjectRequest{Project: "qlab"}))
		j1, err := f.submitTo("", l.ann.ID, 5*gaas.Hour)
		require.NoError(t, err)
		j2, err := f.submitTo("qlab", l.ann.ID, 5*gaas.Hour)
		require.NoError(t, err)
		require.NoError(t, db.Projects.RemoveMember(ctx, l.pi.ID, gaas.RemoveMemberRequest{ProjectID: l.lab.ID, UserID: l.ann.ID}))
		_, err = f.submitTo("", l.ann.ID, gaas.Hour)
		var short *gaas.QuotaError
		assert.ErrorAs(t, err, &short, "her own account, which holds nothing, pays now; the lab does not")
		ms, err := db.Projects.Memberships(ctx, l.ann.ID, gaas.MembershipsRequest{})
		require.NoError(t, err)
		assert.Empty(t, ms.Items)
		_, err = f.submitTo(fmtID(l.lab.ID), l.ann.ID, gaas.Hour)
		assert.ErrorIs(t, err, gaas.ErrNotFound)
		_, err = db.Projects.Project(ctx, l.ann.ID, gaas.GetProjectRequest{Project: "qlab"})
		assert.ErrorIs(t, err, gaas.ErrNotFound)

		// Her pending job is still refunded, to the lab and to her spending.
		_, err = db.Jobs.Cancel(ctx, l.ann.ID, gaas.CancelRequest{JobID: j1.ID})
		require.NoError(t, err)
		// Back in with a new, larger limit: what she spent still counts.
		lim := 12 * gaas.Credit
		m, err := db.Projects.SetMember(ctx, l.pi.ID, gaas.SetMemberRequest{ProjectID: l.lab.ID, UserID: l.ann.ID, Role: gaas.ProjectMember, Limit: &lim})
		require.NoError(t, err)
		assert.Equal(t, 5*gaas.Credit, m.Spent)
		_, err = f.submitTo("qlab", l.ann.ID, 8*gaas.Hour)
		var limit *gaas.LimitError
		require.ErrorAs(t, err, &limit)
		assert.Equal(t, 7*gaas.Credit, limit.Remaining)

		// The department's cap of 30, lowered below the 5 spent.
		zero := gaas.Credits(0)
		_, err = db.Projects.UpdateProject(ctx, admin, gaas.UpdateProjectRequest{ProjectID: l.dept.ID, SetCap: true, Cap: &zero})
		require.NoError(t, err)
		_, err = f.submitTo("qlab", l.bob.ID, gaas.Hour)
		require.ErrorAs(t, err, &limit)
		assert.Equal(t, gaas.LimitError{Bound: gaas.LimitCap, Project: "physics", Asked: gaas.Credit, Remaining: 0}, *limit)
		_, err = db.Projects.UpdateProject(ctx, l.pi.ID, gaas.UpdateProjectRequest{ProjectID: l.lab.ID, SetCap: true})
		assert.ErrorIs(t, err, gaas.ErrForbidden, "a manager sets no cap")
		yes := true
		_, err = db.Projects.UpdateProject(ctx, l.pi.ID, gaas.UpdateProjectRequest{ProjectID: l.lab.ID, ManagersApprove: &yes})
		assert.ErrorIs(t, err, gaas.ErrForbidden, "a manager gives himself no approval")
		_, err = db.Projects.UpdateProject(ctx, admin, gaas.UpdateProjectRequest{ProjectID: l.dept.ID, SetCap: true})
		require.NoError(t, err)

		// A member makes no manager, and a manager makes none either.
		_, err = db.Projects.UpdateMember(ctx, l.pi.ID, gaas.UpdateMemberRequest{ProjectID: l.lab.ID, UserID: l.bob.ID, Role: rolePtr(gaas.ProjectManager)})
		assert.ErrorIs(t, err, gaas.ErrForbidden)
		_, err = db.Projects.UpdateMember(ctx, l.pi.ID, gaas.UpdateMemberRequest{ProjectID: l.lab.ID, UserID: l.pi.ID, SetLimit: true})
		assert.ErrorIs(t, err, gaas.ErrForbidden, "a manager changes no manager, not even himself")
		_, err = db.Projects.SetMember(ctx, l.bob.ID, gaas.SetMemberRequest{ProjectID: l.lab.ID, UserID: l.bob.ID, Role: gaas.ProjectMember})
		assert.ErrorIs(t, err, gaas.ErrForbidden, "a member lifts no limit of his own")

		// Managers approve the lab's PENDING jobs only, and only once the
		// lab lets them.
		move := func(id int64, to gaas.JobStatus) error {
			_, err := db.Jobs.Transition(ctx, l.pi.ID, gaas.TransitionRequest{JobID: id, To: to})
			return err
		}
		_, err = db.Projects.UpdateProject(ctx, admin, gaas.UpdateProjectRequest{ProjectID: l.lab.ID, ManagersApprove: &yes})
		require.NoError(t, err)
		f.move(t, j2, nil, gaas.StatusApproved, gaas.StatusRunning)
		assert.ErrorIs(t, move(j2.ID, gaas.StatusRejected), gaas.ErrForbidden, "a RUNNING job")
		assert.ErrorIs(t, move(j2.ID, gaas.StatusCancelled), gaas.ErrForbidden)
		no := false
		_, err = db.Projects.UpdateProject(ctx, admin, gaas.UpdateProjectRequest{ProjectID: l.lab.ID, ManagersApprove: &no})
		require.NoError(t, err)
		j3, err := f.submitTo("qlab", l.bob.ID, gaas.Hour)
		require.NoError(t, err)
		assert.ErrorIs(t, move(j3.ID, gaas.StatusRejected), gaas.ErrForbidden, "managers_approve is off")
		assertInvariants(t, db)
	})
}

func rolePtr(r gaas.ProjectRole) *gaas.ProjectRole { return &r }

// TestProjectDepthAndBounds: the tree stops at MaxProjectDepth, a charge
// to its deepest project moves every ancestor, and limits and caps at the
// maximum do not overflow.
func TestProjectDepthAndBounds(t *testing.T) {
	forEachStore(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		admin := f.admin.ID
		u := f.user(t, 0)
		huge := gaas.MaxCredits
		var parent int64
		var p gaas.Project
		var err error
		for d := 1; d <= gaas.MaxProjectDepth; d++ {
			p, err = db.Projects.CreateProject(ctx, admin, gaas.CreateProjectRequest{Name: "level" + fmtID(int64(d)), ParentID: parent, Cap: &huge})
			require.NoError(t, err)
			parent = p.ID
		}
		_, err = db.Projects.CreateProject(ctx, admin, gaas.CreateProjectRequest{Name: "too-deep", ParentID: parent})
		assert.ErrorIs(t, err, gaas.ErrInvalid)
		_, err = db.Projects.CreateProject(ctx, admin, gaas.CreateProjectRequest{Name: "12345"})
		assert.ErrorIs(t, err, gaas.ErrInvalid)
		f.allocation(t, gaas.CreateAllocationRequest{ProjectID: p.ID, Amount: 10 * gaas.Credit})
		_, err = db.Projects.SetMember(ctx, admin, gaas.SetMemberRequest{ProjectID: p.ID, UserID: u.ID, Role: gaas.ProjectMember, Limit: &huge})
		require.NoError(t, err)
		_, err = f.submitTo(fmtID(p.ID), u.ID, 3*gaas.Hour)
		require.NoError(t, err)
		top, err := db.Projects.Project(ctx, admin, gaas.GetProjectRequest{Project: "level1"})
		require.NoError(t, err)
		assert.Equal(t, 3*gaas.Credit, top.Spent)
		_, err = f.submitTo(fmtID(p.ID), u.ID, 8*gaas.Hour)
		var short *gaas.QuotaError
		assert.ErrorAs(t, err, &short)
		assertInvariants(t, db)
	})
}

// TestProjectIdempotencyKeyNamesProject: a retry with the key of a job
// charged to one project, naming another, is another request: 409, and
// not the first job as if the second project had been charged.
func TestProjectIdempotencyKeyNamesProject(t *testing.T) {
	forEachStore(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		l := newLab(t, f)
		other, err := db.Projects.CreateProject(ctx, f.admin.ID, gaas.CreateProjectRequest{Name: "other"})
		require.NoError(t, err)
		f.allocation(t, gaas.CreateAllocationRequest{ProjectID: other.ID, Amount: 10 * gaas.Credit})
		_, err = db.Projects.SetMember(ctx, f.admin.ID, gaas.SetMemberRequest{ProjectID: other.ID, UserID: l.ann.ID, Role: gaas.ProjectMember})
		require.NoError(t, err)
		req := gaas.SubmitRequest{Command: "x", GPUType: "A100", EstimatedHours: gaas.Hour, Project: "qlab", IdempotencyKey: "k1"}
		first, err := db.Jobs.Submit(ctx, l.ann.ID, req)
		require.NoError(t, err)
		again, err := db.Jobs.Submit(ctx, l.ann.ID, req)
		require.NoError(t, err, "the same request is a retry")
		assert.Equal(t, first.ID, again.ID)
		req.Project = gaas.ProjectRef(fmtID(l.lab.ID))
		again, err = db.Jobs.Submit(ctx, l.ann.ID, req)
		require.NoError(t, err, "the same project by its id is the same request")
		assert.Equal(t, first.ID, again.ID)
		req.Project = "other"
		j, err := db.Jobs.Submit(ctx, l.ann.ID, req)
		assert.ErrorIs(t, err, gaas.ErrConflict, "another project is another request, yet it answered job %d of project %d", j.ID, j.ProjectID)
	})
}

// TestProjectTransferAllocationBound: a transfer gives the sub-project an
// allocation, so a manager can no more than an admin give it one past
// MaxLiveAllocations, which every submission to it reads.
func TestProjectTransferAllocationBound(t *testing.T) {
	forEachSharedBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		db := openStore(t, b.dsn(t), store.Options{})
		f := newFixture(t, db)
		l := newLab(t, f)
		sub, err := db.Projects.CreateProject(ctx, f.admin.ID, gaas.CreateProjectRequest{Name: "qlab-theory", ParentID: l.lab.ID})
		require.NoError(t, err)
		// The sub-project's default allocation is one of them.
		for i := range gaas.MaxLiveAllocations - 1 {
			_, err := db.Projects.Transfer(ctx, l.pi.ID, gaas.TransferRequest{FromID: l.lab.ID, ToID: sub.ID, Amount: gaas.MilliCredit})
			require.NoError(t, err, "transfer %d", i)
		}
		_, err = db.Projects.Transfer(ctx, l.pi.ID, gaas.TransferRequest{FromID: l.lab.ID, ToID: sub.ID, Amount: gaas.MilliCredit})
		assert.ErrorIs(t, err, gaas.ErrConflict, "a 1,001st allocation holding credits")
		_, err = db.Allocations.CreateAllocation(ctx, f.admin.ID, gaas.CreateAllocationRequest{ProjectID: sub.ID, Amount: gaas.Credit})
		assert.ErrorIs(t, err, gaas.ErrConflict, "as an admin's grant is refused")
	})
}

// TestProjectMemberLimitReplicas: one member's submissions through two
// stores on one database spend their limit exactly, no more.
func TestProjectMemberLimitReplicas(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		if !b.shared {
			t.Skip("two stores do not share an in-memory database")
		}
		dsn := b.dsn(t)
		stores := []*store.DB{openStore(t, dsn, store.Options{}), openStore(t, dsn, store.Options{})}
		f := newFixture(t, stores[0])
		l := newLab(t, f)
		var wg sync.WaitGroup
		var mu sync.Mutex
		var accepted gaas.Credits
		for i := range 40 {
			wg.Go(func() {
				_, err := stores[i%2].Jobs.Submit(context.Background(), l.ann.ID,
					gaas.SubmitRequest{Command: "x", GPUType: "A100", EstimatedHours: gaas.Hour, Project: "qlab"})
				var limit *gaas.LimitError
				switch {
				case err == nil:
					mu.Lock()
					accepted += gaas.Credit
					mu.Unlock()
				case !errors.As(err, &limit):
					t.Errorf("submission %d: %v", i, err)
				}
			})
		}
		wg.Wait()
		assert.Equal(t, l.annLim, accepted)
	})
}
