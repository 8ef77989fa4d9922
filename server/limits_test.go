package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/gaas"
	"github.com/gaas-io/gaas/server"
)

func loginBody(name, password string) string {
	return `{"username": "` + name + `", "password": "` + password + `"}`
}

func loginFrom(h *harness, client *http.Client, name, password string) response {
	h.t.Helper()
	return h.doWith(client, req{method: http.MethodPost, path: "/login", body: loginBody(name, password)})
}

func TestLoginRateLimits(t *testing.T) {
	t.Run("an_attacker_at_one_address_cannot_lock_out_the_owner", func(t *testing.T) {
		h := newHarness(t, override{cfg: server.Config{LoginsPerUser: 3}})
		h.user("alice") // registers and logs in from 127.0.0.1
		h.user("bob")
		attacker := h.from("127.0.0.2")
		for range 3 {
			loginFrom(h, attacker, "ALICE", "wrong password").problem(t, http.StatusUnauthorized)
		}
		r := loginFrom(h, attacker, "alice", "pw-alice-secret")
		p := r.problem(t, http.StatusTooManyRequests)
		assert.Equal(t, "urn:gaas:problem:rate-limited", p["type"])
		wait, err := strconv.Atoi(r.header.Get("Retry-After"))
		require.NoError(t, err)
		assert.InDelta(t, 20, wait, 1, "one attempt comes back every 20 s at 3 a minute")
		assert.Equal(t, http.StatusOK, loginFrom(h, attacker, "bob", "pw-bob-secret").status, "other users are not affected")
		assert.Equal(t, http.StatusOK, h.post("/login", "", loginBody("alice", "pw-alice-secret")).status,
			"the owner, at another address, logs in")
	})
	t.Run("per_address", func(t *testing.T) {
		h := newHarness(t, override{cfg: server.Config{LoginsPerAddress: 2}})
		h.user("alice")
		attacker := h.from("127.0.0.2")
		loginFrom(h, attacker, "nobody", "whatever1").problem(t, http.StatusUnauthorized)
		loginFrom(h, attacker, "alice", "whatever1").problem(t, http.StatusUnauthorized)
		r := loginFrom(h, attacker, "someone", "whatever1")
		r.problem(t, http.StatusTooManyRequests)
		assert.NotEmpty(t, r.header.Get("Retry-After"))
		assert.Equal(t, http.StatusOK, h.post("/login", "", loginBody("alice", "pw-alice-secret")).status)
	})
	t.Run("successful_logins_are_not_counted", func(t *testing.T) {
		// A lab behind one NAT address: a hundred logins a minute, against
		// limits of 10 and 30 failures.
		h := newHarness(t)
		h.user("alice")
		for i := range 100 {
			require.Equal(t, http.StatusOK, h.post("/login", "", loginBody("alice", "pw-alice-secret")).status, "login %d", i)
		}
		for range 10 {
			h.post("/login", "", loginBody("alice", "wrong password")).problem(t, http.StatusUnauthorized)
		}
		h.post("/login", "", loginBody("alice", "wrong password")).problem(t, http.StatusTooManyRequests)
	})
	t.Run("a_guesser_at_many_addresses", func(t *testing.T) {
		// 2 failures a minute per address make 20 for the username from
		// everywhere; past them only an address that has not failed for
		// that username may try.
		h := newHarness(t, override{cfg: server.Config{LoginsPerUser: 2}})
		h.user("alice")
		for i := 1; i <= 10; i++ {
			c := h.from(fmt.Sprintf("127.0.1.%d", i))
			for range 2 {
				loginFrom(h, c, "alice", "guess").problem(t, http.StatusUnauthorized)
			}
		}
		late := h.from("127.0.1.11")
		loginFrom(h, late, "alice", "guess").problem(t, http.StatusUnauthorized)
		loginFrom(h, late, "alice", "guess").problem(t, http.StatusTooManyRequests)
		assert.Equal(t, http.StatusOK, loginFrom(h, h.from("127.0.1.12"), "alice", "pw-alice-secret").status,
			"the owner, who has not failed, still logs in")
	})
	t.Run("off", func(t *testing.T) {
		h := newHarness(t, override{cfg: server.Config{LoginsPerUser: -1, LoginsPerAddress: -1}})
		for range 40 {
			h.post("/login", "", `{"username": "nobody", "password": "whatever1"}`).problem(t, http.StatusUnauthorized)
		}
	})
}

