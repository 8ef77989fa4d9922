package gaas

import (
	"context"
	"time"
)

// ExecutorAccount is an executor that may call a server's executor API:
// a name, and a token that only its creator saw.
type ExecutorAccount struct {
	// Name is the holder of the executor's leases; unique without regard to
	// letter case.
	Name      string
	CreatedAt time.Time
	// RevokedAt is set once its token was revoked: it never verifies again.
	RevokedAt *time.Time
	// LastSeenAt is when its token last verified, to the minute; nil if
	// never.
	LastSeenAt *time.Time
}

// ExecutorAccounts keeps the credentials of executors that run jobs on
// other machines and reach the server over HTTP.
type ExecutorAccounts interface {
	// CreateExecutor makes an executor account for an admin caller and
	// returns it with its token, which is shown this once: only a hash of
	// it is kept. A name taken in any letter case, revoked or not, is
	// ErrConflict; a name that is not 1 to 64 of ASCII letters, digits,
	// '.', '_' and '-' is ErrInvalid.
	CreateExecutor(ctx context.Context, caller int64, name string) (ExecutorAccount, string, error)
	// Executors lists the executor accounts, by name, for an admin caller.
	Executors(ctx context.Context, caller int64) ([]ExecutorAccount, error)
	// RevokeExecutor revokes an executor's token for an admin caller. The
	// leases it holds are left to expire. An unknown name is ErrNotFound;
	// revoking twice changes nothing.
	RevokeExecutor(ctx context.Context, caller int64, name string) (ExecutorAccount, error)
	// AuthenticateExecutor returns the name of the executor whose token
	// this is; a token that is unknown, malformed or revoked is
	// ErrUnauthorized.
	AuthenticateExecutor(ctx context.Context, token string) (string, error)
}

// MaxExecutorName bounds an executor account's name, in bytes.
const MaxExecutorName = 64

// ValidateExecutorName checks an executor account's name: 1 to
// MaxExecutorName ASCII letters, digits, '.', '_' and '-', starting with a
// letter or digit, so that it reads the same in logs, URLs and shells.
func ValidateExecutorName(name string) error {
	if name == "" || len(name) > MaxExecutorName {
		return Invalid("name", "must be 1 to %d characters", MaxExecutorName)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '.' && c != '_' && c != '-') {
			return Invalid("name", "must be ASCII letters, digits, '.', '_' and '-', starting with a letter or digit")
		}
	}
	return nil
}
