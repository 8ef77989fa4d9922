package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/server"
)

// prefixed serves the API with cfg under http.StripPrefix("/gpu", ...), as
// a program that mounts it, or a proxy at /gpu/, does.
func prefixed(t *testing.T, cfg server.Config) *httptest.Server {
	t.Helper()
	return newHarness(t, override{cfg: cfg, mount: func(api http.Handler) http.Handler {
		mux := http.NewServeMux()
		mux.Handle("/gpu/", http.StripPrefix("/gpu", api))
		return mux
	}}).srv
}

func fetch(t *testing.T, u string, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	require.NoError(t, err)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, body
}

// Under a path prefix, every URL of the /docs page resolves under the
// prefix: its assets, the document it fetches, the OAuth2 redirect page
// and, once the prefix is known (-base-path, or X-Forwarded-Prefix), the
// document's servers and login URL.
func TestDocsUnderAPathPrefix(t *testing.T) {
	srv := prefixed(t, server.Config{})
	page, err := url.Parse(srv.URL + "/gpu/docs")
	require.NoError(t, err)
	resp, body := fetch(t, page.String(), nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	refs := regexp.MustCompile(`(?:src|href)="([^"]+)"`).FindAllStringSubmatch(string(body), -1)
	require.NotEmpty(t, refs)
	for _, m := range refs {
		ref, err := page.Parse(m[1])
		require.NoError(t, err)
		assert.True(t, strings.HasPrefix(ref.Path, "/gpu/docs/"), "%s resolves to %s", m[1], ref.Path)
		r, _ := fetch(t, ref.String(), nil)
		assert.Equal(t, http.StatusOK, r.StatusCode, ref.String())
	}
	// The script names the document and the redirect page relative to the page.
	_, js := fetch(t, srv.URL+"/gpu/docs/gaas-docs.js", nil)
	root, err := page.Parse(".")
	require.NoError(t, err)
	for _, rel := range []string{"openapi.json", "docs/oauth2-redirect.html"} {
		assert.Contains(t, string(js), `new URL("`+rel+`", root)`)
		u, err := root.Parse(rel)
		require.NoError(t, err)
		r, _ := fetch(t, u.String(), nil)
		assert.Equal(t, http.StatusOK, r.StatusCode, u.String())
	}
	assert.NotRegexp(t, `"/(openapi\.json|docs|login)`, string(js), "no URL from the host's root")

	// Without a known prefix the document is the embedded one, which the
	// page puts under its own URL; with one, the document names it.
	resp, doc := fetch(t, srv.URL+"/gpu/openapi.json", nil)
	assert.Equal(t, server.OpenAPI(), doc)
	assert.Equal(t, "X-Forwarded-Prefix", resp.Header.Get("Vary"))
	serversAndLogin := func(doc []byte) (string, string) {
		var d struct {
			Servers    []struct{ URL string }
			Components struct {
				SecuritySchemes map[string]struct {
					Flows struct{ Password struct{ TokenURL string } }
				}
			}
		}
		require.NoError(t, json.Unmarshal(doc, &d))
		require.Len(t, d.Servers, 1)
		return d.Servers[0].URL, d.Components.SecuritySchemes["OAuth2PasswordBearer"].Flows.Password.TokenURL
	}
	_, doc = fetch(t, srv.URL+"/gpu/openapi.json", map[string]string{"X-Forwarded-Prefix": "/gpu"})
	servers, login := serversAndLogin(doc)
	assert.Equal(t, "/gpu", servers)
	assert.Equal(t, "/gpu/login", login)
	r, err := http.PostForm(srv.URL+login, url.Values{"username": {"nobody"}, "password": {"not-a-password"}})
	require.NoError(t, err)
	r.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, r.StatusCode, "the login URL reaches POST /login")
	for _, bad := range []string{"gpu", "/gpu/", "//evil.example", "/a b", "/gpu?x=1", `/"><script>`} {
		_, doc = fetch(t, srv.URL+"/gpu/openapi.json", map[string]string{"X-Forwarded-Prefix": bad})
		assert.Equal(t, server.OpenAPI(), doc, "X-Forwarded-Prefix %q is ignored", bad)
	}

	// A configured base path wins over the header.
	srv = prefixed(t, server.Config{BasePath: "/gpu"})
	resp, doc = fetch(t, srv.URL+"/gpu/openapi.json", map[string]string{"X-Forwarded-Prefix": "/other"})
	servers, login = serversAndLogin(doc)
	assert.Equal(t, "/gpu", servers)
	assert.Equal(t, "/gpu/login", login)
	assert.Empty(t, resp.Header.Get("Vary"))
}
