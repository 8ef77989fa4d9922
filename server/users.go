package server

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/gaas-io/gaas/gaas"
)

func handleListUsers(logger *slog.Logger, users gaas.UserService) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		page, err := readPage(r)
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		f := gaas.UserFilter{Page: page, Username: r.URL.Query().Get("username")}
		err = writeListing(w, r, logger, page, func(p gaas.Page) ([]gaas.User, string, error) {
			f.Page = p
			got, err := users.Users(r.Context(), callerID(r), f)
			return got.Items, got.NextCursor, err
		}, func(u gaas.User) int64 { return u.ID }, toUser)
		if err != nil {
			writeError(w, r, logger, explain(err, gaas.ErrForbidden, "Only admins may list users."))
		}
	})
}

func handleGetUser(logger *slog.Logger, users gaas.UserService) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := pathID(r)
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		u, err := users.User(r.Context(), callerID(r), gaas.GetUserRequest{UserID: id})
		if err != nil {
			writeError(w, r, logger, explain(err, gaas.ErrNotFound, "User %d does not exist.", id))
			return
		}
		encode(w, http.StatusOK, toUser(u))
	})
}

type roleRequest struct {
	Role *gaas.Role `json:"role"`
}

func (q roleRequest) Valid() error {
	if q.Role == nil {
		return errField("role", "is required")
	}
	return nil
}

func handleSetRole(logger *slog.Logger, users gaas.UserService) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := pathID(r)
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		req, err := decode[roleRequest](w, r)
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		u, err := users.SetRole(r.Context(), callerID(r), gaas.SetRoleRequest{UserID: id, Role: *req.Role})
		if err != nil {
			writeError(w, r, logger, userDetail(err, id, "Only admins may change roles.", "User %d is the last enabled admin; make another admin first."))
			return
		}
		encode(w, http.StatusOK, toUser(u))
	})
}

// userDetail words the errors of an admin's change to user id.
func userDetail(err error, id int64, forbidden, conflict string) error {
	err = explain(err, gaas.ErrForbidden, "%s", forbidden)
	err = explain(err, gaas.ErrNotFound, "User %d does not exist.", id)
	if conflict != "" {
		err = explain(err, gaas.ErrConflict, conflict, id)
	}
	return err
}

// setQuotaNames are the wire names of Quota.Set's inputs.
var setQuotaNames = wireNames{"balance": "gpu_hours_quota"}

type setQuotaRequest struct {
	Quota  json.RawMessage `json:"gpu_hours_quota"`
	Reason *string         `json:"reason"`

	hours *gaas.Hours
}

func (q *setQuotaRequest) Valid() (err error) {
	if q.hours, err = hoursField(q.Quota, "gpu_hours_quota"); err == nil && q.hours == nil {
		err = errField("gpu_hours_quota", "is required")
	}
	return err
}

func handleSetQuota(logger *slog.Logger, quota gaas.Quota) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := pathID(r)
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		req, err := decode[*setQuotaRequest](w, r)
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		u, err := quota.Set(r.Context(), callerID(r), gaas.SetBalanceRequest{UserID: id, Balance: gaas.CreditsOf(*req.hours), Reason: deref(req.Reason)})
		if err != nil {
			writeError(w, r, logger, userDetail(setQuotaNames.rename(err), id, "Only admins may set quotas.", ""))
			return
		}
		encode(w, http.StatusOK, toUser(u))
	})
}

// grantNames are the wire names of Quota.Grant's inputs.
var grantNames = wireNames{"delta": "hours"}

type grantRequest struct {
	Hours  json.RawMessage `json:"hours"`
	Reason *string         `json:"reason"`

	hours *gaas.Hours
}

func (g *grantRequest) Valid() (err error) {
	if g.hours, err = hoursField(g.Hours, "hours"); err == nil && g.hours == nil {
		err = errField("hours", "is required")
	}
	return err
}

