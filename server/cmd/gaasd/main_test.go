package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gaas-io/gaas/authn"
	"github.com/gaas-io/gaas/server/internal/syncbuf"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun/driver/sqliteshim"
)

// TestMain lets the test binary stand in for gaasd, so that tests can run
// it as a real process and send it signals.
func TestMain(m *testing.M) {
	if os.Getenv("GAASD_TEST_MAIN") == "1" {
		os.Args = append([]string{"gaasd"}, strings.Fields(os.Getenv("GAASD_TEST_ARGS"))...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

type instance struct {
	url    string
	cancel context.CancelFunc
	done   chan error
	logs   *syncbuf.Buffer
}

// start calls run on 127.0.0.1:0 and waits until /healthz answers.
func start(t *testing.T, db string, env map[string]string, args ...string) *instance {
	t.Helper()
	inst, err := launch(t, db, env, args...)
	require.NoError(t, err)
	return inst
}

// launch is start for a goroutine other than the test's: it reports what
// went wrong instead of ending the test.
func launch(t *testing.T, db string, env map[string]string, args ...string) (*instance, error) {
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	inst := &instance{cancel: cancel, done: make(chan error, 1), logs: &syncbuf.Buffer{}}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			inst.logs.Write(append(sc.Bytes(), '\n'))
			var line struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "listening" {
				addr <- line.Addr
			}
		}
	}()
	getenv := func(k string) string { return env[k] }
	go func() {
		inst.done <- run(ctx, append([]string{"-addr", "127.0.0.1:0", "-db", db, "-pbkdf2-iterations", "1000"}, args...), getenv, pw, io.Discard)
		pw.Close()
	}()
	select {
	case a := <-addr:
		inst.url = "http://" + a
	case err := <-inst.done:
		cancel()
		return nil, fmt.Errorf("gaasd did not start: %w", err)
	case <-time.After(30 * time.Second):
		cancel()
		return nil, errors.New("gaasd did not start in 30s")
	}
	t.Cleanup(func() { inst.stop(t) })
	resp, err := http.Get(inst.url + "/healthz")
	if err != nil {
		return nil, err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("/healthz answered %d", resp.StatusCode)
	}
	return inst, nil
}

// stop cancels run, as a signal does, and requires a clean exit.
func (i *instance) stop(t *testing.T) {
	if i.cancel == nil {
		return
	}
	i.cancel()
	i.cancel = nil
	select {
	case err := <-i.done:
		require.NoError(t, err)
	case <-time.After(15 * time.Second):
		t.Fatal("gaasd did not stop")
	}
}

func (i *instance) call(t *testing.T, method, path, token, contentType, body string) (int, map[string]any) {
	t.Helper()
	status, m, err := i.send(method, path, token, contentType, body)
	require.NoError(t, err)
	return status, m
}

// send is call for a goroutine other than the test's: it returns what
// went wrong instead of ending the test, which only the test's goroutine may.
func (i *instance) send(method, path, token, contentType, body string) (int, map[string]any, error) {
	req, err := http.NewRequest(method, i.url+path, strings.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return sendRequest(req)
}

func do(t *testing.T, req *http.Request) (int, map[string]any) {
	t.Helper()
	status, m, err := sendRequest(req)
	require.NoError(t, err)
	return status, m
}

func sendRequest(req *http.Request) (int, map[string]any, error) {
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		return resp.StatusCode, nil, fmt.Errorf("the answer is not a JSON object: %w", err)
	}
	return resp.StatusCode, m, nil
}

func stringsReader(s string) io.Reader { return strings.NewReader(s) }

func (i *instance) json(t *testing.T, method, path, token, body string) (int, map[string]any) {
	return i.call(t, method, path, token, "application/json", body)
}

func TestRunWalkthroughAndRestart(t *testing.T) {
	db := filepath.Join(t.TempDir(), "gaas.db")
	env := map[string]string{"GAAS_ADMIN_USERNAME": "root", "GAAS_ADMIN_PASSWORD": "root-password-never-logged"}
	g := start(t, db, env)

	status, body := g.json(t, "POST", "/register", "", `{"username": "alice", "password": "alice-password-secret"}`)
	require.Equal(t, http.StatusCreated, status)
	assert.Equal(t, 10.0, body["gpu_hours_quota"])
	status, body = g.call(t, "POST", "/login", "", "application/x-www-form-urlencoded",
		url.Values{"username": {"alice"}, "password": {"alice-password-secret"}}.Encode())
	require.Equal(t, http.StatusOK, status)
	alice := body["access_token"].(string)
	status, body = g.json(t, "POST", "/login", "", `{"username": "root", "password": "root-password-never-logged"}`)
	require.Equal(t, http.StatusOK, status, "the admin from the environment exists")
	admin := body["access_token"].(string)

	status, job := g.json(t, "POST", "/jobs", alice, `{"command": "python train.py", "gpu_type": "NVIDIA A100", "estimated_hours": 6}`)
	require.Equal(t, http.StatusCreated, status)
	status, body = g.json(t, "POST", "/jobs", alice, `{"command": "python train.py", "gpu_type": "NVIDIA A100", "estimated_hours": 6}`)
	require.Equal(t, http.StatusBadRequest, status)
	assert.Equal(t, "Not enough credits for GPU type NVIDIA A100: the job costs 6, and 4 are available for that type.", body["detail"])

	path := "/jobs/" + jsonID(job)
	for _, s := range []string{`{"status": "APPROVED"}`, `{"status": "RUNNING"}`, `{"status": "COMPLETED", "actual_hours": 2.5}`} {
		status, job = g.json(t, "PATCH", path, admin, s)
		require.Equal(t, http.StatusOK, status, "%v", job)
	}
	_, me := g.json(t, "GET", "/me", alice, "")
	assert.Equal(t, 7.5, me["gpu_hours_quota"], "3.5 of the 6 hours came back")

	g.stop(t)

	// The same database after a restart: the data, the generated key and so
	// the old tokens, and the admin, all survive.
	g2 := start(t, db, env)
	status, me = g2.json(t, "GET", "/me", alice, "")
	require.Equal(t, http.StatusOK, status, "a token from before the restart still verifies")
	assert.Equal(t, 7.5, me["gpu_hours_quota"])
	status, got := g2.json(t, "GET", path, admin, "")
	require.Equal(t, http.StatusOK, status)
	assert.Equal(t, "COMPLETED", got["status"])
	g2.stop(t)

	for _, logs := range []string{g.logs.String(), g2.logs.String()} {
		for _, secret := range []string{"root-password-never-logged", "alice-password-secret", alice, admin} {
			assert.NotContains(t, logs, secret)
		}
		assert.Contains(t, logs, "generated")
	}
	assert.Contains(t, g.logs.String(), `"route":"PATCH /jobs/{id}"`)
}

func jsonID(m map[string]any) string { return strconv.FormatInt(int64(m["id"].(float64)), 10) }

func TestRunConfiguration(t *testing.T) {
	db := filepath.Join(t.TempDir(), "gaas.db")
	secret := "a-secret-of-at-least-thirty-two-bytes!"
	g := start(t, db, map[string]string{"GAAS_DEFAULT_QUOTA": "2.5", "GAAS_ADDR": "not an address", "GAAS_JWT_SECRET": secret}, "-token-ttl", "1m")
	status, body := g.json(t, "POST", "/register", "", `{"username": "bob", "password": "bob-password"}`)
	require.Equal(t, http.StatusCreated, status, "-addr won over GAAS_ADDR")
	assert.Equal(t, 2.5, body["gpu_hours_quota"])
	_, body = g.json(t, "POST", "/login", "", `{"username": "bob", "password": "bob-password"}`)
	assert.EqualValues(t, 60, body["expires_in"])
	assert.NotContains(t, g.logs.String(), secret)
	assert.NotContains(t, g.logs.String(), "generated")
}

// Each start-up error says what is wrong, naming the flag or the
// environment variable that gave the value, and leaves no database file
// behind: every address is bound, and every setting checked, before the
// database is opened.
func TestRunStartupErrors(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer taken.Close()
	dir := t.TempDir()
	shortSecret := filepath.Join(dir, "short")
	require.NoError(t, os.WriteFile(shortSecret, []byte("short\n"), 0o600))
	for name, tc := range map[string]struct {
		args []string
		env  map[string]string
		want string
	}{
		"unknown_flag":         {args: []string{"-nope"}, want: "flag provided but not defined: -nope; gaasd -h lists the flags"},
		"short_secret":         {args: []string{"-jwt-secret", "short"}, want: "-jwt-secret is 5 bytes; at least 32"},
		"short_secret_env":     {env: map[string]string{"GAAS_JWT_SECRET": "short"}, want: "GAAS_JWT_SECRET is 5 bytes; at least 32"},
		"bad_quota":            {args: []string{"-default-quota", "0.0001"}, want: "-default-quota"},
		"negative_quota":       {args: []string{"-default-quota", "-1"}, want: `-default-quota "-1": must be a number of credits, 0 or more`},
		"bad_quota_env":        {env: map[string]string{"GAAS_DEFAULT_QUOTA": "lots"}, want: `GAAS_DEFAULT_QUOTA="lots": must be a number of credits`},
		"bad_ttl":              {args: []string{"-token-ttl", "forever"}, want: "-token-ttl"},
		"zero_ttl":             {args: []string{"-token-ttl", "0s"}, want: `-token-ttl "0s": must be a positive duration`},
		"bad_ttl_env":          {env: map[string]string{"GAAS_TOKEN_TTL": "banana"}, want: `GAAS_TOKEN_TTL="banana": must be a positive duration`},
		"bad_iterations":       {args: []string{"-pbkdf2-iterations", "0"}, want: `-pbkdf2-iterations "0": must be a whole number from 1`},
		"bad_iterations_env":   {env: map[string]string{"GAAS_PBKDF2_ITERATIONS": "0"}, want: `GAAS_PBKDF2_ITERATIONS="0": must be a whole number from 1`},
		"port_taken":           {args: []string{"-addr", taken.Addr().String()}, want: "listen"},
		"debug_port_taken":     {args: []string{"-debug-addr", taken.Addr().String()}, want: "listen on -debug-addr"},
		"metrics_port_taken":   {env: map[string]string{"GAAS_METRICS_ADDR": taken.Addr().String()}, want: "listen on -metrics-addr"},
		"unreadable_db":        {args: []string{"-db", filepath.Join(dir, "missing", "gaas.db")}, want: "open database"},
		"half_admin":           {env: map[string]string{"GAAS_ADMIN_USERNAME": "root"}, want: "GAAS_ADMIN_PASSWORD"},
		"weak_admin":           {env: map[string]string{"GAAS_ADMIN_USERNAME": "root", "GAAS_ADMIN_PASSWORD": "short"}, want: "GAAS_ADMIN_PASSWORD: "},
		"bad_admin_name":       {env: map[string]string{"GAAS_ADMIN_USERNAME": "r", "GAAS_ADMIN_PASSWORD": "long-enough-password"}, want: "GAAS_ADMIN_USERNAME: "},
		"stray_argument":       {args: []string{"serve"}, want: "unexpected argument"},
		"bad_max_conns":        {args: []string{"-db-max-conns", "-1"}, want: "-db-max-conns"},
		"secret_twice":         {args: []string{"-jwt-secret", strings.Repeat("k", 32), "-jwt-secret-file", "/etc/hostname"}, want: "-jwt-secret and -jwt-secret-file are both set"},
		"secret_twice_env":     {args: []string{"-jwt-secret-file", "/etc/hostname"}, env: map[string]string{"GAAS_JWT_SECRET": strings.Repeat("k", 32)}, want: "GAAS_JWT_SECRET and -jwt-secret-file are both set"},
		"secret_file_gone":     {env: map[string]string{"GAAS_JWT_SECRET_FILE": filepath.Join(dir, "nope")}, want: "GAAS_JWT_SECRET_FILE: "},
		"secret_file_short":    {env: map[string]string{"GAAS_JWT_SECRET_FILE": shortSecret}, want: "at least 32"},
		"bad_login_limit":      {args: []string{"-login-per-user", "x"}, want: "-login-per-user"},
		"bad_hash_slots":       {env: map[string]string{"GAAS_HASH_SLOTS": "-2"}, want: `GAAS_HASH_SLOTS="-2": must be a whole number, 0 or more`},
		"bad_lifetime":         {env: map[string]string{"GAAS_DB_CONN_MAX_LIFETIME": "0s"}, want: `GAAS_DB_CONN_MAX_LIFETIME="0s": must be a positive duration`},
		"bad_stmt_timeout":     {args: []string{"-db-statement-timeout", "x"}, want: "-db-statement-timeout"},
		"bad_registration":     {args: []string{"-registration", "invite"}, want: `-registration "invite": must be open or closed`},
		"bad_register_cap":     {env: map[string]string{"GAAS_REGISTER_PER_ADDRESS": "-1"}, want: `GAAS_REGISTER_PER_ADDRESS="-1"`},
		"bad_requests_cap":     {args: []string{"-requests-per-user", "many"}, want: "-requests-per-user"},
		"bad_conn_cap":         {env: map[string]string{"GAAS_MAX_CONNS": "-5"}, want: `GAAS_MAX_CONNS="-5"`},
		"bad_idle_timeout":     {args: []string{"-idle-timeout", "0s"}, want: "-idle-timeout"},
		"bad_executor":         {args: []string{"-executor", "kubernetes"}, want: `-executor "kubernetes": must be none, local or slurm`},
		"slurm_no_capacity":    {args: []string{"-executor", "slurm"}, want: `-slurm-capacity "": must be TYPE=GPUS pairs`},
		"bad_capacity":         {env: map[string]string{"GAAS_SLURM_CAPACITY": "a100=0"}, want: `GAAS_SLURM_CAPACITY="a100=0": must be TYPE=GPUS pairs`},
		"bad_gpu_types":        {args: []string{"-local-gpu-types", "a100"}, want: `-local-gpu-types "a100": must be NAME=TYPE pairs`},
		"slow_heartbeats":      {args: []string{"-executor-interval", "30s"}, want: `-executor-interval "30s": must be a positive duration, at most a third of -executor-lease-ttl`},
		"local_without_gpus":   {args: []string{"-executor", "local", "-local-gpus", filepath.Join(dir, "none.csv")}, want: "-executor local: -local-gpus: "},
		"batch_too_long":       {args: []string{"-db-batch-timeout", "15s"}, want: "shorter than 15s"},
		"batch_timeout_0":      {env: map[string]string{"GAAS_DB_BATCH_TIMEOUT": "0s"}, want: `GAAS_DB_BATCH_TIMEOUT="0s"`},
		"bad_base_path":        {args: []string{"-base-path", "gpu/"}, want: `-base-path "gpu/": must be a path such as /gpu`},
		"bad_adopt_env":        {env: map[string]string{"GAAS_ADOPT_ADMIN": "sure"}, want: `GAAS_ADOPT_ADMIN="sure": must be true or false`},
		"zero_worker_interval": {args: []string{"-worker-interval", "0s"}, want: `-worker-interval "0s": must be a positive duration`},
		"short_worker_lease":   {args: []string{"-worker-lease-ttl", "5s"}, want: `-worker-lease-ttl "5s": must be 0, or a duration longer than -worker-interval`},
		"negative_stale_after": {env: map[string]string{"GAAS_STALE_AFTER": "-1h"}, want: `GAAS_STALE_AFTER="-1h0m0s": must be a duration such as 72h`},
		"bad_worker_env":       {env: map[string]string{"GAAS_WORKER": "maybe"}, want: `GAAS_WORKER="maybe": must be true or false`},
		"postgres_down":        {args: []string{"-db", "postgres://gaas:pw-in-url@127.0.0.1:1/gaas?connect_timeout=1"}, want: "postgres://gaas:xxxxx@127.0.0.1:1/gaas"},
	} {
		t.Run(name, func(t *testing.T) {
			db := filepath.Join(t.TempDir(), "gaas.db")
			args := append([]string{"-addr", "127.0.0.1:0", "-db", db}, tc.args...)
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), args, func(k string) string { return tc.env[k] }, &stdout, &stderr)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.NotContains(t, err.Error(), "pw-in-url")
			assert.NoFileExists(t, db, "a start-up error leaves no database behind")
			assert.Empty(t, stderr.String(), "the error is returned, once")
			assert.NotContains(t, stdout.String(), "Usage", "a mistake does not print the whole usage")
		})
	}
}

