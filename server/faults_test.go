package server_test

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/store/storetest"
)

// faultyDisk mounts a small tmpfs for a SQLite file, so that the test can
// fill it. It needs root; elsewhere the test skips.
func faultyDisk(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a small tmpfs needs root")
	}
	dir := filepath.Join(t.TempDir(), "disk")
	require.NoError(t, os.Mkdir(dir, 0o700))
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	return dir
}

// fill writes a file until the disk is full, and returns a function that
// frees the space again.
func fill(t *testing.T, dir string) func() {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	require.NoError(t, err)
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			require.True(t, errors.Is(err, syscall.ENOSPC), "%v", err)
			break
		}
	}
	f.Close()
	return func() { require.NoError(t, os.Remove(path)) }
}

// The disk fills up: a commit that does not fit is a 503 problem, /healthz
// says 503 when its write does not fit, and service resumes by itself when
// space is freed. Some commits may still fit in the pages the write-ahead
// log already holds on disk, which the checkpointer lets it reuse: those
// are stored, and charged, like any other, and nothing else is.
func TestSQLiteDiskFull(t *testing.T) {
	dir := faultyDisk(t)
	h := newHarness(t, override{dsn: filepath.Join(dir, "gaas.db")})
	id, tok := h.user("alice")
	require.Equal(t, http.StatusCreated, h.post("/jobs", tok, jobBody).status)

	available := func(what string) {
		t.Helper()
		require.Equal(t, http.StatusOK, h.get("/healthz", "").status, what)
		require.Equal(t, http.StatusCreated, h.post("/jobs", tok, jobBody).status, what)
	}

	free := fill(t, dir)
	const small = `{"command": "python train.py", "gpu_type": "NVIDIA A100", "estimated_hours": 0.001}`
	stored, jobRefused, healthRefused := 0, false, false
	for i := 0; !jobRefused || !healthRefused; i++ {
		require.Less(t, i, 1000, "the disk is full, yet every write is stored")
		r := h.post("/jobs", tok, small)
		if r.status == http.StatusCreated {
			stored++
		} else {
			p := r.problem(t, http.StatusServiceUnavailable)
			assert.Equal(t, "1", r.header.Get("Retry-After"))
			assert.Contains(t, p["detail"], "not available")
			jobRefused = true
		}
		if hr := h.get("/healthz", ""); hr.status != http.StatusOK {
			hr.problem(t, http.StatusServiceUnavailable)
			healthRefused = true
		}
	}
	t.Logf("%d submissions fit in the log's pages on the full disk", stored)
	free()
	available("after the disk was freed")
	assert.InDelta(t, 10.0-2*2.5-float64(stored)*0.001, h.balance(id), 1e-9, "two jobs and the stored small ones charged, the refused ones nothing")
}

// proxy stands between the server and PostgreSQL, so that a test can take
// the database away (refusing new connections and cutting open ones) and
// bring it back on the same address, as a restart of PostgreSQL would.
type proxy struct {
	t      *testing.T
	target string
	addr   string

	mu    sync.Mutex
	ln    net.Listener
	conns []net.Conn
}

func newProxy(t *testing.T, target string) *proxy {
	p := &proxy{t: t, target: target}
	p.up()
	t.Cleanup(p.down)
	return p
}

func (p *proxy) up() {
	p.mu.Lock()
	defer p.mu.Unlock()
	addr := p.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	require.NoError(p.t, err)
	p.ln, p.addr = ln, ln.Addr().String()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, s)
			p.mu.Unlock()
			go func() { io.Copy(s, c); s.Close() }()
			go func() { io.Copy(c, s); c.Close() }()
		}
	}()
}

func (p *proxy) down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func TestPostgresGoesAwayAndComesBack(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	u, err := url.Parse(dsn)
	require.NoError(t, err)
	p := newProxy(t, u.Host)
	u.Host = p.addr
	q := u.Query()
	q.Set("connect_timeout", "2")
	u.RawQuery = q.Encode()

	h := newHarness(t, override{dsn: u.String()})
	id, tok := h.user("alice")
	require.Equal(t, http.StatusCreated, h.post("/jobs", tok, jobBody).status)

	p.down()
	for range 3 {
		r := h.post("/jobs", tok, jobBody)
		r.problem(t, http.StatusServiceUnavailable)
		assert.Equal(t, "1", r.header.Get("Retry-After"))
	}
	h.get("/healthz", "").problem(t, http.StatusServiceUnavailable)
	h.get("/me", tok).problem(t, http.StatusServiceUnavailable)

	p.up()
	require.Equal(t, http.StatusOK, h.get("/healthz", "").status)
	require.Equal(t, http.StatusCreated, h.post("/jobs", tok, jobBody).status)
	assert.Equal(t, 5.0, h.balance(id))
}
