package gaas

import (
	"context"
	"encoding/base64"
	"strconv"
	"time"
	"unicode/utf8"
)

// Role is what a user may do. Only RoleAdmin may manage quotas, roles and
// the lifecycle of other users' jobs.
type Role string

const (
	RoleAdmin Role = "admin"
	RoleUser  Role = "user"
)

// Valid reports whether r is one of the known roles.
func (r Role) Valid() bool { return r == RoleAdmin || r == RoleUser }

// User is an account holder and their balance: the credits their active
// allocations hold now.
type User struct {
	ID       int64
	Username string
	Role     Role
	Balance  Credits
	// AccountID is the user's personal account, which holds their
	// allocations and ledger.
	AccountID int64
	CreatedAt time.Time

	// Disabled accounts cannot log in, and their tokens do not work.
	Disabled bool

	// TokenGeneration counts the revocations of the user's tokens. A token
	// carries the generation it was issued at and works only while the
	// user's is the same: changing the password or the role, disabling
	// the account and logging out everywhere each move it on.
	TokenGeneration int64
}

// IsAdmin reports whether u holds the admin role.
func (u User) IsAdmin() bool { return u.Role == RoleAdmin }

// Limits on credentials, counted in characters.
const (
	UsernameMinLen = 3
	UsernameMaxLen = 64
	PasswordMinLen = 8
	PasswordMaxLen = 1024
)

// ValidateUsername reports whether name is 3–64 characters of [A-Za-z0-9_.-].
func ValidateUsername(name string) error {
	if n := utf8.RuneCountInString(name); n < UsernameMinLen || n > UsernameMaxLen {
		return Invalid("username", "must be %d to %d characters", UsernameMinLen, UsernameMaxLen)
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return Invalid("username", "may hold only letters A-Z and a-z, digits, '_', '.' and '-'")
		}
	}
	return nil
}

// ValidatePassword reports whether password is 8–1024 characters of valid UTF-8.
func ValidatePassword(password string) error {
	if !utf8.ValidString(password) {
		return Invalid("password", "must be valid UTF-8")
	}
	if n := utf8.RuneCountInString(password); n < PasswordMinLen || n > PasswordMaxLen {
		return Invalid("password", "must be %d to %d characters", PasswordMinLen, PasswordMaxLen)
	}
	return nil
}

// Page asks for one page of a listing. Cursor is the NextCursor of the
// previous page, or empty for the first; Limit of 0 means DefaultLimit.
type Page struct {
	Limit  int
	Cursor string
}

// UserFilter narrows a listing of users. Zero fields do not filter.
type UserFilter struct {
	// Username selects the user of that name, compared without regard to
	// case: a page of at most one. A name no user could have selects none.
	Username string
	Page
}

// Paging limits of every listing.
const (
	DefaultLimit = 50
	MaxLimit     = 500
)

// Validate checks the limit, returning it with the default applied.
func (p Page) Validate() (int, error) {
	switch {
	case p.Limit == 0:
		return DefaultLimit, nil
	case p.Limit < 1 || p.Limit > MaxLimit:
		return 0, Invalid("limit", "must be between 1 and %d", MaxLimit)
	}
	return p.Limit, nil
}

// CursorAfter is the cursor of the page that continues a listing after
// the item with this id. Every listing is ordered by id, so a page that is
// cut short (by the size of its answer, say) can end at any of its items.
func CursorAfter(id int64) string {
	return base64.RawURLEncoding.EncodeToString(strconv.AppendInt(nil, id, 10))
}

// After decodes the cursor: the id of the item the page continues after,
// or ok false on the first page.
func (p Page) After() (id int64, ok bool, err error) {
	if p.Cursor == "" {
		return 0, false, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(p.Cursor)
	if err == nil {
		id, err = strconv.ParseInt(string(b), 10, 64)
	}
	if err != nil || id <= 0 {
		return 0, false, Invalid("cursor", "is not a cursor this listing returned")
	}
	return id, true, nil
}

// UserPage is one page of users, in order of id. NextCursor is empty on the last page.
type UserPage struct {
	Items      []User
	NextCursor string
}

// GetUserRequest names the user that UserService.User reads.
type GetUserRequest struct {
	UserID int64
}

// SetRoleRequest asks UserService.SetRole to give user UserID role Role.
type SetRoleRequest struct {
	UserID int64
	Role   Role
}

// SetDisabledRequest asks UserService.SetDisabled to disable user UserID
// (Disabled true) or enable them (false).
type SetDisabledRequest struct {
	UserID   int64
	Disabled bool
}

// UserService reads and administers accounts. Every method takes the
// caller's user id, then a request that names everything else, and decides
// from the caller's current role in the store.
type UserService interface {
	// User returns one user to an admin or to that user themselves. Anyone
	// else gets ErrNotFound; an unknown caller gets ErrUnauthorized.
	User(ctx context.Context, caller int64, req GetUserRequest) (User, error)

	// Users lists the users f selects to an admin (ErrForbidden for
	// others).
	Users(ctx context.Context, caller int64, f UserFilter) (UserPage, error)

	// SetRole changes a user's role (admin only: ErrForbidden). Demoting
	// the last enabled admin is ErrConflict. A change of role ends every
	// token the user holds.
	SetRole(ctx context.Context, caller int64, req SetRoleRequest) (User, error)

	// SetDisabled disables or enables an account (admin only:
	// ErrForbidden). Disabling ends every token the user holds, and the
	// account cannot log in until enabled again; disabling the last
	// enabled admin is ErrConflict.
	SetDisabled(ctx context.Context, caller int64, req SetDisabledRequest) (User, error)
}
