package authn_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"hash"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/authn"
	"github.com/gaas-io/gaas/gaas"
)

var testKey = []byte("0123456789abcdef0123456789abcdef")

func fixedClock(t time.Time) func() time.Time { return func() time.Time { return t } }

// forge builds a token by hand, signed with HMAC when alg asks for it.
func forge(t *testing.T, alg string, key []byte, claims map[string]any) string {
	t.Helper()
	enc := base64.RawURLEncoding
	header, err := json.Marshal(map[string]string{"alg": alg, "typ": "JWT"})
	require.NoError(t, err)
	payload, err := json.Marshal(claims)
	require.NoError(t, err)
	unsigned := enc.EncodeToString(header) + "." + enc.EncodeToString(payload)
	var h func() hash.Hash
	switch alg {
	case "HS256":
		h = sha256.New
	case "HS512":
		h = sha512.New
	case "none":
		return unsigned + "."
	}
	mac := hmac.New(h, key)
	mac.Write([]byte(unsigned))
	return unsigned + "." + enc.EncodeToString(mac.Sum(nil))
}

func TestTokens(t *testing.T) {
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	tokens, err := authn.NewTokens(testKey, 30*time.Minute, fixedClock(now))
	require.NoError(t, err)
	u := gaas.User{ID: 42, Username: "alice", Role: gaas.RoleUser, TokenGeneration: 3}

	tok, err := tokens.Issue(u)
	require.NoError(t, err)
	assert.Equal(t, now.Add(30*time.Minute), tok.ExpiresAt)
	assert.Equal(t, 30*time.Minute, tok.ExpiresIn)
	c, err := tokens.Verify(tok.AccessToken)
	require.NoError(t, err)
	assert.Equal(t, authn.Claims{UserID: 42, Username: "alice", Role: gaas.RoleUser, IssuedAt: now, ExpiresAt: now.Add(30 * time.Minute), Generation: 3}, c)

	// The payload carries what clients read.
	var claims map[string]any
	payload, err := base64.RawURLEncoding.DecodeString(strings.Split(tok.AccessToken, ".")[1])
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(payload, &claims))
	assert.Equal(t, "42", claims["sub"])
	assert.Equal(t, "alice", claims["username"])
	assert.Equal(t, "user", claims["role"])
	assert.EqualValues(t, 3, claims["gen"])
	assert.EqualValues(t, now.Unix(), claims["iat"])
	assert.EqualValues(t, now.Add(30*time.Minute).Unix(), claims["exp"])

	valid := func() map[string]any {
		return map[string]any{"sub": "42", "username": "alice", "role": "user", "iat": now.Unix(), "exp": now.Add(time.Minute).Unix()}
	}
	with := func(k string, v any) map[string]any {
		c := valid()
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	require.NotEmpty(t, forge(t, "HS256", testKey, valid()))
	c, err = tokens.Verify(forge(t, "HS256", testKey, valid()))
	require.NoError(t, err, "a hand-made token with the right key verifies, so the negatives below test what they say")
	assert.Zero(t, c.Generation, "a token issued before generations existed is of generation 0")
	c, err = tokens.Verify(forge(t, "HS256", testKey, with("gen", 7)))
	require.NoError(t, err)
	assert.EqualValues(t, 7, c.Generation)

	tampered := func() string {
		parts := strings.Split(tok.AccessToken, ".")
		p, _ := json.Marshal(map[string]any{"sub": "42", "username": "alice", "role": "admin", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()})
		parts[1] = base64.RawURLEncoding.EncodeToString(p)
		return strings.Join(parts, ".")
	}()
	negatives := map[string]string{
		"empty":            "",
		"garbage":          "not.a.token",
		"alg_none":         forge(t, "none", nil, valid()),
		"alg_none_key_sig": forge(t, "none", nil, valid()) + "c2ln",
		"hs512_same_key":   forge(t, "HS512", testKey, valid()),
		"wrong_key":        forge(t, "HS256", []byte("another key of thirty-two bytes!"), valid()),
		"tampered_payload": tampered,
		"truncated_sig":    tok.AccessToken[:len(tok.AccessToken)-2],
		"padded_sig":       tok.AccessToken + "=",
		"newline_in_sig":   tok.AccessToken[:len(tok.AccessToken)-4] + "\n" + tok.AccessToken[len(tok.AccessToken)-4:],
		"four_parts":       tok.AccessToken + ".x",
		"expired":          forge(t, "HS256", testKey, with("exp", now.Add(-time.Second).Unix())),
		"not_yet_valid":    forge(t, "HS256", testKey, with("nbf", now.Add(time.Minute).Unix())),
		"issued_in_future": forge(t, "HS256", testKey, with("iat", now.Add(time.Minute).Unix())),
		"no_exp":           forge(t, "HS256", testKey, with("exp", nil)),
		"no_sub":           forge(t, "HS256", testKey, with("sub", nil)),
		"sub_not_an_id":    forge(t, "HS256", testKey, with("sub", "alice")),
		"sub_zero_padded":  forge(t, "HS256", testKey, with("sub", "042")),
		"sub_negative":     forge(t, "HS256", testKey, with("sub", "-42")),
		"sub_number":       forge(t, "HS256", testKey, with("sub", 42)),
		"gen_negative":     forge(t, "HS256", testKey, with("gen", -1)),
		"gen_fraction":     forge(t, "HS256", testKey, with("gen", 1.5)),
		"gen_string":       forge(t, "HS256", testKey, with("gen", "1")),
	}
	for name, token := range negatives {
		t.Run(name, func(t *testing.T) {
			_, err := tokens.Verify(token)
			assert.ErrorIs(t, err, gaas.ErrUnauthorized)
		})
	}

	later, err := authn.NewTokens(testKey, 30*time.Minute, fixedClock(now.Add(30*time.Minute+time.Second)))
	require.NoError(t, err)
	_, err = later.Verify(tok.AccessToken)
	assert.ErrorIs(t, err, gaas.ErrUnauthorized, "an issued token expires")
}

