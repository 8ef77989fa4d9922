package server

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/gaas-io/gaas/gaas"
)

// jobResponse is a job: the fields of the original API, then what it
// costs and where that came from.
type jobResponse struct {
	ID             int64          `json:"id"`
	UserID         int64          `json:"user_id"`
	Command        string         `json:"command"`
	GPUType        string         `json:"gpu_type"`
	EstimatedHours hoursJSON      `json:"estimated_hours"`
	ActualHours    *hoursJSON     `json:"actual_hours"`
	Status         gaas.JobStatus `json:"status"`
	CreatedAt      time.Time      `json:"created_at"`
	UpdatedAt      time.Time      `json:"updated_at"`

	GPUCount int            `json:"gpu_count"`
	Rate     rateJSON       `json:"rate"`
	Cost     creditsJSON    `json:"cost"`
	Draws    []drawResponse `json:"draws"`

	ProjectID *int64 `json:"project_id"` // null when charged to the owner's own account

	EndReason string       `json:"end_reason,omitempty"` // why the system ended it, or why a person rejected it
	Run       *runResponse `json:"run"`                  // null until an executor claims the job
}

// runResponse is what the executor that ran a job reported.
type runResponse struct {
	Executor        string     `json:"executor"`
	ExternalID      *string    `json:"external_id"`
	StartedAt       *time.Time `json:"started_at"`
	EndedAt         *time.Time `json:"ended_at"`
	HeartbeatAt     *time.Time `json:"heartbeat_at"`
	ExitCode        *int       `json:"exit_code"`
	Reason          *string    `json:"reason"`
	CancelRequested bool       `json:"cancel_requested"`
}

func toRun(r *gaas.JobRun) *runResponse {
	if r == nil {
		return nil
	}
	at := func(t time.Time) *time.Time {
		if t.IsZero() {
			return nil
		}
		return &t
	}
	text := func(s string) *string {
		if s == "" {
			return nil
		}
		return &s
	}
	return &runResponse{
		Executor: r.Executor, ExternalID: text(r.ExternalID), StartedAt: at(r.StartedAt), EndedAt: at(r.EndedAt),
		HeartbeatAt: at(r.HeartbeatAt), ExitCode: r.ExitCode, Reason: text(r.Reason), CancelRequested: r.CancelRequested,
	}
}

// drawResponse is what a job took from one allocation.
type drawResponse struct {
	AllocationID int64       `json:"allocation_id"`
	Credits      creditsJSON `json:"credits"`
}

func toJob(j gaas.Job) jobResponse {
	draws := make([]drawResponse, len(j.Draws))
	for i, d := range j.Draws {
		draws[i] = drawResponse{AllocationID: d.AllocationID, Credits: creditsJSON(d.Amount)}
	}
	return jobResponse{
		ID: j.ID, UserID: j.UserID, Command: j.Command, GPUType: j.GPUType,
		EstimatedHours: hoursJSON(j.EstimatedHours), ActualHours: (*hoursJSON)(j.ActualHours), Status: j.Status,
		CreatedAt: j.CreatedAt, UpdatedAt: j.UpdatedAt,
		GPUCount: j.GPUCount, Rate: rateJSON(j.Rate), Cost: creditsJSON(j.Cost), Draws: draws,
		ProjectID: nonZero(j.ProjectID), EndReason: j.EndReason, Run: toRun(j.Run),
	}
}

func itoa(id int64) string { return strconv.FormatInt(id, 10) }

// pathID reads the {id} of a route: an integer. One that names nothing,
// 0 and below included, is the library's to answer, as any missing id
// is: after the caller's right to ask, so that a 404 never tells a caller
// who may not ask which ids exist.
func pathID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		return 0, errField("id", "must be an integer")
	}
	return id, nil
}

// readPage reads the limit and cursor of a listing from the query.
func readPage(r *http.Request) (gaas.Page, error) {
	q := r.URL.Query()
	p := gaas.Page{Cursor: q.Get("cursor")}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > gaas.MaxLimit {
			return p, errField("limit", "must be an integer from 1 to %d", gaas.MaxLimit)
		}
		p.Limit = n
	}
	return p, nil
}

// queryTime reads the RFC 3339 timestamp of the query parameter name; the
// zero time when it is absent.
func queryTime(r *http.Request, name string) (time.Time, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, errField(name, "must be an RFC 3339 timestamp, such as 2026-11-28T17:34:24Z")
	}
	return t, nil
}

