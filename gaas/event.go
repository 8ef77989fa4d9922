package gaas

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
)

// EventType names what an event reports, as webhooks receive it.
type EventType string

// The events. Their type strings and payloads are part of the API
// (docs/API.md): fields may be added, none removed or renamed.
const (
	// EventJobStatusChanged: a job moved from one status to another. Its
	// data is JobStatusChanged.
	EventJobStatusChanged EventType = "job.status_changed"
	// EventThresholdCrossed: charges used a share of an allocation (by
	// default 80%, then 100%), once per allocation and threshold. Its
	// data is ThresholdCrossed.
	EventThresholdCrossed EventType = "allocation.threshold_crossed"
	// EventAllocationExpiring: an allocation that still holds credits ends
	// within the configured days; once per allocation. Its data is
	// AllocationEvent.
	EventAllocationExpiring EventType = "allocation.expiring"
	// EventAllocationExpired: an allocation ended and what it held left in
	// an expire entry. Its data is AllocationEvent.
	EventAllocationExpired EventType = "allocation.expired"
	// EventAllocationGranted: the system granted an allocation (a
	// recurring allocation's period). Its data is AllocationEvent.
	EventAllocationGranted EventType = "allocation.granted"
	// EventWebhookDisabled: an endpoint failed for too long and was
	// disabled; its owner's other endpoints hear of it. Its data is
	// WebhookDisabled.
	EventWebhookDisabled EventType = "webhook.disabled"
)

var eventTypes = []EventType{EventJobStatusChanged, EventThresholdCrossed, EventAllocationExpiring,
	EventAllocationExpired, EventAllocationGranted, EventWebhookDisabled}

// EventTypes returns every event type, in the order the docs list them.
func EventTypes() []EventType { return slices.Clone(eventTypes) }

// Valid reports whether t is one of EventTypes.
func (t EventType) Valid() bool { return slices.Contains(eventTypes, t) }

// Event is something that happened, as the outbox holds it: written in
// the transaction of the change it reports, delivered after it commits.
// The routing fields say whose it is, and so which endpoints receive it
// (see Event.For).
type Event struct {
	ID   int64
	Type EventType
	// AccountID is the account concerned; 0 for none.
	AccountID int64
	// ProjectID is the project whose account or job it concerns; 0 when
	// it is a user's own.
	ProjectID int64
	// UserID is the user concerned: a job's owner, a personal account's
	// user, or for EventWebhookDisabled the endpoint's owner; 0 for none.
	UserID int64
	// WebhookID is, for EventWebhookDisabled, the endpoint disabled.
	WebhookID int64
	// Data is the payload, one of the types below encoded as JSON.
	Data      json.RawMessage
	CreatedAt time.Time
}

// NewEvent is an event of type t with data encoded, routed by r (its
// routing fields; Type, Data and CreatedAt of r are ignored).
func NewEvent(t EventType, r Event, data any) (Event, error) {
	b, err := json.Marshal(data)
	if err != nil {
		return Event{}, fmt.Errorf("gaas: event %s: %w", t, err)
	}
	r.Type, r.Data = t, b
	return r, nil
}

// For reports whether endpoint w receives event e: w is enabled and
// subscribes to e's type, and e is w's to see. An endpoint of no project
// (an admin's) sees every event; a project's endpoint sees the events of
// that project's account and jobs. EventWebhookDisabled goes to the
// disabled endpoint's owner's other endpoints only.
func (e Event) For(w Webhook) bool {
	switch {
	case w.DisabledAt != nil || !slices.Contains(w.Events, e.Type):
		return false
	case e.Type == EventWebhookDisabled:
		return w.OwnerID == e.UserID && w.ID != e.WebhookID
	case w.ProjectID == 0:
		return true
	}
	return w.ProjectID == e.ProjectID
}

// Envelope is the body of a delivery, as Standard Webhooks suggests:
// the type, when the event happened, and its data.
type Envelope struct {
	Type      EventType       `json:"type"`
	Timestamp time.Time       `json:"timestamp"`
	Data      json.RawMessage `json:"data"`
}

// Body is the JSON body that delivers e: the same bytes on every attempt.
func (e Event) Body() []byte {
	b, _ := json.Marshal(Envelope{Type: e.Type, Timestamp: e.CreatedAt.UTC(), Data: e.Data})
	return b
}

// MessageID is the webhook-id of e's deliveries: the same on every
// attempt and every endpoint, so that a receiver can drop a repeat.
func (e Event) MessageID() string { return fmt.Sprintf("evt_%d", e.ID) }

