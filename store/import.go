package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/uptrace/bun"

	"github.com/gaas-io/gaas/gaas"
)

// ImportOptions steer ImportFastAPI.
type ImportOptions struct {
	// Merge allows importing into a database that already holds users, as
	// long as no id and no username (in any letter case) collides.
	Merge bool
	// Rename maps old usernames, exactly as stored, to new ones: the way to
	// resolve usernames that differ only in letter case, which the old
	// service allowed and gaas does not.
	Rename map[string]string
	// Progress, when not nil, is called as rows are written, with the
	// number of users and jobs written so far (increasing, ending at total)
	// and the number to write; nil means nothing is reported. It runs on
	// the importing goroutine, inside the import's transaction, so it
	// should return quickly.
	Progress func(done, total int)
}

// progressEvery is how many rows an import writes between two calls of
// ImportOptions.Progress.
const progressEvery = 1000

// ImportReport says what an import did, and every anomaly in the old data
// with what was done about it.
type ImportReport struct {
	Users, Jobs, Charged int
	// Refunded counts the REJECTED and CANCELLED jobs whose charge is
	// followed by a refund in the ledger.
	Refunded  int
	Anomalies []string
}

// oldUser and oldJob are rows of the FastAPI service's schema, where every
// column may be NULL.
type oldUser struct {
	ID       int64           `bun:"id"`
	Username sql.NullString  `bun:"username"`
	Hash     sql.NullString  `bun:"password_hash"`
	Role     sql.NullString  `bun:"role"`
	Quota    sql.NullFloat64 `bun:"gpu_hours_quota"`
}

type oldJob struct {
	ID      int64           `bun:"id"`
	UserID  sql.NullInt64   `bun:"user_id"`
	Command sql.NullString  `bun:"command"`
	GPUType sql.NullString  `bun:"gpu_type"`
	Hours   sql.NullFloat64 `bun:"estimated_hours"`
	Status  sql.NullString  `bun:"status"`
}

// ErrImport is returned when the old data cannot be imported as it is; the
// error says why and what option resolves it. Nothing has been written.
var ErrImport = errors.New("cannot import")

// HoursFromFloat converts a float number of hours from the old service to
// Hours by the import's rule: the nearest milli-hour, halves away from
// zero. ok is false for NaN, infinities and magnitudes beyond MaxHours.
// The old service's float drift disappears: 6.200000000000001 is 6.2.
func HoursFromFloat(f float64) (h gaas.Hours, ok bool) {
	if math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > float64(gaas.MaxHours/gaas.Hour) {
		return 0, false
	}
	return gaas.Hours(math.Round(f * float64(gaas.Hour))), true
}

