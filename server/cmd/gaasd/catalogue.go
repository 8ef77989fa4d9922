package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"reflect"

	"github.com/gaas-io/gaas/gaas"
	"github.com/gaas-io/gaas/store"
)

// A catalogue file declares the whole GPU catalogue, for deployments kept
// in git (gaasd -catalogue FILE, gaasd gpu-types apply FILE):
//
//	{"gpu_types": [
//	  {"name": "A100", "description": "NVIDIA A100 80GB", "rate": 2.5, "max_gpus_per_job": 8, "enabled": true}
//	]}
//
// Each type's name and rate are required; description defaults to "",
// max_gpus_per_job to 0 (no limit of its own), enabled to true,
// auto_approve (its jobs are APPROVED when submitted) to false. A rate is
// read exactly from the number's text (gaas.ParseRate), never through a
// float. Unknown fields, a name given twice in any letter case, and
// anything after the object are refused.

// catalogueFile is a catalogue file as it is decoded.
type catalogueFile struct {
	GPUTypes *[]catalogueEntry `json:"gpu_types"`
}

type catalogueEntry struct {
	Name          *string         `json:"name"`
	Description   string          `json:"description"`
	Rate          json.RawMessage `json:"rate"`
	MaxGPUsPerJob int             `json:"max_gpus_per_job"`
	Enabled       *bool           `json:"enabled"`
	AutoApprove   bool            `json:"auto_approve"`
}

// maxCatalogueFile bounds what is read of a catalogue file.
const maxCatalogueFile = 4 << 20

// readCatalogue reads the catalogue file at path. Its error is one line
// that names the file and, where it can, the line and the type at fault.
func readCatalogue(path string) ([]gaas.GPUType, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("catalogue file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxCatalogueFile+1))
	if err != nil {
		return nil, fmt.Errorf("catalogue file %s: %w", path, err)
	}
	if len(data) > maxCatalogueFile {
		return nil, fmt.Errorf("catalogue file %s: larger than %d bytes", path, maxCatalogueFile)
	}
	types, err := parseCatalogue(data)
	if err != nil {
		return nil, fmt.Errorf("catalogue file %s: %w", path, err)
	}
	return types, nil
}

// parseCatalogue decodes a catalogue file and checks every type by the
// rules the store applies, so that a bad file is refused before anything
// is opened.
func parseCatalogue(data []byte) ([]gaas.GPUType, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var file catalogueFile
	if err := dec.Decode(&file); err != nil {
		return nil, jsonError(data, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("line %d: data after the catalogue's object", lineAt(data, dec.InputOffset()))
	}
	if file.GPUTypes == nil {
		return nil, errors.New(`"gpu_types" is required: the list of every GPU type (an empty list retires them all)`)
	}
	types := make([]gaas.GPUType, len(*file.GPUTypes))
	for i, e := range *file.GPUTypes {
		at := fmt.Sprintf("GPU type %d", i+1)
		if e.Name == nil {
			return nil, fmt.Errorf("%s: name is required", at)
		}
		at = fmt.Sprintf("GPU type %d (%q)", i+1, *e.Name)
		if len(e.Rate) == 0 || string(e.Rate) == "null" {
			return nil, fmt.Errorf("%s: rate is required: credits per GPU-hour, such as 2.5", at)
		}
		if e.Rate[0] == '"' {
			return nil, fmt.Errorf("%s: rate must be a JSON number, not the string %s", at, e.Rate)
		}
		rate, err := gaas.ParseRate(string(e.Rate))
		if err != nil {
			return nil, fmt.Errorf("%s: rate: %w", at, err)
		}
		types[i] = gaas.GPUType{Name: *e.Name, Description: e.Description, Rate: rate, MaxGPUsPerJob: e.MaxGPUsPerJob, Enabled: e.Enabled == nil || *e.Enabled,
			AutoApprove: e.AutoApprove}
	}
	if err := store.ValidateCatalogue(types); err != nil {
		return nil, err
	}
	return types, nil
}

// jsonError says where in data a decoding error is, by line.
func jsonError(data []byte, err error) error {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return fmt.Errorf("line %d: %v", lineAt(data, syntax.Offset), syntax)
	case errors.As(err, &typ) && typ.Field == "":
		return fmt.Errorf("line %d: the file must hold an object such as {\"gpu_types\": []}, not %s", lineAt(data, typ.Offset), typ.Value)
	case errors.As(err, &typ):
		want := map[reflect.Kind]string{reflect.Int: "a whole number", reflect.String: "a string", reflect.Bool: "true or false",
			reflect.Slice: "a list", reflect.Struct: "an object"}[typ.Type.Kind()]
		if want == "" {
			want = typ.Type.String()
		}
		return fmt.Errorf("line %d: %s must be %s, not %s", lineAt(data, typ.Offset), typ.Field, want, typ.Value)
	case errors.Is(err, io.EOF):
		return errors.New("empty: it must hold an object such as {\"gpu_types\": []}")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errors.New("ends in the middle of its JSON")
	}
	return err // such as json: unknown field "rates"
}

// lineAt is the line, from 1, of byte offset in data.
func lineAt(data []byte, offset int64) int {
	return 1 + bytes.Count(data[:min(int(offset), len(data))], []byte("\n"))
}

// applyCatalogueFile brings the store's catalogue to the file's at start-up,
// as the system principal "catalogue", and logs each change on a line.
func applyCatalogueFile(ctx context.Context, logger *slog.Logger, db *store.DB, path string, types []gaas.GPUType) error {
	changes, err := db.As(gaas.System("catalogue")).ApplyCatalogue(ctx, store.ApplyCatalogueRequest{Types: types})
	if err != nil {
		return fmt.Errorf("catalogue file %s: %w", path, err)
	}
	for _, c := range changes {
		logger.Info("GPU catalogue changed", "file", path, "gpu_type", c.After.Name, "action", c.Action, "change", c.String())
	}
	logger.Info("GPU catalogue as the file declares it", "file", path, "gpu_types", len(types), "changes", len(changes))
	return nil
}
