package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/gaas-io/gaas/gaas"
)

// The rollup of usage.
//
// A report of a year of a busy site sums millions of ledger entries and
// jobs; read from the ledger each time it takes seconds (BENCHMARKS.md).
// So closed UTC days are summed once into usage_rollup, by day and by
// user, project and GPU type, and closed months once more from their days,
// and a report reads whole days and months from there and only the rest
// of its range (its edges, and the days not rolled up yet) from the ledger
// and the jobs.
//
// The rollup stays exact because the ledger is append-only and a final
// job never changes: every entry and every end of a job is written with
// the time of the transaction that writes it, so a day that ended
// rollupMargin ago gets nothing more. (A transaction, or a clock, that
// far behind is the only way to break it; the margin is far above the
// store's statement and batch timeouts.)
//
// The ledger has no index by time: every charge would pay for one, and
// submissions are the hot path. The rest of a range is read from it by
// id instead, between the bounds of usage_ledger_days, which the roll-up
// writes for each day: the largest id of an entry of a job written before
// that day. Ids grow in the order entries are inserted, and an entry is
// inserted less than rollupMargin after its time, so the entries written
// from a day on all have larger ids than the bound of the day before it,
// and those written before a day none larger than that day's. Where no
// day after a range has a bound yet (the days not rolled up), the ledger
// is bisected by id for one (ledgerCeiling).
//
// gaasd's worker rolls up what has closed (Upkeep.RollUpUsage), and a
// report rolls up at most reportRollupDays itself before it reads, unless
// a roll-up of its process is under way: a database far behind (one that
// never had the rollup, or whose worker is off) is caught up over runs of
// the worker and reports, and each report reads the days not rolled up
// yet from the ledger, as exact and only slower. The roll-up goes in
// transactions of at most rollupChunk days: the sums are read from the
// readers, then written with the state in a short transaction that only
// the first of racing processes commits (the state moves from where it
// was read).

// rollupMargin is how long after its end a day is rolled up.
const rollupMargin = 24 * time.Hour

// rollupChunk is the most days one transaction of the roll-up sums.
const rollupChunk = 31

// reportRollupDays is the most days a report rolls up before it reads:
// one chunk, which after the first days is the day or so since the last
// report or run of the worker. Behind that a chunk costs a read of the
// ledger from its first day on, seconds on a year of a busy site
// (BENCHMARKS.md), where the rest of the rollup would cost minutes.
const reportRollupDays = rollupChunk

// RollUpBatch is the most days one call of Upkeep.RollUpUsage rolls up,
// in one transaction: a backlog is worked off over calls.
const RollUpBatch = rollupChunk

// RollUpUsage brings the rollup of usage that reports read towards the
// last day that closed (a day after its end, UTC): it rolls up at most
// maxDays days from where it stands, in transactions of at most
// RollUpBatch days, and the months those days complete, and returns how
// many days it rolled up; 0 says it is up to date, or maxDays was 0.
// Reports are exact whatever it has done: they read the days not rolled
// up from the ledger. Several processes may call it at once; each day is
// rolled up once.
func (s *Upkeep) RollUpUsage(ctx context.Context, maxDays int) (int, error) {
	n, err := s.db.Reports.rollUp(ctx, maxDays)
	if err != nil {
		return n, fmt.Errorf("store: roll up usage: %w", mapErr(err))
	}
	return n, nil
}

// dayLayout and monthLayout are how usage_rollup writes its periods.
const (
	dayLayout   = "2006-01-02"
	monthLayout = "2006-01"
)

// rollupState is how far usage_rollup reaches: every day before days and
// every month before months is in it (zero: none yet).
type rollupState struct {
	days, months time.Time
	raw          [2]string // as the row says
}

func loadRollupState(ctx context.Context, idb bun.IDB) (rollupState, error) {
	var raw struct {
		Days   string `bun:"days"`
		Months string `bun:"months"`
	}
	if err := query(ctx, idb, &raw, "SELECT days, months FROM usage_rollup_state WHERE id = 1"); err != nil {
		return rollupState{}, err
	}
	st := rollupState{raw: [2]string{raw.Days, raw.Months}}
	var err error
	if raw.Days != "" {
		st.days, err = time.Parse(dayLayout, raw.Days)
	}
	if raw.Months != "" && err == nil {
		st.months, err = time.Parse(monthLayout, raw.Months)
	}
	return st, err
}

