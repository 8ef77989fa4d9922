package portal

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"errors"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gaas-io/gaas/gaas"
)

// The templates: files whose names begin with "_" (the layout, partials)
// are shared by every page; each other file is one page, named by its
// file name without ".html", and defines "content" (and may define
// "head" for its <head>).
//
//go:embed templates/*.html
var templateFiles embed.FS

// pages are the parsed pages by name.
type pages map[string]*template.Template

func parsePages() pages {
	shared := template.Must(template.New("").Funcs(funcs).ParseFS(templateFiles, "templates/_*.html"))
	names, err := fs.Glob(templateFiles, "templates/*.html")
	if err != nil {
		panic(err)
	}
	out := pages{}
	for _, n := range names {
		base := path.Base(n)
		if strings.HasPrefix(base, "_") {
			continue
		}
		t := template.Must(template.Must(shared.Clone()).ParseFS(templateFiles, n))
		out[strings.TrimSuffix(base, ".html")] = t
	}
	return out
}

// funcs are the helpers templates may call.
var funcs = template.FuncMap{
	"date": formatDate,
	"day":  func(t time.Time) string { return t.UTC().Format("2006-01-02") },
	"dateptr": func(t *time.Time) string {
		if t == nil {
			return ""
		}
		return formatDate(*t)
	},
	"lower":     strings.ToLower,
	"hasPrefix": strings.HasPrefix,
	"negative":  func(c gaas.Credits) bool { return c < 0 },
	"short":     short,
	"rateMilli": func(r gaas.Rate) int64 { return int64(r) },
}

// formatDate is how pages write a time: to the minute, in UTC.
func formatDate(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }

// short is s cut to 80 characters, with an ellipsis when it was longer.
func short(s string) string {
	if r := []rune(s); len(r) > 80 {
		return string(r[:79]) + "…"
	}
	return s
}

// page is what the layout shows around a page's own data.
type page struct {
	Title string
	// Base prefixes every link: "{{.Base}}/portal/jobs".
	Base string
	// User is the signed-in user; nil on the sign-in page.
	User *gaas.User
	// Manager is whether the user manages a project, for the nav.
	Manager bool
	// Section is the nav entry the page belongs to, marked aria-current.
	Section string
	CSRF    string
	Flash   string
	Data    any
}

