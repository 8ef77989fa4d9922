package portal_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/gaas"
)

// BenchmarkJobsPage500 is a page of 500 jobs, the most a page holds, as a
// browser asks for it: over HTTP, through the session check, the listing
// in the store and the template. BENCHMARKS.md has its numbers.
func BenchmarkJobsPage500(b *testing.B) {
	s := newSite(b)
	s.gpuType("A100", 1, 0)
	u := s.user("ada")
	s.grant(u.ID, 10_000)
	ctx := context.Background()
	for i := range gaas.MaxLimit {
		_, err := s.db.Jobs.Submit(ctx, u.ID, gaas.SubmitRequest{Command: "python train.py --epochs 90 --lr 0.1 --batch 512",
			GPUType: "A100", EstimatedHours: gaas.Hours(i%7+1) * gaas.Hour, GPUCount: 1 + i%4})
		require.NoError(b, err)
	}
	br := s.browser()
	br.signIn("ada", "ada password")
	require.Equal(b, http.StatusOK, br.status)
	br.get("/portal/jobs?limit=500")
	require.Equal(b, http.StatusOK, br.status)
	require.Len(b, jobIDs(br.page), gaas.MaxLimit)
	b.SetBytes(int64(len(br.page)))
	b.ResetTimer()
	for b.Loop() {
		br.get("/portal/jobs?limit=500")
	}
}
