package store

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/gaas-io/gaas/gaas"
)

// Webhooks: the endpoints, and the deliveries of the outbox's events to
// them. After commit, DispatchEvents fans each new event out to a delivery
// for every endpoint that receives it (gaas.Event.For); ClaimDeliveries
// hands the due ones to a sender (package server/webhook), and
// RecordAttempt writes what each attempt got and when to try again. A
// delivery is claimed under a lease: a sender that dies mid-attempt leaves
// it due again when the lease ends, so every delivery is made at least
// once, and a receiver drops repeats by webhook-id.

// WebhookService implements gaas.Webhooks on the store, and the outbox's
// side of delivery.
type WebhookService struct{ db *DB }

var _ gaas.Webhooks = (*WebhookService)(nil)

type webhookRow struct {
	ID             int64      `bun:"id"`
	URL            string     `bun:"url"`
	Events         string     `bun:"events"`
	Secret         string     `bun:"secret"`
	OwnerID        int64      `bun:"owner_id"`
	ProjectID      *int64     `bun:"project_id"`
	DisabledAt     *time.Time `bun:"disabled_at"`
	DisabledReason string     `bun:"disabled_reason"`
	FailingSince   *time.Time `bun:"failing_since"`
	CreatedAt      time.Time  `bun:"created_at"`
	UpdatedAt      time.Time  `bun:"updated_at"`
}

const webhookColumns = "id, url, events, secret, owner_id, project_id, disabled_at, disabled_reason, failing_since, created_at, updated_at"

// webhook is the row as the API shows it: without its secret.
func (r *webhookRow) webhook() gaas.Webhook {
	w := gaas.Webhook{ID: r.ID, URL: r.URL, OwnerID: r.OwnerID, ProjectID: derefID(r.ProjectID),
		DisabledAt: utc(r.DisabledAt), DisabledReason: r.DisabledReason, FailingSince: utc(r.FailingSince),
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC()}
	for _, t := range strings.Split(r.Events, "\n") {
		w.Events = append(w.Events, gaas.EventType(t))
	}
	return w
}

func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

func encodeEvents(ts []gaas.EventType) string {
	s := make([]string, len(ts))
	for i, t := range ts {
		s[i] = string(t)
	}
	return strings.Join(s, "\n")
}

// allowWebhooks decides whether c may manage the endpoints of project (0:
// of every event, which only admins may).
func allowWebhooks(ctx context.Context, idb bun.IDB, c userRow, project int64) error {
	if project == 0 {
		err := gaas.Allow(c.principal(), gaas.ActionManageWebhooks, 0)
		if errors.Is(err, gaas.ErrForbidden) {
			err = fmt.Errorf("only admins may manage endpoints of every event; a project's managers name their project: %w", err)
		}
		return err
	}
	_, err := visibleProject(ctx, idb, c.principal(), projectRef(project), gaas.ActionManageWebhooks)
	return err
}

// visibleWebhook reads endpoint id for caller, who must be allowed to
// manage it; to anyone else it does not exist. lock locks its row.
func (s *WebhookService) visibleWebhook(ctx context.Context, idb bun.IDB, caller, id int64, lock string) (webhookRow, error) {
	c, err := loadCaller(ctx, idb, caller)
	if err != nil {
		return webhookRow{}, err
	}
	var w webhookRow
	err = mapErr(query(ctx, idb, &w, "SELECT "+webhookColumns+" FROM webhooks WHERE id = ?"+lock, id))
	if err == nil {
		err = allowWebhooks(ctx, idb, c, derefID(w.ProjectID))
	}
	if err != nil {
		if !errors.Is(err, gaas.ErrUnauthorized) && (errors.Is(err, gaas.ErrForbidden) || errors.Is(err, gaas.ErrNotFound)) {
			err = fmt.Errorf("webhook %d: %w", id, gaas.ErrNotFound)
		}
		return webhookRow{}, err
	}
	return w, nil
}

