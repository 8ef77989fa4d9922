package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/gaas"
	"github.com/gaas-io/gaas/store"
)

// An operator prints the usage report as sreport does: aligned columns
// with a total line, CSV, or JSON; filters name users and projects by
// name; bad flags exit 2 and unknown names 1.
func TestReportCLI(t *testing.T) {
	for name, target := range databaseTargets {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			db := target(t)
			for _, u := range []string{"ada", "bob"} {
				_, _, err := admin(t, db, "a-good-password\n", "user", "add", u, "-password-stdin")
				require.NoError(t, err)
			}
			_, _, err := admin(t, db, "a-good-password\n", "user", "add", "root", "-admin", "-password-stdin")
			require.NoError(t, err)
			_, _, err = admin(t, db, "", "gpu-types", "add", "-name", "A100", "-rate", "2")
			require.NoError(t, err)
			_, _, err = admin(t, db, "", "project", "add", "-name", "qlab")
			require.NoError(t, err)
			_, _, err = admin(t, db, "", "project", "grant", "qlab", "-amount", "100")
			require.NoError(t, err)
			_, _, err = admin(t, db, "", "project", "member", "qlab", "-user", "ada", "-role", "member")
			require.NoError(t, err)
			s, err := store.Open(ctx, db, store.Options{})
			require.NoError(t, err)
			// ada: 2 GPUs for 1.5 hours on qlab, completed after 1; bob: 1 hour, cancelled.
			j, err := s.Jobs.Submit(ctx, 1, gaas.SubmitRequest{Command: "train", GPUType: "A100", GPUCount: 2, EstimatedHours: 1500, Project: "qlab"})
			require.NoError(t, err)
			for _, to := range []gaas.JobStatus{gaas.StatusApproved, gaas.StatusRunning, gaas.StatusCompleted} {
				req := gaas.TransitionRequest{JobID: j.ID, To: to}
				if to == gaas.StatusCompleted {
					req.ActualHours = new(gaas.Hours)
					*req.ActualHours = gaas.Hour
				}
				_, err = s.Jobs.Transition(ctx, 3, req)
				require.NoError(t, err)
			}
			j, err = s.Jobs.Submit(ctx, 2, gaas.SubmitRequest{Command: "train", GPUType: "A100", EstimatedHours: gaas.Hour})
			require.NoError(t, err)
			_, err = s.Jobs.Cancel(ctx, 2, gaas.CancelRequest{JobID: j.ID})
			require.NoError(t, err)
			require.NoError(t, s.Close())
			today := time.Now().UTC().Format(time.DateOnly)

			out, code, err := admin(t, db, "", "report", "-group-by", "user,project", "-period", "day")
			require.NoError(t, err, out)
			assert.Equal(t, 0, code)
			assert.Regexp(t, `^Usage from \S+ to \S+\n`+
				`PERIOD_START +USER_ID +USERNAME +PROJECT_ID +PROJECT +GPU_HOURS +CHARGED +RETURNED +COMPLETED +FAILED +REJECTED +CANCELLED\n`+
				today+` +1 +ada +1 +qlab +2 +6 +2 +1 +0 +0 +0\n`+
				today+` +2 +bob +0 +0 +2 +2 +0 +0 +0 +1\n`+
				`total +2 +8 +4 +1 +0 +0 +1\n$`, out)

			out, _, err = admin(t, db, "", "report", "-format", "csv", "-project", "QLAB", "-from", today)
			require.NoError(t, err, out)
			records, err := csv.NewReader(strings.NewReader(out)).ReadAll()
			require.NoError(t, err, out)
			assert.Equal(t, [][]string{
				{"gpu_hours", "charged", "returned", "completed", "failed", "rejected", "cancelled"},
				{"2", "6", "2", "1", "0", "0", "0"},
			}, records)

			out, _, err = admin(t, db, "", "report", "-user", "bob", "-group-by", "gpu_type", "-json")
			require.NoError(t, err, out)
			var rows []map[string]string
			require.NoError(t, json.Unmarshal([]byte(out), &rows), out)
			assert.Equal(t, []map[string]string{{"gpu_type": "A100", "gpu_hours": "0", "charged": "2", "returned": "2",
				"completed": "0", "failed": "0", "rejected": "0", "cancelled": "1"}}, rows)

			// Before the jobs, nothing.
			out, _, err = admin(t, db, "", "report", "-from", "2020-01-01", "-to", "2020-02-01T00:00:00Z", "-period", "week")
			require.NoError(t, err, out)
			assert.Equal(t, "Usage from 2020-01-01T00:00:00Z to 2020-02-01T00:00:00Z\n"+
				"PERIOD_START  GPU_HOURS  CHARGED  RETURNED  COMPLETED  FAILED  REJECTED  CANCELLED\n"+
				"total         0          0        0         0          0       0         0\n", out)

			for _, bad := range []struct {
				args []string
				code int
			}{
				{[]string{"-period", "year"}, 1},
				{[]string{"-group-by", "host"}, 1},
				{[]string{"-from", "yesterday"}, 2},
				{[]string{"-format", "xml"}, 2},
				{[]string{"extra"}, 2},
				{[]string{"-user", "nobody"}, 1},
				{[]string{"-project", "nowhere"}, 1},
			} {
				out, code, err := admin(t, db, "", append([]string{"report"}, bad.args...)...)
				assert.Error(t, err, "%v: %s", bad.args, out)
				assert.Equal(t, bad.code, code, "%v: %v", bad.args, err)
			}
		})
	}
}
