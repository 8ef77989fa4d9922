package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/gaas"
	"github.com/gaas-io/gaas/store"
)

// adminFails runs each case and checks its exit status and that its error
// says what it should.
func adminFails(t *testing.T, db string, cases []struct {
	args []string
	code int
	want string
}) {
	t.Helper()
	for _, tc := range cases {
		out, code, err := admin(t, db, "", tc.args...)
		require.Error(t, err, "%v: %s", tc.args, out)
		assert.Equal(t, tc.code, code, "%v: %v", tc.args, err)
		assert.Contains(t, err.Error(), tc.want, tc.args)
	}
}

// An operator keeps the GPU catalogue from the command line: add, list
// (retired types only when asked), set a field or two, retire and enable.
func TestGPUTypesCLI(t *testing.T) {
	for name, target := range databaseTargets {
		t.Run(name, func(t *testing.T) {
			db := target(t)
			_, _, err := admin(t, db, "a-good-password\n", "user", "add", "alice", "-password-stdin")
			require.NoError(t, err)

			out, code, err := admin(t, db, "", "gpu-types", "add", "-name", "A100", "-rate", "2.5", "-max-gpus-per-job", "8",
				"-description", "NVIDIA A100 80GB")
			require.NoError(t, err, out)
			assert.Equal(t, 0, code)
			assert.Regexp(t, `^NAME +RATE +MAX_GPUS +ENABLED +UPDATED +DESCRIPTION\nA100 +2.5 +8 +true +\S+ +"NVIDIA A100 80GB"\n$`, out)
			out, _, err = admin(t, db, "", "gpu-types", "add", "-name", "V100", "-rate", "0.5", "-retired", "-json")
			require.NoError(t, err, out)
			var v100 gpuTypeJSON
			require.NoError(t, json.Unmarshal([]byte(out), &v100), out)
			assert.Equal(t, gpuTypeJSON{Name: "V100", Rate: "0.5", CreatedAt: v100.CreatedAt, UpdatedAt: v100.CreatedAt}, v100)

			out, _, err = admin(t, db, "", "gpu-types", "list")
			require.NoError(t, err)
			assert.Regexp(t, `^NAME .*\nA100 +2.5 +8 +true .*\n$`, out, "retired types only with -retired")
			out, _, err = admin(t, db, "", "gpu-types", "list", "-retired")
			require.NoError(t, err)
			assert.Regexp(t, `\nV100 +0.5 +- +false +\S+ +""\n$`, out)

			out, _, err = admin(t, db, "", "gpu-types", "set", "a100", "-rate", "3", "-max-gpus-per-job", "0", "-json")
			require.NoError(t, err, out)
			var a100 gpuTypeJSON
			require.NoError(t, json.Unmarshal([]byte(out), &a100), out)
			assert.Equal(t, "A100", a100.Name, "named in any case, answered as the catalogue spells it")
			assert.Equal(t, "3", a100.Rate)
			assert.Zero(t, a100.MaxGPUsPerJob)
			assert.Equal(t, "NVIDIA A100 80GB", a100.Description, "what was not given is kept")
			_, _, err = admin(t, db, "", "gpu-types", "set", "A100", "-retire")
			require.NoError(t, err)
			_, _, err = admin(t, db, "", "gpu-types", "set", "V100", "-enable", "-description", "old but good")
			require.NoError(t, err)
			types := catalogueFields(catalogueOf(t, db))
			assert.False(t, types["A100"].Enabled)
			assert.True(t, types["V100"].Enabled)
			assert.Equal(t, "old but good", types["V100"].Description)

			adminFails(t, db, []struct {
				args []string
				code int
				want string
			}{
				{[]string{"gpu-types", "add", "-name", "a100", "-rate", "1"}, 1, "conflict"},
				{[]string{"gpu-types", "add", "-name", "X1", "-rate", "0"}, 1, "rate: must be greater than 0"},
				{[]string{"gpu-types", "add", "-name", "X1", "-rate", "1", "-max-gpus-per-job", "-2"}, 1, "max_gpus_per_job"},
				{[]string{"gpu-types", "add", "-name", "X/1", "-rate", "1"}, 1, "name: may hold only"},
				{[]string{"gpu-types", "add", "-name", "X1", "-rate", "lots"}, 2, `invalid value "lots" for flag -rate`},
				{[]string{"gpu-types", "add", "-name", "X1", "-rate", "1.0001"}, 2, "-rate"},
				{[]string{"gpu-types", "add", "-name", "X1"}, 2, "-name and -rate are required"},
				{[]string{"gpu-types", "add", "-rate", "1"}, 2, "-name and -rate are required"},
				{[]string{"gpu-types", "add", "X1"}, 2, "takes 0 arguments, not 1"},
				{[]string{"gpu-types", "set", "H100", "-rate", "1"}, 1, "not found"},
				{[]string{"gpu-types", "set", "A100"}, 2, "nothing to change"},
				{[]string{"gpu-types", "set", "A100", "-enable", "-retire"}, 2, "not both"},
				{[]string{"gpu-types", "set", "A100", "-max-gpus-per-job", "x"}, 2, "whole number"},
				{[]string{"gpu-types", "set", "A100", "-max-gpus-per-job", "70000"}, 1, "max_gpus_per_job"},
				{[]string{"gpu-types", "set", "-rate", "1"}, 2, "takes 1 arguments, not 0"},
				{[]string{"gpu-types", "remove", "A100"}, 2, `no subcommand "remove"; there are list, add, set, apply`},
			})
			assert.Equal(t, types, catalogueFields(catalogueOf(t, db)), "nothing refused was written")
		})
	}
}

