package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/gaas-io/gaas/gaas"
)

type ctxKey int

const (
	requestKey ctxKey = iota
	callerKey
)

// requestInfo is what the outer middleware learns about a request for its
// log line; handlers further in fill it.
type requestInfo struct {
	id     string
	userID int64
}

func requestIDFrom(ctx context.Context) string {
	if ri, ok := ctx.Value(requestKey).(*requestInfo); ok {
		return ri.id
	}
	return ""
}

// callerID returns the id of the authenticated caller; only handlers
// behind authenticate call it. The services it is passed to check that the
// caller exists, and their role, as the store holds them now.
func callerID(r *http.Request) int64 {
	id, _ := r.Context().Value(callerKey).(int64)
	return id
}

// saneRequestID accepts a client's X-Request-ID only if it is short and
// plain, so that it cannot forge log lines.
func saneRequestID(id string) bool {
	if len(id) == 0 || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-_.:/+=", c) >= 0) {
			return false
		}
	}
	return true
}

func newRequestID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// statusRecorder remembers the status a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// observe gives each request an id (the client's X-Request-ID when sane),
// echoes it, recovers panics into a 500 problem, and logs one line when the
// request ends. The line never holds a body, a header value or a query.
func observe(logger *slog.Logger, metrics *Metrics, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ri := &requestInfo{id: r.Header.Get("X-Request-ID")}
		if !saneRequestID(ri.id) {
			ri.id = newRequestID()
		}
		w.Header().Set("X-Request-ID", ri.id)
		r = r.WithContext(context.WithValue(r.Context(), requestKey, ri))
		rec := &statusRecorder{ResponseWriter: w}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				logger.ErrorContext(r.Context(), "panic", "panic", v, "request_id", ri.id, "stack", string(debug.Stack()))
				if rec.status == 0 {
					writeProblem(rec, r, problemFor(errPanic))
				}
			}
			pattern := r.Pattern
			if pattern == "" {
				pattern = "unmatched"
			}
			elapsed := time.Since(start)
			metrics.request(pattern, rec.status, elapsed.Seconds())
			logger.LogAttrs(r.Context(), slog.LevelInfo, "request",
				slog.String("method", r.Method),
				slog.String("route", pattern),
				slog.Int("status", rec.status),
				slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000),
				slog.Int64("user_id", ri.userID),
				slog.String("request_id", ri.id))
		}()
		next.ServeHTTP(rec, r)
	})
}

// authenticate admits a request only with a valid bearer token that was
// not revoked, and puts the id of its user in the request's context. It
// seldom reads the store: Identify checks for revocation against what it
// read of the user within its bound (a second), and every service call
// checks its caller there too, so a token of a user who no longer exists or
// is disabled is refused (401) by the call itself, and a demoted admin is
// refused (403) at once.
func authenticate(logger *slog.Logger, auth gaas.Authenticator, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
			writeError(w, r, logger, explain(gaas.ErrUnauthorized, gaas.ErrUnauthorized, "A bearer token is required: log in at POST /login."))
			return
		}
		id, err := auth.Identify(r.Context(), strings.TrimSpace(token))
		if err != nil {
			writeError(w, r, logger, explain(err, gaas.ErrUnauthorized, "The token is invalid, expired or revoked."))
			return
		}
		if ri, ok := r.Context().Value(requestKey).(*requestInfo); ok {
			ri.userID = id
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), callerKey, id)))
	})
}
