// Command embed shows gaas used as a library, with no HTTP in sight: it
// opens an in-memory store, registers an admin and a user, puts two GPU
// types with different rates in the catalogue, gives the user an
// allocation for one of them that expires, submits a multi-GPU job and a
// plain one, settles them, lets the allocation expire on a clock it
// controls, and prints the balances and the ledger that explains them.
// Then it makes a lab project with an allocation of its own, adds the user
// to it with a limit, charges a job to the lab and is refused by the limit.
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
	// A clock the example moves, to show expiry without waiting for it.
	now := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	db, err := store.Open(ctx, ":memory:", store.Options{DefaultQuota: 10 * gaas.Credit, Now: func() time.Time { return now }})
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
		auth        gaas.Authenticator = authenticator
		jobs        gaas.JobService    = db.Jobs
		quota       gaas.Quota         = db.Quota
		catalogue   gaas.Catalogue     = db.Catalogue
		allocations gaas.Allocations   = db.Allocations
		projects    gaas.Projects      = db.Projects
	)

	admin, err := authenticator.EnsureAdmin(ctx, "root", "an admin password")
	if err != nil {
		return err
	}
	alice, err := auth.Register(ctx, gaas.RegisterRequest{Username: "alice", Password: "correct horse battery staple"})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%s registered with %s credits\n", alice.Username, alice.Balance)

	// The catalogue: an H100 GPU-hour costs 2.5 credits, an A100 one 1.
	for _, t := range []gaas.CreateGPUTypeRequest{
		{Name: "A100", Description: "NVIDIA A100 80GB", Rate: gaas.RateOne, MaxGPUsPerJob: 8},
		{Name: "H100", Description: "NVIDIA H100 80GB", Rate: 5 * gaas.RateOne / 2, MaxGPUsPerJob: 8},
	} {
		if _, err := catalogue.CreateGPUType(ctx, admin.ID, t); err != nil {
			return err
		}
	}
	// 40 credits for H100 jobs only, for 30 days.
	end := now.AddDate(0, 0, 30)
	grant, err := allocations.CreateAllocation(ctx, admin.ID, gaas.CreateAllocationRequest{
		UserID: alice.ID, Amount: 40 * gaas.Credit, GPUTypes: []string{"H100"}, ExpiresAt: &end, Reason: "H100 grant for January",
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "allocation %d: %s credits for %v until %s\n", grant.ID, grant.Amount, grant.GPUTypes, grant.ExpiresAt.Format(time.DateOnly))

	tok, err := auth.Login(ctx, gaas.LoginRequest{Username: "alice", Password: "correct horse battery staple"})
	if err != nil {
		return err
	}
	caller, err := auth.Authenticate(ctx, tok.AccessToken) // what a server does per request
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%s logged in with %s credits\n", caller.Username, caller.Balance)

	// 4 hours on 2 H100s cost 4 × 2 × 2.5 = 20 credits, drawn from the
	// H100 allocation (the narrowest scope) before the default one.
	train, err := jobs.Submit(ctx, caller.ID, gaas.SubmitRequest{
		Command: "torchrun --nproc-per-node 2 train.py", GPUType: "h100", GPUCount: 2, EstimatedHours: 4 * gaas.Hour,
	})
	if err != nil {
		return err
	}
	printJob(out, train)
	eval, err := jobs.Submit(ctx, caller.ID, gaas.SubmitRequest{
		Command: "python eval.py", GPUType: "A100", EstimatedHours: 3 * gaas.Hour,
	})
	if err != nil {
		return err
	}
	printJob(out, eval)

	// The training run took 1.5 hours: it pays 1.5 × 2 × 2.5 = 7.5 credits,
	// and the rest goes back to the allocation it came from.
	for _, to := range []gaas.JobStatus{gaas.StatusApproved, gaas.StatusRunning} {
		if _, err := jobs.Transition(ctx, admin.ID, gaas.TransitionRequest{JobID: train.ID, To: to}); err != nil {
			return err
		}
	}
	took := 3 * gaas.Hour / 2
	if train, err = jobs.Transition(ctx, admin.ID, gaas.TransitionRequest{JobID: train.ID, To: gaas.StatusCompleted, ActualHours: &took}); err != nil {
		return err
	}
	fmt.Fprintf(out, "job %d %s after %s hours\n", train.ID, train.Status, *train.ActualHours)
	if err := printBalance(ctx, out, quota, alice); err != nil {
		return err
	}

	// A month later the H100 allocation has ended: its credits pay for
	// nothing, though no background work has run.
	now = end
	if err := printBalance(ctx, out, quota, alice); err != nil {
		return err
	}
	_, err = jobs.Submit(ctx, caller.ID, gaas.SubmitRequest{Command: "python train.py", GPUType: "H100", EstimatedHours: 4 * gaas.Hour})
	var short *gaas.QuotaError
	if !errors.As(err, &short) {
		return fmt.Errorf("a job the expired allocation would have paid for: %v", err)
	}
	fmt.Fprintf(out, "refused: it costs %s credits, %s left for %s\n", short.Asked, short.Remaining, short.GPUType)

	ledger, err := quota.Ledger(ctx, alice.ID, gaas.LedgerRequest{UserID: alice.ID})
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "ledger (allocation, kind, delta -> the allocation's remaining, the balance):")
	for _, e := range ledger.Items {
		fmt.Fprintf(out, "  %d %-6s %6s -> %5s %5s  %s\n", e.AllocationID, e.Kind, e.Delta, e.Remaining, e.Balance, e.Reason)
	}
	return shareLab(ctx, out, admin.ID, caller, projects, allocations, jobs, quota)
}