// CreateWebhook implements gaas.Webhooks.
func (s *WebhookService) CreateWebhook(ctx context.Context, caller int64, req gaas.CreateWebhookRequest) (gaas.Webhook, error) {
	if err := req.Validate(); err != nil {
		return gaas.Webhook{}, fmt.Errorf("store: create webhook: %w", err)
	}
	secret := req.Secret
	if secret == "" {
		secret = gaas.NewWebhookSecret()
	}
	var w webhookRow
	err := s.db.tx(ctx, func(tx bun.Tx) error {
		c, err := loadCaller(ctx, tx, caller)
		if err != nil {
			return err
		}
		if err := allowWebhooks(ctx, tx, c, req.ProjectID); err != nil {
			return err
		}
		now := s.db.timestamp()
		w = webhookRow{URL: req.URL, Events: encodeEvents(req.Events), Secret: secret, OwnerID: caller,
			ProjectID: nullID(req.ProjectID), CreatedAt: now, UpdatedAt: now}
		return query(ctx, tx, &w.ID, "INSERT INTO webhooks (url, events, secret, owner_id, project_id, disabled_reason, created_at, updated_at)"+
			" VALUES (?, ?, ?, ?, ?, '', ?, ?) RETURNING id", w.URL, w.Events, w.Secret, w.OwnerID, w.ProjectID, now, now)
	})
	if err != nil {
		return gaas.Webhook{}, fmt.Errorf("store: create webhook: %w", mapErr(err))
	}
	out := w.webhook()
	out.Secret = secret
	return out, nil
}

// Webhooks implements gaas.Webhooks: an admin's page holds every
// endpoint, anyone else's those of the projects they manage.
func (s *WebhookService) Webhooks(ctx context.Context, caller int64, page gaas.Page) (gaas.WebhookPage, error) {
	limit, after, err := readPage(page, 0)
	if err != nil {
		return gaas.WebhookPage{}, fmt.Errorf("store: list webhooks: %w", err)
	}
	c, err := loadCaller(ctx, s.db.r, caller)
	if err != nil {
		return gaas.WebhookPage{}, fmt.Errorf("store: list webhooks: %w", err)
	}
	where, args := "id > ?", []any{after}
	if gaas.Allow(c.principal(), gaas.ActionManageWebhooks, 0) != nil {
		where += " AND project_id IN (SELECT project_id FROM project_members WHERE user_id = ? AND role = ? AND active = ?)"
		args = append(args, caller, string(gaas.ProjectManager), true)
	}
	var rows []webhookRow
	if err := query(ctx, s.db.r, &rows, "SELECT "+webhookColumns+" FROM webhooks WHERE "+where+" ORDER BY id LIMIT ?",
		append(args, limit+1)...); err != nil {
		return gaas.WebhookPage{}, fmt.Errorf("store: list webhooks: %w", mapErr(err))
	}
	var out gaas.WebhookPage
	out.Items, out.NextCursor = pageOf(rows, limit, func(r webhookRow) int64 { return r.ID }, (*webhookRow).webhook)
	return out, nil
}

// Webhook implements gaas.Webhooks.
func (s *WebhookService) Webhook(ctx context.Context, caller, id int64) (gaas.Webhook, error) {
	w, err := s.visibleWebhook(ctx, s.db.r, caller, id, "")
	if err != nil {
		return gaas.Webhook{}, fmt.Errorf("store: get webhook %d: %w", id, err)
	}
	return w.webhook(), nil
}

