// Package portal is gaas's web portal: pages rendered on the server with
// html/template for the people who use and run it, signed in with a cookie
// session. It calls the library's services in process with the signed-in
// user as caller, as the API does: the library decides who may do what,
// and the portal only shows it. Its templates and static files are
// embedded, so the binary serves them with nothing beside it.
//
// The portal answers GET / (the signed-in person's own page) and every
// path under /portal/; server.NewServer mounts it beside the API.
package portal

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gaas-io/gaas/gaas"
)

// Config is how the portal is served.
type Config struct {
	// BasePath is the path prefix under which browsers reach the server,
	// such as "/gpu" behind a proxy that serves it at /gpu/ (see
	// server.Config.BasePath); links and cookies are under it. When empty,
	// a request's X-Forwarded-Prefix header, when it is a clean path, is
	// the prefix for that request.
	BasePath string

	// SessionTTL is how long a sign-in lasts; 0 means DefaultSessionTTL.
	SessionTTL time.Duration

	// SecureCookies marks the cookies Secure on every request, for a
	// server behind a proxy that terminates TLS; they are Secure anyway on
	// a request that came over TLS.
	SecureCookies bool
}

// DefaultSessionTTL is Config.SessionTTL when it is 0: a working day.
const DefaultSessionTTL = 12 * time.Hour

// SignInGate runs check, the password check of a sign-in as username
// from r, under the limits of the server's POST /login (failed attempts
// by address and by username, and the slots that bound password hashing
// at once), and returns check's error. When the limits refuse the attempt
// or no slot frees up in time, it does not run check and returns a
// *Refused. A sign-in and a login are one budget.
type SignInGate func(r *http.Request, username string, check func() error) error

// Refused is a sign-in that a SignInGate did not try.
type Refused struct {
	// RetryAfter is how long to wait before trying again.
	RetryAfter time.Duration
	// Busy is set when the server was too busy checking passwords, rather
	// than the attempts too many.
	Busy bool
}

func (e *Refused) Error() string {
	if e.Busy {
		return "portal: too many passwords are being checked just now"
	}
	return fmt.Sprintf("portal: too many failed sign-ins; try again in %v", e.RetryAfter)
}

// Services are the library's services the portal calls; all are required.
type Services struct {
	Sessions    gaas.Sessions
	Auth        gaas.Authenticator
	Users       gaas.UserService
	Jobs        gaas.JobService
	Quota       gaas.Quota
	Catalogue   gaas.Catalogue
	Allocations gaas.Allocations
	Projects    gaas.Projects
	Schedules   gaas.Schedules
	Webhooks    gaas.Webhooks
	Reports     gaas.Reports
	// Gate is the server's limit on password checks.
	Gate SignInGate
	// Admit is the server's limit on the requests a user has in flight:
	// it counts one of user's, unless they have too many (ok false), until
	// done is called.
	Admit func(user int64) (done func(), ok bool)
}

func (s Services) missing() string {
	for _, f := range []struct {
		name string
		nil  bool
	}{
		{"Sessions", s.Sessions == nil}, {"Auth", s.Auth == nil}, {"Users", s.Users == nil}, {"Jobs", s.Jobs == nil},
		{"Quota", s.Quota == nil}, {"Catalogue", s.Catalogue == nil}, {"Allocations", s.Allocations == nil},
		{"Projects", s.Projects == nil}, {"Schedules", s.Schedules == nil}, {"Webhooks", s.Webhooks == nil},
		{"Reports", s.Reports == nil}, {"Gate", s.Gate == nil}, {"Admit", s.Admit == nil},
	} {
		if f.nil {
			return f.name
		}
	}
	return ""
}

// New returns the portal. It panics when svc lacks a service, at start-up
// rather than at the first page that needs it.
func New(logger *slog.Logger, cfg Config, svc Services) http.Handler {
	if name := svc.missing(); name != "" {
		panic("portal: New: Services." + name + " is nil")
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = DefaultSessionTTL
	}
	p := &site{logger: logger, cfg: cfg, svc: svc, pages: parsePages()}
	mux := http.NewServeMux()
	addRoutes(mux, p)
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.renderError(w, r, http.StatusForbidden, "This form was sent from another site, so it was refused and nothing was changed.")
	}))
	pages := cop.Handler(p.sessions(p.csrf(mux)))
	static := handleStatic()
	return securityHeaders(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/portal/static/") && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
			static.ServeHTTP(w, r) // no session to look up for a stylesheet
			return
		}
		pages.ServeHTTP(w, r)
	}))
}

// site is what every page handler shares.
type site struct {
	logger *slog.Logger
	cfg    Config
	svc    Services
	pages  pages
}

// errNoSession marks a page asked for without a session.
var errNoSession = errors.New("portal: not signed in")
