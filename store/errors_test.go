package store_test

import (
	"context"
	"database/sql"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"modernc.org/sqlite"

	"github.com/gaas-io/gaas/gaas"
	"github.com/gaas-io/gaas/store"
)

// TestErrorsWrapOnce drives each public method into its not-found,
// conflict, forbidden or unauthorized path, on every backend, and checks
// the error a caller gets: it is the sentinel; no driver's error is in its
// chain; and it is one sentence, which names its layer, its subject and
// its sentinel once each.
func TestErrorsWrapOnce(t *testing.T) {
	forEachStore(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		u, other := f.user(t, 10), f.user(t, 10)
		job := f.submit(t, u.ID, 1)
		const missing = 424242
		req := gaas.SubmitRequest{Command: "python train.py", GPUType: "NVIDIA A100", EstimatedHours: 1, IdempotencyKey: "k1"}
		_, err := db.Jobs.Submit(ctx, u.ID, req)
		require.NoError(t, err)
		page := gaas.Page{Limit: 10}

		cases := []struct {
			name string
			call func() error
			want error
			// message is the whole text, where the case pins it.
			message string
		}{
			{name: "move missing job", want: gaas.ErrNotFound, message: "store: move job 424242 to APPROVED: gaas: not found",
				call: func() error {
					_, err := db.Jobs.Transition(ctx, f.admin.ID, gaas.TransitionRequest{JobID: missing, To: gaas.StatusApproved})
					return err
				}},
			{name: "cancel missing job", want: gaas.ErrNotFound,
				call: func() error {
					_, err := db.Jobs.Cancel(ctx, f.admin.ID, gaas.CancelRequest{JobID: missing})
					return err
				}},
			{name: "get missing job", want: gaas.ErrNotFound, message: "store: get job 424242: gaas: not found",
				call: func() error { _, err := db.Jobs.Get(ctx, f.admin.ID, gaas.GetJobRequest{JobID: missing}); return err }},
			{name: "get another's job", want: gaas.ErrNotFound,
				call: func() error { _, err := db.Jobs.Get(ctx, other.ID, gaas.GetJobRequest{JobID: job.ID}); return err }},
			{name: "cancel another's job", want: gaas.ErrNotFound,
				call: func() error { _, err := db.Jobs.Cancel(ctx, other.ID, gaas.CancelRequest{JobID: job.ID}); return err }},
			{name: "get missing user", want: gaas.ErrNotFound,
				call: func() error {
					_, err := db.Users.User(ctx, f.admin.ID, gaas.GetUserRequest{UserID: missing})
					return err
				}},
			{name: "get another user", want: gaas.ErrNotFound,
				call: func() error { _, err := db.Users.User(ctx, u.ID, gaas.GetUserRequest{UserID: other.ID}); return err }},
			{name: "user by missing id", want: gaas.ErrNotFound,
				call: func() error { _, err := db.Accounts.UserByID(ctx, missing); return err }},
			{name: "credentials of no one", want: gaas.ErrNotFound,
				call: func() error { _, _, err := db.Accounts.Credentials(ctx, "nobody"); return err }},
			{name: "set role of missing user", want: gaas.ErrNotFound,
				call: func() error {
					_, err := db.Users.SetRole(ctx, f.admin.ID, gaas.SetRoleRequest{UserID: missing, Role: gaas.RoleAdmin})
					return err
				}},
			{name: "disable missing user", want: gaas.ErrNotFound,
				call: func() error {
					_, err := db.Users.SetDisabled(ctx, f.admin.ID, gaas.SetDisabledRequest{UserID: missing, Disabled: true})
					return err
				}},
			{name: "reset password of missing user", want: gaas.ErrNotFound,
				call: func() error { _, err := db.Accounts.ResetPasswordHash(ctx, f.admin.ID, missing, "h"); return err }},
			{name: "balance of missing user", want: gaas.ErrNotFound,
				call: func() error {
					_, err := db.Quota.Balance(ctx, f.admin.ID, gaas.BalanceRequest{UserID: missing})
					return err
				}},
			{name: "set quota of missing user", want: gaas.ErrNotFound, message: "store: set quota of user 424242: gaas: not found",
				call: func() error {
					_, err := db.Quota.Set(ctx, f.admin.ID, gaas.SetBalanceRequest{UserID: missing, Balance: 5, Reason: "r"})
					return err
				}},
			{name: "grant to missing user", want: gaas.ErrNotFound,
				call: func() error {
					_, err := db.Quota.Grant(ctx, f.admin.ID, gaas.GrantRequest{UserID: missing, Delta: 5, Reason: "r"})
					return err
				}},
			{name: "ledger of missing user", want: gaas.ErrNotFound,
				call: func() error {
					_, err := db.Quota.Ledger(ctx, f.admin.ID, gaas.LedgerRequest{UserID: missing, Page: page})
					return err
				}},

			{name: "create a taken username", want: gaas.ErrConflict, message: `store: create user "` + u.Username + `": gaas: conflict`,
				call: func() error { _, err := db.Accounts.CreateUser(ctx, u.Username, "h", gaas.RoleUser); return err }},
			{name: "create a taken username by admin", want: gaas.ErrConflict,
				call: func() error {
					_, err := db.Accounts.CreateUserBy(ctx, f.admin.ID, strings.ToUpper(u.Username), "h", gaas.RoleUser)
					return err
				}},
			{name: "ensure admin of a user", want: gaas.ErrConflict,
				call: func() error { _, err := db.Accounts.EnsureAdmin(ctx, u.Username, "h", false); return err }},
			{name: "demote the last admin", want: gaas.ErrConflict,
				call: func() error {
					_, err := db.Users.SetRole(ctx, f.admin.ID, gaas.SetRoleRequest{UserID: f.admin.ID, Role: gaas.RoleUser})
					return err
				}},
			{name: "disable the last admin", want: gaas.ErrConflict,
				call: func() error {
					_, err := db.Users.SetDisabled(ctx, f.admin.ID, gaas.SetDisabledRequest{UserID: f.admin.ID, Disabled: true})
					return err
				}},
			{name: "change a password changed meanwhile", want: gaas.ErrConflict,
				call: func() error { _, err := db.Accounts.ChangePasswordHash(ctx, u.ID, "not-the-hash", "h"); return err }},
			{name: "reuse an idempotency key", want: gaas.ErrConflict,
				call: func() error {
					r := req
					r.EstimatedHours = 2
					_, err := db.Jobs.Submit(ctx, u.ID, r)
					return err
				}},
			{name: "move a job out of turn", want: gaas.ErrInvalidTransition,
				call: func() error {
					_, err := db.Jobs.Transition(ctx, f.admin.ID, gaas.TransitionRequest{JobID: job.ID, To: gaas.StatusCompleted})
					return err
				}},
			{name: "submit beyond the balance", want: gaas.ErrQuotaExceeded,
				call: func() error {
					_, err := db.Jobs.Submit(ctx, other.ID, gaas.SubmitRequest{Command: "x", GPUType: "y", EstimatedHours: 11})
					return err
				}},

			{name: "move a job as a user", want: gaas.ErrForbidden,
				call: func() error {
					_, err := db.Jobs.Transition(ctx, u.ID, gaas.TransitionRequest{JobID: job.ID, To: gaas.StatusApproved})
					return err
				}},
			{name: "list another's jobs", want: gaas.ErrForbidden,
				call: func() error { _, err := db.Jobs.List(ctx, u.ID, gaas.JobFilter{UserID: other.ID}); return err }},
			{name: "list users as a user", want: gaas.ErrForbidden,
				call: func() error { _, err := db.Users.Users(ctx, u.ID, gaas.UserFilter{Page: page}); return err }},
			{name: "set a role as a user", want: gaas.ErrForbidden,
				call: func() error {
					_, err := db.Users.SetRole(ctx, u.ID, gaas.SetRoleRequest{UserID: other.ID, Role: gaas.RoleAdmin})
					return err
				}},
			{name: "create a user as a user", want: gaas.ErrForbidden,
				call: func() error {
					_, err := db.Accounts.CreateUserBy(ctx, u.ID, "newcomer", "h", gaas.RoleUser)
					return err
				}},
			{name: "reset a password as a user", want: gaas.ErrForbidden,
				call: func() error { _, err := db.Accounts.ResetPasswordHash(ctx, u.ID, other.ID, "h"); return err }},
			{name: "set quota as a user", want: gaas.ErrForbidden,
				call: func() error {
					_, err := db.Quota.Set(ctx, u.ID, gaas.SetBalanceRequest{UserID: other.ID, Balance: 5, Reason: "r"})
					return err
				}},

			{name: "submit as no one", want: gaas.ErrUnauthorized,
				message: "store: submit job for user 424242: the user does not exist: gaas: unauthorized",
				call: func() error {
					_, err := db.Jobs.Submit(ctx, missing, gaas.SubmitRequest{Command: "x", GPUType: "y", EstimatedHours: 1})
					return err
				}},
			{name: "submit with a key as no one", want: gaas.ErrUnauthorized,
				call: func() error { _, err := db.Jobs.Submit(ctx, missing, req); return err }},
			{name: "get a job as no one", want: gaas.ErrUnauthorized,
				call: func() error { _, err := db.Jobs.Get(ctx, missing, gaas.GetJobRequest{JobID: job.ID}); return err }},
			{name: "revoke the tokens of no one", want: gaas.ErrUnauthorized,
				call: func() error { return db.Accounts.RevokeTokens(ctx, missing) }},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				err := tc.call()
				require.ErrorIs(t, err, tc.want)
				assertNoDriverError(t, err)
				if tc.message != "" {
					assert.EqualError(t, err, tc.message)
				}
				assertOneSentence(t, err)
			})
		}
	})
}

