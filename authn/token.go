package authn

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/gaas-io/gaas/gaas"
)

// MinKeySize is the shortest HS256 key that Tokens accepts: 256 bits.
const MinKeySize = 32

// DefaultTokenTTL is how long a token lives unless configured otherwise.
const DefaultTokenTTL = 30 * time.Minute

// Claims are what a token says about its holder. The role is for clients to
// read; servers authorize on the role that the store holds now.
type Claims struct {
	UserID    int64
	Username  string
	Role      gaas.Role
	IssuedAt  time.Time
	ExpiresAt time.Time

	// Generation is the user's gaas.User.TokenGeneration when the token
	// was issued (claim "gen"; 0 for tokens issued before it existed). The
	// token is revoked once the user's generation moves on.
	Generation int64
}

// Tokens issues and verifies HS256-signed JWTs. Verification accepts
// HS256 alone: a token signed with any other algorithm, or with none, does
// not verify.
type Tokens struct {
	key []byte
	ttl time.Duration
	now func() time.Time

	// verified remembers tokens that verified, until they expire: parsing
	// and checking a JWT was a tenth of the processor time of a
	// submission. Only a token that verified fully gets in, its expiry is
	// checked again on every use, and the key is the whole token, so the
	// cache can make no token verify that would not verify anyway.
	mu       sync.Mutex
	verified map[string]Claims
}

// maxVerified bounds the tokens Tokens remembers.
const maxVerified = 10_000

// NewTokens returns Tokens that sign with key, at least MinKeySize bytes,
// and issue tokens living ttl (DefaultTokenTTL when 0). now is the clock;
// nil means time.Now.
func NewTokens(key []byte, ttl time.Duration, now func() time.Time) (*Tokens, error) {
	if len(key) < MinKeySize {
		return nil, fmt.Errorf("authn: signing key is %d bytes, at least %d are needed", len(key), MinKeySize)
	}
	if ttl < 0 {
		return nil, fmt.Errorf("authn: token lifetime %s is negative", ttl)
	}
	if ttl == 0 {
		ttl = DefaultTokenTTL
	}
	if now == nil {
		now = time.Now
	}
	return &Tokens{key: append([]byte(nil), key...), ttl: ttl, now: now, verified: map[string]Claims{}}, nil
}

// TTL is the lifetime of the tokens t issues.
func (t *Tokens) TTL() time.Duration { return t.ttl }

// Issue signs a token for u that expires after the configured lifetime.
func (t *Tokens) Issue(u gaas.User) (gaas.Token, error) {
	now := t.now().Truncate(time.Second)
	exp := now.Add(t.ttl)
	tok, err := jwt.NewBuilder().
		Subject(strconv.FormatInt(u.ID, 10)).
		IssuedAt(now).
		Expiration(exp).
		Claim("username", u.Username).
		Claim("role", string(u.Role)).
		Claim("gen", u.TokenGeneration).
		Build()
	if err != nil {
		return gaas.Token{}, fmt.Errorf("authn: build token: %w", err)
	}
	signed, err := jwt.Sign(tok, jwt.WithKey(jwa.HS256(), t.key))
	if err != nil {
		return gaas.Token{}, fmt.Errorf("authn: sign token: %w", err)
	}
	return gaas.Token{AccessToken: string(signed), ExpiresAt: exp, ExpiresIn: t.ttl}, nil
}

// errBadToken is the one error that every failed verification wraps.
var errBadToken = fmt.Errorf("authn: token does not verify: %w", gaas.ErrUnauthorized)

// Verify checks a token's signature (HS256 with t's key, nothing else),
// its exp, nbf and iat, and that it names a user, and returns its claims.
// Every failure is gaas.ErrUnauthorized.
func (t *Tokens) Verify(token string) (Claims, error) {
	now := t.now()
	t.mu.Lock()
	c, ok := t.verified[token]
	t.mu.Unlock()
	if ok && now.Before(c.ExpiresAt) {
		return c, nil
	}
	c, err := t.verify(token)
	if err != nil {
		return Claims{}, err
	}
	t.mu.Lock()
	if len(t.verified) >= maxVerified {
		for k, v := range t.verified { // forget the expired, or else any
			if !now.Before(v.ExpiresAt) || len(t.verified) >= maxVerified {
				delete(t.verified, k)
			}
		}
	}
	t.verified[token] = c
	t.mu.Unlock()
	return c, nil
}

func (t *Tokens) verify(token string) (Claims, error) {
	if !canonicalCompact(token) {
		return Claims{}, fmt.Errorf("%w: not a compact JWS in canonical base64url", errBadToken)
	}
	tok, err := jwt.ParseString(token,
		jwt.WithKey(jwa.HS256(), t.key),
		jwt.WithValidate(true),
		jwt.WithClock(jwt.ClockFunc(t.now)),
		jwt.WithRequiredClaim("exp"),
		jwt.WithRequiredClaim("iat"),
		jwt.WithRequiredClaim("sub"),
	)
	if err != nil {
		return Claims{}, fmt.Errorf("%w: %w", errBadToken, err)
	}
	var c Claims
	sub, _ := tok.Subject()
	c.UserID, err = strconv.ParseInt(sub, 10, 64)
	if err != nil || c.UserID <= 0 || strconv.FormatInt(c.UserID, 10) != sub {
		return Claims{}, fmt.Errorf("%w: sub %q is not a user id", errBadToken, sub)
	}
	var role string
	if err := errors.Join(tok.Get("username", &c.Username), tok.Get("role", &role)); err != nil {
		return Claims{}, fmt.Errorf("%w: %w", errBadToken, err)
	}
	c.Role = gaas.Role(role)
	if c.Generation, err = generation(tok); err != nil {
		return Claims{}, fmt.Errorf("%w: %w", errBadToken, err)
	}
	c.IssuedAt, _ = tok.IssuedAt()
	c.ExpiresAt, _ = tok.Expiration()
	return c, nil
}

// generation reads the claim "gen": a whole number, 0 or more, or absent
// (0) in tokens issued before it existed.
func generation(tok jwt.Token) (int64, error) {
	if !tok.Has("gen") {
		return 0, nil
	}
	var v any
	if err := tok.Get("gen", &v); err != nil {
		return 0, err
	}
	f, ok := v.(float64)
	if !ok || f < 0 || f > 1<<53 || f != float64(int64(f)) {
		return 0, fmt.Errorf("gen %v is not a token generation", v)
	}
	return int64(f), nil
}

// canonicalCompact reports whether token is three parts of unpadded
// base64url, each the one canonical encoding of its bytes. jwx alone would
// accept padding, and the standard decoder skips newlines and ignores
// trailing bits, so that many strings carry one signature; here exactly
// one string verifies.
func canonicalCompact(token string) bool {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return false
	}
	for _, p := range parts {
		for i := 0; i < len(p); i++ {
			c := p[i]
			if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
		if _, err := base64.RawURLEncoding.Strict().DecodeString(p); err != nil {
			return false
		}
	}
	return true
}
