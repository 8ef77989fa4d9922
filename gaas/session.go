package gaas

import (
	"context"
	"time"
)

// Session is a signed-in browser: what a web page needs to act for its
// user. Its token, which only the browser holds, is not part of it; the
// store keeps only a hash of the token.
type Session struct {
	ID     int64
	UserID int64
	// Generation is the user's token generation at sign-in: the session
	// is good only while the user's is the same, so that whatever ends the
	// user's tokens (a password change or reset, a change of role,
	// disabling, logging out everywhere) ends their sessions too.
	Generation int64
	// CSRFSecret is what every form posted in the session must carry.
	CSRFSecret string
	CreatedAt  time.Time
	ExpiresAt  time.Time
	LastSeenAt time.Time
}

// MaxSessionTTL bounds how long a session may last: 90 days.
const MaxSessionTTL = 90 * 24 * time.Hour

// MaxSessionsPerUser bounds the sessions a user holds at once: a sign-in
// beyond it ends their oldest, so that signing in again and again keeps
// no more than a person's browsers need.
const MaxSessionsPerUser = 20

// SignInRequest asks Sessions.SignIn for a session of TTL for the user
// with this username and password.
type SignInRequest struct {
	Username string
	Password string
	TTL      time.Duration
}

// Sessions are sign-ins by password that a browser keeps as a cookie.
type Sessions interface {
	// SignIn checks the password as Authenticator.Login does (the same
	// ErrUnauthorized, after the same work, for a wrong username, a wrong
	// password and a disabled account) and starts a session. It returns
	// the session and its token, which only the caller ever sees. The
	// user's oldest sessions beyond MaxSessionsPerUser end.
	SignIn(ctx context.Context, req SignInRequest) (Session, string, error)

	// Session returns the session of token and its user as stored now,
	// without their balance, if the session has not expired, its user is
	// enabled and their token generation is the one it began at; any other
	// token is ErrUnauthorized.
	Session(ctx context.Context, token string) (Session, User, error)

	// SignOut ends the session of token; one that is already gone is not
	// an error.
	SignOut(ctx context.Context, token string) error

	// SignOutAll ends every session and every token of the caller, as
	// Authenticator.LogoutAll does.
	SignOutAll(ctx context.Context, caller int64) error
}
