// Package authn hashes passwords, issues and verifies tokens, and puts the
// two together into a gaas.Authenticator.
package authn

import (
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// DefaultIterations is the PBKDF2-HMAC-SHA256 work factor of new hashes:
// OWASP's recommended figure.
const DefaultIterations = 600_000

// MaxIterations bounds the work factor a stored hash may ask for, so that
// no hash can make a single login take minutes.
const MaxIterations = 100_000_000

const (
	saltSize = 16
	keySize  = sha256.Size
	prefix   = "$pbkdf2-sha256$"
)

// newHash is PBKDF2's hash function; a variable only so that the tests can
// count the work a login does.
var newHash = sha256.New

// ErrMalformedHash is returned for a stored hash that is not in passlib's
// pbkdf2_sha256 format.
var ErrMalformedHash = errors.New("authn: malformed password hash")

// ab64 is passlib's "adapted base64": the standard alphabet with '.' in
// place of '+', and no padding.
var ab64 = base64.NewEncoding("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789./").WithPadding(base64.NoPadding)

// Hasher makes and checks PBKDF2-HMAC-SHA256 password hashes in passlib's
// pbkdf2_sha256 format, "$pbkdf2-sha256$<rounds>$<salt>$<checksum>", so
// that hashes written by passlib verify here and the reverse.
type Hasher struct {
	// Iterations is the work factor of new hashes; 0 means DefaultIterations.
	Iterations int
}

func (h Hasher) iterations() int {
	if h.Iterations <= 0 {
		return DefaultIterations
	}
	return h.Iterations
}

// Hash returns a new hash of password with a random 16-byte salt.
func (h Hasher) Hash(password string) (string, error) {
	salt := make([]byte, saltSize)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("authn: salt: %w", err)
	}
	return hashWithSalt(password, salt, h.iterations())
}

func hashWithSalt(password string, salt []byte, rounds int) (string, error) {
	sum, err := pbkdf2.Key(newHash, password, salt, rounds, keySize)
	if err != nil {
		return "", fmt.Errorf("authn: hash: %w", err)
	}
	return prefix + strconv.Itoa(rounds) + "$" + ab64.EncodeToString(salt) + "$" + ab64.EncodeToString(sum), nil
}

// Verify reports whether password matches the stored hash, comparing in
// constant time. When it matches but the hash has fewer rounds than h
// makes now, rehash is true: the caller should store a fresh Hash.
func (h Hasher) Verify(password, hash string) (ok, rehash bool, err error) {
	rounds, salt, want, err := parseHash(hash)
	if err != nil {
		return false, false, err
	}
	got, err := pbkdf2.Key(newHash, password, salt, rounds, keySize)
	if err != nil {
		return false, false, fmt.Errorf("authn: verify: %w", err)
	}
	if subtle.ConstantTimeCompare(got, want) != 1 {
		return false, false, nil
	}
	return true, rounds < h.iterations(), nil
}

// hashRounds is the work factor of a stored hash; 0 for a malformed one.
func hashRounds(hash string) int {
	n, _, _, err := parseHash(hash)
	if err != nil {
		return 0
	}
	return n
}

// parseHash splits a passlib pbkdf2_sha256 hash into its parts.
func parseHash(hash string) (rounds int, salt, sum []byte, err error) {
	rest, ok := strings.CutPrefix(hash, prefix)
	if !ok {
		return 0, nil, nil, ErrMalformedHash
	}
	parts := strings.Split(rest, "$")
	if len(parts) != 3 || parts[0] == "" || parts[0][0] == '0' {
		return 0, nil, nil, ErrMalformedHash
	}
	rounds, err = strconv.Atoi(parts[0])
	if err != nil || rounds < 1 || rounds > MaxIterations {
		return 0, nil, nil, ErrMalformedHash
	}
	if salt, err = ab64.Strict().DecodeString(parts[1]); err != nil || len(salt) > 1024 {
		return 0, nil, nil, ErrMalformedHash
	}
	if sum, err = ab64.Strict().DecodeString(parts[2]); err != nil || len(sum) != keySize {
		return 0, nil, nil, ErrMalformedHash
	}
	return rounds, salt, sum, nil
}
