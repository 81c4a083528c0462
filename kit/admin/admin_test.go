package admin

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func get(t *testing.T, h http.Handler, path, token string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest("GET", path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestTokenGuardsAllButProbes(t *testing.T) {
	s := New(Token("s3cret"))
	s.SetConfig(func() any { return map[string]string{"admin.token": "REDACTED"} })
	s.AddState("breaker", func() any { return map[string]string{"state": "closed"} })
	for _, path := range []string{"/healthz", "/readyz", "/"} {
		if rec := get(t, s, path, ""); rec.Code != http.StatusOK {
			t.Errorf("GET %s without token = %d; want 200 (probes and the data-less dashboard page stay open)", path, rec.Code)
		}
	}
	if rec := get(t, s, "/", ""); !strings.Contains(rec.Body.String(), "Redline") || rec.Header().Get("Content-Type") != "text/html; charset=utf-8" {
		t.Errorf("GET / = %q; want the dashboard page", rec.Header().Get("Content-Type"))
	}
	for _, path := range []string{"/metrics", "/config", "/state", "/debug/pprof/"} {
		if rec := get(t, s, path, ""); rec.Code != http.StatusUnauthorized || !strings.Contains(rec.Body.String(), "admin.token") {
			t.Errorf("GET %s without token = %d %s; want 401 saying what to send", path, rec.Code, rec.Body)
		}
		if rec := get(t, s, path, "wrong"); rec.Code != http.StatusUnauthorized {
			t.Errorf("GET %s with a wrong token = %d; want 401", path, rec.Code)
		}
		if rec := get(t, s, path, "s3cret"); rec.Code != http.StatusOK {
			t.Errorf("GET %s with the token = %d; want 200", path, rec.Code)
		}
	}
	var state map[string]json.RawMessage
	var breaker map[string]string
	if err := json.Unmarshal(get(t, s, "/state", "s3cret").Body.Bytes(), &state); err != nil ||
		json.Unmarshal(state["breaker"], &breaker) != nil || breaker["state"] != "closed" || state["routes"] == nil {
		t.Fatalf("/state = %s, %v; want the registered section and routes", state, err)
	}
}

func TestReadiness(t *testing.T) {
	s := New()
	s.AddCheck("db", func(context.Context) error { return nil })
	if rec := get(t, s, "/readyz", ""); rec.Code != http.StatusOK {
		t.Fatalf("/readyz = %d; want 200", rec.Code)
	}
	s.AddCheck("note", func(context.Context) error { return errors.New("note: no instances registered") })
	rec := get(t, s, "/readyz", "")
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "no instances") {
		t.Fatalf("/readyz = %d %s; want 503 naming the missing dependency", rec.Code, rec.Body)
	}
	s2 := New()
	s2.SetDraining(true)
	var r Readiness
	rec = get(t, s2, "/readyz", "")
	_ = json.Unmarshal(rec.Body.Bytes(), &r)
	if rec.Code != http.StatusServiceUnavailable || !r.Draining {
		t.Fatalf("/readyz while draining = %d %+v; want 503 draining", rec.Code, r)
	}
}
