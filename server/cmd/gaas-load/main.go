// Command gaas-load drives POST /jobs against a running gaasd and reports
// what it saw: requests a second, latency percentiles, status counts, the
// server's peak memory, and at the end the ledger invariants.
//
//	gaas-load -url http://127.0.0.1:8000 -admin root -admin-password ... \
//	    -users 32 -concurrency 32 -duration 10s -check-db gaas.db
//
// It can also seed a database quickly for scale tests:
//
//	gaas-load -seed-db gaas.db -seed-users 100000 -seed-jobs 1000000
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gaas-io/gaas/store"
	"github.com/gaas-io/gaas/store/storetest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "gaas-load:", err)
		}
		os.Exit(2)
	}
}

type config struct {
	url                  string
	admin, adminPassword string
	users, concurrency   int
	duration             time.Duration
	hours                string
	checkDB              string
	pid                  int
	seedDB               string
	seedUsers, seedJobs  int
	gpuTypes             int
	allocations          int
	gpus                 int
}

// loadTypes are the GPU types the load can put in the catalogue, with
// their rates: a connection's jobs ask for one of them, in turn.
var loadTypes = []struct{ name, rate string }{
	{"A100", "1"}, {"H100", "2.5"}, {"L40S", "0.75"}, {"B200", "4"},
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var c config
	fs := flag.NewFlagSet("gaas-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.url, "url", "http://127.0.0.1:8000", "the gaasd to load; several replicas comma-separated, connections spread over them")
	fs.StringVar(&c.admin, "admin", getenv("GAAS_ADMIN_USERNAME"), "an admin's username, to give the load users hours (env GAAS_ADMIN_USERNAME)")
	fs.StringVar(&c.adminPassword, "admin-password", getenv("GAAS_ADMIN_PASSWORD"), "the admin's password (env GAAS_ADMIN_PASSWORD)")
	fs.IntVar(&c.users, "users", 32, "how many users submit (registered, or logged in if they exist)")
	fs.IntVar(&c.concurrency, "concurrency", 32, "connections sending requests at once")
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "how long to send requests")
	fs.StringVar(&c.hours, "hours", "0.001", "estimated hours of each job")
	fs.StringVar(&c.checkDB, "check-db", "", "after the run, check the ledger invariants of this database (a SQLite path or postgres:// URL)")
	fs.IntVar(&c.pid, "pid", 0, "sample the resident memory of this process (gaasd) during the run")
	fs.StringVar(&c.seedDB, "seed-db", "", "instead of loading, seed this database with -seed-users and -seed-jobs, and exit")
	fs.IntVar(&c.seedUsers, "seed-users", 100_000, "users to seed")
	fs.IntVar(&c.seedJobs, "seed-jobs", 1_000_000, "jobs to seed")
	fs.IntVar(&c.gpuTypes, "gpu-types", 0, fmt.Sprintf("put this many GPU types (at most %d, with different rates) in the catalogue and spread the jobs over them; 0 leaves the catalogue as it is, and jobs ask for \"NVIDIA A100\"", len(loadTypes)))
	fs.IntVar(&c.allocations, "allocations", 1, "allocations each load user holds: the default one, then alternately one scoped to a GPU type and one for every type, each expiring in a year")
	fs.IntVar(&c.gpus, "gpus", 1, "GPUs each job asks for")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if c.seedDB != "" {
		return seed(ctx, c, stdout)
	}
	if c.gpuTypes < 0 || c.gpuTypes > len(loadTypes) || c.allocations < 1 || c.gpus < 1 {
		return fmt.Errorf("-gpu-types must be 0 to %d, -allocations and -gpus at least 1", len(loadTypes))
	}
	if c.admin == "" || c.adminPassword == "" {
		return errors.New("-admin and -admin-password (or GAAS_ADMIN_USERNAME and GAAS_ADMIN_PASSWORD) are needed to give the load users hours")
	}
	return load(ctx, c, stdout)
}

func seed(ctx context.Context, c config, stdout io.Writer) error {
	db, err := store.Open(ctx, c.seedDB, store.Options{})
	if err != nil {
		return err
	}
	defer db.Close()
	start := time.Now()
	if err := storetest.SeedForLoad(ctx, db, c.seedUsers, c.seedJobs); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "seeded %d users and %d jobs into %s in %s\n", c.seedUsers, c.seedJobs, store.RedactDSN(c.seedDB), time.Since(start).Round(time.Millisecond))
	return nil
}

// client is a keep-alive HTTP client sized for the load.
type client struct {
	http *http.Client
	base string
}

func (cl *client) do(ctx context.Context, method, path, token string, body []byte, out any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, method, cl.base+path, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := cl.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if out != nil {
		err = json.NewDecoder(resp.Body).Decode(out)
	} else {
		_, err = io.Copy(io.Discard, resp.Body)
	}
	return resp.StatusCode, err
}

