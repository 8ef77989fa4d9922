// Command embed shows gaas used as a library, with no HTTP in sight: it
// opens an in-memory store, registers an admin and a user, submits jobs
// until the user's quota runs out, rejects one job, and prints the balances
// and the ledger that explains them.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/gaas-io/gaas/authn"
	"github.com/gaas-io/gaas/gaas"
	"github.com/gaas-io/gaas/store"
)

func main() {
	if err := run(context.Background(), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "embed:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, out io.Writer) error {
	db, err := store.Open(ctx, ":memory:", store.Options{DefaultQuota: 10 * gaas.Hour})
	if err != nil {
		return err
	}
	defer db.Close()

	key, err := db.SigningKey(ctx) // generated once, kept in the database
	if err != nil {
		return err
	}
	tokens, err := authn.NewTokens(key, 30*time.Minute, nil)
	if err != nil {
		return err
	}
	authenticator := authn.NewAuthenticator(db.Accounts, authn.Hasher{}, tokens)
	var (
		auth  gaas.Authenticator = authenticator
		jobs  gaas.JobService    = db.Jobs
		quota gaas.Quota         = db.Quota
	)

	admin, err := authenticator.EnsureAdmin(ctx, "root", "an admin password")
	if err != nil {
		return err
	}
	alice, err := auth.Register(ctx, gaas.RegisterRequest{Username: "alice", Password: "correct horse battery staple"})
	if err != nil {
		return err
	}
	tok, err := auth.Login(ctx, gaas.LoginRequest{Username: "alice", Password: "correct horse battery staple"})
	if err != nil {
		return err
	}
	caller, err := auth.Authenticate(ctx, tok.AccessToken) // what a server does per request
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%s logged in with %s hours\n", caller.Username, caller.Balance)

	var submitted []gaas.Job
	for i := 1; ; i++ {
		job, err := jobs.Submit(ctx, caller.ID, gaas.SubmitRequest{
			Command: fmt.Sprintf("python train.py --shard %d", i), GPUType: "NVIDIA A100", EstimatedHours: 3 * gaas.Hour,
		})
		var short *gaas.QuotaError
		if errors.As(err, &short) {
			fmt.Fprintf(out, "job %d refused: asked for %s hours, %s left\n", i, short.Asked, short.Remaining)
			break
		}
		if err != nil {
			return err
		}
		submitted = append(submitted, job)
		fmt.Fprintf(out, "job %d submitted: %s hours, %s\n", job.ID, job.EstimatedHours, job.Status)
	}

	rejected, err := jobs.Transition(ctx, admin.ID, gaas.TransitionRequest{JobID: submitted[0].ID, To: gaas.StatusRejected})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "job %d %s by %s\n", rejected.ID, rejected.Status, admin.Username)

	balance, err := quota.Balance(ctx, alice.ID, gaas.BalanceRequest{UserID: alice.ID})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "balance of %s: %s hours\n", alice.Username, balance)
	ledger, err := quota.Ledger(ctx, alice.ID, gaas.LedgerRequest{UserID: alice.ID})
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "ledger:")
	for _, e := range ledger.Items {
		fmt.Fprintf(out, "  %-6s %6s -> %5s  %s\n", e.Kind, e.Delta, e.Balance, e.Reason)
	}
	return nil
}
