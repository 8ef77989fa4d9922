package portal

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/gaas-io/gaas/gaas"
)

// webhooksPage is the data of the list of webhook endpoints.
type webhooksPage struct {
	Webhooks []gaas.Webhook
	Pager    pager
	Events   []gaas.EventType
	// Created is the endpoint just made, whose secret is shown this once.
	Created *gaas.Webhook
}

func (p *site) handleWebhooks() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.renderWebhooks(w, r, nil)
	})
}

// renderWebhooks shows the endpoints and, after it was made, created
// with its secret.
func (p *site) renderWebhooks(w http.ResponseWriter, r *http.Request, created *gaas.Webhook) {
	page, err := p.svc.Webhooks.Webhooks(r.Context(), callerID(r), gaas.Page{Cursor: r.URL.Query().Get("cursor")})
	if err != nil {
		p.showError(w, r, err)
		return
	}
	data := webhooksPage{Webhooks: page.Items, Pager: p.pageLinks(r, page.NextCursor), Events: gaas.EventTypes(), Created: created}
	status := http.StatusOK
	if created != nil {
		status = http.StatusCreated
	}
	p.render(w, r, status, "admin_webhooks", "Webhooks", data)
}

// handleCreateWebhook registers an endpoint and shows its secret on the
// page it answers with, once: it is not put in a redirect's flash, which
// would keep it in a cookie.
func (p *site) handleCreateWebhook() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f := r.PostForm
		req := gaas.CreateWebhookRequest{URL: strings.TrimSpace(f.Get("url"))}
		for _, e := range f["events"] {
			req.Events = append(req.Events, gaas.EventType(e))
		}
		if s := strings.TrimSpace(f.Get("project")); s != "" {
			id, err := p.projectID(r, "project", s)
			if err != nil {
				p.failed(w, r, "The webhook was not created", "", err)
				return
			}
			req.ProjectID = id
		}
		wh, err := p.svc.Webhooks.CreateWebhook(r.Context(), callerID(r), req)
		if err != nil {
			p.failed(w, r, "The webhook was not created", "", err)
			return
		}
		p.renderWebhooks(w, r, &wh)
	})
}

// webhookPage is the data of an endpoint's page: its deliveries.
type webhookPage struct {
	Webhook    gaas.Webhook
	Deliveries []gaas.Delivery
	Pager      pager
	Back       string
}

func (p *site) handleWebhook() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := pathID(r, "id")
		if !ok {
			p.handleNotFound().ServeHTTP(w, r)
			return
		}
		wh, err := p.svc.Webhooks.Webhook(r.Context(), callerID(r), id)
		if err != nil {
			p.showError(w, r, err)
			return
		}
		page, err := p.svc.Webhooks.Deliveries(r.Context(), callerID(r), gaas.DeliveriesRequest{WebhookID: id, Page: gaas.Page{Cursor: r.URL.Query().Get("cursor")}})
		if err != nil {
			p.showError(w, r, err)
			return
		}
		data := webhookPage{Webhook: wh, Deliveries: page.Items, Pager: p.pageLinks(r, page.NextCursor), Back: r.URL.RequestURI()}
		p.render(w, r, http.StatusOK, "admin_webhook", fmt.Sprintf("Webhook %d", wh.ID), data)
	})
}

// webhookLink is the page of endpoint id.
func webhookLink(id int64) string { return "/portal/admin/webhooks/" + strconv.FormatInt(id, 10) }

// handleEnableWebhook turns a disabled endpoint back on; its pending
// deliveries resume. (The library disables an endpoint only when it has
// failed for too long: there is no disabling one by hand.)
func (p *site) handleEnableWebhook() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := pathID(r, "id")
		if !ok {
			p.handleNotFound().ServeHTTP(w, r)
			return
		}
		if _, err := p.svc.Webhooks.UpdateWebhook(r.Context(), callerID(r), gaas.UpdateWebhookRequest{WebhookID: id, Enable: true}); err != nil {
			p.failed(w, r, "The webhook was not enabled", "", err)
			return
		}
		p.redirect(w, r, webhookLink(id), fmt.Sprintf("Webhook %d is enabled; its pending deliveries resume.", id))
	})
}

func (p *site) handleDeleteWebhook() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := pathID(r, "id")
		if !ok {
			p.handleNotFound().ServeHTTP(w, r)
			return
		}
		if err := p.svc.Webhooks.DeleteWebhook(r.Context(), callerID(r), id); err != nil {
			p.failed(w, r, "The webhook was not deleted", "", err)
			return
		}
		p.redirect(w, r, "/portal/admin/webhooks", fmt.Sprintf("Webhook %d and its deliveries are deleted.", id))
	})
}

func (p *site) handleRedeliver() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := pathID(r, "id")
		delivery, ok2 := pathID(r, "delivery")
		if !ok || !ok2 {
			p.handleNotFound().ServeHTTP(w, r)
			return
		}
		if _, err := p.svc.Webhooks.Redeliver(r.Context(), callerID(r), gaas.RedeliverRequest{WebhookID: id, DeliveryID: delivery}); err != nil {
			p.failed(w, r, "The delivery was not sent again", "", err)
			return
		}
		p.redirect(w, r, backTo(r, webhookLink(id)), fmt.Sprintf("Delivery %d is due again now.", delivery))
	})
}
