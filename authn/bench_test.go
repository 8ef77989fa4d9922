package authn_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gaas-io/gaas/authn"
	"github.com/gaas-io/gaas/gaas"
	"github.com/gaas-io/gaas/store"
	"github.com/gaas-io/gaas/store/storetest"
)

// BenchmarkLogin measures the price of a login at the default work factor,
// and shows that an unknown username costs the same as a wrong password.
func BenchmarkLogin(b *testing.B) {
	ctx := context.Background()
	a, _, _ := newAuthenticator(b, authn.DefaultIterations)
	if _, err := a.Register(ctx, gaas.RegisterRequest{Username: "alice", Password: "correct horse battery staple"}); err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct{ name, user, password string }{
		{"success", "alice", "correct horse battery staple"},
		{"wrong_password", "alice", "wrong horse battery staple"},
		{"unknown_user", "nobody", "correct horse battery staple"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				_, err := a.Login(ctx, gaas.LoginRequest{Username: tc.user, Password: tc.password})
				if (err == nil) != (tc.name == "success") {
					b.Fatalf("login of %s: %v", tc.user, err)
				}
				if err != nil && !errors.Is(err, gaas.ErrUnauthorized) {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkVerifyToken measures Tokens.Verify two ways: signature is the
// whole verification of a token not seen before (parse, HS256, claims);
// cached is a token verified before, which the verified-token cache
// answers after checking its expiry.
func BenchmarkVerifyToken(b *testing.B) {
	b.Run("signature", func(b *testing.B) {
		tokens, err := authn.NewTokens(testKey, 0, nil)
		if err != nil {
			b.Fatal(err)
		}
		// b.N distinct tokens, one per user id, each verified once: none
		// can be a hit of the cache.
		issued := make([]string, b.N)
		for i := range issued {
			u := testUser
			u.ID = int64(i + 1)
			tok, err := tokens.Issue(u)
			if err != nil {
				b.Fatal(err)
			}
			issued[i] = tok.AccessToken
		}
		b.ReportAllocs()
		b.ResetTimer()
		for _, tok := range issued {
			if _, err := tokens.Verify(tok); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cached", func(b *testing.B) {
		tokens, err := authn.NewTokens(testKey, 0, nil)
		if err != nil {
			b.Fatal(err)
		}
		tok, err := tokens.Issue(testUser)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := tokens.Verify(tok.AccessToken); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := tokens.Verify(tok.AccessToken); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkIdentify measures the check of a request's token, as the HTTP
// middleware makes it, for 32 users taking turns: verify_only is the
// verification alone (the cached signature check, which is all Identify
// did before tokens could be revoked); bound=1s trusts what it read of a
// user's standing for a second (the default); bound=0 reads the store on
// every call. SQLite is a file in WAL mode; PostgreSQL runs when
// GAAS_TEST_POSTGRES is set.
//
//	go test ./authn/ -run '^$' -bench Identify -count 5
func BenchmarkIdentify(b *testing.B) {
	dsns := map[string]string{"sqlite": filepath.Join(b.TempDir(), "gaas.db")}
	if os.Getenv(storetest.PostgresEnv) != "" {
		dsns["postgres"] = storetest.PostgresDSN(b)
	}
	for _, name := range []string{"sqlite", "postgres"} {
		dsn, ok := dsns[name]
		if !ok {
			continue
		}
		ctx := context.Background()
		db, err := store.Open(ctx, dsn, store.Options{})
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		tokens, err := authn.NewTokens(testKey, time.Hour, nil)
		if err != nil {
			b.Fatal(err)
		}
		a := authn.NewAuthenticator(db.Accounts, authn.Hasher{Iterations: 1000}, tokens)
		var issued []string
		for i := range 32 {
			u, err := a.Register(ctx, gaas.RegisterRequest{Username: fmt.Sprintf("user%d", i), Password: "correct horse"})
			if err != nil {
				b.Fatal(err)
			}
			tok, err := tokens.Issue(u)
			if err != nil {
				b.Fatal(err)
			}
			issued = append(issued, tok.AccessToken)
		}
		for _, tc := range []struct {
			name     string
			identify func(string) error
		}{
			{"verify_only", func(tok string) error { _, err := tokens.Verify(tok); return err }},
			{"bound=1s", func(tok string) error { _, err := a.Identify(ctx, tok); return err }},
			{"bound=0", func(tok string) error { _, err := a.Identify(ctx, tok); return err }},
		} {
			bound := authn.DefaultRevocationBound
			if tc.name == "bound=0" {
				bound = 0
			}
			a.SetRevocationBound(bound)
			b.Run(name+"/"+tc.name+"/serial", func(b *testing.B) {
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					if err := tc.identify(issued[i%len(issued)]); err != nil {
						b.Fatal(err)
					}
					i++
				}
			})
			b.Run(name+"/"+tc.name+"/parallel", func(b *testing.B) {
				b.ReportAllocs()
				var next atomic.Int64
				b.RunParallel(func(pb *testing.PB) {
					i := int(next.Add(1))
					for pb.Next() {
						if err := tc.identify(issued[i%len(issued)]); err != nil {
							b.Error(err)
							return
						}
						i++
					}
				})
			})
		}
	}
}
