package store

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
)

// hotStatements are the statements of a submission, prepared once: on the
// submit path SQLite spent a third of its time parsing the same SQL again.
// They take native placeholders, not bun's formatting.
//
// None of them uses RETURNING on SQLite: there it builds an ephemeral table,
// with a page cache of its own, for each execution, and the profile of the
// group commit showed those tables' allocations and the system calls behind
// them. The charge's row count says whether it applied, the ledger entry
// reads the new balance in its own INSERT ... SELECT, and the job's id is
// the last inserted row id. PostgreSQL has no last inserted id, so its
// insert returns the id.
type hotStatements struct {
	postgres                        bool
	charge, insertJob, insertCharge *sql.Stmt
}

const (
	chargeSQL    = "UPDATE users SET balance = balance - ? WHERE id = ? AND balance >= ? AND NOT disabled"
	insertJobSQL = "INSERT INTO jobs (user_id, command, gpu_type, estimated, status, idempotency_key, created_at, updated_at)" +
		" VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
	insertChargeSQL = "INSERT INTO ledger (user_id, job_id, actor_id, kind, delta, balance, reason, created_at)" +
		" VALUES (?, ?, ?, 'charge', ?, (SELECT balance FROM users WHERE id = ?), ?, ?)"
)

// hotTx is the hot statements bound to one transaction, each once for all
// the submissions of a batch, when first used.
type hotTx struct {
	prepared                        *hotStatements
	tx                              *sql.Tx
	charge, insertJob, insertCharge *sql.Stmt
}

func (h *hotStatements) in(tx *sql.Tx) *hotTx {
	return &hotTx{prepared: h, tx: tx}
}

// bind returns stmt bound to the transaction, binding it the first time.
func (h *hotTx) bind(ctx context.Context, bound **sql.Stmt, stmt *sql.Stmt) *sql.Stmt {
	if *bound == nil {
		*bound = h.tx.StmtContext(ctx, stmt)
	}
	return *bound
}

// chargeUser takes amount from the user's balance if it holds that much,
// and reports whether it did.
func (h *hotTx) chargeUser(ctx context.Context, user, amount int64) (bool, error) {
	res, err := h.bind(ctx, &h.charge, h.prepared.charge).ExecContext(ctx, amount, user, amount)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// insertJobRow inserts j and sets its id.
func (h *hotTx) insertJobRow(ctx context.Context, j *jobRow) error {
	stmt := h.bind(ctx, &h.insertJob, h.prepared.insertJob)
	args := []any{j.UserID, j.Command, j.GPUType, j.Estimated, j.Status, j.IdempotencyKey, j.CreatedAt, j.UpdatedAt}
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

// recordCharge appends the ledger entry of job j's charge, with the
// owner's balance after it.
func (h *hotTx) recordCharge(ctx context.Context, j *jobRow) error {
	_, err := h.bind(ctx, &h.insertCharge, h.prepared.insertCharge).ExecContext(ctx,
		j.UserID, j.ID, j.UserID, -j.Estimated, j.UserID, "job "+strconv.FormatInt(j.ID, 10)+" submitted", j.CreatedAt)
	return err
}

func (db *DB) prepareHot(ctx context.Context) error {
	prep := func(q string) (*sql.Stmt, error) {
		if db.postgres {
			q = dollarPlaceholders(q)
		}
		return db.w.DB.PrepareContext(ctx, q)
	}
	db.hot.postgres = db.postgres
	insertJob := insertJobSQL
	if db.postgres {
		insertJob += " RETURNING id"
	}
	var err error
	if db.hot.charge, err = prep(chargeSQL); err == nil {
		if db.hot.insertJob, err = prep(insertJob); err == nil {
			db.hot.insertCharge, err = prep(insertChargeSQL)
		}
	}
	if err != nil {
		return fmt.Errorf("store: prepare: %w", mapErr(err))
	}
	return nil
}

func (h *hotStatements) close() {
	for _, s := range []*sql.Stmt{h.charge, h.insertJob, h.insertCharge} {
		if s != nil {
			s.Close()
		}
	}
}
