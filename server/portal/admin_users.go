package portal

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/gaas-io/gaas/gaas"
)

// usersPage is the data of the admins' list of users.
type usersPage struct {
	Users []gaas.User
	Pager pager
	// Search is the username searched for, as given.
	Search string
}

// handleUsers lists the users a page at a time, or finds one by name.
func (p *site) handleUsers() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		data := usersPage{Search: strings.TrimSpace(q.Get("username"))}
		page, err := p.svc.Users.Users(r.Context(), callerID(r), gaas.UserFilter{Username: data.Search, Page: gaas.Page{Cursor: q.Get("cursor")}})
		if err != nil {
			p.showError(w, r, err)
			return
		}
		data.Users, data.Pager = page.Items, p.pageLinks(r, page.NextCursor)
		p.render(w, r, http.StatusOK, "admin_users", "Users", data)
	})
}

// handleCreateUser makes an account, as POST /users does.
func (p *site) handleCreateUser() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f := r.PostForm
		role := gaas.RoleUser
		if f.Get("role") == string(gaas.RoleAdmin) {
			role = gaas.RoleAdmin
		}
		username := strings.TrimSpace(f.Get("username"))
		var u gaas.User
		err := p.hashing(r, username, func() (err error) {
			u, err = p.svc.Auth.CreateUser(r.Context(), callerID(r), gaas.CreateUserRequest{Username: username, Password: f.Get("password"), Role: role})
			return err
		})
		if err != nil {
			p.failed(w, r, "The user was not created", fmt.Sprintf("the username %q is taken.", username), err)
			return
		}
		p.redirect(w, r, userLink(u.ID), fmt.Sprintf("User %s is created, with role %s.", u.Username, u.Role))
	})
}

// hashing runs fn, which hashes a password, as the API's POST /users
// and PUT /users/{id}/password do: holding one of the server's slots for
// password hashing, through its Gate (key is what its limits count, as a
// username; only a refusal of the caller would be counted).
func (p *site) hashing(r *http.Request, key string, fn func() error) error {
	return p.svc.Gate(r, key, fn)
}

// userLink is the admins' page of user id.
func userLink(id int64) string { return "/portal/admin/users/" + strconv.FormatInt(id, 10) }

// userPage is the data of the admins' page of a user.
type userPage struct {
	User        gaas.User
	Allocations allocationsView
	Schedules   schedulesView
	Memberships []gaas.Membership
}

// handleUser shows a user to admins: their account, allocations and
// schedules, with the forms that change them.
func (p *site) handleUser() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := pathID(r, "id")
		if !ok {
			p.handleNotFound().ServeHTTP(w, r)
			return
		}
		u, err := p.svc.Users.User(r.Context(), callerID(r), gaas.GetUserRequest{UserID: id})
		if err != nil {
			p.showError(w, r, err)
			return
		}
		data := userPage{User: u}
		if data.Allocations, err = p.allocationsOf(r, id, 0); err == nil {
			data.Schedules, err = p.schedulesOf(r, id, 0)
		}
		if err != nil {
			p.showError(w, r, err)
			return
		}
		p.render(w, r, http.StatusOK, "admin_user", "User "+u.Username, data)
	})
}

// handleSetDisabled disables (disabled=true) or enables a user; disabling
// ends their sessions and tokens.
func (p *site) handleSetDisabled() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := pathID(r, "id")
		if !ok {
			p.handleNotFound().ServeHTTP(w, r)
			return
		}
		disabled := r.PostForm.Get("disabled") == "true"
		u, err := p.svc.Users.SetDisabled(r.Context(), callerID(r), gaas.SetDisabledRequest{UserID: id, Disabled: disabled})
		if err != nil {
			p.failed(w, r, "The user was not changed", "they are the last enabled admin; make another admin first.", err)
			return
		}
		msg := fmt.Sprintf("User %s is enabled.", u.Username)
		if u.Disabled {
			msg = fmt.Sprintf("User %s is disabled: their sessions and tokens have ended.", u.Username)
		}
		p.redirect(w, r, userLink(u.ID), msg)
	})
}

