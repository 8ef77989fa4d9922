package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/server"
	"github.com/gaas-io/gaas/server/internal/browsertest"
)

// TestDocsInBrowser opens /docs in headless Chromium, checks that the page
// lists every endpoint, and then does what a user would: Authorize with a
// username and password (the OAuth2 password flow against /login), open
// POST /jobs, "Try it out" with the example body, and Execute. The job
// must exist afterwards. A screenshot is kept in the test's artifact
// directory (go test -artifacts keeps it).
//
// It does so twice: at the server's root, and behind a proxy at /gpu/ that
// strips the prefix and says nothing of it (no X-Forwarded-Prefix), where
// the page must find the document, the login URL and the API under its own.
func TestDocsInBrowser(t *testing.T) {
	browser := browsertest.Chromium(t)
	g := start(t, filepath.Join(t.TempDir(), "gaas.db"), nil)
	target, err := url.Parse(g.url)
	require.NoError(t, err)
	proxy := httptest.NewServer(http.StripPrefix("/gpu", httputil.NewSingleHostReverseProxy(target)))
	defer proxy.Close()
	for _, site := range []struct{ name, docs, user string }{
		{"root", g.url + "/docs", "alice"},
		{"prefix", proxy.URL + "/gpu/docs", "bob"},
	} {
		t.Run(site.name, func(t *testing.T) { docsInBrowser(t, browser, g, site.docs, site.user) })
	}
}

func docsInBrowser(t *testing.T, browser string, g *instance, docs, user string) {
	password := user + "-password-secret"
	status, _ := g.json(t, "POST", "/register", "", `{"username": "`+user+`", "password": "`+password+`"}`)
	require.Equal(t, http.StatusCreated, status)

	bctx := browsertest.Start(t, browser, 1280, 1600)
	require.NoError(t, chromedp.Do(bctx, chromedp.Navigate(docs)), "the browser did not start")
	ctx, cancel := context.WithTimeout(bctx, 90*time.Second)
	defer cancel()

	const submit = "#operations-jobs-submitJob"
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	require.NoError(t, chromedp.Do(ctx, chromedp.WaitVisible(css(submit))), "the page did not render the operations")
	paths, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll('.opblock-summary')).map(e =>
		e.querySelector('.opblock-summary-method').textContent + ' ' + e.querySelector('.opblock-summary-path').dataset.path)`))
	require.NoError(t, err)
	assert.ElementsMatch(t, documentedOperations(t), paths, "the page shows every operation of the OpenAPI document")

	// Authorize: the password flow's form, as in FastAPI's /docs.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Click(css(".auth-wrapper .authorize")),
		chromedp.WaitVisible(css("#oauth_username")),
		chromedp.SendKeys(css("#oauth_username"), user),
		chromedp.SendKeys(css("#oauth_password"), password),
		chromedp.Evaluate[chromedp.Void](`document.querySelector('#oauth_username').closest('.auth-container')
			.querySelector('.auth-btn-wrapper .authorize').click()`),
		chromedp.Poll[chromedp.Void](`Array.from(document.querySelectorAll('.auth-container button')).some(b => b.textContent.trim() === 'Logout')`,
			chromedp.WithPollingTimeout(15*time.Second)),
		chromedp.Click(css(".btn-done")),
	), "Authorize with the password flow failed")

	// Try it out on POST /jobs with the example body, and Execute.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Click(css(submit+" .opblock-summary-control")),
		chromedp.WaitVisible(css(submit+" .try-out__btn")),
		chromedp.Click(css(submit+" .try-out__btn")),
		chromedp.WaitVisible(css(submit+" .execute")),
		chromedp.Click(css(submit+" .execute")),
		chromedp.WaitVisible(css(submit+" .live-responses-table tbody .response-col_status")),
	), "Try it out on POST /jobs failed")
	statusText, err := chromedp.Run(ctx, chromedp.Text(css(submit+" .live-responses-table tbody .response-col_status")))
	require.NoError(t, err)
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	require.NoError(t, err)
	dir := t.ArtifactDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "docs.png"), shot, 0o644))
	t.Logf("screenshot: %s", filepath.Join(dir, "docs.png"))
	assert.Contains(t, statusText, "201")

	// The job is really there, charged to the user.
	status, body := g.call(t, "POST", "/login", "", "application/x-www-form-urlencoded",
		url.Values{"username": {user}, "password": {password}}.Encode())
	require.Equal(t, http.StatusOK, status)
	status, body = g.json(t, "GET", "/me", body["access_token"].(string), "")
	require.Equal(t, http.StatusOK, status)
	assert.Equal(t, 7.5, body["gpu_hours_quota"], "the example job of 2.5 hours was charged")
}

// documentedOperations lists "METHOD /path" for every operation that the
// server's OpenAPI document describes.
func documentedOperations(t *testing.T) []string {
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	require.NoError(t, json.Unmarshal(server.OpenAPI(), &doc))
	var ops []string
	for path, item := range doc.Paths {
		for method := range item {
			switch method {
			case "get", "put", "post", "delete", "patch", "head", "options", "trace":
				ops = append(ops, strings.ToUpper(method)+" "+path)
			}
		}
	}
	require.NotEmpty(t, ops)
	return ops
}
