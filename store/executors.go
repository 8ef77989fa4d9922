package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"github.com/gaas-io/gaas/authn"
	"github.com/gaas-io/gaas/gaas"
)

// ExecutorService implements gaas.ExecutorAccounts: the credentials of
// executors that call the executor API from other machines. Its caller
// methods ask the policy (admins, and the system through Acting);
// AuthenticateExecutor checks a token.
type ExecutorService struct{ db *DB }

var _ gaas.ExecutorAccounts = (*ExecutorService)(nil)

// lastSeenStep is how stale an executor's last_seen_at may grow before a
// verification writes it again: an executor calls every few seconds, and
// a write each time would be work for nothing.
const lastSeenStep = time.Minute

type executorRow struct {
	Name       string     `bun:"name"`
	TokenHash  string     `bun:"token_hash"`
	CreatedAt  time.Time  `bun:"created_at"`
	RevokedAt  *time.Time `bun:"revoked_at"`
	LastSeenAt *time.Time `bun:"last_seen_at"`
}

const executorColumns = "name, token_hash, created_at, revoked_at, last_seen_at"

func (r executorRow) account() gaas.ExecutorAccount {
	a := gaas.ExecutorAccount{Name: r.Name, CreatedAt: r.CreatedAt.UTC()}
	for _, t := range []struct {
		from *time.Time
		to   **time.Time
	}{{r.RevokedAt, &a.RevokedAt}, {r.LastSeenAt, &a.LastSeenAt}} {
		if t.from != nil {
			u := t.from.UTC()
			*t.to = &u
		}
	}
	return a
}

// CreateExecutor implements gaas.ExecutorAccounts.
func (s *ExecutorService) CreateExecutor(ctx context.Context, caller int64, name string) (gaas.ExecutorAccount, string, error) {
	return s.createBy(ctx, gaas.Principal{UserID: caller}, name)
}

func (s *ExecutorService) createBy(ctx context.Context, p gaas.Principal, name string) (gaas.ExecutorAccount, string, error) {
	if err := gaas.ValidateExecutorName(name); err != nil {
		return gaas.ExecutorAccount{}, "", fmt.Errorf("store: create executor: %w", err)
	}
	token, hash := authn.NewExecutorToken()
	r := executorRow{Name: name, TokenHash: hash, CreatedAt: s.db.timestamp()}
	err := s.db.tx(ctx, func(tx bun.Tx) error {
		if err := allow(ctx, tx, p, gaas.ActionManageExecutors, 0); err != nil {
			return err
		}
		_, err := exec(ctx, tx, "INSERT INTO executors (name, token_hash, created_at) VALUES (?, ?, ?)", r.Name, r.TokenHash, r.CreatedAt)
		return err
	})
	if err != nil {
		return gaas.ExecutorAccount{}, "", fmt.Errorf("store: create executor %q: %w", name, mapErr(err))
	}
	return r.account(), token, nil
}

// Executors implements gaas.ExecutorAccounts.
func (s *ExecutorService) Executors(ctx context.Context, caller int64) ([]gaas.ExecutorAccount, error) {
	return s.listBy(ctx, gaas.Principal{UserID: caller})
}

func (s *ExecutorService) listBy(ctx context.Context, p gaas.Principal) ([]gaas.ExecutorAccount, error) {
	if err := allow(ctx, s.db.r, p, gaas.ActionManageExecutors, 0); err != nil {
		return nil, fmt.Errorf("store: executors: %w", err)
	}
	var rows []executorRow
	if err := query(ctx, s.db.r, &rows, "SELECT "+executorColumns+" FROM executors ORDER BY lower(name)"); err != nil {
		return nil, fmt.Errorf("store: executors: %w", mapErr(err))
	}
	out := make([]gaas.ExecutorAccount, len(rows))
	for i, r := range rows {
		out[i] = r.account()
	}
	return out, nil
}

// RevokeExecutor implements gaas.ExecutorAccounts.
func (s *ExecutorService) RevokeExecutor(ctx context.Context, caller int64, name string) (gaas.ExecutorAccount, error) {
	return s.revokeBy(ctx, gaas.Principal{UserID: caller}, name)
}

func (s *ExecutorService) revokeBy(ctx context.Context, p gaas.Principal, name string) (gaas.ExecutorAccount, error) {
	var r executorRow
	err := s.db.tx(ctx, func(tx bun.Tx) error {
		if err := allow(ctx, tx, p, gaas.ActionManageExecutors, 0); err != nil {
			return err
		}
		if _, err := exec(ctx, tx, "UPDATE executors SET revoked_at = ? WHERE lower(name) = lower(?) AND revoked_at IS NULL",
			s.db.timestamp(), name); err != nil {
			return err
		}
		return query(ctx, tx, &r, "SELECT "+executorColumns+" FROM executors WHERE lower(name) = lower(?)", name)
	})
	if err != nil {
		return gaas.ExecutorAccount{}, fmt.Errorf("store: revoke executor %q: %w", name, mapErr(err))
	}
	return r.account(), nil
}

// AuthenticateExecutor implements gaas.ExecutorAccounts. The token is
// found by its hash, which says nothing of the token to whoever times
// the look-up, and the hash found is compared again in constant time.
func (s *ExecutorService) AuthenticateExecutor(ctx context.Context, token string) (string, error) {
	if !authn.IsExecutorToken(token) {
		return "", fmt.Errorf("store: authenticate executor: not an executor token: %w", gaas.ErrUnauthorized)
	}
	hash := authn.HashExecutorToken(token)
	var r executorRow
	err := mapErr(query(ctx, s.db.r, &r, "SELECT "+executorColumns+" FROM executors WHERE token_hash = ?", hash))
	switch {
	case errors.Is(err, gaas.ErrNotFound):
		return "", fmt.Errorf("store: authenticate executor: unknown token: %w", gaas.ErrUnauthorized)
	case err != nil:
		return "", fmt.Errorf("store: authenticate executor: %w", err)
	case !authn.VerifyExecutorToken(token, r.TokenHash):
		return "", fmt.Errorf("store: authenticate executor: unknown token: %w", gaas.ErrUnauthorized)
	case r.RevokedAt != nil:
		return "", fmt.Errorf("store: authenticate executor %s: the token was revoked: %w", r.Name, gaas.ErrUnauthorized)
	}
	now := s.db.timestamp()
	if r.LastSeenAt == nil || now.Sub(*r.LastSeenAt) >= lastSeenStep {
		if _, err := exec(ctx, s.db.w, "UPDATE executors SET last_seen_at = ? WHERE token_hash = ? AND (last_seen_at IS NULL OR last_seen_at < ?)",
			now, hash, now.Add(-lastSeenStep)); err != nil {
			return "", fmt.Errorf("store: authenticate executor %s: %w", r.Name, mapErr(err))
		}
	}
	return r.Name, nil
}

// CreateExecutor is ExecutorService.CreateExecutor for the principal.
func (a Acting) CreateExecutor(ctx context.Context, name string) (gaas.ExecutorAccount, string, error) {
	return a.db.Executors.createBy(ctx, a.p, name)
}

// Executors is ExecutorService.Executors for the principal.
func (a Acting) Executors(ctx context.Context) ([]gaas.ExecutorAccount, error) {
	return a.db.Executors.listBy(ctx, a.p)
}

// RevokeExecutor is ExecutorService.RevokeExecutor for the principal.
func (a Acting) RevokeExecutor(ctx context.Context, name string) (gaas.ExecutorAccount, error) {
	return a.db.Executors.revokeBy(ctx, a.p, name)
}
