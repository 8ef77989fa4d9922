package remote_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"time"

	"github.com/gaas-io/gaas/authn"
	"github.com/gaas-io/gaas/gaas"
	"github.com/gaas-io/gaas/server"
	"github.com/gaas-io/gaas/server/executor/remote"
	"github.com/gaas-io/gaas/store"
)

// A gaas server, an executor account made on it, and the Dispatcher a
// runner on another machine drives its executor through.
func Example() {
	ctx := context.Background()
	db, _ := store.Open(ctx, ":memory:", store.Options{})
	defer db.Close()
	key, _ := db.SigningKey(ctx)
	tokens, _ := authn.NewTokens(key, 0, nil)
	srv := httptest.NewServer(server.NewServer(slog.New(slog.NewTextHandler(io.Discard, nil)), server.Config{}, server.Services{
		Auth: authn.NewAuthenticator(db.Accounts, authn.Hasher{}, tokens), Users: db.Users, Jobs: db.Jobs, Quota: db.Quota,
		Catalogue: db.Catalogue, Allocations: db.Allocations, Projects: db.Projects, Schedules: db.Schedules, Webhooks: db.Webhooks, Reports: db.Reports, DB: db,
		Executors: db.Executors, Dispatch: db.Dispatch,
	}))
	defer srv.Close()

	// What "gaasd executors add node1" does.
	_, token, _ := db.As(gaas.System("cli:example")).CreateExecutor(ctx, "node1")

	d, _ := remote.New(remote.Config{URL: srv.URL, Token: token})
	name, _ := d.Executor(ctx)
	claimed, err := d.Claim(ctx, gaas.ClaimRequest{Executor: name, Free: map[string]int{"A100": 1}, TTL: time.Minute})
	fmt.Println(name, len(claimed), err)
	_, err = d.Leases(ctx, "node2")
	fmt.Println(err)
	// Output:
	// node1 0 <nil>
	// remote: gaas: invalid input: executor: is "node2", but the token is "node1"'s
}
