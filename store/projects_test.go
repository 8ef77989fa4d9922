package store_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/gaas"
	"github.com/gaas-io/gaas/store"
)

// lab is a department capped at 30 credits, a lab under it with 100
// credits of its own, a PI who manages the lab and two students with
// limits of 12 and 40.
type lab struct {
	dept, lab      gaas.Project
	pi, ann, bob   gaas.User
	stranger       gaas.User
	annLim, bobLim gaas.Credits
}

func newLab(t *testing.T, f *fixture) lab {
	t.Helper()
	ctx := context.Background()
	db, admin := f.db, f.admin.ID
	l := lab{pi: f.user(t, 0), ann: f.user(t, 0), bob: f.user(t, 0), stranger: f.user(t, 0), annLim: 12 * gaas.Credit, bobLim: 40 * gaas.Credit}
	capped := 30 * gaas.Credit
	var err error
	l.dept, err = db.Projects.CreateProject(ctx, admin, gaas.CreateProjectRequest{Name: "physics", Cap: &capped})
	require.NoError(t, err)
	l.lab, err = db.Projects.CreateProject(ctx, admin, gaas.CreateProjectRequest{Name: "qlab", ParentID: l.dept.ID})
	require.NoError(t, err)
	_, err = db.Allocations.CreateAllocation(ctx, admin, gaas.CreateAllocationRequest{ProjectID: l.lab.ID, Amount: 100 * gaas.Credit, Reason: "lab grant"})
	require.NoError(t, err)
	_, err = db.Projects.SetMember(ctx, admin, gaas.SetMemberRequest{ProjectID: l.lab.ID, UserID: l.pi.ID, Role: gaas.ProjectManager})
	require.NoError(t, err)
	for _, m := range []struct {
		u   gaas.User
		lim gaas.Credits
	}{{l.ann, l.annLim}, {l.bob, l.bobLim}} {
		_, err = db.Projects.SetMember(ctx, l.pi.ID, gaas.SetMemberRequest{ProjectID: l.lab.ID, UserID: m.u.ID, Role: gaas.ProjectMember, Limit: &m.lim})
		require.NoError(t, err)
	}
	return l
}

func (f *fixture) submitTo(project string, userID int64, hours gaas.Hours) (gaas.Job, error) {
	return f.db.Jobs.Submit(context.Background(), userID, gaas.SubmitRequest{
		Command: "python train.py", GPUType: "A100", EstimatedHours: hours, Project: gaas.ProjectRef(project),
	})
}

