package server_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// idOf is the "id" of an answer, or field of it.
func idOf(m map[string]any, field ...string) int64 {
	f := "id"
	if len(field) > 0 {
		f = field[0]
	}
	return int64(m[f].(float64))
}

func (h *harness) delete(path, token string) response {
	return h.do(req{method: http.MethodDelete, path: path, token: token})
}

// projectJob is the body of a job of hours charged to project (a JSON
// value: a quoted name or an id).
func projectJob(project string, hours float64) string {
	return fmt.Sprintf(`{"command": "python train.py", "gpu_type": "A100", "estimated_hours": %g, "project": %s}`, hours, project)
}

// labSite is the example of the docs over HTTP: a department capped at
// 30 credits, a lab under it with 100 credits, a PI who manages the lab,
// two students with limits of 12 and 40, and a stranger.
type labSite struct {
	dept, lab                      map[string]any
	admin, pi, ann, bob, stranger  string
	piID, annID, bobID, strangerID int64
	deptPath, labPath, labIDPath   string
}

func newLabSite(t *testing.T, h *harness) labSite {
	t.Helper()
	var s labSite
	_, s.admin = h.admin("root")
	s.piID, s.pi = h.user("pia")
	s.annID, s.ann = h.user("ann")
	s.bobID, s.bob = h.user("bob")
	s.strangerID, s.stranger = h.user("stranger")

	r := h.post("/projects", s.admin, `{"name": "physics", "description": "Department of physics", "cap": 30}`)
	s.dept = r.created(t)
	assert.Equal(t, fmt.Sprintf("/projects/%d", idOf(s.dept)), r.header.Get("Location"))
	s.lab = h.post("/projects", s.admin, fmt.Sprintf(`{"name": "qlab", "parent_id": %d}`, idOf(s.dept))).created(t)
	s.deptPath, s.labPath, s.labIDPath = "/projects/physics", "/projects/qlab", fmt.Sprintf("/projects/%d", idOf(s.lab))
	h.post(s.labPath+"/allocations", s.admin, `{"amount": 100, "reason": "lab grant"}`).created(t)
	h.post(s.labPath+"/members", s.admin, fmt.Sprintf(`{"user_id": %d, "role": "manager"}`, s.piID)).created(t)
	for _, m := range []struct {
		id    int64
		name  string
		limit int
	}{{s.annID, "ann", 12}, {s.bobID, "bob", 40}} {
		got := h.post(s.labPath+"/members", s.pi, fmt.Sprintf(`{"user_id": %d, "limit": %d}`, m.id, m.limit)).created(t)
		assert.Equal(t, map[string]any{"user_id": float64(m.id), "username": m.name, "role": "member", "limit": float64(m.limit), "gpu_types": nil, "spent": 0.0}, got)
	}
	return s
}

// theory makes qlab-theory, a sub-project of the lab.
func (s labSite) theory(t *testing.T, h *harness) map[string]any {
	return h.post("/projects", s.admin, fmt.Sprintf(`{"name": "qlab-theory", "parent_id": %d}`, idOf(s.lab))).created(t)
}

