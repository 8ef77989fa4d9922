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
		err = writeListing(w, r, logger, page, func(p gaas.Page) ([]gaas.User, string, error) {
			got, err := users.Users(r.Context(), callerID(r), p)
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
		u, err := users.User(r.Context(), callerID(r), id)
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
		u, err := users.SetRole(r.Context(), callerID(r), id, *req.Role)
		if err != nil {
			writeError(w, r, logger, userDetail(err, id, "Only admins may change roles.", "User %d is the last admin; make another admin first."))
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
		u, err := quota.Set(r.Context(), callerID(r), id, *req.hours, deref(req.Reason))
		if err != nil {
			writeError(w, r, logger, userDetail(err, id, "Only admins may set quotas.", ""))
			return
		}
		encode(w, http.StatusOK, toUser(u))
	})
}

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
		u, err := quota.Grant(r.Context(), callerID(r), id, *req.hours, deref(req.Reason))
		var short *gaas.QuotaError
		if errors.As(err, &short) {
			err = explain(err, gaas.ErrQuotaExceeded, "Cannot take back %s hours: user %d has %s left.", short.Asked, id, short.Remaining)
		}
		if err != nil {
			writeError(w, r, logger, userDetail(err, id, "Only admins may grant hours.", ""))
			return
		}
		encode(w, http.StatusOK, toUser(u))
	})
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

type ledgerResponse struct {
	ID        int64           `json:"id"`
	UserID    int64           `json:"user_id"`
	JobID     *int64          `json:"job_id"`
	ActorID   int64           `json:"actor_id"`
	Kind      gaas.LedgerKind `json:"kind"`
	Delta     gaas.Hours      `json:"delta_hours"`
	Balance   gaas.Hours      `json:"balance_hours"`
	Reason    string          `json:"reason"`
	CreatedAt time.Time       `json:"created_at"`
}

func toLedger(e gaas.LedgerEntry) ledgerResponse {
	return ledgerResponse{ID: e.ID, UserID: e.UserID, JobID: e.JobID, ActorID: e.ActorID, Kind: e.Kind,
		Delta: e.Delta, Balance: e.Balance, Reason: e.Reason, CreatedAt: e.CreatedAt}
}

func handleLedger(logger *slog.Logger, quota gaas.Quota) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := pathID(r)
		if err == nil {
			var page gaas.Page
			if page, err = readPage(r); err == nil {
				err = writeListing(w, r, logger, page, func(p gaas.Page) ([]gaas.LedgerEntry, string, error) {
					got, err := quota.Ledger(r.Context(), callerID(r), id, p)
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
		if !slots.run(w, r, forLogin, func() { u, err = auth.CreateUser(r.Context(), callerID(r), *req.Username, *req.Password, role) }) {
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
