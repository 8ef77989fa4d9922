package server

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"

	"github.com/gaas-io/gaas/gaas"
)

// gpuTypeResponse is a type of the GPU catalogue. max_gpus_per_job is
// null when the type sets no limit of its own.
type gpuTypeResponse struct {
	Name          string   `json:"name"`
	Description   string   `json:"description"`
	Rate          rateJSON `json:"rate"`
	MaxGPUsPerJob *int     `json:"max_gpus_per_job"`
	Enabled       bool     `json:"enabled"`
	AutoApprove   bool     `json:"auto_approve"`
}

func toGPUType(t gaas.GPUType) gpuTypeResponse {
	out := gpuTypeResponse{Name: t.Name, Description: t.Description, Rate: rateJSON(t.Rate), Enabled: t.Enabled, AutoApprove: t.AutoApprove}
	if t.MaxGPUsPerJob > 0 {
		out.MaxGPUsPerJob = &t.MaxGPUsPerJob
	}
	return out
}

// itemsResponse is a listing that is not paged: the catalogue and a
// user's allocations are short.
type itemsResponse[T any] struct {
	Items []T `json:"items"`
}

// listOf converts what a service listed for the wire, as an array even
// when empty.
func listOf[S, T any](items []S, conv func(S) T) itemsResponse[T] {
	out := make([]T, len(items))
	for i, s := range items {
		out[i] = conv(s)
	}
	return itemsResponse[T]{Items: out}
}

// queryBool reads the query parameter name, true or false; false when
// it is absent.
func queryBool(r *http.Request, name string) (bool, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(s)
	if err != nil || (s != "true" && s != "false") {
		return false, errField(name, "must be true or false")
	}
	return b, nil
}

func handleListGPUTypes(logger *slog.Logger, catalogue gaas.Catalogue) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		retired, err := queryBool(r, "retired")
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		types, err := catalogue.GPUTypes(r.Context(), callerID(r), gaas.GPUTypesRequest{Retired: retired})
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		encode(w, http.StatusOK, listOf(types, toGPUType))
	})
}

// readGPUTypeAmounts reads the rate and max_gpus_per_job of a body of
// POST or PATCH /gpu-types, adding what is wrong with them to v. max is
// nil when the field is absent, and points to 0 (no limit) when it is
// null: max_gpus_per_job is held raw so that the two differ.
func readGPUTypeAmounts(v *gaas.ValidationError, rawRate, rawMax json.RawMessage) (rate *gaas.Rate, max *int) {
	rate, err := amountField[gaas.Rate](rawRate, "rate")
	if err != nil {
		v.Fields = append(v.Fields, err.(*gaas.ValidationError).Fields...)
	}
	switch raw := string(rawMax); raw {
	case "":
	case "null":
		max = new(int)
	default:
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > gaas.MaxGPUsPerJob {
			v.Add("max_gpus_per_job", "must be an integer from 1 to %d, or null for no limit", gaas.MaxGPUsPerJob)
			break
		}
		max = &n
	}
	return rate, max
}

// createGPUTypeRequest is the body of POST /gpu-types: name and rate are
// required; a new type is enabled unless enabled is false.
type createGPUTypeRequest struct {
	Name          *string         `json:"name"`
	Description   *string         `json:"description"`
	Rate          json.RawMessage `json:"rate"`
	MaxGPUsPerJob json.RawMessage `json:"max_gpus_per_job"`
	Enabled       *bool           `json:"enabled"`
	AutoApprove   *bool           `json:"auto_approve"`

	rate *gaas.Rate
	max  *int
}

func (c *createGPUTypeRequest) Valid() error {
	v := &gaas.ValidationError{}
	if c.Name == nil {
		v.Add("name", "is required")
	}
	c.rate, c.max = readGPUTypeAmounts(v, c.Rate, c.MaxGPUsPerJob)
	if len(c.Rate) == 0 || string(c.Rate) == "null" {
		v.Add("rate", "is required")
	}
	return v.Err()
}

func handleCreateGPUType(logger *slog.Logger, catalogue gaas.Catalogue) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := decode[*createGPUTypeRequest](w, r)
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		cr := gaas.CreateGPUTypeRequest{Name: *req.Name, Description: deref(req.Description), Rate: *req.rate}
		if req.max != nil {
			cr.MaxGPUsPerJob = *req.max
		}
		if req.Enabled != nil {
			cr.Retired = !*req.Enabled
		}
		cr.AutoApprove = req.AutoApprove != nil && *req.AutoApprove
		t, err := catalogue.CreateGPUType(r.Context(), callerID(r), cr)
		if err != nil {
			err = explain(err, gaas.ErrForbidden, "Only admins may change the GPU catalogue.")
			writeError(w, r, logger, explain(err, gaas.ErrConflict, "A GPU type named %q is already in the catalogue (names are compared without regard to case).", cr.Name))
			return
		}
		w.Header().Set("Location", "/gpu-types/"+url.PathEscape(t.Name))
		encode(w, http.StatusCreated, toGPUType(t))
	})
}

// updateGPUTypeRequest is the body of PATCH /gpu-types/{name}: the fields
// given change, the others stay.
type updateGPUTypeRequest struct {
	Description   *string         `json:"description"`
	Rate          json.RawMessage `json:"rate"`
	MaxGPUsPerJob json.RawMessage `json:"max_gpus_per_job"`
	Enabled       *bool           `json:"enabled"`
	AutoApprove   *bool           `json:"auto_approve"`

	rate *gaas.Rate
	max  *int
}

func (u *updateGPUTypeRequest) Valid() error {
	v := &gaas.ValidationError{}
	u.rate, u.max = readGPUTypeAmounts(v, u.Rate, u.MaxGPUsPerJob)
	return v.Err()
}

func handleUpdateGPUType(logger *slog.Logger, catalogue gaas.Catalogue) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		req, err := decode[*updateGPUTypeRequest](w, r)
		if err != nil {
			writeError(w, r, logger, err)
			return
		}
		t, err := catalogue.UpdateGPUType(r.Context(), callerID(r), gaas.UpdateGPUTypeRequest{
			Name: name, Description: req.Description, Rate: req.rate, MaxGPUsPerJob: req.max, Enabled: req.Enabled,
			AutoApprove: req.AutoApprove,
		})
		if err != nil {
			err = explain(err, gaas.ErrForbidden, "Only admins may change the GPU catalogue.")
			writeError(w, r, logger, explain(err, gaas.ErrNotFound, "The GPU catalogue has no type named %q.", name))
			return
		}
		encode(w, http.StatusOK, toGPUType(t))
	})
}
