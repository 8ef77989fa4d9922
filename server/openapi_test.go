package server_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/server"
)

// Every request the server's tests make, and every answer they get, is
// checked against the OpenAPI document that the server publishes: an
// answer the document does not describe (a status, a header, a field) fails
// the test that got it, and so does a request that the document calls
// invalid but the server accepted.

var spec = sync.OnceValues(func() (routers.Router, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(server.OpenAPI())
	if err != nil {
		return nil, fmt.Errorf("load openapi.json: %w", err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		return nil, fmt.Errorf("openapi.json is not a valid OpenAPI document: %w", err)
	}
	// The document's one server is "/", wherever it is served; the router
	// reads that as a host of its own, so it routes by path alone instead.
	doc.Servers = nil
	return legacy.NewRouter(doc)
})

// notInSpec are the routes that serve the description itself, the page
// that shows it, metrics and the web portal: not part of the API.
func notInSpec(path string) bool {
	return path == "/openapi.json" || path == "/docs" || strings.HasPrefix(path, "/docs/") || path == "/metrics" ||
		path == "/" || path == "/{$}" || strings.HasPrefix(path, "/portal/")
}

// exercised records, for each operation of the document, the statuses the
// tests have seen it answer.
var exercised = struct {
	sync.Mutex
	seen map[string][]int
}{seen: map[string][]int{}}

// specChecker is a RoundTripper that checks each exchange against the spec.
type specChecker struct {
	t    *testing.T
	next http.RoundTripper
}

// maxChecked is the largest request body the checker reads to validate;
// larger or chunked bodies (tests of the size limit) pass through unread.
const maxChecked = 1 << 20

func (c specChecker) RoundTrip(req *http.Request) (*http.Response, error) {
	router, err := spec()
	if err != nil {
		return nil, err // the client's caller fails, on whichever goroutine it is
	}
	ctx := context.Background()

	route, params, findErr := router.FindRoute(req)
	var input *openapi3filter.RequestValidationInput
	var reqErr error
	if findErr == nil {
		input = &openapi3filter.RequestValidationInput{
			Request: req.Clone(ctx), PathParams: params, Route: route,
			Options: &openapi3filter.Options{
				IncludeResponseStatus: true,
				MultiError:            true,
				AuthenticationFunc:    bearerPresent,
			},
		}
		switch {
		case req.Body == nil || req.Body == http.NoBody:
		case req.ContentLength >= 0 && req.ContentLength <= maxChecked:
			// The body is read once, for the validator and, on a clone,
			// for the server: a RoundTripper must not change its request.
			body, err := io.ReadAll(req.Body)
			req.Body.Close()
			if err != nil {
				return nil, err
			}
			req = req.Clone(req.Context())
			req.Body = io.NopCloser(bytes.NewReader(body))
			input.Request.Body = io.NopCloser(bytes.NewReader(body))
		default:
			input.Options.ExcludeRequestBody = true
		}
		reqErr = errors.Join(openapi3filter.ValidateRequest(ctx, input), undeclaredQuery(route, req.URL.Query()))
	}

	resp, err := c.next.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))

	where := req.Method + " " + req.URL.Path
	switch {
	case findErr != nil && notInSpec(req.URL.Path):
	case findErr != nil:
		// Only requests that match no route of the server may be missing
		// from the document.
		if resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusMethodNotAllowed {
			c.t.Errorf("%s: answered %d but the OpenAPI document has no such operation (%v)", where, resp.StatusCode, findErr)
		}
	default:
		exercised.Lock()
		op := route.Method + " " + route.Path
		if !slices.Contains(exercised.seen[op], resp.StatusCode) {
			exercised.seen[op] = append(exercised.seen[op], resp.StatusCode)
		}
		exercised.Unlock()
		if reqErr != nil && resp.StatusCode < 400 {
			c.t.Errorf("%s: the server accepted (%d) a request the OpenAPI document calls invalid: %v", where, resp.StatusCode, reqErr)
		}
		out := &openapi3filter.ResponseValidationInput{
			RequestValidationInput: input, Status: resp.StatusCode, Header: resp.Header, Options: input.Options,
		}
		out.SetBodyBytes(body)
		if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
			c.t.Errorf("%s: the answer does not match the OpenAPI document: %v\nbody: %s", where, err, body)
		}
	}
	return resp, nil
}

