package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"

	"github.com/gaas-io/gaas/gaas"
)

// maxBodyBytes caps every request body.
const maxBodyBytes = 64 << 10

// validator is a request body that can check itself once decoded.
type validator interface {
	Valid() error
}

// problem is an RFC 9457 problem detail.
type problem struct {
	Type      string         `json:"type"`
	Title     string         `json:"title"`
	Status    int            `json:"status"`
	Detail    string         `json:"detail"`
	Instance  string         `json:"instance,omitempty"`
	RequestID string         `json:"request_id,omitempty"`
	Errors    []fieldProblem `json:"errors,omitempty"`
}

// fieldProblem is one entry of a 422's errors: a field under the name the
// client sent it by, and the rule it broke.
type fieldProblem struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// clientError is an error the client caused, with the status and the
// detail it is to be told.
type clientError struct {
	status int
	detail string
}

func (e *clientError) Error() string { return e.detail }

func errStatus(status int, format string, args ...any) error {
	return &clientError{status: status, detail: fmt.Sprintf(format, args...)}
}

// errField is a 422 naming one field.
func errField(field, format string, args ...any) error {
	return gaas.Invalid(field, format, args...)
}

// detailed gives an error from the library the sentence its client is told.
type detailed struct {
	err    error
	detail string
}

func (e *detailed) Error() string { return e.err.Error() }
func (e *detailed) Unwrap() error { return e.err }

// explain gives err the sentence its client is told, when err is target;
// any other error passes through unchanged.
func explain(err, target error, format string, args ...any) error {
	if !errors.Is(err, target) {
		return err
	}
	return &detailed{err: err, detail: fmt.Sprintf(format, args...)}
}

// wireNames maps the library's names for the inputs of one route to the
// names its clients send them by, where the two differ: the balance that
// Quota.Set validates is PUT /users/{id}/quota's "gpu_hours_quota", the
// delta of Quota.Grant a grant's "hours". A handler that calls the library
// keeps its own map beside its request type and passes the library's errors
// through rename; names not in the map are the same on the wire. Errors of
// the server's own decoding name the wire's fields already.
type wireNames map[string]string

// rename has the fields that err names reported by their wire names.
func (n wireNames) rename(err error) error {
	if err == nil {
		return nil
	}
	return &renamed{err: err, names: n}
}

// wire is the name the client knows field by.
func (n wireNames) wire(field string) string {
	if name, ok := n[field]; ok {
		return name
	}
	return field
}

// renamed is an error from the library with the wire names of its fields.
type renamed struct {
	err   error
	names wireNames
}

func (e *renamed) Error() string { return e.err.Error() }
func (e *renamed) Unwrap() error { return e.err }

// statusOf is the one table from the library's sentinel errors to HTTP.
var statusOf = []struct {
	err    error
	status int
	slug   string
	detail string
}{
	{gaas.ErrInvalid, http.StatusUnprocessableEntity, "invalid-request", "The request is not valid."},
	{gaas.ErrQuotaExceeded, http.StatusBadRequest, "quota-exceeded", "Not enough GPU hours left."},
	{gaas.ErrInvalidTransition, http.StatusConflict, "invalid-transition", "The job cannot move to that status."},
	{gaas.ErrUnauthorized, http.StatusUnauthorized, "unauthorized", "Missing or invalid credentials."},
	{gaas.ErrForbidden, http.StatusForbidden, "forbidden", "Your role does not allow this."},
	{gaas.ErrNotFound, http.StatusNotFound, "not-found", "No such resource."},
	{gaas.ErrConflict, http.StatusConflict, "conflict", "The request conflicts with the current state."},
	{gaas.ErrUnavailable, http.StatusServiceUnavailable, "unavailable", "The database is not available just now; nothing was changed. Try again shortly."},
}