// shareLab makes a lab project with an allocation of 100 credits, adds
// the user as a member who may spend 5 of them, and charges their jobs to
// the lab until the limit refuses one.
func shareLab(ctx context.Context, out io.Writer, admin int64, u gaas.User, projects gaas.Projects,
	allocations gaas.Allocations, jobs gaas.JobService, quota gaas.Quota) error {
	lab, err := projects.CreateProject(ctx, admin, gaas.CreateProjectRequest{Name: "qlab", Description: "Quantum lab"})
	if err != nil {
		return err
	}
	if _, err := allocations.CreateAllocation(ctx, admin, gaas.CreateAllocationRequest{
		ProjectID: lab.ID, Amount: 100 * gaas.Credit, Reason: "lab grant",
	}); err != nil {
		return err
	}
	limit := 5 * gaas.Credit
	if _, err := projects.SetMember(ctx, admin, gaas.SetMemberRequest{
		ProjectID: lab.ID, UserID: u.ID, Role: gaas.ProjectMember, Limit: &limit,
	}); err != nil {
		return err
	}
	// 3 hours on an A100 cost 3 credits, charged to the lab, not to alice.
	job := gaas.SubmitRequest{Command: "python sweep.py", GPUType: "A100", EstimatedHours: 3 * gaas.Hour, Project: "qlab"}
	sweep, err := jobs.Submit(ctx, u.ID, job)
	if err != nil {
		return err
	}
	printJob(out, sweep)
	if err := printBalance(ctx, out, quota, u); err != nil {
		return err
	}
	mine, err := projects.Memberships(ctx, u.ID, gaas.MembershipsRequest{})
	if err != nil {
		return err
	}
	for _, m := range mine.Items {
		fmt.Fprintf(out, "%s in project %s: the project holds %s credits, %s spent, %s left under the limit\n",
			u.Username, m.Project.Name, m.Balance, m.Member.Spent, *m.LimitLeft)
	}
	// A second one would pass alice's limit, though the lab has credits.
	_, err = jobs.Submit(ctx, u.ID, job)
	var limited *gaas.LimitError
	if !errors.As(err, &limited) {
		return fmt.Errorf("a job past the member limit: %v", err)
	}
	fmt.Fprintf(out, "refused by the %s of project %s: it costs %s credits, %s left\n",
		limited.Bound, limited.Project, limited.Asked, limited.Remaining)
	return nil
}

func printJob(out io.Writer, j gaas.Job) {
	fmt.Fprintf(out, "job %d submitted: %s hours on %d %s at %s = %s credits, drawn %v\n",
		j.ID, j.EstimatedHours, j.GPUCount, j.GPUType, j.Rate, j.Cost, j.Draws)
}

func printBalance(ctx context.Context, out io.Writer, quota gaas.Quota, u gaas.User) error {
	balance, err := quota.Balance(ctx, u.ID, gaas.BalanceRequest{UserID: u.ID})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "balance of %s: %s credits\n", u.Username, balance)
	return nil
}
