package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/gaas-io/gaas/gaas"
)

// ApplyCatalogueRequest is the whole GPU catalogue as it should be, for
// deployments that declare it in a file kept with their configuration.
type ApplyCatalogueRequest struct {
	// Types are the catalogue's types, each with every field it should
	// have (CreatedAt and UpdatedAt are ignored). A type the catalogue
	// holds and Types does not name is retired.
	Types []gaas.GPUType
	// DryRun changes nothing: ApplyCatalogue only says what it would change.
	DryRun bool
}

// The actions of a CatalogueChange.
const (
	CatalogueCreate = "create"
	CatalogueUpdate = "update" // fields change, the type stays enabled or is enabled
	CatalogueRetire = "retire" // the type is disabled, and other fields may change
)

// CatalogueChange is one change ApplyCatalogue made, or on a dry run would make.
type CatalogueChange struct {
	Action string
	// Before is the type as the catalogue held it; the zero GPUType for a create.
	Before gaas.GPUType
	// After is the type as the change leaves it.
	After gaas.GPUType
	// Undeclared is true for a type retired because the request does not name it.
	Undeclared bool
}

// String says the change in one line, with each field that changes under
// its wire name: "update H100: rate 3 -> 4", "retire V100: not declared".
func (c CatalogueChange) String() string {
	var parts []string
	if c.Action == CatalogueCreate {
		parts = append(parts, "rate "+c.After.Rate.String(), fmt.Sprintf("max_gpus_per_job %d", c.After.MaxGPUsPerJob),
			fmt.Sprintf("enabled %t", c.After.Enabled))
		if c.After.AutoApprove {
			parts = append(parts, "auto_approve true")
		}
		if c.After.Description != "" {
			parts = append(parts, "description "+shortQuote(c.After.Description))
		}
		return fmt.Sprintf("%s %s: %s", c.Action, c.After.Name, strings.Join(parts, ", "))
	}
	b, a := c.Before, c.After
	if b.Rate != a.Rate {
		parts = append(parts, fmt.Sprintf("rate %s -> %s", b.Rate, a.Rate))
	}
	if b.AutoApprove != a.AutoApprove {
		parts = append(parts, fmt.Sprintf("auto_approve %t -> %t", b.AutoApprove, a.AutoApprove))
	}
	if b.MaxGPUsPerJob != a.MaxGPUsPerJob {
		parts = append(parts, fmt.Sprintf("max_gpus_per_job %d -> %d", b.MaxGPUsPerJob, a.MaxGPUsPerJob))
	}
	if b.Enabled != a.Enabled && c.Action != CatalogueRetire {
		parts = append(parts, fmt.Sprintf("enabled %t -> %t", b.Enabled, a.Enabled))
	}
	if b.Description != a.Description {
		parts = append(parts, fmt.Sprintf("description %s -> %s", shortQuote(b.Description), shortQuote(a.Description)))
	}
	if c.Undeclared {
		parts = append(parts, "not declared")
	}
	if len(parts) == 0 {
		return c.Action + " " + a.Name
	}
	return fmt.Sprintf("%s %s: %s", c.Action, a.Name, strings.Join(parts, ", "))
}

// shortQuote quotes s on one line, cut to 60 characters.
func shortQuote(s string) string {
	if r := []rune(s); len(r) > 60 {
		return fmt.Sprintf("%q…", string(r[:60]))
	}
	return fmt.Sprintf("%q", s)
}

// ValidateCatalogue refuses a declared catalogue (ApplyCatalogueRequest.Types)
// with a type that breaks a rule of gaas.CreateGPUTypeRequest, or a name
// given twice in any letter case; the error names the type by its place
// (from 1) and name. ApplyCatalogue calls it; a reader of a catalogue file
// may, to refuse the file before it opens a store.
func ValidateCatalogue(types []gaas.GPUType) error {
	if len(types) > gaas.MaxGPUTypes {
		return gaas.Invalid("gpu_types", "holds %d types; a catalogue holds at most %d", len(types), gaas.MaxGPUTypes)
	}
	for i, t := range types {
		err := gaas.CreateGPUTypeRequest{Name: t.Name, Description: t.Description, Rate: t.Rate, MaxGPUsPerJob: t.MaxGPUsPerJob}.Validate()
		if err != nil {
			return fmt.Errorf("GPU type %d (%q): %w", i+1, t.Name, err)
		}
		if j := slices.IndexFunc(types[:i], func(o gaas.GPUType) bool { return gaas.SameGPUType(o.Name, t.Name) }); j >= 0 {
			return fmt.Errorf("GPU type %d (%q): %w", i+1, t.Name,
				gaas.Invalid("name", "names the type of GPU type %d (%q) again: names are matched without regard to letter case", j+1, types[j].Name))
		}
	}
	return nil
}

