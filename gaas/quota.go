package gaas

import (
	"context"
	"time"
)

// LedgerKind says why a balance changed.
type LedgerKind string

const (
	// LedgerGrant adds credits to an allocation, or takes them back from
	// the default one when negative; a new allocation's first entry, and a
	// new account's default quota, is a grant.
	LedgerGrant LedgerKind = "grant"
	// LedgerSet records an admin assigning the remaining credits of a
	// default allocation outright.
	LedgerSet LedgerKind = "set"
	// LedgerCharge records what a submitted job drew from one allocation:
	// its cost, split over the allocations it drew from.
	LedgerCharge LedgerKind = "charge"
	// LedgerRefund records credits returned by a rejected, cancelled or
	// shorter-than-estimated job, to the allocations it drew from.
	LedgerRefund LedgerKind = "refund"
	// LedgerExpire takes what remains of an allocation when it ends. A
	// refund to an allocation that has ended is followed at once by an
	// expire entry of what it then holds.
	LedgerExpire LedgerKind = "expire"
	// LedgerRevoke takes what remains of an allocation that an admin ends
	// early.
	LedgerRevoke LedgerKind = "revoke"
	// LedgerTransfer moves credits from a project's allocations (negative)
	// to a new allocation of one of its sub-projects (positive).
	LedgerTransfer LedgerKind = "transfer"
)

// LedgerKinds returns every kind of entry.
func LedgerKinds() []LedgerKind {
	return []LedgerKind{LedgerGrant, LedgerSet, LedgerCharge, LedgerRefund, LedgerExpire, LedgerRevoke, LedgerTransfer}
}

// LedgerEntry is one change of one allocation of an account. The ledger is
// append-only: for every allocation the sum of its entries' deltas is its
// remaining credits, and for every account the sum of the deltas is its
// balance as the ledger stands, the remaining of all its allocations
// (active or not; an allocation leaves it with its expire entry).
type LedgerEntry struct {
	ID           int64
	AccountID    int64
	AllocationID int64
	// UserID is the user whose personal account it is; 0 for a project's.
	UserID int64
	// MemberID, for a project's charge or refund, is the member whose job it is.
	MemberID int64
	JobID    *int64
	// Who made the change: the user ActorID, or, when ActorID is 0, the
	// system under the name ActorSystem (SystemImport, SystemRegistration).
	ActorID     int64
	ActorSystem string
	Kind        LedgerKind
	Delta       Credits
	Remaining   Credits // the allocation's remaining right after this entry
	Balance     Credits // the account's balance right after this entry
	Reason      string
	CreatedAt   time.Time
}

// LedgerPage is one page of a ledger, oldest first. NextCursor is empty on the last page.
type LedgerPage struct {
	Items      []LedgerEntry
	NextCursor string
}

// BalanceRequest names the user whose balance Quota.Balance reads.
type BalanceRequest struct {
	UserID int64
}

// SetBalanceRequest asks Quota.Set to make the remaining credits of user
// UserID's default allocation Balance, recorded with Reason. For an
// account with no other allocation that is its balance.
type SetBalanceRequest struct {
	UserID  int64
	Balance Credits
	Reason  string
}

// GrantRequest asks Quota.Grant to add Delta credits to user UserID's
// default allocation (or take them back when negative), recorded with
// Reason.
type GrantRequest struct {
	UserID int64
	Delta  Credits
	Reason string
}

// LedgerRequest asks Quota.Ledger for a page of user UserID's ledger.
type LedgerRequest struct {
	UserID int64
	Page
}

