package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/authn"
	"github.com/gaas-io/gaas/gaas"
	"github.com/gaas-io/gaas/store"
)

// admin runs gaasd with args against db, with input as its stdin, and
// returns its stdout and exit status.
func admin(t *testing.T, db, input string, args ...string) (string, int, error) {
	t.Helper()
	old := stdin
	stdin = strings.NewReader(input)
	defer func() { stdin = old }()
	var out bytes.Buffer
	err := run(context.Background(), append(args, "-db", db), func(string) string { return "" }, &out, &out)
	return out.String(), exitCode(err), err
}

// An operator makes accounts and changes balances from the command line:
// the ledger names the system "cli:OSUSER" as the actor, columns line up,
// -json parses, and refusals and usage errors exit 1 and 2.
func TestAdminCLI(t *testing.T) {
	for name, target := range databaseTargets {
		t.Run(name, func(t *testing.T) {
			db := target(t)
			out, code, err := admin(t, db, "s3cret-password\n", "user", "add", "alice", "-admin", "-password-stdin")
			require.NoError(t, err, out)
			assert.Equal(t, 0, code)
			assert.Regexp(t, `(?m)^ID +USERNAME +ROLE +BALANCE +DISABLED +CREATED\n1 +alice +admin +10 +false +`, out)
			_, _, err = admin(t, db, "another-password", "user", "add", "-password-stdin", "bob")
			require.NoError(t, err, "the flag before the name, and no newline at the end")

			out, code, err = admin(t, db, "", "user", "list", "-json")
			require.NoError(t, err)
			assert.Equal(t, 0, code)
			var users []userJSON
			require.NoError(t, json.Unmarshal([]byte(out), &users), out)
			require.Len(t, users, 2)
			assert.Equal(t, "bob", users[1].Username)
			assert.Equal(t, gaas.RoleUser, users[1].Role)

			out, _, err = admin(t, db, "", "quota", "grant", "BOB", "2.5", "-reason", "paper deadline")
			require.NoError(t, err, out)
			assert.Regexp(t, `(?m)^2 +bob +user +12.5 +false`, out)
			_, _, err = admin(t, db, "", "quota", "set", "bob", "-reason", "new term", "4")
			require.NoError(t, err)

			out, _, err = admin(t, db, "", "quota", "show", "bob", "-json", "-n", "2")
			require.NoError(t, err)
			var shown struct {
				User    userJSON    `json:"user"`
				Entries []entryJSON `json:"entries"`
			}
			require.NoError(t, json.Unmarshal([]byte(out), &shown), out)
			assert.Equal(t, "4", shown.User.Balance)
			require.Len(t, shown.Entries, 2, "the last two of three entries")
			cli := "cli:" + osUser()
			assert.Equal(t, entryJSON{ID: shown.Entries[0].ID, AllocationID: 2, Actor: cli, Kind: "grant", Delta: "2.5", Remaining: "12.5",
				Balance: "12.5", Reason: "paper deadline", CreatedAt: shown.Entries[0].CreatedAt}, shown.Entries[0], "bob's default allocation")
			assert.Equal(t, "set", shown.Entries[1].Kind)
			assert.Equal(t, "-8.5", shown.Entries[1].Delta)

			out, _, err = admin(t, db, "", "quota", "show", "bob")
			require.NoError(t, err)
			assert.Contains(t, out, "bob (user 2): balance 4 credits")
			assert.Regexp(t, `(?m)^ENTRY +WHEN +ALLOCATION +KIND +DELTA +REMAINING +BALANCE +ACTOR +JOB +REASON\n`, out)
			assert.Regexp(t, `(?m) +2 +set +-8.5 +4 +4 +`+cli+` +- +new term$`, out)

			// What the database holds, read apart from the CLI.
			s, err := store.Open(context.Background(), db, store.Options{})
			require.NoError(t, err)
			defer s.Close()
			page, err := s.As(gaas.System("test")).Ledger(context.Background(), gaas.LedgerRequest{UserID: 2})
			require.NoError(t, err)
			require.Len(t, page.Items, 3)
			assert.Equal(t, gaas.SystemRegistration, page.Items[0].ActorSystem)
			for _, e := range page.Items[1:] {
				assert.Equal(t, cli, e.ActorSystem)
				assert.Zero(t, e.ActorID)
			}
			u, hash, err := s.Accounts.Credentials(context.Background(), "alice")
			require.NoError(t, err)
			assert.True(t, u.IsAdmin())
			ok, _, err := authn.Hasher{}.Verify("s3cret-password", hash)
			require.NoError(t, err)
			assert.True(t, ok, "the password from stdin, without its newline")

			for _, tc := range []struct {
				args  []string
				input string
				code  int
				want  string
			}{
				{[]string{"user", "add", "ALICE", "-password-stdin"}, "s3cret-password\n", 1, "conflict"},
				{[]string{"user", "add", "carol", "-password-stdin"}, "short\n", 1, "password"},
				{[]string{"user", "add", "carol"}, "", 2, "give -password-stdin"},
				{[]string{"user", "show", "nobody"}, "", 1, `no user "nobody"`},
				{[]string{"quota", "grant", "nobody", "1", "-reason", "x"}, "", 1, "not found"},
				{[]string{"quota", "set", "bob", "-1", "-reason", "x"}, "", 2, "-1"},
				{[]string{"quota", "set", "bob", "2"}, "", 2, "-reason is required"},
				{[]string{"quota", "grant", "bob", "lots", "-reason", "x"}, "", 2, "CREDITS"},
				{[]string{"quota", "grant", "bob", "0", "-reason", "x"}, "", 1, "delta"},
				{[]string{"quota", "show"}, "", 2, "takes 1 arguments, not 0"},
				{[]string{"user", "remove", "bob"}, "", 2, `no subcommand "remove"`},
				{[]string{"user"}, "", 2, "there are add, list, show"},
			} {
				out, code, err := admin(t, db, tc.input, tc.args...)
				require.Error(t, err, "%v: %s", tc.args, out)
				assert.Equal(t, tc.code, code, "%v: %v", tc.args, err)
				assert.Contains(t, err.Error(), tc.want, tc.args)
			}
			out, _, _ = admin(t, db, "", "user", "list")
			assert.Equal(t, 3, strings.Count(out, "\n"), "nothing refused was written: %s", out)
		})
	}
}