// usagePart is a part of a report's range: read from the rollup rows of
// grain, or from the ledger and the jobs when grain is "".
type usagePart struct {
	from, to time.Time
	grain    string
}

// split cuts the range of req into the parts it is read from: the whole
// months that are rolled up (for reports by month or of no period), the
// whole days that are, and the rest.
func (st rollupState) split(req gaas.UsageRequest) []usagePart {
	from, to := req.From, req.To
	a := startOnOrAfter(gaas.BucketDay, from)
	b := gaas.BucketDay.Start(to)
	if st.days.Before(b) {
		b = st.days
	}
	if !a.Before(b) {
		return []usagePart{{from: from, to: to}}
	}
	parts := []usagePart{{from: from, to: a}}
	days := []usagePart{{from: a, to: b, grain: "day"}}
	if req.Period == gaas.BucketNone || req.Period == gaas.BucketMonth {
		ma := startOnOrAfter(gaas.BucketMonth, a)
		mb := gaas.BucketMonth.Start(b)
		if st.months.Before(mb) {
			mb = st.months
		}
		if ma.Before(mb) {
			days = []usagePart{{from: a, to: ma, grain: "day"}, {from: ma, to: mb, grain: "month"}, {from: mb, to: b, grain: "day"}}
		}
	}
	parts = append(parts, days...)
	parts = append(parts, usagePart{from: b, to: to})
	out := parts[:0]
	for _, p := range parts {
		if p.from.Before(p.to) {
			out = append(out, p)
		}
	}
	return out
}

// startOnOrAfter is the first start of a period of bucket at t or after it.
func startOnOrAfter(bucket gaas.Bucket, t time.Time) time.Time {
	if s := bucket.Start(t); !s.Before(t) {
		return s
	}
	return bucket.Next(bucket.Start(t))
}

// rolledUsage adds to rows the rollup rows of grain in the range of req,
// whose bounds are the starts of days (months for grain "month"). A
// report of the whole site by nothing but GPU type reads the site's own
// rows, a few a period, rather than those of every user and project.
func (s *ReportService) rolledUsage(ctx context.Context, idb bun.IDB, req gaas.UsageRequest, f usageFilter, grain string, rows *usageRows) error {
	layout := dayLayout
	if grain == "month" {
		layout = monthLayout
	}
	cols, groupBy := usageColumns(req, func(month bool) string {
		if month && grain == "day" {
			return "substr(j.period, 1, 7)"
		}
		return "j.period" // grouped in the order of the key, with no sort
	})
	if f.where == "" && !req.Grouped(gaas.GroupByUser) && !req.Grouped(gaas.GroupByProject) {
		grain = "site-" + grain
	}
	q := "SELECT " + cols + ", count(*), SUM(j.charged), SUM(j.returned), SUM(j.gpu_hours)," +
		" SUM(j.completed), SUM(j.failed), SUM(j.rejected), SUM(j.cancelled)" +
		" FROM usage_rollup j WHERE j.grain = ? AND j.period >= ? AND j.period < ?" + f.where + groupClause(groupBy)
	args := append([]any{grain, req.From.Format(layout), req.To.Format(layout)}, f.args...)
	return scanUsage(ctx, idb, req, q, args, rows, func(r *gaas.UsageRow, rs *sql.Rows, k *usageScan) error {
		var sums [7]sql.NullInt64
		dest := k.dest()
		for i := range sums {
			dest = append(dest, &sums[i])
		}
		if err := rs.Scan(dest...); err != nil {
			return err
		}
		r.Charged, r.Returned, r.GPUHours = gaas.Credits(sums[0].Int64), gaas.Credits(sums[1].Int64), gaas.Hours(sums[2].Int64)
		for i, st := range gaas.FinalStatuses() {
			r.Jobs[st] = int(sums[3+i].Int64)
		}
		return nil
	})
}

