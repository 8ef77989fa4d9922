package authn

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/gaas-io/gaas/gaas"
)

// Accounts is what an Authenticator needs of a store. store.Accounts
// implements it; it checks no caller unless a method takes one, so it is
// for authn and trusted set-up code, not for code acting for a user.
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
	// SetPasswordHash replaces a user's hash if it still is old; the
	// user's tokens keep working.
	SetPasswordHash(ctx context.Context, id int64, old, new string) error
	// ChangePasswordHash replaces an enabled user's hash if it still is
	// old, and ends the user's tokens; otherwise it is gaas.ErrConflict.
	ChangePasswordHash(ctx context.Context, id int64, old, new string) (gaas.User, error)
	// ResetPasswordHash sets user id's hash for an admin caller and ends
	// the user's tokens.
	ResetPasswordHash(ctx context.Context, caller, id int64, hash string) (gaas.User, error)
	// RevokeTokens ends every token of user id.
	RevokeTokens(ctx context.Context, id int64) error
	// UserByID returns a user as stored now; a missing one is gaas.ErrNotFound.
	UserByID(ctx context.Context, id int64) (gaas.User, error)
	// EnsureAdmin creates an admin, or sets an existing admin's hash; it
	// promotes (and enables) an existing account only when adopt is set,
	// and refuses a non-admin otherwise with gaas.ErrConflict.
	EnsureAdmin(ctx context.Context, username, passwordHash string, adopt bool) (gaas.User, error)
}

// DefaultRevocationBound is how long, at most, a token keeps working in a
// process after its user's tokens were revoked, in any process on the
// same database.
const DefaultRevocationBound = time.Second

// Authenticator implements gaas.Authenticator on an account store.
type Authenticator struct {
	accounts Accounts
	hasher   Hasher
	tokens   *Tokens

	dummyOnce sync.Once
	dummy     string // a hash to check when the username is unknown

	standings standings
}

var _ gaas.Authenticator = (*Authenticator)(nil)

// NewAuthenticator returns an Authenticator that keeps accounts in a,
// hashes new passwords with h and issues tokens with t. Its Identify
// learns of revocations within DefaultRevocationBound.
func NewAuthenticator(a Accounts, h Hasher, t *Tokens) *Authenticator {
	return &Authenticator{accounts: a, hasher: h, tokens: t,
		standings: standings{bound: DefaultRevocationBound, m: map[int64]standing{}}}
}

// SetRevocationBound sets how long Identify may go on trusting what it
// last read of a user's standing (their token generation, whether they
// are disabled) before it reads it again: the longest a revoked token
// keeps working in this process. 0 reads the store on every call. Call it
// before the Authenticator is used.
func (a *Authenticator) SetRevocationBound(d time.Duration) { a.standings.bound = max(d, 0) }

// Register implements gaas.Authenticator. A refused username or password
// is answered before any hashing, so refusals cost next to nothing.
func (a *Authenticator) Register(ctx context.Context, req gaas.RegisterRequest) (gaas.User, error) {
	if err := a.CheckRegistration(ctx, req); err != nil {
		return gaas.User{}, fmt.Errorf("authn: register: %w", err)
	}
	hash, err := a.hasher.Hash(req.Password)
	if err != nil {
		return gaas.User{}, err
	}
	u, err := a.accounts.CreateUser(ctx, req.Username, hash, gaas.RoleUser)
	if err != nil {
		return gaas.User{}, fmt.Errorf("authn: register: %w", err)
	}
	return u, nil
}

