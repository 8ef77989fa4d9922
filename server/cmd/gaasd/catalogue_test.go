package main

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/gaas"
)

// exampleCatalogue is the catalogue file the README shows.
const exampleCatalogue = "../../../examples/catalogue.json"

// catalogueOf is the whole catalogue of db, retired types too, as gaasd
// gpu-types list -retired -json prints it.
func catalogueOf(t *testing.T, db string) []gpuTypeJSON {
	t.Helper()
	out, _, err := admin(t, db, "", "gpu-types", "list", "-retired", "-json")
	require.NoError(t, err, out)
	var types []gpuTypeJSON
	require.NoError(t, json.Unmarshal([]byte(out), &types), out)
	return types
}

// catalogueFields is what a catalogue file declares of each type, by name,
// without the times.
func catalogueFields(types []gpuTypeJSON) map[string]gpuTypeJSON {
	out := map[string]gpuTypeJSON{}
	for _, t := range types {
		t.CreatedAt, t.UpdatedAt = t.CreatedAt.UTC().Truncate(0), t.UpdatedAt.UTC().Truncate(0)
		out[t.Name] = t
	}
	return out
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "catalogue.json")
	require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
	return path
}

// changeLines are the "GPU catalogue changed" lines of a gaasd's log.
func changeLines(t *testing.T, logs string) []string {
	t.Helper()
	var changes []string
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		var l struct{ Msg, Change string }
		require.NoError(t, json.Unmarshal([]byte(line), &l), line)
		if l.Msg == "GPU catalogue changed" {
			changes = append(changes, l.Change)
		}
	}
	return changes
}

// gaasd -catalogue brings the store's catalogue to the file at start-up:
// it creates what is missing, updates what differs, retires (never
// deletes) what the file does not name, logs each change on a line, and
// changes nothing the second time. gpu-types apply does the same from the
// command line, and -dry-run only says what it would do.
func TestCatalogueFile(t *testing.T) {
	for name, target := range databaseTargets {
		t.Run(name, func(t *testing.T) {
			db := target(t)
			_, _, err := admin(t, db, "a-good-password\n", "user", "add", "alice", "-password-stdin")
			require.NoError(t, err)
			_, _, err = admin(t, db, "", "gpu-types", "add", "-name", "T4", "-rate", "0.5")
			require.NoError(t, err)

			g := start(t, db, map[string]string{"GAAS_CATALOGUE": exampleCatalogue})
			g.stop(t)
			assert.Equal(t, []string{
				"create A100: rate 2.5, max_gpus_per_job 8, enabled true, description \"NVIDIA A100 80GB SXM\"",
				"create H100: rate 4, max_gpus_per_job 8, enabled true, description \"NVIDIA H100 80GB SXM\"",
				"create L4: rate 0.75, max_gpus_per_job 4, enabled true, description \"NVIDIA L4 24GB, for inference and small jobs\"",
				"retire T4: not declared",
				"create V100: rate 1, max_gpus_per_job 0, enabled false, description \"NVIDIA V100 32GB, being retired\"",
			}, changeLines(t, g.logs.String()))
			assert.Contains(t, g.logs.String(), `"msg":"GPU catalogue as the file declares it","file":"`+exampleCatalogue+`","gpu_types":4,"changes":5`)
			first := catalogueOf(t, db)
			types := catalogueFields(first)
			require.Len(t, types, 5, "T4 is retired, not deleted")
			assert.Equal(t, gpuTypeJSON{Name: "L4", Description: "NVIDIA L4 24GB, for inference and small jobs", Rate: "0.75",
				MaxGPUsPerJob: 4, Enabled: true, CreatedAt: types["L4"].CreatedAt, UpdatedAt: types["L4"].UpdatedAt}, types["L4"])
			assert.False(t, types["T4"].Enabled)
			assert.Equal(t, "0.5", types["T4"].Rate, "retiring changes nothing else")
			assert.False(t, types["V100"].Enabled)

			g = start(t, db, nil, "-catalogue", exampleCatalogue)
			g.stop(t)
			assert.Empty(t, changeLines(t, g.logs.String()), "the second start changes nothing")
			assert.Contains(t, g.logs.String(), `"changes":0`)
			assert.Equal(t, first, catalogueOf(t, db), "not even the times")

			// A new rate for A100, and H100 dropped from the file.
			example, err := os.ReadFile(exampleCatalogue)
			require.NoError(t, err)
			changed := strings.Replace(string(example), `"rate": 2.5`, `"rate": 3.125`, 1)
			changed = regexp.MustCompile(`(?m)^\s*\{"name": "H100".*\n`).ReplaceAllString(changed, "")
			file := writeFile(t, changed)
			out, code, err := admin(t, db, "", "gpu-types", "apply", file, "-dry-run")
			require.NoError(t, err, out)
			assert.Equal(t, 0, code)
			assert.Equal(t, "would update A100: rate 2.5 -> 3.125\nwould retire H100: not declared\n"+
				"dry run: 2 changes to make the catalogue "+file+"; nothing changed\n", out)
			assert.Equal(t, first, catalogueOf(t, db), "a dry run changes nothing")

			out, _, err = admin(t, db, "", "gpu-types", "apply", file)
			require.NoError(t, err, out)
			assert.Equal(t, "update A100: rate 2.5 -> 3.125\nretire H100: not declared\nthe catalogue is now "+file+": 2 changes\n", out)
			types = catalogueFields(catalogueOf(t, db))
			assert.Equal(t, "3.125", types["A100"].Rate)
			assert.False(t, types["H100"].Enabled)
			assert.Equal(t, first[0].CreatedAt, types["A100"].CreatedAt)

			out, _, err = admin(t, db, "", "gpu-types", "apply", file, "-json")
			require.NoError(t, err, out)
			assert.Equal(t, "[]\n", out, "applied twice, the second changes nothing")

			// Enabling a type again and changing its description.
			file = writeFile(t, `{"gpu_types": [{"name": "T4", "description": "back", "rate": 0.5}]}`)
			out, _, err = admin(t, db, "", "gpu-types", "apply", file, "-json")
			require.NoError(t, err, out)
			var changes []catalogueChangeJSON
			require.NoError(t, json.Unmarshal([]byte(out), &changes), out)
			require.Len(t, changes, 3, "H100 and V100 are retired already: %s", out)
			assert.Equal(t, "retire", changes[0].Action)
			assert.Equal(t, "A100", changes[0].Name)
			assert.Equal(t, "retire L4: not declared", changes[1].Change)
			assert.Equal(t, "update", changes[2].Action)
			assert.Equal(t, "update T4: enabled false -> true, description \"\" -> \"back\"", changes[2].Change)
			require.NotNil(t, changes[2].Before)
			assert.False(t, changes[2].Before.Enabled)
			assert.True(t, changes[2].After.Enabled)
		})
	}
}

