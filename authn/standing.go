package authn

import (
	"fmt"
	"sync"
	"time"

	"github.com/gaas-io/gaas/gaas"
)

// standing is what a token check needs to know of its user: whether the
// account still exists, is enabled, and the generation of its tokens.
type standing struct {
	generation int64
	disabled   bool
	gone       bool
	read       time.Time // when the read that gave it began
}

func standingOf(u gaas.User) standing {
	return standing{generation: u.TokenGeneration, disabled: u.Disabled}
}

// errRevoked is the one error of a token that verifies but was revoked.
var errRevoked = fmt.Errorf("authn: token revoked: %w", gaas.ErrUnauthorized)

// admits reports, as an error, whether a token with claims c is still good
// for a user of this standing. A token from a later generation than the
// user's (a database restored from a backup) is refused too.
func (s standing) admits(c Claims) error {
	switch {
	case s.gone:
		return fmt.Errorf("authn: token of user %d, who no longer exists: %w", c.UserID, gaas.ErrUnauthorized)
	case s.disabled:
		return fmt.Errorf("%w: user %d is disabled", errRevoked, c.UserID)
	case c.Generation != s.generation:
		return fmt.Errorf("%w: user %d's tokens of generation %d were revoked", errRevoked, c.UserID, c.Generation)
	}
	return nil
}

// standings remembers users' standings for at most bound each: it is what
// lets a request check for revocation without a read of the store, and it
// is what bounds how late a revocation made elsewhere is seen. Measured
// (BENCHMARKS.md), a hit costs under a microsecond, about what the
// verified-token cache's look-up costs, while a read of the store on every
// request (bound 0) costs a quarter of a millisecond on SQLite and nearly
// doubled the processor time of a submission over HTTP.
type standings struct {
	bound time.Duration

	mu sync.Mutex
	m  map[int64]standing
}

// maxStandings bounds the users whose standing is remembered.
const maxStandings = 10_000

// get returns id's standing if it was read less than bound before now.
func (s *standings) get(id int64, now time.Time) (standing, bool) {
	if s.bound <= 0 {
		return standing{}, false
	}
	s.mu.Lock()
	st, ok := s.m[id]
	s.mu.Unlock()
	return st, ok && now.Sub(st.read) < s.bound
}

// put remembers id's standing as read at the given time, and returns it.
func (s *standings) put(id int64, st standing, read time.Time) standing {
	st.read = read
	if s.bound <= 0 {
		return st
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.m[id]; ok && old.read.After(read) {
		return st // a later read is already there; keep it
	}
	if len(s.m) >= maxStandings {
		// Forget the stale; if more users than that were seen within the
		// bound, forget half of them too, so that the next scan is far off.
		for k, v := range s.m {
			if read.Sub(v.read) >= s.bound {
				delete(s.m, k)
			}
		}
		for k := range s.m {
			if len(s.m) < maxStandings/2 {
				break
			}
			delete(s.m, k)
		}
	}
	s.m[id] = st
	return st
}

// forget drops what is known of id, so that its next check reads the store.
func (s *standings) forget(id int64) {
	s.mu.Lock()
	delete(s.m, id)
	s.mu.Unlock()
}
