package portal

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"path"
	"regexp"
	"time"

	"github.com/gaas-io/gaas/gaas"
)

// Cookies the portal sets.
const (
	// sessionCookie holds the session's token.
	sessionCookie = "gaas_session"
	// preSessionCookie holds the CSRF token of the sign-in form, which is
	// posted before there is a session: the form's csrf field must equal
	// it (a double-submit cookie).
	preSessionCookie = "gaas_csrf"
	// flashCookie holds the message a redirect leaves for the next page.
	flashCookie = "gaas_flash"
)

// csrfField is the name of the hidden field of every form.
const csrfField = "csrf"

// visitor is who asks for a page: their session, when they have one.
type visitor struct {
	session gaas.Session
	user    gaas.User
	token   string
}

type visitorKey struct{}

// visitorOf returns the signed-in visitor of r, or nil.
func visitorOf(r *http.Request) *visitor {
	v, _ := r.Context().Value(visitorKey{}).(*visitor)
	return v
}

// callerID is the signed-in user's id; pages behind signedIn have one.
func callerID(r *http.Request) int64 { return visitorOf(r).user.ID }

// sessions finds the session of the request's cookie, if it is good, and
// puts its visitor in the context. A cookie whose session has ended is
// cleared. A visitor's request counts against their requests in flight
// (Services.Admit), as an API request does: past the limit, 429.
func (p *site) sessions(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie(sessionCookie)
		if err != nil || c.Value == "" {
			next.ServeHTTP(w, r)
			return
		}
		sess, u, err := p.svc.Sessions.Session(r.Context(), c.Value)
		switch {
		case errors.Is(err, gaas.ErrUnauthorized):
			p.clearCookie(w, r, sessionCookie)
		case err != nil:
			p.showError(w, r, err)
			return
		default:
			r = r.WithContext(context.WithValue(r.Context(), visitorKey{}, &visitor{session: sess, user: u, token: c.Value}))
			done, ok := p.svc.Admit(u.ID)
			if !ok {
				w.Header().Set("Retry-After", "1")
				p.renderError(w, r, http.StatusTooManyRequests,
					"You have too many pages loading at once; nothing was changed. Wait for one to finish and try again.")
				return
			}
			defer done()
		}
		next.ServeHTTP(w, r)
	})
}

// signedIn lets through only a visitor with a session; anyone else is
// sent to the sign-in page (303).
func (p *site) signedIn(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if visitorOf(r) == nil {
			http.Redirect(w, r, p.link(r, "/portal/sign-in"), http.StatusSeeOther)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// maxForm bounds the body of a form.
const maxForm = 64 << 10

// csrf refuses (403) a request that is not GET or HEAD unless its form's
// csrf field holds the session's secret, or, for the sign-in form, the
// pre-session cookie's value; compared in constant time. A form posted
// without a session, other than the sign-in form, is refused the same way.
// It reads the form, bounded to maxForm, so handlers find it parsed.
func (p *site) csrf(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			next.ServeHTTP(w, r)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxForm)
		if err := r.ParseForm(); err != nil {
			if tooLarge := (*http.MaxBytesError)(nil); errors.As(err, &tooLarge) {
				p.renderError(w, r, http.StatusRequestEntityTooLarge,
					fmt.Sprintf("The form is larger than %d KiB, so it was refused and nothing was changed.", maxForm>>10))
				return
			}
			p.renderError(w, r, http.StatusBadRequest, "The form could not be read; nothing was changed.")
			return
		}
		var want string
		if v := visitorOf(r); v != nil {
			want = v.session.CSRFSecret
		}
		if r.URL.Path == "/portal/sign-in" {
			want = ""
			if c, err := r.Cookie(preSessionCookie); err == nil {
				want = c.Value
			}
		}
		got := r.PostForm[csrfField]
		if want == "" || len(got) != 1 || subtle.ConstantTimeCompare([]byte(got[0]), []byte(want)) != 1 {
			p.renderError(w, r, http.StatusForbidden,
				"This form's security token is missing or out of date, so it was refused and nothing was changed. Go back, reload the page and try again.")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// csrfToken is the token the forms of r's page carry.
func csrfToken(r *http.Request) string {
	if v := visitorOf(r); v != nil {
		return v.session.CSRFSecret
	}
	return ""
}

// randomToken is 32 random bytes in unpadded base64url.
func randomToken() string {
	var b [32]byte
	rand.Read(b[:]) // never fails (crypto/rand since Go 1.24)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// base is the path prefix of r's links and cookies: Config.BasePath, or
// else the request's X-Forwarded-Prefix when it is a clean path (no "."
// or ".." segment, no empty one).
func (p *site) base(r *http.Request) string {
	if p.cfg.BasePath != "" {
		return p.cfg.BasePath
	}
	if prefix := r.Header.Get("X-Forwarded-Prefix"); basePath.MatchString(prefix) && path.Clean(prefix) == prefix {
		return prefix
	}
	return ""
}

var basePath = regexp.MustCompile(`^(/[A-Za-z0-9._~-]+)+$`)

// link is path (which starts with /) under r's base path.
func (p *site) link(r *http.Request, path string) string { return p.base(r) + path }

// cookie is a cookie of the portal: HttpOnly, SameSite=Lax, under the base
// path, and Secure over TLS or when configured.
func (p *site) cookie(r *http.Request, name, value string, maxAge time.Duration) *http.Cookie {
	path := p.base(r)
	if path == "" {
		path = "/"
	}
	c := &http.Cookie{Name: name, Value: value, Path: path, HttpOnly: true, SameSite: http.SameSiteLaxMode,
		Secure: r.TLS != nil || p.cfg.SecureCookies}
	switch {
	case maxAge > 0:
		c.MaxAge = int(maxAge / time.Second)
	case maxAge < 0:
		c.MaxAge = -1
	}
	return c
}

func (p *site) clearCookie(w http.ResponseWriter, r *http.Request, name string) {
	http.SetCookie(w, p.cookie(r, name, "", -1))
}

// securityHeaders sets the headers every page of the portal carries: no
// script but the portal's own files, no framing, no sniffing, and no
// referrer beyond the site.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self';"+
			" object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		next.ServeHTTP(w, r)
	})
}

// withoutVisitor is ctx with no signed-in visitor.
func withoutVisitor(ctx context.Context) context.Context {
	return context.WithValue(ctx, visitorKey{}, (*visitor)(nil))
}
