package server

import (
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gaas-io/gaas/gaas"
)

// addRoutes is the map of the API: every route, in one place.
func addRoutes(mux *http.ServeMux, logger *slog.Logger, cfg Config, auth gaas.Authenticator, users gaas.UserService,
	jobs gaas.JobService, quota gaas.Quota, db Pinger) {
	perUser := newInFlight(cfg.RequestsPerUser)
	authed := func(h http.Handler) http.Handler { return authenticate(logger, auth, perUser.wrap(h)) }
	slots := newHashSlots(cfg.HashSlots, cfg.HashWait)
	guard := newLoginGuard(cfg)
	registrations := registrationPolicy{closed: cfg.RegistrationClosed, byAddr: newLimiters(cfg.RegistrationsPerAddress, time.Hour)}

	mux.Handle("GET /healthz", handleHealth(logger, db))
	mux.Handle("GET /version", handleVersion(BuildVersion()))
	mux.Handle("GET /openapi.json", handleOpenAPI(cfg.BasePath))
	mux.Handle("GET /docs", handleDocsPage())
	mux.Handle("GET /docs/{file}", handleDocsAsset())
	if cfg.ServeMetrics && cfg.Metrics != nil {
		mux.Handle("GET /metrics", cfg.Metrics.Handler())
	}
	mux.Handle("POST /register", handleRegister(logger, auth, registrations, slots))
	mux.Handle("POST /login", handleLogin(logger, auth, guard, slots, cfg.Metrics))

	mux.Handle("POST /jobs", authed(handleSubmitJob(logger, jobs)))
	mux.Handle("GET /jobs", authed(handleListJobs(logger, jobs)))
	mux.Handle("GET /jobs/{id}", authed(handleGetJob(logger, jobs)))
	mux.Handle("PATCH /jobs/{id}", authed(handleTransitionJob(logger, jobs)))
	mux.Handle("POST /jobs/{id}/cancel", authed(handleCancelJob(logger, jobs)))

	mux.Handle("GET /me", authed(handleMe(logger, users)))
	mux.Handle("POST /me/password", authed(handleChangePassword(logger, auth, guard, slots)))
	mux.Handle("POST /me/logout-all", authed(handleLogoutAll(logger, auth)))
	mux.Handle("GET /users", authed(handleListUsers(logger, users)))
	mux.Handle("POST /users", authed(handleCreateUser(logger, auth, slots)))
	mux.Handle("GET /users/{id}", authed(handleGetUser(logger, users)))
	mux.Handle("PATCH /users/{id}", authed(handleSetRole(logger, users)))
	mux.Handle("PUT /users/{id}/password", authed(handleResetPassword(logger, auth, slots)))
	mux.Handle("POST /users/{id}/disable", authed(handleSetDisabled(logger, users, true)))
	mux.Handle("POST /users/{id}/enable", authed(handleSetDisabled(logger, users, false)))
	mux.Handle("PUT /users/{id}/quota", authed(handleSetQuota(logger, quota)))
	mux.Handle("POST /users/{id}/quota/grants", authed(handleGrant(logger, quota)))
	mux.Handle("GET /users/{id}/ledger", authed(handleLedger(logger, quota)))
}

// redirectSlash answers a path that matches no route only because of a
// trailing slash ("/jobs/") with a 307 to the route without it, as FastAPI,
// which served the original API, does: the method and body are kept. The
// Location is relative ("../jobs"), so that it holds behind a proxy that
// serves the API under a prefix. It reports whether it answered.
func redirectSlash(w http.ResponseWriter, r *http.Request, mux *http.ServeMux) bool {
	trimmed, ok := strings.CutSuffix(r.URL.Path, "/")
	last := trimmed[strings.LastIndex(trimmed, "/")+1:]
	if !ok || last == "" {
		return false
	}
	probe := r.Clone(r.Context())
	probe.URL.Path, probe.URL.RawPath = trimmed, ""
	if _, pattern := mux.Handler(probe); pattern == "" {
		return false
	}
	to := url.URL{Path: "../" + last, RawQuery: r.URL.RawQuery}
	w.Header().Set("Location", to.String())
	w.WriteHeader(http.StatusTemporaryRedirect)
	return true
}