// -h, "gaasd help" and "gaasd help SUBCOMMAND" print on stdout, and are no
// error; the flags show their types; "version" and -version print the build.
func TestHelpAndVersion(t *testing.T) {
	noEnv := func(string) string { return "" }
	help := func(args ...string) string {
		t.Helper()
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), args, noEnv, &stdout, &stderr)
		assert.ErrorIs(t, err, flag.ErrHelp, args)
		assert.Empty(t, stderr.String(), args)
		return stdout.String()
	}
	usage := help("-h")
	assert.Equal(t, usage, help("help"))
	assert.Equal(t, usage, help("help", "help"))
	for _, s := range []string{"-addr", "GAAS_ADDR", "-db", "-jwt-secret", "-token-ttl", "-default-quota", "-pbkdf2-iterations", "GAAS_ADMIN_USERNAME", "-db-max-conns", "-db-conn-max-lifetime", "-db-statement-timeout", "-db-batch-timeout", "GAAS_DB_BATCH_TIMEOUT", "-jwt-secret-file", "least safe", "-login-per-user", "-login-per-address", "-hash-slots",
		"-registration", "-register-per-address", "-requests-per-user", "-max-conns", "-idle-timeout", "gaasd help", "gaasd version", "-version",
		"-token-ttl duration", "-idle-timeout duration", "-db-batch-timeout duration", "-max-conns int", "-pbkdf2-iterations int", "-default-quota credits",
		"(env GAAS_TOKEN_TTL) (default 30m0s)", "(env GAAS_HASH_SLOTS)"} {
		assert.Contains(t, usage, s)
	}
	assert.NotContains(t, usage, "GAAS_VERSION", "-version has no variable")
	for sub, want := range map[string]string{"check": "Usage: gaasd check", "healthcheck": "Usage: gaasd healthcheck", "import-fastapi": "Usage: gaasd import-fastapi"} {
		assert.Contains(t, help("help", sub), want)
		assert.Contains(t, help(sub, "-h"), want)
	}
	err := run(context.Background(), []string{"help", "nope"}, noEnv, io.Discard, io.Discard)
	assert.ErrorContains(t, err, `help: no subcommand "nope"`)

	for _, args := range [][]string{{"version"}, {"-version"}} {
		var stdout bytes.Buffer
		require.NoError(t, run(context.Background(), args, noEnv, &stdout, io.Discard))
		assert.Regexp(t, `^gaasd \S+.*, built with go1\.\S+\n$`, stdout.String())
	}
	assert.Error(t, run(context.Background(), []string{"version", "extra"}, noEnv, io.Discard, io.Discard))
}

