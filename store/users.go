package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"github.com/gaas-io/gaas/gaas"
)

type userRow struct {
	bun.BaseModel `bun:"table:users"`

	ID           int64     `bun:"id,pk,autoincrement"`
	Username     string    `bun:"username"`
	PasswordHash string    `bun:"password_hash"`
	Role         string    `bun:"role"`
	AccountID    int64     `bun:"account_id"`
	CreatedAt    time.Time `bun:"created_at"`
	Disabled     bool      `bun:"disabled"`
	Generation   int64     `bun:"token_generation"`

	// Balance is not a column: withBalances sums it from the allocations.
	Balance gaas.Credits `bun:"-"`
}

func (r *userRow) user() gaas.User {
	return gaas.User{
		ID:        r.ID,
		Username:  r.Username,
		Role:      gaas.Role(r.Role),
		Balance:   r.Balance,
		AccountID: r.AccountID,
		CreatedAt: r.CreatedAt.UTC(),

		Disabled:        r.Disabled,
		TokenGeneration: r.Generation,
	}
}

const userColumns = "id, username, password_hash, role, (SELECT a.id FROM accounts a WHERE a.user_id = users.id) AS account_id, created_at, disabled, token_generation"

// present is u as a client sees it: with its balance.
func (db *DB) present(ctx context.Context, u userRow) (gaas.User, error) {
	if err := db.withBalances(ctx, db.r, &u); err != nil {
		return gaas.User{}, fmt.Errorf("store: balance of user %d: %w", u.ID, err)
	}
	return u.user(), nil
}

// withBalances fills in the balance of each user: what their active
// allocations hold now.
func (db *DB) withBalances(ctx context.Context, idb bun.IDB, users ...*userRow) error {
	accounts := make([]int64, len(users))
	for i, u := range users {
		accounts[i] = u.AccountID
	}
	b, err := balances(ctx, idb, db.timestamp(), accounts...)
	if err != nil {
		return err
	}
	for _, u := range users {
		u.Balance = b[u.AccountID]
	}
	return nil
}

// revoke is the assignment that ends every token a user holds; every
// write that does so includes it.
const revoke = "token_generation = token_generation + 1"

// UserService implements gaas.UserService on the store: every method
// takes the caller and asks the policy. The account storage that authn
// needs, which checks no caller, is Accounts.
type UserService struct{ db *DB }

var _ gaas.UserService = (*UserService)(nil)

// loadUser reads one user by id; a missing user is gaas.ErrNotFound.
func loadUser(ctx context.Context, idb bun.IDB, id int64) (userRow, error) {
	return loadUserLocked(ctx, idb, id, "")
}

// loadUserLocked reads a user with a row-locking suffix (DB.lockRow).
func loadUserLocked(ctx context.Context, idb bun.IDB, id int64, lock string) (userRow, error) {
	var u userRow
	err := query(ctx, idb, &u, "SELECT "+userColumns+" FROM users WHERE id = ?"+lock, id)
	return u, mapErr(err)
}

// principal is the user of the row acting.
func (r *userRow) principal() gaas.Principal { return gaas.UserPrincipal(r.user()) }

// loadCaller reads the user who makes a call; a missing or disabled
// caller is gaas.ErrUnauthorized, since whoever holds their token is no
// one now.
func loadCaller(ctx context.Context, idb bun.IDB, id int64) (userRow, error) {
	u, err := loadUser(ctx, idb, id)
	switch {
	case errors.Is(err, gaas.ErrNotFound):
		return u, fmt.Errorf("caller %d does not exist: %w", id, gaas.ErrUnauthorized)
	case err == nil:
		err = u.principal().Active()
	}
	return u, err
}

// loadAllowed reads the caller and asks the policy whether they may take
// action a on a target of user owner.
func loadAllowed(ctx context.Context, idb bun.IDB, id int64, a gaas.Action, owner int64) (userRow, error) {
	u, err := loadCaller(ctx, idb, id)
	if err == nil {
		err = gaas.Allow(u.principal(), a, owner)
	}
	return u, err
}

// allow asks the policy whether p may take action a on a target of user
// owner. A user is read from idb first, as they are now (loadAllowed); the
// system is decided by the policy alone.
func allow(ctx context.Context, idb bun.IDB, p gaas.Principal, a gaas.Action, owner int64) error {
	if p.IsSystem() {
		return gaas.Allow(p, a, owner)
	}
	_, err := loadAllowed(ctx, idb, p.UserID, a, owner)
	return err
}

