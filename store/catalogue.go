package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/gaas-io/gaas/gaas"
)

type gpuTypeRow struct {
	Name          string    `bun:"name"`
	Description   string    `bun:"description"`
	Rate          int64     `bun:"rate"`
	MaxGPUsPerJob int       `bun:"max_gpus_per_job"`
	Enabled       bool      `bun:"enabled"`
	AutoApprove   bool      `bun:"auto_approve"`
	CreatedAt     time.Time `bun:"created_at"`
	UpdatedAt     time.Time `bun:"updated_at"`
}

const gpuTypeColumns = "name, description, rate, max_gpus_per_job, enabled, auto_approve, created_at, updated_at"

func (r *gpuTypeRow) gpuType() gaas.GPUType {
	return gaas.GPUType{
		Name: r.Name, Description: r.Description, Rate: gaas.Rate(r.Rate), MaxGPUsPerJob: r.MaxGPUsPerJob,
		Enabled: r.Enabled, AutoApprove: r.AutoApprove, CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(),
	}
}

// CatalogueService implements gaas.Catalogue on the store.
type CatalogueService struct{ db *DB }

var _ gaas.Catalogue = (*CatalogueService)(nil)

// maxListedTypes bounds the names an unknown type's refusal lists.
const maxListedTypes = 50

// lookupGPUType reads the type named name in any letter case; a name the
// catalogue lacks is gaas.ErrNotFound.
func lookupGPUType(ctx context.Context, idb bun.IDB, name string) (gpuTypeRow, error) {
	var r gpuTypeRow
	if !gaas.IsASCII(name) {
		// No name of the catalogue is anything else; PostgreSQL's lower()
		// would fold some of them into one that is.
		return r, fmt.Errorf("GPU type %q: %w", name, gaas.ErrNotFound)
	}
	err := query(ctx, idb, &r, "SELECT "+gpuTypeColumns+" FROM gpu_types WHERE lower(name) = lower(?)", name)
	return r, mapErr(err)
}

// unknownType is the refusal of a GPU type the catalogue does not hold, as
// a *gaas.ValidationError on field listing the types (enabled ones first); or, when the
// catalogue is empty, nil: any type is then accepted (open mode).
func unknownType(ctx context.Context, idb bun.IDB, field, name string) error {
	var names []string
	if err := query(ctx, idb, &names, "SELECT name FROM gpu_types ORDER BY enabled DESC, lower(name) LIMIT ?", maxListedTypes+1); err != nil {
		return mapErr(err)
	}
	if len(names) == 0 {
		return nil
	}
	known := strings.Join(names[:min(len(names), maxListedTypes)], ", ")
	if len(names) > maxListedTypes {
		known += ", …"
	}
	return gaas.Invalid(field, "%q is not in the GPU catalogue; it holds %s", name, known)
}

// priceFor decides the GPU type and rate of a submission: the catalogue's
// type, spelled as it is there, when it is enabled and allows the GPUs
// asked for; in open mode, the type as asked at rate 1.
func priceFor(ctx context.Context, idb bun.IDB, name string, gpus int) (string, gaas.Rate, error) {
	t, err := lookupGPUType(ctx, idb, name)
	switch {
	case errors.Is(err, gaas.ErrNotFound):
		if err := unknownType(ctx, idb, "gpu_type", name); err != nil {
			return "", 0, err
		}
		return name, gaas.RateOne, nil
	case err != nil:
		return "", 0, err
	case !t.Enabled:
		return "", 0, gaas.Invalid("gpu_type", "%s is retired: it takes no new jobs", t.Name)
	case gpus > t.gpuType().GPUsAllowed():
		return "", 0, gaas.Invalid("gpu_count", "must be at most %d for %s", t.MaxGPUsPerJob, t.Name)
	}
	return t.Name, gaas.Rate(t.Rate), nil
}

// canonicalScope spells each name of a scope as the catalogue does, and
// refuses a name it lacks; in open mode the names stay as given.
func canonicalScope(ctx context.Context, idb bun.IDB, names []string) ([]string, error) {
	if names == nil {
		return nil, nil
	}
	out := make([]string, len(names))
	for i, n := range names {
		t, err := lookupGPUType(ctx, idb, n)
		switch {
		case errors.Is(err, gaas.ErrNotFound):
			if err := unknownType(ctx, idb, "gpu_types", n); err != nil {
				return nil, err
			}
			out[i] = n
		case err != nil:
			return nil, err
		default:
			out[i] = t.Name
		}
	}
	return out, nil
}

// GPUTypes implements gaas.Catalogue.
func (s *CatalogueService) GPUTypes(ctx context.Context, caller int64, req gaas.GPUTypesRequest) ([]gaas.GPUType, error) {
	return s.listBy(ctx, gaas.Principal{UserID: caller}, req)
}

