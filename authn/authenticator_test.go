package authn_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/authn"
	"github.com/gaas-io/gaas/gaas"
	"github.com/gaas-io/gaas/store"
)

// store.Accounts is the account storage an Authenticator is built on.
var _ authn.Accounts = (*store.Accounts)(nil)

func newAuthenticator(t testing.TB, iterations int) (*authn.Authenticator, *store.DB, *authn.Tokens) {
	t.Helper()
	db, err := store.Open(context.Background(), ":memory:", store.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	tokens, err := authn.NewTokens(testKey, time.Minute, nil)
	require.NoError(t, err)
	return authn.NewAuthenticator(db.Accounts, authn.Hasher{Iterations: iterations}, tokens), db, tokens
}

func TestRegisterAndLogin(t *testing.T) {
	ctx := context.Background()
	a, _, _ := newAuthenticator(t, 1000)

	u, err := a.Register(ctx, gaas.RegisterRequest{Username: "alice", Password: "correct horse"})
	require.NoError(t, err)
	assert.Equal(t, gaas.RoleUser, u.Role)
	assert.Equal(t, 10*gaas.Credit, u.Balance)

	_, err = a.Register(ctx, gaas.RegisterRequest{Username: "Alice", Password: "another password"})
	assert.ErrorIs(t, err, gaas.ErrConflict)

	_, err = a.Register(ctx, gaas.RegisterRequest{Username: "b", Password: "short"})
	var ve *gaas.ValidationError
	require.ErrorAs(t, err, &ve)
	assert.Len(t, ve.Fields, 2, "both fields are reported")

	tok, err := a.Login(ctx, gaas.LoginRequest{Username: "alice", Password: "correct horse"})
	require.NoError(t, err)
	got, err := a.Authenticate(ctx, tok.AccessToken)
	require.NoError(t, err)
	assert.Equal(t, u.ID, got.ID)

	_, err = a.Login(ctx, gaas.LoginRequest{Username: "ALICE", Password: "correct horse"})
	assert.NoError(t, err, "usernames match without regard to case")

	_, wrongPassword := a.Login(ctx, gaas.LoginRequest{Username: "alice", Password: "wrong horse"})
	_, unknownUser := a.Login(ctx, gaas.LoginRequest{Username: "nobody", Password: "correct horse"})
	require.ErrorIs(t, wrongPassword, gaas.ErrUnauthorized)
	require.ErrorIs(t, unknownUser, gaas.ErrUnauthorized)
	assert.Equal(t, wrongPassword.Error(), unknownUser.Error(), "no user enumeration")
}

func TestLoginUpgradesWeakHashes(t *testing.T) {
	ctx := context.Background()
	a, db, _ := newAuthenticator(t, 2000)
	weak, err := authn.Hasher{Iterations: 1000}.Hash("correct horse")
	require.NoError(t, err)
	u, err := db.Accounts.CreateUser(ctx, "legacy", weak, gaas.RoleUser)
	require.NoError(t, err)

	_, err = a.Login(ctx, gaas.LoginRequest{Username: "legacy", Password: "wrong horse"})
	require.ErrorIs(t, err, gaas.ErrUnauthorized)
	_, hash, err := db.Accounts.Credentials(ctx, "legacy")
	require.NoError(t, err)
	assert.Equal(t, weak, hash, "a failed login changes nothing")

	_, err = a.Login(ctx, gaas.LoginRequest{Username: "legacy", Password: "correct horse"})
	require.NoError(t, err)
	_, hash, err = db.Accounts.Credentials(ctx, "legacy")
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(hash, "$pbkdf2-sha256$2000$"), hash)
	_, err = a.Login(ctx, gaas.LoginRequest{Username: "legacy", Password: "correct horse"})
	require.NoError(t, err, "the upgraded hash verifies")
	assert.NotZero(t, u.ID)
}

