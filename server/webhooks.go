package server

import (
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/gaas-io/gaas/gaas"
)

// webhookResponse is an endpoint. secret is there only in the answer to
// its creation; project_id is null for an admin's endpoint of every event;
// disabled_at and disabled_reason say when and why it was disabled.
type webhookResponse struct {
	ID             int64            `json:"id"`
	URL            string           `json:"url"`
	Events         []gaas.EventType `json:"events"`
	ProjectID      *int64           `json:"project_id"`
	OwnerID        int64            `json:"owner_id"`
	Enabled        bool             `json:"enabled"`
	DisabledAt     *time.Time       `json:"disabled_at"`
	DisabledReason *string          `json:"disabled_reason"`
	FailingSince   *time.Time       `json:"failing_since"`
	CreatedAt      time.Time        `json:"created_at"`
	UpdatedAt      time.Time        `json:"updated_at"`
	Secret         string           `json:"secret,omitempty"`
}

func toWebhook(h gaas.Webhook) webhookResponse {
	out := webhookResponse{ID: h.ID, URL: h.URL, Events: h.Events, ProjectID: nonZero(h.ProjectID), OwnerID: h.OwnerID,
		Enabled: h.DisabledAt == nil, DisabledAt: h.DisabledAt, FailingSince: h.FailingSince,
		CreatedAt: h.CreatedAt, UpdatedAt: h.UpdatedAt, Secret: h.Secret}
	if h.DisabledAt != nil {
		out.DisabledReason = &h.DisabledReason
	}
	return out
}

// deliveryResponse is one event's delivery to one endpoint.
type deliveryResponse struct {
	ID             int64      `json:"id"`
	EventID        int64      `json:"event_id"`
	EventType      string     `json:"event_type"`
	Status         string     `json:"status"`
	Attempts       int        `json:"attempts"`
	NextAttemptAt  *time.Time `json:"next_attempt_at"`
	LastAttemptAt  *time.Time `json:"last_attempt_at"`
	LastError      *string    `json:"last_error"`
	LastStatusCode *int       `json:"last_status_code"`
	DeliveredAt    *time.Time `json:"delivered_at"`
	CreatedAt      time.Time  `json:"created_at"`
}

func toDelivery(d gaas.Delivery) deliveryResponse {
	out := deliveryResponse{ID: d.ID, EventID: d.EventID, EventType: string(d.EventType), Status: string(d.Status),
		Attempts: d.Attempts, NextAttemptAt: d.NextAttemptAt, LastAttemptAt: d.LastAttemptAt, DeliveredAt: d.DeliveredAt,
		CreatedAt: d.CreatedAt}
	if d.LastError != "" {
		out.LastError = &d.LastError
	}
	if d.LastStatusCode != 0 {
		out.LastStatusCode = &d.LastStatusCode
	}
	return out
}

// createWebhookRequest is the body of POST /webhooks: secret absent is
// generated; project_id absent is every event, which only admins may ask.
type createWebhookRequest struct {
	URL       *string          `json:"url"`
	Events    []gaas.EventType `json:"events"`
	Secret    *string          `json:"secret"`
	ProjectID *int64           `json:"project_id"`
}

func (c *createWebhookRequest) Valid() error {
	v := &gaas.ValidationError{}
	if c.URL == nil {
		v.Add("url", "is required")
	}
	if c.Events == nil {
		v.Add("events", "is required: a list of event types")
	}
	if c.ProjectID != nil && *c.ProjectID <= 0 {
		v.Add("project_id", "must be a project's id, or absent for every event")
	}
	if err := v.Err(); err != nil {
		return err
	}
	return c.request().Validate()
}

func (c *createWebhookRequest) request() gaas.CreateWebhookRequest {
	cr := gaas.CreateWebhookRequest{URL: *c.URL, Events: c.Events, Secret: deref(c.Secret)}
	if c.ProjectID != nil {
		cr.ProjectID = *c.ProjectID
	}
	return cr
}

func handleCreateWebhook(logger *slog.Logger, webhooks gaas.Webhooks) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := decode[*createWebhookRequest](w, r)
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		h, err := webhooks.CreateWebhook(r.Context(), callerID(r), req.request())
		if err != nil {
			err = explain(err, gaas.ErrForbidden, "Only admins may register endpoints of every event; "+
				"a project's managers register endpoints of their project's events, naming it in project_id.")
			writeError(w, r, logger, explain(err, gaas.ErrNotFound, "Project %d does not exist.", deref64(req.ProjectID)))
			return
		}
		w.Header().Set("Location", "/webhooks/"+itoa(h.ID))
		encode(w, http.StatusCreated, toWebhook(h))
	})
}

