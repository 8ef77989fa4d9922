package server_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gaas-io/gaas/authn"
	"github.com/gaas-io/gaas/gaas"
	"github.com/gaas-io/gaas/server"
	"github.com/gaas-io/gaas/store"
)

// BenchmarkSubmitDuringLoginFlood measures POST /jobs, one request at a
// time, while 64 connections log in as fast as they can with the real work
// factor (600,000 rounds), with the hashing bounded (the default: half the
// processors) and unbounded. Rate limits are off, so that every login hashes.
//
//	go test ./server -run '^$' -bench SubmitDuringLoginFlood -benchtime 100x
func BenchmarkSubmitDuringLoginFlood(b *testing.B) {
	for _, slots := range []int{0, 64} {
		name := "hash_slots=default"
		if slots > 0 {
			name = "hash_slots=64"
		}
		b.Run(name, func(b *testing.B) { benchFlood(b, slots) })
	}
}

func benchFlood(b *testing.B, slots int) {
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(b.TempDir(), "gaas.db"), store.Options{DefaultQuota: gaas.MaxCredits})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	tokens, _ := authn.NewTokens(signingKey, 0, nil)
	auth := authn.NewAuthenticator(db.Accounts, authn.Hasher{}, tokens)
	if _, err := auth.Register(ctx, gaas.RegisterRequest{Username: "alice", Password: "correct horse"}); err != nil {
		b.Fatal(err)
	}
	// Logins wait for a slot as long as their client does, as they did
	// before waits had a deadline, so that the figures compare.
	cfg := server.Config{LoginsPerUser: -1, LoginsPerAddress: -1, HashSlots: slots, HashWait: time.Hour}
	srv := httptest.NewServer(server.NewServer(slog.New(slog.NewJSONHandler(io.Discard, nil)), cfg, servicesOf(auth, db)))
	defer srv.Close()
	tok, err := auth.Login(ctx, gaas.LoginRequest{Username: "alice", Password: "correct horse"})
	if err != nil {
		b.Fatal(err)
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var logins int64
	other := map[int]int{}
	var mu sync.Mutex
	for range 64 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := http.Post(srv.URL+"/login", "application/json", strings.NewReader(`{"username": "alice", "password": "correct horse"}`))
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					mu.Lock()
					if resp.StatusCode == http.StatusOK {
						logins++
					} else {
						other[resp.StatusCode]++
					}
					mu.Unlock()
				}
			}
		})
	}
	time.Sleep(500 * time.Millisecond) // let the flood build up

	mu.Lock()
	loginsBefore := logins
	mu.Unlock()
	latencies := make([]time.Duration, 0, b.N)
	start := time.Now()
	for b.Loop() {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/jobs", strings.NewReader(jobBody))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		t0 := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			b.Fatalf("status %d", resp.StatusCode)
		}
		latencies = append(latencies, time.Since(t0))
	}
	elapsed := time.Since(start)
	mu.Lock()
	served := logins - loginsBefore // the logins answered while submissions ran
	mu.Unlock()
	close(stop)
	wg.Wait()
	if len(other) > 0 {
		b.Fatalf("logins answered %v", other)
	}
	slices.Sort(latencies)
	b.ReportMetric(float64(latencies[len(latencies)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(latencies[len(latencies)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(len(latencies))/elapsed.Seconds(), "submits/s")
	b.ReportMetric(float64(served)/elapsed.Seconds(), "logins/s")
}