// problemFor turns an error into the problem its client is told. Anything
// it does not know is a 500 that says only "internal error".
func problemFor(err error) problem {
	var ce *clientError
	if errors.As(err, &ce) {
		return problem{Type: "about:blank", Title: http.StatusText(ce.status), Status: ce.status, Detail: ce.detail}
	}
	for _, s := range statusOf {
		if !errors.Is(err, s.err) {
			continue
		}
		p := problem{Type: "urn:gaas:problem:" + s.slug, Title: http.StatusText(s.status), Status: s.status, Detail: s.detail}
		var (
			d  *detailed
			rn *renamed
			ve *gaas.ValidationError
			qe *gaas.QuotaError
			te *gaas.TransitionError
		)
		var names wireNames
		if errors.As(err, &rn) {
			names = rn.names
		}
		switch {
		case errors.As(err, &d):
			p.Detail = d.detail
		case errors.As(err, &ve):
			p.Detail = validationDetail(ve, names)
		case errors.As(err, &qe):
			p.Detail = fmt.Sprintf("Not enough GPU hours: asked for %s, %s left.", qe.Asked, qe.Remaining)
		case errors.As(err, &te):
			p.Detail = sentence(strings.TrimPrefix(te.Error(), gaas.ErrInvalidTransition.Error()+": "))
		}
		if ve != nil || errors.As(err, &ve) {
			p.Errors = make([]fieldProblem, len(ve.Fields))
			for i, f := range ve.Fields {
				p.Errors[i] = fieldProblem{Field: names.wire(f.Field), Message: f.Message}
			}
		}
		return p
	}
	return problem{Type: "about:blank", Title: http.StatusText(http.StatusInternalServerError), Status: http.StatusInternalServerError, Detail: "internal error"}
}

func validationDetail(ve *gaas.ValidationError, names wireNames) string {
	parts := make([]string, len(ve.Fields))
	for i, f := range ve.Fields {
		parts[i] = names.wire(f.Field) + " " + f.Message
	}
	return "Invalid request: " + strings.Join(parts, "; ") + "."
}

// sentence capitalises s and ends it with a full stop.
func sentence(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:] + "."
}

// writeError answers with the problem for err. A server error is logged
// with the request id; its body says only "internal error".
func writeError(w http.ResponseWriter, r *http.Request, logger *slog.Logger, err error) {
	p := problemFor(err)
	switch {
	case p.Status == http.StatusServiceUnavailable:
		logger.WarnContext(r.Context(), "store unavailable", "err", err, "request_id", requestIDFrom(r.Context()))
	case p.Status >= 500:
		logger.ErrorContext(r.Context(), "request failed", "err", err, "request_id", requestIDFrom(r.Context()))
	}
	writeProblem(w, r, p)
}

