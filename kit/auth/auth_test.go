package auth

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/redline-dev/redline/kit/middleware"
)

func TestSignVerify(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	s, err := NewSigner(strings.Repeat("k", 32), clock)
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := s.Sign(42, time.Hour)
	if sub, err := s.Verify(tok); err != nil || sub != 42 {
		t.Fatalf("Verify = %d, %v; want 42", sub, err)
	}
	other, _ := NewSigner(strings.Repeat("x", 32), clock)
	if _, err := other.Verify(tok); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Verify with another key = %v; want ErrInvalid", err)
	}
	forged := strings.Replace(tok, "v1.42.", "v1.43.", 1)
	if _, err := s.Verify(forged); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Verify(forged subject) = %v; want ErrInvalid", err)
	}
	now = now.Add(2 * time.Hour)
	if _, err := s.Verify(tok); !errors.Is(err, ErrExpired) {
		t.Fatalf("Verify(expired) = %v; want ErrExpired", err)
	}
	if _, err := NewSigner("short", nil); err == nil {
		t.Fatal("NewSigner accepted a short key")
	}
}

func FuzzVerify(f *testing.F) {
	// A key of this run only, so no token from an earlier run's corpus is valid.
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	s, _ := NewSigner(hex.EncodeToString(key), nil)
	tok, _ := s.Sign(7, time.Hour)
	f.Add(tok)
	f.Add("v1.1.1.x")
	f.Add("")
	f.Fuzz(func(t *testing.T, token string) {
		_, err := s.Verify(token)
		switch {
		case err == nil && token != tok:
			// Nobody forges HMAC-SHA256 by fuzzing: anything else accepted is a parsing hole.
			t.Fatalf("Verify(%q) accepted a token this signer did not make", token)
		case err != nil && !errors.Is(err, ErrMissing) && !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrExpired):
			t.Fatalf("Verify(%q) = %v; want one of the auth errors", token, err)
		}
	})
}

func TestRequireAndOptional(t *testing.T) {
	s, _ := NewSigner(strings.Repeat("k", 32), nil)
	tok, _ := s.Sign(42, time.Hour)
	var seen int64
	next := func(ctx context.Context, _ any) (any, error) {
		seen, _ = Subject(ctx)
		return nil, nil
	}
	call := func(m middleware.Middleware, authz string) error {
		seen = 0
		h := http.Header{}
		if authz != "" {
			h.Set("Authorization", authz)
		}
		ctx := middleware.NewContext(context.Background(), &middleware.Info{Header: h})
		_, err := m(next)(ctx, nil)
		return err
	}
	for _, tc := range []struct {
		name     string
		m        middleware.Middleware
		authz    string
		wantErr  error
		wantSeen int64
	}{
		{"require ok", Require(s), "Bearer " + tok, nil, 42},
		{"require missing", Require(s), "", ErrMissing, 0},
		{"require bad", Require(s), "Bearer v1.1.1.x", ErrInvalid, 0},
		{"optional anonymous", Optional(s), "", nil, 0},
		{"optional ok", Optional(s), "Bearer " + tok, nil, 42},
		{"optional bad token refused", Optional(s), "Bearer v1.1.1.x", ErrInvalid, 0},
		{"optional not bearer", Optional(s), "Basic abc", ErrInvalid, 0},
	} {
		err := call(tc.m, tc.authz)
		if !errors.Is(err, tc.wantErr) || (err == nil) != (tc.wantErr == nil) || seen != tc.wantSeen {
			t.Errorf("%s: err %v subject %d; want %v and %d", tc.name, err, seen, tc.wantErr, tc.wantSeen)
		}
	}
}