// The start-up line gives the page to open and says whether an admin can
// log in, and how to make one when none can.
func TestStartupLine(t *testing.T) {
	line := func(g *instance) map[string]any {
		for l := range strings.Lines(g.logs.String()) {
			var m map[string]any
			if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == "listening" {
				return m
			}
		}
		t.Fatal("no listening line in", g.logs.String())
		return nil
	}
	db := filepath.Join(t.TempDir(), "gaas.db")
	g := start(t, db, nil)
	_, port, err := net.SplitHostPort(strings.TrimPrefix(g.url, "http://"))
	require.NoError(t, err)
	m := line(g)
	assert.Equal(t, "http://localhost:"+port+"/docs", m["docs"])
	assert.Contains(t, m["admin"], "none: to make one, restart with GAAS_ADMIN_USERNAME and GAAS_ADMIN_PASSWORD set")
	g.stop(t)

	g = start(t, db, map[string]string{"GAAS_ADMIN_USERNAME": "root", "GAAS_ADMIN_PASSWORD": "root-password-never-logged"})
	assert.Equal(t, "1 enabled admin account(s)", line(g)["admin"])
	assert.NotContains(t, g.logs.String(), "root-password-never-logged")
}

// The real process: a start-up error is one line on stderr and exit code
// 2; -h is exit code 0, an unhealthy healthcheck 1; SIGTERM stops it with
// exit code 0.
func TestProcess(t *testing.T) {
	exe, err := os.Executable()
	require.NoError(t, err)
	gaasd := func(args string) *exec.Cmd {
		cmd := exec.Command(exe)
		cmd.Env = append(os.Environ(), "GAASD_TEST_MAIN=1", "GAASD_TEST_ARGS="+args)
		return cmd
	}

	var stderr bytes.Buffer
	cmd := gaasd("-jwt-secret short")
	cmd.Stderr = &stderr
	err = cmd.Run()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit)
	assert.Equal(t, 2, exit.ExitCode())
	assert.Equal(t, "gaasd: -jwt-secret is 5 bytes; at least 32 are needed\n", stderr.String())

	// Help is on stdout, and no failure.
	var stdoutBuf bytes.Buffer
	stderr.Reset()
	cmd = gaasd("-h")
	cmd.Stdout, cmd.Stderr = &stdoutBuf, &stderr
	require.NoError(t, cmd.Run())
	assert.Contains(t, stdoutBuf.String(), "Usage: gaasd")
	assert.Empty(t, stderr.String())

	// An unhealthy gaasd (here: none at all) is exit code 1, which Docker
	// reads as unhealthy; it reserves 2.
	stderr.Reset()
	cmd = gaasd("healthcheck -addr 127.0.0.1:1")
	cmd.Stderr = &stderr
	require.ErrorAs(t, cmd.Run(), &exit)
	assert.Equal(t, 1, exit.ExitCode(), stderr.String())
	assert.Contains(t, stderr.String(), "gaasd: healthcheck: unhealthy")

	cmd = gaasd("-addr 127.0.0.1:0 -db " + filepath.Join(t.TempDir(), "gaas.db"))
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	sc := bufio.NewScanner(stdout)
	for sc.Scan() && !strings.Contains(sc.Text(), `"listening"`) {
	}
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	go io.Copy(io.Discard, stdout)
	require.NoError(t, cmd.Wait(), "SIGTERM is a clean exit")
	assert.Equal(t, 0, cmd.ProcessState.ExitCode())
}

