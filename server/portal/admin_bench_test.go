package portal_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/gaas"
)

// BenchmarkQueuePage500 is the approval queue at its largest page: 500
// PENDING jobs of 50 users, each row with its box and buttons and its
// owner's name, as an admin's browser asks for it. BENCHMARKS.md has its
// numbers.
func BenchmarkQueuePage500(b *testing.B) {
	s := newSite(b)
	s.gpuType("A100", 1, 0)
	ctx := context.Background()
	users := make([]gaas.User, 50)
	for i := range users {
		users[i] = s.user(fmt.Sprintf("user%02d", i))
		s.grant(users[i].ID, 1_000)
	}
	for i := range gaas.MaxLimit {
		_, err := s.db.Jobs.Submit(ctx, users[i%len(users)].ID, gaas.SubmitRequest{Command: "python train.py --epochs 90 --lr 0.1 --batch 512",
			GPUType: "A100", EstimatedHours: gaas.Hours(i%7+1) * gaas.Hour, GPUCount: 1 + i%4})
		require.NoError(b, err)
	}
	br := s.admin()
	br.get("/portal/admin/queue?limit=500")
	require.Equal(b, http.StatusOK, br.status)
	require.Len(b, queueIDs(br.page), gaas.MaxLimit)
	b.SetBytes(int64(len(br.page)))
	b.ResetTimer()
	for b.Loop() {
		br.get("/portal/admin/queue?limit=500")
	}
}
