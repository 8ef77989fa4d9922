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

// submitPage is the data of the form that submits a job.
type submitPage struct {
	// The fields as given.
	Command, GPUType, GPUCount, Hours, Project string
	// Key is the form's idempotency key: posting it twice submits one job.
	Key string
	// Types are the catalogue's enabled types; none in open mode, where
	// any type is accepted at rate 1 (OpenRate).
	Types    []gaas.GPUType
	OpenRate gaas.Rate
	Projects []gaas.Membership
	// Default is the project jobs go to when the form names none.
	Default string
	// Preview is the cost, worked out by the server; empty until asked.
	Preview *preview
	// Errors are the fields' problems, by field; Error is the form's.
	Errors map[string]string
	Error  string
}

// preview is what a job would cost, and what there is to pay for it.
type preview struct {
	Cost      gaas.Credits
	Rate      gaas.Rate
	GPUs      int
	Hours     gaas.Hours
	Available string
	Enough    bool
}

func (p *site) handleSubmitPage() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		data := submitPage{GPUCount: "1", Key: randomToken()}
		if err := p.submitChoices(r, &data); err != nil {
			p.showError(w, r, err)
			return
		}
		if len(data.Types) > 0 {
			data.GPUType = data.Types[0].Name
		}
		p.render(w, r, http.StatusOK, "submit", "Submit a job", data)
	})
}

// submitChoices fills in what the form offers: the GPU types and the
// user's projects.
func (p *site) submitChoices(r *http.Request, data *submitPage) error {
	types, err := p.svc.Catalogue.GPUTypes(r.Context(), callerID(r), gaas.GPUTypesRequest{})
	if err != nil {
		return err
	}
	data.Types, data.OpenRate = types, gaas.RateOne
	ms, err := p.svc.Projects.Memberships(r.Context(), callerID(r), gaas.MembershipsRequest{Page: gaas.Page{Limit: gaas.MaxLimit}})
	if err != nil {
		return err
	}
	data.Projects = ms.Items
	for _, m := range ms.Items {
		if m.Default {
			data.Default = m.Project.Name
		}
	}
	return nil
}

// handleSubmit previews the cost of the job (the Preview button: the form
// again, with the cost) or submits it (then 303 to the job's page). A
// refused submission shows the form again, with what was wrong and, for
// want of credits, what is available. What may be submitted is the
// library's to decide: a submission goes to it whatever the preview
// would have said.
func (p *site) handleSubmit() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f := r.PostForm
		data := submitPage{Command: f.Get("command"), GPUType: strings.TrimSpace(f.Get("gpu_type")), GPUCount: strings.TrimSpace(f.Get("gpu_count")),
			Hours: strings.TrimSpace(f.Get("estimated_hours")), Project: f.Get("project"), Key: f.Get("key"), Errors: map[string]string{}}
		if gaas.ValidateIdempotencyKey(data.Key) != nil {
			data.Key = randomToken()
		}
		if err := p.submitChoices(r, &data); err != nil {
			p.showError(w, r, err)
			return
		}
		req, ok := data.request()
		if ok {
			if err := req.Validate(); err != nil {
				data.fieldErrors(err)
				ok = false
			}
		}
		if ok && f.Get("action") != "submit" {
			var err error
			if data.Preview, err = p.preview(r, data, req); err != nil {
				data.explain(err)
				ok = false
			}
		}
		if !ok || f.Get("action") != "submit" {
			status := http.StatusOK
			if !ok {
				status = http.StatusUnprocessableEntity
			}
			p.render(w, r, status, "submit", "Submit a job", data)
			return
		}
		j, err := p.svc.Jobs.Submit(r.Context(), callerID(r), req)
		if err != nil {
			if !data.explain(err) {
				p.showError(w, r, err)
				return
			}
			p.render(w, r, http.StatusUnprocessableEntity, "submit", "Submit a job", data)
			return
		}
		msg := fmt.Sprintf("Job %d is submitted: %s credits are charged; it waits for approval.", j.ID, j.Cost)
		if j.Status != gaas.StatusPending {
			msg = fmt.Sprintf("Job %d is submitted: %s credits are charged; it is %s.", j.ID, j.Cost, j.Status)
		}
		p.redirect(w, r, "/portal/jobs/"+strconv.FormatInt(j.ID, 10), msg)
	})
}

// request reads the form's fields into a submission, noting the fields
// that are not numbers; ok is false when there are such.
func (d *submitPage) request() (req gaas.SubmitRequest, ok bool) {
	req = gaas.SubmitRequest{Command: d.Command, GPUType: d.GPUType, Project: gaas.ProjectRef(strings.TrimSpace(d.Project)),
		IdempotencyKey: d.Key}
	n, err := strconv.Atoi(d.GPUCount)
	if err != nil || n < 1 {
		d.Errors["gpu_count"] = fmt.Sprintf("must be a whole number from 1 to %d", gaas.MaxGPUsPerJob)
	}
	req.GPUCount = n
	h, err := gaas.ParseHours(d.Hours)
	if err != nil {
		d.Errors["estimated_hours"] = "must be a number of hours, such as 2 or 0.5, with at most 3 decimal places"
	}
	req.EstimatedHours = h
	return req, len(d.Errors) == 0
}

