package authn_test

import (
	"context"
	"testing"

	"github.com/gaas-io/gaas/authn"
)

// BenchmarkLogin measures the price of a login at the default work factor,
// and shows that an unknown username costs the same as a wrong password.
func BenchmarkLogin(b *testing.B) {
	ctx := context.Background()
	a, _, _ := newAuthenticator(b, authn.DefaultIterations)
	if _, err := a.Register(ctx, "alice", "correct horse battery staple"); err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct{ name, user, password string }{
		{"success", "alice", "correct horse battery staple"},
		{"wrong_password", "alice", "wrong horse battery staple"},
		{"unknown_user", "nobody", "correct horse battery staple"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				a.Login(ctx, tc.user, tc.password)
			}
		})
	}
}

func BenchmarkVerifyToken(b *testing.B) {
	tokens, err := authn.NewTokens(testKey, 0, nil)
	if err != nil {
		b.Fatal(err)
	}
	tok, err := tokens.Issue(testUser)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tokens.Verify(tok.AccessToken); err != nil {
			b.Fatal(err)
		}
	}
}
