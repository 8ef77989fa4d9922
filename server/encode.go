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
	{gaas.ErrQuotaExceeded, http.StatusBadRequest, "quota-exceeded", "Not enough credits left."},
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
			le *gaas.LimitError
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
		case errors.As(err, &le):
			p.Detail = limitDetail(le)
		case errors.As(err, &qe) && qe.GPUType != "":
			p.Detail = fmt.Sprintf("Not enough credits for GPU type %s: the job costs %s, and %s are available for that type.", qe.GPUType, qe.Asked, qe.Remaining)
		case errors.As(err, &qe):
			p.Detail = fmt.Sprintf("Not enough credits: asked for %s, %s left.", qe.Asked, qe.Remaining)
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
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
		return "an integer"
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

// amount is what travels as a JSON number kept exactly to the thousandth:
// hours, credits, and rates in credits per GPU-hour. All three are
// integers of thousandths, so one wire type serves them.
type amount interface {
	gaas.Hours | gaas.Credits | gaas.Rate
	String() string
}

// hoursJSON, creditsJSON and rateJSON are amounts as the API writes and
// reads them: JSON numbers, read exactly (gaas.ParseHours, ParseCredits
// or ParseRate, never through a float). Every answer carries its amounts
// in them, and every request reads its own through amountField. They
// share one implementation, marshalAmount and unmarshalAmount.
type (
	hoursJSON   gaas.Hours
	creditsJSON gaas.Credits
	rateJSON    gaas.Rate
)

func (h hoursJSON) MarshalJSON() ([]byte, error)    { return marshalAmount(gaas.Hours(h)), nil }
func (c creditsJSON) MarshalJSON() ([]byte, error)  { return marshalAmount(gaas.Credits(c)), nil }
func (r rateJSON) MarshalJSON() ([]byte, error)     { return marshalAmount(gaas.Rate(r)), nil }
func (h *hoursJSON) UnmarshalJSON(b []byte) error   { return unmarshalAmount((*gaas.Hours)(h), b) }
func (c *creditsJSON) UnmarshalJSON(b []byte) error { return unmarshalAmount((*gaas.Credits)(c), b) }
func (r *rateJSON) UnmarshalJSON(b []byte) error    { return unmarshalAmount((*gaas.Rate)(r), b) }

// unit is what the wire needs to know of an amount's type: how to parse
// it, its largest magnitude, and how messages name its precision.
type unit struct {
	parse    func(string) (int64, error)
	max      int64
	errRange error
	kept     string // how precisely it is kept, for the message of a finer number
}

func unitOf[T amount]() unit {
	var zero T
	switch any(zero).(type) {
	case gaas.Credits:
		return unit{parse: func(s string) (int64, error) { c, err := gaas.ParseCredits(s); return int64(c), err },
			max: int64(gaas.MaxCredits), errRange: gaas.ErrCreditsRange, kept: "credits are kept to the milli-credit"}
	case gaas.Rate:
		return unit{parse: func(s string) (int64, error) { r, err := gaas.ParseRate(s); return int64(r), err },
			max: int64(gaas.MaxRate), errRange: gaas.ErrRateRange, kept: "rates are kept to the milli-credit per GPU-hour"}
	}
	return unit{parse: func(s string) (int64, error) { h, err := gaas.ParseHours(s); return int64(h), err },
		max: int64(gaas.MaxHours), errRange: gaas.ErrHoursRange, kept: "hours are kept to the milli-hour"}
}

// marshalAmount writes a as a JSON number. Whole amounts carry a ".0"
// ("10.0"), as the floats of the original Python service did, so that
// clients of that service keep reading a float.
func marshalAmount[T amount](a T) []byte {
	b := []byte(a.String())
	if a%1000 == 0 {
		b = append(b, ".0"...)
	}
	return b
}

// unmarshalAmount reads a JSON number into a exactly. Strings, booleans
// and null are errors: an amount is always a number. A number within
// float noise of a multiple of a thousandth means that multiple (see
// floatNoise); one that is really finer is a *precisionError.
func unmarshalAmount[T amount](a *T, b []byte) error {
	u := unitOf[T]()
	v, err := u.parse(string(b))
	if errors.Is(err, gaas.ErrHoursPrecision) {
		v, err = nearestThousandth[T](string(b), err, u)
	}
	if err != nil {
		return err
	}
	*a = T(v)
	return nil
}

// floatNoise is how far, relative to its size, a number may lie from a
// multiple of a thousandth (a milli-hour, a milli-credit) and still mean
// it. Clients of the original service compute hours in float64 and send
// 0.1 + 0.2 as 0.30000000000000004, one unit in the last place from 0.3;
// float64 holds about 16 digits, so 1e-12 leaves room for the noise of a
// few operations and none for an amount really finer than a thousandth
// (0.0005, 20/60).
const floatNoise = 1e-12

// precisionError is a number finer than a thousandth of its unit, with
// the two amounts nearest to it.
type precisionError[T amount] struct {
	err    error
	lo, hi T
}

func (e *precisionError[T]) Error() string { return e.err.Error() }
func (e *precisionError[T]) Unwrap() error { return e.err }

type hoursPrecisionError = precisionError[gaas.Hours]

// nearestThousandth reads s, a JSON number that the parser of u refused
// with precision error err, as a float64. If it lies within floatNoise of
// a multiple of a thousandth, that multiple is the amount; otherwise the
// error names the nearest amounts on either side.
func nearestThousandth[T amount](s string, err error, u unit) (int64, error) {
	f, ferr := strconv.ParseFloat(s, 64)
	milli := f * 1000
	if ferr != nil || math.Abs(milli) > float64(u.max) {
		return 0, fmt.Errorf("server: parse %q: %w", s, u.errRange)
	}
	if m := math.Round(milli); f != 0 && math.Abs(f-m/1000) <= floatNoise*math.Abs(f) {
		return int64(m), nil
	}
	lo := T(math.Floor(milli))
	if f == 0 && strings.HasPrefix(s, "-") { // below the smallest float64
		lo = -1
	}
	return 0, &precisionError[T]{err: err, lo: lo, hi: lo + 1}
}

// amountField reads a JSON number exactly, naming field in errors. A
// missing field or null is nil. Requests hold their amounts as raw JSON
// and read them here, so that a bad amount is a 422 that names its field.
func amountField[T amount](raw json.RawMessage, field string) (*T, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	u := unitOf[T]()
	var a T
	err := unmarshalAmount(&a, raw)
	var fine *precisionError[T]
	switch {
	case errors.As(err, &fine):
		return nil, errField(field, "has more than 3 decimal places; %s: the nearest amounts are %s and %s", u.kept, fine.lo, fine.hi)
	case errors.Is(err, gaas.ErrHoursPrecision):
		return nil, errField(field, "has more than 3 decimal places; %s", u.kept)
	case errors.Is(err, u.errRange):
		return nil, errField(field, "must be at most %s", T(u.max))
	case err != nil:
		return nil, errField(field, "must be a number")
	}
	return &a, nil
}

// hoursField reads a JSON number of hours; see amountField.
func hoursField(raw json.RawMessage, field string) (*gaas.Hours, error) {
	return amountField[gaas.Hours](raw, field)
}
