package store

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"time"

	"github.com/uptrace/bun"

	"github.com/gaas-io/gaas/gaas"
)

// hotStatements are the statements of a submission, prepared once: on the
// submit path SQLite spent a third of its time parsing the same SQL again.
// They take native placeholders, not bun's formatting.
//
// None of the writes uses RETURNING on SQLite: there it builds an
// ephemeral table, with a page cache of its own, for each execution, and
// the profile of the group commit showed those tables' allocations and the
// system calls behind them. A draw's row count says whether it applied,
// the ledger entry reads the new remaining and balance in its own INSERT
// ... SELECT, and the job's id is the last inserted row id. PostgreSQL has
// no last inserted id, so its insert returns the id.
type hotStatements struct {
	postgres bool
	stmts    [nHot]*sql.Stmt
}

// The hot statements, by index.
const (
	hotAccount = iota
	hotBegin
	hotGPUType
	hotAllocations
	hotDraw
	hotInsertJob
	hotInsertCharge
	nHot
)

var hotSQL = [nHot]string{
	hotAccount: "SELECT a.id, u.disabled, u.role, u.default_project_id FROM users u JOIN accounts a ON a.user_id = u.id WHERE u.id = ?",
	// On SQLite, where nothing is locked ahead, the caller, the GPU type
	// and the allocations of the caller's account in one statement: a row
	// for each allocation, or one with none.
	hotBegin: "SELECT a.id, u.disabled, u.role, u.default_project_id," +
		" g.name, g.rate, g.max_gpus_per_job, g.enabled, g.auto_approve, EXISTS (SELECT 1 FROM gpu_types)," +
		" al.id, al.amount, al.remaining, al.gpu_types, al.starts_at, al.expires_at" +
		" FROM users u JOIN accounts a ON a.user_id = u.id" +
		" LEFT JOIN gpu_types g ON lower(g.name) = lower(?)" +
		" LEFT JOIN allocations al ON al.account_id = a.id AND al.remaining > 0 AND (al.expires_at IS NULL OR al.expires_at > ?)" +
		" WHERE u.id = ?",
	// The type asked for, if the catalogue holds it, and whether the
	// catalogue holds any: one row either way, so that open mode costs no
	// second statement.
	hotGPUType: "SELECT g.name, g.rate, g.max_gpus_per_job, g.enabled, g.auto_approve, EXISTS (SELECT 1 FROM gpu_types)" +
		" FROM (SELECT 1) AS one LEFT JOIN gpu_types g ON lower(g.name) = lower(?)",
	hotAllocations: "SELECT id, amount, remaining, gpu_types, starts_at, expires_at FROM allocations" +
		" WHERE account_id = ? AND remaining > 0 AND (expires_at IS NULL OR expires_at > ?)",
	hotDraw: "UPDATE allocations SET remaining = remaining - ? WHERE id = ? AND remaining >= ?",
	hotInsertJob: "INSERT INTO jobs (user_id, account_id, project_id, command, gpu_type, gpu_count, estimated, rate, cost, draws, status, idempotency_key, created_at, updated_at)" +
		" VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
	hotInsertCharge: appendEntrySQL,
}

// hotTx is the hot statements bound to one transaction, each once for all
// the submissions of a batch, when first used.
type hotTx struct {
	prepared *hotStatements
	tx       bun.Tx
	bound    [nHot]*sql.Stmt

	// On PostgreSQL, the callers read and the accounts locked before the
	// batch is applied (JobService.lockBatch); nil on SQLite.
	callers map[int64]submitter
	locked  map[int64]bool

	// row is where begin scans: one for the batch, so that each
	// submission does not allocate a destination for every column.
	row beginRow
}

// beginRow is a row of hotBegin beyond what it fills in directly.
type beginRow struct {
	role      string
	id        *int64
	amount    sql.NullInt64
	remaining *int64
	scope     *string
	starts    *time.Time
	expires   *time.Time
}

func (h *hotStatements) in(tx bun.Tx) *hotTx {
	return &hotTx{prepared: h, tx: tx}
}

// stmt returns statement i bound to the transaction, binding it the first time.
func (h *hotTx) stmt(ctx context.Context, i int) *sql.Stmt {
	if h.bound[i] == nil {
		h.bound[i] = h.tx.Tx.StmtContext(ctx, h.prepared.stmts[i])
	}
	return h.bound[i]
}

