package portal

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/gaas-io/gaas/gaas"
)

// signInPage is the data of the sign-in page.
type signInPage struct {
	Username string
	Error    string
}

func (p *site) handleSignInPage() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if visitorOf(r) != nil {
			http.Redirect(w, r, p.link(r, "/"), http.StatusSeeOther)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		p.render(w, r, http.StatusOK, "sign-in", "Sign in", signInPage{})
	})
}

// handleSignIn checks the password as POST /login does, under its limits,
// and starts a session. Every failure of the password, whatever it was,
// gets the same words.
func (p *site) handleSignIn() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		username, password := r.PostForm.Get("username"), r.PostForm.Get("password")
		fail := func(status int, msg string) {
			p.render(w, r, status, "sign-in", "Sign in", signInPage{Username: username, Error: msg})
		}
		if username == "" || password == "" {
			fail(http.StatusUnprocessableEntity, "Enter your username and your password.")
			return
		}
		var (
			sess  gaas.Session
			token string
		)
		err := p.svc.Gate(r, username, func() (err error) {
			sess, token, err = p.svc.Sessions.SignIn(r.Context(), gaas.SignInRequest{Username: username, Password: password, TTL: p.cfg.SessionTTL})
			return err
		})
		var refused *Refused
		switch {
		case errors.As(err, &refused) && refused.Busy:
			w.Header().Set("Retry-After", retryAfter(refused.RetryAfter))
			fail(http.StatusServiceUnavailable, "Too many passwords are being checked just now. Try again in a few seconds.")
			return
		case errors.As(err, &refused):
			w.Header().Set("Retry-After", retryAfter(refused.RetryAfter))
			fail(http.StatusTooManyRequests, "Too many failed sign-ins. Try again in "+retryAfter(refused.RetryAfter)+" seconds.")
			return
		case errors.Is(err, gaas.ErrUnauthorized):
			fail(http.StatusUnauthorized, "Wrong username or password.")
			return
		case err != nil:
			p.showError(w, r, err)
			return
		}
		if old := visitorOf(r); old != nil {
			p.svc.Sessions.SignOut(r.Context(), old.token) // a second sign-in replaces the first
		}
		http.SetCookie(w, p.cookie(r, sessionCookie, token, time.Until(sess.ExpiresAt)))
		http.Redirect(w, r, p.link(r, "/"), http.StatusSeeOther)
	})
}

// retryAfter is whole seconds, rounded up, at least 1.
func retryAfter(d time.Duration) string {
	return strconv.Itoa(max(1, int((d+time.Second-1)/time.Second)))
}

func (p *site) handleSignOut() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := p.svc.Sessions.SignOut(r.Context(), visitorOf(r).token); err != nil {
			p.showError(w, r, err)
			return
		}
		p.signedOut(w, r, "You have signed out.")
	})
}

// handleSignOutEverywhere ends every session and token of the user, as
// POST /me/logout-all does.
func (p *site) handleSignOutEverywhere() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := p.svc.Sessions.SignOutAll(r.Context(), callerID(r)); err != nil {
			p.showError(w, r, err)
			return
		}
		p.signedOut(w, r, "You have signed out everywhere: every session and API token of yours has ended.")
	})
}

// signedOut clears the session cookie and sends the visitor to the
// sign-in page with message, signed with a fresh pre-session token.
func (p *site) signedOut(w http.ResponseWriter, r *http.Request, message string) {
	p.clearCookie(w, r, sessionCookie)
	r = r.WithContext(withoutVisitor(r.Context()))
	r.Header.Del("Cookie")
	p.preSessionToken(w, r)
	p.redirect(w, r, "/portal/sign-in", message)
}
