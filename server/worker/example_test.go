package worker_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/gaas-io/gaas/server/worker"
	"github.com/gaas-io/gaas/store"
)

// A task runs under its lease: a second worker on the same database does
// not run it while the first holds the lease.
func Example() {
	ctx := context.Background()
	db, err := store.Open(ctx, ":memory:", store.Options{})
	if err != nil {
		panic(err)
	}
	defer db.Close()
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	task := worker.Task{Name: "expire-allocations", Run: func(ctx context.Context) error {
		n, err := db.Upkeep.ExpireEnded(ctx)
		fmt.Println("expired", n)
		return err
	}}
	a, err := worker.New(logger, db.Leases, worker.Config{Holder: "replica-a"}, task)
	if err != nil {
		panic(err)
	}
	b, err := worker.New(logger, db.Leases, worker.Config{Holder: "replica-b"}, task)
	if err != nil {
		panic(err)
	}
	ran, _ := a.Step(ctx, "expire-allocations")
	fmt.Println("a ran:", ran)
	ran, _ = b.Step(ctx, "expire-allocations")
	fmt.Println("b ran:", ran)
	// Output:
	// expired 0
	// a ran: true
	// b ran: false
}