func TestRoleChangeRevokesTokens(t *testing.T) {
	ctx := context.Background()
	a, db, _ := newAuthenticator(t, 1000)
	root, err := a.EnsureAdmin(ctx, "root", "root password")
	require.NoError(t, err)
	admin, err := a.EnsureAdmin(ctx, "second", "second password")
	require.NoError(t, err)
	tok, err := a.Login(ctx, gaas.LoginRequest{Username: "second", Password: "second password"})
	require.NoError(t, err)
	_, err = db.Users.SetRole(ctx, root.ID, gaas.SetRoleRequest{UserID: admin.ID, Role: gaas.RoleUser})
	require.NoError(t, err)
	_, err = a.Authenticate(ctx, tok.AccessToken)
	require.ErrorIs(t, err, gaas.ErrUnauthorized, "a demoted admin's token is revoked at once")
	tok, err = a.Login(ctx, gaas.LoginRequest{Username: "second", Password: "second password"})
	require.NoError(t, err)
	got, err := a.Authenticate(ctx, tok.AccessToken)
	require.NoError(t, err)
	assert.Equal(t, gaas.RoleUser, got.Role)
}

func TestAuthenticateUnknownUser(t *testing.T) {
	a, _, tokens := newAuthenticator(t, 1000)
	tok, err := tokens.Issue(gaas.User{ID: 777, Username: "ghost", Role: gaas.RoleAdmin})
	require.NoError(t, err)
	_, err = a.Authenticate(context.Background(), tok.AccessToken)
	assert.ErrorIs(t, err, gaas.ErrUnauthorized)
}

func TestEnsureAdminValidates(t *testing.T) {
	a, _, _ := newAuthenticator(t, 1000)
	_, err := a.EnsureAdmin(context.Background(), "root", "short")
	assert.ErrorIs(t, err, gaas.ErrInvalid)
}

// TestEveryFailedLoginCostsTheConfiguredWork counts the hash work of failed
// logins: a wrong password for an account whose hash is weaker than the
// configured one (imported, not yet upgraded) must cost at least what a
// wrong password for an up-to-date account, or an unknown username, costs.
func TestEveryFailedLoginCostsTheConfiguredWork(t *testing.T) {
	ctx := context.Background()
	const configured, stored = 20_000, 1000
	a, db, _ := newAuthenticator(t, configured)
	weak, err := authn.Hasher{Iterations: stored}.Hash("correct horse")
	require.NoError(t, err)
	_, err = db.Accounts.CreateUser(ctx, "imported", weak, gaas.RoleUser)
	require.NoError(t, err)
	_, err = a.Register(ctx, gaas.RegisterRequest{Username: "current", Password: "correct horse"})
	require.NoError(t, err)
	_, err = db.Accounts.CreateUser(ctx, "broken", "not a passlib hash", gaas.RoleUser)
	require.NoError(t, err)
	a.Login(ctx, gaas.LoginRequest{Username: "nobody", Password: "warm up"}) // makes the dummy hash once

	count, restore := authn.CountHashWork()
	defer restore()
	work := func(username string) int64 {
		before := count()
		_, err := a.Login(ctx, gaas.LoginRequest{Username: username, Password: "wrong horse"})
		require.ErrorIs(t, err, gaas.ErrUnauthorized)
		return count() - before
	}
	current := work("current")
	require.GreaterOrEqual(t, current, int64(2*configured), "a configured verification is counted")
	for _, name := range []string{"nobody", "imported", "broken"} {
		assert.GreaterOrEqual(t, work(name), current, "a failed login of %s costs less than the configured work", name)
	}
}