func TestNewTokensRejectsShortKeys(t *testing.T) {
	_, err := authn.NewTokens(testKey[:31], 0, nil)
	assert.EqualError(t, err, "authn: signing key is 31 bytes, at least 32 are needed")
	_, err = authn.NewTokens(testKey, -time.Second, nil)
	assert.EqualError(t, err, "authn: token lifetime -1s is negative")
	tk, err := authn.NewTokens(testKey, 0, nil)
	require.NoError(t, err)
	assert.Equal(t, authn.DefaultTokenTTL, tk.TTL())
}

var testUser = gaas.User{ID: 42, Username: "alice", Role: gaas.RoleUser}

// A token that verified once is remembered, but never past its expiry.
func TestVerifiedTokensStillExpire(t *testing.T) {
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	clock := now
	tokens, err := authn.NewTokens(testKey, time.Minute, func() time.Time { return clock })
	require.NoError(t, err)
	tok, err := tokens.Issue(testUser)
	require.NoError(t, err)
	for range 3 {
		_, err = tokens.Verify(tok.AccessToken)
		require.NoError(t, err)
	}
	clock = now.Add(time.Minute)
	_, err = tokens.Verify(tok.AccessToken)
	assert.ErrorIs(t, err, gaas.ErrUnauthorized)
	_, err = tokens.Verify(tok.AccessToken + "x")
	assert.ErrorIs(t, err, gaas.ErrUnauthorized)
}

// More tokens than the cache holds all keep verifying.
func TestManyTokens(t *testing.T) {
	tokens, err := authn.NewTokens(testKey, time.Hour, nil)
	require.NoError(t, err)
	var first string
	for i := range 10_050 {
		tok, err := tokens.Issue(gaas.User{ID: int64(i + 1), Username: "u", Role: gaas.RoleUser})
		require.NoError(t, err)
		if i == 0 {
			first = tok.AccessToken
		}
		c, err := tokens.Verify(tok.AccessToken)
		require.NoError(t, err)
		require.Equal(t, int64(i+1), c.UserID)
	}
	c, err := tokens.Verify(first)
	require.NoError(t, err)
	assert.Equal(t, int64(1), c.UserID)
}
