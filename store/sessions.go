package store

import (
	"context"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"github.com/gaas-io/gaas/authn"
	"github.com/gaas-io/gaas/gaas"
)

// Sessions keeps the portal's sign-ins (authn.SessionStore), for authn
// only: it checks no caller and no password. A session is found by the
// hash of its token; the token itself is never stored.
type Sessions struct{ db *DB }

var _ authn.SessionStore = (*Sessions)(nil)

type sessionRow struct {
	ID         int64     `bun:"id"`
	UserID     int64     `bun:"user_id"`
	Generation int64     `bun:"token_generation"`
	CSRFSecret string    `bun:"csrf_secret"`
	CreatedAt  time.Time `bun:"created_at"`
	ExpiresAt  time.Time `bun:"expires_at"`
	LastSeenAt time.Time `bun:"last_seen_at"`
}

func (r sessionRow) session() gaas.Session {
	return gaas.Session{ID: r.ID, UserID: r.UserID, Generation: r.Generation, CSRFSecret: r.CSRFSecret,
		CreatedAt: r.CreatedAt.UTC(), ExpiresAt: r.ExpiresAt.UTC(), LastSeenAt: r.LastSeenAt.UTC()}
}

const sessionColumns = "s.id, s.user_id, s.token_generation, s.csrf_secret, s.created_at, s.expires_at, s.last_seen_at"

// sessionSeenStep is how stale a session's last_seen_at may grow before a
// look-up writes it again: a page view a write would be work for nothing.
const sessionSeenStep = time.Minute

// CreateSession stores a session of in.UserID, begun now at token
// generation in.Generation with in.CSRFSecret, and expiring ttl from now,
// under tokenHash.
// It also deletes the sessions that have expired, everyone's: sign-ins are
// few, and that keeps the table to the sessions that can still be used;
// and the user's oldest beyond gaas.MaxSessionsPerUser, with this one.
func (s *Sessions) CreateSession(ctx context.Context, tokenHash string, in gaas.Session, ttl time.Duration) (gaas.Session, error) {
	now := s.db.timestamp()
	r := sessionRow{UserID: in.UserID, Generation: in.Generation, CSRFSecret: in.CSRFSecret,
		CreatedAt: now, ExpiresAt: now.Add(ttl), LastSeenAt: now}
	err := s.db.tx(ctx, func(tx bun.Tx) error {
		if _, err := exec(ctx, tx, "DELETE FROM sessions WHERE expires_at <= ?", now); err != nil {
			return err
		}
		if _, err := exec(ctx, tx, "DELETE FROM sessions WHERE user_id = ? AND id NOT IN"+
			" (SELECT id FROM sessions WHERE user_id = ? ORDER BY id DESC LIMIT ?)", r.UserID, r.UserID, gaas.MaxSessionsPerUser-1); err != nil {
			return err
		}
		return query(ctx, tx, &r.ID, "INSERT INTO sessions (user_id, token_hash, token_generation, csrf_secret, created_at, expires_at, last_seen_at)"+
			" VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
			r.UserID, tokenHash, r.Generation, r.CSRFSecret, r.CreatedAt, r.ExpiresAt, r.LastSeenAt)
	})
	if err != nil {
		return gaas.Session{}, fmt.Errorf("store: create session of user %d: %w", in.UserID, mapErr(err))
	}
	return r.session(), nil
}

// SessionByTokenHash returns the unexpired session stored under tokenHash
// and its user as stored now (without their balance), whatever the user's
// standing: deciding whether that still admits the session is authn's.
// An unknown or expired session is gaas.ErrNotFound.
func (s *Sessions) SessionByTokenHash(ctx context.Context, tokenHash string) (gaas.Session, gaas.User, error) {
	now := s.db.timestamp()
	var row struct {
		sessionRow
		Username  string    `bun:"username"`
		Role      string    `bun:"role"`
		AccountID int64     `bun:"account_id"`
		UserSince time.Time `bun:"user_created_at"`
		Disabled  bool      `bun:"disabled"`
		UserGen   int64     `bun:"user_generation"`
	}
	err := query(ctx, s.db.r, &row, "SELECT "+sessionColumns+", u.username, u.role,"+
		" (SELECT a.id FROM accounts a WHERE a.user_id = u.id) AS account_id, u.created_at AS user_created_at, u.disabled,"+
		" u.token_generation AS user_generation"+
		" FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = ? AND s.expires_at > ?", tokenHash, now)
	if err != nil {
		return gaas.Session{}, gaas.User{}, fmt.Errorf("store: session: %w", mapErr(err))
	}
	if now.Sub(row.LastSeenAt) >= sessionSeenStep {
		err := s.db.tx(ctx, func(tx bun.Tx) error {
			_, err := exec(ctx, tx, "UPDATE sessions SET last_seen_at = ? WHERE id = ?", now, row.ID)
			return err
		})
		if err != nil {
			return gaas.Session{}, gaas.User{}, fmt.Errorf("store: session: %w", mapErr(err))
		}
		row.LastSeenAt = now
	}
	u := userRow{ID: row.UserID, Username: row.Username, Role: row.Role, AccountID: row.AccountID,
		CreatedAt: row.UserSince, Disabled: row.Disabled, Generation: row.UserGen}
	return row.sessionRow.session(), u.user(), nil
}

// DeleteSession deletes the session stored under tokenHash, if there is one.
func (s *Sessions) DeleteSession(ctx context.Context, tokenHash string) error {
	err := s.db.tx(ctx, func(tx bun.Tx) error {
		_, err := exec(ctx, tx, "DELETE FROM sessions WHERE token_hash = ?", tokenHash)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: delete session: %w", mapErr(err))
	}
	return nil
}

// DeleteSessions deletes every session of user id.
func (s *Sessions) DeleteSessions(ctx context.Context, id int64) error {
	err := s.db.tx(ctx, func(tx bun.Tx) error {
		_, err := exec(ctx, tx, "DELETE FROM sessions WHERE user_id = ?", id)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: delete sessions of user %d: %w", id, mapErr(err))
	}
	return nil
}