func deref64(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}

func handleListWebhooks(logger *slog.Logger, webhooks gaas.Webhooks) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		page, err := readPage(r)
		if err == nil {
			err = writeListing(w, r, logger, page, func(p gaas.Page) ([]gaas.Webhook, string, error) {
				got, err := webhooks.Webhooks(r.Context(), callerID(r), p)
				return got.Items, got.NextCursor, err
			}, func(h gaas.Webhook) int64 { return h.ID }, toWebhook)
		}
		if err != nil {
			writeError(w, r, logger, err)
		}
	})
}

// webhookNotFound is what a caller is told of an endpoint they cannot see.
func webhookNotFound(err error, id int64) error {
	return explain(err, gaas.ErrNotFound, "Webhook %d does not exist.", id)
}

func handleGetWebhook(logger *slog.Logger, webhooks gaas.Webhooks) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := pathID(r)
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		h, err := webhooks.Webhook(r.Context(), callerID(r), id)
		if err != nil {
			writeError(w, r, logger, webhookNotFound(err, id))
			return
		}
		encode(w, http.StatusOK, toWebhook(h))
	})
}

// updateWebhookRequest is the body of PATCH /webhooks/{id}: what is absent
// stays; enabled true turns a disabled endpoint back on.
type updateWebhookRequest struct {
	URL     *string          `json:"url"`
	Events  []gaas.EventType `json:"events"`
	Enabled *bool            `json:"enabled"`
}

func (u *updateWebhookRequest) Valid() error {
	if u.Enabled != nil && !*u.Enabled {
		return errField("enabled", "can only be true, to enable an endpoint again; DELETE removes one")
	}
	return u.request(0).Validate()
}

func (u *updateWebhookRequest) request(id int64) gaas.UpdateWebhookRequest {
	return gaas.UpdateWebhookRequest{WebhookID: id, URL: u.URL, Events: u.Events, Enable: u.Enabled != nil}
}

func handleUpdateWebhook(logger *slog.Logger, webhooks gaas.Webhooks) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := pathID(r)
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		req, err := decode[*updateWebhookRequest](w, r)
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		h, err := webhooks.UpdateWebhook(r.Context(), callerID(r), req.request(id))
		if err != nil {
			writeError(w, r, logger, webhookNotFound(err, id))
			return
		}
		encode(w, http.StatusOK, toWebhook(h))
	})
}

func handleDeleteWebhook(logger *slog.Logger, webhooks gaas.Webhooks) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := pathID(r)
		if err == nil {
			err = webhookNotFound(webhooks.DeleteWebhook(r.Context(), callerID(r), id), id)
		}
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

func handleListDeliveries(logger *slog.Logger, webhooks gaas.Webhooks) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := pathID(r)
		var page gaas.Page
		if err == nil {
			page, err = readPage(r)
		}
		if err == nil {
			err = writeListing(w, r, logger, page, func(p gaas.Page) ([]gaas.Delivery, string, error) {
				got, err := webhooks.Deliveries(r.Context(), callerID(r), gaas.DeliveriesRequest{WebhookID: id, Page: p})
				return got.Items, got.NextCursor, err
			}, func(d gaas.Delivery) int64 { return d.ID }, toDelivery)
		}
		if err != nil {
			writeError(w, r, logger, webhookNotFound(err, id))
		}
	})
}

func handleRedeliver(logger *slog.Logger, webhooks gaas.Webhooks) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := pathID(r)
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		delivery, err := strconv.ParseInt(r.PathValue("delivery_id"), 10, 64)
		if err != nil {
			writeError(w, r, logger, errField("delivery_id", "must be an integer"))
			return
		}
		d, err := webhooks.Redeliver(r.Context(), callerID(r), gaas.RedeliverRequest{WebhookID: id, DeliveryID: delivery})
		if err != nil {
			err = explain(err, gaas.ErrConflict, "Webhook %d is disabled; enable it (PATCH with \"enabled\": true), which sends what waits.", id)
			writeError(w, r, logger, explain(err, gaas.ErrNotFound, "Webhook %d has no delivery %d.", id, delivery))
			return
		}
		encode(w, http.StatusAccepted, toDelivery(d))
	})
}