// ApplyCatalogue is CatalogueService.apply for the principal.
func (a Acting) ApplyCatalogue(ctx context.Context, req ApplyCatalogueRequest) ([]CatalogueChange, error) {
	return a.db.Catalogue.applyBy(ctx, a.p, req)
}

// applyBy brings the catalogue to req.Types in one transaction: each type
// is created, or updated to the fields given; each type of the catalogue
// that req.Types does not name is retired, never deleted, since jobs and
// allocations name it. A name must be spelled as the catalogue spells it
// (a type is not renamed): another spelling is refused. Anything refused
// changes nothing. The changes are returned in order of name; none when
// the catalogue already is req.Types, so that applying twice changes
// nothing the second time.
func (s *CatalogueService) applyBy(ctx context.Context, p gaas.Principal, req ApplyCatalogueRequest) ([]CatalogueChange, error) {
	if err := ValidateCatalogue(req.Types); err != nil {
		return nil, fmt.Errorf("store: apply catalogue: %w", err)
	}
	var changes []CatalogueChange
	apply := func(tx bun.Tx) error {
		changes = nil
		if err := allow(ctx, tx, p, gaas.ActionManageCatalogue, 0); err != nil {
			return err
		}
		var rows []gpuTypeRow
		if err := query(ctx, tx, &rows, "SELECT "+gpuTypeColumns+" FROM gpu_types"); err != nil {
			return mapErr(err)
		}
		var err error
		if changes, err = catalogueChanges(rows, req.Types); err != nil {
			return err
		}
		n := len(rows)
		for _, c := range changes {
			if c.Action == CatalogueCreate {
				n++
			}
		}
		if n > gaas.MaxGPUTypes {
			return fmt.Errorf("the catalogue would hold %d types, retired ones included; the most it may is %d: %w", n, gaas.MaxGPUTypes, gaas.ErrConflict)
		}
		if req.DryRun {
			return nil
		}
		now := s.db.timestamp()
		for i := range changes {
			t := changes[i].After
			r := gpuTypeRow{Name: t.Name, Description: t.Description, Rate: int64(t.Rate), MaxGPUsPerJob: t.MaxGPUsPerJob,
				Enabled: t.Enabled, AutoApprove: t.AutoApprove, CreatedAt: changes[i].Before.CreatedAt, UpdatedAt: now}
			if changes[i].Action == CatalogueCreate {
				r.CreatedAt = now
				err = insertGPUType(ctx, tx, r)
			} else {
				err = saveGPUType(ctx, tx, r)
			}
			if err != nil {
				return err
			}
			changes[i].After = r.gpuType()
		}
		return nil
	}
	err := s.db.tx(ctx, apply)
	if errors.Is(err, gaas.ErrConflict) {
		// Another process created a type between the read and the insert
		// (two replicas starting with one file): read again, once.
		err = s.db.tx(ctx, apply)
	}
	if err != nil {
		return nil, fmt.Errorf("store: apply catalogue: %w", mapErr(err))
	}
	return changes, nil
}

// catalogueChanges is what makes the catalogue have, want; a name of want
// that the catalogue spells otherwise is refused.
func catalogueChanges(have []gpuTypeRow, want []gaas.GPUType) ([]CatalogueChange, error) {
	byName := make(map[string]gaas.GPUType, len(have))
	for i := range have {
		byName[strings.ToLower(have[i].Name)] = have[i].gpuType()
	}
	var changes []CatalogueChange
	for i, w := range want {
		w.CreatedAt, w.UpdatedAt = time.Time{}, time.Time{}
		b, ok := byName[strings.ToLower(w.Name)]
		delete(byName, strings.ToLower(w.Name))
		switch {
		case !ok:
			changes = append(changes, CatalogueChange{Action: CatalogueCreate, After: w})
			continue
		case b.Name != w.Name:
			return nil, fmt.Errorf("GPU type %d (%q): %w", i+1, w.Name,
				gaas.Invalid("name", "the catalogue spells it %q; a type keeps the name jobs and allocations know it by", b.Name))
		}
		if w.Description == b.Description && w.Rate == b.Rate && w.MaxGPUsPerJob == b.MaxGPUsPerJob && w.Enabled == b.Enabled &&
			w.AutoApprove == b.AutoApprove {
			continue
		}
		w.CreatedAt, w.UpdatedAt = b.CreatedAt, b.UpdatedAt
		action := CatalogueUpdate
		if b.Enabled && !w.Enabled {
			action = CatalogueRetire
		}
		changes = append(changes, CatalogueChange{Action: action, Before: b, After: w})
	}
	for _, b := range byName {
		if b.Enabled {
			a := b
			a.Enabled = false
			changes = append(changes, CatalogueChange{Action: CatalogueRetire, Before: b, After: a, Undeclared: true})
		}
	}
	slices.SortFunc(changes, func(x, y CatalogueChange) int {
		return strings.Compare(strings.ToLower(x.After.Name), strings.ToLower(y.After.Name))
	})
	return changes, nil
}