// Quota administers balances through each account's default allocation
// (see Allocation). Every method takes the caller's user id, then a
// request that names everything else, and decides from the caller's
// current role in the store.
type Quota interface {
	// Balance returns the credits a user's active allocations hold now, to
	// an admin or that user.
	Balance(ctx context.Context, caller int64, req BalanceRequest) (Credits, error)

	// Set makes the remaining credits of a user's default allocation
	// req.Balance (admin only), recorded as a "set" entry; the balance is
	// that plus what other active allocations hold. A balance below zero
	// or above MaxCredits is a *ValidationError on "balance".
	Set(ctx context.Context, caller int64, req SetBalanceRequest) (User, error)

	// Grant adds credits to a user's default allocation, or takes them
	// back when negative (admin only). Taking back more than it holds is a
	// *QuotaError: nothing goes below zero. A delta that is zero, larger
	// than MaxCredits either way, or would take the account above
	// MaxCredits is a *ValidationError on "delta".
	Grant(ctx context.Context, caller int64, req GrantRequest) (User, error)

	// Ledger returns a user's ledger, oldest first, to an admin or that user.
	Ledger(ctx context.Context, caller int64, req LedgerRequest) (LedgerPage, error)
}

// Token is a signed bearer token and when it expires.
type Token struct {
	AccessToken string
	ExpiresAt   time.Time
	ExpiresIn   time.Duration
}

// RegisterRequest asks Authenticator.Register for an account of one's
// own named Username, with password Password.
type RegisterRequest struct {
	Username string
	Password string
}

// LoginRequest is what Authenticator.Login checks: a username, in any
// letter case, and its password.
type LoginRequest struct {
	Username string
	Password string
}

// CreateUserRequest asks Authenticator.CreateUser for an account named
// Username, with password Password and role Role.
type CreateUserRequest struct {
	Username string
	Password string
	Role     Role
}

// ChangePasswordRequest asks Authenticator.ChangePassword to replace the
// caller's password Old with New.
type ChangePasswordRequest struct {
	Old string
	New string
}

// ResetPasswordRequest asks Authenticator.ResetPassword to set user
// UserID's password to Password.
type ResetPasswordRequest struct {
	UserID   int64
	Password string
}

// Authenticator registers users, checks passwords and issues and verifies
// tokens. A method that acts for a caller takes the caller's user id and
// then a request struct, as the services do; one that acts for no one yet
// takes a request struct, or the token it checks.
type Authenticator interface {
	// Register creates an account with role user and the default quota.
	// It returns ErrInvalid for a bad username or password and ErrConflict
	// when the username is taken, in any letter case.
	Register(ctx context.Context, req RegisterRequest) (User, error)

	// CheckRegistration says, without hashing anything, whether Register
	// would refuse req: ErrInvalid or ErrConflict as
	// Register, or nil. It lets a caller answer refusals before it waits
	// for the CPU that hashing takes.
	CheckRegistration(ctx context.Context, req RegisterRequest) error

	// CreateUser creates an account with the given role for caller, who
	// must be an admin (ErrForbidden; an unknown caller is
	// ErrUnauthorized); other errors are those of Register.
	CreateUser(ctx context.Context, caller int64, req CreateUserRequest) (User, error)

	// Login checks a password and issues a token. A wrong username, a
	// wrong password and a disabled account give the same ErrUnauthorized,
	// after the same work.
	Login(ctx context.Context, req LoginRequest) (Token, error)

	// Authenticate verifies a token and returns its user as the store holds
	// them now. Any token that does not verify, or whose user is gone, is
	// ErrUnauthorized.
	Authenticate(ctx context.Context, token string) (User, error)

	// Identify verifies a token and returns the id of the user it names:
	// for callers whose next step is a call to a service, which checks that
	// the caller exists, and their role, as the store holds them then. A
	// token that does not verify, or was revoked, is ErrUnauthorized. To
	// stay cheap it may learn of a revocation made elsewhere only after a
	// bound of time that the implementation documents.
	Identify(ctx context.Context, token string) (int64, error)

	// ChangePassword sets the caller's password when old is their current
	// one, ends every token they hold and issues a new one. A wrong old
	// password is ErrForbidden, after the same work as a wrong login; a bad
	// new one is ErrInvalid.
	ChangePassword(ctx context.Context, caller int64, req ChangePasswordRequest) (Token, error)

	// ResetPassword sets user id's password (admin only: ErrForbidden) and
	// ends every token the user holds.
	ResetPassword(ctx context.Context, caller int64, req ResetPasswordRequest) (User, error)

	// LogoutAll ends every token the caller holds, this one too.
	LogoutAll(ctx context.Context, caller int64) error
}