// CheckRegistration implements gaas.Authenticator. Two registrations of
// one name at once can both pass it; the store's unique index refuses the
// second.
func (a *Authenticator) CheckRegistration(ctx context.Context, req gaas.RegisterRequest) error {
	username, password := req.Username, req.Password
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

// CreateUser implements gaas.Authenticator. A caller whom the policy does
// not let create accounts is refused before any hashing; the store checks again, in the
// transaction that creates the account.
func (a *Authenticator) CreateUser(ctx context.Context, caller int64, req gaas.CreateUserRequest) (gaas.User, error) {
	username, password, role := req.Username, req.Password, req.Role
	if err := a.allow(ctx, caller, gaas.ActionCreateUser, 0); err != nil {
		return gaas.User{}, fmt.Errorf("authn: create user: %w", err)
	}
	if err := a.CheckRegistration(ctx, gaas.RegisterRequest{Username: username, Password: password}); err != nil {
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
		return gaas.User{}, err // the store's error names the operation
	}
	return u, nil
}

// allow asks the policy, before any hashing, whether caller may take
// action a on a target of user owner: only a request the policy allows is
// worth a hash. The store asks again, in the transaction that writes.
func (a *Authenticator) allow(ctx context.Context, caller int64, action gaas.Action, owner int64) error {
	c, err := a.accounts.UserByID(ctx, caller)
	switch {
	case errors.Is(err, gaas.ErrNotFound):
		return fmt.Errorf("caller %d does not exist: %w", caller, gaas.ErrUnauthorized)
	case err != nil:
		return err
	}
	return gaas.Allow(gaas.UserPrincipal(c), action, owner)
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
func (a *Authenticator) Login(ctx context.Context, req gaas.LoginRequest) (gaas.Token, error) {
	u, err := a.checkPassword(ctx, req)
	if err != nil {
		return gaas.Token{}, err
	}
	return a.tokens.Issue(u)
}

// checkPassword returns the enabled user whom req's username and password
// name, or errLogin, as Login describes: Login and Sessions.SignIn are
// one check.
func (a *Authenticator) checkPassword(ctx context.Context, req gaas.LoginRequest) (gaas.User, error) {
	username, password := req.Username, req.Password
	if gaas.ValidateUsername(username) != nil {
		a.hasher.Verify(password, a.dummyHash())
		return gaas.User{}, errLogin
	}
	u, hash, err := a.accounts.Credentials(ctx, username)
	switch {
	case errors.Is(err, gaas.ErrNotFound):
		a.hasher.Verify(password, a.dummyHash())
		return gaas.User{}, errLogin
	case err != nil:
		return gaas.User{}, fmt.Errorf("authn: login: %w", err)
	}
	ok, rehash, err := a.hasher.Verify(password, hash)
	if err != nil || !ok || u.Disabled {
		// A malformed stored hash cannot be logged into, nor can a
		// disabled account, after the same work as a wrong password; it
		// is not the caller's business why. A hash weaker than the
		// configured one (imported, not yet upgraded) costs less to check:
		// make up the difference, so that the time of a failure does not
		// tell which accounts still have weak hashes, or that one exists
		// at all.
		if hashRounds(hash) < a.hasher.iterations() {
			a.hasher.Verify(password, a.dummyHash())
		}
		return gaas.User{}, errLogin
	}
	if rehash {
		// The password is right whether or not the stronger hash is
		// stored: a failed write (a busy or full disk, a moment without
		// the database) leaves the old hash, which still verifies, and the
		// upgrade is tried again at the next login.
		_ = a.upgradeHash(ctx, u.ID, password, hash)
	}
	return u, nil
}

// upgradeHash replaces a hash of fewer rounds than configured with one of
// the same password at the configured work factor. The user's tokens keep
// working: the password is the same.
func (a *Authenticator) upgradeHash(ctx context.Context, id int64, password, hash string) error {
	fresh, err := a.hasher.Hash(password)
	if err != nil {
		return nil // the old hash still verifies; try again next time
	}
	if err := a.accounts.SetPasswordHash(ctx, id, hash, fresh); err != nil {
		return fmt.Errorf("upgrade hash: %w", err)
	}
	return nil
}

// setPassword hashes password and has write store the hash, which revokes
// the user's tokens; this process learns of the revocation at once.
func (a *Authenticator) setPassword(password string, write func(hash string) (gaas.User, error)) (gaas.User, error) {
	hash, err := a.hasher.Hash(password)
	if err != nil {
		return gaas.User{}, err
	}
	// The time before the write: what the write returns holds every
	// change committed before it (see standing).
	now := time.Now()
	u, err := write(hash)
	if err != nil {
		return gaas.User{}, err
	}
	a.standings.put(u.ID, standingOf(u), now)
	return u, nil
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

// Authenticate implements gaas.Authenticator. It reads the user, so it
// sees a revocation at once.
func (a *Authenticator) Authenticate(ctx context.Context, token string) (gaas.User, error) {
	c, err := a.tokens.Verify(token)
	if err != nil {
		return gaas.User{}, err
	}
	now := time.Now()
	u, err := a.accounts.UserByID(ctx, c.UserID)
	if errors.Is(err, gaas.ErrNotFound) {
		return gaas.User{}, fmt.Errorf("authn: token of user %d, who no longer exists: %w", c.UserID, gaas.ErrUnauthorized)
	}
	if err != nil {
		return gaas.User{}, fmt.Errorf("authn: authenticate: %w", err)
	}
	if err := a.standings.put(u.ID, standingOf(u), now).admits(c); err != nil {
		return gaas.User{}, err
	}
	return u, nil
}

// Identify implements gaas.Authenticator. It checks that the token was not
// revoked against what it read of the user's standing less than the
// revocation bound ago (DefaultRevocationBound unless set), so most calls
// read nothing: a revocation made in another process, or through the
// store directly, takes effect here within the bound; one made through
// this Authenticator takes effect here at once.
func (a *Authenticator) Identify(ctx context.Context, token string) (int64, error) {
	c, err := a.tokens.Verify(token)
	if err != nil {
		return 0, err
	}
	st, err := a.standing(ctx, c.UserID, c.Generation)
	if err != nil {
		return 0, err
	}
	if err := st.admits(c); err != nil {
		return 0, err
	}
	return c.UserID, nil
}

// standing returns user id's standing, read less than the bound ago, and
// read again if it is older than a token of generation gen: the token was
// issued after a revocation made elsewhere, which the store holds.
func (a *Authenticator) standing(ctx context.Context, id, gen int64) (standing, error) {
	now := time.Now()
	if st, ok := a.standings.get(id, now); ok && st.generation >= gen {
		return st, nil
	}
	// The time is taken before the read: whatever was committed before it
	// is in what the read returns, so the entry can be trusted until then
	// plus the bound.
	u, err := a.accounts.UserByID(ctx, id)
	switch {
	case errors.Is(err, gaas.ErrNotFound):
		return a.standings.put(id, standing{gone: true}, now), nil
	case err != nil:
		return standing{}, fmt.Errorf("authn: identify: %w", err)
	}
	return a.standings.put(id, standingOf(u), now), nil
}

// ChangePassword implements gaas.Authenticator.
func (a *Authenticator) ChangePassword(ctx context.Context, caller int64, req gaas.ChangePasswordRequest) (gaas.Token, error) {
	old, new := req.Old, req.New
	if err := gaas.ValidatePassword(new); err != nil {
		return gaas.Token{}, fmt.Errorf("authn: change password: %w", renameField(err, "new_password"))
	}
	u, err := a.accounts.UserByID(ctx, caller)
	if err == nil && u.Disabled {
		err = gaas.ErrNotFound
	}
	var hash string
	if err == nil {
		_, hash, err = a.accounts.Credentials(ctx, u.Username)
	}
	if errors.Is(err, gaas.ErrNotFound) {
		return gaas.Token{}, fmt.Errorf("authn: change password: caller %d does not exist or is disabled: %w", caller, gaas.ErrUnauthorized)
	}
	if err != nil {
		return gaas.Token{}, fmt.Errorf("authn: change password: %w", err)
	}
	if ok, _, err := a.hasher.Verify(old, hash); err != nil || !ok {
		return gaas.Token{}, fmt.Errorf("authn: change password: the old password is wrong: %w", gaas.ErrForbidden)
	}
	u, err = a.setPassword(new, func(fresh string) (gaas.User, error) {
		return a.accounts.ChangePasswordHash(ctx, caller, hash, fresh)
	})
	if err != nil {
		return gaas.Token{}, err // the store's error names the operation
	}
	return a.tokens.Issue(u)
}

// ResetPassword implements gaas.Authenticator.
func (a *Authenticator) ResetPassword(ctx context.Context, caller int64, req gaas.ResetPasswordRequest) (gaas.User, error) {
	id, password := req.UserID, req.Password
	if err := gaas.ValidatePassword(password); err != nil {
		return gaas.User{}, fmt.Errorf("authn: reset password: %w", err)
	}
	if err := a.allow(ctx, caller, gaas.ActionResetPassword, id); err != nil {
		return gaas.User{}, fmt.Errorf("authn: reset password: %w", err)
	}
	u, err := a.setPassword(password, func(hash string) (gaas.User, error) {
		return a.accounts.ResetPasswordHash(ctx, caller, id, hash)
	})
	if err != nil {
		return gaas.User{}, err // the store's error names the operation
	}
	return u, nil
}

// LogoutAll implements gaas.Authenticator.
func (a *Authenticator) LogoutAll(ctx context.Context, caller int64) error {
	if err := a.accounts.RevokeTokens(ctx, caller); err != nil {
		return fmt.Errorf("authn: log out everywhere: %w", err)
	}
	a.standings.forget(caller)
	return nil
}

// EnsureAdmin makes sure an admin with this username and password exists.
// It creates the account; an existing admin whose password is this one is
// left as it is (its tokens keep working), and one whose password is
// another gets this one, which ends its tokens. An existing account that
// is not an admin is refused with gaas.ErrConflict: see AdoptAdmin. A
// disabled account is left as it is.
func (a *Authenticator) EnsureAdmin(ctx context.Context, username, password string) (gaas.User, error) {
	return a.ensureAdmin(ctx, username, password, false)
}

// AdoptAdmin is EnsureAdmin that also promotes an existing account that is
// not an admin, and enables a disabled one; either change ends the tokens
// the account held.
func (a *Authenticator) AdoptAdmin(ctx context.Context, username, password string) (gaas.User, error) {
	return a.ensureAdmin(ctx, username, password, true)
}

func (a *Authenticator) ensureAdmin(ctx context.Context, username, password string, adopt bool) (gaas.User, error) {
	if err := errors.Join(gaas.ValidateUsername(username), gaas.ValidatePassword(password)); err != nil {
		return gaas.User{}, fmt.Errorf("authn: ensure admin: %w", err)
	}
	u, hash, err := a.accounts.Credentials(ctx, username)
	switch {
	case errors.Is(err, gaas.ErrNotFound):
	case err != nil:
		return gaas.User{}, fmt.Errorf("authn: ensure admin: %w", err)
	case adopt && (!u.IsAdmin() || u.Disabled):
	case !u.IsAdmin():
		return gaas.User{}, fmt.Errorf("authn: ensure admin: user %q exists and is not an admin: %w", u.Username, gaas.ErrConflict)
	case u.Disabled:
		return u, nil
	default:
		if ok, rehash, err := a.hasher.Verify(password, hash); err == nil && ok {
			if rehash {
				if err := a.upgradeHash(ctx, u.ID, password, hash); err != nil {
					return gaas.User{}, fmt.Errorf("authn: ensure admin: %w", err)
				}
			}
			return u, nil
		}
	}
	u, err = a.setPassword(password, func(hash string) (gaas.User, error) {
		return a.accounts.EnsureAdmin(ctx, username, hash, adopt)
	})
	if err != nil {
		return gaas.User{}, err // the store's error names the operation
	}
	return u, nil
}

// renameField gives the fields of a validation error another name.
func renameField(err error, name string) error {
	var ve *gaas.ValidationError
	if !errors.As(err, &ve) {
		return err
	}
	out := &gaas.ValidationError{}
	for _, f := range ve.Fields {
		out.Add(name, "%s", f.Message)
	}
	return out
}