// UpdateWebhook implements gaas.Webhooks.
func (s *WebhookService) UpdateWebhook(ctx context.Context, caller int64, req gaas.UpdateWebhookRequest) (gaas.Webhook, error) {
	if err := req.Validate(); err != nil {
		return gaas.Webhook{}, fmt.Errorf("store: update webhook %d: %w", req.WebhookID, err)
	}
	var w webhookRow
	err := s.db.tx(ctx, func(tx bun.Tx) error {
		var err error
		if w, err = s.visibleWebhook(ctx, tx, caller, req.WebhookID, s.db.lockRow); err != nil {
			return err
		}
		now := s.db.timestamp()
		if req.URL != nil {
			w.URL = *req.URL
		}
		if req.Events != nil {
			w.Events = encodeEvents(req.Events)
		}
		if req.Enable && w.DisabledAt != nil {
			w.DisabledAt, w.DisabledReason, w.FailingSince = nil, "", nil
			// What waited while it was off is due now.
			if _, err := exec(ctx, tx, "UPDATE deliveries SET next_attempt_at = ? WHERE webhook_id = ? AND status = ?",
				now, w.ID, string(gaas.DeliveryPending)); err != nil {
				return err
			}
		}
		w.UpdatedAt = now
		_, err = exec(ctx, tx, "UPDATE webhooks SET url = ?, events = ?, disabled_at = ?, disabled_reason = ?, failing_since = ?, updated_at = ?"+
			" WHERE id = ?", w.URL, w.Events, w.DisabledAt, w.DisabledReason, w.FailingSince, now, w.ID)
		return err
	})
	if err != nil {
		return gaas.Webhook{}, fmt.Errorf("store: update webhook %d: %w", req.WebhookID, mapErr(err))
	}
	return w.webhook(), nil
}

