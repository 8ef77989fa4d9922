package portal

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/gaas-io/gaas/gaas"
)

// jobsPage is the data of the user's list of jobs.
type jobsPage struct {
	Jobs []jobRow
	// The filter as given, to show it again.
	Status, GPUType string
	Limit           int
	Statuses        []gaas.JobStatus
	// GPUTypes are the catalogue's names, for the filter's choices; empty
	// in open mode, where the filter is free text.
	GPUTypes []string
	Pager    pager
	// Back is this page, where a cancel form returns to.
	Back  string
	Error string
}

// handleJobs lists the user's own jobs, newest first, a page at a time,
// filtered by status and GPU type. A filter the library refuses is shown
// on the page (422) with no jobs.
func (p *site) handleJobs() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		data := jobsPage{Status: q.Get("status"), GPUType: q.Get("gpu_type"), Statuses: gaas.Statuses(), Back: r.URL.RequestURI()}
		types, err := p.gpuTypeNames(r)
		if err != nil {
			p.showError(w, r, err)
			return
		}
		data.GPUTypes = types
		f := gaas.JobFilter{UserID: callerID(r), Status: gaas.JobStatus(data.Status), GPUType: data.GPUType,
			Page: gaas.Page{Cursor: q.Get("cursor")}}
		if s := q.Get("limit"); s != "" {
			if f.Limit, err = strconv.Atoi(s); err != nil || f.Limit == 0 {
				f.Limit = -1 // the library says what is wrong with it
			}
		}
		data.Limit = f.Limit
		if data.Status != "" && !f.Status.Valid() {
			err = gaas.Invalid("status", "must be one of %s", joinStatuses())
		} else {
			var page gaas.JobPage
			page, err = p.svc.Jobs.List(r.Context(), callerID(r), f)
			data.Jobs, data.Pager = jobRows(page.Items), p.pageLinks(r, page.NextCursor)
		}
		var ve *gaas.ValidationError
		switch {
		case errors.As(err, &ve):
			data.Error = fieldErrors(ve)
			p.render(w, r, http.StatusUnprocessableEntity, "jobs", "Your jobs", data)
			return
		case err != nil:
			p.showError(w, r, err)
			return
		}
		p.render(w, r, http.StatusOK, "jobs", "Your jobs", data)
	})
}

// jobRow is a job as a row of a listing shows it, written out in Go, and
// the rows share one cancel form, each cancellable row with a button that
// names its job: html/template escapes every action through a call by
// reflection, and a page of 500 rows renders in half the time it took with
// a form per row and fields formatted by the template (BENCHMARKS.md).
type jobRow struct {
	ID                                       int64
	Command, GPUType, Hours, Cost, Submitted string
	GPUs                                     int
	Status                                   gaas.JobStatus
	Cancellable                              bool
}

// cancellable reports whether the cancel button is offered for j: it has
// not ended, nor was its executor told to stop it.
func cancellable(j gaas.Job) bool {
	return !j.Status.Final() && (j.Run == nil || !j.Run.CancelRequested)
}

func jobRows(jobs []gaas.Job) []jobRow {
	rows := make([]jobRow, len(jobs))
	for i, j := range jobs {
		hours := j.EstimatedHours
		if j.ActualHours != nil {
			hours = *j.ActualHours
		}
		rows[i] = jobRow{ID: j.ID, Command: short(j.Command), GPUType: j.GPUType, Hours: hours.String(), Cost: j.Cost.String(),
			Submitted: formatDate(j.CreatedAt), GPUs: j.GPUCount, Status: j.Status, Cancellable: cancellable(j)}
	}
	return rows
}

func joinStatuses() string {
	var s []string
	for _, st := range gaas.Statuses() {
		s = append(s, string(st))
	}
	return strings.Join(s, ", ")
}

// gpuTypeNames are the names of the catalogue's types, retired ones too
// (old jobs have them).
func (p *site) gpuTypeNames(r *http.Request) ([]string, error) {
	types, err := p.svc.Catalogue.GPUTypes(r.Context(), callerID(r), gaas.GPUTypesRequest{Retired: true})
	if err != nil {
		return nil, err
	}
	names := make([]string, len(types))
	for i, t := range types {
		names[i] = t.Name
	}
	return names, nil
}

// jobPage is the data of one job's page.
type jobPage struct {
	Job         gaas.Job
	Cancellable bool
	// Project is the name of the project it is charged to, if any.
	Project string
	Back    string
}

// handleJob shows one of the user's jobs; anyone else's is 404, as the
// library answers.
func (p *site) handleJob() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
		if err != nil || id <= 0 {
			p.renderError(w, r, http.StatusNotFound, "There is no such page, or it is not yours to see.")
			return
		}
		j, err := p.svc.Jobs.Get(r.Context(), callerID(r), gaas.GetJobRequest{JobID: id})
		if err != nil {
			p.showError(w, r, err)
			return
		}
		data := jobPage{Job: j, Back: r.URL.RequestURI(), Cancellable: cancellable(j)}
		if j.ProjectID != 0 {
			if pr, err := p.svc.Projects.Project(r.Context(), callerID(r), gaas.GetProjectRequest{Project: gaas.ProjectRef(strconv.FormatInt(j.ProjectID, 10))}); err == nil {
				data.Project = pr.Name
			} else {
				data.Project = "#" + strconv.FormatInt(j.ProjectID, 10)
			}
		}
		p.render(w, r, http.StatusOK, "job", fmt.Sprintf("Job %d", j.ID), data)
	})
}

// handleCancel cancels the job the form's "job" field names (the button
// pressed), with its whole cost returned, and goes back to the page the
// form was on.
func (p *site) handleCancel() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.ParseInt(r.PostForm.Get("job"), 10, 64)
		if err != nil || id <= 0 {
			p.renderError(w, r, http.StatusNotFound, "There is no such job, or it is not yours.")
			return
		}
		// Cancelling a job that is cancelled already changes nothing and is
		// no error; the page says so rather than that it was done now.
		j, err := p.svc.Jobs.Get(r.Context(), callerID(r), gaas.GetJobRequest{JobID: id})
		if err == nil && j.Status.Final() {
			err = &gaas.TransitionError{From: j.Status, To: gaas.StatusCancelled}
		}
		if err == nil {
			j, err = p.svc.Jobs.Cancel(r.Context(), callerID(r), gaas.CancelRequest{JobID: id})
		}
		var te *gaas.TransitionError
		switch {
		case errors.As(err, &te):
			p.redirect(w, r, backTo(r, "/portal/jobs"), fmt.Sprintf("Job %d was not cancelled: it is %s now.", id, te.From))
			return
		case err != nil:
			p.showError(w, r, err)
			return
		}
		msg := fmt.Sprintf("Job %d is cancelled; its %s credits were returned.", j.ID, j.Cost)
		if j.Status != gaas.StatusCancelled {
			msg = fmt.Sprintf("Job %d is asked to stop; what it did not use is returned when its executor stops it.", j.ID)
		}
		p.redirect(w, r, backTo(r, "/portal/jobs"), msg)
	})
}

// backTo is the form's "back" field when it is a page of the portal (a
// path, with its query, under /portal/ or /), else fallback: a form never
// sends anyone off the site.
func backTo(r *http.Request, fallback string) string {
	back := r.PostForm.Get("back")
	u, err := url.Parse(back)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || strings.HasPrefix(back, "//") ||
		strings.Contains(back, "\\") || !(u.Path == "/" || strings.HasPrefix(u.Path, "/portal/")) {
		return fallback
	}
	return u.RequestURI()
}