// TestRefusalsCostNoHashing: a taken username, and an account made by
// someone who is not an admin, are refused before any password is hashed.
func TestRefusalsCostNoHashing(t *testing.T) {
	ctx := context.Background()
	a, db, _ := newAuthenticator(t, 1000)
	alice, err := a.Register(ctx, gaas.RegisterRequest{Username: "alice", Password: "correct horse"})
	require.NoError(t, err)
	root, err := a.EnsureAdmin(ctx, "root", "root password")
	require.NoError(t, err)

	count, restore := authn.CountHashWork()
	defer restore()
	_, err = a.Register(ctx, gaas.RegisterRequest{Username: "ALICE", Password: "another password"})
	assert.ErrorIs(t, err, gaas.ErrConflict)
	assert.ErrorIs(t, a.CheckRegistration(ctx, gaas.RegisterRequest{Username: "Alice", Password: "another password"}), gaas.ErrConflict)
	assert.ErrorIs(t, a.CheckRegistration(ctx, gaas.RegisterRequest{Username: "al", Password: "short"}), gaas.ErrInvalid)
	assert.NoError(t, a.CheckRegistration(ctx, gaas.RegisterRequest{Username: "bob", Password: "correct horse"}))
	_, err = a.CreateUser(ctx, alice.ID, gaas.CreateUserRequest{Username: "mallory", Password: "correct horse", Role: gaas.RoleAdmin})
	assert.ErrorIs(t, err, gaas.ErrForbidden)
	_, err = a.CreateUser(ctx, 999, gaas.CreateUserRequest{Username: "mallory", Password: "correct horse", Role: gaas.RoleAdmin})
	assert.ErrorIs(t, err, gaas.ErrUnauthorized)
	_, err = a.CreateUser(ctx, root.ID, gaas.CreateUserRequest{Username: "alice", Password: "correct horse", Role: gaas.RoleUser})
	assert.ErrorIs(t, err, gaas.ErrConflict)
	assert.Zero(t, count(), "a refusal hashed a password")

	// The store checks the caller in the transaction that creates the account.
	_, err = db.Accounts.CreateUserBy(ctx, alice.ID, "mallory", "$pbkdf2-sha256$1000$c2FsdA$x", gaas.RoleAdmin)
	assert.ErrorIs(t, err, gaas.ErrForbidden)

	bob, err := a.CreateUser(ctx, root.ID, gaas.CreateUserRequest{Username: "bob", Password: "correct horse", Role: gaas.RoleAdmin})
	require.NoError(t, err)
	assert.Equal(t, gaas.RoleAdmin, bob.Role)
	_, err = a.Login(ctx, gaas.LoginRequest{Username: "bob", Password: "correct horse"})
	assert.NoError(t, err)
}

// failingHashWrites is the real store, whose writes of upgraded hashes fail
// as they would on a full disk.
type failingHashWrites struct{ authn.Accounts }

func (failingHashWrites) SetPasswordHash(context.Context, int64, string, string) error {
	return fmt.Errorf("disk full: %w", gaas.ErrUnavailable)
}

// A correct password logs in even when the stronger hash it earns cannot
// be stored: the old one still verifies, and the upgrade waits for the
// next login.
func TestLoginDespiteAFailedHashUpgrade(t *testing.T) {
	ctx := context.Background()
	weak, db, tokens := newAuthenticator(t, 1000)
	_, err := weak.Register(ctx, gaas.RegisterRequest{Username: "alice", Password: "correct horse"})
	require.NoError(t, err)
	_, before, err := db.Accounts.Credentials(ctx, "alice")
	require.NoError(t, err)

	strong := authn.NewAuthenticator(failingHashWrites{db.Accounts}, authn.Hasher{Iterations: 2000}, tokens)
	tok, err := strong.Login(ctx, gaas.LoginRequest{Username: "alice", Password: "correct horse"})
	require.NoError(t, err)
	assert.NotEmpty(t, tok.AccessToken)
	_, after, err := db.Accounts.Credentials(ctx, "alice")
	require.NoError(t, err)
	assert.Equal(t, before, after, "the hash stays as it was")

	_, err = strong.Login(ctx, gaas.LoginRequest{Username: "alice", Password: "wrong horse"})
	assert.ErrorIs(t, err, gaas.ErrUnauthorized)

	// With the store writing again, the next login upgrades it.
	_, err = authn.NewAuthenticator(db.Accounts, authn.Hasher{Iterations: 2000}, tokens).Login(ctx, gaas.LoginRequest{Username: "alice", Password: "correct horse"})
	require.NoError(t, err)
	_, upgraded, err := db.Accounts.Credentials(ctx, "alice")
	require.NoError(t, err)
	assert.Contains(t, upgraded, "$pbkdf2-sha256$2000$")
}
