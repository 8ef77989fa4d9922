package gaas_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/gaas"
)

// Who receives what: an admin's endpoint every event it subscribes to, a
// project's the events of that project, the owner's other endpoints the
// news of one disabled.
func TestEventFor(t *testing.T) {
	all := []gaas.EventType{gaas.EventJobStatusChanged, gaas.EventWebhookDisabled}
	admins := gaas.Webhook{ID: 1, OwnerID: 1, Events: all}
	lab := gaas.Webhook{ID: 2, OwnerID: 7, ProjectID: 5, Events: all}
	labOther := gaas.Webhook{ID: 3, OwnerID: 7, ProjectID: 5, Events: []gaas.EventType{gaas.EventThresholdCrossed}}
	off := admins
	off.DisabledAt = &time.Time{}

	labJob := gaas.Event{Type: gaas.EventJobStatusChanged, ProjectID: 5, UserID: 9}
	ownJob := gaas.Event{Type: gaas.EventJobStatusChanged, UserID: 9}
	otherProject := gaas.Event{Type: gaas.EventJobStatusChanged, ProjectID: 6}
	labDisabled := gaas.Event{Type: gaas.EventWebhookDisabled, UserID: 7, WebhookID: 3, ProjectID: 5}
	selfDisabled := gaas.Event{Type: gaas.EventWebhookDisabled, UserID: 7, WebhookID: 2, ProjectID: 5}

	for _, tc := range []struct {
		name string
		e    gaas.Event
		w    gaas.Webhook
		want bool
	}{
		{"admin's hears a project's job", labJob, admins, true},
		{"admin's hears a user's own job", ownJob, admins, true},
		{"a disabled endpoint hears nothing", labJob, off, false},
		{"the project's hears its job", labJob, lab, true},
		{"the project's does not hear a user's own job", ownJob, lab, false},
		{"the project's does not hear another project", otherProject, lab, false},
		{"not a type it subscribes to", labJob, labOther, false},
		{"the owner's other endpoint hears of the disabling", labDisabled, lab, true},
		{"the endpoint disabled is not told itself", selfDisabled, lab, false},
		{"another owner's endpoint is not told", labDisabled, admins, false},
	} {
		assert.Equal(t, tc.want, tc.e.For(tc.w), tc.name)
	}
}

func TestCrossedThresholds(t *testing.T) {
	ts := []int{80, 100}
	for _, tc := range []struct {
		amount, before, after gaas.Credits
		want                  []int
	}{
		{10, 10, 3, nil},       // 70% used
		{10, 10, 2, []int{80}}, // exactly 80%
		{10, 3, 2, []int{80}},
		{10, 2, 1, nil},            // 80 to 90: crossed before
		{10, 5, 0, []int{80, 100}}, // both at once
		{10, 1, 0, []int{100}},
		{10, 2, 3, nil}, // a refund crosses nothing
		{0, 0, 0, nil},
		{3, 3, 1, nil}, // 66.6%
		{3000, 601, 600, []int{80}},
		{gaas.MaxCredits, gaas.MaxCredits, 0, []int{80, 100}},
	} {
		assert.Equal(t, tc.want, gaas.CrossedThresholds(ts, tc.amount, tc.before, tc.after), "%+v", tc)
	}
}

func TestWebhookSecrets(t *testing.T) {
	s := gaas.NewWebhookSecret()
	require.True(t, strings.HasPrefix(s, "whsec_"))
	key, err := gaas.DecodeWebhookSecret(s)
	require.NoError(t, err)
	assert.Len(t, key, 32)
	assert.NotEqual(t, s, gaas.NewWebhookSecret())
	for _, bad := range []string{"", "whsec_", "secret", "whsec_!!!!", "whsec_c2hvcnQ=", "whsec_" + strings.Repeat("QUFB", 30)} {
		_, err := gaas.DecodeWebhookSecret(bad)
		assert.Error(t, err, bad)
	}
}

func TestRetryDelay(t *testing.T) {
	var total time.Duration
	attempts := 0
	for total < gaas.DisableAfter {
		attempts++
		d := gaas.RetryDelay(attempts)
		if attempts > 1 {
			assert.GreaterOrEqual(t, d, gaas.RetryDelay(attempts-1), "never shorter")
		}
		assert.LessOrEqual(t, d, 2*time.Hour)
		total += d
	}
	assert.Equal(t, 5*time.Second, gaas.RetryDelay(1))
	assert.Equal(t, 20*time.Second, gaas.RetryDelay(2))
	assert.Less(t, attempts, 25, "about 16 tries in a day, not thousands")
}