// handleResetPassword sets a user's password, which ends their sessions
// and tokens.
func (p *site) handleResetPassword() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := pathID(r, "id")
		if !ok {
			p.handleNotFound().ServeHTTP(w, r)
			return
		}
		var u gaas.User
		err := p.hashing(r, "#"+strconv.FormatInt(id, 10), func() (err error) {
			u, err = p.svc.Auth.ResetPassword(r.Context(), callerID(r), gaas.ResetPasswordRequest{UserID: id, Password: r.PostForm.Get("password")})
			return err
		})
		if err != nil {
			p.failed(w, r, "The password was not reset", "", err)
			return
		}
		p.redirect(w, r, userLink(u.ID), fmt.Sprintf("The password of %s is reset: their sessions and tokens have ended.", u.Username))
	})
}

// handleGrant adds credits to a user's default allocation, or takes them
// back (a negative amount).
func (p *site) handleGrant() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := pathID(r, "id")
		if !ok {
			p.handleNotFound().ServeHTTP(w, r)
			return
		}
		const what = "No credits were granted"
		s := strings.TrimSpace(r.PostForm.Get("amount"))
		negative := strings.HasPrefix(s, "-")
		delta, err := requiredCredits("amount", strings.TrimPrefix(s, "-"))
		if err != nil {
			p.failed(w, r, what, "", err)
			return
		}
		if negative {
			delta = -delta
		}
		u, err := p.svc.Quota.Grant(r.Context(), callerID(r), gaas.GrantRequest{UserID: id, Delta: delta, Reason: strings.TrimSpace(r.PostForm.Get("reason"))})
		if err != nil {
			p.failed(w, r, what, "", err)
			return
		}
		p.redirect(w, r, userLink(u.ID), fmt.Sprintf("%s credits granted to %s: their balance is %s.", delta, u.Username, u.Balance))
	})
}

// adminProjectsPage is the data of the admins' list of projects.
type adminProjectsPage struct {
	Projects []gaas.Project
	Pager    pager
}

// handleAdminProjects lists every project, a page at a time.
func (p *site) handleAdminProjects() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		page, err := p.svc.Projects.Projects(r.Context(), callerID(r), gaas.ProjectsRequest{Page: gaas.Page{Cursor: r.URL.Query().Get("cursor")}})
		if err != nil {
			p.showError(w, r, err)
			return
		}
		p.render(w, r, http.StatusOK, "admin_projects", "Projects", adminProjectsPage{Projects: page.Items, Pager: p.pageLinks(r, page.NextCursor)})
	})
}

// handleCreateProject makes a project.
func (p *site) handleCreateProject() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		const what = "The project was not created"
		f := r.PostForm
		req := gaas.CreateProjectRequest{Name: strings.TrimSpace(f.Get("name")), Description: strings.TrimSpace(f.Get("description")),
			ManagersApprove: f.Get("managers_approve") != "", AutoApprove: f.Get("auto_approve") != ""}
		if s := strings.TrimSpace(f.Get("parent")); s != "" {
			id, err := p.projectID(r, "parent", s)
			if err != nil {
				p.failed(w, r, what, "", err)
				return
			}
			req.ParentID = id
		}
		var err error
		if req.Cap, err = optionalCredits("cap", f.Get("cap")); err != nil {
			p.failed(w, r, what, "", err)
			return
		}
		pr, err := p.svc.Projects.CreateProject(r.Context(), callerID(r), req)
		if err != nil {
			p.failed(w, r, what, fmt.Sprintf("the name %q is taken.", req.Name), err)
			return
		}
		p.redirect(w, r, projectLink(pr.ID), fmt.Sprintf("Project %s is created.", pr.Name))
	})
}

// handleUpdateProject sets a project's description, cap, and who approves
// its jobs, from the form on its page.
func (p *site) handleUpdateProject() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pr, err := p.projectOf(r)
		if err != nil {
			p.showError(w, r, err)
			return
		}
		const what = "The project was not changed"
		f := r.PostForm
		description := strings.TrimSpace(f.Get("description"))
		managers, auto := f.Get("managers_approve") != "", f.Get("auto_approve") != ""
		req := gaas.UpdateProjectRequest{ProjectID: pr.ID, Description: &description, SetCap: true, ManagersApprove: &managers, AutoApprove: &auto}
		if req.Cap, err = optionalCredits("cap", f.Get("cap")); err != nil {
			p.failed(w, r, what, "", err)
			return
		}
		if pr, err = p.svc.Projects.UpdateProject(r.Context(), callerID(r), req); err != nil {
			p.failed(w, r, what, "", err)
			return
		}
		p.redirect(w, r, projectLink(pr.ID), fmt.Sprintf("Project %s is saved.", pr.Name))
	})
}
