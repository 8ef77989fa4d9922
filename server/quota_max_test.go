package server_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The scenario over HTTP: with a job pending, an admin cannot set
// the balance to the maximum (a rejection would then pass it); the 422
// names the hours the job holds, and the rejection of a job submitted
// under the highest balance allowed brings it to the maximum, not past.
func TestSetQuotaKeepsRoomForRefunds(t *testing.T) {
	h := newHarness(t)
	aliceID, alice := h.user("alice")
	_, admin := h.admin("root")
	quota := fmt.Sprintf("/users/%d/quota", aliceID)
	r := h.post("/jobs", alice, jobBody)
	require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
	job := r.json(t)["id"]

	r = h.put(quota, admin, `{"gpu_hours_quota": 1000000000}`)
	assert.Equal(t, []string{"gpu_hours_quota"}, r.errorFields(t))
	assert.Contains(t, r.json(t)["detail"], "2.5 credits that unfinished jobs hold")
	assert.Equal(t, 7.5, h.balance(aliceID), "nothing changed")
	// 999,999,998.5 hours fits below the maximum, but not with the 2.5 held.
	r = h.post(quota+"/grants", admin, `{"hours": 999999991}`)
	assert.Equal(t, []string{"hours"}, r.errorFields(t))

	r = h.put(quota, admin, `{"gpu_hours_quota": 999999997.5}`)
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	r = h.do(req{method: http.MethodPatch, path: fmt.Sprintf("/jobs/%v", job), token: admin, body: `{"status": "REJECTED"}`})
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	assert.Equal(t, 1e9, h.balance(aliceID))
}