// TestProjectLab: jobs charged to a project draw from its allocations,
// count against the member's limit and every cap above, a 400 names the
// bound that stopped a job and what is left there, and refunds restore
// each of them.
func TestProjectLab(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			h := newHarness(t, override{dsn: b.dsn(t)})
			s := newLabSite(t, h)
			assert.Equal(t, map[string]any{"id": s.dept["id"], "name": "physics", "description": "Department of physics", "parent_id": nil,
				"cap": 30.0, "spent": 0.0, "managers_approve": false, "auto_approve": false, "created_at": s.dept["created_at"], "updated_at": s.dept["updated_at"]}, s.dept)
			assert.Equal(t, s.dept["id"], s.lab["parent_id"])
			p := h.post("/projects", s.admin, `{"name": "PHYSICS"}`).problem(t, http.StatusConflict)
			assert.Equal(t, `The project name "PHYSICS" is already taken.`, p["detail"])
			assert.Equal(t, []string{"parent_id"}, h.post("/projects", s.admin, `{"name": "chem", "parent_id": 999}`).errorFields(t))
			assert.Nil(t, s.lab["cap"])

			annJob := h.post("/jobs", s.ann, projectJob(`"qlab"`, 10)).created(t)
			assert.Equal(t, s.lab["id"], annJob["project_id"])
			assert.Equal(t, 10.0, annJob["cost"])
			assert.Equal(t, 10.0, h.balance(s.annID), "the student's own account pays nothing")

			p = h.post("/jobs", s.ann, projectJob(`"qlab"`, 3)).problem(t, http.StatusBadRequest)
			assert.Equal(t, "urn:gaas:problem:quota-exceeded", p["type"])
			assert.Equal(t, "Not enough credits under the member limit of project qlab: the job costs 3, and 2 are left there.", p["detail"])
			p = h.post("/jobs", s.bob, projectJob(fmt.Sprint(idOf(s.lab)), 25)).problem(t, http.StatusBadRequest)
			assert.Equal(t, "Not enough credits under the project cap of project physics: the job costs 25, and 20 are left there.", p["detail"])
			bobJob := h.post("/jobs", s.bob, projectJob(`"QLAB"`, 20)).created(t)

			assert.Equal(t, 30.0, h.get(s.deptPath, s.admin).ok(t)["spent"])
			h.get(s.deptPath, s.pi).problem(t, http.StatusNotFound) // the PI is no member of the department

			// Bob's job is rejected: its 20 come back everywhere.
			h.patch(fmt.Sprintf("/jobs/%d", idOf(bobJob)), s.admin, `{"status": "REJECTED"}`).ok(t)
			assert.Equal(t, 10.0, h.get(s.labPath, s.ann).ok(t)["spent"])
			assert.Equal(t, 10.0, h.get(s.deptPath, s.admin).ok(t)["spent"])
			spent := map[int64]any{}
			for _, m := range h.get(s.labPath+"/members", s.pi).items(t) {
				spent[idOf(m, "user_id")] = m["spent"]
			}
			assert.Equal(t, map[int64]any{s.piID: 0.0, s.annID: 10.0, s.bobID: 0.0}, spent)

			me := h.get("/me", s.ann).ok(t)
			assert.Equal(t, []any{map[string]any{"id": s.lab["id"], "name": "qlab", "role": "member", "balance": 90.0,
				"limit": 12.0, "limit_left": 2.0, "spent": 10.0, "default": false}}, me["projects"])

			// The project's ledger names the member of each charge and
			// refund, and no user.
			var kinds []any
			for _, e := range h.get(s.labIDPath+"/ledger", s.pi).items(t) {
				kinds = append(kinds, e["kind"])
				assert.Nil(t, e["user_id"])
				if e["kind"] == "charge" || e["kind"] == "refund" {
					assert.NotNil(t, e["member_id"], "%v", e)
				} else {
					assert.Nil(t, e["member_id"], "%v", e)
				}
			}
			assert.Equal(t, []any{"grant", "charge", "charge", "refund"}, kinds)
			assert.Len(t, h.get(s.labPath+"/jobs", s.pi).items(t), 2)
			assert.Len(t, h.get(fmt.Sprintf("%s/jobs?user_id=%d", s.labPath, s.annID), s.pi).items(t), 1)
			allocs := h.get(s.labPath+"/allocations", s.ann).items(t)
			require.Len(t, allocs, 2, "the default allocation, empty, and the lab's grant")
			assert.Equal(t, []any{0.0, 90.0}, []any{allocs[0]["remaining"], allocs[1]["remaining"]})
			assert.Len(t, h.get(s.labPath+"/allocations?ended=true", s.admin).items(t), 2)

			t.Run("managers_approve", func(t *testing.T) {
				path := fmt.Sprintf("/jobs/%d", idOf(annJob))
				h.patch(path, s.pi, `{"status": "APPROVED"}`).problem(t, http.StatusForbidden)
				got := h.patch(s.labPath, s.admin, `{"managers_approve": true}`).ok(t)
				assert.Equal(t, true, got["managers_approve"])
				h.patch(path, s.ann, `{"status": "APPROVED"}`).problem(t, http.StatusForbidden)
				assert.Equal(t, "APPROVED", h.patch(path, s.pi, `{"status": "APPROVED"}`).ok(t)["status"])
			})

			t.Run("default_project", func(t *testing.T) {
				r := h.put("/me/default-project", s.ann, `{"project": "qlab"}`)
				require.Equal(t, http.StatusNoContent, r.status, "%s", r.body)
				plain := `{"command": "x", "gpu_type": "A100", "estimated_hours": 1}`
				assert.Equal(t, s.lab["id"], h.post("/jobs", s.ann, plain).created(t)["project_id"], "the default project pays")
				projects := h.get("/me", s.ann).ok(t)["projects"].([]any)
				assert.Equal(t, true, projects[0].(map[string]any)["default"])
				assert.Equal(t, 1.0, projects[0].(map[string]any)["limit_left"])

				h.put("/me/default-project", s.ann, fmt.Sprintf(`{"project": %d}`, idOf(s.dept))).problem(t, http.StatusNotFound)
				assert.Equal(t, []string{"project"}, h.put("/me/default-project", s.ann, `{"project": 0}`).errorFields(t))
				assert.Equal(t, []string{"project"}, h.put("/me/default-project", s.ann, `{}`).errorFields(t))
				r = h.put("/me/default-project", s.ann, `{"project": null}`)
				require.Equal(t, http.StatusNoContent, r.status, "%s", r.body)
				assert.Nil(t, h.post("/jobs", s.ann, plain).created(t)["project_id"], "the user's own account pays again")
				assert.Equal(t, 9.0, h.balance(s.annID))
			})

			t.Run("transfer", func(t *testing.T) {
				sub := s.theory(t, h)
				a := h.post(s.labPath+"/transfers", s.pi, fmt.Sprintf(`{"to": %d, "amount": 5, "reason": "theory group"}`, idOf(sub))).created(t)
				assert.Equal(t, 5.0, a["amount"])
				assert.Equal(t, 5.0, a["remaining"])
				subAllocs := h.get(fmt.Sprintf("/projects/%d/allocations", idOf(sub)), s.admin).items(t)
				require.Len(t, subAllocs, 2)
				assert.Equal(t, a["id"], subAllocs[1]["id"])
				entries := h.get(s.labPath+"/ledger", s.admin).items(t)
				last := entries[len(entries)-1]
				assert.Equal(t, "transfer", last["kind"])
				assert.Equal(t, -5.0, last["delta_hours"])

				p := h.post(s.labPath+"/transfers", s.pi, fmt.Sprintf(`{"to": %d, "amount": 1000}`, idOf(sub))).problem(t, http.StatusBadRequest)
				assert.Equal(t, "urn:gaas:problem:quota-exceeded", p["type"])
				h.post(s.labPath+"/transfers", s.ann, fmt.Sprintf(`{"to": %d, "amount": 1}`, idOf(sub))).problem(t, http.StatusForbidden)
				assert.Equal(t, []string{"to"}, h.post(s.deptPath+"/transfers", s.admin, fmt.Sprintf(`{"to": %d, "amount": 1}`, idOf(sub))).errorFields(t),
					"only a project's own sub-projects take its credits")
			})

			t.Run("members", func(t *testing.T) {
				path := fmt.Sprintf("%s/members/%d", s.labPath, s.bobID)
				got := h.patch(path, s.pi, `{"limit": 50, "gpu_types": ["A100"]}`).ok(t)
				assert.Equal(t, map[string]any{"user_id": float64(s.bobID), "username": "bob", "role": "member", "limit": 50.0, "gpu_types": []any{"A100"}, "spent": 0.0}, got)
				got = h.patch(path, s.pi, `{"limit": null}`).ok(t)
				assert.Nil(t, got["limit"], "null removes the limit")
				assert.Equal(t, []any{"A100"}, got["gpu_types"], "what is absent stays")
				h.patch(path, s.pi, `{"role": "manager"}`).problem(t, http.StatusForbidden)
				p := h.patch(fmt.Sprintf("%s/members/%d", s.labPath, s.strangerID), s.pi, `{"limit": 1}`).problem(t, http.StatusNotFound)
				assert.Equal(t, fmt.Sprintf("User %d is not a member of project qlab.", s.strangerID), p["detail"])
				p = h.post(s.labPath+"/members", s.pi, `{"user_id": 999}`).problem(t, http.StatusNotFound)
				assert.Equal(t, "User 999 does not exist.", p["detail"])

				r := h.delete(path, s.pi)
				require.Equal(t, http.StatusNoContent, r.status, "%s", r.body)
				p = h.delete(path, s.pi).problem(t, http.StatusNotFound)
				assert.Equal(t, fmt.Sprintf("User %d is not a member of project qlab.", s.bobID), p["detail"])
				for _, m := range h.get(s.labPath+"/members", s.admin).items(t) {
					assert.NotEqual(t, float64(s.bobID), m["user_id"])
				}
				h.post("/jobs", s.bob, projectJob(`"qlab"`, 1)).problem(t, http.StatusNotFound)
			})

			t.Run("cap_removed", func(t *testing.T) {
				got := h.patch(s.deptPath, s.admin, `{"cap": null, "description": "Physics"}`).ok(t)
				assert.Nil(t, got["cap"])
				assert.Equal(t, "Physics", got["description"])
				got = h.patch(s.deptPath, s.admin, `{"cap": 100}`).ok(t)
				assert.Equal(t, 100.0, got["cap"])
				assert.Equal(t, "Physics", got["description"], "what is absent stays")
			})

			var names []any
			for _, p := range h.get("/projects", s.admin).items(t) {
				names = append(names, p["name"])
			}
			assert.Equal(t, []any{"physics", "qlab", "qlab-theory"}, names)
			names = nil
			for _, p := range h.get("/projects?limit=1", s.ann).items(t) {
				names = append(names, p["name"])
			}
			assert.Equal(t, []any{"qlab"}, names, "a member sees only their projects")
			assert.Empty(t, h.get("/projects", s.stranger).items(t))
		})
	}
}

