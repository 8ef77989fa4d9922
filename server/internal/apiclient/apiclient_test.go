package apiclient_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/authn"
	"github.com/gaas-io/gaas/server"
	"github.com/gaas-io/gaas/server/internal/apiclient"
	"github.com/gaas-io/gaas/store"
)

// TestGeneratedClient drives a real server, on a real store, with the
// client oapi-codegen generates from the published document: register,
// log in (JSON and the OAuth2 form), submit and list, each answer read
// into the generated types. Hours travel as float64, so a client's
// 0.1 + 0.2 is charged 0.3, and an amount finer than a milli-hour comes back
// as the document's 422.
func TestGeneratedClient(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, ":memory:", store.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	tokens, err := authn.NewTokens([]byte("apiclient-test-signing-key-0123456789"), 0, nil)
	require.NoError(t, err)
	auth := authn.NewAuthenticator(db.Accounts, authn.Hasher{Iterations: 1}, tokens)
	h := server.NewServer(slog.New(slog.NewTextHandler(io.Discard, nil)), server.Config{}, server.Services{
		Auth: auth, Users: db.Users, Jobs: db.Jobs, Quota: db.Quota,
		Catalogue: db.Catalogue, Allocations: db.Allocations, Projects: db.Projects, Schedules: db.Schedules, Webhooks: db.Webhooks, Reports: db.Reports, DB: db,
	})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	c, err := apiclient.NewClientWithResponses(srv.URL, apiclient.WithHTTPClient(srv.Client()))
	require.NoError(t, err)

	reg, err := c.RegisterWithResponse(ctx, apiclient.RegisterJSONRequestBody{Username: "alice", Password: "correct horse"})
	require.NoError(t, err)
	require.NotNil(t, reg.JSON201, "%d %s", reg.StatusCode(), reg.Body)
	assert.Equal(t, "alice", reg.JSON201.Username)
	assert.Equal(t, 10.0, reg.JSON201.GpuHoursQuota)

	login, err := c.LoginWithResponse(ctx, apiclient.LoginJSONRequestBody{Username: "alice", Password: "correct horse"})
	require.NoError(t, err)
	require.NotNil(t, login.JSON200, "%d %s", login.StatusCode(), login.Body)
	assert.Equal(t, apiclient.TokenTokenType("bearer"), login.JSON200.TokenType)
	assert.Equal(t, "no-store", login.HTTPResponse.Header.Get("Cache-Control"))
	form, err := c.LoginWithFormdataBodyWithResponse(ctx, apiclient.LoginFormdataRequestBody{Username: "alice", Password: "correct horse"})
	require.NoError(t, err)
	require.NotNil(t, form.JSON200, "%d %s", form.StatusCode(), form.Body)
	bearer := apiclient.RequestEditorFn(func(_ context.Context, r *http.Request) error {
		r.Header.Set("Authorization", "Bearer "+login.JSON200.AccessToken)
		return nil
	})

	a, b := 0.1, 0.2 // variables, so that the sum is float64's, not the compiler's exact one
	job, err := c.SubmitJobWithResponse(ctx, nil, apiclient.SubmitJobJSONRequestBody{
		Command: "python train.py", GpuType: "NVIDIA A100", EstimatedHours: a + b,
	}, bearer)
	require.NoError(t, err)
	require.NotNil(t, job.JSON201, "%d %s", job.StatusCode(), job.Body)
	assert.Equal(t, 0.3, job.JSON201.EstimatedHours)
	assert.Equal(t, apiclient.JobStatus("PENDING"), job.JSON201.Status)

	fine, err := c.SubmitJobWithResponse(ctx, nil, apiclient.SubmitJobJSONRequestBody{
		Command: "x", GpuType: "A100", EstimatedHours: 20.0 / 60,
	}, bearer)
	require.NoError(t, err)
	require.NotNil(t, fine.ApplicationproblemJSON422, "%d %s", fine.StatusCode(), fine.Body)
	assert.Contains(t, fine.ApplicationproblemJSON422.Detail, "0.333 and 0.334")

	list, err := c.ListJobsWithResponse(ctx, &apiclient.ListJobsParams{}, bearer)
	require.NoError(t, err)
	require.NotNil(t, list.JSON200, "%d %s", list.StatusCode(), list.Body)
	require.Len(t, list.JSON200.Items, 1)
	assert.Equal(t, job.JSON201.Id, list.JSON200.Items[0].Id)
	assert.Nil(t, list.JSON200.NextCursor)

	me, err := c.MeWithResponse(ctx, bearer)
	require.NoError(t, err)
	require.NotNil(t, me.JSON200, "%d %s", me.StatusCode(), me.Body)
	assert.Equal(t, 9.7, me.JSON200.GpuHoursQuota)
}
