// Package remote is a gaas.Dispatcher over gaasd's executor API, for an
// executor on another machine (gaas-runner): executor.Loop drives a local
// executor through it as it would through the store.
//
// Every call is safe to repeat, so each is retried, with backoff, after a
// transport error or a 5xx answer: a claim retried after a lost answer
// answers the same jobs, a heartbeat renews the lease again, and a finish
// whose first attempt settled the job answers 409 (gaas.ErrConflict), which
// the loop takes as the end of the lease, as it does any late outcome; the
// job keeps what the first attempt settled. Error answers map back to the
// gaas sentinels (401 ErrUnauthorized, 403 ErrForbidden, 404 ErrNotFound,
// 409 ErrConflict, 422 ErrInvalid, 503 ErrUnavailable).
//
// The executor is the token's: the server takes its name from the token,
// never from a request, so a ClaimRequest or Leases call naming another
// executor is refused here, with gaas.ErrInvalid, before it is sent.
package remote

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gaas-io/gaas/gaas"
)

// Config says which server to reach and how.
type Config struct {
	// URL is the server's base URL, such as https://gaas.example.org or,
	// behind a proxy that serves the API under a prefix,
	// https://example.org/gpu. Required.
	URL string
	// Token is the executor's token (gaas_exec_...). Required.
	Token string
	// Client sends the requests; nil is a client whose requests time out
	// after 30 seconds.
	Client *http.Client
	// Attempts bounds the tries of one call; 0 means 5.
	Attempts int
	// Backoff is the wait before the first retry, doubled before each
	// next one (with jitter) up to 30 seconds; 0 means 500ms.
	Backoff time.Duration
}

// maxAnswer bounds the body of an answer that is read: a claim of
// gaas.MaxClaim jobs, each with its command, fits many times over.
const maxAnswer = 32 << 20

// maxBackoff bounds the wait between two tries.
const maxBackoff = 30 * time.Second

// Dispatcher implements gaas.Dispatcher over HTTP.
type Dispatcher struct {
	base    *url.URL
	token   string
	client  *http.Client
	tries   int
	backoff time.Duration
}

var _ gaas.Dispatcher = (*Dispatcher)(nil)

// New returns a Dispatcher for the server and token of cfg.
func New(cfg Config) (*Dispatcher, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("remote: the server URL %q must be http:// or https:// and name a host", cfg.URL)
	}
	if cfg.Token == "" {
		return nil, errors.New("remote: an executor token is required")
	}
	d := &Dispatcher{base: u, token: cfg.Token, client: cfg.Client, tries: cfg.Attempts, backoff: cfg.Backoff}
	if d.client == nil {
		d.client = &http.Client{Timeout: 30 * time.Second}
	}
	if d.tries <= 0 {
		d.tries = 5
	}
	if d.backoff <= 0 {
		d.backoff = 500 * time.Millisecond
	}
	return d, nil
}

// Error is an error answer of the server.
type Error struct {
	Status int
	Detail string // the problem's detail
	err    error  // the sentinel of Status, if any
}

func (e *Error) Error() string {
	return fmt.Sprintf("the server answered %d %s: %s", e.Status, http.StatusText(e.Status), e.Detail)
}

func (e *Error) Unwrap() error { return e.err }

// sentinels are the gaas errors of the statuses the API answers.
var sentinels = map[int]error{
	http.StatusUnauthorized:        gaas.ErrUnauthorized,
	http.StatusForbidden:           gaas.ErrForbidden,
	http.StatusNotFound:            gaas.ErrNotFound,
	http.StatusConflict:            gaas.ErrConflict,
	http.StatusUnprocessableEntity: gaas.ErrInvalid,
	http.StatusServiceUnavailable:  gaas.ErrUnavailable,
}

// retryable is an answer worth trying again: the server or a proxy
// before it failed, or is overloaded.
func retryable(status int) bool {
	return status >= 500 || status == http.StatusTooManyRequests
}

// call sends a request of body (nil for none) to path and decodes the
// answer into out, trying again after transport errors and 5xx answers.
func (d *Dispatcher) call(ctx context.Context, method, path string, body, out any) error {
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return fmt.Errorf("remote: %s %s: %w", method, path, err)
		}
	}
	target := d.base.JoinPath(path).String()
	wait := d.backoff
	for attempt := 1; ; attempt++ {
		retryAfter, err := d.try(ctx, method, target, payload, out)
		var apiErr *Error
		again := err != nil && ctx.Err() == nil && attempt < d.tries &&
			(!errors.As(err, &apiErr) || retryable(apiErr.Status))
		if !again {
			if err != nil {
				return fmt.Errorf("remote: %s %s: %w", method, path, err)
			}
			return nil
		}
		pause := max(wait/2+rand.N(wait/2+1), retryAfter)
		select {
		case <-ctx.Done():
			return fmt.Errorf("remote: %s %s: %w (after %v)", method, path, ctx.Err(), err)
		case <-time.After(pause):
		}
		wait = min(2*wait, maxBackoff)
	}
}

