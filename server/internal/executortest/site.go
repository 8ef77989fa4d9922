// Package executortest is what the tests of executors on other machines
// share: a real gaas server on a real store, with a user whose jobs run
// and an executor account, reached over HTTP.
package executortest

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/authn"
	"github.com/gaas-io/gaas/gaas"
	"github.com/gaas-io/gaas/server"
	"github.com/gaas-io/gaas/store"
)

// Site is a gaas server on a SQLite file, whose ledger is checked when
// the test ends.
type Site struct {
	DB           *store.DB
	Server       *httptest.Server
	API          http.Handler // Server's, without Faults
	Admin, Alice gaas.User
	Token        string // of the executor node1

	// Faults, when set, may answer a request in the API's place: it
	// reports whether it did.
	Faults atomic.Pointer[func(w http.ResponseWriter, r *http.Request) bool]
}

// New starts a site; alice has 100 credits.
func New(t *testing.T) *Site {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, "file:"+t.TempDir()+"/gaas.db", store.Options{})
	require.NoError(t, err)
	s := &Site{DB: db}
	t.Cleanup(func() {
		report, err := db.Check(context.Background())
		assert.NoError(t, err)
		assert.Empty(t, report.Violations)
		db.Close()
	})
	key, err := db.SigningKey(ctx)
	require.NoError(t, err)
	tokens, err := authn.NewTokens(key, 0, nil)
	require.NoError(t, err)
	auth := authn.NewAuthenticator(db.Accounts, authn.Hasher{Iterations: 1000}, tokens)
	s.API = server.NewServer(slog.New(slog.NewTextHandler(io.Discard, nil)), server.Config{}, server.Services{
		Auth: auth, Users: db.Users, Jobs: db.Jobs, Quota: db.Quota, Catalogue: db.Catalogue, Allocations: db.Allocations,
		Projects: db.Projects, Schedules: db.Schedules, Webhooks: db.Webhooks, Reports: db.Reports, DB: db, Executors: db.Executors, Dispatch: db.Dispatch,
	})
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f := s.Faults.Load(); f != nil && (*f)(w, r) {
			return
		}
		s.API.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Server.Close)
	s.Admin, err = db.Accounts.EnsureAdmin(ctx, "root", "unused-hash", false)
	require.NoError(t, err)
	s.Alice, err = db.Accounts.CreateUser(ctx, "alice", "unused-hash", gaas.RoleUser)
	require.NoError(t, err)
	_, err = db.Quota.Set(ctx, s.Admin.ID, gaas.SetBalanceRequest{UserID: s.Alice.ID, Balance: 100 * gaas.Credit, Reason: "test"})
	require.NoError(t, err)
	_, s.Token, err = db.Executors.CreateExecutor(ctx, s.Admin.ID, "node1")
	require.NoError(t, err)
	return s
}

// Approved submits alice's job of gpus GPUs of gpuType and approves it.
func (s *Site) Approved(t *testing.T, command, gpuType string, gpus int, estimate gaas.Hours) gaas.Job {
	t.Helper()
	ctx := context.Background()
	j, err := s.DB.Jobs.Submit(ctx, s.Alice.ID, gaas.SubmitRequest{Command: command, GPUType: gpuType, GPUCount: gpus, EstimatedHours: estimate})
	require.NoError(t, err)
	j, err = s.DB.Jobs.Transition(ctx, s.Admin.ID, gaas.TransitionRequest{JobID: j.ID, To: gaas.StatusApproved})
	require.NoError(t, err)
	return j
}

// Job reads job id as the admin.
func (s *Site) Job(t *testing.T, id int64) gaas.Job {
	t.Helper()
	j, err := s.DB.Jobs.Get(context.Background(), s.Admin.ID, gaas.GetJobRequest{JobID: id})
	require.NoError(t, err)
	return j
}

// Balance is alice's.
func (s *Site) Balance(t *testing.T) gaas.Credits {
	t.Helper()
	u, err := s.DB.Users.User(context.Background(), s.Admin.ID, gaas.GetUserRequest{UserID: s.Alice.ID})
	require.NoError(t, err)
	return u.Balance
}

// Until calls step (nil for none) and reads job id until ok, for up to
// within.
func (s *Site) Until(t *testing.T, step func() error, id int64, within time.Duration, ok func(gaas.Job) bool) gaas.Job {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		if step != nil {
			require.NoError(t, step())
		}
		j := s.Job(t, id)
		if ok(j) {
			return j
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %d: %+v after %v", id, j, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Final and Running are conditions for Until.
func Final(j gaas.Job) bool   { return j.Status.Final() }
func Running(j gaas.Job) bool { return j.Status == gaas.StatusRunning }

// LogDir is a directory for the local executor's logs, under a directory
// that the jobs' user (nobody) may enter.
func LogDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "gaas-executor-")
	require.NoError(t, err)
	require.NoError(t, os.Chmod(dir, 0o711))
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir + "/logs"
}
