package local_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/gaas"
	"github.com/gaas-io/gaas/server/executor/local"
)

func TestParseGPUs(t *testing.T) {
	for _, tc := range []struct {
		name, out string
		want      []local.GPU
		err       string
	}{
		{name: "spaces after commas and in names", out: "0, GPU-5f1b-aa, NVIDIA A100-SXM4-80GB, 81920\n1, GPU-77c2-bb, NVIDIA A100-SXM4-80GB, 81920\n",
			want: []local.GPU{{0, "GPU-5f1b-aa", "NVIDIA A100-SXM4-80GB", 81920}, {1, "GPU-77c2-bb", "NVIDIA A100-SXM4-80GB", 81920}}},
		{name: "no spaces, CRLF, blank lines", out: "\r\n3,GPU-x,Tesla T4,15360\r\n\n",
			want: []local.GPU{{3, "GPU-x", "Tesla T4", 15360}}},
		{name: "memory unknown", out: "0, GPU-x, NVIDIA H100 80GB HBM3, [N/A]\n",
			want: []local.GPU{{0, "GPU-x", "NVIDIA H100 80GB HBM3", 0}}},
		{name: "a comma in the name", out: "0, GPU-x, Odd, Name, 1024\n",
			want: []local.GPU{{0, "GPU-x", "Odd, Name", 1024}}},
		{name: "none", out: "", want: nil},
		{name: "too few fields", out: "0, GPU-x, 1024\n", err: "line 1"},
		{name: "index not a number", out: "0, GPU-x, T4, 1\nNo devices were found, a, b, c\n", err: "line 2"},
		{name: "no uuid", out: "0, , T4, 1\n", err: "no uuid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := local.ParseGPUs(tc.out)
			if tc.err != "" {
				assert.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

// fakeSMI puts an nvidia-smi on PATH that answers as script says when
// asked for the inventory, and fails when asked anything else.
func fakeSMI(t *testing.T, script string) {
	dir := t.TempDir()
	body := "#!/bin/sh\n" +
		"[ \"$*\" = '--query-gpu=index,uuid,name,memory.total --format=csv,noheader,nounits' ] || { echo \"unexpected: $*\" >&2; exit 9; }\n" +
		script + "\n"
	require.NoError(t, os.WriteFile(filepath.Join(dir, "nvidia-smi"), []byte(body), 0o755))
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
}

func TestInventoryFromNvidiaSMI(t *testing.T) {
	t.Run("types mapped and not", func(t *testing.T) {
		fakeSMI(t, "printf '0, GPU-a0, NVIDIA A100-SXM4-80GB, 81920\\n1, GPU-a1, NVIDIA A100-SXM4-80GB, 81920\\n2, GPU-t, Tesla T4, 15360\\n'")
		cfg := config(tempDir(t))
		cfg.GPUs = nil
		cfg.Types = map[string]string{"nvidia a100-sxm4-80gb": "A100-80GB"}
		e, err := local.New(t.Context(), cfg)
		require.NoError(t, err)
		defer e.Close(t.Context())
		free, err := e.Free(t.Context())
		require.NoError(t, err)
		assert.Equal(t, map[string]int{"A100-80GB": 2, "Tesla T4": 1}, free)
		o := ended(t, e, start(t, e, job("true", "tesla t4", 1, 10)), 10*time.Second)
		assert.Equal(t, gaas.StatusCompleted, o.Status)
	})
	for _, tc := range []struct{ name, script, err string }{
		{"fails", "echo 'NVIDIA-SMI has failed because it could not communicate with the NVIDIA driver.'; exit 9",
			"could not communicate with the NVIDIA driver"},
		{"lists none", "true", "no GPUs"},
		{"answers nonsense", "echo 'No devices were found'", "line 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fakeSMI(t, tc.script)
			cfg := config(tempDir(t))
			cfg.GPUs = nil
			_, err := local.New(t.Context(), cfg)
			assert.ErrorContains(t, err, tc.err)
		})
	}
	t.Run("not found", func(t *testing.T) {
		cfg := config(tempDir(t))
		cfg.GPUs, cfg.NvidiaSMI = nil, filepath.Join(t.TempDir(), "nvidia-smi")
		_, err := local.New(t.Context(), cfg)
		assert.ErrorContains(t, err, "nvidia-smi")
	})
}
