package portal

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/gaas-io/gaas/gaas"
)

// catalogueRow is a type of the catalogue and its edit form's ids.
type catalogueRow struct {
	gaas.GPUType
	Index int
}

// handleCatalogue lists the GPU catalogue, retired types too, each with
// its edit form, and the form that adds a type.
func (p *site) handleCatalogue() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		types, err := p.svc.Catalogue.GPUTypes(r.Context(), callerID(r), gaas.GPUTypesRequest{Retired: true})
		if err != nil {
			p.showError(w, r, err)
			return
		}
		rows := make([]catalogueRow, len(types))
		for i, t := range types {
			rows[i] = catalogueRow{GPUType: t, Index: i}
		}
		p.render(w, r, http.StatusOK, "admin_gpu_types", "GPU catalogue", rows)
	})
}

// formRate reads a rate in credits a GPU-hour.
func formRate(s string) (gaas.Rate, error) {
	rate, err := gaas.ParseRate(strings.TrimSpace(s))
	if err != nil {
		return 0, gaas.Invalid("rate", "must be a number of credits a GPU-hour, such as 1 or 2.5, above 0 and at most %s", gaas.MaxRate)
	}
	return rate, nil
}

// formMaxGPUs reads a type's limit of GPUs per job; empty is 0, none.
func formMaxGPUs(s string) (int, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, gaas.Invalid("max_gpus_per_job", "must be a whole number from 1 to %d, or empty for no limit", gaas.MaxGPUsPerJob)
	}
	return n, nil
}

func (p *site) handleCreateGPUType() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		const what = "The GPU type was not added"
		f := r.PostForm
		req := gaas.CreateGPUTypeRequest{Name: f.Get("name"), Description: strings.TrimSpace(f.Get("description")),
			AutoApprove: f.Get("auto_approve") != "", Retired: f.Get("retired") != ""}
		var err error
		if req.Rate, err = formRate(f.Get("rate")); err == nil {
			req.MaxGPUsPerJob, err = formMaxGPUs(f.Get("max_gpus_per_job"))
		}
		if err != nil {
			p.failed(w, r, what, "", err)
			return
		}
		t, err := p.svc.Catalogue.CreateGPUType(r.Context(), callerID(r), req)
		if err != nil {
			p.failed(w, r, what, fmt.Sprintf("the catalogue has a type %q already, or holds %d types.", req.Name, gaas.MaxGPUTypes), err)
			return
		}
		p.redirect(w, r, "/portal/admin/gpu-types", fmt.Sprintf("GPU type %s is added at %s credits a GPU-hour.", t.Name, t.Rate))
	})
}

// handleUpdateGPUType sets every field of the type the form names: its
// rate (for jobs submitted from now on), description, limit of GPUs,
// whether it is enabled and whether its jobs are approved at once.
func (p *site) handleUpdateGPUType() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		const what = "The GPU type was not changed"
		f := r.PostForm
		description := strings.TrimSpace(f.Get("description"))
		enabled, auto := f.Get("enabled") != "", f.Get("auto_approve") != ""
		req := gaas.UpdateGPUTypeRequest{Name: f.Get("name"), Description: &description, Enabled: &enabled, AutoApprove: &auto}
		rate, err := formRate(f.Get("rate"))
		var maxGPUs int
		if err == nil {
			maxGPUs, err = formMaxGPUs(f.Get("max_gpus_per_job"))
		}
		if err != nil {
			p.failed(w, r, what, "", err)
			return
		}
		req.Rate, req.MaxGPUsPerJob = &rate, &maxGPUs
		t, err := p.svc.Catalogue.UpdateGPUType(r.Context(), callerID(r), req)
		if err != nil {
			p.failed(w, r, what, "", err)
			return
		}
		state := "enabled"
		if !t.Enabled {
			state = "retired"
		}
		p.redirect(w, r, "/portal/admin/gpu-types", fmt.Sprintf("GPU type %s is saved: %s credits a GPU-hour, %s.", t.Name, t.Rate, state))
	})
}