// rollUp brings usage_rollup up to the days that ended rollupMargin ago,
// and the months that those days complete, by at most maxDays days, in
// transactions of at most rollupChunk days, and returns how many days it
// rolled up. It waits for a roll-up of this process under way.
func (s *ReportService) rollUp(ctx context.Context, maxDays int) (int, error) {
	s.rolling.Lock()
	defer s.rolling.Unlock()
	return s.rollUpLocked(ctx, maxDays)
}

// tryRollUp is rollUp unless a roll-up of this process is under way, when
// it does nothing.
func (s *ReportService) tryRollUp(ctx context.Context, maxDays int) (int, error) {
	if !s.rolling.TryLock() {
		return 0, nil
	}
	defer s.rolling.Unlock()
	return s.rollUpLocked(ctx, maxDays)
}

func (s *ReportService) rollUpLocked(ctx context.Context, maxDays int) (int, error) {
	closed := gaas.BucketDay.Start(s.db.now().Add(-rollupMargin))
	done := 0
	for {
		st, err := loadRollupState(ctx, s.db.r)
		if err != nil {
			return done, err
		}
		if st.days.IsZero() {
			if st.days, err = s.firstUsageDay(ctx, closed); err != nil {
				return done, err
			}
			st.months = gaas.BucketMonth.Start(st.days)
		}
		monthsBehind := st.months.Before(gaas.BucketMonth.Start(st.days))
		if (!st.days.Before(closed) || done >= maxDays) && !monthsBehind {
			return done, nil
		}
		to := st.days.AddDate(0, 0, min(rollupChunk, maxDays-done))
		if closed.Before(to) {
			to = closed
		}
		if to.Before(st.days) {
			to = st.days // only months to close
		}
		sums := &usageRows{m: make(map[usageKey]*gaas.UsageRow)}
		var bounds []ledgerDay
		if st.days.Before(to) {
			ids, err := ledgerBounds(ctx, s.db.r, st.days, to)
			if err != nil {
				return done, err
			}
			// The days to roll up have no bounds yet.
			if ids.upTo, err = ledgerCeiling(ctx, s.db.r, to); err != nil {
				return done, err
			}
			req := gaas.UsageRequest{From: st.days, To: to, Period: gaas.BucketDay, GroupBy: gaas.ReportGroups()}
			if err := s.ledgerUsage(ctx, s.db.r, req, ids, usageFilter{}, sums); err != nil {
				return done, err
			}
			if err := s.jobUsage(ctx, s.db.r, req, usageFilter{}, sums); err != nil {
				return done, err
			}
			if bounds, err = s.ledgerDays(ctx, ids, st.days, to); err != nil {
				return done, err
			}
		}
		err = s.db.tx(ctx, func(tx bun.Tx) error { return s.writeRollup(ctx, tx, st, to, sums, bounds) })
		if errors.Is(err, errRolledMeanwhile) {
			continue
		}
		if err != nil {
			return done, err
		}
		done += int(to.Sub(st.days) / (24 * time.Hour))
	}
}

// errRolledMeanwhile says another process rolled up the same days first.
var errRolledMeanwhile = errors.New("rolled up meanwhile")

// firstUsageDay is the day the first usage happened, or closed when none has.
func (s *ReportService) firstUsageDay(ctx context.Context, closed time.Time) (time.Time, error) {
	first := closed
	for _, q := range []string{
		// The first entry by id: none of the others is a margin older.
		"SELECT created_at FROM ledger WHERE job_id IS NOT NULL ORDER BY id LIMIT 1",
		"SELECT updated_at FROM jobs" + s.db.indexedBy("jobs_ended_at") + " WHERE " + ended("status") + " ORDER BY updated_at LIMIT 1",
	} {
		var at time.Time
		err := query(ctx, s.db.r, &at, q)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		} else if err != nil {
			return time.Time{}, err
		}
		if at = at.Add(-rollupMargin); at.Before(first) {
			first = gaas.BucketDay.Start(at)
		}
	}
	return first, nil
}

