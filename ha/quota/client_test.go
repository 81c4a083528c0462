package quota

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc/codes"

	quotav1 "github.com/redline-dev/redline/api/quota/v1"
	"github.com/redline-dev/redline/ha/clock"
	"github.com/redline-dev/redline/kit/errs"
	"github.com/redline-dev/redline/kit/log"
	"github.com/redline-dev/redline/kit/middleware"
)

func manualClient(t *testing.T, api quotav1.QuotaClient, clk clock.Clock, id string, opts ...Option) *Client {
	t.Helper()
	c, err := NewClient(api, append([]Option{ID(id), Clock(clk), Manual(), Logger(log.Discard())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func renew(t *testing.T, c *Client) {
	t.Helper()
	if _, err := c.Renew(context.Background()); err != nil {
		t.Fatalf("Renew: %v", err)
	}
}

// TestClientUnknownResource: a resource the service does not know falls back on its own;
// the client's other resources keep their leases.
func TestClientUnknownResource(t *testing.T) {
	clk := clock.NewFake(time.Time{})
	svc := newTestService(t, clk, map[string]Resource{"known": {Limit: 100}})
	c := manualClient(t, Local(svc), clk, "a", Policies(map[string]Policy{"known": {}, "typo": {InitialRate: 5}}))
	renew(t, c)
	if u, _ := c.Usage("known"); u.Mode != ModeLease || u.Rate != DefaultMinDemand {
		t.Fatalf("known resource: %+v; want a lease of the minimum demand", u)
	}
	u, _ := c.Usage("typo")
	if u.Mode != ModeUnknown || u.Rate != 5 || u.Error == "" {
		t.Fatalf("unknown resource: %+v; want unknown_resource at its initial rate 5 with the service's message", u)
	}
	// The service learns the resource; the client asks again later and gets a lease.
	if err := svc.SetResources(map[string]Resource{"known": {Limit: 100}, "typo": {Limit: 10}}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(DefaultLeaseTTL)
	renew(t, c)
	if u, _ := c.Usage("typo"); u.Mode != ModeLease {
		t.Fatalf("after the service learned it: %+v; want lease", u)
	}
}

// TestClientTransitions walks one resource through every mode and checks the counters.
func TestClientTransitions(t *testing.T) {
	clk := clock.NewFake(time.Time{})
	svc := newTestService(t, clk, map[string]Resource{"t": {Limit: 100, LeaseTTL: time.Second}})
	sw := newSwitchable(svc)
	other := manualClient(t, sw, clk, "other", Policies(map[string]Policy{"t": {}}))
	renew(t, other)
	c := manualClient(t, sw, clk, "me", Policies(map[string]Policy{"t": {}}))
	count := func(from, to string) float64 { return testutil.ToFloat64(transitions.WithLabelValues("t", from, to)) }
	base := map[[2]string]float64{}
	for _, p := range [][2]string{{ModeInitial, ModeLease}, {ModeLease, ModeHeld}, {ModeHeld, ModeFallback}, {ModeFallback, ModeLease}} {
		base[p] = count(p[0], p[1])
	}
	if c.Allow("t") {
		t.Fatal("Allow before any lease = true; want false (initial rate 0)")
	}
	renew(t, c)
	if u, _ := c.Usage("t"); u.Mode != ModeLease || u.Clients != 2 {
		t.Fatalf("after Renew: %+v; want lease, 2 clients", u)
	}
	sw.down.Store(true)
	clk.Advance(700 * time.Millisecond) // renewal due at 2/3 of the TTL
	if _, err := c.Renew(context.Background()); errs.Code(err) != codes.Unavailable {
		t.Fatalf("Renew with the service down = %v; want Unavailable", err)
	}
	if u, _ := c.Usage("t"); u.Mode != ModeHeld {
		t.Fatalf("service down, lease valid: %+v; want held", u)
	}
	clk.Advance(400 * time.Millisecond)
	c.Renew(context.Background())
	if u, _ := c.Usage("t"); u.Mode != ModeFallback || u.Rate != 50 {
		t.Fatalf("service down, lease expired: %+v; want fallback at 100/2", u)
	}
	sw.down.Store(false)
	clk.Advance(MaxBackoff)
	renew(t, c)
	if u, _ := c.Usage("t"); u.Mode != ModeLease {
		t.Fatalf("service back: %+v; want lease", u)
	}
	for p, n := range base {
		if got := count(p[0], p[1]); got != n+1 {
			t.Errorf("transitions %s→%s counted %v; want %v", p[0], p[1], got, n+1)
		}
	}
	b, err := json.Marshal(c.State())
	if err != nil {
		t.Fatalf("State is not JSON: %v", err)
	}
	t.Logf("state: %s", b)
}

// TestClientCloseReleases: Close gives the share back at once.
func TestClientCloseReleases(t *testing.T) {
	clk := clock.NewFake(time.Time{})
	svc := newTestService(t, clk, map[string]Resource{"r": {Limit: 100}})
	c, err := NewClient(Local(svc), ID("a"), Clock(clk), Manual(), Logger(log.Discard()), Policies(map[string]Policy{"r": {}}))
	if err != nil {
		t.Fatal(err)
	}
	renew(t, c)
	if g := grants(t, svc)["r"]; len(g) != 1 {
		t.Fatalf("grants %v; want one client", g)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if g := grants(t, svc)["r"]; len(g) != 0 {
		t.Fatalf("grants after Close %v; want none", g)
	}
}

// TestClientBackground runs the real loop on the real clock against an in-process
// service: it asks for a declared resource by itself, and Close stops it (goleak checks).
func TestClientBackground(t *testing.T) {
	svc := newTestService(t, clock.Real{}, map[string]Resource{"r": {Limit: 1000}})
	c, err := NewClient(Local(svc), Logger(log.Discard()), Policies(map[string]Policy{"r": {}}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if u, _ := c.Usage("r"); u.Mode == ModeLease {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no lease 5 s after start: %+v", c.State())
		}
		time.Sleep(time.Millisecond) // waiting for a real goroutine, not asserting a time
	}
}

func TestServerMiddleware(t *testing.T) {
	clk := clock.NewFake(time.Time{})
	svc := newTestService(t, clk, map[string]Resource{"search": {Limit: 4}})
	c := manualClient(t, Local(svc), clk, "bff", MinDemand(4), Headroom(1), Burst(time.Second),
		Policies(map[string]Policy{"search": {}}))
	renew(t, c)
	h := Server(c, map[string]string{"GET /v1/search": "search"})(func(context.Context, any) (any, error) { return "ok", nil })
	call := func(op string, reply middleware.Header) error {
		ctx := middleware.NewContext(context.Background(), &middleware.Info{Kind: middleware.HTTP, Operation: op, Reply: reply})
		_, err := h(ctx, nil)
		return err
	}
	for i := range 5 { // a full bucket: 1 s of 4/s, plus the one in hand
		if err := call("GET /v1/search", nil); err != nil {
			t.Fatalf("request %d: %v", i+1, err)
		}
	}
	reply := headerMap{}
	err := call("GET /v1/search", reply)
	e := errs.From(err)
	if err == nil || e.Code != codes.ResourceExhausted || e.Reason != ReasonQuotaExceeded || e.Retryable ||
		e.Metadata[MetadataRetryAfter] != "250" || e.Metadata[MetadataResource] != "search" || reply["Retry-After"] != "1" {
		t.Fatalf("over quota: %v, metadata %v, Retry-After %q; want ResourceExhausted %s, retry_after_ms 250, Retry-After 1",
			err, e.Metadata, reply["Retry-After"], ReasonQuotaExceeded)
	}
	if got := errs.HTTPStatus(e.Code); got != http.StatusTooManyRequests {
		t.Fatalf("HTTP status %d; want 429", got)
	}
	if err := call("GET /v1/other", nil); err != nil {
		t.Fatalf("unlisted operation: %v", err)
	}
	clk.Advance(250 * time.Millisecond)
	if err := call("GET /v1/search", nil); err != nil {
		t.Fatalf("after the retry-after: %v", err)
	}
}

type headerMap map[string]string

func (h headerMap) Get(k string) string { return h[k] }
func (h headerMap) Set(k, v string)     { h[k] = v }

func TestNewClientBadOptions(t *testing.T) {
	svc := newTestService(t, clock.Real{}, nil)
	tests := []struct {
		name string
		opts []Option
	}{
		{"bad id", []Option{ID("a\nb")}},
		{"bad policy name", []Option{Policies(map[string]Policy{"": {}})}},
		{"negative initial rate", []Option{Policies(map[string]Policy{"r": {InitialRate: -1}})}},
		{"bad default policy", []Option{DefaultPolicy(Policy{Weight: -1})}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if c, err := NewClient(Local(svc), append(tt.opts, Manual())...); err == nil {
				_ = c.Close()
				t.Fatalf("NewClient accepted %s", tt.name)
			}
		})
	}
	if _, err := NewClient(nil); err == nil {
		t.Fatal("NewClient(nil) accepted")
	}
}
