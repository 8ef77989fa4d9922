package authn_test

import (
	"fmt"
	"time"

	"github.com/gaas-io/gaas/authn"
	"github.com/gaas-io/gaas/gaas"
)

func ExampleHasher() {
	h := authn.Hasher{Iterations: 1000} // production keeps the default, 600,000
	hash, _ := h.Hash("correct horse battery staple")
	ok, rehash, _ := h.Verify("correct horse battery staple", hash)
	fmt.Println(ok, rehash)

	// A hash written by passlib's pbkdf2_sha256 verifies as it is, and asks
	// to be upgraded when its rounds are below the configured ones.
	ok, rehash, _ = h.Verify("password", "$pbkdf2-sha256$29000$NqbUOqcUgvCek/K.d.6dUw$8.l/XkkY6rbzKFZa1xpoF5V0wzepKDEc8zss4pzTxl0")
	fmt.Println(ok, rehash)
	// Output:
	// true false
	// true false
}

func ExampleTokens() {
	key := []byte("a key of at least thirty-two bytes!")
	tokens, _ := authn.NewTokens(key, 30*time.Minute, nil)
	tok, _ := tokens.Issue(gaas.User{ID: 7, Username: "alice", Role: gaas.RoleUser})
	claims, err := tokens.Verify(tok.AccessToken)
	fmt.Println(claims.UserID, claims.Username, err)
	_, err = tokens.Verify(tok.AccessToken + "x")
	fmt.Println(err != nil)
	// Output:
	// 7 alice <nil>
	// true
}
