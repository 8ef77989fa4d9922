package portal_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/gaas"
	"github.com/gaas-io/gaas/server"
)

func TestSignInAndOut(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *site) {
		s.user("ada")
		b := s.browser()
		b.get("/")
		assert.Equal(t, "/portal/sign-in", b.url.Path, "a visitor without a session is sent to sign in")
		assert.Contains(t, b.page, `<label for="username">`)
		assert.Contains(t, b.page, `<label for="password">`)

		b.submit("/portal/sign-in", url.Values{"username": {"ada"}, "password": {"ada password"}})
		require.Equal(t, http.StatusOK, b.status, b.page)
		assert.Equal(t, "/", b.url.Path)
		assert.Contains(t, b.page, "ada")
		assert.Contains(t, b.page, "Sign out")
		assert.NotContains(t, b.page, "/portal/admin", "no admin link for a user")
		token := b.cookie("gaas_session").Value

		b.get("/portal/sign-in")
		assert.Equal(t, "/", b.url.Path, "the sign-in page sends a signed-in visitor home")

		b.submit("/portal/sign-out", nil)
		require.Equal(t, http.StatusOK, b.status, b.page)
		assert.Equal(t, "/portal/sign-in", b.url.Path)
		assert.Contains(t, b.page, "You have signed out.")
		assert.Nil(t, b.cookie("gaas_session"))
		_, _, err := s.db.Sessions.SessionByTokenHash(context.Background(), "")
		assert.ErrorIs(t, err, gaas.ErrNotFound)

		// The old cookie, played back, is no session.
		other := s.browser()
		req, _ := http.NewRequest(http.MethodGet, s.url("/"), nil)
		req.AddCookie(&http.Cookie{Name: "gaas_session", Value: token})
		resp := other.raw(req)
		assert.Equal(t, http.StatusSeeOther, resp.StatusCode)
		assert.Equal(t, "/portal/sign-in", resp.Header.Get("Location"))
	})
}

func TestSignInRefusals(t *testing.T) {
	s := newSite(t)
	s.user("ada")
	_, err := s.db.Users.SetDisabled(context.Background(), s.root.ID, gaas.SetDisabledRequest{UserID: s.user("bea").ID, Disabled: true})
	require.NoError(t, err)
	for _, tc := range []struct{ name, username, password string }{
		{"wrong_password", "ada", "not the password"},
		{"unknown_user", "nobody", "nobody password"},
		{"disabled", "bea", "bea password"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := s.browser()
			b.signIn(tc.username, tc.password)
			assert.Equal(t, http.StatusUnauthorized, b.status)
			assert.Contains(t, b.page, "Wrong username or password.", "one answer, whatever failed")
			assert.Nil(t, b.cookie("gaas_session"))
		})
	}
	t.Run("empty", func(t *testing.T) {
		b := s.browser()
		b.signIn("ada", "")
		assert.Equal(t, http.StatusUnprocessableEntity, b.status)
		assert.Contains(t, b.page, `value="ada"`, "the username is kept")
	})
}

// Sign-ins and POST /login share one budget of failures.
func TestSignInThrottled(t *testing.T) {
	s := newSite(t, siteOptions{cfg: server.Config{LoginsPerUser: 2, LoginsPerAddress: 100}})
	s.user("ada")
	b := s.browser()
	b.signIn("ada", "wrong password")
	assert.Equal(t, http.StatusUnauthorized, b.status)
	resp, err := http.PostForm(s.url("/login"), url.Values{"username": {"ada"}, "password": {"wrong password"}})
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	b.signIn("ada", "ada password")
	assert.Equal(t, http.StatusTooManyRequests, b.status, "even the right password waits")
	assert.Contains(t, b.page, "Too many failed sign-ins")
	assert.Nil(t, b.cookie("gaas_session"))
}

