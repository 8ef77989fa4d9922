package server

import (
	"context"
	"errors"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gaas-io/gaas/gaas"
	"github.com/gaas-io/gaas/server/portal"
)

// Config tunes the server. The zero value is the default.
type Config struct {
	// LoginsPerUser limits failed logins a minute for one username (in any
	// letter case) from one client address, and LoginsPerAddress failed
	// logins a minute from one address, whatever the usernames; each may
	// burst to its whole minute at once. Successful logins are not counted,
	// so a lab behind one address can log in as often as it likes, and an
	// attacker at one address cannot lock the owner out at another.
	// 0 means 10 and 30; a negative value means no limit.
	//
	// One username also takes at most ten times LoginsPerUser failures a
	// minute from all addresses together, which bounds a guesser spread
	// over many addresses. Past that, only an address without a failure of
	// its own for that username in the last minute may try, so the owner
	// still can.
	LoginsPerUser, LoginsPerAddress int

	// RegistrationsPerAddress limits the accounts that POST /register makes
	// an hour for one client address; it may burst to its whole hour at
	// once. 0 means 10; a negative value means no limit.
	RegistrationsPerAddress int

	// RegistrationClosed refuses POST /register (403): accounts are made
	// only by admins, through POST /users.
	RegistrationClosed bool

	// HashSlots bounds how many requests hash a password at once (logins
	// and registrations), so that a flood of them cannot take every core
	// from the requests of users already logged in. Logins go first, and
	// registrations may hold at most half of the slots. 0 means half the
	// processors, at least one.
	HashSlots int

	// HashWait is how long a login or registration waits for a slot; past
	// it, 503 with Retry-After. 0 means 5 seconds.
	HashWait time.Duration

	// RequestsPerUser bounds the requests one authenticated user may have
	// in flight at once, API requests and portal pages together; past it,
	// 429 with Retry-After. 0 means 16; a negative value means no limit.
	RequestsPerUser int

	// Metrics, when set, counts requests, logins and (as the store's
	// observer) what the store commits.
	Metrics *Metrics

	// ServeMetrics answers GET /metrics with Metrics on this handler too.
	// Leave it false to serve them only on a listener of their own.
	ServeMetrics bool

	// BasePath is the path prefix under which clients reach the API, such
	// as "/gpu" behind a proxy that serves it at /gpu/: GET /openapi.json
	// then names it in the document's servers and in the login URL. When
	// empty, a request's X-Forwarded-Prefix header, when it is a clean
	// path, is the prefix for that request's document.
	BasePath string

	// SessionTTL is how long a sign-in to the portal lasts; 0 means
	// portal.DefaultSessionTTL.
	SessionTTL time.Duration

	// SecureCookies marks the portal's cookies Secure on every request,
	// for a server behind a proxy that terminates TLS; they are Secure
	// anyway on a request that came over TLS.
	SecureCookies bool
}