// writeRollup writes the sums of the days from st.days to to, and the
// months those days complete, and moves the state on, unless another
// process moved it first.
func (s *ReportService) writeRollup(ctx context.Context, tx bun.Tx, st rollupState, to time.Time, sums *usageRows, bounds []ledgerDay) error {
	months := st.months
	for !gaas.BucketMonth.Next(months).After(to) {
		months = gaas.BucketMonth.Next(months)
	}
	res, err := exec(ctx, tx, "UPDATE usage_rollup_state SET days = ?, months = ? WHERE id = 1 AND days = ? AND months = ?",
		to.Format(dayLayout), months.Format(monthLayout), st.raw[0], st.raw[1])
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n != 1 {
		return errRolledMeanwhile
	}
	const cols = 12
	args := make([]any, 0, cols*len(sums.m))
	for k, r := range sums.m {
		args = append(args, "day", k.period.Format(dayLayout), k.user, k.project, k.gpuType, int64(r.Charged), int64(r.Returned), int64(r.GPUHours))
		for _, st := range gaas.FinalStatuses() {
			args = append(args, r.Jobs[st])
		}
	}
	const perStatement = 64
	for len(args) > 0 {
		n := min(len(args)/cols, perStatement)
		row := "(" + strings.TrimSuffix(strings.Repeat("?, ", cols), ", ") + ")"
		if _, err := exec(ctx, tx, "INSERT INTO usage_rollup (grain, period, user_id, project_id, gpu_type, charged, returned, gpu_hours,"+
			" completed, failed, rejected, cancelled) VALUES "+strings.TrimSuffix(strings.Repeat(row+", ", n), ", "), args[:n*cols]...); err != nil {
			return err
		}
		args = args[n*cols:]
	}
	for _, b := range bounds {
		if _, err := exec(ctx, tx, "INSERT INTO usage_ledger_days (day, last_id) VALUES (?, ?) ON CONFLICT (day) DO NOTHING",
			b.day.Format(dayLayout), b.lastID); err != nil {
			return err
		}
	}
	// The site's own rows of the days, and of the months the days closed.
	if err := rollupFrom(ctx, tx, "site-day", "period", "0, 0", "day", st.days.Format(dayLayout), to.Format(dayLayout)); err != nil {
		return err
	}
	if !st.months.Before(months) {
		return nil
	}
	from, upTo := st.months.Format(dayLayout), months.Format(dayLayout)
	if err := rollupFrom(ctx, tx, "month", "substr(period, 1, 7)", "user_id, project_id", "day", from, upTo); err != nil {
		return err
	}
	return rollupFrom(ctx, tx, "site-month", "period", "0, 0", "month", st.months.Format(monthLayout), months.Format(monthLayout))
}

// rollupFrom writes rows of grain that sum those of grain source in
// [from, to), by period (the text that period gives) and GPU type, and
// by user and project unless who is "0, 0" (the site's own rows).
func rollupFrom(ctx context.Context, tx bun.Tx, grain, period, who, source, from, to string) error {
	groupBy := period + ", gpu_type"
	if who != "0, 0" {
		groupBy = period + ", " + who + ", gpu_type"
	}
	_, err := exec(ctx, tx, "INSERT INTO usage_rollup (grain, period, user_id, project_id, gpu_type, charged, returned, gpu_hours,"+
		" completed, failed, rejected, cancelled)"+
		" SELECT ?, "+period+", "+who+", gpu_type, SUM(charged), SUM(returned), SUM(gpu_hours),"+
		" SUM(completed), SUM(failed), SUM(rejected), SUM(cancelled)"+
		" FROM usage_rollup WHERE grain = ? AND period >= ? AND period < ?"+
		" GROUP BY "+groupBy, grain, source, from, to)
	return err
}

// idBounds keep the ledger entries with ids in (after, upTo]; upTo 0 is
// no upper bound.
type idBounds struct{ after, upTo int64 }

func (b idBounds) where() (string, []any) {
	if b.upTo == 0 {
		return "l.id > ?", []any{b.after}
	}
	return "l.id > ? AND l.id <= ?", []any{b.after, b.upTo}
}

