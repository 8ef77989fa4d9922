package server

import (
	"embed"
	"io/fs"
	"net/http"
	"strconv"
)

// openAPI is the description of the API, kept true by the server's tests,
// which check every request they make and every answer they get against it.
//
//go:embed openapi.json
var openAPI []byte

// OpenAPI returns the OpenAPI 3.1 document that describes the API.
func OpenAPI() []byte { return append([]byte(nil), openAPI...) }

func handleOpenAPI() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(openAPI)))
		w.Write(openAPI)
	})
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
<link rel="stylesheet" href="/docs/swagger-ui.css">
<link rel="icon" type="image/png" href="/docs/favicon-32x32.png" sizes="32x32">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script src="/docs/gaas-docs.js"></script>
</body>
</html>
`

// docsScript starts Swagger UI on the API's own document; "Authorize" uses
// the password flow against /login, as the document describes.
const docsScript = `window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  layout: "BaseLayout",
  deepLinking: true,
  showExtensions: true,
  showCommonExtensions: true,
  oauth2RedirectUrl: window.location.origin + "/docs/oauth2-redirect.html",
  presets: [SwaggerUIBundle.presets.apis],
});
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