// TestProjectCharges: a job charged to a project draws from its
// allocations, counts against the member's limit and every cap up the
// tree, and a refusal says which bound stopped it and what was left there;
// refunds restore each of them.
func TestProjectCharges(t *testing.T) {
	forEachStore(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		l := newLab(t, f)

		j, err := f.submitTo("qlab", l.ann.ID, 10*gaas.Hour)
		require.NoError(t, err)
		assert.Equal(t, l.lab.AccountID, j.AccountID)
		assert.Equal(t, 10*gaas.Credit, j.Cost)
		assert.Equal(t, 0*gaas.Credit, f.balance(t, l.ann.ID), "the student's own account pays nothing")

		// Ann's limit of 12 leaves 2.
		_, err = f.submitTo("qlab", l.ann.ID, 3*gaas.Hour)
		var limit *gaas.LimitError
		require.ErrorAs(t, err, &limit)
		assert.ErrorIs(t, err, gaas.ErrQuotaExceeded)
		assert.Equal(t, gaas.LimitError{Bound: gaas.LimitMember, Project: "qlab", Asked: 3 * gaas.Credit, Remaining: 2 * gaas.Credit}, *limit)

		// The department's cap of 30 leaves 20 for the lab, whatever the
		// lab's allocation and Bob's limit hold.
		_, err = f.submitTo(fmtID(l.lab.ID), l.bob.ID, 25*gaas.Hour)
		require.ErrorAs(t, err, &limit)
		assert.Equal(t, gaas.LimitError{Bound: gaas.LimitCap, Project: "physics", Asked: 25 * gaas.Credit, Remaining: 20 * gaas.Credit}, *limit)
		bobs, err := f.submitTo("QLAB", l.bob.ID, 20*gaas.Hour)
		require.NoError(t, err, "a project is named in any case, or by id")

		got, err := db.Projects.Project(ctx, l.pi.ID, gaas.GetProjectRequest{Project: "physics"})
		if assert.ErrorIs(t, err, gaas.ErrNotFound, "the PI of the lab is no member of the department") {
			got, err = db.Projects.Project(ctx, f.admin.ID, gaas.GetProjectRequest{Project: "physics"})
			require.NoError(t, err)
			assert.Equal(t, 30*gaas.Credit, got.Spent)
		}

		// Bob's job is rejected: its 20 come back to the lab's allocation,
		// Bob's spending and both projects' spending.
		f.move(t, bobs, nil, gaas.StatusRejected)
		got, err = db.Projects.Project(ctx, l.ann.ID, gaas.GetProjectRequest{Project: "qlab"})
		require.NoError(t, err)
		assert.Equal(t, 10*gaas.Credit, got.Spent)
		members, err := db.Projects.Members(ctx, l.pi.ID, gaas.MembersRequest{ProjectID: l.lab.ID})
		require.NoError(t, err)
		spent := map[int64]gaas.Credits{}
		for _, m := range members.Items {
			spent[m.UserID] = m.Spent
		}
		assert.Equal(t, map[int64]gaas.Credits{l.pi.ID: 0, l.ann.ID: 10 * gaas.Credit, l.bob.ID: 0}, spent)

		// Ann's job runs 2.5 of its 10 hours: 7.5 come back.
		f.move(t, j, hoursPtr(2500), gaas.StatusApproved, gaas.StatusRunning, gaas.StatusCompleted)
		got, err = db.Projects.Project(ctx, f.admin.ID, gaas.GetProjectRequest{Project: "physics"})
		require.NoError(t, err)
		assert.Equal(t, 2500*gaas.MilliCredit, got.Spent)
		page, err := db.Allocations.Allocations(ctx, l.ann.ID, gaas.AllocationsRequest{ProjectID: l.lab.ID})
		require.NoError(t, err)
		var held gaas.Credits
		for _, a := range page.Items {
			held += a.Remaining
		}
		assert.Equal(t, 97500*gaas.MilliCredit, held)
		assertInvariants(t, db)
	})
}

func fmtID(id int64) string { return strconv.FormatInt(id, 10) }

// TestMemberUsernames: members come with their usernames, in a listing
// page by page and in what adding, changing and one's own memberships
// answer, to a manager who may not read those users themselves.
func TestMemberUsernames(t *testing.T) {
	forEachStore(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		l := newLab(t, f)
		_, err := db.Users.User(ctx, l.pi.ID, gaas.GetUserRequest{UserID: l.ann.ID})
		require.ErrorIs(t, err, gaas.ErrNotFound, "a manager reads no other user")

		names := map[int64]string{}
		req := gaas.MembersRequest{ProjectID: l.lab.ID, Page: gaas.Page{Limit: 2}}
		for {
			page, err := db.Projects.Members(ctx, l.pi.ID, req)
			require.NoError(t, err)
			for _, m := range page.Items {
				names[m.UserID] = m.Username
			}
			if page.NextCursor == "" {
				break
			}
			req.Cursor = page.NextCursor
		}
		assert.Equal(t, map[int64]string{l.pi.ID: l.pi.Username, l.ann.ID: l.ann.Username, l.bob.ID: l.bob.Username}, names)

		carl := f.user(t, 0)
		added, err := db.Projects.SetMember(ctx, l.pi.ID, gaas.SetMemberRequest{ProjectID: l.lab.ID, UserID: carl.ID, Role: gaas.ProjectMember})
		require.NoError(t, err)
		assert.Equal(t, carl.Username, added.Username, "a new member")
		lim := 5 * gaas.Credit
		changed, err := db.Projects.UpdateMember(ctx, l.pi.ID, gaas.UpdateMemberRequest{ProjectID: l.lab.ID, UserID: l.ann.ID, SetLimit: true, Limit: &lim})
		require.NoError(t, err)
		assert.Equal(t, l.ann.Username, changed.Username, "a changed member")

		mine, err := db.Projects.Memberships(ctx, l.bob.ID, gaas.MembershipsRequest{})
		require.NoError(t, err)
		require.Len(t, mine.Items, 1)
		assert.Equal(t, l.bob.Username, mine.Items[0].Member.Username)
	})
}

