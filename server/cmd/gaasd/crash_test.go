package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/store/storetest"
)

// process is gaasd running as a real process (this test binary, standing
// in for it through TestMain).
type process struct {
	cmd *exec.Cmd
	url string
}

func startProcess(t *testing.T, db string, args ...string) *process {
	t.Helper()
	exe, err := os.Executable()
	require.NoError(t, err)
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), "GAASD_TEST_MAIN=1",
		"GAASD_TEST_ARGS="+strings.Join(append([]string{"-addr", "127.0.0.1:0", "-db", db, "-pbkdf2-iterations", "1000",
			"-login-per-user", "0", "-login-per-address", "0"}, args...), " "),
		"GAAS_ADMIN_USERNAME=root", "GAAS_ADMIN_PASSWORD=root-password")
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		var line struct{ Msg, Addr string }
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "listening" {
			go io.Copy(io.Discard, stdout)
			return &process{cmd: cmd, url: "http://" + line.Addr}
		}
	}
	cmd.Wait()
	t.Fatal("gaasd exited before listening")
	return nil
}

func (p *process) kill() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	p.cmd.Wait()
}

var crashClient = &http.Client{Timeout: 5 * time.Second}

// send makes a request; ok is false when no answer came (the process died).
func send(method, url, token, body string, header map[string]string) (status int, out map[string]any, ok bool) {
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := crashClient.Do(req)
	if err != nil {
		return 0, nil, false
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, false
	}
	json.Unmarshal(b, &out)
	return resp.StatusCode, out, true
}

type crashSubmit struct {
	key, body string
	user      int   // the index of the token that sent it
	jobID     int64 // 0 until a 201 came back
}