func TestCSRF(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *site) {
		b, _ := s.signedIn("ada")
		good, _ := b.form("/portal/sign-out")
		require.NotEmpty(t, good.Get("csrf"))
		stillIn := func(t *testing.T) {
			t.Helper()
			b.get("/")
			assert.Equal(t, "/", b.url.Path, "the session goes on: nothing was changed")
		}
		for _, tc := range []struct {
			name   string
			form   url.Values
			header []string
		}{
			{"no_token", url.Values{}, nil},
			{"wrong_token", url.Values{"csrf": {strings.Repeat("A", 43)}}, nil},
			{"empty_token", url.Values{"csrf": {""}}, nil},
			{"two_tokens", url.Values{"csrf": {good.Get("csrf"), good.Get("csrf")}}, nil},
			{"cross_origin", good, []string{"Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"}},
			{"cross_origin_no_fetch_metadata", good, []string{"Origin", "https://evil.example"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				b.post("/portal/sign-out", tc.form, tc.header...)
				assert.Equal(t, http.StatusForbidden, b.status)
				assert.Contains(t, b.page, "nothing was changed")
				stillIn(t)
			})
		}

		t.Run("sign_in_without_its_cookie", func(t *testing.T) {
			fresh := s.browser()
			fresh.get("/portal/sign-in")
			form, _ := fresh.form("/portal/sign-in")
			form.Set("username", "ada")
			form.Set("password", "ada password")
			another := s.browser() // has no pre-session cookie
			another.post("/portal/sign-in", form)
			assert.Equal(t, http.StatusForbidden, another.status)
			assert.Nil(t, another.cookie("gaas_session"))
			form.Set("csrf", "forged")
			fresh.post("/portal/sign-in", form)
			assert.Equal(t, http.StatusForbidden, fresh.status)
			assert.Nil(t, fresh.cookie("gaas_session"))
		})
	})
}

func TestCookiesAndHeaders(t *testing.T) {
	for _, tc := range []struct {
		name       string
		opts       siteOptions
		secure     bool
		path, base string
	}{
		{"plain", siteOptions{}, false, "/", ""},
		{"tls", siteOptions{tls: true}, true, "/", ""},
		{"behind_tls", siteOptions{cfg: server.Config{SecureCookies: true}}, true, "/", ""},
		{"base_path", siteOptions{cfg: server.Config{BasePath: "/gpu"}}, false, "/gpu", "/gpu"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSite(t, tc.opts)
			s.user("ada")
			b := s.browser()
			req, _ := http.NewRequest(http.MethodGet, s.url("/portal/sign-in"), nil)
			resp := b.raw(req)
			require.Equal(t, http.StatusOK, resp.StatusCode)
			for k, v := range map[string]string{
				"X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin", "Cache-Control": "no-store",
			} {
				assert.Equal(t, v, resp.Header.Get(k), k)
			}
			csp := resp.Header.Get("Content-Security-Policy")
			for _, d := range []string{"default-src 'self'", "script-src 'self'", "frame-ancestors 'none'"} {
				assert.Contains(t, csp, d)
			}
			assert.NotContains(t, csp, "unsafe-inline")
			pre := setCookie(t, resp, "gaas_csrf")
			b.client.Jar.SetCookies(resp.Request.URL, []*http.Cookie{pre})

			// Sign in by hand, to see the session cookie as it is set.
			form := url.Values{"csrf": {pre.Value}, "username": {"ada"}, "password": {"ada password"}}
			req, _ = http.NewRequest(http.MethodPost, s.url("/portal/sign-in"), strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			resp = b.raw(req)
			require.Equal(t, http.StatusSeeOther, resp.StatusCode)
			assert.Equal(t, tc.base+"/", resp.Header.Get("Location"))
			c := setCookie(t, resp, "gaas_session")
			assert.True(t, c.HttpOnly)
			assert.Equal(t, http.SameSiteLaxMode, c.SameSite)
			assert.Equal(t, tc.secure, c.Secure)
			assert.Equal(t, tc.path, c.Path)
			assert.InDelta(t, 12*3600, c.MaxAge, 5)
			for _, p := range []*http.Cookie{pre, c} {
				assert.Equal(t, tc.secure, p.Secure, p.Name)
				assert.True(t, p.HttpOnly, p.Name)
			}

			req, _ = http.NewRequest(http.MethodGet, s.url("/"), nil)
			req.AddCookie(c)
			resp = b.raw(req)
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			assert.Equal(t, "no-store", resp.Header.Get("Cache-Control"), "a signed-in page is never cached")
			b.get("/")
			if b.status == http.StatusOK && tc.base != "" {
				assert.Contains(t, b.page, `href="/gpu/portal/static/portal.css"`, "links are under the base path")
			}
		})
	}
}

