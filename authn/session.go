package authn

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/gaas-io/gaas/gaas"
)

// SessionStore is what Sessions needs of a store; store.Sessions
// implements it. It checks no caller and no password.
type SessionStore interface {
	// CreateSession stores s (UserID, Generation, CSRFSecret) under
	// tokenHash, begun now by the store's clock and ending ttl later, and
	// ends the user's oldest sessions beyond gaas.MaxSessionsPerUser.
	CreateSession(ctx context.Context, tokenHash string, s gaas.Session, ttl time.Duration) (gaas.Session, error)
	// SessionByTokenHash returns the unexpired session under tokenHash and
	// its user as stored now; any other is gaas.ErrNotFound.
	SessionByTokenHash(ctx context.Context, tokenHash string) (gaas.Session, gaas.User, error)
	// DeleteSession deletes the session under tokenHash, if any.
	DeleteSession(ctx context.Context, tokenHash string) error
	// DeleteSessions deletes every session of user id.
	DeleteSessions(ctx context.Context, id int64) error
}

// Sessions implements gaas.Sessions: sign-in by password, as Login checks
// one, to a session that a browser holds as a cookie.
type Sessions struct {
	auth  *Authenticator
	store SessionStore
}

var _ gaas.Sessions = (*Sessions)(nil)

// NewSessions returns sessions kept in store, whose passwords auth checks
// and whose revocations (LogoutAll, password changes, disabling) end them.
func NewSessions(auth *Authenticator, store SessionStore) *Sessions {
	return &Sessions{auth: auth, store: store}
}

// sessionTokenBytes is the randomness of a session token (and of a CSRF
// secret): 256 bits, which no one guesses, so that a fast hash of the
// token is as safe to keep as a slow one.
const sessionTokenBytes = 32

// randomText is n random bytes in unpadded base64url.
func randomText(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand since Go 1.24)
	return base64.RawURLEncoding.EncodeToString(b)
}

// hashSessionToken is the hash kept of a session token: its SHA-256, in hex.
func hashSessionToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// errSession is the one answer to a session token that does not admit.
var errSession = fmt.Errorf("authn: no such session: %w", gaas.ErrUnauthorized)

// SignIn implements gaas.Sessions.
func (s *Sessions) SignIn(ctx context.Context, req gaas.SignInRequest) (gaas.Session, string, error) {
	if req.TTL <= 0 || req.TTL > gaas.MaxSessionTTL {
		return gaas.Session{}, "", fmt.Errorf("authn: sign in: %w", gaas.Invalid("ttl", "must be more than 0 and at most %v", gaas.MaxSessionTTL))
	}
	u, err := s.auth.checkPassword(ctx, gaas.LoginRequest{Username: req.Username, Password: req.Password})
	if err != nil {
		return gaas.Session{}, "", err
	}
	token := randomText(sessionTokenBytes)
	// The generation read with the password: a revocation between that
	// read and this write leaves a session that never admits.
	sess, err := s.store.CreateSession(ctx, hashSessionToken(token), gaas.Session{UserID: u.ID, Generation: u.TokenGeneration,
		CSRFSecret: randomText(sessionTokenBytes)}, req.TTL)
	if err != nil {
		return gaas.Session{}, "", fmt.Errorf("authn: sign in: %w", err)
	}
	return sess, token, nil
}

// Session implements gaas.Sessions. It reads the session and its user's
// standing from the store each time, so a revocation made anywhere ends
// the session at once.
func (s *Sessions) Session(ctx context.Context, token string) (gaas.Session, gaas.User, error) {
	if token == "" {
		return gaas.Session{}, gaas.User{}, errSession
	}
	sess, u, err := s.store.SessionByTokenHash(ctx, hashSessionToken(token))
	switch {
	case errors.Is(err, gaas.ErrNotFound):
		return gaas.Session{}, gaas.User{}, errSession
	case err != nil:
		return gaas.Session{}, gaas.User{}, fmt.Errorf("authn: session: %w", err)
	case u.Disabled, u.TokenGeneration != sess.Generation:
		return gaas.Session{}, gaas.User{}, fmt.Errorf("%w: user %d's sessions were ended", errSession, u.ID)
	}
	return sess, u, nil
}

// SignOut implements gaas.Sessions.
func (s *Sessions) SignOut(ctx context.Context, token string) error {
	if err := s.store.DeleteSession(ctx, hashSessionToken(token)); err != nil {
		return fmt.Errorf("authn: sign out: %w", err)
	}
	return nil
}

// SignOutAll implements gaas.Sessions: the revocation ends the sessions,
// and their rows are deleted as well.
func (s *Sessions) SignOutAll(ctx context.Context, caller int64) error {
	if err := s.auth.LogoutAll(ctx, caller); err != nil {
		return err
	}
	if err := s.store.DeleteSessions(ctx, caller); err != nil {
		return fmt.Errorf("authn: sign out everywhere: %w", err)
	}
	return nil
}
