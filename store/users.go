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
	Balance      int64     `bun:"balance"`
	CreatedAt    time.Time `bun:"created_at"`
	Disabled     bool      `bun:"disabled"`
	Generation   int64     `bun:"token_generation"`
}

func (r *userRow) user() gaas.User {
	return gaas.User{
		ID:        r.ID,
		Username:  r.Username,
		Role:      gaas.Role(r.Role),
		Balance:   gaas.Hours(r.Balance),
		CreatedAt: r.CreatedAt.UTC(),

		Disabled:        r.Disabled,
		TokenGeneration: r.Generation,
	}
}

const userColumns = "id, username, password_hash, role, balance, created_at, disabled, token_generation"

// revoke is the assignment that ends every token a user holds; every
// write that does so includes it.
const revoke = "token_generation = token_generation + 1"

// UserService implements gaas.UserService, and the account storage that
// authn needs, on the store.
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
func (s *UserService) User(ctx context.Context, caller, id int64) (gaas.User, error) {
	u, err := loadVisibleUser(ctx, s.db.r, caller, id)
	if err != nil {
		return gaas.User{}, fmt.Errorf("store: get user: %w", err)
	}
	return u.user(), nil
}

// Users implements gaas.UserService.
func (s *UserService) Users(ctx context.Context, caller int64, page gaas.Page) (gaas.UserPage, error) {
	limit, after, err := readPage(page, 0)
	if err != nil {
		return gaas.UserPage{}, fmt.Errorf("store: list users: %w", err)
	}
	if _, err := loadAllowed(ctx, s.db.r, caller, gaas.ActionListUsers, 0); err != nil {
		return gaas.UserPage{}, fmt.Errorf("store: list users: %w", err)
	}
	var rows []userRow
	if err := query(ctx, s.db.r, &rows, "SELECT "+userColumns+" FROM users WHERE id > ? ORDER BY id LIMIT ?",
		after, limit+1); err != nil {
		return gaas.UserPage{}, fmt.Errorf("store: list users: %w", mapErr(err))
	}
	var out gaas.UserPage
	rows, out.NextCursor = cutPage(rows, limit, func(r userRow) int64 { return r.ID })
	out.Items = make([]gaas.User, len(rows))
	for i := range rows {
		out.Items[i] = rows[i].user()
	}
	return out, nil
}

