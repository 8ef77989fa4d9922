package authn

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"strings"
)

// ExecutorTokenPrefix begins every executor token, so that one is told
// from a user's JWT at a glance (and by secret scanners).
const ExecutorTokenPrefix = "gaas_exec_"

// executorTokenBytes is the randomness of an executor token: 256 bits,
// which no one guesses, so that a fast hash of it is as safe to keep as a
// slow one.
const executorTokenBytes = 32

// executorTokenLen is the length of a well-formed executor token.
var executorTokenLen = len(ExecutorTokenPrefix) + base64.RawURLEncoding.EncodedLen(executorTokenBytes)

// NewExecutorToken returns a new executor token and the hash to keep of
// it: "gaas_exec_" and 32 random bytes in unpadded base64url.
func NewExecutorToken() (token, hash string) {
	var b [executorTokenBytes]byte
	rand.Read(b[:]) // never fails (crypto/rand since Go 1.24)
	token = ExecutorTokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	return token, HashExecutorToken(token)
}

// IsExecutorToken reports whether token has the form of an executor
// token; it says nothing of whether one was issued.
func IsExecutorToken(token string) bool {
	rest, ok := strings.CutPrefix(token, ExecutorTokenPrefix)
	if !ok || len(token) != executorTokenLen {
		return false
	}
	b, err := base64.RawURLEncoding.DecodeString(rest)
	return err == nil && len(b) == executorTokenBytes
}

// HashExecutorToken is the hash kept of an executor token: its SHA-256,
// in hex.
func HashExecutorToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// VerifyExecutorToken reports whether token hashes to hash, comparing the
// two in constant time.
func VerifyExecutorToken(token, hash string) bool {
	want := HashExecutorToken(token)
	return subtle.ConstantTimeCompare([]byte(want), []byte(hash)) == 1
}
