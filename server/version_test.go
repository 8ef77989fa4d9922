package server_test

import (
	"encoding/json"
	"net/http"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/server"
)

// GET /version answers, without a token, the build that BuildVersion reads
// from the binary (the harness checks the answer against openapi.json).
func TestVersion(t *testing.T) {
	h := newHarness(t)
	r := h.get("/version", "")
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	var got server.Version
	require.NoError(t, json.Unmarshal(r.body, &got))
	assert.Equal(t, server.BuildVersion(), got)
	assert.Equal(t, runtime.Version(), got.GoVersion)
	assert.NotEmpty(t, got.Version)
}
