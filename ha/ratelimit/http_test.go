package ratelimit_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/redline-dev/redline/ha/clock"
	"github.com/redline-dev/redline/ha/ratelimit"
	"github.com/redline-dev/redline/kit/errs"
	"github.com/redline-dev/redline/kit/log"
	kithttp "github.com/redline-dev/redline/kit/transport/http"
)

// TestHTTPServer429 runs the middleware in the kit's HTTP server, which renders the error.
func TestHTTPServer429(t *testing.T) {
	clk := clock.NewFake(time.Time{})
	l := ratelimit.New(ratelimit.Default(ratelimit.Limit{Rate: 0.5, Burst: 2}), ratelimit.Clock(clk))
	s := kithttp.NewServer("test", kithttp.Logger(log.Discard()), kithttp.Middleware(ratelimit.Server(l)))
	kithttp.Route(s, "GET /v1/thing", func(context.Context, *struct{}) (*struct{ OK bool }, error) {
		return &struct{ OK bool }{true}, nil
	})
	do := func(client string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodGet, "/v1/thing", nil)
		r.Header.Set(ratelimit.HeaderClientID, client)
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		return w
	}
	for i := range 2 {
		if w := do("a"); w.Code != http.StatusOK {
			t.Fatalf("request %d: status %d; want 200", i+1, w.Code)
		}
	}
	w := do("a")
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "2" {
		t.Fatalf("third request: status %d, Retry-After %q; want 429, 2", w.Code, w.Header().Get("Retry-After"))
	}
	var body errs.Body
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatalf("body %s: %v", w.Body, err)
	}
	if e := errs.FromBody(w.Code, body); e.Reason != ratelimit.ReasonRateLimited || e.Metadata[ratelimit.MetadataRetryAfter] != "2000" || e.Retryable {
		t.Fatalf("body = %s; want reason %s, %s 2000, not retryable", w.Body, ratelimit.ReasonRateLimited, ratelimit.MetadataRetryAfter)
	}
	if w := do("b"); w.Code != http.StatusOK {
		t.Fatalf("another client: status %d; want 200", w.Code)
	}
}