// submitter is what a submission needs of its caller.
type submitter struct {
	account        int64 // their own
	disabled       bool
	role           gaas.Role
	defaultProject *int64
}

// principal is the submitter acting.
func (s submitter) principal(id int64) gaas.Principal {
	return gaas.Principal{UserID: id, Role: s.role, Disabled: s.disabled}
}

// caller reads the caller of a submission. A caller who does not exist is
// gaas.ErrNotFound.
func (h *hotTx) caller(ctx context.Context, user int64) (s submitter, err error) {
	var role string
	err = h.stmt(ctx, hotAccount).QueryRowContext(ctx, user).Scan(&s.account, &s.disabled, &role, &s.defaultProject)
	s.role = gaas.Role(role)
	return s, mapErr(err)
}

// priced is how a submission is priced: the type as the job records it,
// its rate, and whether its jobs are approved when submitted.
type priced struct {
	name string
	rate gaas.Rate
	auto bool
}

// price is priceFor with the lookup of the type prepared: the catalogue's
// spelling and rate of the type, or in open mode the type as asked at rate 1.
func (h *hotTx) price(ctx context.Context, name string, gpus int) (priced, error) {
	var found typeFound
	err := h.stmt(ctx, hotGPUType).QueryRowContext(ctx, typeLookup(name)).Scan(&found.Name, &found.Rate, &found.Max, &found.On, &found.Auto, &found.Exist)
	if err != nil {
		return priced{}, mapErr(err)
	}
	return h.priceOf(ctx, found, name, gpus)
}

// typeLookup is what a GPU type's name is looked up by: as lookupGPUType,
// no name of the catalogue is anything but ASCII, nor empty.
func typeLookup(name string) string {
	if !gaas.IsASCII(name) {
		return ""
	}
	return name
}

// typeFound is a lookup of a GPU type: its row when the catalogue holds
// it, and whether the catalogue holds any.
type typeFound struct {
	Name  *string
	Rate  *int64
	Max   *int
	On    *bool
	Auto  *bool
	Exist bool
}

// priceOf decides the type and rate of a job asking for name on gpus GPUs
// from the lookup of name.
func (h *hotTx) priceOf(ctx context.Context, found typeFound, name string, gpus int) (priced, error) {
	switch {
	case found.Name == nil && !found.Exist:
		return priced{name, gaas.RateOne, false}, nil // open mode
	case found.Name == nil:
		if err := unknownType(ctx, h.tx, "gpu_type", name); err != nil {
			return priced{}, err
		}
		return priced{name, gaas.RateOne, false}, nil // the catalogue emptied meanwhile: open mode
	}
	t := gpuTypeRow{Name: *found.Name, Rate: *found.Rate, MaxGPUsPerJob: *found.Max, Enabled: *found.On, AutoApprove: *found.Auto}
	switch {
	case !t.Enabled:
		return priced{}, gaas.Invalid("gpu_type", "%s is retired: it takes no new jobs", t.Name)
	case gpus > t.gpuType().GPUsAllowed():
		return priced{}, gaas.Invalid("gpu_count", "must be at most %d for %s", t.MaxGPUsPerJob, t.Name)
	}
	return priced{t.Name, gaas.Rate(t.Rate), t.AutoApprove}, nil
}

// begin is, on SQLite, hotBegin: the caller, the lookup of the GPU type
// asked for, and the allocations of the caller's own account that hold
// credits and have not ended at now. A caller who does not exist is
// gaas.ErrNotFound.
func (h *hotTx) begin(ctx context.Context, user int64, gpuType string, now time.Time) (s submitter, found typeFound, own []gaas.Allocation, err error) {
	rows, err := h.stmt(ctx, hotBegin).QueryContext(ctx, typeLookup(gpuType), now, user)
	if err != nil {
		return s, found, nil, mapErr(err)
	}
	defer rows.Close()
	n := 0
	r := &h.row
	for ; rows.Next(); n++ {
		*r = beginRow{}
		if err := rows.Scan(&s.account, &s.disabled, &r.role, &s.defaultProject, &found.Name, &found.Rate, &found.Max, &found.On, &found.Auto, &found.Exist,
			&r.id, &r.amount, &r.remaining, &r.scope, &r.starts, &r.expires); err != nil {
			return s, found, nil, mapErr(err)
		}
		s.role = gaas.Role(r.role)
		if r.id != nil {
			own = append(own, gaas.Allocation{ID: *r.id, Amount: gaas.Credits(r.amount.Int64), Remaining: gaas.Credits(*r.remaining),
				GPUTypes: decodeScope(r.scope), StartsAt: *r.starts, ExpiresAt: r.expires})
		}
	}
	if err := rows.Err(); err != nil {
		return s, found, nil, mapErr(err)
	}
	if n == 0 {
		return s, found, nil, fmt.Errorf("user %d: %w", user, gaas.ErrNotFound)
	}
	return s, found, own, nil
}

