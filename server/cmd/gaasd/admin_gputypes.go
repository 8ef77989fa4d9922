package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/gaas-io/gaas/gaas"
	"github.com/gaas-io/gaas/store"
)

// gpuTypes is "gaasd gpu-types VERB": the GPU catalogue.
func (c *adminCmd) gpuTypes(ctx context.Context, verb string, args []string) error {
	switch verb {
	case "list":
		retired := c.fs.Bool("retired", false, "list retired types too")
		return c.run(ctx, args, 0, func() error { return c.gpuTypesList(ctx, *retired) })
	case "add":
		var req gaas.CreateGPUTypeRequest
		name := c.fs.String("name", "", "the type's `name`, what jobs ask for (required)")
		c.fs.Func("rate", "credits per GPU-hour, such as 2.5 (required)", rateFlag(func(r gaas.Rate) { req.Rate = r }))
		c.fs.StringVar(&req.Description, "description", "", "what the type is, for users")
		c.fs.IntVar(&req.MaxGPUsPerJob, "max-gpus-per-job", 0, "the most GPUs of this type one job may use; 0 for no limit of its own")
		c.fs.BoolVar(&req.Retired, "retired", false, "add it retired: it takes no jobs until enabled")
		c.fs.BoolVar(&req.AutoApprove, "auto-approve", false, "its jobs are APPROVED when submitted, for an executor to run without an admin")
		return c.run(ctx, args, 0, func() error {
			req.Name = *name
			return c.gpuTypeAdd(ctx, req)
		})
	case "set":
		var req gaas.UpdateGPUTypeRequest
		c.fs.Func("rate", "the new rate, credits per GPU-hour; it applies to jobs submitted from now on",
			rateFlag(func(r gaas.Rate) { req.Rate = &r }))
		c.fs.Func("description", "the new description", func(s string) error { req.Description = &s; return nil })
		c.fs.Func("max-gpus-per-job", "the new most GPUs per job; 0 for no limit of its own", func(s string) error {
			n, err := parseCount(s)
			req.MaxGPUsPerJob = &n
			return err
		})
		enable := c.fs.Bool("enable", false, "enable the type: it takes new jobs")
		retire := c.fs.Bool("retire", false, "retire the type: it takes no new jobs and keeps its history")
		auto := c.fs.Bool("auto-approve", false, "whether its jobs are APPROVED when submitted: -auto-approve=true or =false")
		return c.run(ctx, args, 1, func() error {
			if c.given("auto-approve") {
				req.AutoApprove = auto
			}
			if *enable && *retire {
				return fmt.Errorf("%w: give -enable or -retire, not both", errUsage)
			}
			if *enable || *retire {
				req.Enabled = enable
			}
			req.Name = c.args[0]
			return c.gpuTypeSet(ctx, req)
		})
	default: // apply
		dryRun := c.fs.Bool("dry-run", false, "say what would change, and change nothing")
		return c.run(ctx, args, 1, func() error { return c.gpuTypesApply(ctx, *dryRun) })
	}
}

// rateFlag parses a flag of credits per GPU-hour and gives it to set.
func rateFlag(set func(gaas.Rate)) func(string) error {
	return func(s string) error {
		r, err := gaas.ParseRate(s)
		set(r)
		return err
	}
}

// parseCount parses a whole number, 0 or more.
func parseCount(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, errors.New("must be a whole number, 0 or more")
	}
	return n, nil
}

