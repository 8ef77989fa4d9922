// Package webhook delivers the outbox's events to the endpoints that
// admins and project managers registered, as the Standard Webhooks
// specification (https://www.standardwebhooks.com/) says: a JSON body
// signed with the endpoint's secret in the webhook-id, webhook-timestamp
// and webhook-signature headers, so that receivers can check it with the
// specification's libraries.
//
// A Sender runs apart from the requests that make events: RunOnce fans
// new events out to deliveries, then claims the due ones in batches, sends
// them, and records each answer; the store decides when to try again and
// when to give up on an endpoint. Nothing here is on a submission's path.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/gaas-io/gaas/gaas"
)

// Outbox is the store's side of delivery (store.WebhookService).
type Outbox interface {
	DispatchEvents(ctx context.Context) (int, error)
	ClaimDeliveries(ctx context.Context, limit int, lease time.Duration) ([]gaas.DueDelivery, error)
	RecordAttempt(ctx context.Context, r gaas.AttemptResult) (*gaas.Webhook, error)
}

// Config configures a Sender. The zero value is usable: it refuses
// private networks.
type Config struct {
	// AllowPrivate lets deliveries go to loopback, private, link-local and
	// other non-public addresses. It is checked on every connection, at
	// the address dialled, so a name that resolves elsewhere later (DNS
	// rebinding) is held to it too.
	AllowPrivate bool
	// Timeout bounds one attempt, from dialling to the end of the answer;
	// 0 means 10s.
	Timeout time.Duration
	// MaxResponse bounds the bytes of an answer read; 0 means 64 KiB.
	MaxResponse int64
	// Batch is how many deliveries are claimed at once; 0 means 32.
	Batch int
	// Concurrency bounds the attempts in flight; 0 means 8.
	Concurrency int
	// Now is the clock of webhook-timestamp; nil means time.Now.
	Now func() time.Time
	// Logger hears of disabled endpoints and failures; nil means none.
	Logger *slog.Logger
	// UserAgent is sent with every delivery; "" means "gaas-webhooks".
	UserAgent string
}

// Sender delivers events. It is safe for concurrent use, and several
// Senders (replicas) may share one store.
type Sender struct {
	outbox Outbox
	cfg    Config
	client *http.Client
	lease  time.Duration
}

// New returns a Sender of outbox's deliveries.
func New(outbox Outbox, cfg Config) *Sender {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.MaxResponse <= 0 {
		cfg.MaxResponse = 64 << 10
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 32
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 8
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = "gaas-webhooks"
	}
	dialer := &net.Dialer{Timeout: cfg.Timeout, Control: func(_, address string, _ syscall.RawConn) error {
		return checkAddress(address, cfg.AllowPrivate)
	}}
	transport := &http.Transport{
		Proxy:                 nil, // a proxy would be dialled instead of the endpoint, and escape the check
		DialContext:           dialer.DialContext,
		TLSHandshakeTimeout:   cfg.Timeout,
		ResponseHeaderTimeout: cfg.Timeout,
		MaxIdleConnsPerHost:   2,
		IdleConnTimeout:       90 * time.Second,
	}
	client := &http.Client{
		Transport: transport,
		Timeout:   cfg.Timeout,
		// A redirect is not followed: the endpoint is where an admin
		// pointed, and a 3xx counts as a failed attempt.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	// The claim of a batch outlives its last attempt, which may wait for
	// the others' slots, so that a delivery under way is not claimed again
	// by another replica; a sender that dies leaves its claims due again
	// when it ends.
	rounds := (cfg.Batch + cfg.Concurrency - 1) / cfg.Concurrency
	return &Sender{outbox: outbox, cfg: cfg, client: client, lease: time.Duration(rounds+1)*cfg.Timeout + 5*time.Second}
}

// errPrivate is a destination that Config.AllowPrivate does not allow.
var errPrivate = errors.New("the address is in a private or loopback network, which gaasd refuses (-webhook-allow-private)")

// checkAddress refuses a dialled address ("ip:port") that is not public,
// unless allow.
func checkAddress(address string, allow bool) error {
	if allow {
		return nil
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("webhook: dial %s: %w", address, err)
	}
	if !Public(ap.Addr()) {
		return fmt.Errorf("webhook: dial %s: %w", ap.Addr(), errPrivate)
	}
	return nil
}

// sharedAddressSpace is 100.64.0.0/10, carrier-grade NAT (RFC 6598).
var sharedAddressSpace = netip.MustParsePrefix("100.64.0.0/10")

// Public reports whether ip is an address on the public internet: not
// loopback, private (RFC 1918, RFC 4193), link-local, shared (RFC 6598),
// multicast or unspecified.
func Public(ip netip.Addr) bool {
	ip = ip.Unmap()
	return ip.IsValid() && !ip.IsLoopback() && !ip.IsPrivate() && !ip.IsLinkLocalUnicast() && !ip.IsLinkLocalMulticast() &&
		!ip.IsInterfaceLocalMulticast() && !ip.IsMulticast() && !ip.IsUnspecified() && !sharedAddressSpace.Contains(ip)
}

// Sign is the webhook-signature of a delivery: "v1," and the base64 of
// HMAC-SHA256, keyed by the secret's bytes, of "id.timestamp.body".
func Sign(secret, id string, timestamp int64, body []byte) (string, error) {
	key, err := gaas.DecodeWebhookSecret(secret)
	if err != nil {
		return "", fmt.Errorf("webhook: secret: %w", err)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + strconv.FormatInt(timestamp, 10) + "."))
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil)), nil
}