func (c Config) withDefaults(procs int) Config {
	for _, d := range []struct {
		v   *int
		def int
	}{{&c.LoginsPerUser, 10}, {&c.LoginsPerAddress, 30}, {&c.RegistrationsPerAddress, 10}, {&c.RequestsPerUser, 16}} {
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if c.HashSlots <= 0 {
		c.HashSlots = max(1, procs/2)
	}
	if c.HashWait <= 0 {
		c.HashWait = 5 * time.Second
	}
	return c
}

// limiters holds one token bucket per key, and forgets keys left idle.
// Tokens are spent by take and may be given back, so that a bucket can
// count only the attempts that turn out to fail.
type limiters struct {
	perSecond, burst float64

	mu      sync.Mutex
	buckets map[string]*bucket
	sweep   time.Time
}

type bucket struct {
	tokens float64
	seen   time.Time // when tokens was last brought up to date
	spent  time.Time // when a token was last taken and not given back
}

// newLimiters allows n takes a period for each key; nil (no limit) for a
// negative n.
func newLimiters(n int, period time.Duration) *limiters {
	if n < 0 {
		return nil
	}
	return &limiters{perSecond: float64(n) / period.Seconds(), burst: float64(n), buckets: map[string]*bucket{}}
}

// get returns key's bucket brought up to now. It runs with l.mu held.
func (l *limiters) get(key string, now time.Time) *bucket {
	if now.Sub(l.sweep) > time.Minute {
		// A bucket that has filled up again, and spent nothing for a
		// minute, is as good as a new one: forgetting it changes nothing,
		// and keeps the map small.
		for k, b := range l.buckets {
			if b.tokens+now.Sub(b.seen).Seconds()*l.perSecond >= l.burst && now.Sub(b.spent) > time.Minute {
				delete(l.buckets, k)
			}
		}
		l.sweep = now
	}
	b, ok := l.buckets[key]
	if !ok {
		b = &bucket{tokens: l.burst, seen: now}
		l.buckets[key] = b
	}
	if now.After(b.seen) {
		b.tokens = min(l.burst, b.tokens+now.Sub(b.seen).Seconds()*l.perSecond)
		b.seen = now
	}
	return b
}

// take spends one token of key's bucket, or says how long until one is there.
func (l *limiters) take(key string, now time.Time) (ok bool, wait time.Duration) {
	if l == nil {
		return true, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.get(key, now)
	if b.tokens < 1 {
		return false, time.Duration((1 - b.tokens) / l.perSecond * float64(time.Second))
	}
	b.tokens--
	b.spent = now
	return true, 0
}

// give returns a token that take spent.
func (l *limiters) give(key string, now time.Time) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.get(key, now)
	b.tokens = min(l.burst, b.tokens+1)
	b.spent = time.Time{}
}

// spentSince reports whether a token of key's bucket was taken, and not
// given back, after t.
func (l *limiters) spentSince(key string, t time.Time) bool {
	if l == nil {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[key]
	return ok && b.spent.After(t)
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
	return strconv.Itoa(max(1, int(math.Ceil(d.Seconds()))))
}

// tooMany answers 429 with Retry-After.
func tooMany(w http.ResponseWriter, r *http.Request, wait time.Duration, detail string) {
	w.Header().Set("Retry-After", retryAfter(wait))
	writeProblem(w, r, problem{Type: "urn:gaas:problem:rate-limited", Title: "Too Many Requests",
		Status: http.StatusTooManyRequests, Detail: detail})
}

// globalFailures is how many times LoginsPerUser one username may fail a
// minute from all addresses together.
const globalFailures = 10

// loginGuard limits failed logins by client address, by username at one
// address, and by username everywhere.
type loginGuard struct {
	metrics                        *Metrics
	byAddr, byUserAddr, byUserOnly *limiters
}

func newLoginGuard(cfg Config) loginGuard {
	global := -1
	if cfg.LoginsPerUser >= 0 {
		global = globalFailures * cfg.LoginsPerUser
	}
	return loginGuard{metrics: cfg.Metrics, byAddr: newLimiters(cfg.LoginsPerAddress, time.Minute),
		byUserAddr: newLimiters(cfg.LoginsPerUser, time.Minute), byUserOnly: newLimiters(global, time.Minute)}
}

// loginAttempt is a login that loginGuard let through, counted as a
// failure until refund says otherwise.
type loginAttempt struct {
	g                    loginGuard
	addr, userAddr, user string
	tookUser             bool
}

// refund gives back what the attempt was counted: a login that succeeds,
// or could not be checked, is not a failure.
func (a loginAttempt) refund() {
	now := time.Now()
	a.g.byAddr.give(a.addr, now)
	a.g.byUserAddr.give(a.userAddr, now)
	if a.tookUser {
		a.g.byUserOnly.give(a.user, now)
	}
}

// admit counts the attempt as a failure of r's address and of username,
// or answers 429 with Retry-After and returns false. It runs before any
// password is hashed, so refused attempts cost next to nothing; counting
// first, and giving back on success, keeps concurrent attempts from all
// passing a check that each of them would fail.
func (g loginGuard) admit(w http.ResponseWriter, r *http.Request, username string) (loginAttempt, bool) {
	a, by, wait, ok := g.take(r, username)
	if !ok {
		return a, g.refuse(w, r, by, wait)
	}
	return a, true
}

// take is admit without the answer: when the limits refuse, it says by
// which ("address" or "username") and for how long, and counts the
// refusal in the metrics.
func (g loginGuard) take(r *http.Request, username string) (a loginAttempt, by string, wait time.Duration, ok bool) {
	now := time.Now()
	user := strings.ToLower(username)
	a = loginAttempt{g: g, addr: clientAddress(r), user: user}
	a.userAddr = user + " " + a.addr // a username holds no space
	clean := !g.byUserAddr.spentSince(a.userAddr, now.Add(-time.Minute))
	if ok, wait = g.byAddr.take(a.addr, now); !ok {
		g.metrics.loginLimited("address")
		return a, "address", wait, false
	}
	if ok, wait = g.byUserAddr.take(a.userAddr, now); !ok {
		g.byAddr.give(a.addr, now)
		g.metrics.loginLimited("username")
		return a, "username", wait, false
	}
	a.tookUser, wait = g.byUserOnly.take(user, now)
	if !a.tookUser && !clean {
		g.byAddr.give(a.addr, now)
		g.byUserAddr.give(a.userAddr, now)
		g.metrics.loginLimited("username")
		return a, "username", wait, false
	}
	return a, "", 0, true
}

// passwordLogin is the one way a password is tried for a login, by POST
// /login and by the portal's sign-in: check runs counted as a failure of
// r's address and of username (given back unless it returns
// gaas.ErrUnauthorized) and holding a hash slot. When the limits refuse,
// or no slot frees up in time, check does not run and the error is a
// *portal.Refused.
func (g loginGuard) passwordLogin(slots *hashSlots, metrics *Metrics) portal.SignInGate {
	return func(r *http.Request, username string, check func() error) error {
		attempt, _, wait, ok := g.take(r, username)
		if !ok {
			return &portal.Refused{RetryAfter: wait}
		}
		if !slots.acquire(r.Context(), forLogin) {
			attempt.refund()
			return &portal.Refused{Busy: true, RetryAfter: time.Second}
		}
		err := func() error {
			defer slots.release(forLogin)
			return check()
		}()
		if errors.Is(err, gaas.ErrUnauthorized) {
			metrics.loginFailed()
		} else {
			attempt.refund() // only failures are counted
		}
		return err
	}
}

// writeRefused answers a login that passwordLogin did not try: 429 when
// the limits refused it, 503 when no hash slot freed up (or nothing, to a
// client that has gone), as hashSlots.run does.
func writeRefused(w http.ResponseWriter, r *http.Request, refused *portal.Refused) {
	if !refused.Busy {
		tooMany(w, r, refused.RetryAfter, "Too many failed login attempts; try again in "+retryAfter(refused.RetryAfter)+" seconds.")
		return
	}
	if r.Context().Err() == nil {
		writeBusy(w, r)
	}
}

func (g loginGuard) refuse(w http.ResponseWriter, r *http.Request, by string, wait time.Duration) bool {
	tooMany(w, r, wait, "Too many failed login attempts; try again in "+retryAfter(wait)+" seconds.")
	return false
}

// Who waits for a hash slot: logins go before registrations.
const (
	forLogin = iota
	forRegistration
)

// hashSlots lets a bounded number of password hashes run at once. Waiting
// logins get a free slot before waiting registrations, and registrations
// hold at most half of the slots, so a flood of registrations cannot keep
// users from logging in.
type hashSlots struct {
	wait time.Duration

	mu            sync.Mutex
	free          int
	regs, maxRegs int
	queue         [2][]chan struct{} // by forLogin, forRegistration
}

func newHashSlots(n int, wait time.Duration) *hashSlots {
	return &hashSlots{wait: wait, free: n, maxRegs: max(1, n/2)}
}

// grant hands free slots to waiters, logins first. It runs with s.mu held.
func (s *hashSlots) grant() {
	for s.free > 0 {
		switch {
		case len(s.queue[forLogin]) > 0:
			close(s.queue[forLogin][0])
			s.queue[forLogin] = s.queue[forLogin][1:]
		case len(s.queue[forRegistration]) > 0 && s.regs < s.maxRegs:
			close(s.queue[forRegistration][0])
			s.queue[forRegistration] = s.queue[forRegistration][1:]
			s.regs++
		default:
			return
		}
		s.free--
	}
}

// acquire waits for a slot up to s.wait, or until ctx is done.
func (s *hashSlots) acquire(ctx context.Context, who int) bool {
	s.mu.Lock()
	ch := make(chan struct{})
	s.queue[who] = append(s.queue[who], ch)
	s.grant()
	s.mu.Unlock()
	timer := time.NewTimer(s.wait)
	defer timer.Stop()
	select {
	case <-ch:
		return true
	case <-timer.C:
	case <-ctx.Done():
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-ch: // granted as the wait ended: keep it
		return true
	default:
	}
	q := s.queue[who]
	for i, c := range q {
		if c == ch {
			s.queue[who] = append(q[:i:i], q[i+1:]...)
			break
		}
	}
	return false
}

func (s *hashSlots) release(who int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.free++
	if who == forRegistration {
		s.regs--
	}
	s.grant()
}

// run calls hash holding a slot. When none frees up in time it answers 503
// with Retry-After (or nothing, to a client that has gone) and returns false.
func (s *hashSlots) run(w http.ResponseWriter, r *http.Request, who int, hash func()) bool {
	if !s.acquire(r.Context(), who) {
		if r.Context().Err() == nil {
			writeBusy(w, r)
		}
		return false
	}
	defer s.release(who)
	hash()
	return true
}

// writeBusy answers 503: no hash slot freed up in time.
func writeBusy(w http.ResponseWriter, r *http.Request) {
	writeProblem(w, r, problem{Type: "urn:gaas:problem:unavailable", Title: "Service Unavailable",
		Status: http.StatusServiceUnavailable,
		Detail: "Too many passwords are being checked just now; nothing was changed. Try again shortly."})
}

// inFlight bounds the requests each authenticated user has in flight.
type inFlight struct {
	max int

	mu sync.Mutex
	n  map[int64]int
}

func newInFlight(n int) *inFlight {
	if n < 0 {
		return nil
	}
	return &inFlight{max: n, n: map[int64]int{}}
}

// wrap admits a request of the caller only while they have fewer than max
// in flight; others get 429. It runs behind authenticate.
func (f *inFlight) wrap(next http.Handler) http.Handler {
	if f == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		done, ok := f.admit(callerID(r))
		if !ok {
			tooMany(w, r, time.Second, "You have "+strconv.Itoa(f.max)+" requests in flight already; wait for one to finish.")
			return
		}
		defer done()
		next.ServeHTTP(w, r)
	})
}

// admit counts a request of user id in flight, unless they have max
// already; done ends it. It is the portal's limit too (portal.Services.
// Admit): a user's API requests and pages are one count. A nil f admits
// everyone.
func (f *inFlight) admit(id int64) (done func(), ok bool) {
	if f == nil {
		return func() {}, true
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n[id] >= f.max {
		return nil, false
	}
	f.n[id]++
	return func() {
		f.mu.Lock()
		if f.n[id]--; f.n[id] == 0 {
			delete(f.n, id)
		}
		f.mu.Unlock()
	}, true
}
