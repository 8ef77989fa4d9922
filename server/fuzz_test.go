package server_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/gaas-io/gaas/authn"
	"github.com/gaas-io/gaas/gaas"
	"github.com/gaas-io/gaas/server"
	"github.com/gaas-io/gaas/store"
	"github.com/gaas-io/gaas/store/storetest"
)

// FuzzRequestBody sends any bytes as the body of every endpoint that
// decodes one: the answer is a valid request's answer or a 4xx problem,
// never a 5xx or a panic, and no sequence of them breaks the ledger. The
// store is an in-memory SQLite, or PostgreSQL when GAAS_TEST_POSTGRES names
// a server: each refuses some input the other keeps.
func FuzzRequestBody(f *testing.F) {
	ctx := context.Background()
	dsn := ":memory:"
	if os.Getenv(storetest.PostgresEnv) != "" {
		dsn = storetest.PostgresDSN(f)
	}
	db, err := store.Open(ctx, dsn, store.Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() {
		if rep, err := db.Check(ctx); err != nil || !rep.OK() {
			f.Errorf("after fuzzing: %v %v", err, rep.Violations)
		}
		db.Close()
	})
	tokens, _ := authn.NewTokens(signingKey, 0, nil)
	auth := authn.NewAuthenticator(db.Accounts, authn.Hasher{Iterations: 1}, tokens)
	admin, err := auth.EnsureAdmin(ctx, "root", "root-password")
	if err != nil {
		f.Fatal(err)
	}
	if _, err := db.Jobs.Submit(ctx, admin.ID, gaas.SubmitRequest{Command: "x", GPUType: "A100", EstimatedHours: 1}); err != nil {
		f.Fatal(err)
	}
	tok, _ := tokens.Issue(admin)
	h := server.NewServer(slog.New(slog.NewJSONHandler(io.Discard, nil)), server.Config{LoginsPerUser: -1, LoginsPerAddress: -1}, servicesOf(auth, db))

	for _, seed := range []string{
		jobBody, `{"status": "APPROVED"}`, `{"status": "COMPLETED", "actual_hours": 0.5}`, `{"hours": -1e3}`,
		`{"gpu_hours_quota": 1e9, "reason": "x"}`, `{"role": "admin"}`, `{"username": "alice", "password": "correct horse"}`,
		`{"a":1,"a":2}`, `{"command": "x"} x`, `{"estimated_hours": NaN}`, `[`, `{"x": [1, {"y": {}}]}`, "\xff",
	} {
		f.Add([]byte(seed))
	}
	routes := []struct{ method, path string }{
		{"POST", "/register"}, {"POST", "/login"}, {"POST", "/jobs"}, {"PATCH", "/jobs/1"},
		{"PATCH", "/users/1"}, {"PUT", "/users/1/quota"}, {"POST", "/users/1/quota/grants"},
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		// Every exchange is also checked against the OpenAPI document: a
		// body the server accepts must be one the document calls valid.
		client := &http.Client{Transport: specChecker{t: t, next: handlerTransport{h}}}
		for _, rt := range routes {
			req, err := http.NewRequest(rt.method, "http://gaas"+rt.path, strings.NewReader(string(body)))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			answer, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			code := resp.StatusCode
			if code >= 500 {
				t.Fatalf("%s %s %q: %d %s", rt.method, rt.path, body, code, answer)
			}
			if !json.Valid(answer) {
				t.Fatalf("%s %s %q: the answer is not JSON: %s", rt.method, rt.path, body, answer)
			}
			if code >= 400 && resp.Header.Get("Content-Type") != "application/problem+json" {
				t.Fatalf("%s %s %q: a %d that is not a problem", rt.method, rt.path, body, code)
			}
			if code < 300 && code != http.StatusOK && code != http.StatusCreated {
				t.Fatalf("%s %s: unexpected %d", rt.method, rt.path, code)
			}
		}
	})
}

// handlerTransport serves a client's requests with a handler, in process.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	sreq := httptest.NewRequest(req.Method, req.URL.RequestURI(), req.Body).WithContext(req.Context())
	sreq.Header = req.Header.Clone()
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, sreq)
	return rec.Result(), nil
}