// gaasd help user explains the subcommands and their exit status; a
// database that does not exist is not created but by the first user add.
func TestAdminCLIHelpAndMissingDatabase(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), []string{"help", "quota"}, func(string) string { return "" }, &out, &out)
	assert.Equal(t, 0, exitCode(err))
	assert.Contains(t, out.String(), "gaasd quota grant NAME CREDITS -reason TEXT")
	assert.Contains(t, out.String(), "Exit status: 0 done, 1 refused")

	db := filepath.Join(t.TempDir(), "none.db")
	_, code, err := admin(t, db, "", "user", "list")
	assert.Equal(t, 2, code)
	assert.ErrorContains(t, err, "no such file")
}

// An operator resets a password from stdin, disables and enables an
// account and changes its role; the last enabled admin stays one.
func TestAdminCLIAccountChanges(t *testing.T) {
	db := filepath.Join(t.TempDir(), "gaas.db")
	_, _, err := admin(t, db, "first-password\n", "user", "add", "root", "-admin", "-password-stdin")
	require.NoError(t, err)
	_, _, err = admin(t, db, "first-password\n", "user", "add", "bob", "-password-stdin")
	require.NoError(t, err)

	out, code, err := admin(t, db, "second-password\n", "user", "passwd", "bob", "-password-stdin")
	require.NoError(t, err, out)
	assert.Equal(t, 0, code)
	out, _, err = admin(t, db, "", "user", "disable", "bob", "-json")
	require.NoError(t, err)
	var u userJSON
	require.NoError(t, json.Unmarshal([]byte(out), &u), out)
	assert.True(t, u.Disabled)
	out, _, err = admin(t, db, "", "user", "role", "bob", "admin")
	require.NoError(t, err)
	assert.Regexp(t, `(?m)^2 +bob +admin +10 +true`, out)
	_, _, err = admin(t, db, "", "user", "enable", "bob")
	require.NoError(t, err)

	s, err := store.Open(context.Background(), db, store.Options{})
	require.NoError(t, err)
	defer s.Close()
	bob, hash, err := s.Accounts.Credentials(context.Background(), "bob")
	require.NoError(t, err)
	assert.True(t, bob.IsAdmin())
	assert.False(t, bob.Disabled)
	assert.Equal(t, int64(4), bob.TokenGeneration, "each change ended bob's tokens")
	ok, _, err := authn.Hasher{}.Verify("second-password", hash)
	require.NoError(t, err)
	assert.True(t, ok)

	_, _, err = admin(t, db, "", "user", "disable", "root")
	require.NoError(t, err, "bob is an enabled admin too")
	_, code, err = admin(t, db, "", "user", "role", "bob", "user")
	assert.Equal(t, 1, code, "bob is the last enabled admin: %v", err)
	_, code, err = admin(t, db, "", "user", "role", "bob", "root")
	assert.Equal(t, 2, code)
	assert.ErrorContains(t, err, `not "root"`)
	_, code, _ = admin(t, db, "", "user", "passwd", "nobody", "-password-stdin")
	assert.Equal(t, 1, code)
}