// bearerPresent is the document's security, as far as a schema can check it:
// a bearer token in the Authorization header. The server checks the token.
// undeclaredQuery names a query parameter the operation does not declare,
// or gives more than once: kin-openapi lets both through, the server
// refuses them.
func undeclaredQuery(route *routers.Route, q url.Values) error {
	declared := map[string]bool{}
	for _, ps := range []openapi3.Parameters{route.PathItem.Parameters, route.Operation.Parameters} {
		for _, p := range ps {
			if p.Value != nil && p.Value.In == openapi3.ParameterInQuery {
				declared[p.Value.Name] = true
			}
		}
	}
	for name, vs := range q {
		if !declared[name] || len(vs) > 1 {
			return fmt.Errorf("query parameter %q is undeclared or repeated", name)
		}
	}
	return nil
}

func bearerPresent(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	scheme, token, ok := strings.Cut(in.RequestValidationInput.Request.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return in.NewError(fmt.Errorf("no bearer token"))
	}
	return nil
}

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	// Only a run of the whole suite has exercised every operation.
	if code == 0 && flag.Lookup("test.run").Value.String() == "" && !testing.Short() {
		if missing := unexercised(); len(missing) > 0 {
			fmt.Fprintf(os.Stderr, "FAIL: operations of the OpenAPI document that no test answered with success: %s\n", strings.Join(missing, ", "))
			code = 1
		}
	}
	os.Exit(code)
}

// unexercised lists the operations of the document that no test saw
// answer with a 2xx.
func unexercised() []string {
	var missing []string
	doc, _ := openapi3.NewLoader().LoadFromData(server.OpenAPI())
	exercised.Lock()
	defer exercised.Unlock()
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			ok := slices.ContainsFunc(exercised.seen[method+" "+path], func(s int) bool { return s >= 200 && s < 300 })
			if !ok {
				missing = append(missing, method+" "+path)
			}
		}
	}
	sort.Strings(missing)
	return missing
}

// TestOpenAPIDescribesEveryRoute compares the routes the server registers
// with the operations of the document.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	_, err := spec()
	require.NoError(t, err)
	src, err := os.ReadFile("routes.go")
	require.NoError(t, err)
	var routes []string
	for _, m := range regexp.MustCompile(`mux\.Handle\("([A-Z]+) ([^"]+)"`).FindAllStringSubmatch(string(src), -1) {
		if !notInSpec(m[2]) {
			routes = append(routes, m[1]+" "+m[2])
		}
	}
	doc, err := openapi3.NewLoader().LoadFromData(server.OpenAPI())
	require.NoError(t, err)
	var ops []string
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			ops = append(ops, method+" "+path)
		}
	}
	require.NotEmpty(t, routes)
	assert.ElementsMatch(t, routes, ops)
}

func TestOpenAPIServed(t *testing.T) {
	h := newHarness(t)
	r := h.get("/openapi.json", "")
	require.Equal(t, http.StatusOK, r.status)
	assert.Equal(t, "application/json", r.header.Get("Content-Type"))
	assert.Equal(t, server.OpenAPI(), r.body)
	doc := r.json(t)
	assert.Equal(t, "3.1.0", doc["openapi"])
	flow := doc["components"].(map[string]any)["securitySchemes"].(map[string]any)["OAuth2PasswordBearer"].(map[string]any)
	assert.Equal(t, "/login", flow["flows"].(map[string]any)["password"].(map[string]any)["tokenUrl"])
}

func TestDocsPageServed(t *testing.T) {
	h := newHarness(t)
	page := h.get("/docs", "")
	require.Equal(t, http.StatusOK, page.status)
	assert.Equal(t, "text/html; charset=utf-8", page.header.Get("Content-Type"))
	assert.Contains(t, page.header.Get("Content-Security-Policy"), "default-src 'self'")
	// Every asset the page names is served from the binary; the names are
	// relative to the page, so that it works under a path prefix too.
	refs := regexp.MustCompile(`(?:src|href)="(docs/[^"]+)"`).FindAllStringSubmatch(string(page.body), -1)
	assert.Len(t, refs, 4)
	for _, m := range refs {
		r := h.get("/"+m[1], "")
		assert.Equal(t, http.StatusOK, r.status, m[1])
		assert.NotEmpty(t, r.body, m[1])
	}
	js := h.get("/docs/swagger-ui-bundle.js", "")
	assert.Contains(t, js.header.Get("Content-Type"), "javascript")
	assert.Greater(t, len(js.body), 1<<20)
	assert.Contains(t, string(h.get("/docs/gaas-docs.js", "").body), `fetch(new URL("openapi.json", root))`)
	h.get("/docs/nothing.js", "").problem(t, http.StatusNotFound)
	h.get("/docs/..%2fopenapi.json", "").problem(t, http.StatusNotFound)
}