// assertNoDriverError checks that nothing in err's chain is a driver's
// error, nor anything mapErr reads as one.
func assertNoDriverError(t *testing.T, err error) {
	t.Helper()
	assert.NotErrorIs(t, err, sql.ErrNoRows)
	var pg *pgconn.PgError
	assert.False(t, errors.As(err, &pg), "a *pgconn.PgError is reachable")
	var lite *sqlite.Error
	assert.False(t, errors.As(err, &lite), "a *sqlite.Error is reachable")
	var state interface{ SQLState() string }
	assert.False(t, errors.As(err, &state), "an error with a SQLSTATE is reachable")
	var coded interface{ Code() int }
	assert.False(t, errors.As(err, &coded), "an error with a SQLite code is reachable")
}

var subject = regexp.MustCompile(`\b(job|user|caller) \d+\b`)

// assertOneSentence checks that err names its layer (store:), its
// sentinel (gaas:) and each job and user once.
func assertOneSentence(t *testing.T, err error) {
	t.Helper()
	msg := err.Error()
	assert.Equal(t, 1, strings.Count(msg, "store: "), "the layer once: %s", msg)
	assert.Equal(t, 1, strings.Count(msg, "gaas: "), "the sentinel once: %s", msg)
	seen := map[string]bool{}
	for _, s := range subject.FindAllString(msg, -1) {
		assert.False(t, seen[s], "%s named twice: %s", s, msg)
		seen[s] = true
	}
}