// ImportFastAPI copies the users and jobs of a database written by the
// original FastAPI service (the SQLite file at fromPath, opened read-only)
// into this store, in one transaction: everything or nothing.
//
// Ids are kept. Password hashes are kept as they are (passlib's
// pbkdf2_sha256 verifies here). Only the exact role "admin" imports as
// admin. Balances and job hours become Hours by HoursFromFloat; a NULL,
// NaN or negative balance imports as 0. Each user's ledger starts with a
// "set" entry, the opening balance, followed by a charge for each of their
// jobs, and right after it a refund of the whole charge for a REJECTED or
// CANCELLED job, ending at the old balance, which already holds those
// hours: Check finds every job charged and refunded as its status says,
// and rejecting an imported job refunds it as it would a new one. Should
// the old balance be too low for a refunded job's charge to have been paid
// before its refund, the opening balance is raised by the shortfall and a
// closing "set" entry takes it back, so that no balance in the ledger is
// negative. A job whose hours are NULL, NaN, not positive or below a
// milli-hour is imported with 0 hours and a charge of 0: it can never
// refund anything. Text that is not valid UTF-8 has each bad sequence
// replaced by U+FFFD. Every such correction is in the report.
//
// It refuses a store that already holds users unless opts.Merge, and then
// any user id, username or job id that collides; ids of 0 or below; text
// the database cannot hold (a NUL or another control character), named by
// row and field; and usernames that differ only in letter case, unless
// opts.Rename resolves them. Running it twice never doubles anything. Its
// ledger entries are made by the system, as gaas.SystemImport.
func (db *DB) ImportFastAPI(ctx context.Context, fromPath string, opts ImportOptions) (ImportReport, error) {
	var rep ImportReport
	users, jobs, err := readFastAPI(ctx, fromPath)
	if err != nil {
		return rep, err
	}
	plan, err := planImport(users, jobs, opts, &rep)
	if err != nil {
		return rep, err
	}
	now := db.timestamp()
	imported := actor(gaas.System(gaas.SystemImport)) // every entry the import writes
	err = db.tx(ctx, func(tx bun.Tx) error {
		var existing []struct {
			ID       int64  `bun:"id"`
			Username string `bun:"username"`
		}
		if err := tx.NewRaw("SELECT id, username FROM users").Scan(ctx, &existing); err != nil {
			return err
		}
		if len(existing) > 0 && !opts.Merge {
			return fmt.Errorf("%w: the target database already holds %d users; use merge to add to them", ErrImport, len(existing))
		}
		var clashes []string
		for _, e := range existing {
			if u, ok := plan.byID[e.ID]; ok {
				clashes = append(clashes, fmt.Sprintf("id %d (%s here, %s imported)", e.ID, e.Username, u.username))
			}
			if u, ok := plan.byName[strings.ToLower(e.Username)]; ok {
				clashes = append(clashes, fmt.Sprintf("username %s (id %d here, id %d imported)", e.Username, e.ID, u.id))
			}
		}
		jobClashes, err := clashingJobs(ctx, tx, plan.jobs)
		if err != nil {
			return err
		}
		clashes = append(clashes, jobClashes...)
		if len(clashes) > 0 {
			return fmt.Errorf("%w: already in the target: %s", ErrImport, strings.Join(clashes, "; "))
		}
		total, done := len(plan.users)+len(plan.jobs), 0
		progress := func() {
			done++
			if opts.Progress != nil && (done%progressEvery == 0 || done == total) {
				opts.Progress(done, total)
			}
		}
		// Each user's hours become credits at rate 1 in their default
		// allocation, which every imported entry changes.
		type holder struct{ account, allocation int64 }
		holders := map[int64]holder{}
		record := func(userID int64, jobID *int64, kind gaas.LedgerKind, delta gaas.Credits, reason string) error {
			h := holders[userID]
			return change(ctx, tx, entry{AccountID: h.account, AllocationID: h.allocation, JobID: jobID, Actor: imported,
				Kind: kind, Delta: delta, Reason: reason, At: now})
		}
		for _, u := range plan.users {
			if _, err := exec(ctx, tx,
				"INSERT INTO users (id, username, password_hash, role, created_at) VALUES (?, ?, ?, ?, ?)",
				u.id, u.username, u.hash, string(u.role), now); err != nil {
				return err
			}
			account, allocation, err := newAccount(ctx, tx, &u.id, 0, gaas.System(gaas.SystemImport), now)
			if err != nil {
				return err
			}
			holders[u.id] = holder{account, allocation}
			if err := record(u.id, nil, gaas.LedgerSet, gaas.CreditsOf(u.opening), "opening balance imported from the FastAPI service"); err != nil {
				return err
			}
			progress()
		}
		for _, j := range plan.jobs {
			h, cost := holders[j.userID], gaas.CreditsOf(j.hours)
			draws := ""
			if cost > 0 {
				draws = encodeDraws([]gaas.Draw{{AllocationID: h.allocation, Amount: cost}})
			}
			if _, err := exec(ctx, tx,
				"INSERT INTO jobs (id, user_id, account_id, command, gpu_type, gpu_count, estimated, rate, cost, draws, status, created_at, updated_at)"+
					" VALUES (?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?)",
				j.id, j.userID, h.account, j.command, j.gpuType, int64(j.hours), int64(gaas.RateOne), int64(cost), draws,
				string(j.status), now, now); err != nil {
				return err
			}
			if cost > 0 {
				reason := fmt.Sprintf("job %d imported from the FastAPI service", j.id)
				if err := record(j.userID, &j.id, gaas.LedgerCharge, -cost, reason); err != nil {
					return err
				}
			}
			if j.refunded() && cost > 0 {
				reason := fmt.Sprintf("job %d was %s in the FastAPI service", j.id, strings.ToLower(string(j.status)))
				if err := record(j.userID, &j.id, gaas.LedgerRefund, cost, reason); err != nil {
					return err
				}
			}
			progress()
		}
		for _, u := range plan.users {
			if u.shortfall == 0 {
				continue
			}
			if err := record(u.id, nil, gaas.LedgerSet, -gaas.CreditsOf(u.shortfall), "balance imported from the FastAPI service"); err != nil {
				return err
			}
		}
		if db.postgres {
			// Ids were given, so the identity sequences must catch up.
			for _, table := range []string{"users", "jobs"} {
				if _, err := tx.ExecContext(ctx, fmt.Sprintf(
					"SELECT setval(pg_get_serial_sequence('%[1]s', 'id'), (SELECT COALESCE(max(id), 0) + 1 FROM %[1]s), false)", table)); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		if !errors.Is(err, ErrImport) {
			err = fmt.Errorf("store: import: %w", mapErr(err))
		}
		return ImportReport{Anomalies: rep.Anomalies}, err
	}
	return rep, nil
}

type importUser struct {
	id       int64
	username string
	hash     string
	role     gaas.Role
	opening  gaas.Hours // the balance before the imported jobs' charges
	// shortfall is what the opening balance holds beyond the old balance
	// plus the charges that were not refunded, so that no charge takes the
	// balance below zero before its refund; a closing entry takes it back.
	shortfall gaas.Hours
}

type importJob struct {
	id, userID       int64
	command, gpuType string
	hours            gaas.Hours
	status           gaas.JobStatus
}

// refunded reports whether the job's charge is followed by its refund: the
// old service kept no ledger, so a REJECTED or CANCELLED job gets both.
func (j importJob) refunded() bool { return j.status.RefundsAll() && j.hours > 0 }

type importPlan struct {
	users  []importUser
	jobs   []importJob
	byID   map[int64]importUser
	byName map[string]importUser
}

// clashingJobs names the jobs of the plan, sorted by id, whose ids the
// target already holds. It reads only the target's ids in the plan's range,
// one at a time.
func clashingJobs(ctx context.Context, tx bun.Tx, jobs []importJob) ([]string, error) {
	if len(jobs) == 0 {
		return nil, nil
	}
	rows, err := queryRows(ctx, tx, "SELECT id FROM jobs WHERE id >= ? AND id <= ? ORDER BY id", jobs[0].id, jobs[len(jobs)-1].id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	const named = 20
	var ids []string
	n, k := 0, 0
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		// Both lists are in order of id: walk them together.
		for k < len(jobs) && jobs[k].id < id {
			k++
		}
		if k == len(jobs) || jobs[k].id != id {
			continue
		}
		if n++; n <= named {
			ids = append(ids, fmt.Sprint(id))
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	switch {
	case n == 0:
		return nil, nil
	case n > named:
		ids = append(ids, fmt.Sprintf("and %d more", n-named))
	}
	return []string{fmt.Sprintf("job ids %s", strings.Join(ids, ", "))}, nil
}

func readFastAPI(ctx context.Context, path string) ([]oldUser, []oldJob, error) {
	src, err := openReadOnly(path)
	if err != nil {
		return nil, nil, err
	}
	defer src.Close()
	var users []oldUser
	var jobs []oldJob
	if err := src.NewRaw("SELECT id, username, password_hash, role, gpu_hours_quota FROM users ORDER BY id").Scan(ctx, &users); err != nil {
		return nil, nil, fmt.Errorf("store: import: read users of %s: %w", path, err)
	}
	if err := src.NewRaw("SELECT id, user_id, command, gpu_type, estimated_hours, status FROM jobs ORDER BY id").Scan(ctx, &jobs); err != nil {
		return nil, nil, fmt.Errorf("store: import: read jobs of %s: %w", path, err)
	}
	return users, jobs, nil
}

// planImport checks and converts the old rows, reporting each anomaly, and
// fails on what cannot be imported without a decision.
func planImport(users []oldUser, jobs []oldJob, opts ImportOptions, rep *ImportReport) (importPlan, error) {
	report := func(format string, args ...any) { rep.Anomalies = append(rep.Anomalies, fmt.Sprintf(format, args...)) }
	plan := importPlan{byID: map[int64]importUser{}, byName: map[string]importUser{}}
	renamed := map[string]bool{}
	var problems []string
	for _, o := range users {
		u := importUser{id: o.ID, username: o.Username.String, hash: o.Hash.String, role: gaas.RoleUser}
		if u.id <= 0 {
			problems = append(problems, fmt.Sprintf("user %d: ids must be 1 or more; give the user another id", u.id))
		}
		var bad int
		if u.username, bad = validUTF8(u.username); bad >= 0 {
			report("user %d: username %q: invalid UTF-8 at byte %d replaced with U+FFFD", u.id, u.username, bad)
		}
		// A rename names the old username as stored, or as it reads once
		// invalid UTF-8 is replaced.
		from := o.Username.String
		if _, ok := opts.Rename[from]; !ok {
			from = u.username
		}
		if to, ok := opts.Rename[from]; ok && o.Username.Valid {
			report("user %d: renamed from %s to %s", u.id, shown(u.username), to)
			renamed[from] = true
			u.username = to
		}
		name := shown(u.username)
		if err := gaas.ValidateUsername(u.username); err != nil {
			problems = append(problems, fmt.Sprintf("user %d: username %q is not valid here (%v); rename it", u.id, u.username, err))
		}
		if other, ok := plan.byName[strings.ToLower(u.username)]; ok {
			problems = append(problems, fmt.Sprintf("users %d (%s) and %d (%s) differ only in letter case; rename one, e.g. %s=%s%d",
				other.id, shown(other.username), u.id, name, name, shown(strings.ToLower(u.username)), u.id))
		}
		switch role := o.Role.String; {
		case o.Role.Valid && role == string(gaas.RoleAdmin):
			u.role = gaas.RoleAdmin
		case !o.Role.Valid || role != string(gaas.RoleUser):
			report("user %d (%s): role %q is not a role here; imported as user", u.id, name, nullText(o.Role))
		}
		if u.hash, bad = validUTF8(u.hash); bad >= 0 {
			report("user %d (%s): password_hash: invalid UTF-8 at byte %d replaced with U+FFFD", u.id, name, bad)
		}
		if err := gaas.ValidateControls("password_hash", u.hash, false); err != nil {
			problems = append(problems, fmt.Sprintf("user %d (%s): %v; correct the row", u.id, name, err))
		}
		if !strings.HasPrefix(u.hash, "$pbkdf2-sha256$") {
			report("user %d (%s): the password hash is not pbkdf2_sha256; the account cannot log in until an admin resets it", u.id, name)
		}
		switch h, ok := HoursFromFloat(o.Quota.Float64); {
		case !o.Quota.Valid || math.IsNaN(o.Quota.Float64):
			report("user %d (%s): balance %s is not a number; imported as 0", u.id, name, nullFloat(o.Quota))
		case !ok && o.Quota.Float64 > 0:
			problems = append(problems, fmt.Sprintf("user %d (%s): balance %v is above the maximum of %s hours", u.id, name, o.Quota.Float64, gaas.MaxHours))
		case !ok || h < 0:
			report("user %d (%s): balance %s is negative; imported as 0", u.id, name, nullFloat(o.Quota))
		default:
			if float64(h)/float64(gaas.Hour) != o.Quota.Float64 {
				report("user %d (%s): balance %v rounded to %s", u.id, name, o.Quota.Float64, h)
			}
			u.opening = h
		}
		plan.users = append(plan.users, u)
		plan.byID[u.id] = u
		plan.byName[strings.ToLower(u.username)] = u
	}
	for from := range opts.Rename {
		if !renamed[from] {
			problems = append(problems, fmt.Sprintf("rename %s: no user is called %s", from, from))
		}
	}
	index := map[int64]int{}
	for i, u := range plan.users {
		index[u.id] = i
	}
	// What each user's imported entries have taken from their balance, after
	// the jobs so far and at most.
	taken := make([]struct{ now, peak gaas.Hours }, len(plan.users))
	for _, o := range jobs {
		j := importJob{id: o.ID, userID: o.UserID.Int64, command: o.Command.String, gpuType: o.GPUType.String, status: gaas.JobStatus(o.Status.String)}
		if j.id <= 0 {
			problems = append(problems, fmt.Sprintf("job %d: ids must be 1 or more; give the job another id", j.id))
		}
		i, ok := index[j.userID]
		if !o.UserID.Valid || !ok {
			problems = append(problems, fmt.Sprintf("job %d: belongs to user %s, who does not exist", j.id, nullInt(o.UserID)))
			continue
		}
		if !j.status.Valid() {
			problems = append(problems, fmt.Sprintf("job %d: status %q is not a status here", j.id, nullText(o.Status)))
		}
		if !o.Command.Valid || !o.GPUType.Valid {
			report("job %d: command or gpu_type is NULL; imported as empty text", j.id)
		}
		var bad int
		if j.command, bad = validUTF8(j.command); bad >= 0 {
			report("job %d: command: invalid UTF-8 at byte %d replaced with U+FFFD", j.id, bad)
		}
		if j.gpuType, bad = validUTF8(j.gpuType); bad >= 0 {
			report("job %d: gpu_type: invalid UTF-8 at byte %d replaced with U+FFFD", j.id, bad)
		}
		if err := errors.Join(gaas.ValidateControls("command", j.command, true), gaas.ValidateControls("gpu_type", j.gpuType, false)); err != nil {
			problems = append(problems, fmt.Sprintf("job %d: %v; correct the row", j.id, err))
		}
		switch h, ok := HoursFromFloat(o.Hours.Float64); {
		case !o.Hours.Valid || math.IsNaN(o.Hours.Float64):
			report("job %d: estimated hours %s are not a number; imported with 0 hours, nothing charged", j.id, nullFloat(o.Hours))
		case !ok && o.Hours.Float64 > 0:
			problems = append(problems, fmt.Sprintf("job %d: estimated hours %v are above the maximum of %s", j.id, o.Hours.Float64, gaas.MaxHours))
		case !ok || h <= 0:
			report("job %d: estimated hours %v are not positive; imported with 0 hours, nothing charged", j.id, o.Hours.Float64)
		default:
			if float64(h)/float64(gaas.Hour) != o.Hours.Float64 {
				report("job %d: estimated hours %v rounded to %s", j.id, o.Hours.Float64, h)
			}
			j.hours = h
			rep.Charged++
		}
		t := &taken[i]
		t.now += j.hours
		t.peak = max(t.peak, t.now)
		if j.refunded() {
			// The old balance already holds the hours, and stays.
			t.now -= j.hours
			rep.Refunded++
			report("job %d: %s with no refund on record; its %s hours are charged and refunded, and the balance stays the old one", j.id, j.status, j.hours)
		}
		plan.jobs = append(plan.jobs, j)
	}
	for i := range plan.users {
		u, t := &plan.users[i], taken[i]
		// The opening balance is the old one plus what the entries take
		// from it, and more if a charge would otherwise take it below zero
		// before its refund.
		old := u.opening
		u.opening += t.now
		if short := t.peak - t.now - old; short > 0 {
			u.opening += short
			u.shortfall = short
			report("user %d (%s): a balance of %s cannot have paid for the charges before their refunds; the ledger opens %s hours higher and a closing set entry takes them back",
				u.id, shown(u.username), old, short)
		}
		if u.opening > gaas.MaxHours {
			problems = append(problems, fmt.Sprintf("user %d (%s): %s hours is above the maximum", u.id, shown(u.username), u.opening))
		}
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return plan, fmt.Errorf("%w:\n  %s", ErrImport, strings.Join(problems, "\n  "))
	}
	for _, u := range plan.users {
		plan.byID[u.id] = u
		plan.byName[strings.ToLower(u.username)] = u
	}
	rep.Users, rep.Jobs = len(plan.users), len(plan.jobs)
	return plan, nil
}

// validUTF8 returns s with each invalid UTF-8 sequence replaced by U+FFFD,
// and the byte at which the first was, or -1 when s is valid.
func validUTF8(s string) (string, int) {
	for i, r := range s {
		if r == utf8.RuneError {
			if _, n := utf8.DecodeRuneInString(s[i:]); n == 1 {
				return strings.ToValidUTF8(s, "\uFFFD"), i
			}
		}
	}
	return s, -1
}

// shown is a username of the old data as a message shows it: as it is when
// it is valid here, quoted otherwise, so that no control character reaches
// a terminal or a log.
func shown(username string) string {
	if gaas.ValidateUsername(username) != nil {
		return strconv.Quote(username)
	}
	return username
}

func nullText(s sql.NullString) string {
	if !s.Valid {
		return "NULL"
	}
	return s.String
}

func nullFloat(f sql.NullFloat64) string {
	if !f.Valid {
		return "NULL"
	}
	return fmt.Sprint(f.Float64)
}

func nullInt(i sql.NullInt64) string {
	if !i.Valid {
		return "NULL"
	}
	return fmt.Sprint(i.Int64)
}
