package portal

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gaas-io/gaas/gaas"
)

// adminOnly answers 404 to a visitor who is not an admin, as the API
// hides what its caller may not see. It is the portal's hint only: the
// library refuses the same people whatever the portal shows.
func (p *site) adminOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !visitorOf(r).user.IsAdmin() {
			p.handleNotFound().ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (p *site) handleAdminIndex() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		page, err := p.svc.Jobs.List(r.Context(), callerID(r), gaas.JobFilter{Status: gaas.StatusPending, Page: gaas.Page{Limit: gaas.MaxLimit}})
		if err != nil {
			p.showError(w, r, err)
			return
		}
		pending := strconv.Itoa(len(page.Items))
		if page.NextCursor != "" {
			pending = "more than " + pending
		}
		p.render(w, r, http.StatusOK, "admin", "Admin", pending)
	})
}

// pathID is the positive id in r's path parameter name.
func pathID(r *http.Request, name string) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue(name), 10, 64)
	return id, err == nil && id > 0
}

// formIDs are the positive ids of the form's field name; ok is false
// when one of them is not.
func formIDs(r *http.Request, name string) (ids []int64, ok bool) {
	for _, s := range r.PostForm[name] {
		id, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil || id <= 0 {
			return nil, false
		}
		ids = append(ids, id)
	}
	return ids, true
}