// TestCrash kills gaasd with SIGKILL at random moments while it takes
// submissions, transitions and grants, restarts it on the same database,
// and checks that no acknowledged write was lost, that retrying an
// unanswered submission with its idempotency key never charges twice, and
// that gaasd check passes.
func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and restarts a process ten times")
	}
	db := filepath.Join(t.TempDir(), "gaas.db")
	// The seed fixes when each kill comes and which jobs are moved; the
	// interleaving of the requests is the scheduler's, so a seed repeats a
	// run's shape, not every step of it.
	seed := storetest.Seed(t)
	rnd := rand.New(rand.NewPCG(seed, 1))

	p := startProcess(t, db)
	var tokens []string
	var userIDs []int64
	for i := range 3 {
		name := fmt.Sprintf("user%d", i)
		status, body, _ := send("POST", p.url+"/register", "", `{"username": "`+name+`", "password": "password-`+name+`"}`, nil)
		require.Equal(t, http.StatusCreated, status)
		userIDs = append(userIDs, int64(body["id"].(float64)))
	}
	_, body, _ := send("POST", p.url+"/login", "", `{"username": "root", "password": "root-password"}`, nil)
	admin := body["access_token"].(string)
	for i, id := range userIDs {
		status, _, _ := send("PUT", fmt.Sprintf("%s/users/%d/quota", p.url, id), admin, `{"gpu_hours_quota": 100000}`, nil)
		require.Equal(t, http.StatusOK, status)
		_, body, _ = send("POST", p.url+"/login", "", fmt.Sprintf(`{"username": "user%d", "password": "password-user%d"}`, i, i), nil)
		tokens = append(tokens, body["access_token"].(string))
	}
	p.kill()

	var (
		mu          sync.Mutex
		submits     []*crashSubmit
		moved       = map[int64]string{} // job → the last status a 200 confirmed
		inflight    = map[int64]string{} // job → a status asked for with no answer
		grantsAcked = map[string]bool{}  // reason → answered
		grantsSent  = map[string]bool{}
	)
	const rounds = 10
	for round := range rounds {
		p := startProcess(t, db)
		// Retry every submission that got no answer, with its key: the job
		// it made, if it made one, comes back, and nothing is charged twice.
		for _, s := range submits {
			if s.jobID != 0 {
				continue
			}
			status, body, ok := send("POST", p.url+"/jobs", tokens[s.user], s.body, map[string]string{"Idempotency-Key": s.key})
			require.True(t, ok)
			require.Equal(t, http.StatusCreated, status, "retry of %s: %v", s.key, body)
			s.jobID = int64(body["id"].(float64))
		}
		// Every acknowledged write is there.
		for _, s := range submits {
			status, body, _ := send("GET", fmt.Sprintf("%s/jobs/%d", p.url, s.jobID), admin, "", nil)
			require.Equal(t, http.StatusOK, status, "job %d, acknowledged before a kill, is gone", s.jobID)
			if want, ok := moved[s.jobID]; ok && body["status"] != want {
				require.Equal(t, inflight[s.jobID], body["status"], "job %d: acknowledged %s, found %v", s.jobID, want, body["status"])
				moved[s.jobID] = body["status"].(string)
			}
			delete(inflight, s.jobID)
		}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for w := range tokens {
			wg.Go(func() { // submissions
				for n := 0; ; n++ {
					select {
					case <-stop:
						return
					default:
					}
					s := &crashSubmit{key: fmt.Sprintf("r%d-w%d-%d", round, w, n), user: w,
						body: fmt.Sprintf(`{"command": "crash %d", "gpu_type": "A100", "estimated_hours": 0.5}`, n)}
					mu.Lock()
					submits = append(submits, s)
					mu.Unlock()
					status, body, ok := send("POST", p.url+"/jobs", tokens[w], s.body, map[string]string{"Idempotency-Key": s.key})
					if !ok {
						return
					}
					if !assert.Equal(t, http.StatusCreated, status, "%v", body) {
						return
					}
					mu.Lock()
					s.jobID = int64(body["id"].(float64))
					mu.Unlock()
				}
			})
		}
		pick := rand.New(rand.NewPCG(seed, uint64(round)+2))
		wg.Go(func() { // transitions, one job at a time
			next := map[string]string{"PENDING": "APPROVED", "APPROVED": "RUNNING", "RUNNING": "COMPLETED"}
			for {
				select {
				case <-stop:
					return
				default:
				}
				mu.Lock()
				var job int64
				if len(submits) > 0 {
					if s := submits[pick.IntN(len(submits))]; s.jobID != 0 {
						job = s.jobID
					}
				}
				from := moved[job]
				if from == "" {
					from = "PENDING"
				}
				to := next[from]
				if job != 0 && to != "" {
					inflight[job] = to
				}
				mu.Unlock()
				if job == 0 || to == "" {
					continue
				}
				body := `{"status": "` + to + `"}`
				if to == "COMPLETED" {
					body = `{"status": "COMPLETED", "actual_hours": 0.25}`
				}
				status, out, ok := send("PATCH", fmt.Sprintf("%s/jobs/%d", p.url, job), admin, body, nil)
				if !ok {
					return
				}
				if !assert.Equal(t, http.StatusOK, status, "%v", out) {
					return
				}
				mu.Lock()
				moved[job] = to
				delete(inflight, job)
				mu.Unlock()
			}
		})
		wg.Go(func() { // grants
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				reason := fmt.Sprintf("grant r%d-%d", round, n)
				mu.Lock()
				grantsSent[reason] = true
				mu.Unlock()
				status, _, ok := send("POST", fmt.Sprintf("%s/users/%d/quota/grants", p.url, userIDs[n%len(userIDs)]), admin,
					`{"hours": 1, "reason": "`+reason+`"}`, nil)
				if !ok {
					return
				}
				if !assert.Equal(t, http.StatusOK, status) {
					return
				}
				mu.Lock()
				grantsAcked[reason] = true
				mu.Unlock()
			}
		})
		time.Sleep(time.Duration(100+rnd.IntN(400)) * time.Millisecond)
		p.kill()
		close(stop)
		wg.Wait()
		if t.Failed() {
			return
		}
	}

	// The last restart: the ledger explains every balance, and every
	// acknowledged grant is in it exactly once.
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"check", "-db", db}, func(string) string { return "" }, &out, io.Discard), out.String())
	p = startProcess(t, db)
	defer p.kill()
	for _, s := range submits {
		if s.jobID == 0 {
			status, body, _ := send("POST", p.url+"/jobs", tokens[s.user], s.body, map[string]string{"Idempotency-Key": s.key})
			require.Equal(t, http.StatusCreated, status, "%v", body)
		}
	}
	_, jobs, _ := send("GET", p.url+"/jobs?limit=1", admin, "", nil)
	assert.EqualValues(t, len(submits), jobs["items"].([]any)[0].(map[string]any)["id"], "one job per submission, however often retried")
	found := map[string]int{}
	for _, id := range userIDs {
		cursor := ""
		for {
			_, page, _ := send("GET", fmt.Sprintf("%s/users/%d/ledger?limit=500&cursor=%s", p.url, id, cursor), admin, "", nil)
			for _, e := range page["items"].([]any) {
				found[e.(map[string]any)["reason"].(string)]++
			}
			next, _ := page["next_cursor"].(string)
			if next == "" {
				break
			}
			cursor = next
		}
	}
	for reason := range grantsSent {
		switch {
		case grantsAcked[reason]:
			assert.Equal(t, 1, found[reason], "acknowledged %q", reason)
		default:
			assert.LessOrEqual(t, found[reason], 1, "unanswered %q", reason)
		}
	}
	t.Logf("%d rounds: %d submissions, %d transitions confirmed, %d of %d grants acknowledged; %s",
		rounds, len(submits), len(moved), len(grantsAcked), len(grantsSent), strings.TrimSpace(out.String()))
}