// Amount is credits in an event's payload: a JSON number of credits,
// exact to the milli-credit ("12.5").
type Amount Credits

func (a Amount) MarshalJSON() ([]byte, error) { return []byte(Credits(a).String()), nil }

func (a *Amount) UnmarshalJSON(b []byte) error {
	c, err := ParseCredits(string(b))
	*a = Amount(c)
	return err
}

// JobStatusChanged is the data of EventJobStatusChanged.
type JobStatusChanged struct {
	JobID     int64     `json:"job_id"`
	UserID    int64     `json:"user_id"`
	AccountID int64     `json:"account_id"`
	ProjectID *int64    `json:"project_id"`
	From      JobStatus `json:"from"`
	To        JobStatus `json:"to"`
	GPUType   string    `json:"gpu_type"`
	// Cost is what the job was charged at submission; Refund what this
	// change gave back.
	Cost   Amount `json:"cost"`
	Refund Amount `json:"refund"`
	// ActorID is the user who moved it; nil when the system did, under
	// ActorSystem.
	ActorID     *int64 `json:"actor_id"`
	ActorSystem string `json:"actor_system,omitempty"`
	// EndReason says why the system ended the job (as gaas.Job's).
	EndReason string    `json:"end_reason,omitempty"`
	At        time.Time `json:"at"`
}

// ThresholdCrossed is the data of EventThresholdCrossed.
type ThresholdCrossed struct {
	AllocationID int64  `json:"allocation_id"`
	AccountID    int64  `json:"account_id"`
	ProjectID    *int64 `json:"project_id"`
	UserID       *int64 `json:"user_id"`
	// Threshold is the percentage of Amount used that was reached.
	Threshold int    `json:"threshold"`
	Amount    Amount `json:"amount"`
	Remaining Amount `json:"remaining"`
	// JobID is the job whose charge crossed it.
	JobID int64     `json:"job_id"`
	At    time.Time `json:"at"`
}

// AllocationEvent is the data of EventAllocationExpiring,
// EventAllocationExpired and EventAllocationGranted.
type AllocationEvent struct {
	AllocationID int64      `json:"allocation_id"`
	AccountID    int64      `json:"account_id"`
	ProjectID    *int64     `json:"project_id"`
	UserID       *int64     `json:"user_id"`
	Amount       Amount     `json:"amount"`
	Remaining    Amount     `json:"remaining"`
	GPUTypes     []string   `json:"gpu_types"`
	StartsAt     time.Time  `json:"starts_at"`
	ExpiresAt    *time.Time `json:"expires_at"`
	// Expired is, for EventAllocationExpired, what the expire entry took.
	Expired *Amount `json:"expired,omitempty"`
	// ScheduleID is the schedule that gave the allocation, for
	// EventAllocationGranted and for the expiry of a schedule's period.
	ScheduleID *int64    `json:"schedule_id,omitempty"`
	At         time.Time `json:"at"`
}

// WebhookDisabled is the data of EventWebhookDisabled.
type WebhookDisabled struct {
	WebhookID int64     `json:"webhook_id"`
	URL       string    `json:"url"`
	Reason    string    `json:"reason"`
	At        time.Time `json:"at"`
}

// DefaultThresholds are the shares of an allocation (in percent used)
// whose crossing is an EventThresholdCrossed, unless configured.
var DefaultThresholds = []int{80, 100}

// CrossedThresholds returns the thresholds of thresholds (percentages,
// ascending) that a draw from remaining before to remaining after crosses,
// in an allocation of amount: used before was under it, used after is at
// or above it. An allocation of no amount crosses nothing.
func CrossedThresholds(thresholds []int, amount, before, after Credits) []int {
	if amount <= 0 || after >= before {
		return nil
	}
	var out []int
	for _, t := range thresholds {
		// used*100 >= t*amount, in int64: amounts are at most MaxCredits
		// (1e12), so the products stay below 1.1e14.
		mark := Credits(t) * amount
		if (amount-before)*100 < mark && (amount-after)*100 >= mark {
			out = append(out, t)
		}
	}
	return out
}

// ValidThresholds checks thresholds for Options: each a percentage from
// 1 to 100, ascending, none twice.
func ValidThresholds(ts []int) error {
	for i, t := range ts {
		if t < 1 || t > 100 || (i > 0 && t <= ts[i-1]) {
			return fmt.Errorf("gaas: thresholds %v: want percentages from 1 to 100, ascending", ts)
		}
	}
	return nil
}

