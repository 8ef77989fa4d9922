package storetest

import (
	"container/heap"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/gaas-io/gaas/gaas"
	"github.com/gaas-io/gaas/store"
)

// UsageSite is the shape of a history SeedUsage writes.
type UsageSite struct {
	Users, Projects, Jobs int
	// From and To bound when jobs are submitted and end.
	From, To time.Time
	// Seed makes the history; the same seed writes the same one.
	Seed uint64
}

// usageTypes are the GPU types of a seeded site, with their rates.
var usageTypes = []struct {
	name string
	rate gaas.Rate
}{{"A100", 2500}, {"H100", 4000}, {"L40S", 1500}, {"T4", 333}}

// SeedUsage fills db with the history of a busy site, for benchmarks of
// usage reports: users (as SeedForLoad makes them), projects with an
// allocation each, four GPU types, and jobs submitted at random times in
// [From, To), three in four charged to one of the one or two projects
// their user works in, most on the user's usual GPU type, each ended within two
// days as a site's jobs end (completed with their actual hours or without,
// failed, rejected, cancelled before or while running), with their charge
// and refund entries at the times they were made. It writes rows straight
// into the tables, as SeedForLoad does; the running balances of the
// entries are not kept, so Check does not hold on what it writes.
func SeedUsage(ctx context.Context, db *store.DB, site UsageSite) error {
	if site.Users <= 0 || site.Projects < 0 || site.Jobs < 0 || !site.From.Before(site.To) {
		return fmt.Errorf("storetest: seed usage: %+v: want users > 0, projects and jobs ≥ 0, From before To", site)
	}
	if err := SeedForLoad(ctx, db, site.Users, 0); err != nil {
		return err
	}
	s := seeder{ctx: ctx}
	pools := db.Pools()
	if s.w, s.postgres = pools["postgres"], true; s.w == nil {
		s.w, s.postgres = pools["writer"], false
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	type holder struct{ id, account, allocation int64 }
	var users, projects []holder
	rows, err := s.w.QueryContext(ctx, "SELECT u.id, a.id, al.id FROM users u JOIN accounts a ON a.user_id = u.id"+
		" JOIN allocations al ON al.account_id = a.id AND al.is_default = TRUE WHERE u.username LIKE 'seed-%' ORDER BY u.id")
	if err != nil {
		return fmt.Errorf("storetest: seed usage: %w", err)
	}
	for rows.Next() {
		var h holder
		if err := rows.Scan(&h.id, &h.account, &h.allocation); err != nil {
			rows.Close()
			return fmt.Errorf("storetest: seed usage: %w", err)
		}
		users = append(users, h)
	}
	if err := rows.Close(); err != nil {
		return fmt.Errorf("storetest: seed usage: %w", err)
	}
	var first [3]int64 // the next id of projects, accounts and allocations
	for i, table := range []string{"projects", "accounts", "allocations"} {
		if first[i], err = s.nextID(table); err != nil {
			return err
		}
	}
	var t, p, a, al []any
	for _, g := range usageTypes {
		t = append(t, g.name, "seeded", int64(g.rate), 0, true, now, now)
	}
	const amount = int64(gaas.MaxCredits)
	for i := range site.Projects {
		h := holder{id: first[0] + int64(i), account: first[1] + int64(i), allocation: first[2] + int64(i)}
		projects = append(projects, h)
		a = append(a, h.account, nil, now)
		p = append(p, h.id, fmt.Sprintf("seed-project-%d", h.id), "seeded", h.account, 1, 0, false, now, now)
		al = append(al, h.allocation, h.account, amount, amount, now, false, "seed", "seed", now)
	}
	if err := s.insertAll(
		seedRows{"gpu_types (name, description, rate, max_gpus_per_job, enabled, created_at, updated_at)", 7, t},
		seedRows{"accounts (id, user_id, created_at)", 3, a},
		seedRows{"projects (id, name, description, account_id, depth, spent, managers_approve, created_at, updated_at)", 9, p},
		seedRows{"allocations (id, account_id, amount, remaining, starts_at, is_default, reason, actor_system, created_at)", 9, al},
	); err != nil {
		return fmt.Errorf("storetest: seed projects: %w", err)
	}
	firstJob, err := s.nextID("jobs")
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(site.Seed, 0x5eed))
	span := int64(site.To.Sub(site.From))
	// Jobs are submitted in order of time, and the ledger written in
	// order of time, refunds between charges, as a site writes them: the
	// ids of entries grow with their times (store/rollup.go counts on it).
	times := make([]time.Time, site.Jobs)
	for i := range times {
		times[i] = site.From.Add(time.Duration(rng.Int64N(span))).UTC().Truncate(time.Microsecond)
	}
	slices.SortFunc(times, time.Time.Compare)
	var refunds refundQueue
	const chunk = 2000
	for start := 0; start < site.Jobs; start += chunk {
		var j, l []any
		for i := start; i < min(start+chunk, site.Jobs); i++ {
			id := firstJob + int64(i)
			n := rng.IntN(len(users))
			u := users[n]
			charged := u
			var project any
			if len(projects) > 0 && rng.IntN(4) > 0 {
				// A user works in one or two projects, their n-th and the next.
				charged = projects[(n+rng.IntN(2))%len(projects)]
				project = charged.id
			}
			g := usageTypes[n%len(usageTypes)] // a user's usual type, and now and then another
			if rng.IntN(4) == 0 {
				g = usageTypes[rng.IntN(len(usageTypes))]
			}
			price := gaas.Price{Estimate: gaas.Hours(1 + rng.Int64N(int64(24*gaas.Hour))), GPUs: 1 + rng.IntN(8), Rate: g.rate}
			created := times[i]
			ended := created.Add(time.Duration(rng.Int64N(int64(48 * time.Hour)))).Truncate(time.Microsecond)
			if !ended.Before(site.To) {
				ended = site.To.Add(-time.Microsecond)
			}
			var status gaas.JobStatus
			var actual *gaas.Hours
			switch r := rng.IntN(20); {
			case r < 12:
				status = gaas.StatusCompleted
				if r < 9 {
					h := gaas.Hours(rng.Int64N(int64(price.Estimate) + 1))
					actual = &h
				}
			case r < 14:
				status = gaas.StatusFailed
			case r < 16:
				status = gaas.StatusRejected
			default:
				status = gaas.StatusCancelled
				if r < 18 {
					h := gaas.Hours(rng.Int64N(int64(price.Estimate) + 1))
					actual = &h
				}
			}
			cost, _ := price.Of(price.Estimate)
			settled, err := gaas.SettlementOf(price, status, actual)
			if err != nil {
				return fmt.Errorf("storetest: seed usage: %w", err)
			}
			var actualCol any
			if actual != nil {
				actualCol = int64(*actual)
			}
			j = append(j, id, u.id, charged.account, project, "python train.py", g.name, price.GPUs, int64(price.Estimate), actualCol,
				int64(price.Rate), int64(cost), fmt.Sprintf("%d:%d", charged.allocation, cost), string(status), created, ended)
			for len(refunds) > 0 && !refunds[0][9].(time.Time).After(created) {
				l = append(l, heap.Pop(&refunds).([]any)...)
			}
			l = append(l, charged.account, charged.allocation, id, u.id, "charge", -int64(cost), 0, 0, fmt.Sprintf("job %d submitted", id), created)
			if settled.Refunded > 0 {
				heap.Push(&refunds, []any{charged.account, charged.allocation, id, u.id, "refund", int64(settled.Refunded), 0, 0,
					fmt.Sprintf("job %d %s", id, status), ended})
			}
		}
		if start+chunk >= site.Jobs {
			for len(refunds) > 0 {
				l = append(l, heap.Pop(&refunds).([]any)...)
			}
		}
		if err := s.insertAll(
			seedRows{"jobs (id, user_id, account_id, project_id, command, gpu_type, gpu_count, estimated, actual, rate, cost, draws, status, created_at, updated_at)", 15, j},
			seedRows{ledgerColumns, 10, l},
		); err != nil {
			return fmt.Errorf("storetest: seed usage jobs: %w", err)
		}
	}
	if err := s.resetSequences("projects", "accounts", "allocations", "jobs", "gpu_types"); err != nil {
		return err
	}
	if s.postgres {
		// As autovacuum would after so many rows.
		if _, err := s.w.ExecContext(ctx, "ANALYZE"); err != nil {
			return fmt.Errorf("storetest: seed usage: %w", err)
		}
	}
	return nil
}

// refundQueue is ledger rows of refunds, the soonest first (their time is
// the last value).
type refundQueue [][]any

func (q refundQueue) Len() int           { return len(q) }
func (q refundQueue) Less(i, j int) bool { return q[i][9].(time.Time).Before(q[j][9].(time.Time)) }
func (q refundQueue) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }
func (q *refundQueue) Push(x any)        { *q = append(*q, x.([]any)) }
func (q *refundQueue) Pop() any {
	old := *q
	x := old[len(old)-1]
	*q = old[:len(old)-1]
	return x
}
