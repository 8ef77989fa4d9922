package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/uptrace/bun"

	"github.com/gaas-io/gaas/gaas"
)

// Violation is one thing Check found wrong.
type Violation struct {
	Rule         string `bun:"-"`             // which invariant: "allocation", "running-balance", "balance-max", "account", "project", "job", "entry", "run", "schedule", "notice", "delivery"
	UserID       int64  `bun:"user_id"`       // the user concerned, or 0
	JobID        int64  `bun:"job_id"`        // the job concerned, or 0
	EntryID      int64  `bun:"entry_id"`      // the ledger entry concerned, or 0
	AllocationID int64  `bun:"allocation_id"` // the allocation concerned, or 0
	Detail       string `bun:"detail"`
}

func (v Violation) String() string {
	var ids []string
	for _, f := range []struct {
		name string
		id   int64
	}{{"user", v.UserID}, {"job", v.JobID}, {"entry", v.EntryID}, {"allocation", v.AllocationID}} {
		if f.id != 0 {
			ids = append(ids, fmt.Sprintf("%s %d", f.name, f.id))
		}
	}
	return fmt.Sprintf("%s: %s: %s", v.Rule, strings.Join(ids, ", "), v.Detail)
}

// Report is what Check found.
type Report struct {
	Users, Jobs, Entries, Allocations int
	Violations                        []Violation
}

// OK reports whether every invariant holds.
func (r Report) OK() bool { return len(r.Violations) == 0 }

// maxCredits is gaas.MaxCredits as SQL, a constant of the code.
var maxCredits = strconv.FormatInt(int64(gaas.MaxCredits), 10)

// maxViolations bounds how many violations of each rule a Report lists.
const maxViolations = 100

