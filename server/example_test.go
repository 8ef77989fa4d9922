package server_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/gaas-io/gaas/authn"
	"github.com/gaas-io/gaas/server"
	"github.com/gaas-io/gaas/store"
)

func ExampleNewServer() {
	ctx := context.Background()
	db, _ := store.Open(ctx, ":memory:", store.Options{})
	defer db.Close()
	key, _ := db.SigningKey(ctx)
	tokens, _ := authn.NewTokens(key, 0, nil)
	auth := authn.NewAuthenticator(db.Accounts, authn.Hasher{}, tokens)
	logger := slog.New(slog.NewJSONHandler(io.Discard, nil))

	srv := httptest.NewServer(server.NewServer(logger, server.Config{}, server.Services{
		Auth: auth, Users: db.Users, Jobs: db.Jobs, Quota: db.Quota,
		Catalogue: db.Catalogue, Allocations: db.Allocations, Projects: db.Projects, Schedules: db.Schedules, Webhooks: db.Webhooks, Reports: db.Reports, DB: db,
	}))
	defer srv.Close()

	resp, _ := http.Post(srv.URL+"/register", "application/json", strings.NewReader(`{"username": "alice", "password": "correct horse"}`))
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, strings.TrimSpace(string(body)))
	// Output:
	// 201 {"id":1,"username":"alice","role":"user","gpu_hours_quota":10.0}
}