// rawRequest starts a request on a connection of its own and waits for
// "100 Continue": net/http sends it when the handler first reads the body,
// so from then on the request is in its handler, which waits for the body
// the test sends with finish.
func rawRequest(t *testing.T, h *harness, method, path, token, body string) (finish func(rest string) int) {
	t.Helper()
	conn, err := net.Dial("tcp", h.srv.Listener.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	head := method + " " + path + " HTTP/1.1\r\nHost: gaas\r\nContent-Type: application/json\r\n" +
		"Content-Length: " + strconv.Itoa(len(body)) + "\r\nExpect: 100-continue\r\n"
	if token != "" {
		head += "Authorization: Bearer " + token + "\r\n"
	}
	_, err = io.WriteString(conn, head+"\r\n")
	require.NoError(t, err)
	br := bufio.NewReader(conn)
	line, err := br.ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "HTTP/1.1 100 Continue\r\n", line)
	_, err = br.ReadString('\n') // the blank line after it
	require.NoError(t, err)
	return func(rest string) int {
		for i := range len(rest) { // a byte at a time, as a trickling client sends it
			_, err := conn.Write([]byte{rest[i]})
			require.NoError(t, err)
		}
		resp, err := http.ReadResponse(br, nil)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
}

// TestTricklingLoginHoldsNoHashSlot: a client that sends its body slowly
// holds no password-hashing slot while it does, so logins go on.
func TestTricklingLoginHoldsNoHashSlot(t *testing.T) {
	h := newHarness(t, override{cfg: server.Config{HashSlots: 1, HashWait: time.Minute}})
	h.user("alice")
	h.user("bob")
	body := loginBody("alice", "pw-alice-secret")
	finish := rawRequest(t, h, http.MethodPost, "/login", "", body)
	// The trickler is in the handler, reading its body. With the only
	// slot taken before the body was read, this login would wait for it.
	quick := &http.Client{Timeout: 10 * time.Second, Transport: h.client.Transport}
	r := h.doWith(quick, req{method: http.MethodPost, path: "/login", body: loginBody("bob", "pw-bob-secret")})
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	h.secret(r.json(t)["access_token"].(string))
	assert.Equal(t, http.StatusOK, finish(body), "the trickler, held open all along, logs in too")
}

func TestRequestsInFlightPerUser(t *testing.T) {
	h := newHarness(t, override{cfg: server.Config{RequestsPerUser: 2}})
	_, alice := h.user("alice")
	_, bob := h.user("bob")
	first := rawRequest(t, h, http.MethodPost, "/jobs", alice, jobBody)
	second := rawRequest(t, h, http.MethodPost, "/jobs", alice, jobBody)

	r := h.get("/jobs", alice)
	p := r.problem(t, http.StatusTooManyRequests)
	assert.Equal(t, "urn:gaas:problem:rate-limited", p["type"])
	assert.Equal(t, "1", r.header.Get("Retry-After"))
	assert.Equal(t, http.StatusOK, h.get("/jobs", bob).status, "another user is not affected")

	assert.Equal(t, http.StatusCreated, first(jobBody))
	assert.Equal(t, http.StatusCreated, second(jobBody))
	assert.Equal(t, http.StatusOK, h.get("/jobs", alice).status, "once a request ends, the next is let in")
}

func TestRegistrationLimits(t *testing.T) {
	t.Run("per_address", func(t *testing.T) {
		h := newHarness(t, override{cfg: server.Config{RegistrationsPerAddress: 2}})
		h.user("alice")
		h.user("bob")
		h.post("/register", "", loginBody("Alice", "another password")).problem(t, http.StatusConflict)
		h.post("/register", "", loginBody("al", "short")).problem(t, http.StatusUnprocessableEntity)
		r := h.post("/register", "", loginBody("carol", "correct horse"))
		r.problem(t, http.StatusTooManyRequests)
		assert.NotEmpty(t, r.header.Get("Retry-After"))
		other := h.doWith(h.from("127.0.0.2"), req{method: http.MethodPost, path: "/register", body: loginBody("carol", "correct horse")})
		assert.Equal(t, http.StatusCreated, other.status, "%s", other.body)
		h.account("carol", "correct horse")
	})
	t.Run("closed", func(t *testing.T) {
		h := newHarness(t, override{cfg: server.Config{RegistrationClosed: true}})
		p := h.post("/register", "", loginBody("alice", "correct horse")).problem(t, http.StatusForbidden)
		assert.Contains(t, p["detail"], "POST /users")

		_, root := h.admin("root")
		r := h.post("/users", root, loginBody("alice", "correct horse"))
		require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
		h.account("alice", "correct horse")
		assert.Equal(t, "/users/2", r.header.Get("Location"))
		assert.JSONEq(t, `{"id": 2, "username": "alice", "role": "user", "gpu_hours_quota": 10.0}`, string(r.body))
		alice := h.login("alice", "correct horse")

		r = h.post("/users", root, `{"username": "ops", "password": "correct horse", "role": "admin"}`)
		require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
		h.account("ops", "correct horse")
		assert.Equal(t, "admin", r.json(t)["role"])

		p = h.post("/users", alice, loginBody("mallory", "correct horse")).problem(t, http.StatusForbidden)
		assert.Equal(t, "Only admins may create accounts.", p["detail"])
		h.post("/users", root, loginBody("ALICE", "correct horse")).problem(t, http.StatusConflict)
		assert.Equal(t, []string{"role"}, h.post("/users", root, `{"username": "x-y-z", "password": "correct horse", "role": "root"}`).errorFields(t))
		h.post("/users", "", loginBody("mallory", "correct horse")).problem(t, http.StatusUnauthorized)
	})
}

// TestPagesAreBoundedInBytes: 500 jobs with the longest commands, of '<'
// (which encoding/json escapes to six bytes unless told not to) and of
// four-byte characters (32 KiB a command): each page of limit=500 is at
// most 1 MiB, and following the cursors lists every job once, newest first.
func TestPagesAreBoundedInBytes(t *testing.T) {
	h := newHarness(t)
	id, tok := h.user("alice")
	ctx := context.Background()
	for i := range 500 {
		c := "<"
		if i%2 == 1 {
			c = "😀"
		}
		_, err := h.db.Jobs.Submit(ctx, id, gaas.SubmitRequest{Command: strings.Repeat(c, gaas.CommandMaxLen),
			GPUType: "A100", EstimatedHours: gaas.Hours(1)})
		require.NoError(t, err)
	}
	var (
		seen  = map[int64]bool{}
		last  = int64(1 << 62)
		pages int
	)
	path := "/jobs?limit=500"
	for {
		r := h.get(path, tok)
		require.Equal(t, http.StatusOK, r.status)
		assert.LessOrEqual(t, len(r.body), 1<<20, "page %d", pages)
		assert.Equal(t, "application/json", r.header.Get("Content-Type"))
		assert.Equal(t, "nosniff", r.header.Get("X-Content-Type-Options"))
		var page struct {
			Items []struct {
				ID      int64  `json:"id"`
				Command string `json:"command"`
			} `json:"items"`
			NextCursor *string `json:"next_cursor"`
		}
		require.NoError(t, json.Unmarshal(r.body, &page))
		require.NotEmpty(t, page.Items)
		for _, j := range page.Items {
			require.Less(t, j.ID, last, "newest first, no repeats")
			last = j.ID
			seen[j.ID] = true
			require.Equal(t, gaas.CommandMaxLen, utf8.RuneCountInString(j.Command))
		}
		pages++
		if page.NextCursor == nil {
			break
		}
		path = "/jobs?limit=500&cursor=" + url.QueryEscape(*page.NextCursor)
	}
	assert.Len(t, seen, 500)
	assert.GreaterOrEqual(t, pages, 10, "2 MiB of <, 8 MiB of four-byte characters, 1 MiB a page")
	small := h.get("/jobs?limit=3", tok)
	assert.Contains(t, string(small.body), strings.Repeat("<", 100), "< is not escaped")
}

// TestLongPagesAreReadInChunks: a page of up to 500 items is read from the
// store 100 at a time, and is still one page with the right cursor.
func TestLongPagesAreReadInChunks(t *testing.T) {
	h := newHarness(t)
	id, tok := h.user("alice")
	for range 230 {
		_, err := h.db.Jobs.Submit(context.Background(), id, gaas.SubmitRequest{Command: "echo", GPUType: "A100", EstimatedHours: gaas.Hours(1)})
		require.NoError(t, err)
	}
	type page struct {
		Items      []struct{ ID int64 } `json:"items"`
		NextCursor *string              `json:"next_cursor"`
	}
	list := func(path string) page {
		r := h.get(path, tok)
		require.Equal(t, http.StatusOK, r.status, "%s", r.body)
		var p page
		require.NoError(t, json.Unmarshal(r.body, &p))
		return p
	}
	all := list("/jobs?limit=500")
	assert.Len(t, all.Items, 230)
	assert.Nil(t, all.NextCursor)
	first := list("/jobs?limit=200")
	require.Len(t, first.Items, 200)
	require.NotNil(t, first.NextCursor)
	rest := list("/jobs?limit=200&cursor=" + url.QueryEscape(*first.NextCursor))
	assert.Len(t, rest.Items, 30)
	assert.Nil(t, rest.NextCursor)
	assert.Equal(t, first.Items[199].ID-1, rest.Items[0].ID)
	exact := list("/jobs?limit=230")
	assert.Len(t, exact.Items, 230)
	assert.Nil(t, exact.NextCursor, "the store said there is no more")

	ledger := list("/users/" + strconv.FormatInt(id, 10) + "/ledger?limit=500")
	assert.Len(t, ledger.Items, 231, "the default quota and 230 charges")
}