// Check verifies the invariants that no sequence of requests may break:
// each allocation's remaining is the sum of its ledger entries, neither
// negative nor above gaas.MaxCredits, and its amount the sum of its grants
// and sets (which for a default allocation set again and again may pass
// the maximum: it is a history, not a holding); each entry's remaining
// follows its allocation's previous entry, and its balance the account's
// previous entry, by its delta (so each account's balance is the sum of its allocations); every
// user has one account and every account one default allocation; every
// job cost gaas.Cost of its estimate, GPUs and rate, drew that cost in
// charges, one for each allocation its draws name, and was refunded what
// gaas.SettlementOf says, each refund to an allocation its draws name; no
// entry names a job or an allocation of another account or lacks the job
// its kind needs; an expire entry comes at or after its allocation's end
// and empties it (so no allocation expires twice but for what a refund
// brought back between); what each project (with its descendants) and each
// member has spent is what their jobs net, and a job names the project
// whose account it drew from; every entry names one actor, a user who
// exists or the system under a name; every allocation a schedule gave
// is for one of its periods, once, and each rollover moves what one
// period's allocation held at its end into the next, up to the cap
// (checkSchedules); each notice of an allocation (a threshold crossed, an
// expiry near) was sent as exactly one event; and each delivery is of an
// event fanned out, with a time to try it while it waits. It reads a consistent
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

	if err := tx.NewRaw("SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM jobs), (SELECT count(*) FROM ledger), (SELECT count(*) FROM allocations)").
		Scan(ctx, &r.Users, &r.Jobs, &r.Entries, &r.Allocations); err != nil {
		return r, fmt.Errorf("store: check: %w", err)
	}
	checks := []struct {
		rule, query string
	}{
		{"allocation", `
			SELECT ac.user_id AS user_id, 0 AS job_id, 0 AS entry_id, al.id AS allocation_id,
			       'remaining ' || al.remaining || ' and amount ' || al.amount || ' but entries sum to ' || COALESCE(SUM(l.delta), 0) ||
			       ' and grants and sets to ' || COALESCE(SUM(CASE WHEN l.kind IN ('grant', 'set') OR (l.kind = 'transfer' AND l.delta > 0) THEN l.delta ELSE 0 END), 0) AS detail
			FROM allocations al JOIN accounts ac ON ac.id = al.account_id LEFT JOIN ledger l ON l.allocation_id = al.id
			GROUP BY al.id, ac.user_id, al.remaining, al.amount
			HAVING al.remaining < 0 OR al.remaining != COALESCE(SUM(l.delta), 0)
			    OR al.amount != COALESCE(SUM(CASE WHEN l.kind IN ('grant', 'set') OR (l.kind = 'transfer' AND l.delta > 0) THEN l.delta ELSE 0 END), 0)`},
		{"running-balance", `
			SELECT ac.user_id, COALESCE(t.job_id, 0) AS job_id, t.id AS entry_id, t.allocation_id,
			       'balance ' || t.balance || ' and remaining ' || t.remaining || ' after delta ' || t.delta ||
			       ' from ' || t.prev || ' and ' || t.prev_remaining AS detail
			FROM (SELECT id, account_id, allocation_id, job_id, delta, balance, remaining,
			             COALESCE(LAG(balance) OVER (PARTITION BY account_id ORDER BY id), 0) AS prev,
			             COALESCE(LAG(remaining) OVER (PARTITION BY allocation_id ORDER BY id), 0) AS prev_remaining
			      FROM ledger) t JOIN accounts ac ON ac.id = t.account_id
			WHERE t.balance != t.prev + t.delta OR t.remaining != t.prev_remaining + t.delta OR t.balance < 0 OR t.remaining < 0`},
		{"balance-max", `
			SELECT ac.user_id, 0 AS job_id, 0 AS entry_id, al.id AS allocation_id,
			       'remaining ' || al.remaining || ' is above the maximum of ' || ` + maxCredits + ` AS detail
			FROM allocations al JOIN accounts ac ON ac.id = al.account_id WHERE al.remaining > ` + maxCredits + `
			UNION ALL
			SELECT ac.user_id, COALESCE(l.job_id, 0) AS job_id, l.id AS entry_id, l.allocation_id,
			       'balance ' || l.balance || ' after this entry is above the maximum of ' || ` + maxCredits + ` AS detail
			FROM ledger l JOIN accounts ac ON ac.id = l.account_id WHERE l.balance > ` + maxCredits},
		{"account", `
			SELECT u.id AS user_id, 0 AS job_id, 0 AS entry_id, 0 AS allocation_id, 'has no account' AS detail
			FROM users u LEFT JOIN accounts a ON a.user_id = u.id WHERE a.id IS NULL
			UNION ALL
			SELECT COALESCE(a.user_id, 0), 0, 0, 0, 'account ' || a.id || ' has ' || count(al.id) || ' default allocations'
			FROM accounts a LEFT JOIN allocations al ON al.account_id = a.id AND al.is_default = TRUE
			GROUP BY a.id, a.user_id HAVING count(al.id) != 1
			UNION ALL
			SELECT COALESCE(a.user_id, 0), 0, 0, al.id, 'default allocation with a scope or an end'
			FROM allocations al JOIN accounts a ON a.id = al.account_id
			WHERE al.is_default = TRUE AND (al.gpu_types IS NOT NULL OR al.expires_at IS NOT NULL)`},
		// Each charge takes what one of its job's draws says from that
		// draw's allocation, and no two take from one allocation: with
		// checkJobs's count and sum, the charges are the draws. Each
		// refund goes back to an allocation the draws name.
		{"job", `
			SELECT ac.user_id AS user_id, l.job_id AS job_id, l.id AS entry_id, l.allocation_id AS allocation_id,
			       'charge of ' || (-l.delta) || ' from allocation ' || l.allocation_id || ' is not one of the draws ' || j.draws AS detail
			FROM ledger l JOIN jobs j ON j.id = l.job_id JOIN accounts ac ON ac.id = l.account_id
			WHERE l.kind = 'charge' AND (',' || j.draws || ',') NOT LIKE ('%,' || l.allocation_id || ':' || (-l.delta) || ',%')
			UNION ALL
			SELECT ac.user_id, l.job_id, 0, l.allocation_id, count(*) || ' charges from one allocation'
			FROM ledger l JOIN accounts ac ON ac.id = l.account_id
			WHERE l.kind = 'charge' AND l.job_id IS NOT NULL
			GROUP BY l.job_id, l.allocation_id, ac.user_id HAVING count(*) > 1
			UNION ALL
			SELECT COALESCE(ac.user_id, 0), l.job_id, l.id, l.allocation_id,
			       'refund of ' || l.delta || ' to allocation ' || l.allocation_id || ', which the draws ' || j.draws || ' do not name'
			FROM ledger l JOIN jobs j ON j.id = l.job_id JOIN accounts ac ON ac.id = l.account_id
			WHERE l.kind = 'refund' AND (',' || j.draws || ',') NOT LIKE ('%,' || l.allocation_id || ':%')`},
		{"project", `
			WITH RECURSIVE tree(root, id) AS (
			    SELECT id, id FROM projects
			    UNION ALL SELECT t.root, p.id FROM projects p JOIN tree t ON p.parent_id = t.id),
			net(project_id, user_id, amount) AS (
			    SELECT p.id, j.user_id, j.cost - COALESCE(r.total, 0)
			    FROM jobs j JOIN projects p ON p.account_id = j.account_id
			    LEFT JOIN (SELECT job_id, SUM(delta) AS total FROM ledger WHERE kind = 'refund' AND job_id IS NOT NULL GROUP BY job_id) r
			         ON r.job_id = j.id)
			SELECT 0 AS user_id, 0 AS job_id, 0 AS entry_id, 0 AS allocation_id,
			       'project ' || pr.id || ' has spent ' || pr.spent || ', but its jobs and its descendants'' net ' || COALESCE(SUM(n.amount), 0) AS detail
			FROM projects pr JOIN tree t ON t.root = pr.id LEFT JOIN net n ON n.project_id = t.id
			GROUP BY pr.id, pr.spent HAVING pr.spent != COALESCE(SUM(n.amount), 0)
			UNION ALL
			SELECT m.user_id, 0, 0, 0,
			       'member of project ' || m.project_id || ' has spent ' || m.spent || ', but their jobs there net ' || COALESCE(SUM(n.amount), 0)
			FROM project_members m LEFT JOIN net n ON n.project_id = m.project_id AND n.user_id = m.user_id
			GROUP BY m.project_id, m.user_id, m.spent HAVING m.spent != COALESCE(SUM(n.amount), 0)
			UNION ALL
			SELECT j.user_id, j.id, 0, 0,
			       'job names project ' || COALESCE(j.project_id, 0) || ', but drew from the account of project ' || COALESCE(p.id, 0)
			FROM jobs j LEFT JOIN projects p ON p.account_id = j.account_id
			WHERE COALESCE(j.project_id, 0) != COALESCE(p.id, 0)`},
		{"entry", `
			SELECT COALESCE(ac.user_id, 0) AS user_id, COALESCE(l.job_id, 0) AS job_id, l.id AS entry_id, l.allocation_id,
			       CASE WHEN l.job_id IS NOT NULL AND j.id IS NULL THEN 'names a job that does not exist'
			            WHEN j.id IS NOT NULL AND j.account_id != l.account_id THEN 'names a job of account ' || j.account_id
			            WHEN l.member_id IS NOT NULL AND (j.id IS NULL OR l.member_id != j.user_id) THEN 'names member ' || l.member_id || ' of another''s job'
			            WHEN al.id IS NULL THEN 'names an allocation that does not exist'
			            WHEN al.account_id != l.account_id THEN 'names an allocation of account ' || al.account_id
			            WHEN l.kind IN ('charge', 'refund') AND l.job_id IS NULL THEN l.kind || ' without a job'
			            WHEN l.kind IN ('grant', 'set', 'revoke', 'transfer') AND l.job_id IS NOT NULL THEN l.kind || ' names a job'
			            WHEN l.kind = 'charge' AND l.delta > 0 THEN 'positive charge'
			            WHEN l.kind = 'refund' AND l.delta < 0 THEN 'negative refund'
			            WHEN l.kind IN ('expire', 'revoke') AND l.delta > 0 THEN 'positive ' || l.kind
			            WHEN l.kind = 'expire' AND (l.delta = 0 OR l.remaining != 0) THEN 'expire of ' || l.delta || ' leaves its allocation ' || l.remaining
			            WHEN l.kind = 'expire' AND (al.expires_at IS NULL OR l.created_at < al.expires_at) THEN 'expire before its allocation ended'
			            WHEN l.actor_id IS NULL AND l.actor_system IS NULL THEN 'names no actor'
			            WHEN l.actor_id IS NOT NULL AND l.actor_system IS NOT NULL THEN 'names a user and the system as actor'
			            WHEN l.actor_system = '' THEN 'names the system without a name'
			            WHEN l.actor_id IS NOT NULL AND a.id IS NULL THEN 'actor does not exist'
			            ELSE 'account does not exist' END AS detail
			FROM ledger l LEFT JOIN jobs j ON j.id = l.job_id LEFT JOIN accounts ac ON ac.id = l.account_id
			     LEFT JOIN allocations al ON al.id = l.allocation_id LEFT JOIN users a ON a.id = l.actor_id
			WHERE (l.job_id IS NOT NULL AND (j.id IS NULL OR j.account_id != l.account_id))
			   OR (l.member_id IS NOT NULL AND (j.id IS NULL OR l.member_id != j.user_id))
			   OR al.id IS NULL OR al.account_id != l.account_id
			   OR (l.kind IN ('charge', 'refund') AND l.job_id IS NULL)
			   OR (l.kind IN ('grant', 'set', 'revoke', 'transfer') AND l.job_id IS NOT NULL)
			   OR (l.kind = 'charge' AND l.delta > 0) OR (l.kind = 'refund' AND l.delta < 0)
			   OR (l.kind IN ('expire', 'revoke') AND l.delta > 0)
			   OR (l.kind = 'expire' AND (l.delta = 0 OR l.remaining != 0 OR al.expires_at IS NULL OR l.created_at < al.expires_at))
			   OR (l.actor_id IS NULL) = (l.actor_system IS NULL) OR l.actor_system = ''
			   OR (l.actor_id IS NOT NULL AND a.id IS NULL)
			   OR ac.id IS NULL`},
		// A lease is live only on a job that can still run; a job that
		// ran to an end is final; a claimed job's run says who claimed it.
		{"run", `
			SELECT j.user_id AS user_id, j.id AS job_id, 0 AS entry_id, 0 AS allocation_id,
			       CASE WHEN r.expires_at IS NOT NULL THEN 'a lease is live on a ' || j.status || ' job'
			            WHEN r.ended_at IS NOT NULL THEN 'ended, but ' || j.status
			            ELSE 'a run of a ' || j.status || ' job' END AS detail
			FROM job_runs r JOIN jobs j ON j.id = r.job_id
			WHERE (r.expires_at IS NOT NULL AND j.status NOT IN ('APPROVED', 'RUNNING'))
			   OR (r.ended_at IS NOT NULL AND j.status NOT IN ('COMPLETED', 'FAILED', 'CANCELLED'))
			   OR j.status IN ('PENDING', 'REJECTED')`},
		// Only a schedule moves credits under its name, between
		// allocations of its own; checkSchedules pairs the moves.
		{"schedule", `
			SELECT COALESCE(ac.user_id, 0) AS user_id, 0 AS job_id, l.id AS entry_id, l.allocation_id,
			       'a schedule''s ' || l.kind || ' of an allocation no schedule gave' AS detail
			FROM ledger l JOIN allocations al ON al.id = l.allocation_id LEFT JOIN accounts ac ON ac.id = l.account_id
			WHERE l.actor_system = 'schedule' AND l.kind IN ('transfer', 'grant') AND al.schedule_id IS NULL
			UNION ALL
			SELECT COALESCE(ac.user_id, 0), 0, 0, al.id, 'schedule_id and period_start are not given together'
			FROM allocations al LEFT JOIN accounts ac ON ac.id = al.account_id
			WHERE (al.schedule_id IS NULL) <> (al.period_start IS NULL)`},
		// A delivery is of an event fanned out already; one that waits
		// has a time to be tried, one delivered was tried.
		{"delivery", `
			SELECT 0 AS user_id, 0 AS job_id, 0 AS entry_id, 0 AS allocation_id,
			       'delivery ' || d.id || ' of event ' || d.event_id || CASE
			           WHEN e.dispatched_at IS NULL THEN ', which was not dispatched'
			           WHEN d.status = 'pending' THEN ' waits with no time to try it'
			           ELSE ' was delivered without an attempt' END AS detail
			FROM deliveries d JOIN events e ON e.id = d.event_id
			WHERE e.dispatched_at IS NULL OR (d.status = 'pending' AND d.next_attempt_at IS NULL)
			   OR (d.status = 'delivered' AND d.attempts = 0)`},
	}
	// Rules checked in Go, by the functions of gaas that the store follows.
	scans := []struct {
		rule string
		scan func(context.Context, bun.Tx) ([]Violation, error)
	}{
		{"job", checkJobs},
		{"schedule", checkSchedules},
		{"notice", checkNotices},
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

// checkJobs holds each job to the rules of gaas that the store charges
// and refunds by, rather than to a copy of them in SQL: its cost is
// gaas.Cost of its price, its draws sum to it, it has one charge entry
// for each draw and they take the cost, and its refunds are what
// gaas.SettlementOf gives back. It streams the jobs, each with the sums of
// its entries, and stops at maxViolations.
func checkJobs(ctx context.Context, tx bun.Tx) ([]Violation, error) {
	rows, err := queryRows(ctx, tx, `
		SELECT j.id, j.user_id, j.status, j.estimated, j.actual, j.gpu_count, j.rate, j.cost, j.draws,
		       COALESCE(c.n, 0), COALESCE(c.total, 0), COALESCE(r.total, 0)
		FROM jobs j
		LEFT JOIN (SELECT job_id, count(*) AS n, -SUM(delta) AS total FROM ledger WHERE kind = 'charge' AND job_id IS NOT NULL GROUP BY job_id) c ON c.job_id = j.id
		LEFT JOIN (SELECT job_id, SUM(delta) AS total FROM ledger WHERE kind = 'refund' AND job_id IS NOT NULL GROUP BY job_id) r ON r.job_id = j.id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var found []Violation
	for rows.Next() && len(found) < maxViolations {
		var (
			j                 jobRow
			charges           int
			charged, refunded int64
		)
		if err := rows.Scan(&j.ID, &j.UserID, &j.Status, &j.Estimated, &j.Actual, &j.GPUCount, &j.Rate, &j.Cost, &j.Draws,
			&charges, &charged, &refunded); err != nil {
			return nil, err
		}
		if detail := jobViolation(j, charges, gaas.Credits(charged), gaas.Credits(refunded)); detail != "" {
			found = append(found, Violation{UserID: j.UserID, JobID: j.ID, Detail: detail})
		}
	}
	return found, rows.Err()
}

// jobViolation says what is wrong with a job and the sums of its entries,
// or "".
func jobViolation(j jobRow, charges int, charged, refunded gaas.Credits) string {
	job := j.job()
	price := j.price()
	cost, ok := price.Of(price.Estimate)
	if !ok || cost != job.Cost {
		return fmt.Sprintf("cost %s, but %s hours of %d GPUs at rate %s cost %s", job.Cost, price.Estimate, price.GPUs, price.Rate, cost)
	}
	draws, err := decodeDraws(j.Draws)
	if err != nil {
		return err.Error()
	}
	var drawn gaas.Credits
	for _, d := range draws {
		drawn += d.Amount
	}
	switch {
	case drawn != cost:
		return fmt.Sprintf("draws %q take %s of a cost of %s", j.Draws, drawn, cost)
	case charges != len(draws) || charged != cost:
		return fmt.Sprintf("%d charge(s) totalling %s for %d draw(s) of a cost of %s", charges, charged, len(draws), cost)
	}
	s, err := gaas.SettlementOf(price, job.Status, job.ActualHours)
	switch {
	case err != nil:
		return fmt.Sprintf("%s job with actual hours %s and an estimate of %s: %v", job.Status, hoursOrNone(job.ActualHours), job.EstimatedHours, err)
	case refunded != s.Refunded:
		return fmt.Sprintf("%s job refunded %s, expected %s", job.Status, refunded, s.Refunded)
	}
	return ""
}

func hoursOrNone(h *gaas.Hours) string {
	if h == nil {
		return "none"
	}
	return h.String()
}

// checkNotices holds the notices of allocations to their events: each
// notice (a threshold crossed, an expiry near) was sent as exactly one
// event, and no such event was sent without its notice.
func checkNotices(ctx context.Context, tx bun.Tx) ([]Violation, error) {
	var notices []struct {
		AllocationID int64  `bun:"allocation_id"`
		Notice       string `bun:"notice"`
	}
	if err := query(ctx, tx, &notices, "SELECT allocation_id, notice FROM allocation_notices"); err != nil {
		return nil, err
	}
	var events []eventRow
	if err := query(ctx, tx, &events, "SELECT "+eventColumns+" FROM events e WHERE e.type IN (?, ?)",
		string(gaas.EventThresholdCrossed), string(gaas.EventAllocationExpiring)); err != nil {
		return nil, err
	}
	type key struct {
		allocation int64
		notice     string
	}
	sent := map[key]int{}
	for _, e := range events {
		var d struct {
			AllocationID int64 `json:"allocation_id"`
			Threshold    int   `json:"threshold"`
		}
		if err := json.Unmarshal([]byte(e.Payload), &d); err != nil {
			return nil, fmt.Errorf("event %d: %w", e.ID, err)
		}
		k := key{d.AllocationID, expiringNotice}
		if gaas.EventType(e.Type) == gaas.EventThresholdCrossed {
			k.notice = thresholdNotice(d.Threshold)
		}
		sent[k]++
	}
	var found []Violation
	for _, n := range notices {
		k := key{n.AllocationID, n.Notice}
		if sent[k] != 1 {
			found = append(found, Violation{AllocationID: n.AllocationID, Detail: fmt.Sprintf("notice %s was sent as %d events", n.Notice, sent[k])})
		}
		delete(sent, k)
	}
	for k := range sent {
		found = append(found, Violation{AllocationID: k.allocation, Detail: fmt.Sprintf("%s was sent without its notice", k.notice)})
	}
	slices.SortFunc(found, func(a, b Violation) int { return int(a.AllocationID - b.AllocationID) })
	return found[:min(len(found), maxViolations)], nil
}