// visibleUser is loadVisibleUser for a principal: a user, or the system.
func visibleUser(ctx context.Context, idb bun.IDB, p gaas.Principal, id int64) (userRow, error) {
	if !p.IsSystem() {
		return loadVisibleUser(ctx, idb, p.UserID, id)
	}
	if err := gaas.Allow(p, gaas.ActionReadUser, id); err != nil {
		return userRow{}, fmt.Errorf("user %d: %w", id, err)
	}
	u, err := loadUser(ctx, idb, id)
	if err != nil {
		return userRow{}, fmt.Errorf("user %d: %w", id, err)
	}
	return u, nil
}

// loadVisibleUser reads user id for a caller whom the policy lets read
// them (that user, or an admin); anyone else is told it does not exist.
func loadVisibleUser(ctx context.Context, idb bun.IDB, caller, id int64) (userRow, error) {
	c, err := loadAllowed(ctx, idb, caller, gaas.ActionReadUser, id)
	if err != nil {
		return userRow{}, fmt.Errorf("user %d: %w", id, err)
	}
	if caller == id {
		return c, nil
	}
	u, err := loadUser(ctx, idb, id)
	if err != nil {
		return userRow{}, fmt.Errorf("user %d: %w", id, err)
	}
	return u, nil
}

// User implements gaas.UserService.
func (s *UserService) User(ctx context.Context, caller int64, req gaas.GetUserRequest) (gaas.User, error) {
	return s.userBy(ctx, gaas.Principal{UserID: caller}, req)
}

// userBy is User for a principal, which may be the system (gaas.System).
func (s *UserService) userBy(ctx context.Context, p gaas.Principal, req gaas.GetUserRequest) (gaas.User, error) {
	u, err := visibleUser(ctx, s.db.r, p, req.UserID)
	if err != nil {
		return gaas.User{}, fmt.Errorf("store: get user: %w", err)
	}
	return s.db.present(ctx, u)
}

// Users implements gaas.UserService.
func (s *UserService) Users(ctx context.Context, caller int64, f gaas.UserFilter) (gaas.UserPage, error) {
	return s.usersBy(ctx, gaas.Principal{UserID: caller}, f)
}

// usersBy is Users for a principal, which may be the system (gaas.System).
func (s *UserService) usersBy(ctx context.Context, p gaas.Principal, f gaas.UserFilter) (gaas.UserPage, error) {
	limit, after, err := readPage(f.Page, 0)
	if err != nil {
		return gaas.UserPage{}, fmt.Errorf("store: list users: %w", err)
	}
	if err := allow(ctx, s.db.r, p, gaas.ActionListUsers, 0); err != nil {
		return gaas.UserPage{}, fmt.Errorf("store: list users: %w", err)
	}
	where, args := "id > ?", []any{after}
	if f.Username != "" {
		if gaas.ValidateUsername(f.Username) != nil {
			return gaas.UserPage{Items: []gaas.User{}}, nil
		}
		where, args = where+" AND lower(username) = lower(?)", append(args, f.Username)
	}
	var rows []userRow
	if err := query(ctx, s.db.r, &rows, "SELECT "+userColumns+" FROM users WHERE "+where+" ORDER BY id LIMIT ?",
		append(args, limit+1)...); err != nil {
		return gaas.UserPage{}, fmt.Errorf("store: list users: %w", mapErr(err))
	}
	var out gaas.UserPage
	rows, out.NextCursor = cutPage(rows, limit, func(r userRow) int64 { return r.ID })
	ptrs := make([]*userRow, len(rows))
	for i := range rows {
		ptrs[i] = &rows[i]
	}
	if err := s.db.withBalances(ctx, s.db.r, ptrs...); err != nil {
		return gaas.UserPage{}, fmt.Errorf("store: list users: %w", err)
	}
	out.Items = make([]gaas.User, len(rows))
	for i := range rows {
		out.Items[i] = rows[i].user()
	}
	return out, nil
}

// SetRole implements gaas.UserService.
func (s *UserService) SetRole(ctx context.Context, caller int64, req gaas.SetRoleRequest) (gaas.User, error) {
	return s.setRoleBy(ctx, gaas.Principal{UserID: caller}, req)
}

// setRoleBy is SetRole for a principal, which may be the system (gaas.System).
func (s *UserService) setRoleBy(ctx context.Context, p gaas.Principal, req gaas.SetRoleRequest) (gaas.User, error) {
	id, role := req.UserID, req.Role
	if !role.Valid() {
		return gaas.User{}, fmt.Errorf("store: set role: %w", gaas.Invalid("role", "must be %q or %q", gaas.RoleAdmin, gaas.RoleUser))
	}
	u, err := s.changeByAdmin(ctx, p, id, gaas.ActionSetRole, func(tx bun.Tx, u *userRow) error {
		if u.Role == string(role) {
			return nil
		}
		if u.user().IsAdmin() && !u.Disabled {
			if err := s.keepAnAdmin(ctx, tx, id); err != nil {
				return err
			}
		}
		u.Role = string(role)
		u.Generation++
		_, err := exec(ctx, tx, "UPDATE users SET role = ?, "+revoke+" WHERE id = ?", u.Role, id)
		return err
	})
	if err != nil {
		return gaas.User{}, fmt.Errorf("store: set role: %w", err)
	}
	return u, nil
}