func (s *CatalogueService) listBy(ctx context.Context, p gaas.Principal, req gaas.GPUTypesRequest) ([]gaas.GPUType, error) {
	if err := allow(ctx, s.db.r, p, gaas.ActionReadCatalogue, 0); err != nil {
		return nil, fmt.Errorf("store: GPU types: %w", err)
	}
	q := "SELECT " + gpuTypeColumns + " FROM gpu_types"
	var args []any
	if !req.Retired {
		q, args = q+" WHERE enabled = ?", append(args, true)
	}
	var rows []gpuTypeRow
	if err := query(ctx, s.db.r, &rows, q+" ORDER BY lower(name)", args...); err != nil {
		return nil, fmt.Errorf("store: GPU types: %w", mapErr(err))
	}
	out := make([]gaas.GPUType, len(rows))
	for i := range rows {
		out[i] = rows[i].gpuType()
	}
	return out, nil
}

// CreateGPUType implements gaas.Catalogue.
func (s *CatalogueService) CreateGPUType(ctx context.Context, caller int64, req gaas.CreateGPUTypeRequest) (gaas.GPUType, error) {
	return s.createBy(ctx, gaas.Principal{UserID: caller}, req)
}

func (s *CatalogueService) createBy(ctx context.Context, p gaas.Principal, req gaas.CreateGPUTypeRequest) (gaas.GPUType, error) {
	if err := req.Validate(); err != nil {
		return gaas.GPUType{}, fmt.Errorf("store: create GPU type: %w", err)
	}
	now := s.db.timestamp()
	r := gpuTypeRow{
		Name: req.Name, Description: req.Description, Rate: int64(req.Rate), MaxGPUsPerJob: req.MaxGPUsPerJob,
		Enabled: !req.Retired, AutoApprove: req.AutoApprove, CreatedAt: now, UpdatedAt: now,
	}
	err := s.db.tx(ctx, func(tx bun.Tx) error {
		if err := allow(ctx, tx, p, gaas.ActionManageCatalogue, 0); err != nil {
			return err
		}
		var n int
		if err := query(ctx, tx, &n, "SELECT count(*) FROM gpu_types"); err != nil {
			return err
		}
		if n >= gaas.MaxGPUTypes {
			return fmt.Errorf("the catalogue holds %d types, the most it may: %w", n, gaas.ErrConflict)
		}
		return insertGPUType(ctx, tx, r)
	})
	if err != nil {
		return gaas.GPUType{}, fmt.Errorf("store: create GPU type %q: %w", req.Name, mapErr(err))
	}
	return r.gpuType(), nil
}

// UpdateGPUType implements gaas.Catalogue.
func (s *CatalogueService) UpdateGPUType(ctx context.Context, caller int64, req gaas.UpdateGPUTypeRequest) (gaas.GPUType, error) {
	return s.updateBy(ctx, gaas.Principal{UserID: caller}, req)
}

func (s *CatalogueService) updateBy(ctx context.Context, p gaas.Principal, req gaas.UpdateGPUTypeRequest) (gaas.GPUType, error) {
	if err := req.Validate(); err != nil {
		return gaas.GPUType{}, fmt.Errorf("store: update GPU type: %w", err)
	}
	var r gpuTypeRow
	err := s.db.tx(ctx, func(tx bun.Tx) (err error) {
		if err := allow(ctx, tx, p, gaas.ActionManageCatalogue, 0); err != nil {
			return err
		}
		if r, err = lookupGPUType(ctx, tx, req.Name); err != nil {
			return err
		}
		if req.Description != nil {
			r.Description = *req.Description
		}
		if req.Rate != nil {
			r.Rate = int64(*req.Rate)
		}
		if req.MaxGPUsPerJob != nil {
			r.MaxGPUsPerJob = *req.MaxGPUsPerJob
		}
		if req.Enabled != nil {
			r.Enabled = *req.Enabled
		}
		if req.AutoApprove != nil {
			r.AutoApprove = *req.AutoApprove
		}
		r.UpdatedAt = s.db.timestamp()
		return saveGPUType(ctx, tx, r)
	})
	if err != nil {
		return gaas.GPUType{}, fmt.Errorf("store: update GPU type %q: %w", req.Name, mapErr(err))
	}
	return r.gpuType(), nil
}

func insertGPUType(ctx context.Context, idb bun.IDB, r gpuTypeRow) error {
	_, err := exec(ctx, idb, "INSERT INTO gpu_types ("+gpuTypeColumns+") VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
		r.Name, r.Description, r.Rate, r.MaxGPUsPerJob, r.Enabled, r.AutoApprove, r.CreatedAt, r.UpdatedAt)
	return err
}

// saveGPUType writes every field of r but its name and creation time to
// the type of its name.
func saveGPUType(ctx context.Context, idb bun.IDB, r gpuTypeRow) error {
	_, err := exec(ctx, idb, "UPDATE gpu_types SET description = ?, rate = ?, max_gpus_per_job = ?, enabled = ?, auto_approve = ?, updated_at = ? WHERE lower(name) = lower(?)",
		r.Description, r.Rate, r.MaxGPUsPerJob, r.Enabled, r.AutoApprove, r.UpdatedAt, r.Name)
	return err
}