// try sends the request once. It returns the wait a 429 or 503 asked
// for with Retry-After.
func (d *Dispatcher) try(ctx context.Context, method, target string, payload []byte, out any) (time.Duration, error) {
	var rd io.Reader
	if payload != nil {
		rd = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+d.token)
	req.Header.Set("Accept", "application/json")
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	if err != nil {
		return 0, fmt.Errorf("read the answer: %w", err)
	}
	if len(b) > maxAnswer {
		return 0, fmt.Errorf("the answer is larger than %d bytes", maxAnswer)
	}
	if resp.StatusCode/100 != 2 {
		var p struct {
			Detail string `json:"detail"`
		}
		if json.Unmarshal(b, &p) != nil || p.Detail == "" {
			p.Detail = strings.TrimSpace(string(b[:min(len(b), 200)]))
		}
		var after time.Duration
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
			after = min(time.Duration(s)*time.Second, maxBackoff)
		}
		return after, &Error{Status: resp.StatusCode, Detail: p.Detail, err: sentinels[resp.StatusCode]}
	}
	if err := json.Unmarshal(b, out); err != nil {
		return 0, fmt.Errorf("decode the answer: %w", err)
	}
	return 0, nil
}

// seconds is a duration as the API takes it.
func seconds(d time.Duration) float64 { return d.Seconds() }

// Claim implements gaas.Dispatcher. req.Executor, when set, must be the
// token's executor.
func (d *Dispatcher) Claim(ctx context.Context, req gaas.ClaimRequest) ([]gaas.Claimed, error) {
	body := struct {
		Free map[string]int `json:"free"`
		Max  int            `json:"max"`
		TTL  float64        `json:"ttl"`
	}{Free: req.Free, Max: req.Max, TTL: seconds(req.TTL)}
	if body.Free == nil {
		body.Free = map[string]int{}
	}
	var out claimedList
	if err := d.call(ctx, http.MethodPost, "executor/claim", body, &out); err != nil {
		return nil, err
	}
	return out.claimed(req.Executor)
}

// Leases implements gaas.Dispatcher. executor, when set, must be the
// token's.
func (d *Dispatcher) Leases(ctx context.Context, executor string) ([]gaas.Claimed, error) {
	var out claimedList
	if err := d.call(ctx, http.MethodGet, "executor/leases", nil, &out); err != nil {
		return nil, err
	}
	return out.claimed(executor)
}

// Executor asks the server which executor the token is: the name a loop
// over this Dispatcher runs under.
func (d *Dispatcher) Executor(ctx context.Context) (string, error) {
	var out claimedList
	if err := d.call(ctx, http.MethodGet, "executor/leases", nil, &out); err != nil {
		return "", err
	}
	return out.Executor, nil
}

// Heartbeat implements gaas.Dispatcher.
func (d *Dispatcher) Heartbeat(ctx context.Context, req gaas.HeartbeatRequest) (gaas.HeartbeatReply, error) {
	body := struct {
		JobID      int64      `json:"job_id"`
		Generation int64      `json:"generation"`
		ExternalID string     `json:"external_id,omitempty"`
		StartedAt  *time.Time `json:"started_at,omitempty"`
		TTL        float64    `json:"ttl"`
	}{JobID: req.Lease.JobID, Generation: req.Lease.Generation, ExternalID: req.ExternalID, TTL: seconds(req.TTL)}
	if !req.Started.IsZero() {
		at := req.Started.UTC()
		body.StartedAt = &at
	}
	var out struct {
		ExpiresAt       time.Time `json:"expires_at"`
		CancelRequested bool      `json:"cancel_requested"`
	}
	if err := d.call(ctx, http.MethodPost, "executor/heartbeat", body, &out); err != nil {
		return gaas.HeartbeatReply{}, err
	}
	return gaas.HeartbeatReply{ExpiresAt: out.ExpiresAt, CancelRequested: out.CancelRequested}, nil
}

// Finish implements gaas.Dispatcher. A finish whose answer was lost, and
// that is retried, answers ErrConflict: the first attempt settled the job.
func (d *Dispatcher) Finish(ctx context.Context, req gaas.FinishRequest) (gaas.Job, error) {
	o := req.Outcome
	body := struct {
		JobID       int64          `json:"job_id"`
		Generation  int64          `json:"generation"`
		Status      gaas.JobStatus `json:"status"`
		Elapsed     float64        `json:"elapsed"`
		ExitCode    *int           `json:"exit_code,omitempty"`
		Reason      string         `json:"reason,omitempty"`
		SystemFault bool           `json:"system_fault,omitempty"`
	}{req.Lease.JobID, req.Lease.Generation, o.Status, seconds(o.Elapsed), o.ExitCode, o.Reason, o.SystemFault}
	var out jobJSON
	if err := d.call(ctx, http.MethodPost, "executor/finish", body, &out); err != nil {
		return gaas.Job{}, err
	}
	return out.job()
}