// SetRole implements gaas.UserService.
func (s *UserService) SetRole(ctx context.Context, caller, id int64, role gaas.Role) (gaas.User, error) {
	if !role.Valid() {
		return gaas.User{}, fmt.Errorf("store: set role: %w", gaas.Invalid("role", "must be %q or %q", gaas.RoleAdmin, gaas.RoleUser))
	}
	u, err := s.changeByAdmin(ctx, caller, id, gaas.ActionSetRole, func(tx bun.Tx, u *userRow) error {
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
func (s *UserService) SetDisabled(ctx context.Context, caller, id int64, disabled bool) (gaas.User, error) {
	u, err := s.changeByAdmin(ctx, caller, id, gaas.ActionSetDisabled, func(tx bun.Tx, u *userRow) error {
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
func (s *UserService) changeByAdmin(ctx context.Context, caller, id int64, a gaas.Action, change func(tx bun.Tx, u *userRow) error) (gaas.User, error) {
	var out userRow
	err := s.db.tx(ctx, func(tx bun.Tx) error {
		if s.db.postgres {
			// Role changes take turns: a demotion locks every admin row,
			// and two of them locking in different orders would deadlock.
			if _, err := exec(ctx, tx, "SELECT pg_advisory_xact_lock(?)", roleLock); err != nil {
				return err
			}
		}
		if _, err := loadAllowed(ctx, tx, caller, a, id); err != nil {
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
	return out.user(), nil
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

// CreateUser stores a new account with the given password hash and role,
// and grants it the default quota as its first ledger entry, in one
// transaction. A username taken in any letter case is gaas.ErrConflict.
func (s *UserService) CreateUser(ctx context.Context, username, passwordHash string, role gaas.Role) (gaas.User, error) {
	var out userRow
	err := s.db.tx(ctx, func(tx bun.Tx) (err error) {
		out, err = s.createUser(ctx, tx, username, passwordHash, role)
		return err
	})
	if err != nil {
		return gaas.User{}, fmt.Errorf("store: create user %q: %w", username, mapErr(err))
	}
	return out.user(), nil
}

// CreateUserBy is CreateUser on behalf of caller, whom the policy must let
// create accounts (an admin): the caller is read in the transaction that
// creates the account.
func (s *UserService) CreateUserBy(ctx context.Context, caller int64, username, passwordHash string, role gaas.Role) (gaas.User, error) {
	var out userRow
	err := s.db.tx(ctx, func(tx bun.Tx) (err error) {
		if _, err := loadAllowed(ctx, tx, caller, gaas.ActionCreateUser, 0); err != nil {
			return err
		}
		out, err = s.createUser(ctx, tx, username, passwordHash, role)
		return err
	})
	if err != nil {
		return gaas.User{}, fmt.Errorf("store: create user %q: %w", username, mapErr(err))
	}
	return out.user(), nil
}

func (s *UserService) createUser(ctx context.Context, tx bun.Tx, username, passwordHash string, role gaas.Role) (userRow, error) {
	if err := gaas.ValidateUsername(username); err != nil {
		return userRow{}, err
	}
	if !role.Valid() {
		return userRow{}, gaas.Invalid("role", "must be %q or %q", gaas.RoleAdmin, gaas.RoleUser)
	}
	u := userRow{Username: username, PasswordHash: passwordHash, Role: string(role), CreatedAt: s.db.timestamp()}
	if err := query(ctx, tx, &u.ID, "INSERT INTO users (username, password_hash, role, balance, created_at) VALUES (?, ?, ?, 0, ?) RETURNING id",
		u.Username, u.PasswordHash, u.Role, u.CreatedAt); err != nil {
		return userRow{}, mapErr(err)
	}
	if s.db.defaultQuota > 0 {
		bal, err := addBalance(ctx, tx, u.ID, s.db.defaultQuota)
		if err != nil {
			return userRow{}, err
		}
		u.Balance = int64(bal)
		if err := appendLedger(ctx, tx, ledgerRow{
			UserID: u.ID, ledgerActor: actor(gaas.System(gaas.SystemRegistration)), Kind: string(gaas.LedgerGrant),
			Delta: int64(s.db.defaultQuota), Balance: u.Balance, Reason: "default quota", CreatedAt: u.CreatedAt,
		}); err != nil {
			return userRow{}, err
		}
	}
	return u, nil
}

// Credentials returns the user with the given username, in any letter case,
// and their password hash. An unknown username is gaas.ErrNotFound, and so
// is one that no account could have (gaas.ValidateUsername), unread.
func (s *UserService) Credentials(ctx context.Context, username string) (gaas.User, string, error) {
	if gaas.ValidateUsername(username) != nil {
		return gaas.User{}, "", fmt.Errorf("store: credentials: no user is called %q: %w", username, gaas.ErrNotFound)
	}
	var u userRow
	err := query(ctx, s.db.r, &u, "SELECT "+userColumns+" FROM users WHERE lower(username) = lower(?)", username)
	if err != nil {
		return gaas.User{}, "", fmt.Errorf("store: credentials: %w", mapErr(err))
	}
	return u.user(), u.PasswordHash, nil
}

// SetPasswordHash replaces a user's password hash, if it is still old; a
// hash changed meanwhile by someone else is left alone.
func (s *UserService) SetPasswordHash(ctx context.Context, id int64, old, new string) error {
	err := s.db.tx(ctx, func(tx bun.Tx) error {
		_, err := exec(ctx, tx, "UPDATE users SET password_hash = ? WHERE id = ? AND password_hash = ?", new, id, old)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: set password hash: %w", mapErr(err))
	}
	return nil
}

// UserByID returns a user as stored now; a missing one is gaas.ErrNotFound.
func (s *UserService) UserByID(ctx context.Context, id int64) (gaas.User, error) {
	u, err := loadUser(ctx, s.db.r, id)
	if err != nil {
		return gaas.User{}, fmt.Errorf("store: user %d: %w", id, err)
	}
	return u.user(), nil
}

// ChangePasswordHash replaces user id's password hash, if it is still old
// and the account is enabled, and ends every token the user holds. A hash
// changed meanwhile, or an account disabled meanwhile, is gaas.ErrConflict.
func (s *UserService) ChangePasswordHash(ctx context.Context, id int64, old, new string) (gaas.User, error) {
	var out userRow
	err := s.db.tx(ctx, func(tx bun.Tx) error {
		res, err := exec(ctx, tx, "UPDATE users SET password_hash = ?, "+revoke+" WHERE id = ? AND password_hash = ? AND NOT disabled",
			new, id, old)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return errors.Join(err, fmt.Errorf("user %d changed meanwhile: %w", id, gaas.ErrConflict))
		}
		out, err = loadUser(ctx, tx, id)
		return err
	})
	if err != nil {
		return gaas.User{}, fmt.Errorf("store: change password: %w", mapErr(err))
	}
	return out.user(), nil
}

// ResetPasswordHash sets user id's password hash for a caller whom the
// policy lets reset it, an admin (anyone else: gaas.ErrForbidden), and ends every token the user holds.
func (s *UserService) ResetPasswordHash(ctx context.Context, caller, id int64, hash string) (gaas.User, error) {
	var out userRow
	err := s.db.tx(ctx, func(tx bun.Tx) error {
		if _, err := loadAllowed(ctx, tx, caller, gaas.ActionResetPassword, id); err != nil {
			return err
		}
		u, err := loadUserLocked(ctx, tx, id, s.db.lockRow)
		if err != nil {
			return fmt.Errorf("user %d: %w", id, err)
		}
		if _, err := exec(ctx, tx, "UPDATE users SET password_hash = ?, "+revoke+" WHERE id = ?", hash, id); err != nil {
			return err
		}
		u.PasswordHash = hash
		u.Generation++
		out = u
		return nil
	})
	if err != nil {
		return gaas.User{}, fmt.Errorf("store: reset password: %w", mapErr(err))
	}
	return out.user(), nil
}

// RevokeTokens ends every token user id holds. A missing user is
// gaas.ErrUnauthorized: the caller is no one.
func (s *UserService) RevokeTokens(ctx context.Context, id int64) error {
	err := s.db.tx(ctx, func(tx bun.Tx) error {
		res, err := exec(ctx, tx, "UPDATE users SET "+revoke+" WHERE id = ?", id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return errors.Join(err, fmt.Errorf("user %d does not exist: %w", id, gaas.ErrUnauthorized))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: revoke tokens: %w", mapErr(err))
	}
	return nil
}

// errNotAdmin refuses to make an existing account an admin unasked.
var errNotAdmin = fmt.Errorf("the account exists and is not an admin: %w", gaas.ErrConflict)

// EnsureAdmin makes sure an admin with the given username exists and has
// the given password hash, which ends the tokens it held. It creates the
// account; an existing admin gets the hash; an existing account that is
// not an admin is refused with gaas.ErrConflict unless adopt is set, which
// promotes it. A disabled account is left as it is unless adopt is set,
// which enables it: an admin may have disabled it on purpose. The account
// is found in any letter case. It is safe when several processes run it
// at once on one database.
func (s *UserService) EnsureAdmin(ctx context.Context, username, passwordHash string, adopt bool) (gaas.User, error) {
	u, err := s.ensureAdmin(ctx, username, passwordHash, adopt)
	if errors.Is(err, gaas.ErrConflict) && !errors.Is(err, errNotAdmin) {
		// Another process created the account between our look-up and our
		// insert; now it exists, and what is left is to treat it as such.
		u, err = s.ensureAdmin(ctx, username, passwordHash, adopt)
	}
	return u, err
}

func (s *UserService) ensureAdmin(ctx context.Context, username, passwordHash string, adopt bool) (gaas.User, error) {
	var out userRow
	err := s.db.tx(ctx, func(tx bun.Tx) error {
		err := query(ctx, tx, &out, "SELECT "+userColumns+" FROM users WHERE lower(username) = lower(?)"+s.db.lockRow, username)
		if err = mapErr(err); errors.Is(err, gaas.ErrNotFound) {
			out, err = s.createUser(ctx, tx, username, passwordHash, gaas.RoleAdmin)
			return err
		} else if err != nil {
			return err
		}
		switch {
		case !out.user().IsAdmin() && !adopt:
			return fmt.Errorf("user %d: %w", out.ID, errNotAdmin)
		case out.Disabled && !adopt:
			return nil
		}
		out.Role, out.PasswordHash, out.Disabled = string(gaas.RoleAdmin), passwordHash, false
		out.Generation++
		_, err = exec(ctx, tx, "UPDATE users SET role = ?, password_hash = ?, disabled = ?, "+revoke+" WHERE id = ?",
			out.Role, out.PasswordHash, false, out.ID)
		return err
	})
	if err != nil {
		return gaas.User{}, fmt.Errorf("store: ensure admin %q: %w", username, mapErr(err))
	}
	return out.user(), nil
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