// TestMemberUsernames: a manager, who may not read other users, lists
// the project's members with their usernames, page by page.
func TestMemberUsernames(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			h := newHarness(t, override{dsn: b.dsn(t)})
			s := newLabSite(t, h)
			h.get(fmt.Sprintf("/users/%d", s.annID), s.pi).problem(t, http.StatusNotFound)

			names := map[int64]any{}
			path := s.labPath + "/members?limit=2"
			for path != "" {
				r := h.get(path, s.pi).ok(t)
				for _, m := range r["items"].([]any) {
					m := m.(map[string]any)
					names[idOf(m, "user_id")] = m["username"]
				}
				path = ""
				if c, _ := r["next_cursor"].(string); c != "" {
					path = s.labPath + "/members?limit=2&cursor=" + c
				}
			}
			assert.Equal(t, map[int64]any{s.piID: "pia", s.annID: "ann", s.bobID: "bob"}, names)
		})
	}
}

// TestProjectAuthorization: a stranger is told a project does not exist,
// a member is refused what is for managers, and a manager what is for
// admins; nothing they asked for is written.
func TestProjectAuthorization(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			h := newHarness(t, override{dsn: b.dsn(t)})
			s := newLabSite(t, h)
			sub := s.theory(t, h)
			bob := fmt.Sprintf("%s/members/%d", s.labPath, s.bobID)
			pi := fmt.Sprintf("%s/members/%d", s.labPath, s.piID)
			transfer := fmt.Sprintf(`{"to": %d, "amount": 1}`, idOf(sub))
			type call struct{ method, path, body string }
			routes := []struct {
				call
				stranger, member, manager int // 0: the caller may
			}{
				{call{"POST", "/projects", `{"name": "mine"}`}, 403, 403, 403},
				{call{"GET", s.labPath, ""}, 404, 0, 0},
				{call{"PATCH", s.labPath, `{"cap": 1}`}, 404, 403, 403},
				{call{"POST", s.labPath + "/members", fmt.Sprintf(`{"user_id": %d, "role": "manager"}`, s.strangerID)}, 404, 403, 403},
				{call{"POST", s.labPath + "/members", fmt.Sprintf(`{"user_id": %d}`, s.strangerID)}, 404, 403, 0},
				{call{"GET", s.labPath + "/members", ""}, 404, 0, 0},
				{call{"PATCH", bob, `{"limit": 1}`}, 404, 403, 0},
				{call{"PATCH", bob, `{"role": "manager"}`}, 404, 403, 403},
				{call{"DELETE", pi, ""}, 404, 403, 403},
				{call{"POST", s.labPath + "/allocations", `{"amount": 1}`}, 404, 403, 403},
				{call{"GET", s.labPath + "/allocations", ""}, 404, 0, 0},
				{call{"POST", s.labPath + "/transfers", transfer}, 404, 403, 0},
				{call{"GET", s.labPath + "/ledger", ""}, 404, 403, 0},
				{call{"GET", s.labPath + "/jobs", ""}, 404, 403, 0},
				{call{"POST", "/jobs", projectJob(`"qlab"`, 1)}, 404, 0, 0},
				{call{"PUT", "/me/default-project", `{"project": "qlab"}`}, 404, 0, 0},
			}
			ledger := len(h.get(s.labPath+"/ledger", s.admin).items(t))
			for _, rt := range routes {
				for _, who := range []struct {
					name, token string
					want        int
				}{{"stranger", s.stranger, rt.stranger}, {"member", s.ann, rt.member}, {"manager", s.pi, rt.manager}} {
					if who.want == 0 {
						continue
					}
					r := h.do(req{method: rt.method, path: rt.path, token: who.token, body: rt.body})
					p := r.problem(t, who.want)
					if who.want == http.StatusNotFound {
						assert.Contains(t, p["detail"], "does not exist", "%s %s as %s", rt.method, rt.path, who.name)
					}
				}
			}
			// What the managers may do, they may: the last column.
			h.patch(bob, s.pi, `{"limit": 41}`).ok(t)
			h.post(s.labPath+"/transfers", s.pi, transfer).created(t)
			assert.Len(t, h.get(s.labPath+"/ledger", s.pi).items(t), ledger+1, "only the manager's transfer was written")
			assert.Len(t, h.get(s.labPath+"/members", s.admin).items(t), 3, "no member was added or removed")
			assert.Len(t, h.get("/projects", s.admin).items(t), 3, "no project was made")
			got := h.get(s.labPath, s.admin).ok(t)
			assert.Nil(t, got["cap"])
		})
	}
}

