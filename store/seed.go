package store

import (
	"context"
	"fmt"
	"strings"

	"github.com/uptrace/bun"

	"github.com/gaas-io/gaas/gaas"
	"github.com/gaas-io/gaas/internal/loadseed"
)

func init() {
	loadseed.Hook = func(ctx context.Context, db any, users, jobs int) error {
		d, ok := db.(*DB)
		if !ok {
			return fmt.Errorf("store: seed: %T is not a *store.DB", db)
		}
		return d.seedForLoad(ctx, users, jobs)
	}
}

// seedForLoad is loadseed.Seed: it fills the store quickly with users and
// jobs for load and scale tests, out of the library's API.
func (db *DB) seedForLoad(ctx context.Context, users, jobs int) error {
	const chunk = 2000
	now := db.timestamp()
	var firstUser int64
	if err := db.w.NewRaw("SELECT COALESCE(max(id), 0) + 1 FROM users").Scan(ctx, &firstUser); err != nil {
		return fmt.Errorf("store: seed: %w", err)
	}
	balance := int64(1000 * gaas.Hour)
	perUser := make([]int64, users) // hours charged to each user
	jobsFor := func(u int) int {    // how many jobs user u gets
		n := jobs / users
		if u < jobs%users {
			n++
		}
		return n
	}
	est := int64(100) // 0.1 hours each
	for start := 0; start < users; start += chunk {
		end := min(start+chunk, users)
		err := db.tx(ctx, func(tx bun.Tx) error {
			var u, l []any
			for i := start; i < end; i++ {
				id := firstUser + int64(i)
				perUser[i] = int64(jobsFor(i)) * est
				u = append(u, id, fmt.Sprintf("seed-%d", id), "!", "user", balance-perUser[i], now)
				l = append(l, id, nil, id, "grant", balance, balance, "seed", now)
			}
			if err := insertRows(ctx, tx, "users (id, username, password_hash, role, balance, created_at)", 6, u); err != nil {
				return err
			}
			return insertRows(ctx, tx, "ledger (user_id, job_id, actor_id, kind, delta, balance, reason, created_at)", 8, l)
		})
		if err != nil {
			return fmt.Errorf("store: seed users: %w", err)
		}
	}
	var firstJob int64
	if err := db.w.NewRaw("SELECT COALESCE(max(id), 0) + 1 FROM jobs").Scan(ctx, &firstJob); err != nil {
		return fmt.Errorf("store: seed: %w", err)
	}
	// Jobs stay PENDING, APPROVED or RUNNING, or COMPLETED without actual
	// hours: statuses whose charge stands whole, so no refunds are needed.
	statuses := []string{"PENDING", "APPROVED", "RUNNING", "COMPLETED"}
	charged := make([]int64, users)
	for start := 0; start < jobs; start += chunk {
		end := min(start+chunk, jobs)
		err := db.tx(ctx, func(tx bun.Tx) error {
			var j, l []any
			for i := start; i < end; i++ {
				id := firstJob + int64(i)
				u := i % users
				uid := firstUser + int64(u)
				charged[u] += est
				j = append(j, id, uid, fmt.Sprintf("python train.py --seed %d", i), "NVIDIA A100", est, statuses[i%len(statuses)], now, now)
				l = append(l, uid, id, uid, "charge", -est, balance-charged[u], fmt.Sprintf("job %d submitted", id), now)
			}
			if err := insertRows(ctx, tx, "jobs (id, user_id, command, gpu_type, estimated, status, created_at, updated_at)", 8, j); err != nil {
				return err
			}
			return insertRows(ctx, tx, "ledger (user_id, job_id, actor_id, kind, delta, balance, reason, created_at)", 8, l)
		})
		if err != nil {
			return fmt.Errorf("store: seed jobs: %w", err)
		}
	}
	if db.postgres {
		for _, table := range []string{"users", "jobs"} {
			if _, err := db.w.ExecContext(ctx, fmt.Sprintf(
				"SELECT setval(pg_get_serial_sequence('%[1]s', 'id'), (SELECT COALESCE(max(id), 0) + 1 FROM %[1]s), false)", table)); err != nil {
				return fmt.Errorf("store: seed: %w", err)
			}
		}
	}
	return nil
}

// insertRows inserts rows of cols values each, given one row after the
// other in args, into table (with its column list) with multi-row INSERTs
// of at most 64 rows: the SQLite driver looks up each parameter's argument
// by a search through all of them (modernc.org/sqlite v1.46, as used), so
// the cost of a statement grows with the square of its parameters:
// 2,000 rows at once seeded 4 to 7 times slower.
func insertRows(ctx context.Context, tx bun.Tx, table string, cols int, args []any) error {
	const perStatement = 64
	row := "(?" + strings.Repeat(", ?", cols-1) + ")"
	for len(args) > 0 {
		n := min(len(args)/cols, perStatement)
		if _, err := exec(ctx, tx, "INSERT INTO "+table+" VALUES "+row+strings.Repeat(", "+row, n-1), args[:n*cols]...); err != nil {
			return err
		}
		args = args[n*cols:]
	}
	return nil
}