func handleGrant(logger *slog.Logger, quota gaas.Quota) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := pathID(r)
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		req, err := decode[*grantRequest](w, r)
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		u, err := quota.Grant(r.Context(), callerID(r), gaas.GrantRequest{UserID: id, Delta: gaas.CreditsOf(*req.hours), Reason: deref(req.Reason)})
		var short *gaas.QuotaError
		if errors.As(err, &short) {
			err = explain(err, gaas.ErrQuotaExceeded, "Cannot take back %s hours: user %d has %s left.", short.Asked, id, short.Remaining)
		}
		if err != nil {
			writeError(w, r, logger, userDetail(grantNames.rename(err), id, "Only admins may grant hours.", ""))
			return
		}
		encode(w, http.StatusOK, toUser(u))
	})
}

func deref[T any](p *T) T {
	if p == nil {
		var zero T
		return zero
	}
	return *p
}

// ledgerResponse is a ledger entry: the fields of balances before
// allocations, whose amounts are credits (hours at rate 1) under their
// old names, then where the entry falls among the account's allocations.
type ledgerResponse struct {
	ID          int64           `json:"id"`
	UserID      *int64          `json:"user_id"`   // null for a project's entries
	MemberID    *int64          `json:"member_id"` // whose job a project's charge or refund is; else null
	JobID       *int64          `json:"job_id"`
	ActorID     *int64          `json:"actor_id"`     // null when the system made the entry
	ActorSystem *string         `json:"actor_system"` // the system's name; null when a user made it
	Kind        gaas.LedgerKind `json:"kind"`
	Delta       creditsJSON     `json:"delta_hours"`
	Balance     creditsJSON     `json:"balance_hours"`
	Reason      string          `json:"reason"`
	CreatedAt   time.Time       `json:"created_at"`

	AccountID           int64       `json:"account_id"`
	AllocationID        int64       `json:"allocation_id"`
	AllocationRemaining creditsJSON `json:"allocation_remaining"`
}

func toLedger(e gaas.LedgerEntry) ledgerResponse {
	out := ledgerResponse{ID: e.ID, UserID: nonZero(e.UserID), MemberID: nonZero(e.MemberID), JobID: e.JobID, Kind: e.Kind,
		Delta: creditsJSON(e.Delta), Balance: creditsJSON(e.Balance), Reason: e.Reason, CreatedAt: e.CreatedAt,
		AccountID: e.AccountID, AllocationID: e.AllocationID, AllocationRemaining: creditsJSON(e.Remaining)}
	if e.ActorSystem != "" {
		out.ActorSystem = &e.ActorSystem
	} else {
		out.ActorID = &e.ActorID
	}
	return out
}

func handleLedger(logger *slog.Logger, quota gaas.Quota) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := pathID(r)
		if err == nil {
			var page gaas.Page
			if page, err = readPage(r); err == nil {
				err = writeListing(w, r, logger, page, func(p gaas.Page) ([]gaas.LedgerEntry, string, error) {
					got, err := quota.Ledger(r.Context(), callerID(r), gaas.LedgerRequest{UserID: id, Page: p})
					return got.Items, got.NextCursor, err
				}, func(e gaas.LedgerEntry) int64 { return e.ID }, toLedger)
			}
		}
		if err != nil {
			writeError(w, r, logger, explain(err, gaas.ErrNotFound, "User %d does not exist.", id))
		}
	})
}

// createUserRequest is the body of POST /users; role defaults to user.
type createUserRequest struct {
	Username *string    `json:"username"`
	Password *string    `json:"password"`
	Role     *gaas.Role `json:"role"`
}

func (c createUserRequest) Valid() error {
	return credentials{Username: c.Username, Password: c.Password}.Valid()
}