// TestProjectPolicy: who may do what with a project, each refused as the
// policy says, with nothing written.
func TestProjectPolicy(t *testing.T) {
	forEachStore(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		l := newLab(t, f)

		_, err := f.submitTo("qlab", l.stranger.ID, gaas.Hour)
		assert.ErrorIs(t, err, gaas.ErrNotFound, "a non-member cannot see the project")
		_, err = f.submitTo("nosuch", l.ann.ID, gaas.Hour)
		assert.ErrorIs(t, err, gaas.ErrNotFound)
		_, err = f.submitTo("qlab", f.admin.ID, gaas.Hour)
		assert.ErrorIs(t, err, gaas.ErrForbidden, "only members charge a project, admins included")

		_, err = db.Projects.CreateProject(ctx, l.pi.ID, gaas.CreateProjectRequest{Name: "mine"})
		assert.ErrorIs(t, err, gaas.ErrForbidden)
		_, err = db.Projects.SetMember(ctx, l.pi.ID, gaas.SetMemberRequest{ProjectID: l.lab.ID, UserID: l.ann.ID, Role: gaas.ProjectManager})
		assert.ErrorIs(t, err, gaas.ErrForbidden, "a manager appoints no managers")
		_, err = db.Projects.SetMember(ctx, l.ann.ID, gaas.SetMemberRequest{ProjectID: l.lab.ID, UserID: l.stranger.ID, Role: gaas.ProjectMember})
		assert.ErrorIs(t, err, gaas.ErrForbidden, "a member adds no one")
		_, err = db.Projects.SetMember(ctx, l.stranger.ID, gaas.SetMemberRequest{ProjectID: l.lab.ID, UserID: l.stranger.ID, Role: gaas.ProjectMember})
		assert.ErrorIs(t, err, gaas.ErrNotFound, "a stranger cannot see it")
		_, err = db.Allocations.CreateAllocation(ctx, l.pi.ID, gaas.CreateAllocationRequest{ProjectID: l.lab.ID, Amount: gaas.Credit})
		assert.ErrorIs(t, err, gaas.ErrForbidden, "a manager creates no credits")
		_, err = db.Projects.UpdateProject(ctx, l.pi.ID, gaas.UpdateProjectRequest{ProjectID: l.lab.ID, SetCap: true})
		assert.ErrorIs(t, err, gaas.ErrForbidden)
		_, err = db.Projects.Members(ctx, l.stranger.ID, gaas.MembersRequest{ProjectID: l.lab.ID})
		assert.ErrorIs(t, err, gaas.ErrNotFound)
		_, err = db.Projects.CreateProject(ctx, f.admin.ID, gaas.CreateProjectRequest{Name: "QLab"})
		assert.ErrorIs(t, err, gaas.ErrConflict, "names are unique in any case")

		mine, err := db.Projects.Projects(ctx, l.ann.ID, gaas.ProjectsRequest{})
		require.NoError(t, err)
		require.Len(t, mine.Items, 1)
		assert.Equal(t, "qlab", mine.Items[0].Name)
		all, err := db.Projects.Projects(ctx, f.admin.ID, gaas.ProjectsRequest{})
		require.NoError(t, err)
		assert.Len(t, all.Items, 2)

		// A member taken out charges no more; their spending stays.
		_, err = f.submitTo("qlab", l.ann.ID, gaas.Hour)
		require.NoError(t, err)
		require.NoError(t, db.Projects.RemoveMember(ctx, l.pi.ID, gaas.RemoveMemberRequest{ProjectID: l.lab.ID, UserID: l.ann.ID}))
		_, err = f.submitTo("qlab", l.ann.ID, gaas.Hour)
		assert.ErrorIs(t, err, gaas.ErrNotFound)
		assert.ErrorIs(t, db.Projects.RemoveMember(ctx, l.pi.ID, gaas.RemoveMemberRequest{ProjectID: l.lab.ID, UserID: l.pi.ID}), gaas.ErrForbidden,
			"a manager takes out no manager")
		assertInvariants(t, db)
	})
}

