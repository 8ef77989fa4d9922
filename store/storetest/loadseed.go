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

// SeedForLoad fills db with users "seed-N" (who cannot log in), each with
// a personal account whose default allocation holds a large balance, and
// jobs spread over them and over the statuses whose charge stands whole,
// each drawn from that allocation with its charge, so that the ledger
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
	var err error
	var first [3]int64 // the next id of users, accounts and allocations
	for i, table := range []string{"users", "accounts", "allocations"} {
		if first[i], err = s.nextID(table); err != nil {
			return err
		}
	}
	firstUser, firstAccount, firstAllocation := first[0], first[1], first[2]
	balance := int64(1000 * gaas.Credit)
	const est = int64(100) // 0.1 hours a job, at rate 1 on one GPU
	jobsFor := func(u int) int64 {
		n := jobs / users
		if u < jobs%users {
			n++
		}
		return int64(n)
	}
	// Each user has a personal account whose default allocation holds the
	// balance; its remaining is what the user's jobs leave of it.
	for start := 0; start < users; start += chunk {
		var u, a, al, l []any
		for i := start; i < min(start+chunk, users); i++ {
			id, account, allocation := firstUser+int64(i), firstAccount+int64(i), firstAllocation+int64(i)
			u = append(u, id, fmt.Sprintf("seed-%d", id), "!", "user", now)
			a = append(a, account, id, now)
			al = append(al, allocation, account, balance, balance-jobsFor(i)*est, now, true, "default allocation", id, now)
			l = append(l, account, allocation, nil, id, "grant", balance, balance, balance, "seed", now)
		}
		if err := s.insertAll(
			seedRows{"users (id, username, password_hash, role, created_at)", 5, u},
			seedRows{"accounts (id, user_id, created_at)", 3, a},
			seedRows{"allocations (id, account_id, amount, remaining, starts_at, is_default, reason, actor_id, created_at)", 9, al},
			seedRows{ledgerColumns, 10, l},
		); err != nil {
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
			uid, account, allocation := firstUser+int64(u), firstAccount+int64(u), firstAllocation+int64(u)
			charged[u] += est
			j = append(j, id, uid, account, fmt.Sprintf("python train.py --seed %d", i), "NVIDIA A100", 1, est, int64(gaas.RateOne), est,
				fmt.Sprintf("%d:%d", allocation, est), statuses[i%len(statuses)], now, now)
			l = append(l, account, allocation, id, uid, "charge", -est, balance-charged[u], balance-charged[u], fmt.Sprintf("job %d submitted", id), now)
		}
		if err := s.insertAll(
			seedRows{"jobs (id, user_id, account_id, command, gpu_type, gpu_count, estimated, rate, cost, draws, status, created_at, updated_at)", 13, j},
			seedRows{ledgerColumns, 10, l},
		); err != nil {
			return fmt.Errorf("storetest: seed jobs: %w", err)
		}
	}
	return s.resetSequences("users", "accounts", "allocations", "jobs")
}

const ledgerColumns = "ledger (account_id, allocation_id, job_id, actor_id, kind, delta, remaining, balance, reason, created_at)"

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

// seedRows are rows of a table (with its column list) of cols values
// each, given one after the other.
type seedRows struct {
	table string
	cols  int
	args  []any
}

// insertAll inserts the rows of each table in one transaction.
func (s seeder) insertAll(tables ...seedRows) error {
	return s.inTx(func(tx *sql.Tx) error {
		for _, t := range tables {
			if err := s.insert(tx, t.table, t.cols, t.args); err != nil {
				return err
			}
		}
		return nil
	})
}

// resetSequences moves PostgreSQL's sequences of the ids of tables past
// the ids the seed gave its rows.
func (s seeder) resetSequences(tables ...string) error {
	if !s.postgres {
		return nil
	}
	for _, table := range tables {
		if _, err := s.w.ExecContext(s.ctx, "SELECT setval(pg_get_serial_sequence('"+table+"', 'id'), (SELECT COALESCE(max(id), 0) + 1 FROM "+table+"), false)"); err != nil {
			return fmt.Errorf("storetest: seed: %w", err)
		}
	}
	return nil
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
