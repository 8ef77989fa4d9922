package server

import (
	"embed"
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"regexp"
	"strconv"
	"strings"
)

// openAPI is the description of the API, kept true by the server's tests,
// which check every request they make and every answer they get against it.
//
//go:embed openapi.json
var openAPI []byte

// OpenAPI returns the OpenAPI 3.1 document that describes the API.
func OpenAPI() []byte { return append([]byte(nil), openAPI...) }

// handleOpenAPI serves the document; under a path prefix (basePath, or
// else the request's X-Forwarded-Prefix) the document names the prefix in
// its servers and its login URL, which are otherwise the host's root.
func handleOpenAPI(basePath string) http.Handler {
	atBase, err := openAPIUnder(basePath)
	if err != nil {
		panic(err) // the embedded document is JSON; the tests read it
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		doc := atBase
		if basePath == "" {
			w.Header().Set("Vary", "X-Forwarded-Prefix")
			if prefix := r.Header.Get("X-Forwarded-Prefix"); prefix != "" && ValidBasePath(prefix) == nil {
				if doc, err = openAPIUnder(prefix); err != nil {
					panic(err)
				}
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(doc)))
		w.Write(doc)
	})
}

// ValidBasePath reports whether p can prefix the API's paths: empty, or
// "/" and segments of letters, digits and -._~, without a trailing slash.
func ValidBasePath(p string) error {
	if p == "" {
		return nil
	}
	if !basePathPattern.MatchString(p) {
		return errors.New(`must be a path such as "/gpu": a slash, then segments of letters, digits and -._~ with no trailing slash`)
	}
	return nil
}

var basePathPattern = regexp.MustCompile(`^(/[A-Za-z0-9._~-]+)+$`)

// openAPIUnder is the document with servers and the password flow's
// tokenUrl under prefix; the embedded document itself when prefix is empty.
func openAPIUnder(prefix string) ([]byte, error) {
	if prefix == "" {
		return openAPI, nil
	}
	var doc map[string]any
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		return nil, err
	}
	doc["servers"] = []any{map[string]any{"url": prefix, "description": "this API, under its path prefix"}}
	if schemes, ok := dig(doc, "components", "securitySchemes").(map[string]any); ok {
		for _, s := range schemes {
			flows, _ := dig(s, "flows").(map[string]any)
			for _, f := range flows {
				if flow, ok := f.(map[string]any); ok {
					if u, ok := flow["tokenUrl"].(string); ok && strings.HasPrefix(u, "/") {
						flow["tokenUrl"] = prefix + u
					}
				}
			}
		}
	}
	return json.Marshal(doc)
}

// dig follows keys through nested JSON objects; nil when one is missing.
func dig(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// The /docs page is Swagger UI, served from the binary so that offline
// deployments have it too. Its files are those of the swagger-ui-dist
// package that swaggerui/package-lock.json pins, copied verbatim by
// swaggerui/update.sh (CI checks that they still match).
//
//go:embed swaggerui/dist
var swaggerDist embed.FS

var swaggerUI, _ = fs.Sub(swaggerDist, "swaggerui/dist")

const docsPage = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>gaas API</title>
<link rel="stylesheet" href="docs/swagger-ui.css">
<link rel="icon" type="image/png" href="docs/favicon-32x32.png" sizes="32x32">
</head>
<body>
<div id="swagger-ui"></div>
<script src="docs/swagger-ui-bundle.js"></script>
<script src="docs/gaas-docs.js"></script>
</body>
</html>
`

// docsScript starts Swagger UI on the API's own document; "Authorize" uses
// the password flow against /login, as the document describes. The page's
// URLs are relative to its own, so that it works under a path prefix
// (http.StripPrefix, or a proxy at /gpu/): the document is fetched next to
// the page, and when it names no server but the root "/" (the server knew
// no prefix) its server and login URL are put under the page's.
const docsScript = `(function () {
  var root = new URL(".", document.baseURI); // where /docs is, with any prefix
  fetch(new URL("openapi.json", root)).then(function (r) {
    if (!r.ok) throw new Error("GET openapi.json: " + r.status);
    return r.json();
  }).then(function (spec) {
    var servers = spec.servers || [];
    if (servers.length === 0 || (servers.length === 1 && servers[0].url === "/")) {
      spec.servers = [{url: root.pathname.replace(/\/$/, "") || "/"}];
      var schemes = (spec.components || {}).securitySchemes || {};
      Object.keys(schemes).forEach(function (name) {
        var flows = schemes[name].flows || {};
        Object.keys(flows).forEach(function (f) {
          var u = flows[f].tokenUrl;
          if (u && u.charAt(0) === "/") flows[f].tokenUrl = new URL(u.slice(1), root).pathname;
        });
      });
    }
    window.ui = SwaggerUIBundle({
      spec: spec,
      dom_id: "#swagger-ui",
      layout: "BaseLayout",
      deepLinking: true,
      showExtensions: true,
      showCommonExtensions: true,
      oauth2RedirectUrl: new URL("docs/oauth2-redirect.html", root).href,
      presets: [SwaggerUIBundle.presets.apis],
    });
  }).catch(function (e) {
    document.getElementById("swagger-ui").textContent = "The API's description did not load: " + e.message;
  });
})();
`

// docsCSP keeps the page to its own assets; Swagger UI sets inline styles
// and shows images as data: URLs.
const docsCSP = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'"

func handleDocsPage() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", docsCSP)
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Write([]byte(docsPage))
	})
}

func handleDocsAsset() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("file")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		switch {
		case name == "gaas-docs.js":
			w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
			w.Write([]byte(docsScript))
		case isFile(swaggerUI, name):
			w.Header().Set("Cache-Control", "public, max-age=86400")
			http.ServeFileFS(w, r, swaggerUI, name)
		default:
			writeProblem(w, r, problem{Type: "about:blank", Title: "Not Found", Status: http.StatusNotFound,
				Detail: "No documentation asset " + strconv.Quote(name) + "."})
		}
	})
}

// isFile reports whether name is a file of fsys (not a directory, not a
// path that climbs out of it).
func isFile(fsys fs.FS, name string) bool {
	fi, err := fs.Stat(fsys, name)
	return err == nil && !fi.IsDir()
}
