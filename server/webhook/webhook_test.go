package webhook_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/gaas"
	"github.com/gaas-io/gaas/server/webhook"
	"github.com/gaas-io/gaas/store"
	"github.com/gaas-io/gaas/store/storetest"
)

// clock is a clock that moves only when told.
type clock struct{ ns atomic.Int64 }

func (c *clock) Now() time.Time      { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) Add(d time.Duration) { c.ns.Add(int64(d)) }

// env is a store with an admin, a user with credits, and a clock.
type env struct {
	db    *store.DB
	clk   *clock
	admin gaas.User
	user  gaas.User
}

// forEachStore runs fn on an in-memory SQLite, a SQLite file and, when
// GAAS_TEST_POSTGRES is set, PostgreSQL.
func forEachStore(t *testing.T, fn func(t *testing.T, e *env)) {
	for _, b := range []struct {
		name string
		dsn  func(t *testing.T) string
	}{
		{"memory", func(*testing.T) string { return ":memory:" }},
		{"file", func(t *testing.T) string { return filepath.Join(t.TempDir(), "gaas.db") }},
		{"postgres", func(t *testing.T) string { return storetest.PostgresDSN(t) }},
	} {
		t.Run(b.name, func(t *testing.T) { fn(t, newEnv(t, b.dsn(t))) })
	}
}

func newEnv(t *testing.T, dsn string) *env {
	ctx := context.Background()
	clk := &clock{}
	clk.ns.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	db, err := store.Open(ctx, dsn, store.Options{Now: clk.Now})
	require.NoError(t, err)
	t.Cleanup(func() {
		report, err := db.Check(ctx)
		require.NoError(t, err)
		assert.Empty(t, report.Violations)
		db.Close()
	})
	admin, err := db.Accounts.EnsureAdmin(ctx, "root", "unused-hash", false)
	require.NoError(t, err)
	user, err := db.Accounts.CreateUser(ctx, "ann", "unused-hash", gaas.RoleUser)
	require.NoError(t, err)
	return &env{db: db, clk: clk, admin: admin, user: user}
}

// moveJob submits a job for the user and approves it: one event.
func (e *env) moveJob(t *testing.T) gaas.Job {
	ctx := context.Background()
	j, err := e.db.Jobs.Submit(ctx, e.user.ID, gaas.SubmitRequest{Command: "train", GPUType: "A100", EstimatedHours: gaas.Hour})
	require.NoError(t, err)
	j, err = e.db.Jobs.Transition(ctx, e.admin.ID, gaas.TransitionRequest{JobID: j.ID, To: gaas.StatusApproved})
	require.NoError(t, err)
	return j
}

func (e *env) hook(t *testing.T, url string, events ...gaas.EventType) gaas.Webhook {
	w, err := e.db.Webhooks.CreateWebhook(context.Background(), e.admin.ID, gaas.CreateWebhookRequest{URL: url, Events: events})
	require.NoError(t, err)
	return w
}

func (e *env) sender(cfg webhook.Config) *webhook.Sender {
	cfg.Now = e.clk.Now
	cfg.AllowPrivate = true // httptest listens on loopback
	return webhook.New(e.db.Webhooks, cfg)
}

func (e *env) run(t *testing.T, s *webhook.Sender) int {
	n, err := s.RunOnce(context.Background())
	require.NoError(t, err)
	return n
}

func (e *env) deliveries(t *testing.T, hook int64) []gaas.Delivery {
	page, err := e.db.Webhooks.Deliveries(context.Background(), e.admin.ID, gaas.DeliveriesRequest{WebhookID: hook})
	require.NoError(t, err)
	return page.Items
}