func TestCheckCommand(t *testing.T) {
	db := filepath.Join(t.TempDir(), "gaas.db")
	g := start(t, db, nil)
	status, _ := g.json(t, "POST", "/register", "", `{"username": "alice", "password": "alice-password"}`)
	require.Equal(t, http.StatusCreated, status)

	var out, errs bytes.Buffer
	noenv := func(string) string { return "" }
	require.NoError(t, run(context.Background(), []string{"check", "-db", db}, noenv, &out, &errs), "on a live database")
	assert.Contains(t, out.String(), "checked 1 users, 0 jobs, 1 allocations and 1 ledger entries")
	assert.Regexp(t, `^check: 3 rows checked in [0-9.]+ s \([0-9]+ rows/s\)\n$`, errs.String(), "the summary, and no progress line off a terminal")
	g.stop(t)

	raw, err := sql.Open(sqliteshim.ShimName, db)
	require.NoError(t, err)
	_, err = raw.Exec("UPDATE allocations SET remaining = remaining + 5000")
	require.NoError(t, err)
	raw.Close()
	out.Reset()
	err = run(context.Background(), []string{"check", "-db", db}, noenv, &out, io.Discard)
	require.ErrorIs(t, err, errViolations)
	assert.Contains(t, out.String(), "violation: allocation: user 1, allocation 1: remaining 15000 and amount 10000 but entries sum to 10000")

	require.ErrorIs(t, run(context.Background(), []string{"check", "-db", filepath.Join(t.TempDir(), "none.db")}, noenv, io.Discard, io.Discard),
		fs.ErrNotExist, "a missing file is not created to be checked")
}

