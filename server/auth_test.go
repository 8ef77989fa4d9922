package server_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRegister(t *testing.T) {
	h := newHarness(t)

	r := h.post("/register", "", `{"username": "alice", "password": "correct horse"}`)
	require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
	assert.Equal(t, "application/json", r.header.Get("Content-Type"))
	assert.JSONEq(t, `{"id": 1, "username": "alice", "role": "user", "gpu_hours_quota": 10.0}`, string(r.body))
	assert.Contains(t, string(r.body), `"gpu_hours_quota":10.0`, "hours read as a float, as the original's did")

	p := h.post("/register", "", `{"username": "ALICE", "password": "another one"}`).problem(t, http.StatusConflict)
	assert.Equal(t, `The username "ALICE" is already taken.`, p["detail"])

	cases := []struct {
		name, body string
		fields     []string
	}{
		{"asks_for_admin", `{"username": "mallory", "password": "correct horse", "role": "admin"}`, []string{"role"}},
		{"short_username", `{"username": "al", "password": "correct horse"}`, []string{"username"}},
		{"bad_characters", `{"username": "al ice", "password": "correct horse"}`, []string{"username"}},
		{"long_username", `{"username": "` + strings.Repeat("a", 65) + `", "password": "correct horse"}`, []string{"username"}},
		{"short_password", `{"username": "bob", "password": "1234567"}`, []string{"password"}},
		{"short_password_in_characters", `{"username": "bob", "password": "ééééééé"}`, []string{"password"}},
		{"long_password", `{"username": "bob", "password": "` + strings.Repeat("p", 1025) + `"}`, []string{"password"}},
		{"missing_fields", `{}`, []string{"username", "password"}},
		{"null_field", `{"username": null, "password": "correct horse"}`, []string{"username"}},
		{"wrong_type", `{"username": 42, "password": "correct horse"}`, []string{"username"}},
		{"duplicate_key", `{"username": "bob", "username": "admin", "password": "correct horse"}`, []string{"username"}},
		{"duplicate_key_in_other_case", `{"username": "bob", "USERNAME": "admin", "password": "correct horse"}`, []string{"USERNAME"}},
		{"trailing_garbage", `{"username": "bob", "password": "correct horse"} x`, []string{"body"}},
		{"two_objects", `{"username": "bob", "password": "correct horse"}{}`, []string{"body"}},
		{"not_an_object", `["bob"]`, []string{"body"}},
		{"not_json", `username=bob`, []string{"body"}},
		{"empty", ``, []string{"body"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := h.do(req{method: http.MethodPost, path: "/register", body: tc.body, contentType: "application/json"})
			assert.Equal(t, tc.fields, r.errorFields(t), "%s", r.body)
		})
	}
	t.Run("long_password_in_characters_is_fine", func(t *testing.T) {
		r := h.post("/register", "", `{"username": "carol", "password": "`+strings.Repeat("é", 1024)+`"}`)
		assert.Equal(t, http.StatusCreated, r.status, "%s", r.body)
	})
	t.Run("wrong_content_type", func(t *testing.T) {
		r := h.do(req{method: http.MethodPost, path: "/register", body: `{"username": "bob", "password": "correct horse"}`, contentType: "text/plain"})
		r.problem(t, http.StatusUnsupportedMediaType)
	})
	t.Run("body_too_large", func(t *testing.T) {
		big := `{"username": "bob", "password": "` + strings.Repeat("p", 70_000) + `"}`
		h.post("/register", "", big).problem(t, http.StatusRequestEntityTooLarge)
	})
	t.Run("chunked_body_too_large", func(t *testing.T) {
		hr, err := http.NewRequest(http.MethodPost, h.srv.URL+"/register", &endlessReader{})
		require.NoError(t, err)
		hr.Header.Set("Content-Type", "application/json")
		hr.ContentLength = -1 // unknown: sent chunked
		resp, err := h.client.Do(hr)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
	})

	// None of the refused requests made an account.
	users := h.get("/users", adminToken(h)).json(t)["items"].([]any)
	names := []string{}
	for _, u := range users {
		names = append(names, u.(map[string]any)["username"].(string))
	}
	assert.ElementsMatch(t, []string{"alice", "carol", "root"}, names)
}

func adminToken(h *harness) string {
	_, tok := h.admin("root")
	return tok
}

// endlessReader is a body of unknown length that never ends.
type endlessReader struct{ n int }

func (e *endlessReader) Read(p []byte) (int, error) {
	if e.n == 0 {
		e.n++
		return copy(p, `{"username": "`), nil
	}
	for i := range p {
		p[i] = 'a'
	}
	return len(p), nil
}

