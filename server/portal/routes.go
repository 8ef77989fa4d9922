package portal

import "net/http"

// addRoutes is the map of the portal: every page, in one place. Pages
// that need a signed-in visitor are wrapped in signedIn; every POST is
// checked for its CSRF token before it reaches its handler (see csrf), and
// finds its form parsed.
//
// A page is a handler here, a template templates/NAME.html that defines
// "content" (its forms carry <input type="hidden" name="csrf"
// value="{{.CSRF}}">), and p.render(w, r, status, NAME, title, data); a
// form's handler ends with p.redirect(w, r, path, message), or renders
// the form again with its errors. p.showError says what a library error
// means. Links are "{{.Base}}/portal/...".
//
// The static files (GET /portal/static/) are served by New, ahead of the
// session check.
func addRoutes(mux *http.ServeMux, p *site) {
	mux.Handle("GET /portal/sign-in", p.handleSignInPage())
	mux.Handle("POST /portal/sign-in", p.handleSignIn())
	mux.Handle("POST /portal/sign-out", p.signedIn(p.handleSignOut()))
	mux.Handle("POST /portal/sign-out-everywhere", p.signedIn(p.handleSignOutEverywhere()))

	mux.Handle("GET /{$}", p.signedIn(p.handleHome()))
	mux.Handle("GET /portal/jobs", p.signedIn(p.handleJobs()))
	mux.Handle("GET /portal/jobs/{id}", p.signedIn(p.handleJob()))
	mux.Handle("POST /portal/jobs/cancel", p.signedIn(p.handleCancel()))
	mux.Handle("GET /portal/jobs/new", p.signedIn(p.handleSubmitPage()))
	mux.Handle("POST /portal/jobs/new", p.signedIn(p.handleSubmit()))
	mux.Handle("GET /portal/ledger", p.signedIn(p.handleLedger()))

	// The pages of projects' managers and of admins. The
	// admin pages (/portal/admin/...) answer 404 to anyone but an admin, as
	// a page that is not theirs does; the library still decides every change.
	mux.Handle("POST /portal/jobs/decide", p.signedIn(p.handleDecide()))

	mux.Handle("GET /portal/projects", p.signedIn(p.handleProjects()))
	mux.Handle("GET /portal/projects/{id}", p.signedIn(p.handleProject()))
	mux.Handle("POST /portal/projects/{id}/members", p.signedIn(p.handleSetMember()))
	mux.Handle("POST /portal/projects/{id}/members/{user}/limit", p.signedIn(p.handleMemberLimit()))
	mux.Handle("POST /portal/projects/{id}/members/{user}/remove", p.signedIn(p.handleRemoveMember()))
	mux.Handle("POST /portal/schedules", p.signedIn(p.handleCreateSchedule()))
	mux.Handle("POST /portal/schedules/{id}", p.signedIn(p.handleUpdateSchedule()))

	admin := func(h http.Handler) http.Handler { return p.signedIn(p.adminOnly(h)) }
	mux.Handle("GET /portal/admin", admin(p.handleAdminIndex()))
	mux.Handle("GET /portal/admin/queue", admin(p.handleQueue()))
	mux.Handle("GET /portal/admin/users", admin(p.handleUsers()))
	mux.Handle("POST /portal/admin/users", admin(p.handleCreateUser()))
	mux.Handle("GET /portal/admin/users/{id}", admin(p.handleUser()))
	mux.Handle("POST /portal/admin/users/{id}/disabled", admin(p.handleSetDisabled()))
	mux.Handle("POST /portal/admin/users/{id}/password", admin(p.handleResetPassword()))
	mux.Handle("POST /portal/admin/users/{id}/grant", admin(p.handleGrant()))
	mux.Handle("GET /portal/admin/projects", admin(p.handleAdminProjects()))
	mux.Handle("POST /portal/admin/projects", admin(p.handleCreateProject()))
	mux.Handle("POST /portal/admin/projects/{id}", admin(p.handleUpdateProject()))
	mux.Handle("POST /portal/admin/allocations", admin(p.handleCreateAllocation()))
	mux.Handle("POST /portal/admin/allocations/{id}", admin(p.handleUpdateAllocation()))
	mux.Handle("GET /portal/admin/gpu-types", admin(p.handleCatalogue()))
	mux.Handle("POST /portal/admin/gpu-types", admin(p.handleCreateGPUType()))
	mux.Handle("POST /portal/admin/gpu-types/update", admin(p.handleUpdateGPUType()))
	mux.Handle("GET /portal/admin/webhooks", admin(p.handleWebhooks()))
	mux.Handle("POST /portal/admin/webhooks", admin(p.handleCreateWebhook()))
	mux.Handle("GET /portal/admin/webhooks/{id}", admin(p.handleWebhook()))
	mux.Handle("POST /portal/admin/webhooks/{id}/enable", admin(p.handleEnableWebhook()))
	mux.Handle("POST /portal/admin/webhooks/{id}/delete", admin(p.handleDeleteWebhook()))
	mux.Handle("POST /portal/admin/webhooks/{id}/deliveries/{delivery}/redeliver", admin(p.handleRedeliver()))
	mux.Handle("GET /portal/admin/report", admin(p.handleReport()))
	mux.Handle("GET /portal/admin/report.csv", admin(p.handleReportCSV()))

	mux.Handle("/", p.handleNotFound())
}
