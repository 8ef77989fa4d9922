package authn

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/gaas-io/gaas/gaas"
)

// Accounts is what an Authenticator needs of a store. store.UserService
// implements it.
type Accounts interface {
	// CreateUser stores a new account and grants it the default quota;
	// a username taken in any letter case is gaas.ErrConflict.
	CreateUser(ctx context.Context, username, passwordHash string, role gaas.Role) (gaas.User, error)
	// CreateUserBy is CreateUser for caller, who must be an admin as the
	// store holds them in the same transaction: gaas.ErrForbidden for
	// anyone else, gaas.ErrUnauthorized for an unknown caller.
	CreateUserBy(ctx context.Context, caller int64, username, passwordHash string, role gaas.Role) (gaas.User, error)
	// Credentials finds a user by username, in any letter case, with their
	// password hash; an unknown username is gaas.ErrNotFound.
	Credentials(ctx context.Context, username string) (gaas.User, string, error)
	// SetPasswordHash replaces a user's hash if it still is old.
	SetPasswordHash(ctx context.Context, id int64, old, new string) error
	// UserByID returns a user as stored now; a missing one is gaas.ErrNotFound.
	UserByID(ctx context.Context, id int64) (gaas.User, error)
	// EnsureAdmin creates or promotes an admin and sets its hash.
	EnsureAdmin(ctx context.Context, username, passwordHash string) (gaas.User, error)
}

// Authenticator implements gaas.Authenticator on an account store.
type Authenticator struct {
	accounts Accounts
	hasher   Hasher
	tokens   *Tokens

	dummyOnce sync.Once
	dummy     string // a hash to check when the username is unknown
}

var _ gaas.Authenticator = (*Authenticator)(nil)

// NewAuthenticator returns an Authenticator that keeps accounts in a,
// hashes new passwords with h and issues tokens with t.
func NewAuthenticator(a Accounts, h Hasher, t *Tokens) *Authenticator {
	return &Authenticator{accounts: a, hasher: h, tokens: t}
}

// Register implements gaas.Authenticator. A refused username or password
// is answered before any hashing, so refusals cost next to nothing.
func (a *Authenticator) Register(ctx context.Context, username, password string) (gaas.User, error) {
	if err := a.CheckRegistration(ctx, username, password); err != nil {
		return gaas.User{}, fmt.Errorf("authn: register: %w", err)
	}
	hash, err := a.hasher.Hash(password)
	if err != nil {
		return gaas.User{}, err
	}
	u, err := a.accounts.CreateUser(ctx, username, hash, gaas.RoleUser)
	if err != nil {
		return gaas.User{}, fmt.Errorf("authn: register: %w", err)
	}
	return u, nil
}

// CheckRegistration implements gaas.Authenticator. Two registrations of
// one name at once can both pass it; the store's unique index refuses the
// second.
func (a *Authenticator) CheckRegistration(ctx context.Context, username, password string) error {
	v := &gaas.ValidationError{}
	for _, err := range []error{gaas.ValidateUsername(username), gaas.ValidatePassword(password)} {
		var ve *gaas.ValidationError
		if errors.As(err, &ve) {
			v.Fields = append(v.Fields, ve.Fields...)
		}
	}
	if err := v.Err(); err != nil {
		return err
	}
	_, _, err := a.accounts.Credentials(ctx, username)
	switch {
	case err == nil:
		return fmt.Errorf("username %q is taken: %w", username, gaas.ErrConflict)
	case errors.Is(err, gaas.ErrNotFound):
		return nil
	}
	return err
}

// CreateUser implements gaas.Authenticator. A caller who is not an admin
// is refused before any hashing; the store checks again, in the
// transaction that creates the account.
func (a *Authenticator) CreateUser(ctx context.Context, caller int64, username, password string, role gaas.Role) (gaas.User, error) {
	c, err := a.accounts.UserByID(ctx, caller)
	switch {
	case errors.Is(err, gaas.ErrNotFound):
		return gaas.User{}, fmt.Errorf("authn: create user: caller %d does not exist: %w", caller, gaas.ErrUnauthorized)
	case err != nil:
		return gaas.User{}, fmt.Errorf("authn: create user: %w", err)
	case !c.IsAdmin():
		return gaas.User{}, fmt.Errorf("authn: create user: caller %d is not an admin: %w", caller, gaas.ErrForbidden)
	}
	if err := a.CheckRegistration(ctx, username, password); err != nil {
		return gaas.User{}, fmt.Errorf("authn: create user: %w", err)
	}
	if !role.Valid() {
		return gaas.User{}, fmt.Errorf("authn: create user: %w", gaas.Invalid("role", "must be %q or %q", gaas.RoleAdmin, gaas.RoleUser))
	}
	hash, err := a.hasher.Hash(password)
	if err != nil {
		return gaas.User{}, err
	}
	u, err := a.accounts.CreateUserBy(ctx, caller, username, hash, role)
	if err != nil {
		return gaas.User{}, fmt.Errorf("authn: create user: %w", err)
	}
	return u, nil
}