// allocations reads the allocations of an account that hold credits and
// have not ended at now, as gaas.PlanDraws needs them, with their amounts
// for the thresholds their draws may cross.
func (h *hotTx) allocations(ctx context.Context, account int64, now time.Time) ([]gaas.Allocation, error) {
	rows, err := h.stmt(ctx, hotAllocations).QueryContext(ctx, account, now)
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	var out []gaas.Allocation
	for rows.Next() {
		var (
			a       gaas.Allocation
			scope   *string
			expires *time.Time
		)
		if err := rows.Scan(&a.ID, &a.Amount, &a.Remaining, &scope, &a.StartsAt, &expires); err != nil {
			return nil, mapErr(err)
		}
		a.GPUTypes, a.ExpiresAt = decodeScope(scope), expires
		out = append(out, a)
	}
	return out, mapErr(rows.Err())
}

// draw takes a draw's credits from its allocation.
func (h *hotTx) draw(ctx context.Context, d gaas.Draw) error {
	res, err := h.stmt(ctx, hotDraw).ExecContext(ctx, int64(d.Amount), d.AllocationID, int64(d.Amount))
	if err != nil {
		return mapErr(err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n != 1 {
		// The account is locked and the allocation was just read: only a
		// write that ignored the lock could have changed it.
		return fmt.Errorf("allocation %d changed under its account's lock", d.AllocationID)
	}
	return nil
}

// insertJobRow inserts j and sets its id.
func (h *hotTx) insertJobRow(ctx context.Context, j *jobRow) error {
	stmt := h.stmt(ctx, hotInsertJob)
	args := []any{j.UserID, j.AccountID, j.ProjectID, j.Command, j.GPUType, j.GPUCount, j.Estimated, j.Rate, j.Cost, j.Draws,
		j.Status, j.IdempotencyKey, j.CreatedAt, j.UpdatedAt}
	if h.prepared.postgres {
		return stmt.QueryRowContext(ctx, args...).Scan(&j.ID)
	}
	res, err := stmt.ExecContext(ctx, args...)
	if err != nil {
		return err
	}
	j.ID, err = res.LastInsertId()
	return err
}

// recordCharge appends the ledger entry of draw d of job j's charge; member
// is the job's owner when it is charged to a project.
func (h *hotTx) recordCharge(ctx context.Context, j *jobRow, d gaas.Draw, member *int64) error {
	_, err := h.stmt(ctx, hotInsertCharge).ExecContext(ctx, entry{
		AccountID: j.AccountID, AllocationID: d.AllocationID, JobID: &j.ID, MemberID: member, Actor: byUser(j.UserID),
		Kind: gaas.LedgerCharge, Delta: -d.Amount, Reason: "job " + strconv.FormatInt(j.ID, 10) + " submitted", At: j.CreatedAt,
	}.args()...)
	return err
}

func (db *DB) prepareHot(ctx context.Context) error {
	db.hot.postgres = db.postgres
	for i, q := range hotSQL {
		if db.postgres && i == hotInsertJob {
			q += " RETURNING id"
		}
		if db.postgres {
			q = dollarPlaceholders(q)
		}
		s, err := db.w.DB.PrepareContext(ctx, q)
		if err != nil {
			return fmt.Errorf("store: prepare: %w", mapErr(err))
		}
		db.hot.stmts[i] = s
	}
	return nil
}

func (h *hotStatements) close() {
	for _, s := range h.stmts {
		if s != nil {
			s.Close()
		}
	}
}