func writeProblem(w http.ResponseWriter, r *http.Request, p problem) {
	p.RequestID = requestIDFrom(r.Context())
	switch p.Status {
	case http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", `Bearer`)
	case http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", "1")
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(p.Status)
	json.NewEncoder(w).Encode(p)
}

// encode writes v as JSON with the status.
func encode(w http.ResponseWriter, status int, v any) {
	jsonHeaders(w)
	w.WriteHeader(status)
	newEncoder(w).Encode(v)
}

// jsonHeaders says that an answer is JSON, and only JSON.
func jsonHeaders(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
}

// newEncoder writes JSON without escaping <, > and & as \u003c...: answers
// are application/json with nosniff, never read as HTML, and a command full
// of < would otherwise take six times its size.
func newEncoder(w io.Writer) *json.Encoder {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc
}

// maxPageBytes bounds the answer to one page of a listing. A page ends
// before the item that would take it past this (never before its first
// item), with a cursor to the rest: limit is a most, not a promise. Without
// it, 500 jobs with commands of 8192 four-byte characters would be a 16 MiB
// answer.
const maxPageBytes = 1 << 20

// pageChunk is how many items a listing asks the store for at a time, so
// that a page of 500 holds at most this many rows in memory at once.
const pageChunk = 100

// writeListing answers 200 with one page of a listing, {"items": [...],
// "next_cursor": ...}, which fetch reads from the store a chunk at a time.
// It encodes the items one at a time as it writes them, so that only one
// is ever held encoded, and ends the page at page.Limit items or before
// maxPageBytes, with a cursor after the last item written; id is what
// listings are ordered by. An error of the first fetch is returned, with
// nothing written; a later one ends the page early, with its cursor.
func writeListing[S, T any](w http.ResponseWriter, r *http.Request, logger *slog.Logger, page gaas.Page,
	fetch func(gaas.Page) (items []S, next string, err error), id func(S) int64, conv func(S) T) error {
	want := page.Limit
	if want == 0 {
		want = gaas.DefaultLimit
	}
	items, next, err := fetch(gaas.Page{Limit: min(want, pageChunk), Cursor: page.Cursor})
	if err != nil {
		return err
	}
	jsonHeaders(w)
	w.WriteHeader(http.StatusOK)
	var buf bytes.Buffer
	enc := newEncoder(&buf)
	const head, tail = `{"items":[`, `],"next_cursor":`
	size := len(head) + len(tail) + len(`""`) + 32 + len("}\n") // 32: room for a cursor
	if _, err := io.WriteString(w, head); err != nil {
		return nil // the client is gone
	}
	var written int
	var last S
page:
	for {
		for _, s := range items {
			buf.Reset()
			if written > 0 {
				buf.WriteByte(',')
			}
			if err := enc.Encode(conv(s)); err != nil {
				panic(err) // the item types always encode
			}
			item := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
			if written > 0 && size+len(item) > maxPageBytes {
				next = gaas.CursorAfter(id(last))
				break page
			}
			if _, err := w.Write(item); err != nil {
				return nil
			}
			size += len(item)
			written++
			last = s
		}
		if next == "" || written == want {
			break
		}
		more, after, err := fetch(gaas.Page{Limit: min(want-written, pageChunk), Cursor: next})
		if err != nil {
			// The answer has begun: end it here, with the cursor to go on.
			logger.WarnContext(r.Context(), "listing cut short", "err", err, "request_id", requestIDFrom(r.Context()))
			break
		}
		items, next = more, after
	}
	buf.Reset()
	buf.WriteString(tail)
	if next == "" {
		buf.WriteString("null}\n")
	} else {
		enc.Encode(next)
		buf.Truncate(buf.Len() - 1)
		buf.WriteString("}\n")
	}
	w.Write(buf.Bytes())
	return nil
}

// readBody reads a capped body whose media type must be one of types.
// It returns the media type found.
func readBody(w http.ResponseWriter, r *http.Request, types ...string) (string, []byte, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || !contains(types, mt) {
		return "", nil, errStatus(http.StatusUnsupportedMediaType, "Content-Type must be %s.", strings.Join(types, " or "))
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return "", nil, errStatus(http.StatusRequestEntityTooLarge, "The body is larger than %d bytes.", maxBodyBytes)
	} else if err != nil {
		return "", nil, errStatus(http.StatusBadRequest, "The body could not be read.")
	}
	return mt, body, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// decode reads a JSON body into a T and validates it. The body must be
// one JSON object, with no unknown or duplicate fields and nothing after it.
func decode[T validator](w http.ResponseWriter, r *http.Request) (T, error) {
	var v T
	_, body, err := readBody(w, r, "application/json")
	if err != nil {
		return v, err
	}
	return v, unmarshal(body, &v)
}

// unmarshal decodes one JSON object from body into v, strictly, and runs
// v's validation.
func unmarshal[T validator](body []byte, v *T) error {
	keys, err := checkObject(body)
	if err != nil {
		return err
	}
	// encoding/json matches names without regard to case, so "COMMAND"
	// would fill command, and beside "command" silently replace it: only
	// the exact names are fields.
	fields := jsonNames(reflect.TypeFor[T]())
	for _, k := range keys {
		if !fields[k] {
			return errField(k, "is not a field of this request")
		}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &te) && te.Field != "":
			return errField(te.Field, "must be %s", jsonKind(te.Type.Kind().String()))
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
			return errField(name, "is not a field of this request")
		}
		return errField("body", "is not valid JSON: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
	return (*v).Valid()
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "ptr", "struct", "map":
		return "an object"
	case "slice", "array":
		return "an array"
	}
	return "a number"
}

// checkObject makes sure body is exactly one JSON object with no key given
// twice at any depth: encoding/json would take the last of two keys and
// ignore anything after the first value.
// It returns the object's keys.
func checkObject(body []byte) ([]string, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, errField("body", "must be a JSON object")
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errField("body", "must be a JSON object")
	}
	var keys []string
	if err := checkValue(dec, tok, &keys); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errField("body", "must hold one JSON object and nothing after it")
	}
	return keys, nil
}

// jsonNames are the JSON names of the fields of struct type t (or of what
// t points to), computed once per type.
func jsonNames(t reflect.Type) map[string]bool {
	if names, ok := fieldNames.Load(t); ok {
		return names.(map[string]bool)
	}
	st := t
	for st.Kind() == reflect.Pointer {
		st = st.Elem()
	}
	names := map[string]bool{}
	for f := range st.Fields() {
		if name, _, _ := strings.Cut(f.Tag.Get("json"), ","); f.IsExported() && name != "" && name != "-" {
			names[name] = true
		}
	}
	fieldNames.Store(t, names)
	return names
}

var fieldNames sync.Map // reflect.Type -> map[string]bool

