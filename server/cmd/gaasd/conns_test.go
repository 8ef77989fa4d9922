package main

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestConnectionCap: with -max-conns 4, idle keep-alive connections do not
// stop gaasd from serving new ones: each new connection is served, the
// longest idle ones are closed to make room, and no more than 4 stay open.
func TestConnectionCap(t *testing.T) {
	const limit, clients = 4, 12
	g := start(t, filepath.Join(t.TempDir(), "gaas.db"), nil, "-max-conns", strconv.Itoa(limit))
	addr := strings.TrimPrefix(g.url, "http://")
	var conns []net.Conn
	for i := range clients {
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
		conns = append(conns, c)
		// One request, then the connection stays open and idle.
		_, err = io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: gaas\r\n\r\n")
		require.NoError(t, err)
		require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		require.NoError(t, err, "connection %d was not served", i)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
	}
	open := 0
	for i, c := range conns {
		require.NoError(t, c.SetReadDeadline(time.Now().Add(300*time.Millisecond)))
		_, err := c.Read(make([]byte, 1))
		var ne net.Error
		switch {
		case errors.As(err, &ne) && ne.Timeout():
			open++
		case errors.Is(err, io.EOF):
		default:
			t.Errorf("connection %d: %v", i, err)
		}
	}
	t.Logf("%d of %d connections still open", open, clients)
	assert.LessOrEqual(t, open, limit, "more connections open than -max-conns")
	assert.Positive(t, open)
	assert.Contains(t, g.logs.String(), `"max_conns":4`)
}

// TestClosedRegistration: with GAAS_REGISTRATION=closed, only an admin
// makes accounts.
func TestClosedRegistration(t *testing.T) {
	env := map[string]string{"GAAS_REGISTRATION": "closed", "GAAS_ADMIN_USERNAME": "root", "GAAS_ADMIN_PASSWORD": "root-password"}
	g := start(t, filepath.Join(t.TempDir(), "gaas.db"), env)
	status, body := g.json(t, "POST", "/register", "", `{"username": "alice", "password": "alice-password"}`)
	assert.Equal(t, http.StatusForbidden, status, "%v", body)
	_, body = g.json(t, "POST", "/login", "", `{"username": "root", "password": "root-password"}`)
	status, body = g.json(t, "POST", "/users", body["access_token"].(string), `{"username": "alice", "password": "alice-password"}`)
	assert.Equal(t, http.StatusCreated, status, "%v", body)
	status, _ = g.json(t, "POST", "/login", "", `{"username": "alice", "password": "alice-password"}`)
	assert.Equal(t, http.StatusOK, status)
}
