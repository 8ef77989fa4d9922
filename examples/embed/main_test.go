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
	assert.Equal(t, `alice registered with 10 credits
allocation 3: 40 credits for [H100] until 2026-02-04
alice logged in with 50 credits
job 1 submitted: 4 hours on 2 H100 at 2.5 = 20 credits, drawn [{3 20}]
job 2 submitted: 3 hours on 1 A100 at 1 = 3 credits, drawn [{2 3}]
job 1 COMPLETED after 1.5 hours
balance of alice: 39.5 credits
balance of alice: 7 credits
refused: it costs 10 credits, 7 left for H100
ledger (allocation, kind, delta -> the allocation's remaining, the balance):
  2 grant      10 ->    10    10  default quota
  3 grant      40 ->    40    50  H100 grant for January
  3 charge    -20 ->    20    30  job 1 submitted
  2 charge     -3 ->     7    27  job 2 submitted
  3 refund   12.5 ->  32.5  39.5  job 1 completed
job 3 submitted: 3 hours on 1 A100 at 1 = 3 credits, drawn [{5 3}]
balance of alice: 7 credits
alice in project qlab: the project holds 97 credits, 3 spent, 2 left under the limit
refused by the member limit of project qlab: it costs 3 credits, 2 left
`, out.String())
}
