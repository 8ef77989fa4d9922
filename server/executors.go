package server

import (
	"context"
	"log/slog"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/gaas-io/gaas/authn"
	"github.com/gaas-io/gaas/gaas"
)

// The executor API: the lease calls of gaas.Dispatcher over HTTP, for
// executors on other machines (a gaas-runner on each GPU host). They are
// authenticated by an executor's token only, never a user's, and the
// executor they act for is the token's: a body has no field that names
// one, so a body that tries is refused (422) as any unknown field is.

// executorKey is where authenticateExecutor puts the executor's name.
type executorKey struct{}

// executorName is the authenticated executor of a request behind
// authenticateExecutor.
func executorName(r *http.Request) string {
	name, _ := r.Context().Value(executorKey{}).(string)
	return name
}

// authenticateExecutor admits a request only with a valid executor token,
// and puts its executor's name in the request's context. A user's token,
// an admin's included, is refused: executors and users are kept apart.
func authenticateExecutor(logger *slog.Logger, accounts gaas.ExecutorAccounts, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
		token = strings.TrimSpace(token)
		if !ok || !strings.EqualFold(scheme, "Bearer") || !authn.IsExecutorToken(token) {
			writeError(w, r, logger, explain(gaas.ErrUnauthorized, gaas.ErrUnauthorized,
				"An executor token is required (Bearer gaas_exec_...); user tokens are not accepted here."))
			return
		}
		name, err := accounts.AuthenticateExecutor(r.Context(), token)
		if err != nil {
			writeError(w, r, logger, explain(err, gaas.ErrUnauthorized, "The executor token is unknown or revoked."))
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), executorKey{}, name)))
	})
}

// leaseJSON is a lease as the executor API shows one.
type leaseJSON struct {
	JobID      int64     `json:"job_id"`
	Generation int64     `json:"generation"`
	Executor   string    `json:"executor"`
	ExpiresAt  time.Time `json:"expires_at"`
}

// claimedJSON is a job an executor took, with its lease.
type claimedJSON struct {
	Job   jobResponse `json:"job"`
	Lease leaseJSON   `json:"lease"`
}

// claimedList is the answer of a claim and of GET /executor/leases: the
// executor the token is (so that a runner learns its name from its token)
// and the jobs it holds.
type claimedList struct {
	Executor string        `json:"executor"`
	Items    []claimedJSON `json:"items"`
}

func toClaimed(executor string, cs []gaas.Claimed) claimedList {
	out := claimedList{Executor: executor, Items: make([]claimedJSON, len(cs))}
	for i, c := range cs {
		l := c.Lease
		out.Items[i] = claimedJSON{Job: toJob(c.Job), Lease: leaseJSON{JobID: l.JobID, Generation: l.Generation, Executor: l.Executor, ExpiresAt: l.ExpiresAt}}
	}
	return out
}

// maxSeconds bounds a duration on the wire, in seconds (about 31 years),
// so that it converts to a time.Duration without overflow.
const maxSeconds = 1e9

// seconds checks a duration in seconds on the wire and converts it.
func seconds(v *gaas.ValidationError, field string, s *float64, required bool) time.Duration {
	switch {
	case s == nil:
		if required {
			v.Add(field, "is required")
		}
		return 0
	case math.IsNaN(*s) || *s < 0 || *s > maxSeconds:
		v.Add(field, "must be a number of seconds from 0 to %g", float64(maxSeconds))
		return 0
	}
	return time.Duration(math.Round(*s * float64(time.Second)))
}

// claimRequest is the body of POST /executor/claim.
type claimRequest struct {
	Free map[string]int `json:"free"`
	Max  int            `json:"max"`
	TTL  *float64       `json:"ttl"`

	ttl time.Duration
}

func (c *claimRequest) Valid() error {
	v := &gaas.ValidationError{}
	if c.Free == nil {
		v.Add("free", "is required")
	}
	c.ttl = seconds(v, "ttl", c.TTL, true)
	return v.Err()
}

func handleExecutorClaim(logger *slog.Logger, d gaas.Dispatcher) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := decode[*claimRequest](w, r)
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		claimed, err := d.Claim(r.Context(), gaas.ClaimRequest{Executor: executorName(r), Free: req.Free, Max: req.Max, TTL: req.ttl})
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		encode(w, http.StatusOK, toClaimed(executorName(r), claimed))
	})
}

func handleExecutorLeases(logger *slog.Logger, d gaas.Dispatcher) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		held, err := d.Leases(r.Context(), executorName(r))
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		encode(w, http.StatusOK, toClaimed(executorName(r), held))
	})
}

// checkLease checks the lease a request names: one of the caller's, whose
// executor is the token's.
func checkLease(v *gaas.ValidationError, jobID, generation *int64) {
	if jobID == nil {
		v.Add("job_id", "is required")
	}
	if generation == nil {
		v.Add("generation", "is required")
	}
}

func leaseOf(r *http.Request, jobID, generation *int64) gaas.Lease {
	return gaas.Lease{JobID: *jobID, Generation: *generation, Executor: executorName(r)}
}

// staleLease explains a report on a lease that is no longer the job's.
func staleLease(err error, l gaas.Lease) error {
	return explain(err, gaas.ErrConflict, "Lease %d of job %d is no longer yours: the job ended, or the lease expired or was taken by a later claim. Stop the job and report nothing more on it.",
		l.Generation, l.JobID)
}