// ledgerBounds are the ids between which the entries written in [from,
// to) are, as far as usage_ledger_days knows: above the bound of the day
// before from's, and at most that of the first day from to on.
func ledgerBounds(ctx context.Context, idb bun.IDB, from, to time.Time) (idBounds, error) {
	var b idBounds
	before := gaas.BucketDay.Start(from).AddDate(0, 0, -1).Format(dayLayout)
	err := query(ctx, idb, &b.after, "SELECT last_id FROM usage_ledger_days WHERE day <= ? ORDER BY day DESC LIMIT 1", before)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return b, err
	}
	end := startOnOrAfter(gaas.BucketDay, to)
	err = query(ctx, idb, &b.upTo, "SELECT last_id FROM usage_ledger_days WHERE day >= ? ORDER BY day LIMIT 1", end.Format(dayLayout))
	if errors.Is(err, sql.ErrNoRows) {
		// Days not rolled up yet: as far as the times of the entries say.
		b.upTo, err = ledgerCeiling(ctx, idb, to)
	}
	return b, err
}

// ledgerCeiling is an id of the ledger after which every entry was
// written at t or later, so that the entries written before t are read by
// id up to it rather than to the end of the ledger; 0 (no bound) when no
// entry was written rollupMargin after t. An entry written at or after
// t+rollupMargin was inserted then, and every entry inserted after it, with
// a larger id, was written less than rollupMargin before its insert: at t
// or later. Any such entry will do; ids are bisected, by primary key, for
// one of the first.
func ledgerCeiling(ctx context.Context, idb bun.IDB, t time.Time) (int64, error) {
	target := t.Add(rollupMargin)
	type entry struct {
		ID int64     `bun:"id"`
		At time.Time `bun:"created_at"`
	}
	var last entry
	err := query(ctx, idb, &last, "SELECT id, created_at FROM ledger ORDER BY id DESC LIMIT 1")
	if errors.Is(err, sql.ErrNoRows) || err == nil && last.At.Before(target) {
		return 0, nil
	} else if err != nil {
		return 0, err
	}
	// best was written at target or later; the ids in (lo, top) are
	// still to search.
	best, lo, top := last.ID, int64(0), last.ID
	for lo+1 < top {
		mid := lo + (top-lo)/2
		var e entry
		if err := query(ctx, idb, &e, "SELECT id, created_at FROM ledger WHERE id >= ? ORDER BY id LIMIT 1", mid); err != nil {
			return 0, err
		}
		switch {
		case e.ID >= top: // no entry in [mid, top)
			top = mid
		case !e.At.Before(target):
			best, top = e.ID, e.ID
		default:
			lo = e.ID
		}
	}
	return best, nil
}

// ledgerDay is the bound usage_ledger_days keeps of a day.
type ledgerDay struct {
	day    time.Time
	lastID int64
}

// ledgerDays are the bounds of the days from to to, both included: for
// each, the largest id of an entry of a job written before it. Every entry
// with a larger id than ids.after was written after the days before from,
// and every one written before to has an id within ids.
func (s *ReportService) ledgerDays(ctx context.Context, ids idBounds, from, to time.Time) ([]ledgerDay, error) {
	after := ids.after
	where, args := ids.where()
	rs, err := queryRows(ctx, s.db.r, "SELECT "+s.db.dateText("l.created_at")(false)+", max(l.id) FROM ledger l"+
		" WHERE "+where+" AND l.job_id IS NOT NULL AND l.created_at < ? GROUP BY "+s.db.dateText("l.created_at")(false), append(args, to)...)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	last := map[time.Time]int64{}
	for rs.Next() {
		var day string
		var id int64
		if err := rs.Scan(&day, &id); err != nil {
			return nil, err
		}
		d, err := time.Parse(dayLayout, day)
		if err != nil {
			return nil, err
		}
		last[d] = id
	}
	if err := rs.Err(); err != nil {
		return nil, err
	}
	var out []ledgerDay
	for b := from; !b.After(to); b = gaas.BucketDay.Next(b) {
		id := after
		for d, n := range last {
			if d.Before(b) && n > id {
				id = n
			}
		}
		out = append(out, ledgerDay{day: b, lastID: id})
	}
	return out, nil
}
