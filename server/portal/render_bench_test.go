package portal

import (
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gaas-io/gaas/gaas"
)

// BenchmarkRenderJobs500 is the template's share of a page of 500 jobs:
// the rows and the layout, without the store (see BenchmarkJobsPage500
// for the whole request).
func BenchmarkRenderJobs500(b *testing.B) {
	p := &site{logger: slog.New(slog.NewTextHandler(io.Discard, nil)), pages: parsePages()}
	jobs := make([]gaas.Job, gaas.MaxLimit)
	for i := range jobs {
		jobs[i] = gaas.Job{ID: int64(1000 - i), Command: "python train.py --epochs 90 --lr 0.1 --batch 512", GPUType: "A100",
			GPUCount: 1 + i%4, EstimatedHours: gaas.Hours(i%7+1) * gaas.Hour, Cost: gaas.Credits(i%7+1) * gaas.Credit,
			Status: gaas.Statuses()[i%7], CreatedAt: time.Now()}
	}
	r := httptest.NewRequest("GET", "/portal/jobs?limit=500", nil)
	data := jobsPage{Statuses: gaas.Statuses(), GPUTypes: []string{"A100", "H100", "T4"}, Back: r.URL.RequestURI()}
	b.ReportAllocs()
	for b.Loop() {
		data.Jobs = jobRows(jobs)
		p.render(httptest.NewRecorder(), r, 200, "jobs", "Your jobs", data)
	}
}
