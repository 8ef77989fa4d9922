package main

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRun(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), &out))
	assert.Equal(t, `alice logged in with 10 hours
job 1 submitted: 3 hours, PENDING
job 2 submitted: 3 hours, PENDING
job 3 submitted: 3 hours, PENDING
job 4 refused: asked for 3 hours, 1 left
job 1 REJECTED by root
balance of alice: 4 hours
ledger:
  grant      10 ->    10  default quota
  charge     -3 ->     7  job 1 submitted
  charge     -3 ->     4  job 2 submitted
  charge     -3 ->     1  job 3 submitted
  refund      3 ->     4  job 1 rejected
`, out.String())
}
