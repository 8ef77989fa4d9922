package authn_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/authn"
	"github.com/gaas-io/gaas/gaas"
	"github.com/gaas-io/gaas/store"
)

// Every way of ending a user's tokens: the Authenticator that made the
// change refuses the old token at once, and another one on the same
// database (another replica) within its revocation bound, while a token
// issued afterwards works.
func TestRevocation(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "gaas.db"), store.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	tokens, err := authn.NewTokens(testKey, time.Minute, nil)
	require.NoError(t, err)
	here := authn.NewAuthenticator(db.Accounts, authn.Hasher{Iterations: 1000}, tokens)
	there := authn.NewAuthenticator(db.Accounts, authn.Hasher{Iterations: 1000}, tokens)
	const bound = 200 * time.Millisecond
	there.SetRevocationBound(bound)
	root, err := here.EnsureAdmin(ctx, "root", "root password")
	require.NoError(t, err)

	for _, tc := range []struct {
		name string
		// revoke ends the user's tokens and returns their password now
		revoke func(t *testing.T, u gaas.User) string
		// disabled: the user cannot log in afterwards
		disabled bool
	}{
		{"change_password", func(t *testing.T, u gaas.User) string {
			tok, err := here.ChangePassword(ctx, u.ID, gaas.ChangePasswordRequest{Old: "old password", New: "new password"})
			require.NoError(t, err)
			id, err := here.Identify(ctx, tok.AccessToken)
			require.NoError(t, err, "the token ChangePassword returns works")
			assert.Equal(t, u.ID, id)
			return "new password"
		}, false},
		{"reset_password", func(t *testing.T, u gaas.User) string {
			_, err := here.ResetPassword(ctx, root.ID, gaas.ResetPasswordRequest{UserID: u.ID, Password: "reset password"})
			require.NoError(t, err)
			return "reset password"
		}, false},
		{"role_change", func(t *testing.T, u gaas.User) string {
			_, err := db.Users.SetRole(ctx, root.ID, gaas.SetRoleRequest{UserID: u.ID, Role: gaas.RoleAdmin})
			require.NoError(t, err)
			return "old password"
		}, false},
		{"disable", func(t *testing.T, u gaas.User) string {
			_, err := db.Users.SetDisabled(ctx, root.ID, gaas.SetDisabledRequest{UserID: u.ID, Disabled: true})
			require.NoError(t, err)
			return "old password"
		}, true},
		{"logout_all", func(t *testing.T, u gaas.User) string {
			require.NoError(t, here.LogoutAll(ctx, u.ID))
			return "old password"
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, err := here.Register(ctx, gaas.RegisterRequest{Username: "user_" + tc.name, Password: "old password"})
			require.NoError(t, err)
			old, err := here.Login(ctx, gaas.LoginRequest{Username: u.Username, Password: "old password"})
			require.NoError(t, err)
			for _, a := range []*authn.Authenticator{here, there} {
				_, err := a.Identify(ctx, old.AccessToken)
				require.NoError(t, err)
			}

			password := tc.revoke(t, u)
			revoked := time.Now()
			_, err = here.Authenticate(ctx, old.AccessToken)
			assert.ErrorIs(t, err, gaas.ErrUnauthorized, "Authenticate reads the store")
			if tc.name != "role_change" && tc.name != "disable" {
				// Changes made through the Authenticator are seen at once.
				_, err = here.Identify(ctx, old.AccessToken)
				assert.ErrorIs(t, err, gaas.ErrUnauthorized)
			}
			// No check begun later than the bound after the revocation
			// (which committed before revoked) lets the old token through.
			for a, bound := range map[*authn.Authenticator]time.Duration{here: authn.DefaultRevocationBound, there: bound} {
				for {
					start := time.Now()
					if _, err := a.Identify(ctx, old.AccessToken); err != nil {
						require.ErrorIs(t, err, gaas.ErrUnauthorized)
						break
					}
					require.False(t, start.After(revoked.Add(bound)), "a check %s after the revocation let the token through", start.Sub(revoked))
					time.Sleep(5 * time.Millisecond)
				}
			}

			fresh, err := here.Login(ctx, gaas.LoginRequest{Username: u.Username, Password: password})
			if tc.disabled {
				_, wrong := here.Login(ctx, gaas.LoginRequest{Username: u.Username, Password: "wrong password"})
				require.ErrorIs(t, err, gaas.ErrUnauthorized)
				assert.Equal(t, wrong.Error(), err.Error(), "a disabled account's login fails like a wrong password")
				return
			}
			require.NoError(t, err)
			for _, a := range []*authn.Authenticator{here, there} {
				_, err := a.Identify(ctx, fresh.AccessToken)
				assert.NoError(t, err, "a token issued after the revocation works")
			}
		})
	}
}