func TestLogin(t *testing.T) {
	h := newHarness(t)
	h.user("alice")
	password := "pw-alice-secret"

	t.Run("form", func(t *testing.T) {
		r := h.do(req{method: http.MethodPost, path: "/login", contentType: "application/x-www-form-urlencoded",
			body: url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {password}, "scope": {""}}.Encode()})
		require.Equal(t, http.StatusOK, r.status, "%s", r.body)
		body := r.json(t)
		assert.Equal(t, "bearer", body["token_type"])
		assert.EqualValues(t, 1800, body["expires_in"])
		assert.Equal(t, "no-store", r.header.Get("Cache-Control"))
		h.secret(body["access_token"].(string))
		me := h.get("/me", body["access_token"].(string))
		require.Equal(t, http.StatusOK, me.status)
		assert.JSONEq(t, `{"id": 1, "username": "alice", "role": "user", "gpu_hours_quota": 10.0, "projects": []}`, string(me.body))
	})
	t.Run("json", func(t *testing.T) {
		r := h.post("/login", "", `{"username": "alice", "password": "`+password+`"}`)
		require.Equal(t, http.StatusOK, r.status, "%s", r.body)
		h.secret(r.json(t)["access_token"].(string))
	})
	t.Run("claims", func(t *testing.T) {
		tok := h.login("alice", password)
		payload, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
		require.NoError(t, err)
		var claims map[string]any
		require.NoError(t, json.Unmarshal(payload, &claims))
		assert.Equal(t, "1", claims["sub"])
		assert.Equal(t, "alice", claims["username"])
		assert.Equal(t, "user", claims["role"])
		assert.Contains(t, claims, "iat")
		assert.Contains(t, claims, "exp")
	})
	t.Run("wrong_password_and_unknown_user_look_the_same", func(t *testing.T) {
		wrong := h.post("/login", "", `{"username": "alice", "password": "wrong password"}`).problem(t, http.StatusUnauthorized)
		unknown := h.post("/login", "", `{"username": "nobody", "password": "wrong password"}`).problem(t, http.StatusUnauthorized)
		delete(wrong, "request_id")
		delete(unknown, "request_id")
		assert.Equal(t, wrong, unknown)
		assert.Equal(t, "Wrong username or password.", wrong["detail"])
	})
	t.Run("bad_requests", func(t *testing.T) {
		form := func(body string) response {
			return h.do(req{method: http.MethodPost, path: "/login", contentType: "application/x-www-form-urlencoded", body: body})
		}
		assert.Equal(t, []string{"password"}, form("username=alice").errorFields(t))
		assert.Equal(t, []string{"username"}, form("username=alice&username=bob&password=x").errorFields(t))
		assert.Equal(t, []string{"grant_type"}, form("grant_type=client_credentials&username=alice&password=x").errorFields(t))
		assert.Equal(t, []string{"username", "password"}, h.post("/login", "", `{}`).errorFields(t))
		h.do(req{method: http.MethodPost, path: "/login", contentType: "text/plain", body: "alice"}).problem(t, http.StatusUnsupportedMediaType)
	})
}

// forge signs a token by hand, the way an attacker would try to.
func forge(alg string, key []byte, claims map[string]any) string {
	enc := base64.RawURLEncoding
	header, _ := json.Marshal(map[string]string{"alg": alg, "typ": "JWT"})
	payload, _ := json.Marshal(claims)
	unsigned := enc.EncodeToString(header) + "." + enc.EncodeToString(payload)
	if alg == "none" {
		return unsigned + "."
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(unsigned))
	return unsigned + "." + enc.EncodeToString(mac.Sum(nil))
}

func TestTokenNegatives(t *testing.T) {
	h := newHarness(t)
	id, tok := h.user("alice")
	now := time.Now()
	claims := func(edit func(map[string]any)) map[string]any {
		c := map[string]any{"sub": fmt.Sprint(id), "username": "alice", "role": "admin", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
		edit(c)
		return c
	}
	same := func(map[string]any) {}
	require.Equal(t, http.StatusOK, h.get("/me", forge("HS256", signingKey, claims(same))).status, "the forger works with the real key")

	parts := strings.Split(tok, ".")
	parts[1] = base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"` + fmt.Sprint(id) + `","role":"admin","iat":1,"exp":9999999999}`))
	tampered := strings.Join(parts, ".")

	for name, token := range map[string]string{
		"alg_none":         forge("none", nil, claims(same)),
		"tampered_payload": tampered,
		"wrong_key":        forge("HS256", []byte("not-the-server-key-0123456789abcdef"), claims(same)),
		"expired":          forge("HS256", signingKey, claims(func(c map[string]any) { c["exp"] = now.Add(-time.Minute).Unix() })),
		"not_yet_valid":    forge("HS256", signingKey, claims(func(c map[string]any) { c["nbf"] = now.Add(time.Hour).Unix() })),
		"unknown_user":     forge("HS256", signingKey, claims(func(c map[string]any) { c["sub"] = "9999" })),
		"sub_not_an_id":    forge("HS256", signingKey, claims(func(c map[string]any) { c["sub"] = "alice" })),
		"garbage":          "abc.def.ghi",
	} {
		t.Run(name, func(t *testing.T) {
			h.get("/me", token).problem(t, http.StatusUnauthorized)
		})
	}
	t.Run("missing_or_other_scheme", func(t *testing.T) {
		h.get("/me", "").problem(t, http.StatusUnauthorized)
		r := h.do(req{method: http.MethodGet, path: "/me", header: map[string]string{"Authorization": "Basic YWxpY2U6eA=="}})
		r.problem(t, http.StatusUnauthorized)
		r = h.do(req{method: http.MethodGet, path: "/me", header: map[string]string{"Authorization": "bearer " + tok}})
		assert.Equal(t, http.StatusOK, r.status, "the scheme is case-insensitive")
	})
}
