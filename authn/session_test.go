package authn_test

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/authn"
	"github.com/gaas-io/gaas/gaas"
	"github.com/gaas-io/gaas/store"
	"github.com/gaas-io/gaas/store/storetest"
)

// clock is a store's clock that a test moves.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// sessionSite is a store, on one kind of database, with sessions on it.
type sessionSite struct {
	db       *store.DB
	auth     *authn.Authenticator
	sessions *authn.Sessions
	clock    *clock
	root     gaas.User
}

// forEachSessionSite runs fn on a SQLite file and, where
// GAAS_TEST_POSTGRES is set, on PostgreSQL.
func forEachSessionSite(t *testing.T, fn func(t *testing.T, s sessionSite)) {
	for _, b := range []struct {
		name string
		dsn  func(t *testing.T) string
	}{
		{"sqlite", func(t *testing.T) string { return filepath.Join(t.TempDir(), "gaas.db") }},
		{"postgres", func(t *testing.T) string { return storetest.PostgresDSN(t) }},
	} {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			c := &clock{t: time.Now()}
			db, err := store.Open(ctx, b.dsn(t), store.Options{Now: c.now})
			require.NoError(t, err)
			t.Cleanup(func() { db.Close() })
			tokens, err := authn.NewTokens(testKey, time.Minute, nil)
			require.NoError(t, err)
			auth := authn.NewAuthenticator(db.Accounts, authn.Hasher{Iterations: 1000}, tokens)
			root, err := auth.EnsureAdmin(ctx, "root", "root password")
			require.NoError(t, err)
			fn(t, sessionSite{db: db, auth: auth, sessions: authn.NewSessions(auth, db.Sessions), clock: c, root: root})
		})
	}
}

func (s sessionSite) user(t *testing.T, name string) gaas.User {
	t.Helper()
	u, err := s.auth.Register(context.Background(), gaas.RegisterRequest{Username: name, Password: "old password"})
	require.NoError(t, err)
	return u
}

func (s sessionSite) signIn(t *testing.T, name string) (gaas.Session, string) {
	t.Helper()
	sess, token, err := s.sessions.SignIn(context.Background(), gaas.SignInRequest{Username: name, Password: "old password", TTL: time.Hour})
	require.NoError(t, err)
	return sess, token
}

