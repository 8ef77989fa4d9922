package portal_test

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/gaas"
)

// ended takes job id through to COMPLETED after actual hours, as an admin.
func (s *site) ended(id int64, actual gaas.Hours) {
	s.t.Helper()
	ctx := context.Background()
	for _, to := range []gaas.JobStatus{gaas.StatusApproved, gaas.StatusRunning} {
		_, err := s.db.Jobs.Transition(ctx, s.root.ID, gaas.TransitionRequest{JobID: id, To: to})
		require.NoError(s.t, err)
	}
	_, err := s.db.Jobs.Transition(ctx, s.root.ID, gaas.TransitionRequest{JobID: id, To: gaas.StatusCompleted, ActualHours: &actual})
	require.NoError(s.t, err)
}

// The user's page charts their own GPU-hours of this week by GPU type,
// with the numbers in a table, from the Reports service.
func TestHomeUsageChart(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *site) {
		s.gpuType("A100", 2, 0)
		s.gpuType("T4", 1, 0)
		b, u := s.signedIn("ada")
		s.grant(u.ID, 100)
		other := s.user("bob")
		s.grant(other.ID, 100)

		b.get("/")
		assert.Contains(t, b.page, "No job ended in the last 12 weeks.")

		ctx := context.Background()
		big, err := s.db.Jobs.Submit(ctx, u.ID, gaas.SubmitRequest{Command: "a", GPUType: "A100", EstimatedHours: 4 * gaas.Hour, GPUCount: 2})
		require.NoError(t, err)
		s.ended(big.ID, 3*gaas.Hour) // 6 GPU-hours
		small := s.job(u.ID, "T4", 2)
		s.ended(small.ID, 1500) // 1.5 GPU-hours
		s.ended(s.job(other.ID, "T4", 7).ID, 7*gaas.Hour)
		s.job(u.ID, "T4", 1) // not ended: no usage yet

		b.get("/")
		require.Equal(t, http.StatusOK, b.status, b.page)
		assert.Regexp(t, `<svg [^>]*role="img" aria-labelledby="chart-gpu-hours-by-week-and-gpu-type-title chart-gpu-hours-by-week-and-gpu-type-desc">`, b.page)
		assert.Contains(t, b.page, `<title id="chart-gpu-hours-by-week-and-gpu-type-title">GPU-hours by week and GPU type</title>`)
		week := gaas.BucketWeek.Start(time.Now()).Format("2006-01-02")
		row := regexp.MustCompile(`<tr><th scope="row">` + week + `</th>(.*?)</tr>`).FindStringSubmatch(b.page)
		require.NotNil(t, row, "this week's row of the table")
		assert.Equal(t, `<td class="num">6</td><td class="num">1.5</td><td class="num">7.5</td>`, row[1], "A100, T4, total")
		assert.Equal(t, 12, strings.Count(b.page, `<tr><th scope="row">`), "a row for each of 12 weeks")
		assert.NotContains(t, b.page, ">7<", "nothing of another user's")
	})
}
