package gaas_test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/gaas-io/gaas/gaas"
)

func TestTransitions(t *testing.T) {
	for from, tos := range gaas.Transitions() {
		assert.True(t, from.Valid())
		assert.False(t, from.Final())
		for _, to := range tos {
			assert.True(t, to.Valid())
			assert.True(t, from.CanMove(to))
			assert.NotEqual(t, from, to)
		}
	}
	for _, s := range []gaas.JobStatus{gaas.StatusCompleted, gaas.StatusFailed, gaas.StatusRejected, gaas.StatusCancelled} {
		assert.True(t, s.Final(), s)
	}
	assert.True(t, gaas.StatusRunning.CanMove(gaas.StatusCancelled))
	assert.False(t, gaas.StatusRunning.CanMove(gaas.StatusApproved))
	assert.False(t, gaas.JobStatus("DONE").Valid())
}

func TestTransitionErrorMessage(t *testing.T) {
	err := &gaas.TransitionError{From: gaas.StatusRunning, To: gaas.StatusPending}
	assert.Equal(t, "gaas: invalid status transition: RUNNING cannot move to PENDING (allowed: COMPLETED, FAILED, CANCELLED)", err.Error())
	err = &gaas.TransitionError{From: gaas.StatusCompleted, To: gaas.StatusRunning}
	assert.Equal(t, "gaas: invalid status transition: COMPLETED is final, cannot move to RUNNING", err.Error())
	assert.ErrorIs(t, err, gaas.ErrInvalidTransition)
}

func TestValidate(t *testing.T) {
	assert.NoError(t, gaas.ValidateUsername("alice.b-c_9"))
	for _, bad := range []string{"al", "alice bob", "ålice", "a/b", string(make([]byte, 65))} {
		assert.ErrorIs(t, gaas.ValidateUsername(bad), gaas.ErrInvalid, bad)
	}
	assert.NoError(t, gaas.ValidatePassword("ööööoooo"))
	assert.ErrorIs(t, gaas.ValidatePassword("ööööooo"), gaas.ErrInvalid)
	assert.ErrorIs(t, gaas.ValidatePassword("\xff\xff\xff\xff\xff\xff\xff\xff"), gaas.ErrInvalid)

	err := gaas.SubmitRequest{EstimatedHours: -1}.Validate()
	assert.EqualError(t, err, "gaas: invalid input: command: must not be empty; gpu_type: must not be empty; estimated_hours: must be greater than 0")

	// The library names its inputs in its own words; the header that
	// carries the key over HTTP is the server's business.
	err = gaas.SubmitRequest{Command: "x", GPUType: "A100", EstimatedHours: 1, IdempotencyKey: "a\nb"}.Validate()
	assert.EqualError(t, err, "gaas: invalid input: idempotency_key: must hold only printable ASCII characters")
}

// A job asks for 1 to MaxGPUsPerJob GPUs; 0 is the default, one.
func TestSubmitRequestGPUCount(t *testing.T) {
	req := gaas.SubmitRequest{Command: "x", GPUType: "A100", EstimatedHours: gaas.Hour}
	for _, n := range []int{0, 1, 8, gaas.MaxGPUsPerJob} {
		req.GPUCount = n
		assert.NoError(t, req.Validate(), "%d GPUs", n)
	}
	for _, n := range []int{-1, gaas.MaxGPUsPerJob + 1, 1 << 40} {
		req.GPUCount = n
		assert.EqualError(t, req.Validate(), "gaas: invalid input: gpu_count: must be between 1 and 65536", "%d GPUs", n)
	}
}

func TestLedgerKinds(t *testing.T) {
	kinds := gaas.LedgerKinds()
	assert.ElementsMatch(t, []gaas.LedgerKind{
		gaas.LedgerGrant, gaas.LedgerSet, gaas.LedgerCharge, gaas.LedgerRefund, gaas.LedgerExpire, gaas.LedgerRevoke, gaas.LedgerTransfer,
	}, kinds)
	seen := map[gaas.LedgerKind]bool{}
	for _, k := range kinds {
		assert.False(t, seen[k], "%s twice", k)
		assert.NotEmpty(t, k)
		seen[k] = true
	}
}

// The domain has no wire format: amounts and validation errors carry no
// JSON of their own, so that a transport cannot inherit one by accident.
func TestNoWireFormat(t *testing.T) {
	for _, v := range []any{gaas.Hours(0), gaas.Credits(0), gaas.Rate(0)} {
		_, marshals := v.(json.Marshaler)
		_, unmarshals := reflect.New(reflect.TypeOf(v)).Interface().(json.Unmarshaler)
		assert.False(t, marshals || unmarshals, "%T has JSON methods", v)
	}
	for f := range reflect.TypeFor[gaas.FieldError]().Fields() {
		assert.Empty(t, f.Tag, "FieldError.%s has a tag", f.Name)
	}
}

func ExampleJobStatus_CanMove() {
	fmt.Println(gaas.StatusPending.CanMove(gaas.StatusApproved))
	fmt.Println(gaas.StatusRunning.CanMove(gaas.StatusApproved))
	fmt.Println(gaas.StatusCompleted.Final())
	// Output:
	// true
	// false
	// true
}
