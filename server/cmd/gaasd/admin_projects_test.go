package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/gaas"
	"github.com/gaas-io/gaas/store"
)

// projectShowJSON is what project show -json prints.
type projectShowJSON struct {
	Project     projectJSON      `json:"project"`
	Balance     string           `json:"balance"`
	Members     []memberJSON     `json:"members"`
	Allocations []allocationJSON `json:"allocations"`
}

// An operator builds a department with a cap and a lab under it, gives the
// lab an allocation, appoints a manager and two limited members, changes
// the lab and divides its credits with a sub-project; a member's job is
// charged to the lab and refused by their limit, and project show tells it
// all. Refusals exit 1, usage errors 2, and write nothing.
func TestProjectCLI(t *testing.T) {
	for name, target := range databaseTargets {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			db := target(t)
			for _, u := range []string{"ada", "ben", "cyd"} {
				_, _, err := admin(t, db, "a-good-password\n", "user", "add", u, "-password-stdin")
				require.NoError(t, err)
			}
			_, _, err := admin(t, db, "", "gpu-types", "apply", exampleCatalogue)
			require.NoError(t, err)

			out, code, err := admin(t, db, "", "project", "add", "-name", "physics", "-cap", "100", "-description", "Physics department")
			require.NoError(t, err, out)
			assert.Equal(t, 0, code)
			assert.Regexp(t, `^ID +NAME +PARENT +CAP +SPENT +MANAGERS_APPROVE +CREATED +DESCRIPTION\n`+
				`1 +physics +- +100 +0 +false +\S+ +"Physics department"\n$`, out)
			out, _, err = admin(t, db, "", "project", "add", "-name", "qlab", "-parent", "PHYSICS", "-managers-approve", "-json")
			require.NoError(t, err, out)
			var qlab projectJSON
			require.NoError(t, json.Unmarshal([]byte(out), &qlab), out)
			one := int64(1)
			assert.Equal(t, projectJSON{ID: 2, Name: "qlab", ParentID: &one, Parent: "physics", Spent: "0", ManagersApprove: true,
				CreatedAt: qlab.CreatedAt, UpdatedAt: qlab.CreatedAt}, qlab, "the parent by name in any letter case")

			out, _, err = admin(t, db, "", "project", "grant", "qlab", "-amount", "50", "-reason", "2027 allocation", "-json")
			require.NoError(t, err, out)
			var grant allocationJSON
			require.NoError(t, json.Unmarshal([]byte(out), &grant), out)
			assert.Equal(t, "50", grant.Remaining)
			assert.Equal(t, "cli:"+osUser(), grant.CreatedBy)
			out, _, err = admin(t, db, "", "project", "grant", "2", "-amount", "8", "-gpu-types", "a100", "-for", "720h")
			require.NoError(t, err, out)
			assert.Regexp(t, `\n\d+ +8 +8 +A100 +\S+ +\S+ +active +`, out, "the project by id; a scoped, timed grant")

			out, _, err = admin(t, db, "", "project", "member", "qlab", "-user", "ada", "-role", "manager")
			require.NoError(t, err, out)
			assert.Regexp(t, `^USER +ID +ROLE +LIMIT +SPENT +SCOPE +SINCE\nada +1 +manager +- +0 +all +\S+\n$`, out)
			_, _, err = admin(t, db, "", "project", "member", "qlab", "-user", "ben", "-role", "member", "-limit", "3")
			require.NoError(t, err)
			out, _, err = admin(t, db, "", "project", "member", "qlab", "-user", "3", "-role", "member", "-limit", "4", "-gpu-types", "a100,h100", "-json")
			require.NoError(t, err, out)
			var cyd memberJSON
			require.NoError(t, json.Unmarshal([]byte(out), &cyd), out)
			four := "4"
			assert.Equal(t, memberJSON{UserID: 3, User: "cyd", Role: "member", Limit: &four, GPUTypes: []string{"A100", "H100"}, Spent: "0",
				CreatedAt: cyd.CreatedAt}, cyd, "a user by id; the types as the catalogue spells them")

			// ben's job of 1 A100 for 1 hour at rate 2.5 is charged to the
			// lab; a second one would pass his limit of 3.
			s, err := store.Open(ctx, db, store.Options{})
			require.NoError(t, err)
			job := gaas.SubmitRequest{Command: "train", GPUType: "A100", GPUCount: 1, EstimatedHours: gaas.Hour, Project: "qlab"}
			_, err = s.Jobs.Submit(ctx, 2, job)
			require.NoError(t, err)
			_, err = s.Jobs.Submit(ctx, 2, job)
			var limit *gaas.LimitError
			require.True(t, errors.As(err, &limit), "%v", err)
			assert.Equal(t, gaas.LimitError{Bound: gaas.LimitMember, Project: "qlab", Asked: 2500, Remaining: 500}, *limit)
			require.NoError(t, s.Close())

			out, _, err = admin(t, db, "", "project", "show", "qlab")
			require.NoError(t, err, out)
			assert.Regexp(t, `^ID +NAME +PARENT +CAP +SPENT +MANAGERS_APPROVE +CREATED +DESCRIPTION\n`+
				`2 +qlab +physics +- +2.5 +true +\S+ +""\n\n`+
				`balance 55.5 credits; 3 members\n`+
				`USER +ID +ROLE +LIMIT +SPENT +SCOPE +SINCE\n`+
				`ada +1 +manager +- +0 +all +\S+\n`+
				`ben +2 +member +3 +2.5 +all +\S+\n`+
				`cyd +3 +member +4 +0 +A100,H100 +\S+\n\n`+
				`3 allocations\n`+
				`ID +AMOUNT +REMAINING +SCOPE .*\n`+
				`\d+ +0 +0 +all +\S+ +- +active \(default\) +\S+ +"default allocation"\n`+
				`\d+ +50 +50 +all +\S+ +- +active +\S+ +"2027 allocation"\n`+
				`\d+ +8 +5.5 +A100 +\S+ +\S+ +active +\S+ +""\n$`, out, "the job drew from the narrowest allocation")
			out, _, err = admin(t, db, "", "project", "list")
			require.NoError(t, err)
			assert.Regexp(t, `\n1 +physics +- +100 +2.5 +false .*\n2 +qlab +physics +- +2.5 +true .*\n$`, out, "the department spent what its lab did")

			out, _, err = admin(t, db, "", "project", "set", "qlab", "-cap", "40", "-description", "Quantum lab", "-managers-approve=false")
			require.NoError(t, err, out)
			assert.Regexp(t, `\n2 +qlab +physics +40 +2.5 +false +\S+ +"Quantum lab"\n$`, out)
			_, _, err = admin(t, db, "", "project", "set", "physics", "-no-cap")
			require.NoError(t, err)
			_, _, err = admin(t, db, "", "project", "member", "qlab", "-user", "cyd", "-remove")
			require.NoError(t, err)

			_, _, err = admin(t, db, "", "project", "add", "-name", "qlab-optics", "-parent", "qlab")
			require.NoError(t, err)
			out, _, err = admin(t, db, "", "project", "transfer", "qlab", "-to", "qlab-optics", "-amount", "20", "-reason", "optics share")
			require.NoError(t, err, out)
			assert.Regexp(t, `\n\d+ +20 +20 +all +\S+ +- +active +\S+ +"optics share"\n$`, out)

			out, _, err = admin(t, db, "", "project", "show", "QLAB", "-json")
			require.NoError(t, err, out)
			var shown projectShowJSON
			require.NoError(t, json.Unmarshal([]byte(out), &shown), out)
			assert.Equal(t, "Quantum lab", shown.Project.Description)
			require.NotNil(t, shown.Project.Cap)
			assert.Equal(t, "40", *shown.Project.Cap)
			assert.False(t, shown.Project.ManagersApprove)
			assert.Equal(t, "35.5", shown.Balance, "50 + 5.5 - the 20 given to optics")
			users := []string{}
			for _, m := range shown.Members {
				users = append(users, m.User)
			}
			assert.Equal(t, []string{"ada", "ben"}, users, "cyd was taken out")
			require.Len(t, shown.Allocations, 3)
			assert.Equal(t, "30", shown.Allocations[1].Remaining)
			out, _, err = admin(t, db, "", "project", "list", "-json")
			require.NoError(t, err)
			var listed []projectJSON
			require.NoError(t, json.Unmarshal([]byte(out), &listed), out)
			require.Len(t, listed, 3)
			assert.Nil(t, listed[0].Cap, "physics lost its cap")
			assert.Equal(t, "qlab", listed[2].Parent)

			before, _, err := admin(t, db, "", "project", "show", "qlab", "-json")
			require.NoError(t, err)
			adminFails(t, db, []struct {
				args []string
				code int
				want string
			}{
				{[]string{"project", "add", "-name", "QLab"}, 1, "conflict"},
				{[]string{"project", "add", "-name", "42"}, 1, "must not be all digits"},
				{[]string{"project", "add", "-name", "x", "-parent", "nope"}, 1, `project "nope"`},
				{[]string{"project", "add", "-name", "x", "-cap", "lots"}, 2, "-cap"},
				{[]string{"project", "add"}, 2, "-name is required"},
				{[]string{"project", "add", "x"}, 2, "takes 0 arguments, not 1"},
				{[]string{"project", "show", "nope"}, 1, "not found"},
				{[]string{"project", "show", "99"}, 1, "not found"},
				{[]string{"project", "show"}, 2, "takes 1 arguments, not 0"},
				{[]string{"project", "member", "nope", "-user", "ben", "-role", "member"}, 1, "not found"},
				{[]string{"project", "member", "qlab", "-user", "nobody", "-role", "member"}, 1, `no user "nobody"`},
				{[]string{"project", "member", "qlab", "-user", "ben", "-role", "boss"}, 2, "-role must be manager or member"},
				{[]string{"project", "member", "qlab", "-user", "ben"}, 2, "-role must be manager or member"},
				{[]string{"project", "member", "qlab", "-role", "member"}, 2, "-user is required"},
				{[]string{"project", "member", "qlab", "-user", "ben", "-remove", "-role", "member"}, 2, "-remove takes no"},
				{[]string{"project", "member", "qlab", "-user", "ben", "-role", "member", "-gpu-types", "B200"}, 1, `"B200" is not in the GPU catalogue`},
				{[]string{"project", "member", "qlab", "-user", "ben", "-role", "member", "-limit", "-1"}, 1, "limit"},
				{[]string{"project", "member", "qlab", "-user", "cyd", "-remove"}, 1, "not found"},
				{[]string{"project", "grant", "qlab"}, 2, "-amount is required"},
				{[]string{"project", "grant", "qlab", "-amount", "x"}, 2, "-amount"},
				{[]string{"project", "grant", "qlab", "-amount", "0"}, 1, "amount: must be greater than 0"},
				{[]string{"project", "grant", "qlab", "-amount", "1", "-for", "1h", "-expires", "2100-01-01T00:00:00Z"}, 2, "not both"},
				{[]string{"project", "grant", "nope", "-amount", "1"}, 1, "not found"},
				{[]string{"project", "set", "qlab"}, 2, "nothing to change"},
				{[]string{"project", "set", "qlab", "-cap", "1", "-no-cap"}, 2, "not both"},
				{[]string{"project", "set", "qlab", "-managers-approve=maybe"}, 2, "-managers-approve"},
				{[]string{"project", "set", "nope", "-no-cap"}, 1, "not found"},
				{[]string{"project", "transfer", "qlab", "-to", "physics", "-amount", "1"}, 1, "must be a sub-project of project qlab"},
				{[]string{"project", "transfer", "qlab", "-to", "qlab-optics", "-amount", "1000"}, 1, "quota exceeded"},
				{[]string{"project", "transfer", "qlab", "-to", "nope", "-amount", "1"}, 1, `project "nope"`},
				{[]string{"project", "transfer", "qlab", "-amount", "1"}, 2, "-to and -amount are required"},
				{[]string{"project", "transfer", "qlab", "-to", "qlab-optics", "-expires", "soon", "-amount", "1"}, 2, "RFC 3339"},
				{[]string{"project", "remove", "qlab"}, 2, `no subcommand "remove"; there are add, list, show, member, grant, set, transfer`},
			})
			after, _, err := admin(t, db, "", "project", "show", "qlab", "-json")
			require.NoError(t, err)
			assert.Equal(t, before, after, "nothing refused was written")

			var checked bytes.Buffer
			require.NoError(t, run(ctx, []string{"check", "-db", db}, func(string) string { return "" }, &checked, &bytes.Buffer{}), checked.String())
		})
	}
}

// gaasd help project shows its subcommands.
func TestProjectCLIHelp(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), []string{"help", "project"}, func(string) string { return "" }, &out, &out)
	assert.Equal(t, 0, exitCode(err))
	assert.Contains(t, out.String(), "gaasd project transfer PROJECT -to SUBPROJECT -amount CREDITS")
	assert.Contains(t, out.String(), "gaasd project member PROJECT -user NAME|ID -remove")
}