// given reports whether the command line set the flag name.
func (c *adminCmd) given(name string) bool {
	set := false
	c.fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// gpuTypeJSON is a GPU type as -json prints it.
type gpuTypeJSON struct {
	Name          string    `json:"name"`
	Description   string    `json:"description"`
	Rate          string    `json:"rate"`
	MaxGPUsPerJob int       `json:"max_gpus_per_job"`
	Enabled       bool      `json:"enabled"`
	AutoApprove   bool      `json:"auto_approve"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
}

func toGPUTypeJSON(t gaas.GPUType) gpuTypeJSON {
	return gpuTypeJSON{t.Name, t.Description, t.Rate.String(), t.MaxGPUsPerJob, t.Enabled, t.AutoApprove, t.CreatedAt, t.UpdatedAt}
}

func (c *adminCmd) printGPUTypes(types []gaas.GPUType) error {
	return printRows(c, types, toGPUTypeJSON, "NAME\tRATE\tMAX_GPUS\tENABLED\tUPDATED\tDESCRIPTION", func(t gaas.GPUType) string {
		limit := "-"
		if t.MaxGPUsPerJob > 0 {
			limit = fmt.Sprint(t.MaxGPUsPerJob)
		}
		return fmt.Sprintf("%s\t%s\t%s\t%t\t%s\t%q", t.Name, t.Rate, limit, t.Enabled, t.UpdatedAt.Format(time.RFC3339), t.Description)
	})
}

func (c *adminCmd) printGPUType(t gaas.GPUType) error {
	if *c.asJSON {
		return c.printJSON(toGPUTypeJSON(t))
	}
	return c.printGPUTypes([]gaas.GPUType{t})
}

func (c *adminCmd) gpuTypesList(ctx context.Context, retired bool) error {
	types, err := c.database.As(c.actor).GPUTypes(ctx, gaas.GPUTypesRequest{Retired: retired})
	if err != nil {
		return err
	}
	return c.printGPUTypes(types)
}

func (c *adminCmd) gpuTypeAdd(ctx context.Context, req gaas.CreateGPUTypeRequest) error {
	if !c.given("name") || !c.given("rate") {
		return fmt.Errorf("%w: -name and -rate are required", errUsage)
	}
	t, err := c.database.As(c.actor).CreateGPUType(ctx, req)
	if err != nil {
		return err
	}
	return c.printGPUType(t)
}

func (c *adminCmd) gpuTypeSet(ctx context.Context, req gaas.UpdateGPUTypeRequest) error {
	if req.Rate == nil && req.Description == nil && req.MaxGPUsPerJob == nil && req.Enabled == nil && req.AutoApprove == nil {
		return fmt.Errorf("%w: nothing to change: give -rate, -description, -max-gpus-per-job, -enable, -retire or -auto-approve", errUsage)
	}
	t, err := c.database.As(c.actor).UpdateGPUType(ctx, req)
	if err != nil {
		return err
	}
	return c.printGPUType(t)
}

// catalogueChangeJSON is a change of the catalogue as -json prints it.
type catalogueChangeJSON struct {
	Action string       `json:"action"`
	Name   string       `json:"name"`
	Before *gpuTypeJSON `json:"before"`
	After  gpuTypeJSON  `json:"after"`
	Change string       `json:"change"`
}

// gpuTypesApply brings the catalogue to a catalogue file, as gaasd
// -catalogue does at start-up, and prints each change on a line.
func (c *adminCmd) gpuTypesApply(ctx context.Context, dryRun bool) error {
	path := c.args[0]
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	types, err := readCatalogue(path)
	if err != nil {
		return err
	}
	changes, err := c.database.As(c.actor).ApplyCatalogue(ctx, store.ApplyCatalogueRequest{Types: types, DryRun: dryRun})
	if err != nil {
		return fmt.Errorf("catalogue file %s: %w", path, err)
	}
	if *c.asJSON {
		out := make([]catalogueChangeJSON, len(changes))
		for i, ch := range changes {
			out[i] = catalogueChangeJSON{Action: ch.Action, Name: ch.After.Name, After: toGPUTypeJSON(ch.After), Change: ch.String()}
			if ch.Action != store.CatalogueCreate {
				b := toGPUTypeJSON(ch.Before)
				out[i].Before = &b
			}
		}
		return c.printJSON(out)
	}
	would := ""
	if dryRun {
		would = "would "
	}
	for _, ch := range changes {
		fmt.Fprintln(c.stdout, would+ch.String())
	}
	switch {
	case len(changes) == 0:
		fmt.Fprintf(c.stdout, "the catalogue already is %s: %d types, nothing to change\n", path, len(types))
	case dryRun:
		fmt.Fprintf(c.stdout, "dry run: %d changes to make the catalogue %s; nothing changed\n", len(changes), path)
	default:
		fmt.Fprintf(c.stdout, "the catalogue is now %s: %d changes\n", path, len(changes))
	}
	return nil
}
