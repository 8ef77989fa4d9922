package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/uptrace/bun"

	"github.com/gaas-io/gaas/gaas"
)

// Accounts is the account storage that authn needs (it implements
// authn.Accounts), for authn and trusted set-up code. Its methods check no
// caller unless they take one (CreateUserBy, ResetPasswordHash): CreateUser
// grants any role, Credentials returns password hashes, EnsureAdmin makes
// admins. Code that acts for a user holds DB.Users, the checked
// gaas.UserService, instead.
type Accounts struct{ db *DB }

// CreateUser stores a new account with the given password hash and role,
// and grants it the default quota as its first ledger entry, in one
// transaction. A username taken in any letter case is gaas.ErrConflict.
func (s *Accounts) CreateUser(ctx context.Context, username, passwordHash string, role gaas.Role) (gaas.User, error) {
	var out userRow
	err := s.db.tx(ctx, func(tx bun.Tx) (err error) {
		out, err = s.createUser(ctx, tx, username, passwordHash, role)
		return err
	})
	if err != nil {
		return gaas.User{}, fmt.Errorf("store: create user %q: %w", username, mapErr(err))
	}
	return out.user(), nil // createUser knows the balance: the default allocation it made
}

// CreateUserBy is CreateUser on behalf of caller, whom the policy must let
// create accounts (an admin): the caller is read in the transaction that
// creates the account.
func (s *Accounts) CreateUserBy(ctx context.Context, caller int64, username, passwordHash string, role gaas.Role) (gaas.User, error) {
	return s.CreateUserAs(ctx, gaas.Principal{UserID: caller}, username, passwordHash, role)
}

// CreateUserAs is CreateUserBy for a principal, which may be the system
// (gaas.System).
func (s *Accounts) CreateUserAs(ctx context.Context, p gaas.Principal, username, passwordHash string, role gaas.Role) (gaas.User, error) {
	var out userRow
	err := s.db.tx(ctx, func(tx bun.Tx) (err error) {
		if err := allow(ctx, tx, p, gaas.ActionCreateUser, 0); err != nil {
			return err
		}
		out, err = s.createUser(ctx, tx, username, passwordHash, role)
		return err
	})
	if err != nil {
		return gaas.User{}, fmt.Errorf("store: create user %q: %w", username, mapErr(err))
	}
	return out.user(), nil // createUser knows the balance: the default allocation it made
}

func (s *Accounts) createUser(ctx context.Context, tx bun.Tx, username, passwordHash string, role gaas.Role) (userRow, error) {
	if err := gaas.ValidateUsername(username); err != nil {
		return userRow{}, err
	}
	if !role.Valid() {
		return userRow{}, gaas.Invalid("role", "must be %q or %q", gaas.RoleAdmin, gaas.RoleUser)
	}
	u := userRow{Username: username, PasswordHash: passwordHash, Role: string(role), CreatedAt: s.db.timestamp()}
	if err := query(ctx, tx, &u.ID, "INSERT INTO users (username, password_hash, role, created_at) VALUES (?, ?, ?, ?) RETURNING id",
		u.Username, u.PasswordHash, u.Role, u.CreatedAt); err != nil {
		return userRow{}, mapErr(err)
	}
	registration := gaas.System(gaas.SystemRegistration)
	if s.db.defaultQuotaPeriod == "" || s.db.defaultQuota == 0 {
		var err error
		u.AccountID, _, err = newAccount(ctx, tx, &u.ID, s.db.defaultQuota, registration, u.CreatedAt)
		u.Balance = s.db.defaultQuota
		return u, err
	}
	// A recurring default quota: a schedule, whose first period is given now.
	var err error
	if u.AccountID, _, err = newAccount(ctx, tx, &u.ID, 0, registration, u.CreatedAt); err != nil {
		return userRow{}, err
	}
	if _, err := s.db.newSchedule(ctx, tx, registration, u.AccountID, gaas.CreateScheduleRequest{
		UserID: u.ID, Amount: s.db.defaultQuota, Period: s.db.defaultQuotaPeriod, StartsAt: u.CreatedAt,
		GrantCurrent: true, Reason: "default quota",
	}); err != nil {
		return userRow{}, err
	}
	u.Balance = s.db.defaultQuota
	return u, nil
}