// The key can come from a file, so that it shows in no process listing.
func TestRunSecretFile(t *testing.T) {
	key := "a-key-read-from-a-file-0123456789abcdef"
	file := filepath.Join(t.TempDir(), "jwt.key")
	require.NoError(t, os.WriteFile(file, []byte(key+"\n"), 0o600))
	g := start(t, filepath.Join(t.TempDir(), "gaas.db"), map[string]string{"GAAS_JWT_SECRET_FILE": file})
	status, _ := g.json(t, "POST", "/register", "", `{"username": "bob", "password": "bob-password"}`)
	require.Equal(t, http.StatusCreated, status)
	_, body := g.json(t, "POST", "/login", "", `{"username": "bob", "password": "bob-password"}`)
	tokens, err := authn.NewTokens([]byte(key), 0, nil)
	require.NoError(t, err)
	_, err = tokens.Verify(body["access_token"].(string))
	require.NoError(t, err, "signed with the key in the file, without its newline")
	assert.NotContains(t, g.logs.String(), key)
	assert.NotContains(t, g.logs.String(), "generated")
}

// -base-path reaches the server: the document names it.
func TestBasePath(t *testing.T) {
	g := start(t, filepath.Join(t.TempDir(), "gaas.db"), map[string]string{"GAAS_BASE_PATH": "/gpu"})
	status, doc := g.json(t, "GET", "/openapi.json", "", "")
	require.Equal(t, http.StatusOK, status)
	assert.Equal(t, []any{map[string]any{"url": "/gpu", "description": "this API, under its path prefix"}}, doc["servers"])
}

// gaasd serves the web portal beside the API, its cookies under
// -base-path and Secure with -secure-cookies.
func TestPortalServed(t *testing.T) {
	g := start(t, filepath.Join(t.TempDir(), "gaas.db"), map[string]string{"GAAS_BASE_PATH": "/gpu", "GAAS_SECURE_COOKIES": "true"},
		"-session-ttl", "1h")
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(g.url + "/")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusSeeOther, resp.StatusCode)
	assert.Equal(t, "/gpu/portal/sign-in", resp.Header.Get("Location"))

	resp, err = client.Get(g.url + "/portal/sign-in")
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, string(body), `action="/gpu/portal/sign-in"`)
	require.NotEmpty(t, resp.Cookies())
	c := resp.Cookies()[0]
	assert.Equal(t, "/gpu", c.Path)
	assert.True(t, c.Secure)

	status, _ := g.json(t, "GET", "/openapi.json", "", "")
	assert.Equal(t, http.StatusOK, status, "the API keeps its paths")
}

func TestSessionTTLChecked(t *testing.T) {
	_, err := launch(t, filepath.Join(t.TempDir(), "gaas.db"), nil, "-session-ttl", "2400h")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "-session-ttl")
}