// TestProjectRaces: members racing for a project's last credits, and one
// member racing across two projects under one capped parent, never pass
// any bound, and Check agrees with every counter.
func TestProjectRaces(t *testing.T) {
	forEachStore(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		admin := f.admin.ID
		capped := 50 * gaas.Credit
		parent, err := db.Projects.CreateProject(ctx, admin, gaas.CreateProjectRequest{Name: "dept", Cap: &capped})
		require.NoError(t, err)
		var kids []gaas.Project
		users := []gaas.User{f.user(t, 0), f.user(t, 0), f.user(t, 0)}
		for _, name := range []string{"left", "right"} {
			p, err := db.Projects.CreateProject(ctx, admin, gaas.CreateProjectRequest{Name: name, ParentID: parent.ID})
			require.NoError(t, err)
			_, err = db.Allocations.CreateAllocation(ctx, admin, gaas.CreateAllocationRequest{ProjectID: p.ID, Amount: 40 * gaas.Credit})
			require.NoError(t, err)
			for _, u := range users {
				_, err = db.Projects.SetMember(ctx, admin, gaas.SetMemberRequest{ProjectID: p.ID, UserID: u.ID, Role: gaas.ProjectMember})
				require.NoError(t, err)
			}
			kids = append(kids, p)
		}
		var (
			wg       sync.WaitGroup
			mu       sync.Mutex
			accepted gaas.Credits
		)
		for i := range 60 {
			wg.Go(func() {
				_, err := f.submitTo(kids[i%2].Name, users[i%3].ID, gaas.Hour)
				if err == nil {
					mu.Lock()
					accepted += gaas.Credit
					mu.Unlock()
					return
				}
				var limit *gaas.LimitError
				var short *gaas.QuotaError
				if !errors.As(err, &limit) && !errors.As(err, &short) {
					t.Errorf("submission %d: %v", i, err)
				}
			})
		}
		wg.Wait()
		assert.Equal(t, capped, accepted, "the parent's cap, and nothing more, is spent")
		got, err := db.Projects.Project(ctx, admin, gaas.GetProjectRequest{Project: "dept"})
		require.NoError(t, err)
		assert.Equal(t, capped, got.Spent)
		assertInvariants(t, db)
	})
}