// SetDisabled implements gaas.UserService.
func (s *UserService) SetDisabled(ctx context.Context, caller int64, req gaas.SetDisabledRequest) (gaas.User, error) {
	return s.setDisabledBy(ctx, gaas.Principal{UserID: caller}, req)
}

// setDisabledBy is SetDisabled for a principal, which may be the system (gaas.System).
func (s *UserService) setDisabledBy(ctx context.Context, p gaas.Principal, req gaas.SetDisabledRequest) (gaas.User, error) {
	id, disabled := req.UserID, req.Disabled
	u, err := s.changeByAdmin(ctx, p, id, gaas.ActionSetDisabled, func(tx bun.Tx, u *userRow) error {
		if u.Disabled == disabled {
			return nil
		}
		if disabled && u.user().IsAdmin() {
			if err := s.keepAnAdmin(ctx, tx, id); err != nil {
				return err
			}
		}
		u.Disabled = disabled
		u.Generation++
		_, err := exec(ctx, tx, "UPDATE users SET disabled = ?, "+revoke+" WHERE id = ?", disabled, id)
		return err
	})
	if err != nil {
		return gaas.User{}, fmt.Errorf("store: set disabled: %w", err)
	}
	return u, nil
}

// changeByAdmin runs change on user id, read and locked, in one
// transaction in which the policy must let the caller take action a. Changes of role and of
// the disabled flag take turns, so that the count of admins that
// keepAnAdmin reads holds until the change commits.
func (s *UserService) changeByAdmin(ctx context.Context, p gaas.Principal, id int64, a gaas.Action, change func(tx bun.Tx, u *userRow) error) (gaas.User, error) {
	var out userRow
	err := s.db.tx(ctx, func(tx bun.Tx) error {
		if s.db.postgres {
			// Role changes take turns: a demotion locks every admin row,
			// and two of them locking in different orders would deadlock.
			if _, err := exec(ctx, tx, "SELECT pg_advisory_xact_lock(?)", roleLock); err != nil {
				return err
			}
		}
		if err := allow(ctx, tx, p, a, id); err != nil {
			return err
		}
		u, err := loadUserLocked(ctx, tx, id, s.db.lockRow)
		if err != nil {
			return fmt.Errorf("user %d: %w", id, err)
		}
		if err := change(tx, &u); err != nil {
			return err
		}
		out = u
		return nil
	})
	if err != nil {
		return gaas.User{}, mapErr(err)
	}
	return s.db.present(ctx, out)
}

// keepAnAdmin refuses, with gaas.ErrConflict, a change that would leave no
// enabled admin but user id. It locks every such admin's row, so that a
// concurrent change cannot see id remain while id's change sees it.
func (s *UserService) keepAnAdmin(ctx context.Context, tx bun.Tx, id int64) error {
	var admins []int64
	if err := query(ctx, tx, &admins, "SELECT id FROM users WHERE role = 'admin' AND NOT disabled AND id <> ? ORDER BY id"+s.db.lockRow,
		id); err != nil {
		return err
	}
	if len(admins) == 0 {
		return fmt.Errorf("user %d is the last enabled admin: %w", id, gaas.ErrConflict)
	}
	return nil
}

// readPage checks a page request and decodes its cursor: the id after
// which (or, for newest-first listings, before which) the page starts.
// first is the value for the first page.
func readPage(p gaas.Page, first int64) (limit int, after int64, err error) {
	if limit, err = p.Validate(); err != nil {
		return 0, 0, err
	}
	after, ok, err := p.After()
	switch {
	case err != nil:
		return 0, 0, err
	case !ok:
		return limit, first, nil
	}
	return limit, after, nil
}

// cutPage trims a result fetched with limit+1 rows to limit, and returns
// the cursor of the next page when there is one.
func cutPage[T any](rows []T, limit int, id func(T) int64) ([]T, string) {
	if len(rows) <= limit {
		return rows, ""
	}
	rows = rows[:limit]
	return rows, gaas.CursorAfter(id(rows[limit-1]))
}

// pageOf is cutPage with each row of the page made an item by conv.
func pageOf[R, T any](rows []R, limit int, id func(R) int64, conv func(*R) T) ([]T, string) {
	rows, next := cutPage(rows, limit, id)
	items := make([]T, len(rows))
	for i := range rows {
		items[i] = conv(&rows[i])
	}
	return items, next
}
