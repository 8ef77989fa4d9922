package store

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"

	"github.com/uptrace/bun"

	"github.com/gaas-io/gaas/gaas"
)

// Violation is one thing Check found wrong.
type Violation struct {
	Rule    string `bun:"-"`        // which invariant: "balance", "running-balance", "balance-max", "job-charge", "job-refund", "entry"
	UserID  int64  `bun:"user_id"`  // the user concerned, or 0
	JobID   int64  `bun:"job_id"`   // the job concerned, or 0
	EntryID int64  `bun:"entry_id"` // the ledger entry concerned, or 0
	Detail  string `bun:"detail"`
}

func (v Violation) String() string {
	var ids []string
	for _, f := range []struct {
		name string
		id   int64
	}{{"user", v.UserID}, {"job", v.JobID}, {"entry", v.EntryID}} {
		if f.id != 0 {
			ids = append(ids, fmt.Sprintf("%s %d", f.name, f.id))
		}
	}
	return fmt.Sprintf("%s: %s: %s", v.Rule, strings.Join(ids, ", "), v.Detail)
}

// Report is what Check found.
type Report struct {
	Users, Jobs, Entries int
	Violations           []Violation
}

// OK reports whether every invariant holds.
func (r Report) OK() bool { return len(r.Violations) == 0 }

// maxHours is gaas.MaxHours as SQL, a constant of the code.
var maxHours = strconv.FormatInt(int64(gaas.MaxHours), 10)

// maxViolations bounds how many violations of each rule a Report lists.
const maxViolations = 100

// Check verifies the invariants that no sequence of requests may break:
// every balance is the sum of its ledger entries, not negative and not
// above gaas.MaxHours, nor is any balance a ledger entry records; each
// entry's balance is the one before it plus its delta; every job has
// exactly one charge, of its estimate, to its owner; refunds match the
// job's status, as gaas.SettlementOf says; no entry names a job of another
// user or lacks the job its kind needs; and every entry names one actor, a
// user who exists or the system under a name. It reads a consistent
// snapshot and writes nothing, so it may run against a live database.
func (db *DB) Check(ctx context.Context) (Report, error) {
	return db.CheckWith(ctx, CheckOptions{})
}

// CheckOptions steer CheckWith.
type CheckOptions struct {
	// Progress, when not nil, is called after each step of the check (the
	// counts, then each rule, each one a scan of a table or two) with the
	// steps done and the number of steps; nil means nothing is reported.
	Progress func(done, total int)
}

