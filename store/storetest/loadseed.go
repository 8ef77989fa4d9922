package storetest

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gaas-io/gaas/gaas"
	"github.com/gaas-io/gaas/store"
)

// SeedForLoad fills db with users accounts "seed-N" (who cannot log in)
// with a large balance, and jobs spread over them and over the statuses
// whose charge stands whole, each with its charge, so that the ledger
// invariants hold. It is for load and scale tests (gaas-load -seed-db, the
// store's benchmarks with GAAS_BENCH_SEED), not part of the library: it
// writes rows straight into the store's tables, in multi-row INSERTs, a
// transaction for every 2,000 rows, with nothing else using db meanwhile.
func SeedForLoad(ctx context.Context, db *store.DB, users, jobs int) error {
	if users <= 0 || jobs < 0 {
		return fmt.Errorf("storetest: seed: %d users and %d jobs: want users > 0 and jobs ≥ 0", users, jobs)
	}
	s := seeder{ctx: ctx}
	pools := db.Pools()
	if s.w, s.postgres = pools["postgres"], true; s.w == nil {
		s.w, s.postgres = pools["writer"], false
	}
	const chunk = 2000
	now := time.Now().UTC().Truncate(time.Microsecond)
	firstUser, err := s.nextID("users")
	if err != nil {
		return err
	}
	balance := int64(1000 * gaas.Hour)
	const est = int64(100) // 0.1 hours a job
	jobsFor := func(u int) int64 {
		n := jobs / users
		if u < jobs%users {
			n++
		}
		return int64(n)
	}
	for start := 0; start < users; start += chunk {
		var u, l []any
		for i := start; i < min(start+chunk, users); i++ {
			id := firstUser + int64(i)
			u = append(u, id, fmt.Sprintf("seed-%d", id), "!", "user", balance-jobsFor(i)*est, now)
			l = append(l, id, nil, id, "grant", balance, balance, "seed", now)
		}
		if err := s.inTx(func(tx *sql.Tx) error {
			if err := s.insert(tx, "users (id, username, password_hash, role, balance, created_at)", 6, u); err != nil {
				return err
			}
			return s.insert(tx, ledgerColumns, 8, l)
		}); err != nil {
			return fmt.Errorf("storetest: seed users: %w", err)
		}
	}
	firstJob, err := s.nextID("jobs")
	if err != nil {
		return err
	}
	// Jobs stay PENDING, APPROVED or RUNNING, or COMPLETED without actual
	// hours: statuses whose charge stands whole, so no refunds are needed.
	statuses := []string{"PENDING", "APPROVED", "RUNNING", "COMPLETED"}
	charged := make([]int64, users)
	for start := 0; start < jobs; start += chunk {
		var j, l []any
		for i := start; i < min(start+chunk, jobs); i++ {
			id := firstJob + int64(i)
			u := i % users
			uid := firstUser + int64(u)
			charged[u] += est
			j = append(j, id, uid, fmt.Sprintf("python train.py --seed %d", i), "NVIDIA A100", est, statuses[i%len(statuses)], now, now)
			l = append(l, uid, id, uid, "charge", -est, balance-charged[u], fmt.Sprintf("job %d submitted", id), now)
		}
		if err := s.inTx(func(tx *sql.Tx) error {
			if err := s.insert(tx, "jobs (id, user_id, command, gpu_type, estimated, status, created_at, updated_at)", 8, j); err != nil {
				return err
			}
			return s.insert(tx, ledgerColumns, 8, l)
		}); err != nil {
			return fmt.Errorf("storetest: seed jobs: %w", err)
		}
	}
	if s.postgres {
		// The rows were given their ids: move the sequences past them.
		for _, table := range []string{"users", "jobs"} {
			if _, err := s.w.ExecContext(ctx, "SELECT setval(pg_get_serial_sequence('"+table+"', 'id'), (SELECT COALESCE(max(id), 0) + 1 FROM "+table+"), false)"); err != nil {
				return fmt.Errorf("storetest: seed: %w", err)
			}
		}
	}
	return nil
}

const ledgerColumns = "ledger (user_id, job_id, actor_id, kind, delta, balance, reason, created_at)"

type seeder struct {
	ctx      context.Context
	w        *sql.DB // the store's writing pool
	postgres bool
}

func (s seeder) nextID(table string) (int64, error) {
	var id int64
	if err := s.w.QueryRowContext(s.ctx, "SELECT COALESCE(max(id), 0) + 1 FROM "+table).Scan(&id); err != nil {
		return 0, fmt.Errorf("storetest: seed: %w", err)
	}
	return id, nil
}

func (s seeder) inTx(fn func(tx *sql.Tx) error) error {
	tx, err := s.w.BeginTx(s.ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// insert inserts rows of cols values each, given one row after the other
// in args, into table (with its column list), as bind parameters, at most
// 64 rows a statement: the SQLite driver finds each parameter's argument
// by a search through all of them (modernc.org/sqlite v1.46), so a
// statement's cost grows with the square of its parameters.
func (s seeder) insert(tx *sql.Tx, table string, cols int, args []any) error {
	const perStatement = 64
	for len(args) > 0 {
		n := min(len(args)/cols, perStatement)
		var q strings.Builder
		q.WriteString("INSERT INTO " + table + " VALUES ")
		for r := range n {
			if r > 0 {
				q.WriteString(", ")
			}
			q.WriteByte('(')
			for c := range cols {
				if c > 0 {
					q.WriteString(", ")
				}
				if s.postgres {
					q.WriteString("$" + strconv.Itoa(r*cols+c+1))
				} else {
					q.WriteByte('?')
				}
			}
			q.WriteByte(')')
		}
		if _, err := tx.ExecContext(s.ctx, q.String(), args[:n*cols]...); err != nil {
			return err
		}
		args = args[n*cols:]
	}
	return nil
}
