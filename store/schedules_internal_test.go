package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/gaas"
)

// deferGrant counts a failure only of the schedule as GrantDue read it: a
// run that failed while another gave the period (room was made, another
// replica came first) puts off nothing, nor does a failure another run
// counted already.
func TestDeferGrantOnlyAsRead(t *testing.T) {
	ctx := context.Background()
	at := time.Date(2026, 1, 1, 2, 0, 0, 0, time.UTC)
	db, err := Open(ctx, ":memory:", Options{Now: func() time.Time { return at }})
	require.NoError(t, err)
	defer db.Close()
	admin, err := db.Accounts.EnsureAdmin(ctx, "root", "unused-hash", false)
	require.NoError(t, err)
	u, err := db.Accounts.CreateUser(ctx, "full", "unused-hash", gaas.RoleUser)
	require.NoError(t, err)
	s, err := db.Schedules.CreateSchedule(ctx, admin.ID, gaas.CreateScheduleRequest{
		UserID: u.ID, Amount: gaas.Credit, Period: gaas.PeriodDaily, StartsAt: at.Add(-time.Hour), GrantCurrent: true,
	})
	require.NoError(t, err)
	read := func() (period int64, failures int) {
		t.Helper()
		var row struct {
			Period   int64 `bun:"next_period"`
			Failures int   `bun:"failures"`
		}
		require.NoError(t, query(ctx, db.r, &row, "SELECT next_period, failures FROM schedules WHERE id = ?", s.ID))
		return row.Period, row.Failures
	}
	period, failures := read()
	failed := errors.New("the account is full")

	// The period moved on since it was read: nothing is counted.
	err = deferGrant(ctx, db, s.ID, period-1, failures, at, failed)
	assert.Equal(t, failed, err, "no retry time is told")
	_, got := read()
	assert.Equal(t, 0, got)

	// As read: counted once; a second run that read the same counts nothing.
	err = deferGrant(ctx, db, s.ID, period, failures, at, failed)
	assert.ErrorContains(t, err, "tried again from 2026-01-01T02:01:00Z")
	assert.ErrorIs(t, err, failed)
	err = deferGrant(ctx, db, s.ID, period, failures, at, failed)
	assert.Equal(t, failed, err)
	_, got = read()
	assert.Equal(t, 1, got)
}
