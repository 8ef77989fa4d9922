package portal_test

import (
	"context"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/authn"
	"github.com/gaas-io/gaas/gaas"
	"github.com/gaas-io/gaas/server"
	"github.com/gaas-io/gaas/store"
	"github.com/gaas-io/gaas/store/storetest"
)

// site is the whole server (API and portal) on a real store, over HTTP.
type site struct {
	t    testing.TB
	db   *store.DB
	auth *authn.Authenticator
	srv  *httptest.Server
	root gaas.User // an admin, password "root password"
	// prefix is where a proxy serves the site (server.Config.BasePath),
	// stripped before the server sees a path; browsers' paths are under it.
	prefix string
}

// siteOptions change how a test's site is made.
type siteOptions struct {
	dsn string
	cfg server.Config
	tls bool
}

// url is the address of path (which starts with /) on the site.
func (s *site) url(path string) string { return s.srv.URL + s.prefix + path }

// newSite opens a store on a SQLite file (or opts.dsn) and serves the
// server on it.
func newSite(t testing.TB, opts ...siteOptions) *site {
	t.Helper()
	var o siteOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	if o.dsn == "" {
		o.dsn = filepath.Join(t.TempDir(), "gaas.db")
	}
	ctx := context.Background()
	db, err := store.Open(ctx, o.dsn, store.Options{DefaultQuota: -1}) // accounts start empty
	require.NoError(t, err)
	tokens, err := authn.NewTokens([]byte("portal-test-signing-key-0123456789abcdef"), 30*time.Minute, nil)
	require.NoError(t, err)
	auth := authn.NewAuthenticator(db.Accounts, authn.Hasher{Iterations: 1000}, tokens)
	root, err := auth.EnsureAdmin(ctx, "root", "root password")
	require.NoError(t, err)
	s := &site{t: t, db: db, auth: auth, root: root, prefix: o.cfg.BasePath}
	svc := server.Services{Auth: auth, Users: db.Users, Jobs: db.Jobs, Quota: db.Quota, Catalogue: db.Catalogue,
		Allocations: db.Allocations, Projects: db.Projects, Schedules: db.Schedules, Webhooks: db.Webhooks, Reports: db.Reports, DB: db,
		Sessions: authn.NewSessions(auth, db.Sessions)}
	h := server.NewServer(slog.New(slog.NewTextHandler(io.Discard, nil)), o.cfg, svc)
	if s.prefix != "" {
		h = http.StripPrefix(s.prefix, h)
	}
	if o.tls {
		s.srv = httptest.NewTLSServer(h)
	} else {
		s.srv = httptest.NewServer(h)
	}
	t.Cleanup(func() {
		s.srv.Close()
		db.Close()
	})
	return s
}

// forEachDB runs fn on a site on a SQLite file and, where
// GAAS_TEST_POSTGRES is set, on PostgreSQL.
func forEachDB(t *testing.T, fn func(t *testing.T, s *site)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, newSite(t)) })
	t.Run("postgres", func(t *testing.T) { fn(t, newSite(t, siteOptions{dsn: storetest.PostgresDSN(t)})) })
}

// user registers a user whose password is name + " password".
func (s *site) user(name string) gaas.User {
	s.t.Helper()
	u, err := s.auth.Register(context.Background(), gaas.RegisterRequest{Username: name, Password: name + " password"})
	require.NoError(s.t, err)
	return u
}

// browser is a person's browser: a cookie jar, redirects followed, and
// the last page it was shown.
type browser struct {
	t      testing.TB
	s      *site
	client *http.Client
	// page is the body of the last answer, status its status.
	page   string
	status int
	url    *url.URL
}

func (s *site) browser() *browser {
	jar, err := cookiejar.New(nil)
	require.NoError(s.t, err)
	c := *s.srv.Client() // a copy: the server's client is shared, and each browser has its own jar
	c.Jar = jar
	return &browser{t: s.t, s: s, client: &c}
}

// signedIn is a browser signed in as a new user called name.
func (s *site) signedIn(name string) (*browser, gaas.User) {
	u := s.user(name)
	b := s.browser()
	b.signIn(name, name+" password")
	require.Equal(s.t, http.StatusOK, b.status, b.page)
	return b, u
}

func (b *browser) do(req *http.Request) *http.Response {
	b.t.Helper()
	resp, err := b.client.Do(req)
	require.NoError(b.t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(b.t, err)
	b.page, b.status, b.url = string(body), resp.StatusCode, resp.Request.URL
	return resp
}

// get shows the page at path.
func (b *browser) get(path string) *http.Response {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, b.s.url(path), nil)
	require.NoError(b.t, err)
	return b.do(req)
}

// post sends form to path as a browser sends a form, with an Origin of
// the site, as browsers do, unless the form says otherwise.
func (b *browser) post(path string, form url.Values, header ...string) *http.Response {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodPost, b.s.url(path), strings.NewReader(form.Encode()))
	require.NoError(b.t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", b.s.srv.URL)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return b.do(req)
}

// submit fills in the form of the current page whose action ends in
// action (its hidden fields, csrf among them, as they are) with fields,
// and posts it.
func (b *browser) submit(action string, fields url.Values) *http.Response {
	b.t.Helper()
	form, to := b.form(action)
	for k, v := range fields {
		form[k] = v
	}
	return b.post(to, form)
}

var (
	formPattern  = regexp.MustCompile(`(?s)<form\b[^>]*\baction="([^"]*)"[^>]*>(.*?)</form>`)
	inputPattern = regexp.MustCompile(`<input\b[^>]*>`)
	attrPattern  = regexp.MustCompile(`\b(name|value|type)="([^"]*)"`)
)

// form returns the hidden fields of the current page's form whose action
// ends in action, and the action's path under the site's prefix.
func (b *browser) form(action string) (url.Values, string) {
	b.t.Helper()
	for _, m := range formPattern.FindAllStringSubmatch(b.page, -1) {
		to := html.UnescapeString(m[1])
		if !strings.HasSuffix(to, action) {
			continue
		}
		vals := url.Values{}
		for _, in := range inputPattern.FindAllString(m[2], -1) {
			attrs := map[string]string{}
			for _, a := range attrPattern.FindAllStringSubmatch(in, -1) {
				attrs[a[1]] = html.UnescapeString(a[2])
			}
			if attrs["type"] == "hidden" {
				vals.Add(attrs["name"], attrs["value"])
			}
		}
		return vals, strings.TrimPrefix(to, b.s.prefix)
	}
	b.t.Fatalf("no form with action %q on the page %s:\n%s", action, b.url, b.page)
	return nil, ""
}

// signIn signs in through the sign-in page.
func (b *browser) signIn(username, password string) {
	b.t.Helper()
	b.get("/portal/sign-in")
	require.Equal(b.t, http.StatusOK, b.status, b.page)
	b.submit("/portal/sign-in", url.Values{"username": {username}, "password": {password}})
}

// cookie returns the browser's cookie called name, or nil.
func (b *browser) cookie(name string) *http.Cookie {
	u, _ := url.Parse(b.s.url("/"))
	for _, c := range b.client.Jar.Cookies(u) {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// raw sends req with the browser's cookies without following a redirect,
// and returns the answer as it came.
func (b *browser) raw(req *http.Request) *http.Response {
	b.t.Helper()
	c := *b.client
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.Do(req)
	require.NoError(b.t, err)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}
