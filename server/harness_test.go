package server_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/authn"
	"github.com/gaas-io/gaas/gaas"
	"github.com/gaas-io/gaas/server"
	"github.com/gaas-io/gaas/server/internal/syncbuf"
	"github.com/gaas-io/gaas/store"
)

var signingKey = []byte("server-test-signing-key-0123456789abcdef")

// harness is a real server on a real store, reached over HTTP.
type harness struct {
	t      *testing.T
	db     *store.DB
	auth   *authn.Authenticator
	tokens *authn.Tokens
	srv    *httptest.Server
	client *http.Client // checks every exchange against the OpenAPI document
	logs   *syncbuf.Buffer

	dbClosed bool // the test closed the store to see the server fail

	mu        sync.Mutex
	secrets   []string // every password, token and key the test used
	usernames []string
}

// override lets a test put a failing dependency in front of the real one,
// or open the store on another database.
type override struct {
	jobs         gaas.JobService
	logs         gaas.JobLogs
	dsn          string
	cfg          server.Config
	batchTimeout time.Duration // the store's
	// maxReportRows is the store's most rows of a usage report (0: gaas.MaxReportRows).
	maxReportRows int
	// mount, when set, wraps the API's handler, as a program that serves
	// it under a path prefix does; requests then bypass the spec check.
	mount func(http.Handler) http.Handler
}

func newHarness(t *testing.T, o ...override) *harness {
	t.Helper()
	ctx := context.Background()
	dsn := ":memory:"
	if len(o) > 0 && o[0].dsn != "" {
		dsn = o[0].dsn
	}
	var opts store.Options
	if len(o) > 0 && o[0].cfg.Metrics != nil {
		opts.Observer = o[0].cfg.Metrics
	}
	if len(o) > 0 {
		opts.BatchTimeout, opts.MaxReportRows = o[0].batchTimeout, o[0].maxReportRows
	}
	db, err := store.Open(ctx, dsn, opts)
	require.NoError(t, err)
	tokens, err := authn.NewTokens(signingKey, 30*time.Minute, nil)
	require.NoError(t, err)
	h := &harness{t: t, db: db, tokens: tokens, logs: &syncbuf.Buffer{}}
	h.auth = authn.NewAuthenticator(db.Accounts, authn.Hasher{Iterations: 1000}, tokens)
	logger := slog.New(slog.NewJSONHandler(h.logs, nil))
	var jobs gaas.JobService = db.Jobs
	var cfg server.Config
	if len(o) > 0 {
		if o[0].jobs != nil {
			jobs = o[0].jobs
		}
		cfg = o[0].cfg
	}
	svc := servicesOf(h.auth, db)
	svc.Jobs = jobs
	if len(o) > 0 {
		svc.Logs = o[0].logs
	}
	api := server.NewServer(logger, cfg, svc)
	if len(o) > 0 && o[0].mount != nil {
		api = o[0].mount(api)
	}
	h.srv = httptest.NewServer(api)
	h.client = &http.Client{Transport: specChecker{t: t, next: h.srv.Client().Transport}}
	h.secret(string(signingKey))
	t.Cleanup(func() {
		h.srv.Close()
		h.assertNoSecretsLogged()
		if h.dbClosed {
			return
		}
		report, err := db.Check(context.Background())
		if assert.NoError(t, err) {
			assert.Empty(t, report.Violations)
		}
		db.Close()
	})
	return h
}

// servicesOf is every service of db, behind auth, for NewServer.
func servicesOf(auth gaas.Authenticator, db *store.DB) server.Services {
	return server.Services{Auth: auth, Users: db.Users, Jobs: db.Jobs, Quota: db.Quota,
		Catalogue: db.Catalogue, Allocations: db.Allocations, Projects: db.Projects, Schedules: db.Schedules, Webhooks: db.Webhooks, Reports: db.Reports, DB: db,
		Executors: db.Executors, Dispatch: db.Dispatch}
}

func (h *harness) account(name, password string) {
	h.mu.Lock()
	h.usernames = append(h.usernames, name)
	h.mu.Unlock()
	h.secret(password)
}

func (h *harness) secret(s string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.secrets = append(h.secrets, s)
}

// assertNoSecretsLogged fails the test if any password, token, hash or
// key it used appears in the server's log.
func (h *harness) assertNoSecretsLogged() {
	logs := h.logs.String()
	require.NotEmpty(h.t, logs, "the server logged nothing at all")
	h.mu.Lock()
	defer h.mu.Unlock()
	// The stored hashes of every account the test made, too.
	for _, name := range h.usernames {
		if _, hash, err := h.db.Accounts.Credentials(context.Background(), name); err == nil {
			h.secrets = append(h.secrets, hash, strings.Split(hash, "$")[4])
		}
	}
	for _, s := range h.secrets {
		if len(s) >= 8 {
			assert.NotContains(h.t, logs, s, "a secret reached the log")
		}
	}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

// json decodes the body into a generic value.
func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(r.body, &m), "body: %s", r.body)
	return m
}