// TestProjectManagers: a manager divides the project's credits among its
// sub-projects without creating any, approves its jobs when the project
// lets managers, reads its ledger and jobs; members set a default project
// and see their memberships.
func TestProjectManagers(t *testing.T) {
	forEachStore(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		l := newLab(t, f)
		admin := f.admin.ID

		sub, err := db.Projects.CreateProject(ctx, admin, gaas.CreateProjectRequest{Name: "qlab-theory", ParentID: l.lab.ID})
		require.NoError(t, err)
		_, err = db.Projects.SetMember(ctx, l.pi.ID, gaas.SetMemberRequest{ProjectID: sub.ID, UserID: l.ann.ID, Role: gaas.ProjectMember})
		assert.ErrorIs(t, err, gaas.ErrNotFound, "the lab's manager is no member of the sub-project")
		_, err = db.Projects.SetMember(ctx, admin, gaas.SetMemberRequest{ProjectID: sub.ID, UserID: l.ann.ID, Role: gaas.ProjectMember})
		require.NoError(t, err)

		// The PI moves 30 of the lab's 100 to the sub-project; more than
		// the lab holds is refused, and so is a project that is not its child.
		a, err := db.Projects.Transfer(ctx, l.pi.ID, gaas.TransferRequest{FromID: l.lab.ID, ToID: sub.ID, Amount: 30 * gaas.Credit})
		require.NoError(t, err)
		assert.Equal(t, 30*gaas.Credit, a.Remaining)
		_, err = db.Projects.Transfer(ctx, l.pi.ID, gaas.TransferRequest{FromID: l.lab.ID, ToID: sub.ID, Amount: 71 * gaas.Credit})
		var short *gaas.QuotaError
		require.ErrorAs(t, err, &short)
		assert.Equal(t, 70*gaas.Credit, short.Remaining)
		_, err = db.Projects.Transfer(ctx, l.pi.ID, gaas.TransferRequest{FromID: l.lab.ID, ToID: l.dept.ID, Amount: gaas.Credit})
		assert.ErrorIs(t, err, gaas.ErrInvalid)
		_, err = db.Projects.Transfer(ctx, l.ann.ID, gaas.TransferRequest{FromID: l.lab.ID, ToID: sub.ID, Amount: gaas.Credit})
		assert.ErrorIs(t, err, gaas.ErrForbidden, "a member divides nothing")

		// Ann's default project takes her jobs when she names none.
		require.NoError(t, db.Projects.SetDefaultProject(ctx, l.ann.ID, gaas.SetDefaultProjectRequest{Project: "qlab-theory"}))
		assert.ErrorIs(t, db.Projects.SetDefaultProject(ctx, l.stranger.ID, gaas.SetDefaultProjectRequest{Project: "qlab"}), gaas.ErrNotFound)
		j, err := f.submitTo("", l.ann.ID, 4*gaas.Hour)
		require.NoError(t, err)
		assert.Equal(t, sub.ID, j.ProjectID)
		ms, err := db.Projects.Memberships(ctx, l.ann.ID, gaas.MembershipsRequest{})
		require.NoError(t, err)
		require.Len(t, ms.Items, 2)
		assert.Equal(t, "qlab", ms.Items[0].Project.Name)
		assert.Equal(t, 70*gaas.Credit, ms.Items[0].Balance)
		assert.Equal(t, l.annLim, *ms.Items[0].LimitLeft)
		assert.True(t, ms.Items[1].Default)
		assert.Equal(t, 26*gaas.Credit, ms.Items[1].Balance)
		assert.Nil(t, ms.Items[1].LimitLeft)

		// The lab does not let managers approve: only admins do. Once it
		// does, the PI approves the lab's jobs, and nobody else's.
		lj, err := f.submitTo("qlab", l.bob.ID, gaas.Hour)
		require.NoError(t, err)
		own := f.submit(t, f.user(t, 5*gaas.Credit).ID, gaas.Hour)
		move := func(id int64, to gaas.JobStatus) error {
			_, err := db.Jobs.Transition(ctx, l.pi.ID, gaas.TransitionRequest{JobID: id, To: to})
			return err
		}
		assert.ErrorIs(t, move(lj.ID, gaas.StatusApproved), gaas.ErrForbidden)
		yes := true
		_, err = db.Projects.UpdateProject(ctx, admin, gaas.UpdateProjectRequest{ProjectID: l.lab.ID, ManagersApprove: &yes})
		require.NoError(t, err)
		assert.NoError(t, move(lj.ID, gaas.StatusApproved))
		assert.ErrorIs(t, move(lj.ID, gaas.StatusRunning), gaas.ErrForbidden, "approving is all a manager may do")
		assert.ErrorIs(t, move(own.ID, gaas.StatusApproved), gaas.ErrForbidden, "another's job")
		assert.ErrorIs(t, move(j.ID, gaas.StatusApproved), gaas.ErrForbidden, "the sub-project's job: the PI manages the lab only")
		assert.ErrorIs(t, move(999999, gaas.StatusApproved), gaas.ErrForbidden, "a job that does not exist is refused alike")

		jobs, err := db.Jobs.List(ctx, l.pi.ID, gaas.JobFilter{ProjectID: l.lab.ID})
		require.NoError(t, err)
		require.Len(t, jobs.Items, 1)
		assert.Equal(t, lj.ID, jobs.Items[0].ID)
		_, err = db.Jobs.List(ctx, l.ann.ID, gaas.JobFilter{ProjectID: l.lab.ID})
		assert.ErrorIs(t, err, gaas.ErrForbidden, "a member does not list the project's jobs")
		ledger, err := db.Projects.ProjectLedger(ctx, l.pi.ID, gaas.ProjectLedgerRequest{ProjectID: l.lab.ID})
		require.NoError(t, err)
		var kinds []gaas.LedgerKind
		for _, e := range ledger.Items {
			kinds = append(kinds, e.Kind)
			if e.Kind == gaas.LedgerCharge {
				assert.Equal(t, l.bob.ID, e.MemberID)
			}
		}
		assert.Equal(t, []gaas.LedgerKind{gaas.LedgerGrant, gaas.LedgerTransfer, gaas.LedgerCharge}, kinds)
		_, err = db.Projects.ProjectLedger(ctx, l.ann.ID, gaas.ProjectLedgerRequest{ProjectID: l.lab.ID})
		assert.ErrorIs(t, err, gaas.ErrForbidden)
		assertInvariants(t, db)
	})
}

