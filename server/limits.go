package server

import (
	"context"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Config tunes the server. The zero value is the default.
type Config struct {
	// LoginsPerUser and LoginsPerAddress limit login attempts a minute, for
	// one username (in any letter case) and for one client address; each
	// may burst to its whole minute at once. 0 means 10 and 30; a negative
	// value means no limit.
	LoginsPerUser, LoginsPerAddress int

	// HashSlots bounds how many requests hash a password at once (logins
	// and registrations), so that a flood of them cannot take every core
	// from the requests of users already logged in. 0 means half the
	// processors, at least one.
	HashSlots int

	// Metrics, when set, counts requests, logins and (as the store's
	// observer) what the store commits.
	Metrics *Metrics

	// ServeMetrics answers GET /metrics with Metrics on this handler too.
	// Leave it false to serve them only on a listener of their own.
	ServeMetrics bool
}

func (c Config) withDefaults(procs int) Config {
	if c.LoginsPerUser == 0 {
		c.LoginsPerUser = 10
	}
	if c.LoginsPerAddress == 0 {
		c.LoginsPerAddress = 30
	}
	if c.HashSlots <= 0 {
		c.HashSlots = max(1, procs/2)
	}
	return c
}

// limiters holds one token bucket per key, and forgets keys left idle.
type limiters struct {
	limit rate.Limit
	burst int

	mu      sync.Mutex
	buckets map[string]*bucket
	sweep   time.Time
}

type bucket struct {
	lim  *rate.Limiter
	seen time.Time
}

func newLimiters(perMinute int) *limiters {
	if perMinute < 0 {
		return nil
	}
	return &limiters{limit: rate.Limit(float64(perMinute) / 60), burst: perMinute, buckets: map[string]*bucket{}}
}

// take spends one token of key's bucket, or says how long until one is there.
func (l *limiters) take(key string, now time.Time) (ok bool, wait time.Duration) {
	if l == nil {
		return true, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.sweep) > time.Minute {
		// A bucket idle for longer than it takes to refill is full again:
		// forgetting it changes nothing, and keeps the map small.
		full := time.Duration(float64(l.burst)/float64(l.limit)*float64(time.Second)) + time.Second
		for k, b := range l.buckets {
			if now.Sub(b.seen) > full {
				delete(l.buckets, k)
			}
		}
		l.sweep = now
	}
	b, found := l.buckets[key]
	if !found {
		b = &bucket{lim: rate.NewLimiter(l.limit, l.burst)}
		l.buckets[key] = b
	}
	b.seen = now
	r := b.lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// clientAddress is the address a request came from, without the port.
func clientAddress(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// retryAfter is the value of a Retry-After header: whole seconds, rounded up.
func retryAfter(d time.Duration) string {
	return strconv.Itoa(int(math.Ceil(d.Seconds())))
}

// loginGuard limits login attempts by client address and by username.
type loginGuard struct {
	metrics        *Metrics
	byUser, byAddr *limiters
}

// admit spends one attempt of r's address and of username, or answers 429
// with Retry-After and returns false. It runs before any password is
// hashed, so refused attempts cost next to nothing.
func (g loginGuard) admit(w http.ResponseWriter, r *http.Request, username string) bool {
	now := time.Now()
	by := "address"
	ok, wait := g.byAddr.take(clientAddress(r), now)
	if ok {
		by = "username"
		ok, wait = g.byUser.take(strings.ToLower(username), now)
	}
	if ok {
		return true
	}
	g.metrics.loginLimited(by)
	w.Header().Set("Retry-After", retryAfter(wait))
	writeProblem(w, r, problem{Type: "urn:gaas:problem:rate-limited", Title: "Too Many Requests",
		Status: http.StatusTooManyRequests,
		Detail: "Too many login attempts; try again in " + retryAfter(wait) + " seconds."})
	return false
}

// hashSlots lets a bounded number of password-hashing requests run at once;
// the others wait their turn, as long as their client does.
type hashSlots chan struct{}

func (s hashSlots) acquire(ctx context.Context) error {
	select {
	case s <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s hashSlots) release() { <-s }

func (s hashSlots) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := s.acquire(r.Context()); err != nil {
			return // the client is gone
		}
		defer s.release()
		next.ServeHTTP(w, r)
	})
}
