package authn_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/gaas-io/gaas/authn"
)

// Executor tokens are "gaas_exec_" and 32 random bytes in base64url, each
// new one different; a token verifies against its own hash only.
func TestExecutorTokens(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		token, hash := authn.NewExecutorToken()
		assert.True(t, strings.HasPrefix(token, authn.ExecutorTokenPrefix))
		assert.Len(t, token, len(authn.ExecutorTokenPrefix)+43)
		assert.True(t, authn.IsExecutorToken(token))
		assert.Equal(t, authn.HashExecutorToken(token), hash)
		assert.Len(t, hash, 64)
		assert.NotContains(t, hash, token[len(authn.ExecutorTokenPrefix):])
		assert.True(t, authn.VerifyExecutorToken(token, hash))
		assert.False(t, seen[token])
		seen[token] = true
	}
	token, hash := authn.NewExecutorToken()
	other, otherHash := authn.NewExecutorToken()
	assert.False(t, authn.VerifyExecutorToken(token, otherHash))
	assert.False(t, authn.VerifyExecutorToken(other, hash))
	assert.False(t, authn.VerifyExecutorToken(token, ""))
	for _, bad := range []string{"", authn.ExecutorTokenPrefix, token[1:], token + "A", token[:len(token)-1] + "!",
		strings.Replace(token, "gaas_exec_", "gaas_user_", 1), "eyJhbGciOiJIUzI1NiJ9.e30.sig"} {
		assert.False(t, authn.IsExecutorToken(bad), "%q", bad)
	}
}