// fieldErrors notes err's fields; anything else is the form's error.
func (d *submitPage) fieldErrors(err error) {
	var ve *gaas.ValidationError
	if !errors.As(err, &ve) {
		d.Error = "The job was not submitted: " + err.Error()
		return
	}
	for _, f := range ve.Fields {
		switch f.Field {
		case "command", "gpu_type", "gpu_count", "estimated_hours", "project":
			d.Errors[f.Field] = f.Message
		default:
			d.Error = fieldErrors(ve)
		}
	}
}

// explain puts a refusal of the library in words on the form, and reports
// whether it knew the refusal.
func (d *submitPage) explain(err error) bool {
	var (
		ve *gaas.ValidationError
		qe *gaas.QuotaError
		le *gaas.LimitError
	)
	switch {
	case errors.As(err, &ve):
		d.fieldErrors(err)
	case errors.As(err, &le):
		d.Error = fmt.Sprintf("Not enough credits under the %s of project %s: this job costs %s credits, and %s are left there.",
			le.Bound, le.Project, le.Asked, le.Remaining)
	case errors.As(err, &qe):
		d.Error = fmt.Sprintf("Not enough credits for GPU type %s: this job costs %s credits, and %s are available for that type.",
			qe.GPUType, qe.Asked, qe.Remaining)
	case errors.Is(err, gaas.ErrConflict):
		d.Error = "This form already submitted a different job. Reload the page to submit another."
	case d.Project != "" && (errors.Is(err, gaas.ErrNotFound) || errors.Is(err, gaas.ErrForbidden)):
		d.Errors["project"] = "is not a project you may charge"
	default:
		return false
	}
	return true
}

// preview works out the job's cost at its type's rate now, and what pays
// for it: the credits of the user's allocations that pay for the type,
// or the project's balance and what the user's limit leaves there. A
// type the catalogue does not offer is the library's error, as Submit
// would give.
func (p *site) preview(r *http.Request, d submitPage, req gaas.SubmitRequest) (*preview, error) {
	rate := d.OpenRate
	if len(d.Types) > 0 {
		rate = 0
		for _, t := range d.Types {
			if gaas.SameGPUType(t.Name, req.GPUType) {
				rate = t.Rate
				if t.MaxGPUsPerJob > 0 && req.GPUCount > t.MaxGPUsPerJob {
					return nil, gaas.Invalid("gpu_count", "must be at most %d for %s", t.MaxGPUsPerJob, t.Name)
				}
			}
		}
		if rate == 0 {
			return nil, gaas.Invalid("gpu_type", "is not a GPU type of the catalogue")
		}
	}
	cost, ok := gaas.Cost(req.EstimatedHours, req.GPUCount, rate)
	if !ok {
		return nil, gaas.Invalid("estimated_hours", "makes a cost above %s credits", gaas.MaxCredits)
	}
	pv := &preview{Cost: cost, Rate: rate, GPUs: req.GPUCount, Hours: req.EstimatedHours}
	project := strings.TrimSpace(d.Project)
	if project == "" {
		project = d.Default
	}
	if project != "" {
		for _, m := range d.Projects {
			if strings.EqualFold(m.Project.Name, project) || strconv.FormatInt(m.Project.ID, 10) == project {
				pv.Available = fmt.Sprintf("Project %s holds %s credits", m.Project.Name, m.Balance)
				pv.Enough = m.Balance >= cost
				if m.LimitLeft != nil {
					pv.Available += fmt.Sprintf("; your limit there leaves you %s", *m.LimitLeft)
					pv.Enough = pv.Enough && *m.LimitLeft >= cost
				}
				pv.Available += "."
				return pv, nil
			}
		}
		// Not one of the user's projects: whether they may charge it is the
		// library's to say when the job is submitted.
		pv.Available, pv.Enough = fmt.Sprintf("Submitting the job checks what project %s holds for you.", project), true
		return pv, nil
	}
	me := callerID(r)
	allocs, err := p.svc.Allocations.Allocations(r.Context(), me, gaas.AllocationsRequest{UserID: me, Page: gaas.Page{Limit: gaas.MaxLimit}})
	if err != nil {
		return nil, err
	}
	_, available := gaas.PlanDraws(allocs.Items, req.GPUType, cost, time.Now())
	pv.Available = fmt.Sprintf("Your allocations that pay for %s hold %s credits.", req.GPUType, available)
	pv.Enough = available >= cost
	return pv, nil
}