// TestProjectInvalid: bad input is a 422 that names its field, and
// writes nothing.
func TestProjectInvalid(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			h := newHarness(t, override{dsn: b.dsn(t)})
			s := newLabSite(t, h)
			sub := s.theory(t, h)
			bob := fmt.Sprintf("%s/members/%d", s.labPath, s.bobID)
			to := idOf(sub)
			cases := []struct {
				method, path, token, body string
				fields                    []string
			}{
				{"POST", "/projects", s.admin, `{}`, []string{"name"}},
				{"POST", "/projects", s.admin, `{"name": "2026"}`, []string{"name"}},
				{"POST", "/projects", s.admin, `{"name": "a b"}`, []string{"name"}},
				{"POST", "/projects", s.admin, `{"name": "x", "cap": -1}`, []string{"cap"}},
				{"POST", "/projects", s.admin, `{"name": "x", "cap": "1"}`, []string{"cap"}},
				{"POST", "/projects", s.admin, `{"name": "x", "cap": 1.0001}`, []string{"cap"}},
				{"POST", "/projects", s.admin, `{"name": "x", "parent_id": 0}`, []string{"parent_id"}},
				{"POST", "/projects", s.admin, `{"name": "x", "colour": "red"}`, []string{"colour"}},
				{"PATCH", s.labPath, s.admin, `{"cap": -1}`, []string{"cap"}},
				{"PATCH", s.labPath, s.admin, `{"name": "y"}`, []string{"name"}},
				{"POST", s.labPath + "/members", s.pi, `{"limit": 1}`, []string{"user_id"}},
				{"POST", s.labPath + "/members", s.pi, fmt.Sprintf(`{"user_id": %d, "role": "owner"}`, s.strangerID), []string{"role"}},
				{"POST", s.labPath + "/members", s.pi, fmt.Sprintf(`{"user_id": %d, "limit": -1}`, s.strangerID), []string{"limit"}},
				{"POST", s.labPath + "/members", s.pi, fmt.Sprintf(`{"user_id": %d, "gpu_types": "A100"}`, s.strangerID), []string{"gpu_types"}},
				{"PATCH", bob, s.pi, fmt.Sprintf(`{"user_id": %d}`, s.bobID), []string{"user_id"}},
				{"PATCH", bob, s.pi, `{"role": "boss"}`, []string{"role"}},
				{"POST", s.labPath + "/transfers", s.pi, `{"amount": 1}`, []string{"to"}},
				{"POST", s.labPath + "/transfers", s.pi, fmt.Sprintf(`{"to": %d}`, to), []string{"amount"}},
				{"POST", s.labPath + "/transfers", s.pi, fmt.Sprintf(`{"to": %d, "amount": 0}`, to), []string{"amount"}},
				{"POST", s.labPath + "/transfers", s.pi, fmt.Sprintf(`{"to": %d, "amount": 1, "expires_at": "tomorrow"}`, to), []string{"expires_at"}},
				{"POST", s.labPath + "/allocations", s.admin, `{"amount": 0.0001}`, []string{"amount"}},
				{"POST", "/jobs", s.ann, projectJob(`true`, 1), []string{"project"}},
				{"POST", "/jobs", s.ann, projectJob(`0`, 1), []string{"project"}},
				{"POST", "/jobs", s.ann, projectJob(`""`, 1), []string{"project"}},
				{"PUT", "/me/default-project", s.ann, `{"project": 1.5}`, []string{"project"}},
				{"GET", "/projects?limit=0", s.ann, "", []string{"limit"}},
				{"GET", "/projects?status=x", s.ann, "", []string{"status"}},
				{"GET", s.labPath + "/allocations?ended=maybe", s.ann, "", []string{"ended"}},
				{"GET", s.labPath + "/jobs?since=yesterday", s.pi, "", []string{"since"}},
			}
			ledger := h.get(s.labPath+"/ledger", s.admin).items(t)
			for _, tc := range cases {
				r := h.do(req{method: tc.method, path: tc.path, token: tc.token, body: tc.body})
				assert.Equal(t, tc.fields, r.errorFields(t), "%s %s %s", tc.method, tc.path, tc.body)
			}
			assert.Equal(t, ledger, h.get(s.labPath+"/ledger", s.admin).items(t), "nothing was charged or moved")
			assert.Len(t, h.get("/projects", s.admin).items(t), 3, "no project was made")
			assert.Len(t, h.get(s.labPath+"/members", s.admin).items(t), 3, "no member was added")
			got := h.get(s.labPath, s.admin).ok(t)
			assert.Nil(t, got["cap"])
			assert.Equal(t, 12.0, h.get("/me", s.ann).ok(t)["projects"].([]any)[0].(map[string]any)["limit"])
			assert.Equal(t, 10.0, h.balance(s.annID))
		})
	}
}

// TestProjectsUnseenByOriginalClients: a client that sends none of the
// new fields gets its jobs charged to the user's own account, as before.
func TestProjectsUnseenByOriginalClients(t *testing.T) {
	h := newHarness(t)
	id, alice := h.user("alice")
	_, admin := h.admin("root")
	h.post("/projects", admin, `{"name": "physics"}`).created(t)
	job := h.post("/jobs", alice, jobBody).created(t)
	assert.Nil(t, job["project_id"])
	assert.Equal(t, 7.5, h.balance(id))
	p := h.post("/jobs", alice, `{"command": "x", "gpu_type": "A100", "estimated_hours": 8}`).problem(t, http.StatusBadRequest)
	assert.Equal(t, "Not enough credits for GPU type A100: the job costs 8, and 7.5 are available for that type.", p["detail"])
	for _, e := range h.get(fmt.Sprintf("/users/%d/ledger", id), alice).items(t) {
		assert.Equal(t, float64(id), e["user_id"])
		assert.Nil(t, e["member_id"])
	}
	assert.Equal(t, []any{}, h.get("/me", alice).ok(t)["projects"])
	h.get("/projects/physics", alice).problem(t, http.StatusNotFound)
}