// TestProjectRacesAcrossStores: two stores on one database, as two
// replicas are, race one member's jobs across two sibling projects under
// a capped parent, with cancellations giving credits back meanwhile; no
// bound is passed, no batch waits for another in a circle, and every
// counter agrees with the ledger.
func TestProjectRacesAcrossStores(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		if !b.shared {
			t.Skip("needs a second store on the same database")
		}
		ctx := context.Background()
		dsn := b.dsn(t)
		stores := []*store.DB{openStore(t, dsn, store.Options{}), openStore(t, dsn, store.Options{})}
		f := newFixture(t, stores[0])
		admin := f.admin.ID
		capped := 40 * gaas.Credit
		parent, err := stores[0].Projects.CreateProject(ctx, admin, gaas.CreateProjectRequest{Name: "dept", Cap: &capped})
		require.NoError(t, err)
		users := []gaas.User{f.user(t, 0), f.user(t, 0)}
		var kids []string
		for _, name := range []string{"left", "right"} {
			p, err := stores[0].Projects.CreateProject(ctx, admin, gaas.CreateProjectRequest{Name: name, ParentID: parent.ID})
			require.NoError(t, err)
			_, err = stores[0].Allocations.CreateAllocation(ctx, admin, gaas.CreateAllocationRequest{ProjectID: p.ID, Amount: 30 * gaas.Credit})
			require.NoError(t, err)
			for _, u := range users {
				_, err = stores[0].Projects.SetMember(ctx, admin, gaas.SetMemberRequest{ProjectID: p.ID, UserID: u.ID, Role: gaas.ProjectMember})
				require.NoError(t, err)
			}
			kids = append(kids, name)
		}
		var (
			wg        sync.WaitGroup
			mu        sync.Mutex
			live      []gaas.Job
			cancelled int
		)
		for i := range 120 {
			wg.Go(func() {
				db := stores[i%2]
				if i%5 == 4 {
					var j gaas.Job
					for try := 0; j.ID == 0 && try < 500; try++ {
						mu.Lock()
						if len(live) > 0 {
							j, live = live[0], live[1:]
						}
						mu.Unlock()
						if j.ID == 0 {
							time.Sleep(time.Millisecond) // until a submission has landed
						}
					}
					if j.ID != 0 {
						_, err := db.Jobs.Cancel(ctx, j.UserID, gaas.CancelRequest{JobID: j.ID})
						require.NoError(t, err)
						mu.Lock()
						cancelled++
						mu.Unlock()
					}
					return
				}
				j, err := db.Jobs.Submit(ctx, users[i%2].ID, gaas.SubmitRequest{
					Command: "x", GPUType: "A100", EstimatedHours: gaas.Hour, Project: gaas.ProjectRef(kids[(i/2)%2]),
				})
				var limit *gaas.LimitError
				switch {
				case err == nil:
					mu.Lock()
					live = append(live, j)
					mu.Unlock()
				case !errors.As(err, &limit):
					t.Errorf("submission %d: %v", i, err)
				}
			})
		}
		wg.Wait()
		got, err := stores[1].Projects.Project(ctx, admin, gaas.GetProjectRequest{Project: "dept"})
		require.NoError(t, err)
		assert.Equal(t, gaas.Credits(len(live))*gaas.Credit, got.Spent, "the parent has spent what the jobs still standing cost")
		assert.LessOrEqual(t, got.Spent, capped)
		t.Logf("%d jobs standing, %d cancelled", len(live), cancelled)
		assertInvariants(t, stores[1])
	})
}

// projectCredits is what project id's allocations hold, ended ones too,
// as an admin lists them.
func (f *fixture) projectCredits(t *testing.T, id int64) gaas.Credits {
	t.Helper()
	var sum gaas.Credits
	for _, a := range listAllocations(t, f.db, f.admin.ID, gaas.AllocationsRequest{ProjectID: id, Ended: true}) {
		sum += a.Remaining
	}
	return sum
}
