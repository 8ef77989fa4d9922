package server_test

import (
	"fmt"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/server"
	"github.com/gaas-io/gaas/store/storetest"
)

// Honest clients and hostile ones post jobs at once, so that their
// submissions share the store's batches: every honest one is answered 201,
// and a hostile one is refused on its own, never with a 503 that would say
// its whole batch failed.
func TestHostileSubmissionsFailAlone(t *testing.T) {
	for name, dsn := range map[string]func(t *testing.T) string{
		"sqlite":   func(t *testing.T) string { return filepath.Join(t.TempDir(), "gaas.db") },
		"postgres": func(t *testing.T) string { return storetest.PostgresDSN(t) },
	} {
		t.Run(name, func(t *testing.T) {
			dsn := dsn(t)
			h := newHarness(t, override{dsn: dsn, cfg: server.Config{RegistrationsPerAddress: -1}}) // twelve accounts from one address
			storetest.Poison(t, dsn)

			const honest, rounds = 8, 20
			job := func(command string, hours float64) string {
				return fmt.Sprintf(`{"command": %q, "gpu_type": "NVIDIA A100", "estimated_hours": %g}`, command, hours)
			}
			hostile := []struct {
				body, key string
				allowed   []int // the answers this request may get
			}{
				// The database refuses it, with an error the store does not know.
				{body: job(storetest.PoisonCommand, 0.01), allowed: []int{http.StatusInternalServerError}},
				{body: job(storetest.PoisonCommand, 0.01), key: "poison-key", allowed: []int{http.StatusInternalServerError}},
				// PostgreSQL cannot store a NUL (SQLSTATE 22021): the domain refuses it first.
				{body: `{"command": "nul\u0000", "gpu_type": "NVIDIA A100", "estimated_hours": 0.01}`,
					allowed: []int{http.StatusUnprocessableEntity}},
				{body: job("too much", 1000), allowed: []int{http.StatusBadRequest}},
			}
			type client struct {
				token, body, key string
				allowed          []int
			}
			var clients []client
			for i := range honest {
				_, tok := h.user(fmt.Sprintf("honest%d", i))
				clients = append(clients, client{token: tok, body: job("python train.py", 0.01), allowed: []int{http.StatusCreated}})
			}
			for i, x := range hostile {
				_, tok := h.user(fmt.Sprintf("hostile%d", i))
				clients = append(clients, client{token: tok, body: x.body, key: x.key, allowed: x.allowed})
			}

			var (
				wg       sync.WaitGroup
				mu       sync.Mutex
				created  int
				failures []string
			)
			begin := make(chan struct{})
			for i, c := range clients {
				wg.Go(func() {
					<-begin
					for range rounds {
						r := req{method: http.MethodPost, path: "/jobs", token: c.token, body: c.body}
						if c.key != "" {
							r.header = map[string]string{"Idempotency-Key": c.key}
						}
						resp, err := h.send(r)
						if !assert.NoError(t, err) {
							return
						}
						mu.Lock()
						if !assert.Contains(t, c.allowed, resp.status, "client %d: %s", i, resp.body) {
							failures = append(failures, fmt.Sprintf("client %d: %d", i, resp.status))
						}
						if i < honest && resp.status == http.StatusCreated {
							created++
						}
						mu.Unlock()
					}
				})
			}
			close(begin)
			wg.Wait()
			require.Empty(t, failures)
			assert.Equal(t, honest*rounds, created)
		})
	}
}

// A batch that cannot commit in time is answered 503 with Retry-After, for
// every submission in it, before the connection could be cut; then jobs are
// taken again.
func TestSlowBatchIsUnavailable(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	const timeout = 300 * time.Millisecond
	h := newHarness(t, override{dsn: dsn, batchTimeout: timeout})
	storetest.Poison(t, dsn) // a slow job takes 5s
	id, tok := h.user("alice")

	begin := time.Now()
	r := h.post("/jobs", tok, `{"command": "`+storetest.SlowCommand+`", "gpu_type": "NVIDIA A100", "estimated_hours": 1}`)
	r.problem(t, http.StatusServiceUnavailable)
	assert.Equal(t, "1", r.header.Get("Retry-After"))
	assert.Less(t, time.Since(begin), 3*time.Second)
	assert.Equal(t, 10.0, h.balance(id))

	require.Equal(t, http.StatusCreated, h.post("/jobs", tok, jobBody).status)
	assert.Equal(t, 7.5, h.balance(id))
}
