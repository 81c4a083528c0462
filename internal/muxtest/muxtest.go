// Package muxtest serves one request through an admin API in memory, for the tests of the
// packages that register one (chaos/faults, chaos/procs).
package muxtest

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// Serve registers an API on a fresh mux, serves method path with body, checks that the
// answer is JSON, and returns its status and body.
func Serve(t testing.TB, register func(*http.ServeMux), method, path, body string) (int, []byte) {
	t.Helper()
	mux := http.NewServeMux()
	register(mux)
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: Content-Type %q; want application/json", method, path, ct)
	}
	return rec.Code, rec.Body.Bytes()
}

// Decode decodes b into a T, failing the test when it cannot.
func Decode[T any](t testing.TB, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return v
}