// render writes the page name with data, as status, inside the layout.
// The page is rendered to a buffer first, so that a template error is a
// clean 500 rather than half a page.
func (p *site) render(w http.ResponseWriter, r *http.Request, status int, name, title string, data any) {
	t, ok := p.pages[name]
	if !ok {
		panic("portal: no page " + name)
	}
	pg := page{Title: title, Base: p.base(r), CSRF: csrfToken(r), Flash: p.takeFlash(w, r), Data: data, Section: name}
	if v := visitorOf(r); v != nil {
		pg.User = &v.user
		pg.Manager = p.manages(r)
	} else {
		pg.CSRF = p.preSessionToken(w, r)
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", pg); err != nil {
		p.logger.ErrorContext(r.Context(), "portal: render", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	if h.Get("Cache-Control") == "" {
		h.Set("Cache-Control", "no-store")
	}
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// manages reports whether the signed-in user manages any project; the
// nav then links to their projects. It is only a hint: the project pages
// ask the library.
func (p *site) manages(r *http.Request) bool {
	ms, err := p.svc.Projects.Memberships(r.Context(), callerID(r), gaas.MembershipsRequest{Page: gaas.Page{Limit: gaas.MaxLimit}})
	if err != nil {
		return false
	}
	for _, m := range ms.Items {
		if m.Member.Role == gaas.ProjectManager {
			return true
		}
	}
	return false
}

// preSessionToken returns the CSRF token of a visitor without a session,
// setting its cookie when they have none.
func (p *site) preSessionToken(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(preSessionCookie); err == nil && len(c.Value) == 43 {
		return c.Value
	}
	token := randomToken()
	http.SetCookie(w, p.cookie(r, preSessionCookie, token, 0))
	// A later read of the cookie in this request (the flash) sees it.
	r.AddCookie(&http.Cookie{Name: preSessionCookie, Value: token})
	return token
}

// flashKey signs the flash messages of r's visitor: their session's
// secret, or their pre-session token, so that no one else can put words
// on their pages.
func flashKey(r *http.Request) []byte {
	if t := csrfToken(r); t != "" {
		return []byte(t)
	}
	if c, err := r.Cookie(preSessionCookie); err == nil {
		return []byte(c.Value)
	}
	return nil
}

func flashMAC(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// maxFlash bounds a flash message, in bytes, so that its cookie stays
// within the 4096 bytes a browser keeps of one (a longer one it drops, and
// the message with it).
const maxFlash = 2048

// redirect answers a form with 303 to path, leaving message for the page
// it leads to; a message longer than maxFlash is cut short, with an
// ellipsis.
func (p *site) redirect(w http.ResponseWriter, r *http.Request, path, message string) {
	if len(message) > maxFlash {
		cut := maxFlash - len("…")
		for cut > 0 && !utf8.RuneStart(message[cut]) {
			cut--
		}
		message = message[:cut] + "…"
	}
	if key := flashKey(r); message != "" && key != nil {
		v := base64.RawURLEncoding.EncodeToString([]byte(message)) + "." + base64.RawURLEncoding.EncodeToString(flashMAC(key, message))
		http.SetCookie(w, p.cookie(r, flashCookie, v, time.Minute))
	}
	http.Redirect(w, r, p.link(r, path), http.StatusSeeOther)
}

// takeFlash returns the message left for this page, if it is good, and
// clears it.
func (p *site) takeFlash(w http.ResponseWriter, r *http.Request) string {
	c, err := r.Cookie(flashCookie)
	if err != nil {
		return ""
	}
	p.clearCookie(w, r, flashCookie)
	msg64, mac64, ok := strings.Cut(c.Value, ".")
	msg, err1 := base64.RawURLEncoding.DecodeString(msg64)
	mac, err2 := base64.RawURLEncoding.DecodeString(mac64)
	key := flashKey(r)
	if !ok || err1 != nil || err2 != nil || key == nil || !hmac.Equal(mac, flashMAC(key, string(msg))) {
		return ""
	}
	return string(msg)
}

// errorPage is the data of the error page.
type errorPage struct {
	Status  int
	Message string
}

// renderError shows the error page with message.
func (p *site) renderError(w http.ResponseWriter, r *http.Request, status int, message string) {
	p.render(w, r, status, "error", http.StatusText(status), errorPage{Status: status, Message: message})
}

// showError shows what err means to the visitor: the library's sentinels
// in words; anything else is an internal error, logged and not shown.
func (p *site) showError(w http.ResponseWriter, r *http.Request, err error) {
	var ve *gaas.ValidationError
	switch {
	case errors.As(err, &ve):
		p.renderError(w, r, http.StatusUnprocessableEntity, fieldErrors(ve))
	case errors.Is(err, gaas.ErrUnauthorized), errors.Is(err, errNoSession):
		http.Redirect(w, r, p.link(r, "/portal/sign-in"), http.StatusSeeOther)
	case errors.Is(err, gaas.ErrNotFound):
		p.renderError(w, r, http.StatusNotFound, "There is no such page, or it is not yours to see.")
	case errors.Is(err, gaas.ErrForbidden):
		p.renderError(w, r, http.StatusForbidden, "You may not do that.")
	case errors.Is(err, gaas.ErrUnavailable):
		w.Header().Set("Retry-After", "5")
		p.renderError(w, r, http.StatusServiceUnavailable, "The database does not answer just now; nothing was changed. Try again shortly.")
	default:
		p.logger.ErrorContext(r.Context(), "portal: internal error", "path", r.URL.Path, "err", err)
		p.renderError(w, r, http.StatusInternalServerError, "Something went wrong on the server; it has been logged.")
	}
}

// fieldErrors says in words what is wrong with which fields.
func fieldErrors(ve *gaas.ValidationError) string {
	var b strings.Builder
	for i, f := range ve.Fields {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(strings.ReplaceAll(f.Field, "_", " ") + " " + f.Message)
	}
	b.WriteString(".")
	return b.String()
}

func (p *site) handleNotFound() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.renderError(w, r, http.StatusNotFound, "There is no such page, or it is not yours to see.")
	})
}

// pager links a listing's pages: Next continues after this page, First
// goes back to the start; either is empty when there is nowhere to go.
type pager struct {
	First, Next string
}

// pageLinks is the pager of r's listing, whose next page begins at
// cursor next (empty: this is the last page). Every other parameter of
// r's query is kept.
func (p *site) pageLinks(r *http.Request, next string) pager {
	var pg pager
	q := r.URL.Query()
	if next != "" {
		q.Set("cursor", next)
		pg.Next = p.link(r, r.URL.Path) + "?" + q.Encode()
	}
	if r.URL.Query().Get("cursor") != "" {
		q.Del("cursor")
		pg.First = p.link(r, r.URL.Path)
		if len(q) > 0 {
			pg.First += "?" + q.Encode()
		}
	}
	return pg
}