// receiver is an endpoint that checks each delivery's signature as the
// Standard Webhooks specification says, written here apart from the
// package's signing, and answers with what status says.
type receiver struct {
	t      *testing.T
	secret string
	now    func() time.Time
	status func(n int) int // the answer to the nth request, from 1

	mu   sync.Mutex
	got  []gaas.Envelope
	ids  []string
	bad  []string
	hits int
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.hits++
	id, ts, sigs := r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp"), r.Header.Get("webhook-signature")
	if err := verify(rc.secret, id, ts, sigs, body, rc.now()); err != nil {
		rc.bad = append(rc.bad, err.Error())
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var env gaas.Envelope
	if err := json.Unmarshal(body, &env); err != nil {
		rc.bad = append(rc.bad, err.Error())
	}
	status := http.StatusNoContent
	if rc.status != nil {
		status = rc.status(rc.hits)
	}
	if status/100 == 2 {
		rc.got = append(rc.got, env)
		rc.ids = append(rc.ids, id)
	}
	w.WriteHeader(status)
}

// verify checks a delivery as a receiver does: the timestamp within five
// minutes, and one v1 signature the HMAC-SHA256 of "id.timestamp.body"
// under the secret's decoded key.
func verify(secret, id, ts, sigs string, body []byte, now time.Time) error {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return err
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || now.Sub(time.Unix(sec, 0)).Abs() > 5*time.Minute {
		return fmt.Errorf("timestamp %q is not within 5 minutes of %s", ts, now)
	}
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s.%s.%s", id, ts, body)
	want := mac.Sum(nil)
	for _, s := range strings.Fields(sigs) {
		v, b64, _ := strings.Cut(s, ",")
		got, err := base64.StdEncoding.DecodeString(b64)
		if v == "v1" && err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return fmt.Errorf("no signature of %q matches", sigs)
}

func (e *env) receiver(t *testing.T, status func(n int) int) (*receiver, *httptest.Server) {
	rc := &receiver{t: t, now: e.clk.Now, status: status}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	return rc, srv
}

func (rc *receiver) counts() (hits, delivered int, bad []string) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.hits, len(rc.got), rc.bad
}

// A delivery reaches a real receiver signed as Standard Webhooks says,
// once, and the log says so; redelivery sends it again under the same id.
func TestDeliverySignedOnce(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		rc, srv := e.receiver(t, nil)
		h := e.hook(t, srv.URL+"/hooks?token=abc", gaas.EventJobStatusChanged)
		rc.secret = h.Secret
		require.True(t, strings.HasPrefix(h.Secret, "whsec_"))
		j := e.moveJob(t)
		s := e.sender(webhook.Config{})

		assert.Equal(t, 1, e.run(t, s))
		assert.Equal(t, 0, e.run(t, s), "nothing more is due")
		hits, delivered, bad := rc.counts()
		require.Empty(t, bad)
		assert.Equal(t, 1, hits)
		require.Equal(t, 1, delivered)
		env := rc.got[0]
		assert.Equal(t, gaas.EventJobStatusChanged, env.Type)
		var data gaas.JobStatusChanged
		require.NoError(t, json.Unmarshal(env.Data, &data))
		assert.Equal(t, j.ID, data.JobID)
		assert.Equal(t, gaas.StatusApproved, data.To)

		ds := e.deliveries(t, h.ID)
		require.Len(t, ds, 1)
		assert.Equal(t, gaas.DeliveryDelivered, ds[0].Status)
		assert.Equal(t, 1, ds[0].Attempts)
		assert.Equal(t, http.StatusNoContent, ds[0].LastStatusCode)

		_, err := e.db.Webhooks.Redeliver(context.Background(), e.admin.ID, gaas.RedeliverRequest{WebhookID: h.ID, DeliveryID: ds[0].ID})
		require.NoError(t, err)
		assert.Equal(t, 1, e.run(t, s))
		_, delivered, _ = rc.counts()
		require.Equal(t, 2, delivered)
		assert.Equal(t, rc.ids[0], rc.ids[1], "a redelivery keeps its webhook-id")
		assert.Equal(t, 2, e.deliveries(t, h.ID)[0].Attempts)
	})
}

