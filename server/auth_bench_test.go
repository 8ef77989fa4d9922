package server_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gaas-io/gaas/authn"
	"github.com/gaas-io/gaas/gaas"
	"github.com/gaas-io/gaas/server"
	"github.com/gaas-io/gaas/store"
)

// BenchmarkAuthenticatedSubmit measures POST /jobs over HTTP from 32
// users in parallel, on a SQLite file, with the revocation check trusting
// what it read of a user for a second (bound=1s, the default) and reading
// the store on every request (bound=0).
//
//	go test ./server -run '^$' -bench AuthenticatedSubmit -benchtime 3s -count 3
func BenchmarkAuthenticatedSubmit(b *testing.B) {
	for _, tc := range []struct {
		name  string
		bound time.Duration
	}{{"bound=1s", authn.DefaultRevocationBound}, {"bound=0", 0}} {
		b.Run(tc.name, func(b *testing.B) { benchAuthenticatedSubmit(b, tc.bound) })
	}
}

func benchAuthenticatedSubmit(b *testing.B, bound time.Duration) {
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(b.TempDir(), "gaas.db"), store.Options{DefaultQuota: gaas.MaxCredits})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	tokens, _ := authn.NewTokens(signingKey, time.Hour, nil)
	auth := authn.NewAuthenticator(db.Accounts, authn.Hasher{Iterations: 1000}, tokens)
	auth.SetRevocationBound(bound)
	srv := httptest.NewServer(server.NewServer(slog.New(slog.NewJSONHandler(io.Discard, nil)), server.Config{}, servicesOf(auth, db)))
	defer srv.Close()
	var issued []string
	for i := range 32 {
		if _, err := auth.Register(ctx, gaas.RegisterRequest{Username: fmt.Sprintf("user%d", i), Password: "correct horse"}); err != nil {
			b.Fatal(err)
		}
		tok, err := auth.Login(ctx, gaas.LoginRequest{Username: fmt.Sprintf("user%d", i), Password: "correct horse"})
		if err != nil {
			b.Fatal(err)
		}
		issued = append(issued, tok.AccessToken)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	var next atomic.Int64
	b.SetParallelism(16) // 32 clients on 2 processors
	b.ResetTimer()
	cpu := cpuTime()
	b.RunParallel(func(pb *testing.PB) {
		tok := issued[int(next.Add(1))%len(issued)]
		for pb.Next() {
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/jobs", strings.NewReader(jobBody))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+tok)
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "submits/s")
	// The processor time of the whole process (server and clients) per
	// request: on a shared machine it varies far less than the wall time.
	b.ReportMetric(float64((cpuTime()-cpu).Microseconds())/float64(b.N), "cpu-µs/op")
}

// cpuTime is the processor time this process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