// heartbeatRequest is the body of POST /executor/heartbeat.
type heartbeatRequest struct {
	JobID      *int64     `json:"job_id"`
	Generation *int64     `json:"generation"`
	ExternalID string     `json:"external_id"`
	StartedAt  *time.Time `json:"started_at"`
	TTL        *float64   `json:"ttl"`

	ttl time.Duration
}

func (h *heartbeatRequest) Valid() error {
	v := &gaas.ValidationError{}
	checkLease(v, h.JobID, h.Generation)
	h.ttl = seconds(v, "ttl", h.TTL, true)
	return v.Err()
}

// heartbeatResponse is what a heartbeat tells its executor.
type heartbeatResponse struct {
	ExpiresAt       time.Time `json:"expires_at"`
	CancelRequested bool      `json:"cancel_requested"`
}

func handleExecutorHeartbeat(logger *slog.Logger, d gaas.Dispatcher) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := decode[*heartbeatRequest](w, r)
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		hr := gaas.HeartbeatRequest{Lease: leaseOf(r, req.JobID, req.Generation), ExternalID: req.ExternalID, TTL: req.ttl}
		if req.StartedAt != nil {
			hr.Started = *req.StartedAt
		}
		reply, err := d.Heartbeat(r.Context(), hr)
		if err != nil {
			writeError(w, r, logger, staleLease(err, hr.Lease))
			return
		}
		encode(w, http.StatusOK, heartbeatResponse{ExpiresAt: reply.ExpiresAt, CancelRequested: reply.CancelRequested})
	})
}

// finishRequest is the body of POST /executor/finish: gaas.Outcome.
type finishRequest struct {
	JobID       *int64          `json:"job_id"`
	Generation  *int64          `json:"generation"`
	Status      *gaas.JobStatus `json:"status"`
	Elapsed     *float64        `json:"elapsed"`
	ExitCode    *int            `json:"exit_code"`
	Reason      string          `json:"reason"`
	SystemFault bool            `json:"system_fault"`

	elapsed time.Duration
}

func (f *finishRequest) Valid() error {
	v := &gaas.ValidationError{}
	checkLease(v, f.JobID, f.Generation)
	if f.Status == nil {
		v.Add("status", "is required")
	}
	f.elapsed = seconds(v, "elapsed", f.Elapsed, false)
	return v.Err()
}

func handleExecutorFinish(logger *slog.Logger, d gaas.Dispatcher) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := decode[*finishRequest](w, r)
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		fr := gaas.FinishRequest{Lease: leaseOf(r, req.JobID, req.Generation), Outcome: gaas.Outcome{
			Status: *req.Status, Elapsed: req.elapsed, ExitCode: req.ExitCode, Reason: req.Reason, SystemFault: req.SystemFault,
		}}
		job, err := d.Finish(r.Context(), fr)
		if err != nil {
			writeError(w, r, logger, staleLease(err, fr.Lease))
			return
		}
		encode(w, http.StatusOK, toJob(job))
	})
}

// executorResponse is an executor account; its token is shown once, in
// the answer that created it.
type executorResponse struct {
	Name       string     `json:"name"`
	CreatedAt  time.Time  `json:"created_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
	LastSeenAt *time.Time `json:"last_seen_at"`
	Token      string     `json:"token,omitempty"`
}

// executorList is the answer of GET /executors.
type executorList struct {
	Items []executorResponse `json:"items"`
}

func toExecutor(x gaas.ExecutorAccount) executorResponse {
	return executorResponse{Name: x.Name, CreatedAt: x.CreatedAt, RevokedAt: x.RevokedAt, LastSeenAt: x.LastSeenAt}
}

// createExecutorRequest is the body of POST /executors.
type createExecutorRequest struct {
	Name *string `json:"name"`
}

func (c createExecutorRequest) Valid() error {
	if c.Name == nil {
		return errField("name", "is required")
	}
	return nil
}

func handleCreateExecutor(logger *slog.Logger, accounts gaas.ExecutorAccounts) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := decode[createExecutorRequest](w, r)
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		x, token, err := accounts.CreateExecutor(r.Context(), callerID(r), *req.Name)
		if err != nil {
			writeError(w, r, logger, explain(err, gaas.ErrConflict, "The executor name %q is already taken.", *req.Name))
			return
		}
		out := toExecutor(x)
		out.Token = token
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Location", "/executors/"+x.Name)
		encode(w, http.StatusCreated, out)
	})
}

func handleListExecutors(logger *slog.Logger, accounts gaas.ExecutorAccounts) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		xs, err := accounts.Executors(r.Context(), callerID(r))
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		out := executorList{Items: make([]executorResponse, len(xs))}
		for i, x := range xs {
			out.Items[i] = toExecutor(x)
		}
		encode(w, http.StatusOK, out)
	})
}

func handleRevokeExecutor(logger *slog.Logger, accounts gaas.ExecutorAccounts) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		x, err := accounts.RevokeExecutor(r.Context(), callerID(r), name)
		if err != nil {
			writeError(w, r, logger, explain(err, gaas.ErrNotFound, "No executor is named %q.", name))
			return
		}
		encode(w, http.StatusOK, toExecutor(x))
	})
}