func TestSessions(t *testing.T) {
	ctx := context.Background()
	forEachSessionSite(t, func(t *testing.T, s sessionSite) {
		t.Run("sign_in_and_out", func(t *testing.T) {
			u := s.user(t, "ada")
			sess, token := s.signIn(t, "ADA") // any letter case, as Login
			assert.Equal(t, u.ID, sess.UserID)
			assert.NotEmpty(t, sess.CSRFSecret)
			assert.WithinDuration(t, s.clock.now().Add(time.Hour), sess.ExpiresAt, time.Second)

			got, gu, err := s.sessions.Session(ctx, token)
			require.NoError(t, err)
			assert.Equal(t, sess.ID, got.ID)
			assert.Equal(t, sess.CSRFSecret, got.CSRFSecret)
			assert.Equal(t, "ada", gu.Username)
			assert.Equal(t, gaas.RoleUser, gu.Role)

			require.NoError(t, s.sessions.SignOut(ctx, token))
			_, _, err = s.sessions.Session(ctx, token)
			assert.ErrorIs(t, err, gaas.ErrUnauthorized)
			assert.NoError(t, s.sessions.SignOut(ctx, token), "signing out twice is not an error")
		})
		t.Run("wrong_password_unknown_user_disabled", func(t *testing.T) {
			u := s.user(t, "bea")
			_, err := s.db.Users.SetDisabled(ctx, s.root.ID, gaas.SetDisabledRequest{UserID: u.ID, Disabled: true})
			require.NoError(t, err)
			for _, req := range []gaas.SignInRequest{
				{Username: "ada", Password: "wrong password"},
				{Username: "nobody", Password: "old password"},
				{Username: "bea", Password: "old password"},
				{Username: "bad name!", Password: "old password"},
			} {
				req.TTL = time.Hour
				_, token, err := s.sessions.SignIn(ctx, req)
				assert.ErrorIs(t, err, gaas.ErrUnauthorized, req.Username)
				assert.Empty(t, token)
				assert.Equal(t, "authn: wrong username or password: gaas: unauthorized", err.Error(), "one answer, whatever failed")
			}
			_, _, err = s.sessions.SignIn(ctx, gaas.SignInRequest{Username: "ada", Password: "old password"})
			assert.ErrorIs(t, err, gaas.ErrInvalid, "a session needs a lifetime")
		})
		t.Run("unknown_token", func(t *testing.T) {
			for _, token := range []string{"", "x", strings.Repeat("A", 43)} {
				_, _, err := s.sessions.Session(ctx, token)
				assert.ErrorIs(t, err, gaas.ErrUnauthorized)
			}
		})
		t.Run("expired", func(t *testing.T) {
			s.user(t, "cal")
			_, token := s.signIn(t, "cal")
			s.clock.add(59 * time.Minute)
			_, _, err := s.sessions.Session(ctx, token)
			require.NoError(t, err)
			s.clock.add(time.Minute)
			_, _, err = s.sessions.Session(ctx, token)
			assert.ErrorIs(t, err, gaas.ErrUnauthorized)
			// The next sign-in deletes the expired row.
			s.signIn(t, "cal")
			var n int
			require.NoError(t, s.raw().QueryRow("SELECT count(*) FROM sessions WHERE expires_at <= "+s.param()+"", s.clock.now().UTC()).Scan(&n))
			assert.Zero(t, n)
		})
		t.Run("only_a_hash_is_stored", func(t *testing.T) {
			s.user(t, "dee")
			sess, token := s.signIn(t, "dee")
			var hash string
			require.NoError(t, s.raw().QueryRow("SELECT token_hash FROM sessions WHERE id = "+s.param(), sess.ID).Scan(&hash))
			sum := sha256.Sum256([]byte(token))
			assert.Equal(t, hex.EncodeToString(sum[:]), hash)
			var n int
			require.NoError(t, s.raw().QueryRow("SELECT count(*) FROM sessions WHERE token_hash = "+s.param()+" OR csrf_secret = "+s.param(2),
				token, token).Scan(&n))
			assert.Zero(t, n, "the token itself is nowhere")
			assert.GreaterOrEqual(t, len(token), 43, "256 bits")
		})
		t.Run("revocations_end_sessions", func(t *testing.T) {
			for _, tc := range []struct {
				name   string
				revoke func(t *testing.T, u gaas.User)
			}{
				{"logout_all", func(t *testing.T, u gaas.User) { require.NoError(t, s.sessions.SignOutAll(ctx, u.ID)) }},
				{"logout_all_tokens", func(t *testing.T, u gaas.User) { require.NoError(t, s.auth.LogoutAll(ctx, u.ID)) }},
				{"change_password", func(t *testing.T, u gaas.User) {
					_, err := s.auth.ChangePassword(ctx, u.ID, gaas.ChangePasswordRequest{Old: "old password", New: "new password"})
					require.NoError(t, err)
				}},
				{"reset_password", func(t *testing.T, u gaas.User) {
					_, err := s.auth.ResetPassword(ctx, s.root.ID, gaas.ResetPasswordRequest{UserID: u.ID, Password: "reset password"})
					require.NoError(t, err)
				}},
				{"disable", func(t *testing.T, u gaas.User) {
					_, err := s.db.Users.SetDisabled(ctx, s.root.ID, gaas.SetDisabledRequest{UserID: u.ID, Disabled: true})
					require.NoError(t, err)
				}},
				{"role_change", func(t *testing.T, u gaas.User) {
					_, err := s.db.Users.SetRole(ctx, s.root.ID, gaas.SetRoleRequest{UserID: u.ID, Role: gaas.RoleAdmin})
					require.NoError(t, err)
				}},
			} {
				t.Run(tc.name, func(t *testing.T) {
					u := s.user(t, "rev-"+strings.ReplaceAll(tc.name, "_", "-"))
					_, a := s.signIn(t, u.Username)
					_, b := s.signIn(t, u.Username)
					other := s.user(t, "oth-"+strings.ReplaceAll(tc.name, "_", "-"))
					_, o := s.signIn(t, other.Username)
					tc.revoke(t, u)
					for _, token := range []string{a, b} {
						_, _, err := s.sessions.Session(ctx, token)
						assert.ErrorIs(t, err, gaas.ErrUnauthorized)
					}
					_, _, err := s.sessions.Session(ctx, o)
					assert.NoError(t, err, "another user's session goes on")
				})
			}
		})
	})
}

// raw is the store's own pool, to look at what it keeps.
func (s sessionSite) raw() *sql.DB {
	if p, ok := s.db.Pools()["postgres"]; ok {
		return p
	}
	return s.db.Pools()["writer"]
}

// param is the n-th placeholder (1 when not given) as the database reads it.
func (s sessionSite) param(n ...int) string {
	if _, ok := s.db.Pools()["postgres"]; ok {
		return "$" + strconv.Itoa(append(n, 1)[0])
	}
	return "?"
}

// A user holds at most gaas.MaxSessionsPerUser sessions: signing in again
// and again ends the oldest, and no one else's.
func TestSessionsBounded(t *testing.T) {
	ctx := context.Background()
	forEachSessionSite(t, func(t *testing.T, s sessionSite) {
		u := s.user(t, "ada")
		s.user(t, "bea")
		_, bea := s.signIn(t, "bea")
		var tokens []string
		for range gaas.MaxSessionsPerUser + 5 {
			_, token := s.signIn(t, "ada")
			tokens = append(tokens, token)
		}
		var n int
		require.NoError(t, s.raw().QueryRow("SELECT count(*) FROM sessions WHERE user_id = "+s.param(), u.ID).Scan(&n))
		assert.Equal(t, gaas.MaxSessionsPerUser, n)
		for i, token := range tokens {
			_, _, err := s.sessions.Session(ctx, token)
			if i < 5 {
				assert.ErrorIs(t, err, gaas.ErrUnauthorized, "sign-in %d, among the oldest, has ended", i)
			} else {
				assert.NoError(t, err, "sign-in %d goes on", i)
			}
		}
		_, _, err := s.sessions.Session(ctx, bea)
		assert.NoError(t, err, "another user's session goes on")
	})
}
