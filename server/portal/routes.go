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
	addAdminRoutes(mux, p)

	mux.Handle("/", p.handleNotFound())
}
