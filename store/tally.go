package store

import (
	"context"
	"fmt"

	"github.com/gaas-io/gaas/gaas"
)

// Tally counts jobs by status, the credits reserved by jobs that are not
// final, and accounts by role and whether they are disabled. It is two
// aggregate queries on the reader, meant for a metrics scrape; give ctx a
// deadline.
func (db *DB) Tally(ctx context.Context) (gaas.Tally, error) {
	t := gaas.Tally{Jobs: map[gaas.JobStatus]int64{}, Reserved: map[gaas.JobStatus]gaas.Credits{}, Accounts: map[gaas.AccountKind]int64{}}
	var jobs []struct {
		Status   string `bun:"status"`
		N        int64  `bun:"n"`
		Reserved int64  `bun:"reserved"`
	}
	if err := db.r.NewRaw("SELECT status, COUNT(*) AS n, SUM(cost) AS reserved FROM jobs GROUP BY status").Scan(ctx, &jobs); err != nil {
		return gaas.Tally{}, fmt.Errorf("store: tally jobs: %w", mapErr(err))
	}
	for _, j := range jobs {
		s := gaas.JobStatus(j.Status)
		t.Jobs[s] = j.N
		if !s.Final() {
			t.Reserved[s] = gaas.Credits(j.Reserved)
		}
	}
	var users []struct {
		Role     string `bun:"role"`
		Disabled bool   `bun:"disabled"`
		N        int64  `bun:"n"`
	}
	if err := db.r.NewRaw("SELECT role, disabled, COUNT(*) AS n FROM users GROUP BY role, disabled").Scan(ctx, &users); err != nil {
		return gaas.Tally{}, fmt.Errorf("store: tally users: %w", mapErr(err))
	}
	for _, u := range users {
		t.Accounts[gaas.AccountKind{Role: gaas.Role(u.Role), Disabled: u.Disabled}] = u.N
	}
	return t, nil
}