// An endpoint that fails is tried again after growing delays, driven by
// the clock, until it answers; then it is delivered once.
func TestFailingEndpointRecovers(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		rc, srv := e.receiver(t, func(n int) int {
			if n <= 3 {
				return http.StatusServiceUnavailable
			}
			return http.StatusOK
		})
		h := e.hook(t, srv.URL, gaas.EventJobStatusChanged)
		rc.secret = h.Secret
		e.moveJob(t)
		s := e.sender(webhook.Config{})

		assert.Equal(t, 1, e.run(t, s))
		for attempt := 1; attempt <= 3; attempt++ {
			delay := gaas.RetryDelay(attempt)
			e.clk.Add(delay - time.Second)
			assert.Equal(t, 0, e.run(t, s), "attempt %d: not due before its delay", attempt+1)
			e.clk.Add(time.Second)
			assert.Equal(t, 1, e.run(t, s), "attempt %d is due after %s", attempt+1, delay)
		}
		hits, delivered, bad := rc.counts()
		assert.Empty(t, bad)
		assert.Equal(t, 4, hits)
		assert.Equal(t, 1, delivered)
		ds := e.deliveries(t, h.ID)
		require.Len(t, ds, 1)
		assert.Equal(t, gaas.DeliveryDelivered, ds[0].Status)
		assert.Equal(t, 4, ds[0].Attempts)
		assert.Empty(t, ds[0].LastError)
		got, err := e.db.Webhooks.Webhook(context.Background(), e.admin.ID, h.ID)
		require.NoError(t, err)
		assert.Nil(t, got.FailingSince, "a success ends the failing")
		e.clk.Add(48 * time.Hour)
		assert.Equal(t, 0, e.run(t, s))
	})
}

// An endpoint that fails for a day is disabled: the API says why, a
// warning is logged without its secret, its owner's other endpoint hears
// of it, and nothing more is sent to it until it is enabled again.
func TestEndpointDisabledAfterADay(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		down, downSrv := e.receiver(t, func(int) int { return http.StatusInternalServerError })
		up, upSrv := e.receiver(t, nil)
		dead := e.hook(t, downSrv.URL, gaas.EventJobStatusChanged)
		down.secret = dead.Secret
		told := e.hook(t, upSrv.URL, gaas.EventWebhookDisabled)
		up.secret = told.Secret
		var logs bytes.Buffer
		var logMu sync.Mutex
		s := e.sender(webhook.Config{Logger: slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &logMu}, nil))})

		e.moveJob(t)
		start := e.clk.Now()
		attempts := 0
		for e.clk.Now().Sub(start) < 27*time.Hour {
			attempts += e.run(t, s)
			e.clk.Add(time.Minute)
		}
		got, err := e.db.Webhooks.Webhook(ctx, e.admin.ID, dead.ID)
		require.NoError(t, err)
		require.NotNil(t, got.DisabledAt, "disabled after a day of failures")
		assert.GreaterOrEqual(t, got.DisabledAt.Sub(start), gaas.DisableAfter)
		assert.Contains(t, got.DisabledReason, "500")
		hits, _, _ := down.counts()
		assert.Equal(t, attempts-1, hits, "every attempt but the notice reached it")
		assert.GreaterOrEqual(t, hits, 10, "tried again and again for a day")

		_, delivered, bad := up.counts()
		assert.Empty(t, bad)
		require.Equal(t, 1, delivered, "the owner's other endpoint is told")
		var data gaas.WebhookDisabled
		require.NoError(t, json.Unmarshal(up.got[0].Data, &data))
		assert.Equal(t, dead.ID, data.WebhookID)
		logMu.Lock()
		logged := logs.String()
		logMu.Unlock()
		assert.Contains(t, logged, "webhook endpoint disabled")
		assert.NotContains(t, logged, strings.TrimPrefix(dead.Secret, "whsec_"))

		// Disabled, it is sent nothing: a new event waits for no one.
		e.moveJob(t)
		e.clk.Add(3 * time.Hour)
		e.run(t, s)
		after, _, _ := down.counts()
		assert.Equal(t, hits, after)
		ds := e.deliveries(t, dead.ID)
		require.Len(t, ds, 1, "an event while it was disabled is not queued for it")
		assert.Equal(t, gaas.DeliveryPending, ds[0].Status)
		assert.Contains(t, ds[0].LastError, "500")

		// Enabled again, its pending delivery goes at once.
		_, err = e.db.Webhooks.UpdateWebhook(ctx, e.admin.ID, gaas.UpdateWebhookRequest{WebhookID: dead.ID, Enable: true})
		require.NoError(t, err)
		assert.Equal(t, 1, e.run(t, s))
	})
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// Without AllowPrivate, a loopback endpoint is refused when dialled, and
// the delivery log says why; a redirect is not followed.
func TestRefusedDestinations(t *testing.T) {
	e := newEnv(t, ":memory:")
	rc, srv := e.receiver(t, nil)
	h := e.hook(t, srv.URL, gaas.EventJobStatusChanged)
	rc.secret = h.Secret
	e.moveJob(t)
	s := webhook.New(e.db.Webhooks, webhook.Config{Now: e.clk.Now, Logger: slog.New(slog.DiscardHandler)})
	assert.Equal(t, 1, e.run(t, s))
	hits, _, _ := rc.counts()
	assert.Zero(t, hits)
	ds := e.deliveries(t, h.ID)
	require.Len(t, ds, 1)
	assert.Contains(t, ds[0].LastError, "private or loopback")
	assert.NotContains(t, ds[0].LastError, srv.URL, "the log does not repeat the URL")

	target, targetSrv := e.receiver(t, nil)
	redirect := httptest.NewServer(http.RedirectHandler(targetSrv.URL, http.StatusFound))
	t.Cleanup(redirect.Close)
	h2 := e.hook(t, redirect.URL, gaas.EventJobStatusChanged)
	target.secret = h2.Secret
	e.moveJob(t)
	allow := webhook.New(e.db.Webhooks, webhook.Config{Now: e.clk.Now, AllowPrivate: true})
	e.run(t, allow)
	hits, _, _ = target.counts()
	assert.Zero(t, hits, "the redirect was not followed")
	ds = e.deliveries(t, h2.ID)
	require.NotEmpty(t, ds)
	assert.Equal(t, http.StatusFound, ds[0].LastStatusCode)
	assert.Equal(t, gaas.DeliveryPending, ds[0].Status)
}

