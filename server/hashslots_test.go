package server

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// waiting is how many requests wait for a slot, by kind.
func (s *hashSlots) waiting(who int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue[who])
}

// waitFor polls until cond holds; it fails the test after 10 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		require.True(t, time.Now().Before(deadline), "timed out")
		time.Sleep(time.Millisecond)
	}
}

// TestHashSlotsPutLoginsFirst: a freed slot goes to a waiting login before
// a registration that waited longer, registrations hold at most half of
// the slots, and a wait ends at its deadline.
func TestHashSlotsPutLoginsFirst(t *testing.T) {
	ctx := context.Background()
	t.Run("a_waiting_login_goes_first", func(t *testing.T) {
		s := newHashSlots(1, time.Minute)
		require.True(t, s.acquire(ctx, forRegistration))
		order := make(chan int, 2)
		go func() {
			s.acquire(ctx, forRegistration)
			order <- forRegistration
			s.release(forRegistration)
		}()
		waitFor(t, func() bool { return s.waiting(forRegistration) == 1 })
		go func() {
			s.acquire(ctx, forLogin)
			order <- forLogin
			s.release(forLogin)
		}()
		waitFor(t, func() bool { return s.waiting(forLogin) == 1 })
		s.release(forRegistration)
		assert.Equal(t, forLogin, <-order)
		assert.Equal(t, forRegistration, <-order)
	})
	t.Run("registrations_hold_at_most_half", func(t *testing.T) {
		s := newHashSlots(4, 20*time.Millisecond)
		assert.True(t, s.acquire(ctx, forRegistration))
		assert.True(t, s.acquire(ctx, forRegistration))
		assert.False(t, s.acquire(ctx, forRegistration), "a third registration waits, and gives up at the deadline")
		assert.True(t, s.acquire(ctx, forLogin))
		assert.True(t, s.acquire(ctx, forLogin))
		assert.False(t, s.acquire(ctx, forLogin))
		s.release(forRegistration)
		assert.True(t, s.acquire(ctx, forLogin))
		assert.Zero(t, s.waiting(forLogin)+s.waiting(forRegistration), "no one who gave up is left in the queue")
	})
	t.Run("a_client_that_goes_away_stops_waiting", func(t *testing.T) {
		s := newHashSlots(1, time.Minute)
		require.True(t, s.acquire(ctx, forLogin))
		gone, cancel := context.WithCancel(ctx)
		cancel()
		assert.False(t, s.acquire(gone, forLogin))
		s.release(forLogin)
		assert.True(t, s.acquire(ctx, forLogin), "the slot is free again")
	})
}

// TestHashSlotWaitEndsIn503: a request that cannot get a slot in time is
// told so, with Retry-After, and hashes nothing.
func TestHashSlotWaitEndsIn503(t *testing.T) {
	s := newHashSlots(1, 20*time.Millisecond)
	require.True(t, s.acquire(context.Background(), forLogin))
	w := httptest.NewRecorder()
	ran := s.run(w, httptest.NewRequest(http.MethodPost, "/login", nil), forLogin, func() { t.Error("hashed without a slot") })
	assert.False(t, ran)
	assert.Equal(t, http.StatusServiceUnavailable, w.Code)
	assert.Equal(t, "1", w.Header().Get("Retry-After"))
	assert.Equal(t, "application/problem+json", w.Header().Get("Content-Type"))
	assert.Contains(t, w.Body.String(), "Too many passwords are being checked")
}
