// Package server is the HTTP API of gaas: net/http handlers that decode
// requests, call the library's services with the authenticated caller, and
// translate their answers and errors into JSON and problem details.
package server

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"runtime"

	"github.com/gaas-io/gaas/gaas"
)

// Pinger reports whether the store answers; /healthz asks it.
type Pinger interface {
	Ping(ctx context.Context) error
}

var errPanic = errors.New("server: handler panicked")

// Services are the library's services that the API serves. Every one but
// Logs, Executors and Dispatch is required: a *store.DB gives them all
// (Auth is an authn.Authenticator on its Accounts).
type Services struct {
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
	DB          Pinger
	// Logs reads the output of the jobs this server's executor runs; nil
	// when it runs none, and GET /jobs/{id}/log answers 404.
	Logs gaas.JobLogs

	// Sessions are the portal's sign-ins (an authn.Sessions on the same
	// Authenticator as Auth). The portal (GET / and /portal/) is served
	// only with them.
	Sessions gaas.Sessions

	// Executors and Dispatch serve executors on other machines (the
	// /executor routes) and their admin (/executors). They are optional:
	// without both, those routes are not served.
	Executors gaas.ExecutorAccounts
	Dispatch  gaas.Dispatcher
}

// missing names the first service that s lacks, or is "".
func (s Services) missing() string {
	for _, f := range []struct {
		name string
		nil  bool
	}{
		{"Auth", s.Auth == nil}, {"Users", s.Users == nil}, {"Jobs", s.Jobs == nil}, {"Quota", s.Quota == nil},
		{"Catalogue", s.Catalogue == nil}, {"Allocations", s.Allocations == nil}, {"Projects", s.Projects == nil},
		{"Schedules", s.Schedules == nil}, {"Webhooks", s.Webhooks == nil}, {"Reports", s.Reports == nil}, {"DB", s.DB == nil},
	} {
		if f.nil {
			return f.name
		}
	}
	return ""
}

// NewServer returns the HTTP API. Every dependency is passed in; the
// handler keeps no other state. It panics when svc lacks a service, at
// start-up rather than at the first request that needs it.
func NewServer(logger *slog.Logger, cfg Config, svc Services) http.Handler {
	if name := svc.missing(); name != "" {
		panic("server: NewServer: Services." + name + " is nil; every service is required")
	}
	mux := http.NewServeMux()
	cfg = cfg.withDefaults(runtime.GOMAXPROCS(0))
	addRoutes(mux, logger, cfg, svc)
	return observe(logger, cfg.Metrics, problemsForUnmatched(mux))
}

// problemsForUnmatched answers requests that match no route, 404 or 405
// (with Allow), with problem details instead of ServeMux's plain text.
func problemsForUnmatched(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		rec := &bufferedResponse{header: http.Header{}}
		mux.ServeHTTP(rec, r)
		switch rec.status {
		case http.StatusNotFound:
			if redirectSlash(w, r, mux) {
				return
			}
			writeProblem(w, r, problem{Type: "about:blank", Title: "Not Found", Status: http.StatusNotFound,
				Detail: "No route matches " + r.Method + " " + r.URL.Path + "."})
		case http.StatusMethodNotAllowed:
			w.Header().Set("Allow", rec.header.Get("Allow"))
			writeProblem(w, r, problem{Type: "about:blank", Title: "Method Not Allowed", Status: http.StatusMethodNotAllowed,
				Detail: r.Method + " is not allowed on " + r.URL.Path + "; allowed: " + rec.header.Get("Allow") + "."})
		default: // a redirect to the clean path
			for k, v := range rec.header {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.status)
			w.Write(rec.body.Bytes())
		}
	})
}

// bufferedResponse holds what ServeMux says about an unmatched request.
type bufferedResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferedResponse) Header() http.Header { return b.header }
func (b *bufferedResponse) WriteHeader(code int) {
	if b.status == 0 {
		b.status = code
	}
}
func (b *bufferedResponse) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	return b.body.Write(p)
}