// checkValue walks the value that starts with tok, failing on syntax
// errors and duplicate keys; keys, when not nil, collects the keys of the
// object tok opens.
func checkValue(dec *json.Decoder, tok json.Token, keys *[]string) error {
	d, ok := tok.(json.Delim)
	if !ok {
		return nil
	}
	seen := map[string]bool{}
	for dec.More() {
		if d == '{' {
			k, err := dec.Token()
			if err != nil {
				return errField("body", "is not valid JSON")
			}
			key := k.(string)
			if seen[key] {
				return errField(key, "is given more than once")
			}
			seen[key] = true
			if keys != nil {
				*keys = append(*keys, key)
			}
		}
		v, err := dec.Token()
		if err != nil {
			return errField("body", "is not valid JSON")
		}
		if err := checkValue(dec, v, nil); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil { // the closing delimiter
		return errField("body", "is not valid JSON")
	}
	return nil
}

// hoursJSON is an amount of hours as the API writes and reads it: a JSON
// number of hours, read exactly (gaas.ParseHours, never through a float).
// Every answer carries its hours in it, and every request reads its own
// through it (hoursField).
type hoursJSON gaas.Hours

// MarshalJSON writes h as a number of hours. Whole hours carry a ".0"
// ("10.0"), as the floats of the original Python service did, so that
// clients of that service keep reading a float.
func (h hoursJSON) MarshalJSON() ([]byte, error) {
	b := []byte(gaas.Hours(h).String())
	if gaas.Hours(h)%gaas.Hour == 0 {
		b = append(b, ".0"...)
	}
	return b, nil
}

// UnmarshalJSON reads a JSON number of hours exactly. Strings, booleans and
// null are errors: an amount of hours is always a number. A number within
// float noise of a milli-hour multiple means that multiple (see
// floatNoise); one that is really finer is a *hoursPrecisionError.
func (h *hoursJSON) UnmarshalJSON(b []byte) error {
	v, err := gaas.ParseHours(string(b))
	if errors.Is(err, gaas.ErrHoursPrecision) {
		v, err = nearestMilliHour(string(b), err)
	}
	if err != nil {
		return err
	}
	*h = hoursJSON(v)
	return nil
}

// floatNoise is how far, relative to its size, a number of hours may lie
// from a multiple of a milli-hour and still mean it. Clients of the original
// service compute hours in float64 and send 0.1 + 0.2 as
// 0.30000000000000004, one unit in the last place from 0.3; float64 holds
// about 16 digits, so 1e-12 leaves room for the noise of a few operations
// and none for an amount really finer than a milli-hour (0.0005, 20/60).
const floatNoise = 1e-12

// hoursPrecisionError is a number of hours finer than a milli-hour, with
// the two amounts nearest to it.
type hoursPrecisionError struct {
	err    error
	lo, hi gaas.Hours
}

func (e *hoursPrecisionError) Error() string { return e.err.Error() }
func (e *hoursPrecisionError) Unwrap() error { return e.err }

// nearestMilliHour reads s, a JSON number that gaas.ParseHours refused with
// precision error err, as a float64. If it lies within floatNoise of a
// milli-hour multiple, that multiple is the amount; otherwise the error
// names the nearest amounts on either side.
func nearestMilliHour(s string, err error) (gaas.Hours, error) {
	f, ferr := strconv.ParseFloat(s, 64)
	milli := f * float64(gaas.Hour)
	if ferr != nil || math.Abs(milli) > float64(gaas.MaxHours) {
		return 0, fmt.Errorf("gaas: parse hours: %w", gaas.ErrHoursRange)
	}
	if m := math.Round(milli); f != 0 && math.Abs(f-m/float64(gaas.Hour)) <= floatNoise*math.Abs(f) {
		return gaas.Hours(m), nil
	}
	lo := gaas.Hours(math.Floor(milli))
	if f == 0 && strings.HasPrefix(s, "-") { // below the smallest float64
		lo = -gaas.MilliHour
	}
	return 0, &hoursPrecisionError{err: err, lo: lo, hi: lo + gaas.MilliHour}
}

// hoursField reads a JSON number of hours exactly, naming field in errors.
// A missing field or null is nil. Requests hold their hours as raw JSON
// and read them here, so that a bad amount is a 422 that names its field.
func hoursField(raw json.RawMessage, field string) (*gaas.Hours, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var h hoursJSON
	err := h.UnmarshalJSON(raw)
	var fine *hoursPrecisionError
	switch {
	case errors.As(err, &fine):
		return nil, errField(field, "has more than 3 decimal places; hours are kept to the milli-hour: the nearest amounts are %s and %s",
			fine.lo, fine.hi)
	case errors.Is(err, gaas.ErrHoursPrecision):
		return nil, errField(field, "has more than 3 decimal places; hours are kept to the milli-hour")
	case errors.Is(err, gaas.ErrHoursRange):
		return nil, errField(field, "must be at most %s", gaas.MaxHours)
	case err != nil:
		return nil, errField(field, "must be a number")
	}
	return (*gaas.Hours)(&h), nil
}