// TestUnavailableKeepsOnlyTheCausesText holds a lock that the store's
// write waits on past its timeout (SQLite's busy timeout, PostgreSQL's
// statement timeout): the write is gaas.ErrUnavailable, its message says
// why for the operator, and the driver's error is not in its chain.
func TestUnavailableKeepsOnlyTheCausesText(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		if !b.shared {
			t.Skip("another connection cannot hold a lock on a private in-memory database")
		}
		ctx := context.Background()
		dsn := b.dsn(t)
		db := openStore(t, dsn, store.Options{BusyTimeout: 50 * time.Millisecond, StatementTimeout: 200 * time.Millisecond})
		f := newFixture(t, db)
		u := f.user(t, 10)

		conn, err := rawOpen(t, dsn).Conn(ctx)
		require.NoError(t, err)
		defer conn.Close()
		lock, cause := "BEGIN EXCLUSIVE", "database is locked"
		if store.IsPostgres(dsn) {
			lock, cause = "BEGIN; SELECT id FROM users FOR UPDATE", "canceling statement due to statement timeout"
		}
		_, err = conn.ExecContext(ctx, lock)
		require.NoError(t, err)
		defer conn.ExecContext(ctx, "ROLLBACK") //nolint:errcheck // the test is over

		_, err = db.Quota.Grant(ctx, f.admin.ID, gaas.GrantRequest{UserID: u.ID, Delta: 5, Reason: "r"})
		require.ErrorIs(t, err, gaas.ErrUnavailable)
		assert.ErrorContains(t, err, cause)
		assertNoDriverError(t, err)
		assertOneSentence(t, err)
	})
}
