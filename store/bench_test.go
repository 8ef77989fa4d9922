package store_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gaas-io/gaas/gaas"
	"github.com/gaas-io/gaas/store"
	"github.com/gaas-io/gaas/store/storetest"
)

// benchStore opens a SQLite file in WAL mode, as gaasd runs it, with users
// who have all the hours they will spend.
func benchStore(b *testing.B, users int) (*store.DB, []int64) {
	return benchStoreAt(b, filepath.Join(b.TempDir(), "bench.db"), users)
}

func benchOpen(b *testing.B, dsn string) *store.DB {
	b.Helper()
	db, err := store.Open(context.Background(), dsn, store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	return db
}

// benchStoreAt opens the store at dsn, with users who have all the hours
// they will spend.
func benchStoreAt(b *testing.B, dsn string, users int) (*store.DB, []int64) {
	b.Helper()
	ctx := context.Background()
	db := benchOpen(b, dsn)
	// GAAS_BENCH_SEED=100000,1000000 runs the benchmarks on a store that
	// already holds that many users and jobs.
	if seed := os.Getenv("GAAS_BENCH_SEED"); seed != "" {
		var users, jobs int
		if _, err := fmt.Sscanf(seed, "%d,%d", &users, &jobs); err != nil {
			b.Fatalf("GAAS_BENCH_SEED=%q: want USERS,JOBS", seed)
		}
		if err := storetest.SeedForLoad(ctx, db, users, jobs); err != nil {
			b.Fatal(err)
		}
	}
	admin, err := db.Accounts.EnsureAdmin(ctx, "root", "h", false)
	if err != nil {
		b.Fatal(err)
	}
	ids := make([]int64, users)
	for i := range ids {
		u, err := db.Accounts.CreateUser(ctx, fmt.Sprintf("bench%d", i), "h", gaas.RoleUser)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := db.Quota.Set(ctx, admin.ID, gaas.SetBalanceRequest{UserID: u.ID, Balance: gaas.MaxCredits, Reason: "bench"}); err != nil {
			b.Fatal(err)
		}
		ids[i] = u.ID
	}
	return db, ids
}

var benchRequest = gaas.SubmitRequest{Command: "python train.py --epochs 10", GPUType: "NVIDIA A100", EstimatedHours: 1}

func BenchmarkSubmit(b *testing.B) {
	ctx := context.Background()
	b.Run("serial", func(b *testing.B) {
		db, ids := benchStore(b, 1)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := db.Jobs.Submit(ctx, ids[0], benchRequest); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "submits/s")
	})
	b.Run("parallel", func(b *testing.B) {
		db, ids := benchStore(b, 32)
		submitParallel(b, []*store.DB{db}, ids)
	})
	b.Run("idempotent_retry", func(b *testing.B) {
		db, ids := benchStore(b, 1)
		req := benchRequest
		req.IdempotencyKey = "retry"
		if _, err := db.Jobs.Submit(ctx, ids[0], req); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := db.Jobs.Submit(ctx, ids[0], req); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkSubmitPostgres is Submit/parallel on PostgreSQL (the server
// GAAS_TEST_POSTGRES names), through one store or through two on the same
// database, as two replicas of gaasd would be, the goroutines spread over
// them.
func BenchmarkSubmitPostgres(b *testing.B) {
	for _, replicas := range []int{1, 2} {
		b.Run(fmt.Sprintf("replicas=%d", replicas), func(b *testing.B) {
			dsn := storetest.PostgresDSN(b)
			db, ids := benchStoreAt(b, dsn, 32)
			dbs := []*store.DB{db}
			for len(dbs) < replicas {
				dbs = append(dbs, benchOpen(b, dsn))
			}
			submitParallel(b, dbs, ids)
		})
	}
}

// benchClients is how many goroutines a parallel benchmark runs, whatever
// the number of cores, so that its figures compare across machines.
const benchClients = 32

// inParallel runs b.N calls of op from benchClients goroutines; goroutine g
// passes g to op.
func inParallel(b *testing.B, op func(g int) error) {
	var done atomic.Int64
	var wg sync.WaitGroup
	b.ReportAllocs()
	b.ResetTimer()
	for g := range benchClients {
		wg.Go(func() {
			for done.Add(1) <= int64(b.N) {
				if err := op(g); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// submitParallel submits jobs from benchClients goroutines, each for one of
// the users ids and through one of the stores dbs, and reports submissions/s.
func submitParallel(b *testing.B, dbs []*store.DB, ids []int64) {
	ctx := context.Background()
	inParallel(b, func(g int) error {
		_, err := dbs[g%len(dbs)].Jobs.Submit(ctx, ids[g%len(ids)], benchRequest)
		return err
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "submits/s")
}

func BenchmarkGetJob(b *testing.B) {
	ctx := context.Background()
	db, ids := benchStore(b, 1)
	j, err := db.Jobs.Submit(ctx, ids[0], benchRequest)
	if err != nil {
		b.Fatal(err)
	}
	inParallel(b, func(int) error {
		_, err := db.Jobs.Get(ctx, ids[0], gaas.GetJobRequest{JobID: j.ID})
		return err
	})
}