// jobs list shows everyone's jobs, newest first, or one user's, or those
// of one status, with the owner's name.
func TestAdminCLIJobsList(t *testing.T) {
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "gaas.db")
	for _, name := range []string{"alice", "bob"} {
		_, _, err := admin(t, db, "a-good-password\n", "user", "add", name, "-password-stdin")
		require.NoError(t, err)
	}
	s, err := store.Open(ctx, db, store.Options{})
	require.NoError(t, err)
	for i, owner := range []int64{1, 2, 2} {
		_, err := s.Jobs.Submit(ctx, owner, gaas.SubmitRequest{Command: fmt.Sprintf("train %d", i), GPUType: "A100", EstimatedHours: gaas.Hour})
		require.NoError(t, err)
	}
	_, err = s.Jobs.Cancel(ctx, 2, gaas.CancelRequest{JobID: 3})
	require.NoError(t, err)
	require.NoError(t, s.Close())

	out, code, err := admin(t, db, "", "jobs", "list")
	require.NoError(t, err)
	assert.Equal(t, 0, code)
	assert.Regexp(t, `^ID +USER +STATUS +GPU +GPUS +ESTIMATED +ACTUAL +RATE +COST +CREATED +COMMAND\n`+
		`3 +bob +CANCELLED +A100 +1 +1 +- +1 +1 +\S+ +"train 2"\n2 +bob +PENDING .*\n1 +alice +PENDING .*\n$`, out)

	out, _, err = admin(t, db, "", "jobs", "list", "-user", "bob", "-status", "PENDING", "-json")
	require.NoError(t, err)
	var jobs []jobJSON
	require.NoError(t, json.Unmarshal([]byte(out), &jobs), out)
	require.Len(t, jobs, 1)
	assert.Equal(t, jobJSON{ID: 2, User: "bob", UserID: 2, Status: "PENDING", GPUType: "A100", GPUCount: 1, EstimatedHours: "1",
		Rate: "1", Cost: "1", Command: "train 1", CreatedAt: jobs[0].CreatedAt}, jobs[0])

	out, _, err = admin(t, db, "", "jobs", "list", "-status", "COMPLETED", "-json")
	require.NoError(t, err)
	assert.Equal(t, "[]\n", out)
	_, code, err = admin(t, db, "", "jobs", "list", "-status", "done")
	assert.Equal(t, 2, code)
	assert.ErrorContains(t, err, "-status must be one of")
	_, code, _ = admin(t, db, "", "jobs", "list", "-user", "nobody")
	assert.Equal(t, 1, code)
}