// Webhook is an endpoint that receives events.
type Webhook struct {
	ID     int64
	URL    string
	Events []EventType
	// OwnerID is the user who registered it, who hears when it is disabled.
	OwnerID int64
	// ProjectID is the project whose events it receives; 0 for an
	// admin's endpoint that receives every event.
	ProjectID int64
	// Secret is the signing key in whsec_ form; only CreateWebhook returns it.
	Secret string
	// DisabledAt is when it was disabled, for DisabledReason; nil while it
	// receives.
	DisabledAt     *time.Time
	DisabledReason string
	// FailingSince is when its deliveries began failing; nil after a success.
	FailingSince *time.Time
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// MaxWebhookURL bounds the length of an endpoint's URL.
const MaxWebhookURL = 2048

// CreateWebhookRequest registers an endpoint. Secret is in whsec_ form;
// empty, one is generated.
type CreateWebhookRequest struct {
	URL       string
	Events    []EventType
	Secret    string
	ProjectID int64
}

// Validate checks the request's fields.
func (r CreateWebhookRequest) Validate() error {
	v := &ValidationError{}
	if err := ValidateWebhookURL(r.URL); err != nil {
		v.Add("url", "%s", err)
	}
	if err := validateEvents(r.Events); err != nil {
		v.Add("events", "%s", err)
	}
	if r.Secret != "" {
		if _, err := DecodeWebhookSecret(r.Secret); err != nil {
			v.Add("secret", "%s", err)
		}
	}
	if r.ProjectID < 0 {
		v.Add("project_id", "must be a project's id")
	}
	return v.Err()
}

// UpdateWebhookRequest changes an endpoint: what is nil stays. Enable
// turns a disabled endpoint back on, and its pending deliveries resume.
type UpdateWebhookRequest struct {
	WebhookID int64
	URL       *string
	Events    []EventType
	Enable    bool
}

// Validate checks the request's fields.
func (r UpdateWebhookRequest) Validate() error {
	v := &ValidationError{}
	if r.URL != nil {
		if err := ValidateWebhookURL(*r.URL); err != nil {
			v.Add("url", "%s", err)
		}
	}
	if r.Events != nil {
		if err := validateEvents(r.Events); err != nil {
			v.Add("events", "%s", err)
		}
	}
	return v.Err()
}

// ValidateWebhookURL checks an endpoint's URL: absolute http or https,
// with a host, no credentials and no fragment. Whether its address may
// be reached is decided when it is dialled.
func ValidateWebhookURL(s string) error {
	if len(s) > MaxWebhookURL {
		return fmt.Errorf("must be at most %d bytes", MaxWebhookURL)
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return fmt.Errorf("is not a URL")
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("must be an http or https URL")
	case u.Hostname() == "":
		return fmt.Errorf("must name a host")
	case u.User != nil:
		return fmt.Errorf("must not hold credentials")
	case u.Fragment != "" || strings.Contains(s, "#"):
		return fmt.Errorf("must not have a fragment")
	}
	return nil
}

func validateEvents(ts []EventType) error {
	if len(ts) == 0 {
		return fmt.Errorf("must name at least one event type")
	}
	for i, t := range ts {
		switch {
		case !t.Valid():
			return fmt.Errorf("%q is not an event type; one of %s", truncate(string(t), 64), eventTypeList())
		case slices.Contains(ts[:i], t):
			return fmt.Errorf("names %s twice", t)
		}
	}
	return nil
}

func eventTypeList() string {
	s := make([]string, len(eventTypes))
	for i, t := range eventTypes {
		s[i] = string(t)
	}
	return strings.Join(s, ", ")
}

// webhookSecretPrefix marks a Standard Webhooks secret.
const webhookSecretPrefix = "whsec_"

// DecodeWebhookSecret returns the key of a secret in Standard Webhooks'
// form, "whsec_" and the base64 of 24 to 64 bytes.
func DecodeWebhookSecret(s string) ([]byte, error) {
	rest, ok := strings.CutPrefix(s, webhookSecretPrefix)
	if !ok {
		return nil, fmt.Errorf("must start with %s", webhookSecretPrefix)
	}
	key, err := base64.StdEncoding.DecodeString(rest)
	switch {
	case err != nil:
		return nil, fmt.Errorf("must be %s followed by standard base64", webhookSecretPrefix)
	case len(key) < 24 || len(key) > 64:
		return nil, fmt.Errorf("must hold 24 to 64 bytes after %s, not %d", webhookSecretPrefix, len(key))
	}
	return key, nil
}

// NewWebhookSecret generates a secret of 32 random bytes in whsec_ form.
func NewWebhookSecret() string {
	key := make([]byte, 32)
	rand.Read(key) // never fails (crypto/rand)
	return webhookSecretPrefix + base64.StdEncoding.EncodeToString(key)
}

// WebhookPage is one page of endpoints, oldest first.
type WebhookPage struct {
	Items      []Webhook
	NextCursor string
}

// DeliveryStatus is where a delivery stands.
type DeliveryStatus string

const (
	// DeliveryPending: not yet answered with a 2xx; tried again at
	// NextAttemptAt while its endpoint is enabled.
	DeliveryPending DeliveryStatus = "pending"
	// DeliveryDelivered: the endpoint answered with a 2xx.
	DeliveryDelivered DeliveryStatus = "delivered"
)

// Delivery is one event's delivery to one endpoint.
type Delivery struct {
	ID             int64
	WebhookID      int64
	EventID        int64
	EventType      EventType
	Status         DeliveryStatus
	Attempts       int
	NextAttemptAt  *time.Time
	LastAttemptAt  *time.Time
	LastError      string
	LastStatusCode int
	DeliveredAt    *time.Time
	CreatedAt      time.Time
}

// DeliveryPage is one page of an endpoint's deliveries, newest first.
type DeliveryPage struct {
	Items      []Delivery
	NextCursor string
}

// DeliveriesRequest lists an endpoint's deliveries.
type DeliveriesRequest struct {
	WebhookID int64
	Page
}

// RedeliverRequest sends a delivery again, at once.
type RedeliverRequest struct {
	WebhookID  int64
	DeliveryID int64
}

// RetryDelay is how long after its attempt-th failed attempt (from 1) a
// delivery is tried again: 5 seconds, growing fourfold, at most 2 hours.
// With DisableAfter, an endpoint is tried about 16 times in its first day.
func RetryDelay(attempt int) time.Duration {
	d := 5 * time.Second
	for i := 1; i < attempt && d < 2*time.Hour; i++ {
		d *= 4
	}
	return min(d, 2*time.Hour)
}

// DisableAfter is how long an endpoint's deliveries may keep failing
// before it is disabled.
const DisableAfter = 24 * time.Hour

// Webhooks manages the endpoints that receive events. Admins manage any;
// a project's managers manage the endpoints of their project's events.
// Whoever may not see an endpoint is told it does not exist.
type Webhooks interface {
	// CreateWebhook registers an endpoint, with its secret in the answer.
	// ErrInvalid, ErrForbidden (a non-admin naming no project, or one they
	// do not manage), ErrNotFound (a project the caller cannot see).
	CreateWebhook(ctx context.Context, caller int64, req CreateWebhookRequest) (Webhook, error)
	// Webhooks lists the endpoints the caller may manage.
	Webhooks(ctx context.Context, caller int64, page Page) (WebhookPage, error)
	// Webhook reads one. ErrNotFound.
	Webhook(ctx context.Context, caller, id int64) (Webhook, error)
	// UpdateWebhook changes one. ErrInvalid, ErrNotFound.
	UpdateWebhook(ctx context.Context, caller int64, req UpdateWebhookRequest) (Webhook, error)
	// DeleteWebhook removes one and its deliveries. ErrNotFound.
	DeleteWebhook(ctx context.Context, caller, id int64) error
	// Deliveries lists an endpoint's deliveries. ErrNotFound.
	Deliveries(ctx context.Context, caller int64, req DeliveriesRequest) (DeliveryPage, error)
	// Redeliver makes a delivery pending again, due now. ErrNotFound.
	Redeliver(ctx context.Context, caller int64, req RedeliverRequest) (Delivery, error)
}

// DueDelivery is a delivery claimed for an attempt: where it goes, the
// key that signs it, and the event it carries. Attempt numbers this
// attempt, from 1.
type DueDelivery struct {
	ID        int64
	WebhookID int64
	URL       string
	Secret    string
	Attempt   int
	Event     Event
}

// AttemptResult is what one attempt of a delivery got: the status code of
// the answer (0 for none), and why it failed when it did (empty for a 2xx).
type AttemptResult struct {
	DeliveryID int64
	Attempt    int
	StatusCode int
	Err        string
}

// Delivered reports whether the endpoint took the delivery: a 2xx answer.
func (r AttemptResult) Delivered() bool {
	return r.Err == "" && r.StatusCode >= 200 && r.StatusCode < 300
}