// maxRounds bounds the batches one RunOnce claims, so that a backlog does
// not keep one call running for ever: the next call goes on.
const maxRounds = 16

// RunOnce dispatches new events to deliveries, then sends what is due, a
// batch at a time, and returns how many attempts it made. An error of the
// store ends it; a failed attempt does not (it is recorded and retried).
func (s *Sender) RunOnce(ctx context.Context) (int, error) {
	if _, err := s.outbox.DispatchEvents(ctx); err != nil {
		return 0, err
	}
	attempts := 0
	for range maxRounds {
		due, err := s.outbox.ClaimDeliveries(ctx, s.cfg.Batch, s.lease)
		if err != nil {
			return attempts, err
		}
		if len(due) == 0 {
			break
		}
		if err := s.sendAll(ctx, due); err != nil {
			return attempts, err
		}
		attempts += len(due)
		if len(due) < s.cfg.Batch {
			break
		}
	}
	return attempts, nil
}

// Run calls RunOnce every interval until ctx is done, logging its errors.
func (s *Sender) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if _, err := s.RunOnce(ctx); err != nil && ctx.Err() == nil {
			s.cfg.Logger.Error("webhook deliveries", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sendAll attempts each delivery of due, at most Concurrency at once, and
// records the answers.
func (s *Sender) sendAll(ctx context.Context, due []gaas.DueDelivery) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		slots = make(chan struct{}, s.cfg.Concurrency)
	)
	for _, d := range due {
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			r := s.attempt(ctx, d)
			disabled, err := s.outbox.RecordAttempt(ctx, r)
			switch {
			case err != nil:
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			case disabled != nil:
				s.cfg.Logger.Warn("webhook endpoint disabled", "webhook_id", disabled.ID, "owner_id", disabled.OwnerID,
					"project_id", disabled.ProjectID, "reason", disabled.DisabledReason)
			case !r.Delivered():
				s.cfg.Logger.Info("webhook delivery failed", "webhook_id", d.WebhookID, "delivery_id", d.ID,
					"attempt", d.Attempt, "status", r.StatusCode, "err", r.Err)
			}
		})
	}
	wg.Wait()
	return first
}

// attempt sends d once.
func (s *Sender) attempt(ctx context.Context, d gaas.DueDelivery) gaas.AttemptResult {
	r := gaas.AttemptResult{DeliveryID: d.ID, Attempt: d.Attempt}
	body := d.Event.Body()
	id := d.Event.MessageID()
	ts := s.cfg.Now().Unix()
	sig, err := Sign(d.Secret, id, ts, body)
	if err != nil {
		r.Err = err.Error()
		return r
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.URL, bytes.NewReader(body))
	if err != nil {
		r.Err = "the endpoint's URL cannot be requested"
		return r
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", s.cfg.UserAgent)
	req.Header.Set("webhook-id", id)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("webhook-signature", sig)
	resp, err := s.client.Do(req)
	if err != nil {
		r.Err = describe(err)
		return r
	}
	defer resp.Body.Close()
	r.StatusCode = resp.StatusCode
	// Read a bounded part of the answer, so the connection may be reused
	// for a short one and a long one cannot hold the sender.
	if _, err := io.CopyN(io.Discard, resp.Body, s.cfg.MaxResponse); err != nil && !errors.Is(err, io.EOF) && r.StatusCode/100 == 2 {
		r.Err = "reading the answer: " + describe(err)
	}
	if r.StatusCode/100 != 2 && r.Err == "" {
		r.Err = "answered " + resp.Status
	}
	return r
}

// describe is err without the URL that net/http wraps it in: an
// endpoint's URL may carry a token, and the delivery log is read by more
// people than registered it.
func describe(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timed out"
	}
	return err.Error()
}