// An operator gives a user allocations (scoped, timed, starting later),
// lists them, shortens and ends them; a job draws from the narrowest one
// at its type's rate, and jobs list shows its GPUs, rate and cost.
func TestAllocationsCLI(t *testing.T) {
	for name, target := range databaseTargets {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			db := target(t)
			for _, u := range []string{"alice", "bob"} {
				_, _, err := admin(t, db, "a-good-password\n", "user", "add", u, "-password-stdin")
				require.NoError(t, err)
			}
			_, _, err := admin(t, db, "", "gpu-types", "apply", exampleCatalogue)
			require.NoError(t, err)

			before := time.Now()
			out, code, err := admin(t, db, "", "allocations", "add", "-user", "ALICE", "-amount", "100", "-gpu-types", "a100, h100",
				"-for", "720h", "-reason", "grant 42", "-json")
			require.NoError(t, err, out)
			assert.Equal(t, 0, code)
			var scoped allocationJSON
			require.NoError(t, json.Unmarshal([]byte(out), &scoped), out)
			cli := "cli:" + osUser()
			assert.Equal(t, allocationJSON{ID: 3, Amount: "100", Remaining: "100", GPUTypes: []string{"A100", "H100"},
				StartsAt: scoped.StartsAt, ExpiresAt: scoped.ExpiresAt, State: "active", Reason: "grant 42", CreatedBy: cli,
				CreatedAt: scoped.CreatedAt}, scoped, "after the default allocations 1 and 2; the scope as the catalogue spells it")
			require.NotNil(t, scoped.ExpiresAt)
			assert.WithinDuration(t, before.Add(720*time.Hour), *scoped.ExpiresAt, time.Minute)

			out, _, err = admin(t, db, "", "allocations", "add", "-user", "1", "-amount", "5", "-starts", "2100-01-01T00:00:00Z",
				"-expires", "2100-02-01T00:00:00Z")
			require.NoError(t, err, out)
			assert.Regexp(t, `^ID +AMOUNT +REMAINING +SCOPE +STARTS +EXPIRES +STATE +CREATOR +REASON\n`+
				`4 +5 +5 +all +2100-01-01T00:00:00Z +2100-02-01T00:00:00Z +not started +`+cli+` +""\n$`, out, "a user by id")
			out, _, err = admin(t, db, "", "allocations", "add", "-user", "alice", "-amount", "7", "-json")
			require.NoError(t, err, out)
			var unscoped allocationJSON
			require.NoError(t, json.Unmarshal([]byte(out), &unscoped), out)
			assert.Nil(t, unscoped.GPUTypes)
			assert.Nil(t, unscoped.ExpiresAt)

			// A job of 2 A100s for 2 hours at rate 2.5 costs 10, drawn from
			// the scoped allocation.
			s, err := store.Open(ctx, db, store.Options{})
			require.NoError(t, err)
			_, err = s.Jobs.Submit(ctx, 1, gaas.SubmitRequest{Command: "train", GPUType: "a100", GPUCount: 2, EstimatedHours: 2 * gaas.Hour})
			require.NoError(t, err)
			require.NoError(t, s.Close())
			out, _, err = admin(t, db, "", "jobs", "list")
			require.NoError(t, err)
			assert.Regexp(t, `\n1 +alice +PENDING +A100 +2 +2 +- +2.5 +10 +\S+ +"train"\n$`, out)

			out, _, err = admin(t, db, "", "allocations", "list", "-user", "alice")
			require.NoError(t, err)
			assert.Regexp(t, `^ID +AMOUNT +REMAINING +SCOPE +STARTS +EXPIRES +STATE +CREATOR +REASON\n`+
				`1 +10 +10 +all +\S+ +- +active \(default\) +\S+ +"default allocation"\n`+
				`3 +100 +90 +A100,H100 +\S+ +\S+ +active +`+cli+` +"grant 42"\n`+
				`4 +5 +5 +all +2100-01-01T00:00:00Z +2100-02-01T00:00:00Z +not started +`+cli+` +""\n`+
				`5 +7 +7 +all +\S+ +- +active +`+cli+` +""\n$`, out)

			out, _, err = admin(t, db, "", "allocations", "end", "3", "-reason", "project over", "-json")
			require.NoError(t, err, out)
			var ended allocationJSON
			require.NoError(t, json.Unmarshal([]byte(out), &ended), out)
			assert.Equal(t, "0", ended.Remaining)
			assert.Equal(t, "ended", ended.State)
			out, _, err = admin(t, db, "", "allocations", "shorten", "4", "-expires", "2100-01-15T00:00:00Z")
			require.NoError(t, err, out)
			assert.Regexp(t, `\n4 +5 +5 +all +2100-01-01T00:00:00Z +2100-01-15T00:00:00Z +not started`, out)

			out, _, err = admin(t, db, "", "allocations", "list", "-user", "alice", "-json")
			require.NoError(t, err)
			var listed []allocationJSON
			require.NoError(t, json.Unmarshal([]byte(out), &listed), out)
			ids := []int64{}
			for _, a := range listed {
				ids = append(ids, a.ID)
			}
			assert.Equal(t, []int64{1, 4, 5}, ids, "the ended one only with -ended")
			assert.True(t, listed[0].Default)
			out, _, err = admin(t, db, "", "allocations", "list", "-user", "alice", "-ended")
			require.NoError(t, err)
			assert.Regexp(t, `\n3 +100 +0 +A100,H100 +\S+ +\S+ +ended +`, out)

			out, _, err = admin(t, db, "", "quota", "show", "alice", "-n", "1")
			require.NoError(t, err)
			assert.Regexp(t, `(?m)^\d+ +\S+ +3 +revoke +-90 +0 +\d+ +`+cli+` +- +project over$`, out, "ending it took back what remained")

			adminFails(t, db, []struct {
				args []string
				code int
				want string
			}{
				{[]string{"allocations", "add", "-user", "nobody", "-amount", "1"}, 1, `no user "nobody"`},
				{[]string{"allocations", "add", "-user", "99", "-amount", "1"}, 1, `no user named or numbered "99"`},
				{[]string{"allocations", "add", "-user", "alice", "-amount", "0"}, 1, "amount: must be greater than 0"},
				{[]string{"allocations", "add", "-user", "alice", "-amount", "1", "-gpu-types", "B200"}, 1, `"B200" is not in the GPU catalogue`},
				{[]string{"allocations", "add", "-user", "alice", "-amount", "1", "-expires", "2000-01-01T00:00:00Z"}, 1, "expires_at: must be in the future"},
				{[]string{"allocations", "add", "-user", "alice", "-amount", "lots"}, 2, "-amount"},
				{[]string{"allocations", "add", "-user", "alice"}, 2, "-user and -amount are required"},
				{[]string{"allocations", "add", "-amount", "1"}, 2, "-user and -amount are required"},
				{[]string{"allocations", "add", "-user", "alice", "-amount", "1", "-for", "1h", "-expires", "2100-01-01T00:00:00Z"}, 2, "not both"},
				{[]string{"allocations", "add", "-user", "alice", "-amount", "1", "-for", "-1h"}, 2, "positive duration"},
				{[]string{"allocations", "add", "-user", "alice", "-amount", "1", "-starts", "tomorrow"}, 2, "RFC 3339"},
				{[]string{"allocations", "list"}, 2, "-user is required"},
				{[]string{"allocations", "list", "-user", "nobody"}, 1, `no user "nobody"`},
				{[]string{"allocations", "end", "99"}, 1, "not found"},
				{[]string{"allocations", "end", "1"}, 1, "default allocation, which does not end"},
				{[]string{"allocations", "end", "3"}, 1, "ended at"},
				{[]string{"allocations", "end", "three"}, 2, `ID must be an allocation's number, not "three"`},
				{[]string{"allocations", "end"}, 2, "takes 1 arguments, not 0"},
				{[]string{"allocations", "shorten", "4"}, 2, "-expires is required"},
				{[]string{"allocations", "shorten", "4", "-expires", "2100-03-01T00:00:00Z"}, 1, "shortened, not lengthened"},
			})
			out, _, err = admin(t, db, "", "allocations", "list", "-user", "bob", "-json")
			require.NoError(t, err)
			assert.Equal(t, 1, strings.Count(out, `"id"`), "bob has his default allocation only: %s", out)

			var checked bytes.Buffer
			require.NoError(t, run(ctx, []string{"check", "-db", db}, func(string) string { return "" }, &checked, &bytes.Buffer{}))
			assert.Contains(t, checked.String(), "2 users, 1 jobs, 5 allocations")
		})
	}
}

// gaasd help gpu-types and help allocations show the subcommands.
func TestAccountingCLIHelp(t *testing.T) {
	for _, group := range []string{"gpu-types", "allocations"} {
		var out bytes.Buffer
		err := run(context.Background(), []string{"help", group}, func(string) string { return "" }, &out, &out)
		assert.Equal(t, 0, exitCode(err))
		assert.Contains(t, out.String(), "gaasd gpu-types apply FILE [-dry-run]")
		assert.Contains(t, out.String(), "gaasd allocations shorten ID -expires TIME")
		assert.Contains(t, out.String(), `{"name": "T4", "rate": 0.5}`)
	}
}
