package main

import (
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

func TestMetricsAddress(t *testing.T) {
	admin := map[string]string{"GAAS_ADMIN_USERNAME": "root", "GAAS_ADMIN_PASSWORD": "root-password-1"}

	t.Run("with_the_api", func(t *testing.T) {
		inst := start(t, filepath.Join(t.TempDir(), "gaas.db"), admin)
		status, body := get(t, inst.url+"/metrics")
		require.Equal(t, http.StatusOK, status)
		for _, want := range []string{
			"gaas_jobs_submitted_total 0",
			`gaas_http_requests_total{code="200",route="GET /healthz"} 1`,
			`go_sql_open_connections{db_name="writer"}`,
			`go_sql_open_connections{db_name="reader"}`,
			"process_resident_memory_bytes",
			"go_goroutines",
		} {
			assert.Contains(t, body, want)
		}
	})

	t.Run("apart", func(t *testing.T) {
		inst := start(t, filepath.Join(t.TempDir(), "gaas.db"), admin, "-metrics-addr", "127.0.0.1:0")
		var addr string
		for _, line := range strings.Split(inst.logs.String(), "\n") {
			var l struct{ Msg, Addr string }
			if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "metrics listening" {
				addr = l.Addr
			}
		}
		require.NotEmpty(t, addr, "no metrics listener in the log:\n%s", inst.logs.String())
		status, _ := get(t, inst.url+"/metrics")
		assert.Equal(t, http.StatusNotFound, status, "not on the API's address")
		status, body := get(t, "http://"+addr+"/metrics")
		require.Equal(t, http.StatusOK, status)
		assert.Contains(t, body, `gaas_http_requests_total{code="404",route="unmatched"} 1`)
	})

	t.Run("off", func(t *testing.T) {
		inst := start(t, filepath.Join(t.TempDir(), "gaas.db"), admin, "-metrics-addr", "off")
		status, _ := get(t, inst.url+"/metrics")
		assert.Equal(t, http.StatusNotFound, status)
	})
}