// setCookie returns the cookie called name that resp sets.
func setCookie(t *testing.T, resp *http.Response, name string) *http.Cookie {
	t.Helper()
	for _, c := range resp.Cookies() {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no cookie %s in %v", name, resp.Header["Set-Cookie"])
	return nil
}

// Whatever ends a user's tokens ends their portal sessions, at once.
func TestRevocationEndsSessions(t *testing.T) {
	ctx := context.Background()
	forEachDB(t, func(t *testing.T, s *site) {
		for _, tc := range []struct {
			name   string
			revoke func(t *testing.T, b *browser, u gaas.User)
		}{
			{"sign_out_everywhere", func(t *testing.T, b *browser, u gaas.User) {
				b.submit("/portal/sign-out-everywhere", nil)
				assert.Contains(t, b.page, "signed out everywhere")
			}},
			{"api_logout_all", func(t *testing.T, b *browser, u gaas.User) {
				require.NoError(t, s.auth.LogoutAll(ctx, u.ID))
			}},
			{"password_change", func(t *testing.T, b *browser, u gaas.User) {
				_, err := s.auth.ChangePassword(ctx, u.ID, gaas.ChangePasswordRequest{Old: u.Username + " password", New: "a new password"})
				require.NoError(t, err)
			}},
			{"disabled", func(t *testing.T, b *browser, u gaas.User) {
				_, err := s.db.Users.SetDisabled(ctx, s.root.ID, gaas.SetDisabledRequest{UserID: u.ID, Disabled: true})
				require.NoError(t, err)
			}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				name := "u-" + strings.ReplaceAll(tc.name, "_", "-")
				b, u := s.signedIn(name)
				second := s.browser()
				second.signIn(name, name+" password")
				b.get("/")
				require.Equal(t, "/", b.url.Path)
				tc.revoke(t, b, u)
				for _, x := range []*browser{b, second} {
					x.get("/")
					assert.Equal(t, "/portal/sign-in", x.url.Path, "the session has ended")
					assert.Nil(t, x.cookie("gaas_session"), "and its cookie is cleared")
				}
			})
		}
	})
}

func TestPagesAndErrors(t *testing.T) {
	s := newSite(t)
	b := s.browser()
	b.get("/portal/no-such-page")
	assert.Equal(t, http.StatusNotFound, b.status)
	assert.Contains(t, b.page, "There is no such page")
	b.get("/portal/static/portal.css")
	assert.Equal(t, http.StatusOK, b.status)
	assert.Contains(t, b.page, "@media (max-width: 700px)")
	b.get("/portal/static/")
	assert.Equal(t, http.StatusNotFound, b.status, "no listing")
	assert.NotContains(t, b.page, "submit.js")

	admin := s.browser()
	admin.signIn("root", "root password")
	assert.Contains(t, admin.page, `href="/portal/admin"`, "an admin sees the admin link")
	assert.Contains(t, admin.page, `<meta name="viewport"`)
}

// Without a configured base path, a proxy's X-Forwarded-Prefix places the
// links and cookies, when it is a clean path.
func TestForwardedPrefix(t *testing.T) {
	s := newSite(t)
	for prefix, want := range map[string]string{"/lab": "/lab", "/lab/": "", "javascript:x": "", "/a b": "",
		"/..": "", "/lab/../x": "", "/lab/.": "", "/gpu/lab": "/gpu/lab", "/...": "/..."} {
		b := s.browser()
		req, _ := http.NewRequest(http.MethodGet, s.url("/"), nil)
		req.Header.Set("X-Forwarded-Prefix", prefix)
		resp := b.raw(req)
		assert.Equal(t, want+"/portal/sign-in", resp.Header.Get("Location"), prefix)
		req, _ = http.NewRequest(http.MethodGet, s.url("/portal/sign-in"), nil)
		req.Header.Set("X-Forwarded-Prefix", prefix)
		resp = b.raw(req)
		path := want
		if path == "" {
			path = "/"
		}
		assert.Equal(t, path, setCookie(t, resp, "gaas_csrf").Path, prefix)
	}
}