func TestChangePassword(t *testing.T) {
	ctx := context.Background()
	a, _, _ := newAuthenticator(t, 1000)
	u, err := a.Register(ctx, gaas.RegisterRequest{Username: "alice", Password: "correct horse"})
	require.NoError(t, err)

	_, err = a.ChangePassword(ctx, u.ID, gaas.ChangePasswordRequest{Old: "wrong horse", New: "new password"})
	require.ErrorIs(t, err, gaas.ErrForbidden)
	_, err = a.ChangePassword(ctx, u.ID, gaas.ChangePasswordRequest{Old: "correct horse", New: "short"})
	var ve *gaas.ValidationError
	require.ErrorAs(t, err, &ve)
	assert.Equal(t, "new_password", ve.Fields[0].Field)
	_, err = a.Login(ctx, gaas.LoginRequest{Username: "alice", Password: "correct horse"})
	require.NoError(t, err, "a refused change changes nothing")

	_, err = a.ChangePassword(ctx, u.ID, gaas.ChangePasswordRequest{Old: "correct horse", New: "battery staple"})
	require.NoError(t, err)
	_, err = a.Login(ctx, gaas.LoginRequest{Username: "alice", Password: "correct horse"})
	assert.ErrorIs(t, err, gaas.ErrUnauthorized)
	_, err = a.Login(ctx, gaas.LoginRequest{Username: "alice", Password: "battery staple"})
	assert.NoError(t, err)
}

func TestResetPasswordIsForAdmins(t *testing.T) {
	ctx := context.Background()
	a, _, _ := newAuthenticator(t, 1000)
	alice, err := a.Register(ctx, gaas.RegisterRequest{Username: "alice", Password: "correct horse"})
	require.NoError(t, err)
	bob, err := a.Register(ctx, gaas.RegisterRequest{Username: "bob", Password: "bob password"})
	require.NoError(t, err)
	_, err = a.ResetPassword(ctx, alice.ID, gaas.ResetPasswordRequest{UserID: bob.ID, Password: "alice's choice"})
	require.ErrorIs(t, err, gaas.ErrForbidden)
	_, err = a.Login(ctx, gaas.LoginRequest{Username: "bob", Password: "bob password"})
	require.NoError(t, err)
}

func TestEnsureAdminRefusesExistingUsers(t *testing.T) {
	ctx := context.Background()
	a, _, _ := newAuthenticator(t, 1000)
	squatter, err := a.Register(ctx, gaas.RegisterRequest{Username: "root", Password: "squatter password"})
	require.NoError(t, err)
	tok, err := a.Login(ctx, gaas.LoginRequest{Username: "root", Password: "squatter password"})
	require.NoError(t, err)

	_, err = a.EnsureAdmin(ctx, "ROOT", "admin password")
	require.ErrorIs(t, err, gaas.ErrConflict)
	got, err := a.Authenticate(ctx, tok.AccessToken)
	require.NoError(t, err)
	assert.Equal(t, gaas.RoleUser, got.Role, "refused: nothing changed")

	adopted, err := a.AdoptAdmin(ctx, "root", "admin password")
	require.NoError(t, err)
	assert.Equal(t, squatter.ID, adopted.ID)
	assert.Equal(t, gaas.RoleAdmin, adopted.Role)
	_, err = a.Identify(ctx, tok.AccessToken)
	assert.ErrorIs(t, err, gaas.ErrUnauthorized, "the squatter's token died with the adoption")
	_, err = a.Login(ctx, gaas.LoginRequest{Username: "root", Password: "squatter password"})
	assert.ErrorIs(t, err, gaas.ErrUnauthorized)

	admin, err := a.Login(ctx, gaas.LoginRequest{Username: "root", Password: "admin password"})
	require.NoError(t, err)
	again, err := a.EnsureAdmin(ctx, "root", "admin password")
	require.NoError(t, err)
	assert.Equal(t, adopted.TokenGeneration, again.TokenGeneration, "a restart with the same password changes nothing")
	_, err = a.Identify(ctx, admin.AccessToken)
	assert.NoError(t, err)

	_, err = a.EnsureAdmin(ctx, "root", "a new admin password")
	require.NoError(t, err)
	_, err = a.Identify(ctx, admin.AccessToken)
	assert.ErrorIs(t, err, gaas.ErrUnauthorized, "a new password ends the old tokens")
}

// A token issued after a revocation made elsewhere works at once, though
// this Authenticator still remembers the user's standing from before.
func TestFreshTokenAfterRevocationElsewhere(t *testing.T) {
	ctx := context.Background()
	a, db, _ := newAuthenticator(t, 1000)
	a.SetRevocationBound(time.Hour)
	root, err := a.EnsureAdmin(ctx, "root", "root password")
	require.NoError(t, err)
	u, err := a.Register(ctx, gaas.RegisterRequest{Username: "alice", Password: "correct horse"})
	require.NoError(t, err)
	old, err := a.Login(ctx, gaas.LoginRequest{Username: "alice", Password: "correct horse"})
	require.NoError(t, err)
	_, err = a.Identify(ctx, old.AccessToken)
	require.NoError(t, err)

	_, err = db.Users.SetRole(ctx, root.ID, gaas.SetRoleRequest{UserID: u.ID, Role: gaas.RoleAdmin})
	require.NoError(t, err)
	_, err = a.Identify(ctx, old.AccessToken)
	assert.NoError(t, err, "within the bound (an hour here) the old standing is trusted")
	fresh, err := a.Login(ctx, gaas.LoginRequest{Username: "alice", Password: "correct horse"})
	require.NoError(t, err)
	_, err = a.Identify(ctx, fresh.AccessToken)
	require.NoError(t, err, "a newer token than the standing remembered reads it again")
	_, err = a.Identify(ctx, old.AccessToken)
	assert.ErrorIs(t, err, gaas.ErrUnauthorized, "and that read revokes the old token")
}
