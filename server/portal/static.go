package portal

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"
)

// The portal's own CSS and script, hand-written: no build step.
//
//go:embed static
var staticFiles embed.FS

var static, _ = fs.Sub(staticFiles, "static")

// handleStatic serves the static files under /portal/static/. They change
// only with the binary, so a browser may keep them for an hour.
func handleStatic() http.Handler {
	files := http.StripPrefix("/portal/static/", http.FileServerFS(static))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r) // no listing of the directory
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=3600")
		files.ServeHTTP(w, r)
	})
}
