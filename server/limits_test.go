package server_test

import (
	"net/http"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/server"
)

func TestLoginRateLimits(t *testing.T) {
	t.Run("per_username", func(t *testing.T) {
		h := newHarness(t, override{cfg: server.Config{LoginsPerUser: 3}})
		h.user("alice") // one login
		h.user("bob")
		for range 2 {
			h.post("/login", "", `{"username": "ALICE", "password": "wrong password"}`).problem(t, http.StatusUnauthorized)
		}
		r := h.post("/login", "", `{"username": "alice", "password": "pw-alice-secret"}`)
		p := r.problem(t, http.StatusTooManyRequests)
		assert.Equal(t, "urn:gaas:problem:rate-limited", p["type"])
		wait, err := strconv.Atoi(r.header.Get("Retry-After"))
		require.NoError(t, err)
		assert.InDelta(t, 20, wait, 1, "one attempt comes back every 20 s at 3 a minute")
		assert.Equal(t, http.StatusOK, h.post("/login", "", `{"username": "bob", "password": "pw-bob-secret"}`).status, "other users are not affected")
	})
	t.Run("per_address", func(t *testing.T) {
		h := newHarness(t, override{cfg: server.Config{LoginsPerAddress: 2}})
		h.user("alice")
		h.post("/login", "", `{"username": "nobody", "password": "whatever1"}`).problem(t, http.StatusUnauthorized)
		r := h.post("/login", "", `{"username": "someone", "password": "whatever1"}`)
		r.problem(t, http.StatusTooManyRequests)
		assert.NotEmpty(t, r.header.Get("Retry-After"))
	})
	t.Run("off", func(t *testing.T) {
		h := newHarness(t, override{cfg: server.Config{LoginsPerUser: -1, LoginsPerAddress: -1}})
		for range 40 {
			h.post("/login", "", `{"username": "nobody", "password": "whatever1"}`).problem(t, http.StatusUnauthorized)
		}
	})
}