func (cl *client) login(ctx context.Context, user, password string) (string, error) {
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	body, _ := json.Marshal(map[string]string{"username": user, "password": password})
	status, err := cl.do(ctx, "POST", "/login", "", body, &tok)
	if err != nil || status != http.StatusOK {
		return "", fmt.Errorf("log in as %s: status %d: %v", user, status, err)
	}
	return tok.AccessToken, nil
}

// prepare fills the catalogue, creates (or finds) the load users, gives
// them plenty of credits in their allocations, and logs them in. The
// admin creates them, since registration is limited per address (and may
// be closed).
func prepare(ctx context.Context, cl *client, c config) ([]string, error) {
	admin, err := cl.login(ctx, c.admin, c.adminPassword)
	if err != nil {
		return nil, err
	}
	for _, t := range loadTypes[:c.gpuTypes] {
		body := []byte(`{"name": "` + t.name + `", "description": "load", "rate": ` + t.rate + `}`)
		status, err := cl.do(ctx, "POST", "/gpu-types", admin, body, nil)
		if err != nil || (status != http.StatusCreated && status != http.StatusConflict) {
			return nil, fmt.Errorf("add GPU type %s: status %d: %v", t.name, status, err)
		}
	}
	tokens := make([]string, c.users)
	for i := range tokens {
		name, password := fmt.Sprintf("load-%d", i), fmt.Sprintf("load-password-%d", i)
		body, _ := json.Marshal(map[string]string{"username": name, "password": password})
		var u struct {
			ID int64 `json:"id"`
		}
		status, err := cl.do(ctx, "POST", "/users", admin, body, &u)
		if err != nil || (status != http.StatusCreated && status != http.StatusConflict) {
			return nil, fmt.Errorf("create %s: status %d: %v", name, status, err)
		}
		if tokens[i], err = cl.login(ctx, name, password); err != nil {
			return nil, err
		}
		var me struct {
			ID int64 `json:"id"`
		}
		if _, err := cl.do(ctx, "GET", "/me", tokens[i], nil, &me); err != nil {
			return nil, err
		}
		status, err = cl.do(ctx, "PUT", fmt.Sprintf("/users/%d/quota", me.ID), admin, []byte(`{"gpu_hours_quota": 100000000, "reason": "load"}`), nil)
		if err != nil || status != http.StatusOK {
			return nil, fmt.Errorf("give %s hours: status %d: %v", name, status, err)
		}
		expires := time.Now().AddDate(1, 0, 0).UTC().Format(time.RFC3339)
		for a := 1; a < c.allocations; a++ {
			scope := "null"
			if a%2 == 1 && c.gpuTypes > 0 {
				scope = `["` + loadTypes[(i+a/2)%c.gpuTypes].name + `"]`
			}
			body := []byte(`{"amount": 100000000, "gpu_types": ` + scope + `, "expires_at": "` + expires + `", "reason": "load"}`)
			status, err := cl.do(ctx, "POST", fmt.Sprintf("/users/%d/allocations", me.ID), admin, body, nil)
			if err != nil || status != http.StatusCreated {
				return nil, fmt.Errorf("give %s an allocation: status %d: %v", name, status, err)
			}
		}
	}
	return tokens, nil
}

// jobBody is what connection w submits, again and again.
func jobBody(c config, w int) []byte {
	gpuType := "NVIDIA A100"
	if c.gpuTypes > 0 {
		gpuType = loadTypes[w%c.gpuTypes].name
	}
	body := fmt.Appendf(nil, `{"command": "python train.py --epochs 10", "gpu_type": %q, "estimated_hours": %s`, gpuType, c.hours)
	if c.gpus != 1 {
		body = fmt.Appendf(body, `, "gpu_count": %d`, c.gpus)
	}
	return append(body, '}')
}