// handleCreateUser lets an admin make an account, the way to make one when
// registration is closed. The library refuses anyone else before hashing.
func handleCreateUser(logger *slog.Logger, auth gaas.Authenticator, slots *hashSlots) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := decode[createUserRequest](w, r)
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		role := gaas.RoleUser
		if req.Role != nil {
			role = *req.Role
		}
		var u gaas.User
		if !slots.run(w, r, forLogin, func() {
			u, err = auth.CreateUser(r.Context(), callerID(r), gaas.CreateUserRequest{Username: *req.Username, Password: *req.Password, Role: role})
		}) {
			return
		}
		if err != nil {
			err = explain(err, gaas.ErrForbidden, "Only admins may create accounts.")
			writeError(w, r, logger, explain(err, gaas.ErrConflict, "The username %q is already taken.", *req.Username))
			return
		}
		w.Header().Set("Location", "/users/"+itoa(u.ID))
		encode(w, http.StatusCreated, toUser(u))
	})
}

type changePasswordRequest struct {
	OldPassword *string `json:"old_password"`
	NewPassword *string `json:"new_password"`
}

func (c changePasswordRequest) Valid() error {
	v := &gaas.ValidationError{}
	if c.OldPassword == nil {
		v.Add("old_password", "is required")
	}
	if c.NewPassword == nil {
		v.Add("new_password", "is required")
	}
	return v.Err()
}

// handleChangePassword sets the caller's password, given the old one, and
// answers with a new token: every older one, the caller's own too, stops
// working. A wrong old password counts as a failed login of the caller's
// account and address, and the check waits for a hash slot as a login does.
func handleChangePassword(logger *slog.Logger, auth gaas.Authenticator, guard loginGuard, slots *hashSlots) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := decode[changePasswordRequest](w, r)
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		// '#' is in no username, so the caller's id is a key of its own.
		attempt, ok := guard.admit(w, r, "#"+itoa(callerID(r)))
		if !ok {
			return
		}
		var tok gaas.Token
		if !slots.run(w, r, forLogin, func() {
			tok, err = auth.ChangePassword(r.Context(), callerID(r), gaas.ChangePasswordRequest{Old: *req.OldPassword, New: *req.NewPassword})
		}) {
			attempt.refund()
			return
		}
		if !errors.Is(err, gaas.ErrForbidden) {
			attempt.refund() // only a wrong old password is counted
		}
		if err != nil {
			err = explain(err, gaas.ErrForbidden, "The old password is wrong.")
			err = explain(err, gaas.ErrConflict, "The password was changed meanwhile; log in again.")
			writeError(w, r, logger, err)
			return
		}
		writeToken(w, tok)
	})
}

// handleLogoutAll ends every token of the caller, the one of this request too.
func handleLogoutAll(logger *slog.Logger, auth gaas.Authenticator) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := auth.LogoutAll(r.Context(), callerID(r)); err != nil {
			writeError(w, r, logger, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

type resetPasswordRequest struct {
	Password *string `json:"password"`
}

func (q resetPasswordRequest) Valid() error {
	if q.Password == nil {
		return errField("password", "is required")
	}
	return nil
}

func handleResetPassword(logger *slog.Logger, auth gaas.Authenticator, slots *hashSlots) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := pathID(r)
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		req, err := decode[resetPasswordRequest](w, r)
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		var u gaas.User
		if !slots.run(w, r, forLogin, func() {
			u, err = auth.ResetPassword(r.Context(), callerID(r), gaas.ResetPasswordRequest{UserID: id, Password: *req.Password})
		}) {
			return
		}
		if err != nil {
			writeError(w, r, logger, userDetail(err, id, "Only admins may reset passwords.", ""))
			return
		}
		encode(w, http.StatusOK, toUser(u))
	})
}

// handleSetDisabled disables or enables an account; it takes no body.
func handleSetDisabled(logger *slog.Logger, users gaas.UserService, disabled bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := pathID(r)
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		u, err := users.SetDisabled(r.Context(), callerID(r), gaas.SetDisabledRequest{UserID: id, Disabled: disabled})
		if err != nil {
			writeError(w, r, logger, userDetail(err, id, "Only admins may disable or enable accounts.",
				"User %d is the last enabled admin; enable or make another admin first."))
			return
		}
		encode(w, http.StatusOK, toUser(u))
	})
}
