package lane

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestSignVerify(t *testing.T) {
	now := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	s, err := NewSigner(strings.Repeat("k", 32), clock)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := s.Sign("stress-1", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if lane, err := s.Verify(tok); err != nil || lane != "stress-1" {
		t.Fatalf("Verify = %q, %v; want stress-1", lane, err)
	}
	other, _ := NewSigner(strings.Repeat("x", 32), clock)
	for name, tc := range map[string]struct {
		token string
		by    *Signer
		want  error
	}{
		"other key":       {tok, other, ErrSignature},
		"lane swapped":    {strings.Replace(tok, "stress-1", "stress-2", 1), s, ErrSignature},
		"expiry extended": {strings.Replace(tok, ".17", ".27", 1), s, ErrSignature},
		"not a token":     {"stress-1", s, ErrMalformed},
		"empty":           {"", s, ErrMalformed},
		"too long":        {strings.Repeat("a", 300), s, ErrMalformed},
	} {
		if _, err := tc.by.Verify(tc.token); !errors.Is(err, tc.want) {
			t.Errorf("%s: Verify = %v; want %v", name, err, tc.want)
		}
	}
	now = now.Add(time.Hour)
	if _, err := s.Verify(tok); !errors.Is(err, ErrExpired) || Reason(err) != "expired" {
		t.Fatalf("Verify after expiry = %v; want ErrExpired", err)
	}
	if _, err := s.Sign("Bad Lane", time.Hour); !errors.Is(err, ErrName) {
		t.Fatalf("Sign(bad name) = %v; want ErrName", err)
	}
	if _, err := s.Sign("ok", 48*time.Hour); !errors.Is(err, ErrTTL) {
		t.Fatalf("Sign(48h) = %v; want ErrTTL", err)
	}
	if _, err := NewSigner("short", nil); err == nil {
		t.Fatal("NewSigner accepted a short key")
	}
}

func FuzzVerify(f *testing.F) {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	s, _ := NewSigner(hex.EncodeToString(key), nil)
	tok, _ := s.Sign("stress-1", time.Hour)
	f.Add(tok)
	f.Add("v1.a.1.x")
	f.Add("")
	f.Fuzz(func(t *testing.T, token string) {
		lane, err := s.Verify(token)
		switch {
		case err == nil && token != tok:
			t.Fatalf("Verify(%q) accepted a token this signer did not make", token)
		case err == nil && lane != "stress-1":
			t.Fatalf("Verify(%q) = %q; want stress-1", token, lane)
		case err != nil && Reason(err) == "other":
			t.Fatalf("Verify(%q) = %v; want one of the lane errors", token, err)
		}
	})
}
