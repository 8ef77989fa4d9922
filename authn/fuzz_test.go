package authn

import (
	"strings"
	"testing"
	"time"

	"github.com/gaas-io/gaas/gaas"
)

// FuzzPasslibHash feeds any text to the passlib hash parser and verifier:
// nothing panics, a hash that parses re-encodes to itself, and it verifies
// the password it was made from and no other.
func FuzzPasslibHash(f *testing.F) {
	f.Add("password", "$pbkdf2-sha256$29000$NqbUOqcUgvCek/K.d.6dUw$8.l/XkkY6rbzKFZa1xpoF5V0wzepKDEc8zss4pzTxl0")
	f.Add("shortsalt", "$pbkdf2-sha256$100$$x4l0Yn3UP3GbVzoAsAr3w36n8RdkReB2CtCbqsbKAB8")
	f.Add("x", "$pbkdf2-sha256$1$AA$AA")
	f.Add("", "$pbkdf2-sha256$0$$")
	f.Fuzz(func(t *testing.T, password, hash string) {
		rounds, salt, _, err := parseHash(hash)
		if err != nil || rounds > 5000 {
			return // the slow ones are valid, but too slow to try thousands of times a second
		}
		ok, _, err := Hasher{}.Verify(password, hash)
		if err != nil {
			t.Fatalf("Verify(%q) failed on a hash that parses: %v", hash, err)
		}
		made, err := hashWithSalt(password, salt, rounds)
		if err != nil {
			t.Fatal(err)
		}
		if ok && made != hash {
			t.Fatalf("%q verifies %q, but its canonical form is %q", hash, password, made)
		}
		if ok, _, err := (Hasher{}).Verify(password, made); err != nil || !ok {
			t.Fatalf("a hash made of %q does not verify it: %v", password, err)
		}
		if ok, _, _ := (Hasher{}).Verify(password+"x", made); ok {
			t.Fatalf("a hash of %q verifies %q", password, password+"x")
		}
	})
}

var fuzzKey = []byte("fuzz-signing-key-0123456789abcdef")

// FuzzVerifyToken mutates a valid token: anything but the token itself
// must not verify.
func FuzzVerifyToken(f *testing.F) {
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	tokens, err := NewTokens(fuzzKey, time.Hour, func() time.Time { return now })
	if err != nil {
		f.Fatal(err)
	}
	valid, err := tokens.Issue(gaas.User{ID: 42, Username: "alice", Role: gaas.RoleAdmin})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid.AccessToken)
	f.Add(strings.Replace(valid.AccessToken, "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9", "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0", 1))
	f.Add(valid.AccessToken + "=")
	f.Add("")
	f.Fuzz(func(t *testing.T, token string) {
		c, err := tokens.Verify(token)
		if err == nil && token != valid.AccessToken {
			t.Fatalf("a changed token verified: %q (claims %+v)", token, c)
		}
	})
}
