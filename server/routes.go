package server

import (
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gaas-io/gaas/server/portal"
)

// addRoutes is the map of the API: every route, in one place.
func addRoutes(mux *http.ServeMux, logger *slog.Logger, cfg Config, svc Services) {
	auth, users, jobs, quota, catalogue, allocations, projects := svc.Auth, svc.Users, svc.Jobs, svc.Quota, svc.Catalogue, svc.Allocations, svc.Projects
	perUser := newInFlight(cfg.RequestsPerUser)
	authed := func(h http.Handler) http.Handler { return authenticate(logger, auth, perUser.wrap(h)) }
	slots := newHashSlots(cfg.HashSlots, cfg.HashWait)
	guard := newLoginGuard(cfg)
	registrations := registrationPolicy{closed: cfg.RegistrationClosed, byAddr: newLimiters(cfg.RegistrationsPerAddress, time.Hour)}

	mux.Handle("GET /healthz", queryParams(handleHealth(logger, svc.DB)))
	mux.Handle("GET /version", queryParams(handleVersion(BuildVersion())))
	mux.Handle("GET /openapi.json", queryParams(handleOpenAPI(cfg.BasePath)))
	mux.Handle("GET /docs", queryParams(handleDocsPage()))
	mux.Handle("GET /docs/{file}", queryParams(handleDocsAsset()))
	if cfg.ServeMetrics && cfg.Metrics != nil {
		mux.Handle("GET /metrics", queryParams(cfg.Metrics.Handler()))
	}
	mux.Handle("POST /register", queryParams(handleRegister(logger, auth, registrations, slots)))
	login := guard.passwordLogin(slots, cfg.Metrics)
	mux.Handle("POST /login", queryParams(handleLogin(logger, auth, login)))

	mux.Handle("POST /jobs", authed(queryParams(handleSubmitJob(logger, jobs))))
	mux.Handle("GET /jobs", authed(queryParams(handleListJobs(logger, jobs), "status", "user_id", "gpu_type", "since", "until", "limit", "cursor")))
	mux.Handle("GET /jobs/{id}", authed(queryParams(handleGetJob(logger, jobs))))
	mux.Handle("PATCH /jobs/{id}", authed(queryParams(handleTransitionJob(logger, jobs))))
	mux.Handle("POST /jobs/{id}/cancel", authed(queryParams(handleCancelJob(logger, jobs))))
	mux.Handle("GET /jobs/{id}/log", authed(queryParams(handleJobLog(logger, jobs, svc.Logs), "bytes")))

	mux.Handle("GET /me", authed(queryParams(handleMe(logger, users, projects))))
	mux.Handle("PUT /me/default-project", authed(queryParams(handleSetDefaultProject(logger, projects))))
	mux.Handle("POST /me/password", authed(queryParams(handleChangePassword(logger, auth, guard, slots))))
	mux.Handle("POST /me/logout-all", authed(queryParams(handleLogoutAll(logger, auth))))
	mux.Handle("GET /users", authed(queryParams(handleListUsers(logger, users), "username", "limit", "cursor")))
	mux.Handle("POST /users", authed(queryParams(handleCreateUser(logger, auth, slots))))
	mux.Handle("GET /users/{id}", authed(queryParams(handleGetUser(logger, users))))
	mux.Handle("PATCH /users/{id}", authed(queryParams(handleSetRole(logger, users))))
	mux.Handle("PUT /users/{id}/password", authed(queryParams(handleResetPassword(logger, auth, slots))))
	mux.Handle("POST /users/{id}/disable", authed(queryParams(handleSetDisabled(logger, users, true))))
	mux.Handle("POST /users/{id}/enable", authed(queryParams(handleSetDisabled(logger, users, false))))
	mux.Handle("PUT /users/{id}/quota", authed(queryParams(handleSetQuota(logger, quota))))
	mux.Handle("POST /users/{id}/quota/grants", authed(queryParams(handleGrant(logger, quota))))
	mux.Handle("GET /users/{id}/ledger", authed(queryParams(handleLedger(logger, quota), "limit", "cursor")))
	mux.Handle("GET /users/{id}/allocations", authed(queryParams(handleListAllocations(logger, allocations), "ended", "limit", "cursor")))
	mux.Handle("POST /users/{id}/allocations", authed(queryParams(handleCreateAllocation(logger, allocations))))
	mux.Handle("PATCH /allocations/{id}", authed(queryParams(handleUpdateAllocation(logger, allocations))))

	mux.Handle("POST /projects", authed(queryParams(handleCreateProject(logger, projects))))
	mux.Handle("GET /projects", authed(queryParams(handleListProjects(logger, projects), "limit", "cursor")))
	mux.Handle("GET /projects/{id}", authed(queryParams(handleGetProject(logger, projects))))
	mux.Handle("PATCH /projects/{id}", authed(queryParams(handleUpdateProject(logger, projects))))
	mux.Handle("POST /projects/{id}/members", authed(queryParams(handleAddMember(logger, projects))))
	mux.Handle("GET /projects/{id}/members", authed(queryParams(handleListMembers(logger, projects), "limit", "cursor")))
	mux.Handle("PATCH /projects/{id}/members/{user_id}", authed(queryParams(handleUpdateMember(logger, projects))))
	mux.Handle("DELETE /projects/{id}/members/{user_id}", authed(queryParams(handleRemoveMember(logger, projects))))
	mux.Handle("POST /projects/{id}/allocations", authed(queryParams(handleCreateProjectAllocation(logger, projects, allocations))))
	mux.Handle("GET /projects/{id}/allocations", authed(queryParams(handleListProjectAllocations(logger, projects, allocations), "ended", "limit", "cursor")))
	mux.Handle("POST /projects/{id}/transfers", authed(queryParams(handleTransfer(logger, projects))))
	mux.Handle("GET /projects/{id}/ledger", authed(queryParams(handleProjectLedger(logger, projects), "limit", "cursor")))
	mux.Handle("GET /projects/{id}/jobs", authed(queryParams(handleProjectJobs(logger, projects, jobs), "status", "user_id", "gpu_type", "since", "until", "limit", "cursor")))

	mux.Handle("POST /schedules", authed(queryParams(handleCreateSchedule(logger, svc.Schedules))))
	mux.Handle("GET /schedules", authed(queryParams(handleListSchedules(logger, svc.Schedules), "user_id", "project_id", "limit", "cursor")))
	mux.Handle("GET /schedules/{id}", authed(queryParams(handleGetSchedule(logger, svc.Schedules))))
	mux.Handle("PATCH /schedules/{id}", authed(queryParams(handleUpdateSchedule(logger, svc.Schedules))))

	mux.Handle("GET /reports/usage", authed(queryParams(handleUsage(logger, svc.Reports), "from", "to", "group_by", "period", "user_id", "project_id", "format")))

	mux.Handle("GET /gpu-types", authed(queryParams(handleListGPUTypes(logger, catalogue), "retired")))
	mux.Handle("POST /gpu-types", authed(queryParams(handleCreateGPUType(logger, catalogue))))
	mux.Handle("PATCH /gpu-types/{name}", authed(queryParams(handleUpdateGPUType(logger, catalogue))))

	mux.Handle("POST /webhooks", authed(queryParams(handleCreateWebhook(logger, svc.Webhooks))))
	mux.Handle("GET /webhooks", authed(queryParams(handleListWebhooks(logger, svc.Webhooks), "limit", "cursor")))
	mux.Handle("GET /webhooks/{id}", authed(queryParams(handleGetWebhook(logger, svc.Webhooks))))
	mux.Handle("PATCH /webhooks/{id}", authed(queryParams(handleUpdateWebhook(logger, svc.Webhooks))))
	mux.Handle("DELETE /webhooks/{id}", authed(queryParams(handleDeleteWebhook(logger, svc.Webhooks))))
	mux.Handle("GET /webhooks/{id}/deliveries", authed(queryParams(handleListDeliveries(logger, svc.Webhooks), "limit", "cursor")))
	mux.Handle("POST /webhooks/{id}/deliveries/{delivery_id}/redeliver", authed(queryParams(handleRedeliver(logger, svc.Webhooks))))
	if svc.Sessions != nil {
		site := portal.New(logger, portal.Config{BasePath: cfg.BasePath, SessionTTL: cfg.SessionTTL, SecureCookies: cfg.SecureCookies},
			portal.Services{Sessions: svc.Sessions, Auth: auth, Users: users, Jobs: jobs, Quota: quota, Catalogue: catalogue,
				Allocations: allocations, Projects: projects, Schedules: svc.Schedules, Webhooks: svc.Webhooks, Reports: svc.Reports, Gate: login,
				Admit: perUser.admit})
		mux.Handle("GET /{$}", site)
		mux.Handle("/portal/", site)
	}
	if x, d := svc.Executors, svc.Dispatch; x != nil && d != nil {
		executor := func(h http.Handler) http.Handler { return authenticateExecutor(logger, x, h) }
		mux.Handle("POST /executor/claim", executor(queryParams(handleExecutorClaim(logger, d))))
		mux.Handle("POST /executor/heartbeat", executor(queryParams(handleExecutorHeartbeat(logger, d))))
		mux.Handle("POST /executor/finish", executor(queryParams(handleExecutorFinish(logger, d))))
		mux.Handle("GET /executor/leases", executor(queryParams(handleExecutorLeases(logger, d))))
		mux.Handle("POST /executors", authed(queryParams(handleCreateExecutor(logger, x))))
		mux.Handle("GET /executors", authed(queryParams(handleListExecutors(logger, x))))
		mux.Handle("DELETE /executors/{name}", authed(queryParams(handleRevokeExecutor(logger, x))))
	}
}

// queryParams lets through to h only requests whose query names nothing
// but the parameters given, each at most once: any other, or a repeated
// one, is a 422 naming it rather than a filter silently ignored. A route
// with no list takes no query at all. Behind authenticate, it answers
// after the caller is known, as every other check of the request does.
func queryParams(h http.Handler, names ...string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := checkQuery(r.URL.RawQuery, names); err != nil {
			writeProblem(w, r, problemFor(err))
			return
		}
		h.ServeHTTP(w, r)
	})
}

// checkQuery reports the first parameter of the raw query that is not
// one of names, or is given more than once.
func checkQuery(raw string, names []string) error {
	if raw == "" {
		return nil
	}
	q, err := url.ParseQuery(raw)
	if err != nil {
		return errField("query", "is not a valid query string")
	}
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		switch {
		case !slices.Contains(names, k):
			return errField(k, "is not a parameter of this operation")
		case len(q[k]) > 1:
			return errField(k, "must be given once")
		}
	}
	return nil
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
