// Package auth issues and checks Redline bearer tokens, and provides the middleware that
// requires one. A token is "v1.<subject>.<expiry unix s>.<HMAC-SHA256>" in base64url, signed
// with a secret key shared by the issuer (user service) and the checkers (BFF), so checking
// a token costs no network call.
package auth

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redline-dev/redline/kit/errs"
	"github.com/redline-dev/redline/kit/middleware"
)

// MinKeyLen is the shortest signing key accepted.
const MinKeyLen = 16

// Signer issues and verifies tokens with one key.
type Signer struct {
	key []byte
	now func() time.Time
}

// NewSigner returns a Signer. The key must be at least MinKeyLen bytes.
func NewSigner(key string, now func() time.Time) (*Signer, error) {
	if len(key) < MinKeyLen {
		return nil, fmt.Errorf("auth: token key must be at least %d bytes (set auth.token_key)", MinKeyLen)
	}
	if now == nil {
		now = time.Now
	}
	return &Signer{key: []byte(key), now: now}, nil
}

// Sign returns a token for subject that expires after ttl, and its expiry.
func (s *Signer) Sign(subject int64, ttl time.Duration) (token string, expires time.Time) {
	expires = s.now().Add(ttl).Truncate(time.Second)
	payload := "v1." + strconv.FormatInt(subject, 10) + "." + strconv.FormatInt(expires.Unix(), 10)
	return payload + "." + s.mac(payload), expires
}

func (s *Signer) mac(payload string) string {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(payload))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// Errors from Verify; all are Unauthenticated.
var (
	ErrMissing = errs.Unauthenticated("TOKEN_MISSING", "this route needs a token: log in with POST /v1/sessions and send Authorization: Bearer <token>")
	ErrInvalid = errs.Unauthenticated("TOKEN_INVALID", "the token is malformed or its signature is wrong: log in again")
	ErrExpired = errs.Unauthenticated("TOKEN_EXPIRED", "the token has expired: log in again")
)

// Verify checks token and returns its subject.
func (s *Signer) Verify(token string) (int64, error) {
	if token == "" {
		return 0, ErrMissing
	}
	if len(token) > 256 {
		return 0, ErrInvalid
	}
	i := strings.LastIndexByte(token, '.')
	if i < 0 {
		return 0, ErrInvalid
	}
	payload, sig := token[:i], token[i+1:]
	if !hmac.Equal([]byte(sig), []byte(s.mac(payload))) {
		return 0, ErrInvalid
	}
	parts := strings.Split(payload, ".")
	if len(parts) != 3 || parts[0] != "v1" {
		return 0, ErrInvalid
	}
	sub, err1 := strconv.ParseInt(parts[1], 10, 64)
	exp, err2 := strconv.ParseInt(parts[2], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, ErrInvalid
	}
	if s.now().Unix() >= exp {
		return 0, ErrExpired
	}
	return sub, nil
}

type subjectKey struct{}

// WithSubject returns ctx carrying the authenticated subject.
func WithSubject(ctx context.Context, sub int64) context.Context {
	return context.WithValue(ctx, subjectKey{}, sub)
}

// Subject returns the authenticated subject in ctx.
func Subject(ctx context.Context) (int64, bool) {
	sub, ok := ctx.Value(subjectKey{}).(int64)
	return sub, ok
}

// Require is a server middleware that refuses requests without a valid bearer token and
// puts the token's subject in the ctx of the rest.
func Require(s *Signer) middleware.Middleware { return check(s, true) }

// Optional is a server middleware for routes that anyone may call but that answer more to a
// signed-in caller (a feed with the viewer's likes): no Authorization header passes as
// anonymous, a valid token puts its subject in ctx, and a bad or expired token is refused, so
// a client learns its session ended rather than silently seeing less.
func Optional(s *Signer) middleware.Middleware { return check(s, false) }

func check(s *Signer, required bool) middleware.Middleware {
	return func(next middleware.Handler) middleware.Handler {
		return func(ctx context.Context, req any) (any, error) {
			info := middleware.FromContext(ctx)
			var h string
			if info != nil && info.Header != nil {
				h = info.Header.Get("Authorization")
			}
			if h == "" {
				if required {
					return nil, ErrMissing
				}
				return next(ctx, req)
			}
			tok, ok := strings.CutPrefix(h, "Bearer ")
			if !ok {
				return nil, ErrInvalid
			}
			sub, err := s.Verify(strings.TrimSpace(tok))
			if err != nil {
				return nil, err
			}
			return next(WithSubject(ctx, sub), req)
		}
	}
}