// submitNames are the wire names of a submission's inputs: the key comes
// in a header.
var submitNames = wireNames{"idempotency_key": "Idempotency-Key"}

// submitRequest is the body of POST /jobs: the original's three fields,
// and gpu_count, which is 1 when absent or null.
type submitRequest struct {
	Command        *string         `json:"command"`
	GPUType        *string         `json:"gpu_type"`
	EstimatedHours json.RawMessage `json:"estimated_hours"`
	GPUCount       *int            `json:"gpu_count"`
	Project        json.RawMessage `json:"project"`

	hours   *gaas.Hours
	project gaas.ProjectRef
}

func (s *submitRequest) Valid() error {
	v := &gaas.ValidationError{}
	if s.Command == nil {
		v.Add("command", "is required")
	}
	if s.GPUType == nil {
		v.Add("gpu_type", "is required")
	}
	h, err := hoursField(s.EstimatedHours, "estimated_hours")
	switch {
	case err != nil:
		v.Fields = append(v.Fields, err.(*gaas.ValidationError).Fields...)
	case h == nil:
		v.Add("estimated_hours", "is required")
	}
	s.hours = h
	if s.GPUCount != nil {
		validateGPUCount(v, "gpu_count", *s.GPUCount)
	}
	s.project, _ = projectField(v, s.Project, "project")
	return v.Err()
}

func handleSubmitJob(logger *slog.Logger, jobs gaas.JobService) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := decode[*submitRequest](w, r)
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		key, hasKey := r.Header["Idempotency-Key"]
		sr := gaas.SubmitRequest{Command: *req.Command, GPUType: *req.GPUType, EstimatedHours: *req.hours, GPUCount: 1, Project: req.project}
		if req.GPUCount != nil {
			sr.GPUCount = *req.GPUCount
		}
		if hasKey {
			if len(key) != 1 {
				writeError(w, r, logger, errField("Idempotency-Key", "must be given once"))
				return
			}
			if err := gaas.ValidateIdempotencyKey(key[0]); err != nil {
				writeError(w, r, logger, submitNames.rename(err))
				return
			}
			sr.IdempotencyKey = key[0]
		}
		job, err := jobs.Submit(r.Context(), callerID(r), sr)
		if err != nil {
			err = explain(submitNames.rename(err), gaas.ErrConflict, "The Idempotency-Key was already used for a different request.")
			if req.project != "" {
				err = explain(err, gaas.ErrNotFound, "Project %s does not exist.", req.project)
				err = explain(err, gaas.ErrForbidden, "You may not charge project %s.", req.project)
			}
			writeError(w, r, logger, err)
			return
		}
		w.Header().Set("Location", "/jobs/"+itoa(job.ID))
		encode(w, http.StatusCreated, toJob(job))
	})
}

// validateGPUCount checks a number of GPUs on the wire, where 0 means
// nothing: the library reads a job's 0 as 1 and a type's 0 as no limit,
// but a client writes those by leaving the field out (or null).
func validateGPUCount(v *gaas.ValidationError, field string, n int) {
	if n < 1 || n > gaas.MaxGPUsPerJob {
		v.Add(field, "must be between 1 and %d", gaas.MaxGPUsPerJob)
	}
}

func handleListJobs(logger *slog.Logger, jobs gaas.JobService) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := listJobs(w, r, logger, jobs, 0); err != nil {
			writeError(w, r, logger, explain(err, gaas.ErrForbidden, "Only admins may list the jobs of another user."))
		}
	})
}

// listJobs answers with a page of the jobs the query's filters name, of
// project (0: of any, or none).
func listJobs(w http.ResponseWriter, r *http.Request, logger *slog.Logger, jobs gaas.JobService, project int64) error {
	page, err := readPage(r)
	f := gaas.JobFilter{Page: page, Status: gaas.JobStatus(r.URL.Query().Get("status")), ProjectID: project}
	if s := r.URL.Query().Get("user_id"); err == nil && s != "" {
		if f.UserID, err = strconv.ParseInt(s, 10, 64); err != nil || f.UserID <= 0 {
			err = errField("user_id", "must be a positive integer")
		}
	}
	f.GPUType = r.URL.Query().Get("gpu_type")
	if err == nil {
		f.Since, err = queryTime(r, "since")
	}
	if err == nil {
		f.Until, err = queryTime(r, "until")
	}
	if err != nil {
		return err
	}
	return writeListing(w, r, logger, f.Page, func(p gaas.Page) ([]gaas.Job, string, error) {
		f.Page = p
		got, err := jobs.List(r.Context(), callerID(r), f)
		return got.Items, got.NextCursor, err
	}, func(j gaas.Job) int64 { return j.ID }, toJob)
}

