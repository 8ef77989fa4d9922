package server

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/gaas-io/gaas/gaas"
	"github.com/gaas-io/gaas/server/portal"
)

// userResponse is a user as the original API showed one; gpu_hours_quota
// is the balance: the credits of the user's active allocations, which are
// hours at rate 1.
type userResponse struct {
	ID       int64       `json:"id"`
	Username string      `json:"username"`
	Role     gaas.Role   `json:"role"`
	Quota    creditsJSON `json:"gpu_hours_quota"`
	Disabled bool        `json:"disabled,omitempty"` // shown only when true: the original had no such field
}

func toUser(u gaas.User) userResponse {
	return userResponse{ID: u.ID, Username: u.Username, Role: u.Role, Quota: creditsJSON(u.Balance), Disabled: u.Disabled}
}

// credentials is the body of /register and the JSON body of /login.
type credentials struct {
	Username *string `json:"username"`
	Password *string `json:"password"`
}

func (c credentials) Valid() error {
	v := &gaas.ValidationError{}
	if c.Username == nil {
		v.Add("username", "is required")
	}
	if c.Password == nil {
		v.Add("password", "is required")
	}
	return v.Err()
}

// registrationPolicy is who may register through POST /register.
type registrationPolicy struct {
	closed bool
	byAddr *limiters // accounts made, by client address
}

// handleRegister reads the body, answers refusals (a taken username, bad
// input) without hashing, counts the account against the client's address,
// and only then waits for a hash slot, behind any waiting logins.
func handleRegister(logger *slog.Logger, auth gaas.Authenticator, policy registrationPolicy, slots *hashSlots) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if policy.closed {
			writeProblem(w, r, problem{Type: "urn:gaas:problem:forbidden", Title: http.StatusText(http.StatusForbidden),
				Status: http.StatusForbidden, Detail: "Registration is closed on this server: an admin creates accounts (POST /users)."})
			return
		}
		req, err := decode[credentials](w, r)
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		register := gaas.RegisterRequest{Username: *req.Username, Password: *req.Password}
		if err := auth.CheckRegistration(r.Context(), register); err != nil {
			writeError(w, r, logger, explain(err, gaas.ErrConflict, "The username %q is already taken.", *req.Username))
			return
		}
		addr := clientAddress(r)
		if ok, wait := policy.byAddr.take(addr, time.Now()); !ok {
			tooMany(w, r, wait, "Too many accounts were registered from your address; try again in "+retryAfter(wait)+" seconds.")
			return
		}
		var u gaas.User
		if !slots.run(w, r, forRegistration, func() { u, err = auth.Register(r.Context(), register) }) {
			policy.byAddr.give(addr, time.Now())
			return
		}
		if err != nil {
			policy.byAddr.give(addr, time.Now()) // only accounts made are counted
			writeError(w, r, logger, explain(err, gaas.ErrConflict, "The username %q is already taken.", *req.Username))
			return
		}
		w.Header().Set("Location", "/users/"+itoa(u.ID))
		encode(w, http.StatusCreated, toUser(u))
	})
}

// tokenResponse is a new token, as OAuth2's token endpoint answers.
type tokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
}

// writeToken answers with a new token, which no cache may keep.
func writeToken(w http.ResponseWriter, tok gaas.Token) {
	w.Header().Set("Cache-Control", "no-store")
	encode(w, http.StatusOK, tokenResponse{AccessToken: tok.AccessToken, TokenType: "bearer", ExpiresIn: int64(tok.ExpiresIn / time.Second)})
}

// handleLogin reads the body before it tries the password under the
// limits on logins (passwordLogin), so that a client trickling its body
// holds no hash slot.
func handleLogin(logger *slog.Logger, auth gaas.Authenticator, login portal.SignInGate) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := readLogin(w, r)
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		var tok gaas.Token
		err = login(r, *req.Username, func() (err error) {
			tok, err = auth.Login(r.Context(), gaas.LoginRequest{Username: *req.Username, Password: *req.Password})
			return err
		})
		if refused := (*portal.Refused)(nil); errors.As(err, &refused) {
			writeRefused(w, r, refused)
			return
		}
		if err != nil {
			writeError(w, r, logger, explain(err, gaas.ErrUnauthorized, "Wrong username or password."))
			return
		}
		writeToken(w, tok)
	})
}

// readLogin reads credentials from JSON or from a form, as the OAuth2
// password flow sends them (grant_type, scope and client fields are
// accepted and ignored).
func readLogin(w http.ResponseWriter, r *http.Request) (credentials, error) {
	var c credentials
	mt, body, err := readBody(w, r, "application/json", "application/x-www-form-urlencoded")
	if err != nil {
		return c, err
	}
	if mt == "application/json" {
		return c, unmarshal(body, &c)
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return c, errField("body", "is not a valid form")
	}
	v := &gaas.ValidationError{}
	for _, f := range []struct {
		name string
		dst  **string
	}{{"username", &c.Username}, {"password", &c.Password}} {
		switch vals := form[f.name]; len(vals) {
		case 0:
			v.Add(f.name, "is required")
		case 1:
			*f.dst = &vals[0]
		default:
			v.Add(f.name, "is given more than once")
		}
	}
	if gt := form.Get("grant_type"); gt != "" && gt != "password" {
		v.Add("grant_type", `must be "password"`)
	}
	return c, v.Err()
}

func handleHealth(logger *slog.Logger, db Pinger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := db.Ping(ctx); err != nil {
			logger.WarnContext(r.Context(), "health check failed", "err", err)
			writeProblem(w, r, problem{Type: "about:blank", Title: "Service Unavailable", Status: http.StatusServiceUnavailable,
				Detail: "The database does not answer."})
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		encode(w, http.StatusOK, map[string]string{"status": "ok"})
	})
}

// meResponse is the caller, and the first meProjects of their projects.
type meResponse struct {
	userResponse
	Projects []membershipResponse `json:"projects"`
}

func handleMe(logger *slog.Logger, users gaas.UserService, projects gaas.Projects) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, err := users.User(r.Context(), callerID(r), gaas.GetUserRequest{UserID: callerID(r)})
		var ms gaas.MembershipPage
		if err == nil {
			ms, err = projects.Memberships(r.Context(), callerID(r), gaas.MembershipsRequest{Page: gaas.Page{Limit: meProjects}})
		}
		if err != nil {
			writeError(w, r, logger, explain(err, gaas.ErrUnauthorized, "The token's user no longer exists or is disabled."))
			return
		}
		out := meResponse{userResponse: toUser(u), Projects: make([]membershipResponse, len(ms.Items))}
		for i, m := range ms.Items {
			out.Projects[i] = toMembership(m)
		}
		encode(w, http.StatusOK, out)
	})
}