func (r response) problem(t *testing.T, status int) map[string]any {
	t.Helper()
	require.Equal(t, status, r.status, "body: %s", r.body)
	assert.Equal(t, "application/problem+json", r.header.Get("Content-Type"))
	p := r.json(t)
	for _, k := range []string{"type", "title", "status", "detail"} {
		assert.Contains(t, p, k)
	}
	assert.EqualValues(t, status, p["status"])
	if status == http.StatusUnauthorized {
		assert.Equal(t, "Bearer", r.header.Get("WWW-Authenticate"))
	}
	return p
}

// errorFields lists the fields a 422 names.
func (r response) errorFields(t *testing.T) []string {
	t.Helper()
	p := r.problem(t, http.StatusUnprocessableEntity)
	var fields []string
	list, _ := p["errors"].([]any)
	for _, e := range list {
		fields = append(fields, e.(map[string]any)["field"].(string))
	}
	return fields
}

type req struct {
	method, path, token string
	body                string
	contentType         string
	header              map[string]string
}

func (h *harness) do(r req) response {
	h.t.Helper()
	return h.doWith(h.client, r)
}

// from is a client whose connections come from the loopback address ip
// (any of 127.0.0.0/8), as a client at another address would.
func (h *harness) from(ip string) *http.Client {
	tr := h.srv.Client().Transport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}).DialContext
	h.t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: specChecker{t: h.t, next: tr}}
}

// doWith sends r with client.
func (h *harness) doWith(client *http.Client, r req) response {
	h.t.Helper()
	resp, err := h.sendWith(client, r)
	require.NoError(h.t, err)
	return resp
}

// send is do for a goroutine other than the test's: it returns what went
// wrong instead of ending the test, which only the test's goroutine may.
func (h *harness) send(r req) (response, error) { return h.sendWith(h.client, r) }

func (h *harness) sendWith(client *http.Client, r req) (response, error) {
	hr, err := http.NewRequest(r.method, h.srv.URL+r.path, strings.NewReader(r.body))
	if err != nil {
		return response{}, err
	}
	if r.body != "" || r.contentType != "" {
		ct := r.contentType
		if ct == "" {
			ct = "application/json"
		}
		hr.Header.Set("Content-Type", ct)
	}
	if r.token != "" {
		hr.Header.Set("Authorization", "Bearer "+r.token)
	}
	for k, v := range r.header {
		hr.Header.Set(k, v)
	}
	resp, err := client.Do(hr)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, err
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

func (h *harness) post(path, token, body string) response {
	return h.do(req{method: http.MethodPost, path: path, token: token, body: body})
}

func (h *harness) put(path, token, body string) response {
	return h.do(req{method: http.MethodPut, path: path, token: token, body: body})
}

func (h *harness) get(path, token string) response {
	return h.do(req{method: http.MethodGet, path: path, token: token})
}

// user registers and logs in a user, returning their id and token.
func (h *harness) user(name string) (int64, string) {
	h.t.Helper()
	password := "pw-" + name + "-secret"
	h.account(name, password)
	r := h.post("/register", "", `{"username":"`+name+`","password":"`+password+`"}`)
	require.Equal(h.t, http.StatusCreated, r.status, "%s", r.body)
	return int64(r.json(h.t)["id"].(float64)), h.login(name, password)
}

func (h *harness) login(name, password string) string {
	h.t.Helper()
	h.secret(password)
	r := h.do(req{method: http.MethodPost, path: "/login", contentType: "application/x-www-form-urlencoded",
		body: url.Values{"username": {name}, "password": {password}}.Encode()})
	require.Equal(h.t, http.StatusOK, r.status, "%s", r.body)
	tok := r.json(h.t)["access_token"].(string)
	h.secret(tok)
	return tok
}

// admin makes an admin account, as gaasd does from its environment.
func (h *harness) admin(name string) (int64, string) {
	h.t.Helper()
	password := "admin-" + name + "-secret"
	h.account(name, password)
	u, err := h.auth.EnsureAdmin(context.Background(), name, password)
	require.NoError(h.t, err)
	return u.ID, h.login(name, password)
}

// balance reads a user's balance, in credits, straight from the store.
func (h *harness) balance(id int64) float64 {
	h.t.Helper()
	u, err := h.db.Accounts.UserByID(context.Background(), id)
	require.NoError(h.t, err)
	return float64(u.Balance) / float64(gaas.Credit)
}

const jobBody = `{"command": "python train.py", "gpu_type": "NVIDIA A100", "estimated_hours": 2.5}`