// distinct is ids without repeats, in the order they first come.
func distinct(ids []int64) []int64 {
	seen := make(map[int64]bool, len(ids))
	out := ids[:0]
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// optionalCredits reads a form's amount of credits; empty is nil.
func optionalCredits(field, s string) (*gaas.Credits, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	c, err := gaas.ParseCredits(s)
	if err != nil {
		return nil, gaas.Invalid(field, "must be a number of credits, such as 10 or 2.5, from 0 to %s", gaas.MaxCredits)
	}
	return &c, nil
}

// requiredCredits reads a form's amount of credits that must be given.
func requiredCredits(field, s string) (gaas.Credits, error) {
	c, err := optionalCredits(field, s)
	if err == nil && c == nil {
		err = gaas.Invalid(field, "is required")
	}
	if err != nil {
		return 0, err
	}
	return *c, nil
}

// formTime reads a time of a form: a date (midnight UTC), a
// datetime-local input's value (in UTC), or an RFC 3339 time; empty is
// the zero time.
func formTime(field, s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{"2006-01-02T15:04", "2006-01-02T15:04:05"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	t, err := gaas.ParseReportTime(s)
	if err != nil {
		return time.Time{}, gaas.Invalid(field, "must be a date, such as 2026-12-31, or a time, such as 2026-12-31T18:00 (UTC)")
	}
	return t, nil
}

// gpuTypeList reads a list of GPU types separated by commas; empty is
// nil, every type.
func gpuTypeList(s string) []string {
	var out []string
	for _, t := range strings.Split(s, ",") {
		if t = strings.TrimSpace(t); t != "" {
			out = append(out, t)
		}
	}
	return out
}

// failed shows why the library refused what a form asked, in words and
// under the status the API would answer, beginning with what (such as
// "The user was not created"); conflict says what a conflict means here.
// Errors it does not know are showError's.
func (p *site) failed(w http.ResponseWriter, r *http.Request, what, conflict string, err error) {
	var (
		ve *gaas.ValidationError
		te *gaas.TransitionError
		qe *gaas.QuotaError
		le *gaas.LimitError
	)
	var refused *Refused
	switch {
	case errors.As(err, &refused) && refused.Busy:
		w.Header().Set("Retry-After", retryAfter(refused.RetryAfter))
		p.renderError(w, r, http.StatusServiceUnavailable, what+": the server is busy checking passwords; try again in a few seconds.")
	case errors.As(err, &refused):
		w.Header().Set("Retry-After", retryAfter(refused.RetryAfter))
		p.renderError(w, r, http.StatusTooManyRequests, what+": too many failed sign-ins from here; try again in "+retryAfter(refused.RetryAfter)+" seconds.")
	case errors.As(err, &ve):
		p.renderError(w, r, http.StatusUnprocessableEntity, what+": "+fieldErrors(ve))
	case errors.As(err, &te):
		p.renderError(w, r, http.StatusConflict, fmt.Sprintf("%s: it is %s, which cannot become %s.", what, te.From, te.To))
	case errors.As(err, &qe):
		p.renderError(w, r, http.StatusConflict, fmt.Sprintf("%s: it asks for %s credits, and %s are available.", what, qe.Asked, qe.Remaining))
	case errors.As(err, &le):
		p.renderError(w, r, http.StatusConflict, fmt.Sprintf("%s: the %s of project %s leaves %s credits, and %s were asked.", what, le.Bound, le.Project, le.Remaining, le.Asked))
	case errors.Is(err, gaas.ErrConflict) && conflict != "":
		p.renderError(w, r, http.StatusConflict, what+": "+conflict)
	case errors.Is(err, gaas.ErrForbidden):
		p.renderError(w, r, http.StatusForbidden, what+": you may not do that.")
	case errors.Is(err, gaas.ErrInvalid), errors.Is(err, gaas.ErrConflict):
		// A refusal the library words for its log, such as an unknown
		// parent: its last words say what, without the package names.
		msg := err.Error()
		if i := strings.LastIndex(msg, ": "); i > 0 {
			msg = msg[:i]
		}
		if i := strings.LastIndex(msg, ": "); i >= 0 {
			msg = msg[i+2:]
		}
		status := http.StatusUnprocessableEntity
		if errors.Is(err, gaas.ErrConflict) {
			status = http.StatusConflict
		}
		p.renderError(w, r, status, what+": "+msg+".")
	default:
		p.showError(w, r, err)
	}
}

// usernames names the users of ids as the caller may read them: a user's
// name, or "user N" when the library does not let the caller read them.
func (p *site) usernames(r *http.Request, ids []int64) map[int64]string {
	out := make(map[int64]string, len(ids))
	for _, id := range ids {
		if _, ok := out[id]; ok {
			continue
		}
		out[id] = "user " + strconv.FormatInt(id, 10)
		if u, err := p.svc.Users.User(r.Context(), callerID(r), gaas.GetUserRequest{UserID: id}); err == nil {
			out[id] = u.Username
		}
	}
	return out
}

// decideRow is a job of a listing that admins or managers approve from.
type decideRow struct {
	jobRow
	User    string
	UserID  int64
	Project string
	Pending bool
	Checked bool
}

// decideRows are jobs as rows, with their owners' names and, when
// selectAll, their boxes ticked.
func (p *site) decideRows(r *http.Request, jobs []gaas.Job, selectAll bool) []decideRow {
	ids := make([]int64, len(jobs))
	for i, j := range jobs {
		ids[i] = j.UserID
	}
	names := p.usernames(r, ids)
	rows := make([]decideRow, len(jobs))
	for i, row := range jobRows(jobs) {
		pending := jobs[i].Status == gaas.StatusPending
		rows[i] = decideRow{jobRow: row, User: names[jobs[i].UserID], UserID: jobs[i].UserID, Pending: pending, Checked: pending && selectAll}
	}
	return rows
}

// decideTable is a listing of jobs with the controls to approve and
// reject them (when Controls): a box per PENDING row, a button per row,
// and buttons for the ticked ones with the reason of a rejection. The
// "decide" template shows it.
type decideTable struct {
	Caption string
	Jobs    []decideRow
	// Controls shows the boxes and buttons.
	Controls bool
	// Back is the page the form returns to.
	Back string
	// SelectAll, SelectNone are this page with every box ticked, or none.
	SelectAll, SelectNone string
	Base, CSRF            string
}

// newDecideTable is the table of jobs on r's page.
func (p *site) newDecideTable(r *http.Request, caption string, jobs []gaas.Job, controls bool) decideTable {
	t := decideTable{Caption: caption, Jobs: p.decideRows(r, jobs, r.URL.Query().Get("select") == "all"), Controls: controls,
		Back: r.URL.RequestURI(), Base: p.base(r), CSRF: csrfToken(r)}
	t.SelectAll, t.SelectNone = selectLinks(p, r)
	return t
}

// queuePage is the data of the approval queue.
type queuePage struct {
	Table decideTable
	Pager pager
}

// handleQueue lists the PENDING jobs, newest first as the library lists
// them, a page at a time (limit, up to gaas.MaxLimit), for admins to
// approve or reject.
func (p *site) handleQueue() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		f := gaas.JobFilter{Status: gaas.StatusPending, Page: gaas.Page{Cursor: q.Get("cursor")}}
		if s := q.Get("limit"); s != "" {
			if n, err := strconv.Atoi(s); err == nil && n != 0 {
				f.Limit = n
			} else {
				f.Limit = -1 // the library says what is wrong with it
			}
		}
		page, err := p.svc.Jobs.List(r.Context(), callerID(r), f)
		if err != nil {
			p.showError(w, r, err)
			return
		}
		data := queuePage{Table: p.newDecideTable(r, "Jobs waiting for approval, newest first", page.Items, true), Pager: p.pageLinks(r, page.NextCursor)}
		p.render(w, r, http.StatusOK, "admin_queue", "Approval queue", data)
	})
}