// CheckWith is Check, telling opts.Progress how far it is.
func (db *DB) CheckWith(ctx context.Context, opts CheckOptions) (Report, error) {
	var r Report
	var txOpts *sql.TxOptions
	if db.postgres {
		// One snapshot for every query, while writers go on.
		txOpts = &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true}
	}
	tx, err := db.r.BeginTx(ctx, txOpts)
	if err != nil {
		return r, fmt.Errorf("store: check: %w", err)
	}
	defer tx.Rollback()

	if err := tx.NewRaw("SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM jobs), (SELECT count(*) FROM ledger)").
		Scan(ctx, &r.Users, &r.Jobs, &r.Entries); err != nil {
		return r, fmt.Errorf("store: check: %w", err)
	}
	checks := []struct {
		rule, query string
	}{
		{"balance", `
			SELECT u.id AS user_id, 0 AS job_id, 0 AS entry_id,
			       'balance ' || u.balance || ' but ledger sums to ' || COALESCE(SUM(l.delta), 0) AS detail
			FROM users u LEFT JOIN ledger l ON l.user_id = u.id
			GROUP BY u.id, u.balance
			HAVING u.balance < 0 OR u.balance != COALESCE(SUM(l.delta), 0)`},
		{"running-balance", `
			SELECT user_id, COALESCE(job_id, 0) AS job_id, id AS entry_id,
			       'balance ' || balance || ' after delta ' || delta || ' from ' || prev AS detail
			FROM (SELECT id, user_id, job_id, delta, balance,
			             COALESCE(LAG(balance) OVER (PARTITION BY user_id ORDER BY id), 0) AS prev
			      FROM ledger) t
			WHERE balance != prev + delta OR balance < 0`},
		{"balance-max", `
			SELECT id AS user_id, 0 AS job_id, 0 AS entry_id,
			       'balance ' || balance || ' is above the maximum of ' || ` + maxHours + ` AS detail
			FROM users WHERE balance > ` + maxHours + `
			UNION ALL
			SELECT user_id, COALESCE(job_id, 0) AS job_id, id AS entry_id,
			       'balance ' || balance || ' after this entry is above the maximum of ' || ` + maxHours + ` AS detail
			FROM ledger WHERE balance > ` + maxHours},
		{"job-charge", `
			SELECT j.user_id, j.id AS job_id, 0 AS entry_id,
			       count(l.id) || ' charge(s) totalling ' || COALESCE(-SUM(l.delta), 0) || ' for an estimate of ' || j.estimated AS detail
			FROM jobs j LEFT JOIN ledger l ON l.job_id = j.id AND l.kind = 'charge'
			GROUP BY j.id, j.user_id, j.estimated
			HAVING count(l.id) != 1 OR COALESCE(-SUM(l.delta), 0) != j.estimated`},
		{"entry", `
			SELECT l.user_id, COALESCE(l.job_id, 0) AS job_id, l.id AS entry_id,
			       CASE WHEN l.job_id IS NOT NULL AND j.id IS NULL THEN 'names a job that does not exist'
			            WHEN j.id IS NOT NULL AND j.user_id != l.user_id THEN 'names a job of user ' || j.user_id
			            WHEN l.kind IN ('charge', 'refund') AND l.job_id IS NULL THEN l.kind || ' without a job'
			            WHEN l.kind IN ('grant', 'set') AND l.job_id IS NOT NULL THEN l.kind || ' names a job'
			            WHEN l.kind = 'charge' AND l.delta > 0 THEN 'positive charge'
			            WHEN l.kind = 'refund' AND l.delta < 0 THEN 'negative refund'
			            WHEN l.actor_id IS NULL AND l.actor_system IS NULL THEN 'names no actor'
			            WHEN l.actor_id IS NOT NULL AND l.actor_system IS NOT NULL THEN 'names a user and the system as actor'
			            WHEN l.actor_system = '' THEN 'names the system without a name'
			            WHEN l.actor_id IS NOT NULL AND a.id IS NULL THEN 'actor does not exist'
			            ELSE 'user does not exist' END AS detail
			FROM ledger l LEFT JOIN jobs j ON j.id = l.job_id LEFT JOIN users u ON u.id = l.user_id
			     LEFT JOIN users a ON a.id = l.actor_id
			WHERE (l.job_id IS NOT NULL AND (j.id IS NULL OR j.user_id != l.user_id))
			   OR (l.kind IN ('charge', 'refund') AND l.job_id IS NULL)
			   OR (l.kind IN ('grant', 'set') AND l.job_id IS NOT NULL)
			   OR (l.kind = 'charge' AND l.delta > 0) OR (l.kind = 'refund' AND l.delta < 0)
			   OR (l.actor_id IS NULL) = (l.actor_system IS NULL) OR l.actor_system = ''
			   OR (l.actor_id IS NOT NULL AND a.id IS NULL)
			   OR u.id IS NULL`},
	}
	// Rules checked in Go, by the functions of gaas that the store follows.
	scans := []struct {
		rule string
		scan func(context.Context, bun.Tx) ([]Violation, error)
	}{
		{"job-refund", checkRefunds},
	}
	progress := func(done int) {
		if opts.Progress != nil {
			opts.Progress(done, 1+len(checks)+len(scans))
		}
	}
	progress(1)
	for i, c := range checks {
		var found []Violation
		if err := tx.NewRaw(c.query+fmt.Sprintf(" LIMIT %d", maxViolations)).Scan(ctx, &found); err != nil {
			return r, fmt.Errorf("store: check %s: %w", c.rule, err)
		}
		for _, v := range found {
			v.Rule = c.rule
			r.Violations = append(r.Violations, v)
		}
		progress(2 + i)
	}
	for i, c := range scans {
		found, err := c.scan(ctx, tx)
		if err != nil {
			return r, fmt.Errorf("store: check %s: %w", c.rule, err)
		}
		for _, v := range found {
			v.Rule = c.rule
			r.Violations = append(r.Violations, v)
		}
		progress(2 + len(checks) + i)
	}
	return r, nil
}

// checkRefunds holds each job's refunds to gaas.SettlementOf, the rule the
// store refunds by, rather than to a copy of it in SQL. It streams the
// jobs, each with the sum of its refunds, and stops at maxViolations.
func checkRefunds(ctx context.Context, tx bun.Tx) ([]Violation, error) {
	rows, err := queryRows(ctx, tx, `
		SELECT j.id, j.user_id, j.status, j.estimated, j.actual, COALESCE(SUM(l.delta), 0)
		FROM jobs j LEFT JOIN ledger l ON l.job_id = j.id AND l.kind = 'refund'
		GROUP BY j.id, j.user_id, j.status, j.estimated, j.actual`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var found []Violation
	for rows.Next() && len(found) < maxViolations {
		var (
			j        jobRow
			refunded int64
		)
		if err := rows.Scan(&j.ID, &j.UserID, &j.Status, &j.Estimated, &j.Actual, &refunded); err != nil {
			return nil, err
		}
		job := j.job()
		v := Violation{UserID: j.UserID, JobID: j.ID}
		s, err := gaas.SettlementOf(job.EstimatedHours, job.Status, job.ActualHours)
		switch {
		case err != nil:
			v.Detail = fmt.Sprintf("%s job with actual hours %s and an estimate of %s: %v",
				job.Status, hoursOrNone(job.ActualHours), job.EstimatedHours, err)
		case gaas.Hours(refunded) != s.Refunded:
			v.Detail = fmt.Sprintf("%s job refunded %d, expected %d", job.Status, refunded, int64(s.Refunded))
		default:
			continue
		}
		found = append(found, v)
	}
	return found, rows.Err()
}

func hoursOrNone(h *gaas.Hours) string {
	if h == nil {
		return "none"
	}
	return h.String()
}