// A catalogue file that does not parse, or that the store refuses, stops
// gaasd at start-up with one line naming the file and the fault, and is
// refused by gpu-types apply (exit 1); either way nothing changes.
func TestCatalogueFileRefused(t *testing.T) {
	for name, target := range databaseTargets {
		t.Run(name, func(t *testing.T) {
			db := target(t)
			_, _, err := admin(t, db, "a-good-password\n", "user", "add", "alice", "-password-stdin")
			require.NoError(t, err)
			_, _, err = admin(t, db, "", "gpu-types", "apply", exampleCatalogue)
			require.NoError(t, err)
			before := catalogueOf(t, db)
			for _, tc := range []struct{ name, file, want string }{
				{"unknown_field", `{"gpu_types": [{"name": "A100", "rate": 2.5, "price": 3}]}`, `unknown field "price"`},
				{"unknown_top_field", `{"gpu_types": [], "types": []}`, `unknown field "types"`},
				{"duplicate", `{"gpu_types": [{"name": "New", "rate": 1}, {"name": "NEW", "rate": 2}]}`,
					`GPU type 2 ("NEW"): gaas: invalid input: name: names the type of GPU type 1 ("New") again`},
				{"rate_string", `{"gpu_types": [{"name": "A100", "rate": "2.5"}]}`, `GPU type 1 ("A100"): rate must be a JSON number, not the string "2.5"`},
				{"rate_inexact", `{"gpu_types": [{"name": "A100", "rate": 2.5001}]}`, `GPU type 1 ("A100"): rate: gaas: parse rate "2.5001"`},
				{"rate_zero", `{"gpu_types": [{"name": "A100", "rate": 0}]}`, `rate: must be greater than 0`},
				{"rate_missing", `{"gpu_types": [{"name": "A100"}]}`, `GPU type 1 ("A100"): rate is required`},
				{"name_missing", `{"gpu_types": [{"rate": 1}]}`, `GPU type 1: name is required`},
				{"name_bad", `{"gpu_types": [{"name": "a/b", "rate": 1}]}`, `name: may hold only printable ASCII characters other than '/'`},
				{"gpus_bad", `{"gpu_types": [{"name": "A100", "rate": 1, "max_gpus_per_job": -1}]}`, `max_gpus_per_job: must be between 1 and`},
				{"gpus_float", `{"gpu_types": [{"name": "A100", "rate": 1, "max_gpus_per_job": 1.5}]}`, `line 1: gpu_types.max_gpus_per_job must be a whole number, not number 1.5`},
				{"no_types", `{}`, `"gpu_types" is required`},
				{"null_types", `{"gpu_types": null}`, `"gpu_types" is required`},
				{"not_object", `[]`, `line 1: the file must hold an object such as {"gpu_types": []}, not array`},
				{"types_not_list", `{"gpu_types": {"name": "A100", "rate": 1}}`, `line 1: gpu_types must be a list, not object`},
				{"syntax", "{\"gpu_types\": [\n  {\"name\": \"A100\", \"rate\": 1,}\n]}", `line 2: invalid character '}'`},
				{"trailing", `{"gpu_types": []} {}`, `line 1: data after the catalogue's object`},
				{"empty", ``, `empty`},
				{"cut", `{"gpu_types": [`, `ends in the middle`},
				// Parsed, but the store refuses it: a new type is not created either.
				{"respelled", `{"gpu_types": [{"name": "New", "rate": 1}, {"name": "a100", "rate": 2.5}]}`,
					`GPU type 2 ("a100"): gaas: invalid input: name: the catalogue spells it "A100"`},
			} {
				t.Run(tc.name, func(t *testing.T) {
					file := writeFile(t, tc.file)
					out, code, err := admin(t, db, "", "gpu-types", "apply", file)
					require.Error(t, err, out)
					assert.Equal(t, 1, code, "%v", err)
					assert.Contains(t, err.Error(), "catalogue file "+file+": ")
					assert.Contains(t, err.Error(), tc.want)

					err = run(context.Background(), []string{"-addr", "127.0.0.1:0", "-db", db, "-catalogue", file},
						func(string) string { return "" }, io.Discard, io.Discard)
					require.Error(t, err)
					assert.Equal(t, 2, exitCode(err), "a failure to start")
					assert.Contains(t, err.Error(), "catalogue file "+file+": ")
					assert.Contains(t, err.Error(), tc.want)
					assert.NotContains(t, err.Error(), "\n", "one line")
					assert.Equal(t, before, catalogueOf(t, db), "nothing changed")
				})
			}
			_, code, err := admin(t, db, "", "gpu-types", "apply", filepath.Join(t.TempDir(), "none.json"))
			assert.Equal(t, 2, code)
			assert.ErrorContains(t, err, "no such file")
			err = run(context.Background(), []string{"-addr", "127.0.0.1:0", "-db", db}, func(k string) string {
				return map[string]string{"GAAS_CATALOGUE": "none.json"}[k]
			}, io.Discard, io.Discard)
			assert.ErrorContains(t, err, "catalogue file: open none.json: no such file")
		})
	}
}

