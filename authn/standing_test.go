package authn

import (
	"testing"
	"time"
)

// The standings stay bounded however many users are seen within the
// bound, and the one just read is kept.
func TestStandingsStayBounded(t *testing.T) {
	s := standings{bound: time.Hour, m: map[int64]standing{}}
	now := time.Now()
	for id := int64(1); id <= 3*maxStandings; id++ {
		s.put(id, standing{generation: id}, now)
		if len(s.m) > maxStandings {
			t.Fatalf("%d standings remembered, at most %d wanted", len(s.m), maxStandings)
		}
		if st, ok := s.get(id, now); !ok || st.generation != id {
			t.Fatalf("the standing of user %d, just read, is not there", id)
		}
	}
	if _, ok := s.get(1, now.Add(time.Hour)); ok {
		t.Fatal("a standing older than the bound is trusted")
	}
}
