package main

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// jobsDir is a directory for the local executor under one the jobs' user
// (nobody) may enter.
func jobsDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "gaasd-jobs-")
	require.NoError(t, err)
	require.NoError(t, os.Chmod(dir, 0o711))
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "jobs")
}

// login logs root in with its password from the environment, or
// registers the user and logs them in; it returns their token.
func login(t *testing.T, g *instance, user string) string {
	t.Helper()
	password := "root-password-never-logged"
	if user != "root" {
		password = user + "-password-secret"
		status, body := g.json(t, "POST", "/register", "", `{"username": "`+user+`", "password": "`+password+`"}`)
		require.Equal(t, http.StatusCreated, status, "%v", body)
	}
	status, body := g.json(t, "POST", "/login", "", `{"username": "`+user+`", "password": "`+password+`"}`)
	require.Equal(t, http.StatusOK, status, "%v", body)
	return body["access_token"].(string)
}

// submitApproved submits alice's job and approves it as admin; it returns its path.
func submitApproved(t *testing.T, g *instance, alice, admin, body string) string {
	t.Helper()
	status, job := g.json(t, "POST", "/jobs", alice, body)
	require.Equal(t, http.StatusCreated, status, "%v", job)
	path := "/jobs/" + jsonID(job)
	status, job = g.json(t, "PATCH", path, admin, `{"status": "APPROVED"}`)
	require.Equal(t, http.StatusOK, status, "%v", job)
	return path
}

// await polls a job until its status is one of want.
func await(t *testing.T, g *instance, path, token string, within time.Duration, want ...string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		status, job := g.json(t, "GET", path, token, "")
		require.Equal(t, http.StatusOK, status)
		for _, w := range want {
			if job["status"] == w {
				return job
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v after %v", path, job, within)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func logOf(t *testing.T, g *instance, path, token string) string {
	t.Helper()
	req, err := http.NewRequest("GET", g.url+path+"/log", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", b)
	return string(b)
}

// gaasd -executor local runs approved jobs on the GPUs of a file, as
// nobody, and charges what they ran; its logs are served, and a job
// cancelled while it runs is stopped.
func TestExecutorLocal(t *testing.T) {
	gpus := filepath.Join(t.TempDir(), "gpus.csv")
	require.NoError(t, os.WriteFile(gpus, []byte("0, GPU-aaaa, NVIDIA A100-SXM4-80GB, 81920\n1, GPU-bbbb, NVIDIA A100-SXM4-80GB, 81920\n"), 0o644))
	db := filepath.Join(t.TempDir(), "gaas.db")
	env := map[string]string{"GAAS_ADMIN_USERNAME": "root", "GAAS_ADMIN_PASSWORD": "root-password-never-logged"}
	g := start(t, db, env, "-executor", "local", "-executor-name", "node1", "-executor-interval", "200ms",
		"-local-gpus", gpus, "-local-gpu-types", "NVIDIA A100-SXM4-80GB=a100", "-local-log-dir", jobsDir(t), "-local-grace", "1s")
	alice, admin := login(t, g, "alice"), login(t, g, "root")

	path := submitApproved(t, g, alice, admin, `{"command": "id -u; echo $CUDA_VISIBLE_DEVICES; sleep 1", "gpu_type": "a100", "gpu_count": 2, "estimated_hours": 1}`)
	job := await(t, g, path, alice, 30*time.Second, "COMPLETED", "FAILED")
	assert.Equal(t, "COMPLETED", job["status"], "%v", job)
	run := job["run"].(map[string]any)
	assert.Equal(t, "node1", run["executor"])
	assert.Equal(t, 0.0, run["exit_code"])
	uid := "65534" // nobody, when gaasd is root
	if os.Geteuid() != 0 {
		uid = strconv.Itoa(os.Geteuid())
	}
	assert.Equal(t, uid+"\nGPU-aaaa,GPU-bbbb\n", logOf(t, g, path, alice))
	actual := job["actual_hours"].(float64)
	assert.Greater(t, actual, 0.0)
	assert.Less(t, actual, 0.01)

	long := submitApproved(t, g, alice, admin, `{"command": "echo started; sleep 60", "gpu_type": "a100", "estimated_hours": 1}`)
	await(t, g, long, alice, 30*time.Second, "RUNNING")
	status, job := g.json(t, "POST", long+"/cancel", alice, "")
	require.Equal(t, http.StatusOK, status)
	assert.Equal(t, "RUNNING", job["status"])
	assert.Equal(t, true, job["run"].(map[string]any)["cancel_requested"])
	job = await(t, g, long, alice, 30*time.Second, "CANCELLED")
	assert.Greater(t, job["actual_hours"].(float64), 0.0, "it paid the time it ran")

	_, me := g.json(t, "GET", "/me", alice, "")
	spent := 10 - me["gpu_hours_quota"].(float64)
	assert.InDelta(t, 2*actual+job["actual_hours"].(float64), spent, 1e-9)
	g.stop(t)
	assert.NotContains(t, g.logs.String(), "root-password-never-logged")
}

// gaasd -executor slurm against the CI's cluster (GAAS_TEST_SLURM).
func TestExecutorSlurm(t *testing.T) {
	conf := os.Getenv("GAAS_TEST_SLURM")
	if conf == "" {
		t.Skip("GAAS_TEST_SLURM names no slurm.conf")
	}
	logs, err := os.MkdirTemp("", "gaasd-slurm-")
	require.NoError(t, err)
	require.NoError(t, os.Chmod(logs, 0o777))
	t.Cleanup(func() { os.RemoveAll(logs) })
	db := filepath.Join(t.TempDir(), "gaas.db")
	env := map[string]string{"GAAS_ADMIN_USERNAME": "root", "GAAS_ADMIN_PASSWORD": "root-password-never-logged"}
	name := "gaasd-test-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	g := start(t, db, env, "-executor", "slurm", "-executor-name", name, "-executor-interval", "500ms",
		"-slurm-conf", conf, "-slurm-jobcomp", "-slurm-capacity", "A100=2", "-slurm-gres", "A100=a100", "-slurm-log-dir", logs)
	alice, admin := login(t, g, "alice"), login(t, g, "root")
	path := submitApproved(t, g, alice, admin, `{"command": "echo on $CUDA_VISIBLE_DEVICES; exit 3", "gpu_type": "A100", "estimated_hours": 1}`)
	job := await(t, g, path, alice, 2*time.Minute, "COMPLETED", "FAILED")
	assert.Equal(t, "FAILED", job["status"])
	run := job["run"].(map[string]any)
	assert.Equal(t, 3.0, run["exit_code"])
	assert.Equal(t, "FAILED: exit status 3", run["reason"])
	assert.Equal(t, "on 0\n", logOf(t, g, path, alice))
}