func load(ctx context.Context, c config, stdout io.Writer) error {
	hc := &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{MaxIdleConns: c.concurrency * 2, MaxIdleConnsPerHost: c.concurrency * 2},
	}
	var clients []*client
	for _, u := range strings.Split(c.url, ",") {
		clients = append(clients, &client{base: strings.TrimRight(strings.TrimSpace(u), "/"), http: hc})
	}
	cl := clients[0]
	tokens, err := prepare(ctx, cl, c)
	if err != nil {
		return err
	}

	var peakRSS atomic.Int64
	runCtx, cancel := context.WithTimeout(ctx, c.duration)
	defer cancel()
	if c.pid != 0 {
		go func() {
			for runCtx.Err() == nil {
				if kb := residentKB(c.pid); kb > peakRSS.Load() {
					peakRSS.Store(kb)
				}
				time.Sleep(100 * time.Millisecond)
			}
		}()
	}
	type result struct {
		latencies []time.Duration
		statuses  map[int]int
		errors    int
	}
	results := make([]result, c.concurrency)
	start := time.Now()
	var wg sync.WaitGroup
	for w := range c.concurrency {
		wg.Go(func() {
			r := &results[w]
			r.statuses = map[int]int{}
			var rc *rawClient
			defer func() {
				if rc != nil {
					rc.conn.Close()
				}
			}()
			for runCtx.Err() == nil {
				t0 := time.Now()
				var status int
				var err error
				if rc == nil {
					rc, err = dialRaw(clients[w%len(clients)].base, tokens[w%len(tokens)], jobBody(c, w))
				}
				if err == nil {
					status, err = rc.roundTrip()
				}
				if runCtx.Err() != nil {
					return // cut off by the end of the run: not counted
				}
				r.latencies = append(r.latencies, time.Since(t0))
				if err != nil {
					r.errors++
					if rc != nil {
						rc.conn.Close()
						rc = nil
					}
					continue
				}
				r.statuses[status]++
				if rc.done {
					rc.conn.Close()
					rc = nil
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)

	var all []time.Duration
	statuses := map[int]int{}
	errs := 0
	for _, r := range results {
		all = append(all, r.latencies...)
		for s, n := range r.statuses {
			statuses[s] += n
		}
		errs += r.errors
	}
	if len(all) == 0 {
		return errors.New("no request completed")
	}
	slices.Sort(all)
	pct := func(p float64) time.Duration { return all[min(len(all)-1, int(float64(len(all))*p))] }
	fmt.Fprintf(stdout, "POST /jobs: %d requests in %s, %d connections to %d server(s): %.0f requests/s\n",
		len(all), elapsed.Round(time.Millisecond), c.concurrency, len(clients), float64(len(all))/elapsed.Seconds())
	fmt.Fprintf(stdout, "latency: p50 %s  p90 %s  p99 %s  max %s\n", ms(pct(0.50)), ms(pct(0.90)), ms(pct(0.99)), ms(all[len(all)-1]))
	codes := make([]int, 0, len(statuses))
	for s := range statuses {
		codes = append(codes, s)
	}
	slices.Sort(codes)
	var parts []string
	for _, s := range codes {
		parts = append(parts, fmt.Sprintf("%d: %d", s, statuses[s]))
	}
	fmt.Fprintf(stdout, "statuses: %s; transport errors: %d\n", strings.Join(parts, ", "), errs)
	if c.pid != 0 {
		fmt.Fprintf(stdout, "gaasd peak resident memory: %.1f MB\n", float64(peakRSS.Load())/1024)
	}
	if c.checkDB != "" {
		db, err := store.Open(ctx, c.checkDB, store.Options{})
		if err != nil {
			return err
		}
		defer db.Close()
		rep, err := db.Check(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "invariants: %d users, %d jobs, %d ledger entries, %d violations\n", rep.Users, rep.Jobs, rep.Entries, len(rep.Violations))
		for _, v := range rep.Violations {
			fmt.Fprintln(stdout, "violation:", v)
		}
		if !rep.OK() {
			return errors.New("the ledger invariants are broken")
		}
	}
	if errs > 0 || statuses[http.StatusCreated] != len(all)-errs {
		return errors.New("some requests failed")
	}
	return nil
}

// rawClient sends one prebuilt request again and again on one keep-alive
// connection, without net/http's client: the load generator shares the
// machine's cores with the server it measures, and the client's transport
// (a reading and a writing goroutine per connection, and the hand-offs
// between them and the caller) cost it several times the CPU per request.
type rawClient struct {
	conn net.Conn
	br   *bufio.Reader
	req  []byte
	done bool // the server closed the connection after its last answer
}

func dialRaw(base, token string, body []byte) (*rawClient, error) {
	u, err := url.Parse(base)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return nil, fmt.Errorf("-url %q: the load is sent over plain http://host:port", base)
	}
	conn, err := net.DialTimeout("tcp", u.Host, 10*time.Second)
	if err != nil {
		return nil, err
	}
	req := fmt.Appendf(nil, "POST /jobs HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"+
		"Authorization: Bearer %s\r\nContent-Length: %d\r\n\r\n", u.Host, token, len(body))
	return &rawClient{conn: conn, br: bufio.NewReader(conn), req: append(req, body...)}, nil
}

// roundTrip sends the request and reads the whole response.
func (rc *rawClient) roundTrip() (int, error) {
	rc.conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := rc.conn.Write(rc.req); err != nil {
		return 0, err
	}
	resp, err := http.ReadResponse(rc.br, nil)
	if err != nil {
		return 0, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	rc.done = resp.Close
	return resp.StatusCode, err
}

func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', 2, 64) + "ms"
}

// residentKB reads a process's resident set size from /proc, in KiB.
func residentKB(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb
		}
	}
	return 0
}