// errLogin is the one answer to a failed login, whatever failed.
var errLogin = fmt.Errorf("authn: wrong username or password: %w", gaas.ErrUnauthorized)

// Login implements gaas.Authenticator. An unknown username costs the same
// hash work as a wrong password and gets the same error, so neither the
// answer nor its timing tells whether an account exists.
//
// A username that breaks the rules of gaas.ValidateUsername names no
// account (every stored one keeps them), so it is not looked up: text the
// database cannot hold never reaches it, and the answer is the same.
func (a *Authenticator) Login(ctx context.Context, username, password string) (gaas.Token, error) {
	if gaas.ValidateUsername(username) != nil {
		a.hasher.Verify(password, a.dummyHash())
		return gaas.Token{}, errLogin
	}
	u, hash, err := a.accounts.Credentials(ctx, username)
	switch {
	case errors.Is(err, gaas.ErrNotFound):
		a.hasher.Verify(password, a.dummyHash())
		return gaas.Token{}, errLogin
	case err != nil:
		return gaas.Token{}, fmt.Errorf("authn: login: %w", err)
	}
	ok, rehash, err := a.hasher.Verify(password, hash)
	if err != nil || !ok {
		// A malformed stored hash cannot be logged into; it is not the
		// caller's business why. A hash weaker than the configured one
		// (imported, not yet upgraded) costs less to check: make up the
		// difference, so that the time of a failure does not tell which
		// accounts still have weak hashes, or that one exists at all.
		if hashRounds(hash) < a.hasher.iterations() {
			a.hasher.Verify(password, a.dummyHash())
		}
		return gaas.Token{}, errLogin
	}
	if rehash {
		if fresh, err := a.hasher.Hash(password); err == nil {
			if err := a.accounts.SetPasswordHash(ctx, u.ID, hash, fresh); err != nil {
				return gaas.Token{}, fmt.Errorf("authn: login: upgrade hash: %w", err)
			}
		}
	}
	return a.tokens.Issue(u)
}

// dummyHash is a hash at the configured work factor of a password no one
// knows, made once.
func (a *Authenticator) dummyHash() string {
	a.dummyOnce.Do(func() {
		h, err := a.hasher.Hash("no such user: this hash only costs time")
		if err != nil {
			panic(err) // crypto/rand failing is not survivable
		}
		a.dummy = h
	})
	return a.dummy
}

// Authenticate implements gaas.Authenticator.
func (a *Authenticator) Authenticate(ctx context.Context, token string) (gaas.User, error) {
	c, err := a.tokens.Verify(token)
	if err != nil {
		return gaas.User{}, err
	}
	u, err := a.accounts.UserByID(ctx, c.UserID)
	if errors.Is(err, gaas.ErrNotFound) {
		return gaas.User{}, fmt.Errorf("authn: token of user %d, who no longer exists: %w", c.UserID, gaas.ErrUnauthorized)
	}
	if err != nil {
		return gaas.User{}, fmt.Errorf("authn: authenticate: %w", err)
	}
	return u, nil
}

// Identify implements gaas.Authenticator.
func (a *Authenticator) Identify(ctx context.Context, token string) (int64, error) {
	c, err := a.tokens.Verify(token)
	if err != nil {
		return 0, err
	}
	return c.UserID, nil
}

// EnsureAdmin makes sure an admin with this username and password exists,
// creating the account or promoting it and setting its password.
func (a *Authenticator) EnsureAdmin(ctx context.Context, username, password string) (gaas.User, error) {
	if err := errors.Join(gaas.ValidateUsername(username), gaas.ValidatePassword(password)); err != nil {
		return gaas.User{}, fmt.Errorf("authn: ensure admin: %w", err)
	}
	hash, err := a.hasher.Hash(password)
	if err != nil {
		return gaas.User{}, err
	}
	return a.accounts.EnsureAdmin(ctx, username, hash)
}
