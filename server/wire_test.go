package server_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// The library names its inputs in its own words (balance, delta,
// idempotency_key); a 422 names them as the client sent them, in the
// errors list and in the detail, and names the server's own refusals of a
// body's fields exactly as they were sent.
func TestWireFieldNames(t *testing.T) {
	h := newHarness(t)
	aliceID, alice := h.user("alice")
	_, admin := h.admin("root")
	users := fmt.Sprintf("/users/%d", aliceID)
	put := func(body string) response {
		return h.do(req{method: http.MethodPut, path: users + "/quota", token: admin, body: body})
	}
	grant := func(body string) response { return h.post(users+"/quota/grants", admin, body) }
	submit := func(key, body string) response {
		return h.do(req{method: http.MethodPost, path: "/jobs", token: alice, body: body, header: map[string]string{"Idempotency-Key": key}})
	}

	cases := []struct {
		name   string
		r      func() response
		fields []string
		detail string
	}{
		{"quota_out_of_range", func() response { return put(`{"gpu_hours_quota": -1}`) },
			[]string{"gpu_hours_quota"}, "Invalid request: gpu_hours_quota must be between 0 and 1000000000."},
		{"grant_zero", func() response { return grant(`{"hours": 0}`) },
			[]string{"hours"}, "Invalid request: hours must be non-zero and at most 1000000000 in size."},
		{"grant_above_the_maximum", func() response { return grant(`{"hours": 1e9}`) },
			[]string{"hours"}, "Invalid request: hours would give the account 1000000010 credits, above the maximum of 1000000000."},
		{"key_too_long", func() response { return submit(strings.Repeat("k", 256), jobBody) },
			[]string{"Idempotency-Key"}, "Invalid request: Idempotency-Key must be 1 to 255 characters."},
		// A body field that happens to bear the library's name is not
		// translated: it is not a field of the request.
		{"body_field_balance", func() response { return put(`{"gpu_hours_quota": 1, "balance": 1}`) },
			[]string{"balance"}, "Invalid request: balance is not a field of this request."},
		{"body_field_delta", func() response { return grant(`{"hours": 1, "delta": 1}`) },
			[]string{"delta"}, "Invalid request: delta is not a field of this request."},
		{"body_field_idempotency_key", func() response {
			return submit("k", `{"command": "x", "gpu_type": "A100", "estimated_hours": 1, "idempotency_key": "k"}`)
		}, []string{"idempotency_key"}, "Invalid request: idempotency_key is not a field of this request."},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.r()
			assert.Equal(t, tc.fields, r.errorFields(t), "%s", r.body)
			assert.Equal(t, tc.detail, r.problem(t, http.StatusUnprocessableEntity)["detail"])
		})
	}
	assert.Equal(t, 10.0, h.balance(aliceID), "nothing was changed")
}