// DeleteWebhook implements gaas.Webhooks.
func (s *WebhookService) DeleteWebhook(ctx context.Context, caller, id int64) error {
	err := s.db.tx(ctx, func(tx bun.Tx) error {
		if _, err := s.visibleWebhook(ctx, tx, caller, id, s.db.lockRow); err != nil {
			return err
		}
		if _, err := exec(ctx, tx, "DELETE FROM deliveries WHERE webhook_id = ?", id); err != nil {
			return err
		}
		_, err := exec(ctx, tx, "DELETE FROM webhooks WHERE id = ?", id)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: delete webhook %d: %w", id, mapErr(err))
	}
	return nil
}

type deliveryRow struct {
	ID             int64      `bun:"id"`
	WebhookID      int64      `bun:"webhook_id"`
	EventID        int64      `bun:"event_id"`
	EventType      string     `bun:"event_type"`
	Status         string     `bun:"status"`
	Attempts       int        `bun:"attempts"`
	NextAttemptAt  *time.Time `bun:"next_attempt_at"`
	LastAttemptAt  *time.Time `bun:"last_attempt_at"`
	LastError      string     `bun:"last_error"`
	LastStatusCode int        `bun:"last_status_code"`
	DeliveredAt    *time.Time `bun:"delivered_at"`
	CreatedAt      time.Time  `bun:"created_at"`
}

const deliveryColumns = "d.id, d.webhook_id, d.event_id, e.type AS event_type, d.status, d.attempts, d.next_attempt_at, d.last_attempt_at," +
	" d.last_error, d.last_status_code, d.delivered_at, d.created_at"

func (r *deliveryRow) delivery() gaas.Delivery {
	return gaas.Delivery{ID: r.ID, WebhookID: r.WebhookID, EventID: r.EventID, EventType: gaas.EventType(r.EventType),
		Status: gaas.DeliveryStatus(r.Status), Attempts: r.Attempts, NextAttemptAt: utc(r.NextAttemptAt), LastAttemptAt: utc(r.LastAttemptAt),
		LastError: r.LastError, LastStatusCode: r.LastStatusCode, DeliveredAt: utc(r.DeliveredAt), CreatedAt: r.CreatedAt.UTC()}
}

// Deliveries implements gaas.Webhooks: newest first.
func (s *WebhookService) Deliveries(ctx context.Context, caller int64, req gaas.DeliveriesRequest) (gaas.DeliveryPage, error) {
	limit, before, err := readPage(req.Page, math.MaxInt64)
	if err != nil {
		return gaas.DeliveryPage{}, fmt.Errorf("store: list deliveries: %w", err)
	}
	if _, err := s.visibleWebhook(ctx, s.db.r, caller, req.WebhookID, ""); err != nil {
		return gaas.DeliveryPage{}, fmt.Errorf("store: list deliveries: %w", err)
	}
	var rows []deliveryRow
	if err := query(ctx, s.db.r, &rows, "SELECT "+deliveryColumns+" FROM deliveries d JOIN events e ON e.id = d.event_id"+
		" WHERE d.webhook_id = ? AND d.id < ? ORDER BY d.id DESC LIMIT ?", req.WebhookID, before, limit+1); err != nil {
		return gaas.DeliveryPage{}, fmt.Errorf("store: list deliveries: %w", mapErr(err))
	}
	var out gaas.DeliveryPage
	out.Items, out.NextCursor = pageOf(rows, limit, func(r deliveryRow) int64 { return r.ID }, (*deliveryRow).delivery)
	return out, nil
}

// Redeliver implements gaas.Webhooks. A delivery to a disabled endpoint
// is refused with gaas.ErrConflict: it would wait until the endpoint is
// enabled again, which sends it anyway.
func (s *WebhookService) Redeliver(ctx context.Context, caller int64, req gaas.RedeliverRequest) (gaas.Delivery, error) {
	var d deliveryRow
	err := s.db.tx(ctx, func(tx bun.Tx) error {
		w, err := s.visibleWebhook(ctx, tx, caller, req.WebhookID, s.db.lockRow)
		if err != nil {
			return err
		}
		if w.DisabledAt != nil {
			return fmt.Errorf("webhook %d is disabled (%s); enable it to deliver again: %w", w.ID, w.DisabledReason, gaas.ErrConflict)
		}
		res, err := exec(ctx, tx, "UPDATE deliveries SET status = ?, next_attempt_at = ?, delivered_at = NULL WHERE id = ? AND webhook_id = ?",
			string(gaas.DeliveryPending), s.db.timestamp(), req.DeliveryID, req.WebhookID)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n != 1 {
			return fmt.Errorf("delivery %d of webhook %d: %w", req.DeliveryID, req.WebhookID, gaas.ErrNotFound)
		}
		return query(ctx, tx, &d, "SELECT "+deliveryColumns+" FROM deliveries d JOIN events e ON e.id = d.event_id WHERE d.id = ?", req.DeliveryID)
	})
	if err != nil {
		return gaas.Delivery{}, fmt.Errorf("store: redeliver %d: %w", req.DeliveryID, mapErr(err))
	}
	return d.delivery(), nil
}

// maxDispatch bounds the events one DispatchEvents transaction fans out.
const maxDispatch = 500

type eventRow struct {
	ID        int64     `bun:"id"`
	Type      string    `bun:"event_type"`
	AccountID *int64    `bun:"account_id"`
	ProjectID *int64    `bun:"project_id"`
	UserID    *int64    `bun:"user_id"`
	WebhookID *int64    `bun:"webhook_id"`
	Payload   string    `bun:"payload"`
	CreatedAt time.Time `bun:"created_at"`
}

const eventColumns = "e.id, e.type AS event_type, e.account_id, e.project_id, e.user_id, e.webhook_id, e.payload, e.created_at"

func (r *eventRow) event() gaas.Event {
	return gaas.Event{ID: r.ID, Type: gaas.EventType(r.Type), AccountID: derefID(r.AccountID), ProjectID: derefID(r.ProjectID),
		UserID: derefID(r.UserID), WebhookID: derefID(r.WebhookID), Data: []byte(r.Payload), CreatedAt: r.CreatedAt.UTC()}
}

// DispatchEvents fans the events not yet dispatched out to a delivery for
// each enabled endpoint that receives them, due now, and returns how many
// events it dispatched. Replicas racing it make each delivery once.
func (s *WebhookService) DispatchEvents(ctx context.Context) (int, error) {
	total := 0
	for more := true; more; {
		n := 0
		err := s.db.tx(ctx, func(tx bun.Tx) error {
			var events []eventRow
			if err := query(ctx, tx, &events, "SELECT "+eventColumns+" FROM events e WHERE e.dispatched_at IS NULL ORDER BY e.id LIMIT ?"+
				s.db.lockRows("e", true), maxDispatch); err != nil {
				return err
			}
			n, more = len(events), len(events) == maxDispatch
			if n == 0 {
				return nil
			}
			var hooks []webhookRow
			if err := query(ctx, tx, &hooks, "SELECT "+webhookColumns+" FROM webhooks WHERE disabled_at IS NULL ORDER BY id"); err != nil {
				return err
			}
			now := s.db.timestamp()
			ids := make([]any, 0, len(events)+1)
			ids = append(ids, now)
			for _, e := range events {
				ev := e.event()
				for _, h := range hooks {
					if !ev.For(h.webhook()) {
						continue
					}
					if _, err := exec(ctx, tx, "INSERT INTO deliveries (event_id, webhook_id, status, attempts, next_attempt_at,"+
						" last_error, last_status_code, created_at) VALUES (?, ?, ?, 0, ?, '', 0, ?) ON CONFLICT DO NOTHING",
						e.ID, h.ID, string(gaas.DeliveryPending), now, now); err != nil {
						return err
					}
				}
				ids = append(ids, e.ID)
			}
			_, err := exec(ctx, tx, "UPDATE events SET dispatched_at = ? WHERE id IN ("+marks(len(events))+")", ids...)
			return err
		})
		if err != nil {
			return total, fmt.Errorf("store: dispatch events: %w", mapErr(err))
		}
		total += n
	}
	return total, nil
}

// ClaimDeliveries claims up to limit deliveries that are due, to enabled
// endpoints, oldest due first, for one attempt each: each counts as
// attempted now, and is due again after lease unless RecordAttempt says
// otherwise first. Replicas claim different deliveries.
func (s *WebhookService) ClaimDeliveries(ctx context.Context, limit int, lease time.Duration) ([]gaas.DueDelivery, error) {
	var out []gaas.DueDelivery
	err := s.db.tx(ctx, func(tx bun.Tx) error {
		out = out[:0]
		now := s.db.timestamp()
		var ids []int64
		if err := query(ctx, tx, &ids, "SELECT d.id FROM deliveries d JOIN webhooks w ON w.id = d.webhook_id"+
			" WHERE d.status = ? AND d.next_attempt_at <= ? AND w.disabled_at IS NULL ORDER BY d.next_attempt_at, d.id LIMIT ?"+s.db.lockRows("d", true),
			string(gaas.DeliveryPending), now, limit); err != nil {
			return err
		}
		if len(ids) == 0 {
			return nil
		}
		args := make([]any, 0, len(ids)+2)
		args = append(args, now, now.Add(lease))
		for _, id := range ids {
			args = append(args, id)
		}
		if _, err := exec(ctx, tx, "UPDATE deliveries SET attempts = attempts + 1, last_attempt_at = ?, next_attempt_at = ?"+
			" WHERE id IN ("+marks(len(ids))+")", args...); err != nil {
			return err
		}
		var rows []struct {
			ID        int64  `bun:"delivery_id"`
			Attempts  int    `bun:"attempts"`
			WebhookID int64  `bun:"hook_id"`
			URL       string `bun:"url"`
			Secret    string `bun:"secret"`
			eventRow
		}
		if err := query(ctx, tx, &rows, "SELECT d.id AS delivery_id, d.attempts, w.id AS hook_id, w.url, w.secret, "+eventColumns+
			" FROM deliveries d JOIN webhooks w ON w.id = d.webhook_id JOIN events e ON e.id = d.event_id"+
			" WHERE d.id IN ("+marks(len(ids))+") ORDER BY d.next_attempt_at, d.id", args[2:]...); err != nil {
			return err
		}
		for _, r := range rows {
			out = append(out, gaas.DueDelivery{ID: r.ID, WebhookID: r.WebhookID, URL: r.URL, Secret: r.Secret, Attempt: r.Attempts, Event: r.event()})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: claim deliveries: %w", mapErr(err))
	}
	return out, nil
}

// maxLastError bounds the error a delivery keeps.
const maxLastError = 512

// RecordAttempt writes what an attempt of a delivery got. A delivered one
// is done, and its endpoint is failing no more; a failed one is due again
// after gaas.RetryDelay, and an endpoint whose deliveries have failed for
// gaas.DisableAfter is disabled, with a webhook.disabled event for its
// owner's other endpoints in the same transaction, and returned. An
// attempt that is no longer the delivery's latest (its lease ran out and
// it was claimed again, or it was deleted) is ignored.
func (s *WebhookService) RecordAttempt(ctx context.Context, r gaas.AttemptResult) (disabled *gaas.Webhook, err error) {
	if len(r.Err) > maxLastError {
		r.Err = r.Err[:maxLastError]
	}
	r.Err = strings.ToValidUTF8(r.Err, "?")
	err = s.db.tx(ctx, func(tx bun.Tx) error {
		disabled = nil
		var hook int64
		if err := query(ctx, tx, &hook, "SELECT webhook_id FROM deliveries WHERE id = ?", r.DeliveryID); err != nil {
			if errors.Is(mapErr(err), gaas.ErrNotFound) {
				return nil
			}
			return err
		}
		// The endpoint, then the delivery: the order every transaction
		// that changes both takes.
		var w webhookRow
		if err := query(ctx, tx, &w, "SELECT "+webhookColumns+" FROM webhooks WHERE id = ?"+s.db.lockRow, hook); err != nil {
			return err
		}
		var d deliveryRow
		if err := query(ctx, tx, &d, "SELECT "+deliveryColumns+" FROM deliveries d JOIN events e ON e.id = d.event_id WHERE d.id = ?"+
			s.db.lockRows("d", false), r.DeliveryID); err != nil {
			return err
		}
		if d.Status != string(gaas.DeliveryPending) || d.Attempts != r.Attempt {
			return nil
		}
		now := s.db.timestamp()
		if r.Delivered() {
			if _, err := exec(ctx, tx, "UPDATE deliveries SET status = ?, delivered_at = ?, next_attempt_at = NULL, last_error = '',"+
				" last_status_code = ? WHERE id = ?", string(gaas.DeliveryDelivered), now, r.StatusCode, d.ID); err != nil {
				return err
			}
			_, err := exec(ctx, tx, "UPDATE webhooks SET failing_since = NULL WHERE id = ? AND failing_since IS NOT NULL", w.ID)
			return err
		}
		if r.Err == "" {
			r.Err = fmt.Sprintf("answered %d", r.StatusCode)
		}
		if _, err := exec(ctx, tx, "UPDATE deliveries SET next_attempt_at = ?, last_error = ?, last_status_code = ? WHERE id = ?",
			now.Add(gaas.RetryDelay(d.Attempts)), r.Err, r.StatusCode, d.ID); err != nil {
			return err
		}
		switch {
		case w.FailingSince == nil:
			_, err := exec(ctx, tx, "UPDATE webhooks SET failing_since = ? WHERE id = ?", now, w.ID)
			return err
		case w.DisabledAt != nil || now.Sub(*w.FailingSince) < gaas.DisableAfter:
			return nil
		}
		w.DisabledAt = &now
		w.DisabledReason = fmt.Sprintf("deliveries failed for %s, since %s; the last: %s",
			now.Sub(*w.FailingSince).Round(time.Minute), w.FailingSince.UTC().Format(time.RFC3339), r.Err)
		if _, err := exec(ctx, tx, "UPDATE webhooks SET disabled_at = ?, disabled_reason = ?, updated_at = ? WHERE id = ?",
			now, w.DisabledReason, now, w.ID); err != nil {
			return err
		}
		ev, err := gaas.NewEvent(gaas.EventWebhookDisabled, gaas.Event{UserID: w.OwnerID, WebhookID: w.ID, ProjectID: derefID(w.ProjectID), CreatedAt: now},
			gaas.WebhookDisabled{WebhookID: w.ID, URL: w.URL, Reason: w.DisabledReason, At: now})
		if err != nil {
			return err
		}
		if err := appendEvent(ctx, tx, ev); err != nil {
			return err
		}
		hw := w.webhook()
		disabled = &hw
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: record attempt of delivery %d: %w", r.DeliveryID, mapErr(err))
	}
	return disabled, nil
}
