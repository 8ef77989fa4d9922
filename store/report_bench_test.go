package store_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/gaas-io/gaas/gaas"
	"github.com/gaas-io/gaas/store"
	"github.com/gaas-io/gaas/store/storetest"
)

// BenchmarkUsage reads usage reports of a year of a busy site, on a SQLite
// file and on PostgreSQL when GAAS_TEST_POSTGRES names one. It writes that
// year first, so it runs only when GAAS_BENCH_USAGE gives the number of
// jobs (1000000 for the figures in BENCHMARKS.md):
//
//	GAAS_BENCH_USAGE=1000000 go test ./store -run '^$' -bench Usage -benchtime 10x
func BenchmarkUsage(b *testing.B) {
	jobs, _ := strconv.Atoi(os.Getenv("GAAS_BENCH_USAGE"))
	if jobs <= 0 || testing.Short() {
		b.Skip("GAAS_BENCH_USAGE=JOBS runs it")
	}
	ctx := context.Background()
	year := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	dsns := map[string]string{"sqlite": filepath.Join(b.TempDir(), "usage.db")}
	if os.Getenv(storetest.PostgresEnv) != "" {
		dsns["postgres"] = storetest.PostgresDSN(b)
	}
	for _, name := range []string{"sqlite", "postgres"} {
		dsn, ok := dsns[name]
		if !ok {
			continue
		}
		b.Run(name, func(b *testing.B) {
			db := benchOpen(b, dsn)
			start := time.Now()
			site := storetest.UsageSite{Users: 2000, Projects: 100, Jobs: jobs, From: year, To: year.AddDate(1, 0, 0), Seed: 1}
			if err := storetest.SeedUsage(ctx, db, site); err != nil {
				b.Fatal(err)
			}
			b.Logf("%d jobs written in %s", jobs, time.Since(start).Round(time.Second))
			admin, err := db.Accounts.EnsureAdmin(ctx, "root", "h", false)
			if err != nil {
				b.Fatal(err)
			}
			all := []gaas.ReportGroup{gaas.GroupByUser, gaas.GroupByProject, gaas.GroupByGPUType}
			cases := []struct {
				name string
				req  gaas.UsageRequest
			}{
				{"year by month", gaas.UsageRequest{From: year, To: year.AddDate(1, 0, 0), Period: gaas.BucketMonth}},
				{"year by month and gpu type", gaas.UsageRequest{From: year, To: year.AddDate(1, 0, 0), Period: gaas.BucketMonth, GroupBy: all[2:]}},
				{"quarter by month, user, project and gpu type", gaas.UsageRequest{From: year, To: year.AddDate(0, 3, 0), Period: gaas.BucketMonth, GroupBy: all}},
				{"year by week, cut mid-day", gaas.UsageRequest{From: year.Add(5 * time.Hour), To: year.AddDate(1, 0, 0).Add(-5 * time.Hour), Period: gaas.BucketWeek}},
				{"month by day", gaas.UsageRequest{From: year.AddDate(0, 5, 0), To: year.AddDate(0, 6, 0), Period: gaas.BucketDay}},
				{"month by day and gpu type", gaas.UsageRequest{From: year.AddDate(0, 5, 0), To: year.AddDate(0, 6, 0), Period: gaas.BucketDay, GroupBy: all[2:]}},
				{"a user's year by month", gaas.UsageRequest{From: year, To: year.AddDate(1, 0, 0), Period: gaas.BucketMonth, UserID: 7}},
			}
			// What the ledger alone says, which the rollup must say too.
			want := make([]gaas.UsageReport, len(cases))
			for _, mode := range []string{"ledger", "rollup"} {
				store.ReadUsageFromLedger(db, mode == "ledger")
				if mode == "rollup" {
					// The first report rolls up a month and reads the rest
					// from the ledger; the worker's task rolls up the
					// rest, a month a call; later reports read it.
					start := time.Now()
					if _, err := db.Reports.Usage(ctx, admin.ID, cases[0].req); err != nil {
						b.Fatal(err)
					}
					b.Logf("the first report, rolling up a month, took %s", time.Since(start).Round(time.Millisecond))
					start = time.Now()
					calls, slowest := 0, time.Duration(0)
					for {
						t := time.Now()
						n, err := db.Upkeep.RollUpUsage(ctx, store.RollUpBatch)
						if err != nil {
							b.Fatal(err)
						}
						slowest = max(slowest, time.Since(t))
						if n == 0 {
							break
						}
						calls++
					}
					b.Logf("RollUpUsage rolled up the rest of the year in %s, %d calls, the slowest %s",
						time.Since(start).Round(time.Millisecond), calls, slowest.Round(time.Millisecond))
				}
				// A year by month of everything of a million jobs is more
				// rows than a report may have: how soon it is refused.
				whole := gaas.UsageRequest{From: year, To: year.AddDate(1, 0, 0), Period: gaas.BucketMonth, GroupBy: all}
				start := time.Now()
				r, err := db.Reports.Usage(ctx, admin.ID, whole)
				switch {
				case errors.Is(err, gaas.ErrInvalid):
					b.Logf("%s: a year by month, user, project and gpu type refused in %s", mode, time.Since(start).Round(time.Millisecond))
				case err != nil:
					b.Fatal(err)
				default:
					b.Logf("%s: a year by month, user, project and gpu type: %d rows in %s", mode, len(r.Rows), time.Since(start).Round(time.Millisecond))
				}
				for i, c := range cases {
					var got gaas.UsageReport
					b.Run(mode+"/"+c.name, func(b *testing.B) { got = benchUsage(b, db, admin.ID, c.req) })
					if mode == "ledger" {
						want[i] = got
					} else if !reflect.DeepEqual(want[i], got) {
						b.Errorf("%s: the rollup's report differs from the ledger's", c.name)
					}
				}
			}
		})
	}
}

func benchUsage(b *testing.B, db *store.DB, caller int64, req gaas.UsageRequest) gaas.UsageReport {
	ctx := context.Background()
	var r gaas.UsageReport
	for b.Loop() {
		var err error
		if r, err = db.Reports.Usage(ctx, caller, req); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(r.Rows)), "rows")
	return r
}