// selectLinks are r's page with select=all, and without it.
func selectLinks(p *site, r *http.Request) (all, none string) {
	q := r.URL.Query()
	q.Set("select", "all")
	all = p.link(r, r.URL.Path) + "?" + q.Encode()
	q.Del("select")
	none = p.link(r, r.URL.Path)
	if len(q) > 0 {
		none += "?" + q.Encode()
	}
	return all, none
}

// handleDecide approves or rejects jobs: the job a row's button names
// (approve=ID or reject=ID), or every ticked box (the value "selected"),
// a rejection with the form's reason. The library decides who may: admins,
// and managers of a project that lets them approve its PENDING jobs. Each
// job is moved on its own; the flash says what became of each.
func (p *site) handleDecide() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f := r.PostForm
		to, which, verb := gaas.StatusApproved, f.Get("approve"), "approved"
		if which == "" {
			to, which, verb = gaas.StatusRejected, f.Get("reject"), "rejected"
		}
		var ids []int64
		ok := true
		switch which {
		case "":
			ok = false
		case "selected":
			ids, ok = formIDs(r, "job")
		default:
			id, err := strconv.ParseInt(which, 10, 64)
			ok = err == nil && id > 0
			ids = []int64{id}
		}
		back := backTo(r, "/portal/admin/queue")
		if !ok {
			p.renderError(w, r, http.StatusUnprocessableEntity, "Say which jobs to approve or reject; nothing was changed.")
			return
		}
		// A page lists at most gaas.MaxLimit jobs, and each is a
		// transaction of its own: a form that names more is no page's.
		if ids = distinct(ids); len(ids) > gaas.MaxLimit {
			p.renderError(w, r, http.StatusUnprocessableEntity,
				fmt.Sprintf("At most %d jobs are approved or rejected at once; nothing was changed.", gaas.MaxLimit))
			return
		}
		if len(ids) == 0 {
			p.redirect(w, r, back, "No job was ticked, so none was "+verb+".")
			return
		}
		reason := ""
		if to == gaas.StatusRejected {
			reason = strings.TrimSpace(f.Get("reason"))
		}
		var done []string
		var notes []string
		for _, id := range ids {
			_, err := p.svc.Jobs.Transition(r.Context(), callerID(r), gaas.TransitionRequest{JobID: id, To: to, Reason: reason})
			var (
				te *gaas.TransitionError
				ve *gaas.ValidationError
			)
			switch {
			case err == nil:
				done = append(done, strconv.FormatInt(id, 10))
			case errors.As(err, &te):
				notes = append(notes, fmt.Sprintf("Job %d was not %s: it is %s now.", id, verb, te.From))
			case errors.As(err, &ve):
				p.failed(w, r, "No job was "+verb, "", err)
				return
			case errors.Is(err, gaas.ErrNotFound), errors.Is(err, gaas.ErrForbidden):
				notes = append(notes, fmt.Sprintf("Job %d was not %s: it is not yours to decide.", id, verb))
			default:
				p.showError(w, r, err)
				return
			}
		}
		var msg []string
		switch len(done) {
		case 0:
		case 1:
			msg = append(msg, fmt.Sprintf("Job %s is %s.", done[0], verb))
		default:
			msg = append(msg, fmt.Sprintf("Jobs %s are %s.", strings.Join(done, ", "), verb))
		}
		if len(done) > 0 && to == gaas.StatusRejected {
			msg = append(msg, "Their credits were returned.")
		}
		p.redirect(w, r, back, strings.Join(append(msg, notes...), " "))
	})
}
