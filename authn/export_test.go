package authn

import (
	"crypto/sha256"
	"hash"
	"sync/atomic"
)

// HashWithSalt exposes the salted hash to the tests, to compare with passlib.
var HashWithSalt = hashWithSalt

// CountHashWork makes PBKDF2 count the SHA-256 blocks it finishes (two per
// round, through HMAC), still computing the real hash, until restore.
func CountHashWork() (count func() int64, restore func()) {
	var n atomic.Int64
	newHash = func() hash.Hash { return &countingHash{Hash: sha256.New(), n: &n} }
	return n.Load, func() { newHash = sha256.New }
}

type countingHash struct {
	hash.Hash
	n *atomic.Int64
}

func (c *countingHash) Sum(b []byte) []byte {
	c.n.Add(1)
	return c.Hash.Sum(b)
}
