package authn_test

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gaas-io/gaas/authn"
)

type passlibVectors struct {
	Generator string `json:"generator"`
	Vectors   []struct {
		Password string `json:"password"`
		Hash     string `json:"hash"`
	} `json:"vectors"`
}

func loadVectors(t *testing.T) passlibVectors {
	t.Helper()
	b, err := os.ReadFile("testdata/passlib_vectors.json")
	require.NoError(t, err)
	var v passlibVectors
	require.NoError(t, json.Unmarshal(b, &v))
	require.NotEmpty(t, v.Vectors)
	return v
}

// Hashes made by passlib 1.7.4 verify unchanged.
func TestVerifyPasslibHashes(t *testing.T) {
	h := authn.Hasher{Iterations: 29000}
	for _, v := range loadVectors(t).Vectors {
		t.Run(v.Hash[:24], func(t *testing.T) {
			ok, _, err := h.Verify(v.Password, v.Hash)
			require.NoError(t, err)
			assert.True(t, ok)
			ok, _, err = h.Verify(v.Password+"x", v.Hash)
			require.NoError(t, err)
			assert.False(t, ok)
		})
	}
}

// A hash made here with passlib's salt and rounds is, byte for byte, the
// hash passlib made: so passlib verifies ours.
func TestHashMatchesPasslib(t *testing.T) {
	const passlibHash = "$pbkdf2-sha256$1234$AAECAwQFBgcICQoLDA0ODw$xABqLBrdAewWMhrGnV5vZHa6Fl3YHmjU3m0Ega4GZis"
	salt := make([]byte, 16)
	for i := range salt {
		salt[i] = byte(i)
	}
	got, err := authn.HashWithSalt("salted", salt, 1234)
	require.NoError(t, err)
	assert.Equal(t, passlibHash, got)
}

func TestHash(t *testing.T) {
	h := authn.Hasher{Iterations: 1000}
	a, err := h.Hash("correct horse")
	require.NoError(t, err)
	b, err := h.Hash("correct horse")
	require.NoError(t, err)
	assert.NotEqual(t, a, b, "salts are random")
	assert.True(t, strings.HasPrefix(a, "$pbkdf2-sha256$1000$"))
	assert.Len(t, strings.Split(a, "$")[3], 22, "16-byte salt")

	ok, rehash, err := h.Verify("correct horse", a)
	require.NoError(t, err)
	assert.True(t, ok)
	assert.False(t, rehash)

	stronger := authn.Hasher{Iterations: 2000}
	ok, rehash, err = stronger.Verify("correct horse", a)
	require.NoError(t, err)
	assert.True(t, ok)
	assert.True(t, rehash, "fewer rounds than configured")
	_, rehash, _ = stronger.Verify("wrong", a)
	assert.False(t, rehash, "a wrong password is never rehashed")

	def, err := authn.Hasher{}.Hash("x")
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(def, "$pbkdf2-sha256$600000$"))
}

func TestVerifyMalformed(t *testing.T) {
	h := authn.Hasher{}
	for _, bad := range []string{
		"",
		"plaintext",
		"$pbkdf2-sha1$1000$AAAA$AAAA",
		"$pbkdf2-sha256$$AAECAwQFBgcICQoLDA0ODw$xABqLBrdAewWMhrGnV5vZHa6Fl3YHmjU3m0Ega4GZis",
		"$pbkdf2-sha256$0$AAECAwQFBgcICQoLDA0ODw$xABqLBrdAewWMhrGnV5vZHa6Fl3YHmjU3m0Ega4GZis",
		"$pbkdf2-sha256$-5$AAECAwQFBgcICQoLDA0ODw$xABqLBrdAewWMhrGnV5vZHa6Fl3YHmjU3m0Ega4GZis",
		"$pbkdf2-sha256$01234$AAECAwQFBgcICQoLDA0ODw$xABqLBrdAewWMhrGnV5vZHa6Fl3YHmjU3m0Ega4GZis",
		"$pbkdf2-sha256$99999999999$AAECAwQFBgcICQoLDA0ODw$xABqLBrdAewWMhrGnV5vZHa6Fl3YHmjU3m0Ega4GZis",
		"$pbkdf2-sha256$1234$AAECAwQFBgcICQoLDA0ODw$xABqLBrdAewWMhrGnV5vZHa6Fl3YHmjU3m0Ega4GZ",
		"$pbkdf2-sha256$1234$AAEC+wQFBgcICQoLDA0ODw$xABqLBrdAewWMhrGnV5vZHa6Fl3YHmjU3m0Ega4GZis",
		"$pbkdf2-sha256$1234$AAECAwQFBgcICQoLDA0ODw$xABqLBrdAewWMhrGnV5vZHa6Fl3YHmjU3m0Ega4GZis$",
		"$pbkdf2-sha256$1234$AAECAwQFBgcICQoLDA0ODw==$xABqLBrdAewWMhrGnV5vZHa6Fl3YHmjU3m0Ega4GZis",
	} {
		ok, _, err := h.Verify("salted", bad)
		assert.ErrorIs(t, err, authn.ErrMalformedHash, bad)
		assert.False(t, ok)
	}
}