// A bad catalogue file stops gaasd before it creates a database.
func TestCatalogueFileCheckedFirst(t *testing.T) {
	dir := t.TempDir()
	file := writeFile(t, `{"gpu_types": [{"name": "A100"}]}`)
	err := run(context.Background(), []string{"-addr", "127.0.0.1:0", "-db", filepath.Join(dir, "gaas.db"), "-catalogue", file},
		func(string) string { return "" }, io.Discard, io.Discard)
	assert.ErrorContains(t, err, "rate is required")
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Empty(t, entries)
}

// The catalogue files the README and gaasd help gpu-types show parse.
func TestCatalogueFilesShownParse(t *testing.T) {
	readme, err := os.ReadFile("../../../README.md")
	require.NoError(t, err)
	_, section, ok := strings.Cut(string(readme), "### The GPU catalogue in a file")
	require.True(t, ok)
	_, block, ok := strings.Cut(section, "```json\n")
	require.True(t, ok)
	block, _, _ = strings.Cut(block, "```")
	types, err := parseCatalogue([]byte(block))
	require.NoError(t, err, block)
	assert.Len(t, types, 3)

	_, help, ok := strings.Cut(adminUsage, "A catalogue file:\n")
	require.True(t, ok)
	help, _, _ = strings.Cut(strings.TrimSpace(help), "\n\n")
	types, err = parseCatalogue([]byte(help))
	require.NoError(t, err, help)
	assert.Equal(t, "T4", types[1].Name)
	assert.Equal(t, gaas.Rate(500), types[1].Rate)
	assert.True(t, types[1].Enabled, "enabled by default")
}
