package store_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/gaas-io/gaas/gaas"
	"github.com/gaas-io/gaas/store"
)

func Example() {
	ctx := context.Background()
	db, err := store.Open(ctx, ":memory:", store.Options{DefaultQuota: 3 * gaas.Credit})
	if err != nil {
		panic(err)
	}
	defer db.Close()

	// Accounts are usually made through authn; the store takes the hash as given.
	admin, _ := db.Accounts.EnsureAdmin(ctx, "root", "$pbkdf2-sha256$...", false)
	alice, _ := db.Accounts.CreateUser(ctx, "alice", "$pbkdf2-sha256$...", gaas.RoleUser)

	var jobs gaas.JobService = db.Jobs
	job, err := jobs.Submit(ctx, alice.ID, gaas.SubmitRequest{Command: "python train.py", GPUType: "NVIDIA A100", EstimatedHours: 2500})
	fmt.Println(job.Status, err)

	_, err = jobs.Submit(ctx, alice.ID, gaas.SubmitRequest{Command: "python eval.py", GPUType: "NVIDIA A100", EstimatedHours: gaas.Hour})
	var short *gaas.QuotaError
	fmt.Println(errors.As(err, &short), short)

	job, _ = jobs.Transition(ctx, admin.ID, gaas.TransitionRequest{JobID: job.ID, To: gaas.StatusRejected})
	balance, _ := db.Quota.Balance(ctx, alice.ID, gaas.BalanceRequest{UserID: alice.ID})
	fmt.Println(job.Status, balance)
	// Output:
	// PENDING <nil>
	// true gaas: quota exceeded: asked for 1 credits, 0.5 left for GPU type NVIDIA A100
	// REJECTED 3
}
