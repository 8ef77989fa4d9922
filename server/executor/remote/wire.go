package remote

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/gaas-io/gaas/gaas"
)

// claimedList is the answer of a claim and of GET /executor/leases.
type claimedList struct {
	Executor string `json:"executor"`
	Items    []struct {
		Job   jobJSON `json:"job"`
		Lease struct {
			JobID      int64     `json:"job_id"`
			Generation int64     `json:"generation"`
			Executor   string    `json:"executor"`
			ExpiresAt  time.Time `json:"expires_at"`
		} `json:"lease"`
	} `json:"items"`
}

// claimed is the list as gaas types, refused when the token is not
// executor's (when executor is set).
func (l claimedList) claimed(executor string) ([]gaas.Claimed, error) {
	if executor != "" && executor != l.Executor {
		return nil, fmt.Errorf("remote: %w", gaas.Invalid("executor", "is %q, but the token is %q's", executor, l.Executor))
	}
	out := make([]gaas.Claimed, len(l.Items))
	for i, c := range l.Items {
		j, err := c.Job.job()
		if err != nil {
			return nil, err
		}
		out[i] = gaas.Claimed{Job: j, Lease: gaas.Lease{JobID: c.Lease.JobID, Generation: c.Lease.Generation,
			Executor: c.Lease.Executor, ExpiresAt: c.Lease.ExpiresAt}}
	}
	return out, nil
}

// jobJSON is a job as the API shows one: amounts are JSON numbers read
// exactly, as the server writes them.
type jobJSON struct {
	ID             int64          `json:"id"`
	UserID         int64          `json:"user_id"`
	Command        string         `json:"command"`
	GPUType        string         `json:"gpu_type"`
	EstimatedHours json.Number    `json:"estimated_hours"`
	ActualHours    *json.Number   `json:"actual_hours"`
	Status         gaas.JobStatus `json:"status"`
	CreatedAt      time.Time      `json:"created_at"`
	UpdatedAt      time.Time      `json:"updated_at"`
	GPUCount       int            `json:"gpu_count"`
	Rate           json.Number    `json:"rate"`
	Cost           json.Number    `json:"cost"`
	ProjectID      *int64         `json:"project_id"`
	EndReason      string         `json:"end_reason"`
	Run            *struct {
		Executor        string     `json:"executor"`
		ExternalID      *string    `json:"external_id"`
		StartedAt       *time.Time `json:"started_at"`
		EndedAt         *time.Time `json:"ended_at"`
		HeartbeatAt     *time.Time `json:"heartbeat_at"`
		ExitCode        *int       `json:"exit_code"`
		Reason          *string    `json:"reason"`
		CancelRequested bool       `json:"cancel_requested"`
	} `json:"run"`
}

func (j jobJSON) job() (gaas.Job, error) {
	out := gaas.Job{ID: j.ID, UserID: j.UserID, Command: j.Command, GPUType: j.GPUType, GPUCount: j.GPUCount,
		Status: j.Status, CreatedAt: j.CreatedAt, UpdatedAt: j.UpdatedAt, EndReason: j.EndReason}
	var err error
	if out.EstimatedHours, err = gaas.ParseHours(j.EstimatedHours.String()); err != nil {
		return out, fmt.Errorf("remote: job %d: estimated_hours: %w", j.ID, err)
	}
	if j.ActualHours != nil {
		h, err := gaas.ParseHours(j.ActualHours.String())
		if err != nil {
			return out, fmt.Errorf("remote: job %d: actual_hours: %w", j.ID, err)
		}
		out.ActualHours = &h
	}
	if out.Rate, err = gaas.ParseRate(j.Rate.String()); err != nil {
		return out, fmt.Errorf("remote: job %d: rate: %w", j.ID, err)
	}
	if out.Cost, err = gaas.ParseCredits(j.Cost.String()); err != nil {
		return out, fmt.Errorf("remote: job %d: cost: %w", j.ID, err)
	}
	if j.ProjectID != nil {
		out.ProjectID = *j.ProjectID
	}
	if r := j.Run; r != nil {
		run := &gaas.JobRun{Executor: r.Executor, ExitCode: r.ExitCode, CancelRequested: r.CancelRequested}
		for _, t := range []struct {
			from *time.Time
			to   *time.Time
		}{{r.StartedAt, &run.StartedAt}, {r.EndedAt, &run.EndedAt}, {r.HeartbeatAt, &run.HeartbeatAt}} {
			if t.from != nil {
				*t.to = *t.from
			}
		}
		if r.ExternalID != nil {
			run.ExternalID = *r.ExternalID
		}
		if r.Reason != nil {
			run.Reason = *r.Reason
		}
		out.Run = run
	}
	return out, nil
}
