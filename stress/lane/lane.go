// Package lane signs and verifies lane tokens: the only way a lane (a color for stress or
// canary traffic) enters the system. A client sends the token in the X-Redline-Lane header
// (meta.HeaderLaneToken); the edge verifies it with the stress key and, when it is valid,
// carries the lane inside as the W3C baggage member "lane". An unsigned, expired or badly
// signed token is stripped and counted, so nobody can color traffic without the key.
//
// A token is "v1.<lane>.<expiry unix seconds>.<HMAC-SHA256 of the first three parts,
// base64url>". The lane name is kit/meta's: 1 to 32 of [a-z0-9-], starting with a letter.
package lane

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redline-dev/redline/kit/meta"
)

// MinKeyLen is the shortest stress key accepted.
const MinKeyLen = 16

// MaxTTL bounds how far ahead a token may expire: a leaked token dies within a day.
const MaxTTL = 24 * time.Hour

// Errors from Verify. Reason names each for logs and metrics.
var (
	ErrMalformed = errors.New("lane token is malformed")
	ErrSignature = errors.New("lane token signature does not match")
	ErrExpired   = errors.New("lane token expired")
	ErrName      = errors.New("lane name is not valid")
	ErrTTL       = errors.New("lane token expires too far ahead")
)

// Reason returns the metric label of a Verify error: "malformed", "signature", "expired",
// "name", "ttl", or "other".
func Reason(err error) string {
	switch {
	case errors.Is(err, ErrMalformed):
		return "malformed"
	case errors.Is(err, ErrSignature):
		return "signature"
	case errors.Is(err, ErrExpired):
		return "expired"
	case errors.Is(err, ErrName):
		return "name"
	case errors.Is(err, ErrTTL):
		return "ttl"
	}
	return "other"
}

// Signer makes and checks lane tokens with one stress key.
type Signer struct {
	key []byte
	now func() time.Time
}

// NewSigner returns a Signer; now is the clock (time.Now when nil).
func NewSigner(key string, now func() time.Time) (*Signer, error) {
	if len(key) < MinKeyLen {
		return nil, fmt.Errorf("lane: the stress key must be at least %d bytes", MinKeyLen)
	}
	if now == nil {
		now = time.Now
	}
	return &Signer{key: []byte(key), now: now}, nil
}

func (s *Signer) mac(payload string) string {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(payload))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// Sign returns a token for lane valid for ttl (at most MaxTTL).
func (s *Signer) Sign(lane string, ttl time.Duration) (string, error) {
	if !meta.ValidLane(lane) {
		return "", fmt.Errorf("%w: %q (1 to 32 of a-z, 0-9 and -, starting with a letter)", ErrName, lane)
	}
	if ttl <= 0 || ttl > MaxTTL {
		return "", fmt.Errorf("%w: %v (want 0 < ttl <= %v)", ErrTTL, ttl, MaxTTL)
	}
	payload := "v1." + lane + "." + strconv.FormatInt(s.now().Add(ttl).Unix(), 10)
	return payload + "." + s.mac(payload), nil
}

// Verify checks a token and returns its lane.
func (s *Signer) Verify(token string) (string, error) {
	if len(token) > 256 {
		return "", ErrMalformed
	}
	parts := strings.Split(token, ".")
	if len(parts) != 4 || parts[0] != "v1" {
		return "", ErrMalformed
	}
	exp, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil {
		return "", ErrMalformed
	}
	want := s.mac(parts[0] + "." + parts[1] + "." + parts[2])
	if !hmac.Equal([]byte(want), []byte(parts[3])) {
		return "", ErrSignature
	}
	now := s.now()
	switch {
	case !meta.ValidLane(parts[1]):
		return "", ErrName
	case now.Unix() >= exp:
		return "", ErrExpired
	case time.Unix(exp, 0).Sub(now) > MaxTTL+time.Minute:
		return "", ErrTTL
	}
	return parts[1], nil
}