// Credentials returns the user with the given username, in any letter case,
// and their password hash. An unknown username is gaas.ErrNotFound, and so
// is one that no account could have (gaas.ValidateUsername), unread.
func (s *Accounts) Credentials(ctx context.Context, username string) (gaas.User, string, error) {
	if gaas.ValidateUsername(username) != nil {
		return gaas.User{}, "", fmt.Errorf("store: credentials: no user is called %q: %w", username, gaas.ErrNotFound)
	}
	var u userRow
	err := query(ctx, s.db.r, &u, "SELECT "+userColumns+" FROM users WHERE lower(username) = lower(?)", username)
	if err != nil {
		return gaas.User{}, "", fmt.Errorf("store: credentials: %w", mapErr(err))
	}
	p, err := s.db.present(ctx, u)
	if err != nil {
		return gaas.User{}, "", err
	}
	return p, u.PasswordHash, nil
}

// SetPasswordHash replaces a user's password hash, if it is still old; a
// hash changed meanwhile by someone else is left alone.
func (s *Accounts) SetPasswordHash(ctx context.Context, id int64, old, new string) error {
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
func (s *Accounts) UserByID(ctx context.Context, id int64) (gaas.User, error) {
	u, err := loadUser(ctx, s.db.r, id)
	if err != nil {
		return gaas.User{}, fmt.Errorf("store: user %d: %w", id, err)
	}
	return s.db.present(ctx, u)
}

// ChangePasswordHash replaces user id's password hash, if it is still old
// and the account is enabled, and ends every token the user holds. A hash
// changed meanwhile, or an account disabled meanwhile, is gaas.ErrConflict.
func (s *Accounts) ChangePasswordHash(ctx context.Context, id int64, old, new string) (gaas.User, error) {
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
	return s.db.present(ctx, out)
}

// ResetPasswordHash sets user id's password hash for a caller whom the
// policy lets reset it, an admin (anyone else: gaas.ErrForbidden), and ends every token the user holds.
func (s *Accounts) ResetPasswordHash(ctx context.Context, caller, id int64, hash string) (gaas.User, error) {
	return s.ResetPasswordHashAs(ctx, gaas.Principal{UserID: caller}, id, hash)
}

// ResetPasswordHashAs is ResetPasswordHash for a principal, which may be the
// system (gaas.System).
func (s *Accounts) ResetPasswordHashAs(ctx context.Context, p gaas.Principal, id int64, hash string) (gaas.User, error) {
	var out userRow
	err := s.db.tx(ctx, func(tx bun.Tx) error {
		if err := allow(ctx, tx, p, gaas.ActionResetPassword, id); err != nil {
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
	return s.db.present(ctx, out)
}

// RevokeTokens ends every token user id holds. A missing user is
// gaas.ErrUnauthorized: the caller is no one.
func (s *Accounts) RevokeTokens(ctx context.Context, id int64) error {
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
func (s *Accounts) EnsureAdmin(ctx context.Context, username, passwordHash string, adopt bool) (gaas.User, error) {
	u, err := s.ensureAdmin(ctx, username, passwordHash, adopt)
	if errors.Is(err, gaas.ErrConflict) && !errors.Is(err, errNotAdmin) {
		// Another process created the account between our look-up and our
		// insert; now it exists, and what is left is to treat it as such.
		u, err = s.ensureAdmin(ctx, username, passwordHash, adopt)
	}
	return u, err
}

func (s *Accounts) ensureAdmin(ctx context.Context, username, passwordHash string, adopt bool) (gaas.User, error) {
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
	return s.db.present(ctx, out)
}
