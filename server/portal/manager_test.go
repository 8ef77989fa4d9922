package portal_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/gaas"
)

func TestManagerPage(t *testing.T) {
	ctx := context.Background()
	forEachDB(t, func(t *testing.T, s *site) {
		s.gpuType("A100", 1, 0)
		vision, audio := s.project("vision", true), s.project("audio", false)
		s.fund(vision, 40)
		s.fund(audio, 40)
		b, manager := s.signedIn("mia")
		s.member(vision, manager.ID, gaas.ProjectManager)
		s.member(audio, manager.ID, gaas.ProjectManager)
		memberB, member := s.signedIn("max")
		s.member(vision, member.ID, gaas.ProjectMember)
		s.member(audio, member.ID, gaas.ProjectMember)
		outsider, _ := s.signedIn("ozzy")
		carl := s.user("carl")
		other := s.project("other", true)
		s.member(other, carl.ID, gaas.ProjectManager)
		carlB := s.browser()
		carlB.signIn("carl", "carl password")
		j1, j2 := s.projectJob(member.ID, vision, 1), s.projectJob(member.ID, vision, 2)
		ja := s.projectJob(member.ID, audio, 3)
		visionPage := fmt.Sprintf("/portal/projects/%d", vision.ID)

		b.get("/")
		require.Contains(t, b.page, `href="/portal/projects/`+strconv.FormatInt(vision.ID, 10)+`"`, "the user's page links a managed project")
		b.get("/portal/projects")
		assert.Contains(t, b.page, ">vision<")
		b.get(visionPage)
		require.Equal(t, http.StatusOK, b.status, b.page)
		assert.Contains(t, b.page, "<h1>Project vision</h1>")
		assert.Contains(t, b.page, `id="project-balance">37 credits<`, "its allocations, less what its jobs were charged")
		assert.Contains(t, b.page, fmt.Sprintf(`>max<span class="muted"> · user %d</span><`, member.ID),
			"a member by name and id, though the library shows a manager no other user")
		assert.NotContains(t, b.page, `<td data-label="Member">user `, "no member by id alone")
		assert.Equal(t, []int64{j2.ID, j1.ID}, queueIDs(b.page), "its jobs, and not another project's")
		assert.Len(t, rowButtons(b.page, j1.ID), 2, "a manager of a project that lets them approves its jobs")
		assert.Contains(t, b.page, "No job ended in the last 12 weeks.")
		assertLabelled(t, b)

		t.Run("filter", func(t *testing.T) {
			b.get(visionPage + "?status=APPROVED")
			assert.Empty(t, queueIDs(b.page))
			b.get(visionPage + "?status=LOST")
			assert.Equal(t, http.StatusUnprocessableEntity, b.status)
			assert.Contains(t, b.page, "status must be one of")
		})
		t.Run("approve_and_reject", func(t *testing.T) {
			b.get(visionPage)
			b.submit("/portal/jobs/decide", url.Values{"approve": {strconv.FormatInt(j1.ID, 10)}})
			require.Equal(t, http.StatusOK, b.status, b.page)
			assert.Equal(t, visionPage, b.url.Path, "back to the project's page")
			assert.Contains(t, b.page, fmt.Sprintf("Job %d is approved.", j1.ID))
			assert.Equal(t, gaas.StatusApproved, s.jobOf(j1.ID).Status)
			b.submit("/portal/jobs/decide", url.Values{"reject": {strconv.FormatInt(j2.ID, 10)}, "reason": {"too long"}})
			assert.Equal(t, gaas.StatusRejected, s.jobOf(j2.ID).Status)
			assert.Equal(t, "too long", s.jobOf(j2.ID).EndReason)
		})
		t.Run("a_project_whose_managers_do_not_approve", func(t *testing.T) {
			b.get(fmt.Sprintf("/portal/projects/%d", audio.ID))
			require.Equal(t, http.StatusOK, b.status)
			assert.Equal(t, []int64{ja.ID}, queueIDs(b.page))
			assert.Empty(t, rowButtons(b.page, ja.ID))
			assert.Contains(t, b.page, "Only admins approve this project’s jobs")
			b.post("/portal/jobs/decide", url.Values{"csrf": {b.csrfOf()}, "approve": {strconv.FormatInt(ja.ID, 10)}})
			assert.Contains(t, b.page, fmt.Sprintf("Job %d was not approved: it is not yours to decide.", ja.ID))
			assert.Equal(t, gaas.StatusPending, s.jobOf(ja.ID).Status, "the library refuses")
		})
		t.Run("members", func(t *testing.T) {
			newcomer := s.user("nia")
			b.get(visionPage)
			b.submit(fmt.Sprintf("/portal/projects/%d/members", vision.ID), url.Values{"user": {strconv.FormatInt(newcomer.ID, 10)}, "role": {"member"}, "limit": {"5"}})
			require.Equal(t, http.StatusOK, b.status, b.page)
			assert.Contains(t, b.page, "nia is a member of project vision.")
			b.submit(fmt.Sprintf("/portal/projects/%d/members", vision.ID), url.Values{"user": {"nia"}, "role": {"member"}})
			assert.Equal(t, http.StatusUnprocessableEntity, b.status)
			assert.Contains(t, b.page, "only admins look users up by name")
			b.get(visionPage)
			b.submit(fmt.Sprintf("/portal/projects/%d/members", vision.ID), url.Values{"user": {strconv.FormatInt(newcomer.ID, 10)}, "role": {"manager"}})
			assert.Equal(t, http.StatusForbidden, b.status, "a manager appoints no manager")
			b.get(visionPage)
			b.submit(fmt.Sprintf("/portal/projects/%d/members/%d/limit", vision.ID, newcomer.ID), url.Values{"limit": {"7.5"}})
			require.Equal(t, http.StatusOK, b.status, b.page)
			assert.Contains(t, b.page, "nia may have spent at most 7.5 credits of project vision at once now.")
			b.get(visionPage)
			assert.Contains(t, b.page, fmt.Sprintf(`>nia<span class="muted"> · user %d</span><`, newcomer.ID))
			members, err := s.db.Projects.Members(ctx, s.root.ID, gaas.MembersRequest{ProjectID: vision.ID})
			require.NoError(t, err)
			var found bool
			for _, m := range members.Items {
				if m.UserID == newcomer.ID {
					found = true
					assert.Equal(t, gaas.ProjectMember, m.Role)
					require.NotNil(t, m.Limit)
					assert.Equal(t, gaas.Credits(7500), *m.Limit)
				}
			}
			assert.True(t, found)
			b.submit(fmt.Sprintf("/portal/projects/%d/members/%d/remove", vision.ID, newcomer.ID), nil)
			assert.Contains(t, b.page, fmt.Sprintf("user %d is no longer a member of project vision.", newcomer.ID))
			members, err = s.db.Projects.Members(ctx, s.root.ID, gaas.MembersRequest{ProjectID: vision.ID})
			require.NoError(t, err)
			assert.Len(t, members.Items, 2)
		})
		t.Run("a_member_sees_what_the_library_shows_members", func(t *testing.T) {
			memberB.get("/")
			assert.NotContains(t, memberB.page, `href="/portal/projects/`, "no link for a member")
			memberB.get(visionPage)
			require.Equal(t, http.StatusOK, memberB.status)
			assert.Contains(t, memberB.page, "<h1>Project vision</h1>")
			assert.Contains(t, memberB.page, ">mia<", "a member sees the other members' names")
			assert.Contains(t, memberB.page, ">max<", "but their own")
			assert.Empty(t, queueIDs(memberB.page), "no jobs")
			assert.Contains(t, memberB.page, "As a member you do not see its jobs, its schedules")
			assert.NotContains(t, memberB.page, "/members/"+strconv.FormatInt(manager.ID, 10)+"/remove")
			memberB.post(fmt.Sprintf("/portal/projects/%d/members/%d/remove", vision.ID, manager.ID), url.Values{"csrf": {memberB.csrfOf()}})
			assert.Equal(t, http.StatusForbidden, memberB.status)
		})
		t.Run("others_are_not_found", func(t *testing.T) {
			for _, x := range []*browser{outsider, carlB} {
				x.get(visionPage)
				assert.Equal(t, http.StatusNotFound, x.status)
				x.post(fmt.Sprintf("/portal/projects/%d/members", vision.ID), url.Values{"csrf": {x.csrfOf()}, "user": {strconv.FormatInt(carl.ID, 10)}, "role": {"member"}})
				assert.Equal(t, http.StatusNotFound, x.status)
			}
			carlB.get(fmt.Sprintf("/portal/projects/%d", other.ID))
			assert.Equal(t, http.StatusOK, carlB.status, "carl sees his own")
			members, err := s.db.Projects.Members(ctx, s.root.ID, gaas.MembersRequest{ProjectID: vision.ID})
			require.NoError(t, err)
			assert.Len(t, members.Items, 2, "unchanged")
			b.get("/portal/projects/999999")
			assert.Equal(t, http.StatusNotFound, b.status)
		})
		t.Run("without_csrf", func(t *testing.T) {
			b.post(fmt.Sprintf("/portal/projects/%d/members/%d/remove", vision.ID, member.ID), url.Values{})
			assert.Equal(t, http.StatusForbidden, b.status)
			members, err := s.db.Projects.Members(ctx, s.root.ID, gaas.MembersRequest{ProjectID: vision.ID})
			require.NoError(t, err)
			assert.Len(t, members.Items, 2)
		})
		t.Run("schedules", func(t *testing.T) {
			// A manager makes no schedule (each period gives credits): no
			// form, and a forged one is refused and writes nothing.
			b.get(visionPage)
			assert.NotContains(t, b.page, "Make a schedule")
			b.post("/portal/schedules", url.Values{"csrf": {b.csrfOf()}, "project_id": {strconv.FormatInt(vision.ID, 10)},
				"amount": {"10"}, "period": {"weekly"}, "reason": {"vision weekly"}})
			assert.Contains(t, b.page, "The schedule was not made")
			page, err := s.db.Schedules.Schedules(ctx, s.root.ID, gaas.SchedulesRequest{ProjectID: vision.ID})
			require.NoError(t, err)
			require.Empty(t, page.Items)

			// An admin's schedule of the project the manager pauses.
			sc, err := s.db.Schedules.CreateSchedule(ctx, s.root.ID, gaas.CreateScheduleRequest{ProjectID: vision.ID, Amount: 10 * gaas.Credit,
				Period: gaas.PeriodWeekly, Reason: "vision weekly"})
			require.NoError(t, err)
			// paused is whether the schedule is paused after the manager
			// asks for action.
			paused := func(action string) bool {
				b.post(fmt.Sprintf("/portal/schedules/%d", sc.ID), url.Values{"csrf": {b.csrfOf()}, "action": {action}})
				got, err := s.db.Schedules.Schedule(ctx, s.root.ID, gaas.GetScheduleRequest{ScheduleID: sc.ID})
				require.NoError(t, err)
				return got.Paused
			}
			b.get(visionPage)
			assert.Contains(t, b.page, "vision weekly")
			assert.True(t, paused("pause"), "paused by the manager")
			// Resuming gives again: no button, and a forged one is refused.
			b.get(visionPage)
			assert.NotContains(t, b.page, "Resume schedule")
			assert.True(t, paused("resume"), "still paused")
		})
	})
}