// An answer is read only up to the bound; a slow one times out.
func TestAnswersBounded(t *testing.T) {
	e := newEnv(t, ":memory:")
	var served atomic.Int64
	huge := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		chunk := bytes.Repeat([]byte("x"), 1<<10)
		for range 1 << 12 { // 4 MiB, if it were all read
			n, err := w.Write(chunk)
			served.Add(int64(n))
			if err != nil {
				return
			}
		}
	}))
	t.Cleanup(huge.Close)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(2 * time.Second):
		}
	}))
	t.Cleanup(slow.Close)
	hb := e.hook(t, huge.URL, gaas.EventJobStatusChanged)
	hs := e.hook(t, slow.URL, gaas.EventJobStatusChanged)
	e.moveJob(t)
	s := webhook.New(e.db.Webhooks, webhook.Config{Now: e.clk.Now, AllowPrivate: true, Timeout: 300 * time.Millisecond, MaxResponse: 1 << 10})
	begin := time.Now()
	assert.Equal(t, 2, e.run(t, s))
	assert.Less(t, time.Since(begin), 1500*time.Millisecond, "the slow answer was not waited for")
	assert.Equal(t, gaas.DeliveryDelivered, e.deliveries(t, hb.ID)[0].Status)
	assert.Less(t, served.Load(), int64(4<<20), "the rest of the answer was not read")
	ds := e.deliveries(t, hs.ID)
	assert.Equal(t, gaas.DeliveryPending, ds[0].Status)
	assert.Contains(t, ds[0].LastError, "timed out")
}

func TestPublic(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1": false, "10.1.2.3": false, "172.16.0.1": false, "192.168.1.1": false, "169.254.169.254": false,
		"100.64.0.1": false, "0.0.0.0": false, "::1": false, "fe80::1": false, "fd00::1": false, "::ffff:127.0.0.1": false,
		"224.0.0.1": false, "8.8.8.8": true, "2606:4700::1111": true, "::ffff:8.8.8.8": true,
	} {
		assert.Equal(t, want, webhook.Public(netip.MustParseAddr(addr)), addr)
	}
}

// Sign agrees with the specification's example.
func TestSignExample(t *testing.T) {
	// From the Standard Webhooks specification's test vectors.
	sig, err := webhook.Sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330,
		[]byte(`{"test": 2432232314}`))
	require.NoError(t, err)
	assert.Equal(t, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", sig)
}