func handleGetJob(logger *slog.Logger, jobs gaas.JobService) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := pathID(r)
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		job, err := jobs.Get(r.Context(), callerID(r), gaas.GetJobRequest{JobID: id})
		if err != nil {
			writeError(w, r, logger, explain(err, gaas.ErrNotFound, "Job %d does not exist.", id))
			return
		}
		encode(w, http.StatusOK, toJob(job))
	})
}

// MaxLogBytes is the most of a job's log that GET /jobs/{id}/log returns:
// its last bytes.
const MaxLogBytes = 1 << 20

// handleJobLog answers the end of a job's output, to whoever may read the
// job, as text: the last ?bytes= bytes (at most and by default
// MaxLogBytes). X-Log-Truncated says whether earlier output was left out.
func handleJobLog(logger *slog.Logger, jobs gaas.JobService, logs gaas.JobLogs) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := pathID(r)
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		limit := int64(MaxLogBytes)
		if s := r.URL.Query().Get("bytes"); s != "" {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil || n < 1 || n > MaxLogBytes {
				writeError(w, r, logger, errField("bytes", "must be an integer from 1 to %d", MaxLogBytes))
				return
			}
			limit = n
		}
		if _, err := jobs.Get(r.Context(), callerID(r), gaas.GetJobRequest{JobID: id}); err != nil {
			writeError(w, r, logger, explain(err, gaas.ErrNotFound, "Job %d does not exist.", id))
			return
		}
		if logs == nil {
			writeError(w, r, logger, explain(gaas.ErrNotFound, gaas.ErrNotFound, "Job %d has no log on this server: it runs no executor.", id))
			return
		}
		tail, truncated, err := logs.Log(id, limit)
		if err != nil {
			writeError(w, r, logger, explain(err, gaas.ErrNotFound, "Job %d has no log here: no executor of this server ran it, or it has not started.", id))
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("X-Log-Truncated", strconv.FormatBool(truncated))
		w.WriteHeader(http.StatusOK)
		w.Write(tail)
	})
}

type transitionRequest struct {
	Status      *gaas.JobStatus `json:"status"`
	ActualHours json.RawMessage `json:"actual_hours"`
	Reason      string          `json:"reason"`

	actual *gaas.Hours
}

func (t *transitionRequest) Valid() error {
	v := &gaas.ValidationError{}
	if t.Status == nil {
		v.Add("status", "is required")
	}
	a, err := hoursField(t.ActualHours, "actual_hours")
	if err != nil {
		v.Fields = append(v.Fields, err.(*gaas.ValidationError).Fields...)
	}
	t.actual = a
	return v.Err()
}

func handleTransitionJob(logger *slog.Logger, jobs gaas.JobService) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := pathID(r)
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		req, err := decode[*transitionRequest](w, r)
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		job, err := jobs.Transition(r.Context(), callerID(r), gaas.TransitionRequest{JobID: id, To: *req.Status, ActualHours: req.actual, Reason: req.Reason})
		if err != nil {
			writeError(w, r, logger, jobDetail(err, id))
			return
		}
		encode(w, http.StatusOK, toJob(job))
	})
}

// jobDetail words the errors of a change to job id.
func jobDetail(err error, id int64) error {
	err = explain(err, gaas.ErrForbidden, "Only admins may change the status of a job.")
	err = explain(err, gaas.ErrNotFound, "Job %d does not exist.", id)
	return explain(err, gaas.ErrConflict, "Job %d was changed by another request; read it and try again.", id)
}

func handleCancelJob(logger *slog.Logger, jobs gaas.JobService) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := pathID(r)
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		job, err := jobs.Cancel(r.Context(), callerID(r), gaas.CancelRequest{JobID: id})
		if err != nil {
			writeError(w, r, logger, jobDetail(err, id))
			return
		}
		encode(w, http.StatusOK, toJob(job))
	})
}
