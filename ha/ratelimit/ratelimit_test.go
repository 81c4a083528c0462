package ratelimit

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/redline-dev/redline/ha/clock"
	"github.com/redline-dev/redline/kit/auth"
	"github.com/redline-dev/redline/kit/errs"
	"github.com/redline-dev/redline/kit/middleware"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRateAndBurstExact(t *testing.T) {
	cases := []struct {
		name  string
		limit Limit
		// want* are for 10 s of one attempt every millisecond, starting with a full bucket.
		wantAdmitted int
		wantFirst    time.Duration // retry-after of the first rejection
	}{
		{"10/s burst 5", Limit{Rate: 10, Burst: 5}, 5 + 100, 100 * time.Millisecond},
		{"1/s burst 1", Limit{Rate: 1, Burst: 1}, 1 + 10, time.Second},
		{"250/s burst 50", Limit{Rate: 250, Burst: 50}, 50 + 2500, 4 * time.Millisecond},
		{"burst defaults to a second's worth", Limit{Rate: 20}, 20 + 200, 50 * time.Millisecond},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clk := clock.NewFake(time.Time{})
			l := New(Default(c.limit), Clock(clk))
			burst := c.limit.Burst
			if burst == 0 {
				burst = int(c.limit.Rate)
			}
			for i := range burst {
				if ok, _ := l.Allow("op", "k"); !ok {
					t.Fatalf("request %d of the burst rejected", i+1)
				}
			}
			ok, wait := l.Allow("op", "k")
			if ok || wait != c.wantFirst {
				t.Fatalf("Allow after the burst = %v, %v; want false, %v", ok, wait, c.wantFirst)
			}
			clk.Advance(wait - 1)
			if ok, _ := l.Allow("op", "k"); ok {
				t.Fatalf("Allow 1 ns before the retry-after = true; want false")
			}
			clk.Advance(1)
			if ok, _ := l.Allow("op", "k"); !ok {
				t.Fatalf("Allow at the retry-after = false; want true")
			}

			// A fresh key, hammered every millisecond for 10 s.
			admitted := 0
			for ms := 0; ms <= 10_000; ms++ {
				if ok, _ := l.Allow("op", "fresh"); ok {
					admitted++
				}
				clk.Advance(time.Millisecond)
			}
			if admitted != c.wantAdmitted {
				t.Fatalf("admitted in 10 s = %d; want %d (burst + rate x 10 s)", admitted, c.wantAdmitted)
			}

			// Idle for an hour: the bucket holds Burst, not an hour's worth.
			clk.Advance(time.Hour)
			n := 0
			for ok, _ := l.Allow("op", "fresh"); ok; ok, _ = l.Allow("op", "fresh") {
				n++
			}
			if n != burst {
				t.Fatalf("admitted after an idle hour = %d; want the burst %d", n, burst)
			}
		})
	}
}

func TestKeysAndRoutesIndependent(t *testing.T) {
	clk := clock.NewFake(time.Time{})
	l := New(Default(Limit{Rate: 1, Burst: 2}), Routes(map[string]Limit{
		"GET /v1/hot":    {Rate: 1, Burst: 1},
		"GET /v1/exempt": {Rate: 0},
	}), Clock(clk))
	drain := func(route, key string) int {
		n := 0
		for ok, _ := l.Allow(route, key); ok && n < 1000; ok, _ = l.Allow(route, key) {
			n++
		}
		return n
	}
	cases := []struct {
		route, key string
		want       int
	}{
		{"GET /v1/a", "GET /v1/a|user:1", 2},
		{"GET /v1/a", "GET /v1/a|user:1", 0}, // drained above
		{"GET /v1/a", "GET /v1/a|user:2", 2}, // another caller: its own bucket
		{"GET /v1/b", "GET /v1/b|user:1", 2}, // another route: its own bucket
		{"GET /v1/hot", "GET /v1/hot|user:1", 1},
		{"GET /v1/exempt", "GET /v1/exempt|user:1", 1000},
	}
	for _, c := range cases {
		if got := drain(c.route, c.key); got != c.want {
			t.Errorf("drain(%q, %q) = %d; want %d", c.route, c.key, got, c.want)
		}
	}
}

func TestIdleKeysEvicted(t *testing.T) {
	clk := clock.NewFake(time.Time{})
	l := New(Default(Limit{Rate: 10, Burst: 10}), IdleTTL(time.Minute), Clock(clk))
	for i := range 500 {
		l.Allow("op", strconv.Itoa(i))
	}
	if n := l.Len(); n != 500 {
		t.Fatalf("Len() = %d; want 500", n)
	}
	clk.Advance(59 * time.Second)
	l.Allow("op", "0") // one key stays busy
	if n := l.Len(); n != 500 {
		t.Fatalf("Len() after 59 s = %d; want 500", n)
	}
	clk.Advance(2 * time.Second)
	if n := l.Len(); n != 1 {
		t.Fatalf("Len() after 61 s idle = %d; want 1 (the busy key)", n)
	}

	// A bucket idle past the TTL but not yet refilled stays: dropping it would hand the
	// caller a fresh burst.
	slow := New(Default(Limit{Rate: 1.0 / 120, Burst: 1}), IdleTTL(time.Minute), Clock(clk))
	slow.Allow("op", "k")
	clk.Advance(61 * time.Second)
	if n := slow.Len(); n != 1 {
		t.Fatalf("Len() of a draining bucket after the TTL = %d; want 1", n)
	}
	if ok, _ := slow.Allow("op", "k"); ok {
		t.Fatalf("Allow of an empty bucket after the TTL = true; want false")
	}
	clk.Advance(2 * time.Minute)
	if n := slow.Len(); n != 0 {
		t.Fatalf("Len() of a refilled idle bucket = %d; want 0", n)
	}
}

func TestMaxKeysBoundsMemory(t *testing.T) {
	clk := clock.NewFake(time.Time{})
	l := New(MaxKeys(64), Clock(clk))
	for i := range 10_000 {
		l.Allow("op", strconv.Itoa(i))
	}
	if n := l.Len(); n > 64 {
		t.Fatalf("Len() = %d; want at most MaxKeys 64", n)
	}
}

func TestServerRejection(t *testing.T) {
	cases := []struct {
		name      string
		kind      middleware.Kind
		reply     bool
		wantAfter string // Retry-After header; "" when there is no reply header
	}{
		{"http sets Retry-After", middleware.HTTP, true, "1"},
		{"grpc carries metadata only", middleware.GRPC, false, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clk := clock.NewFake(time.Time{})
			l := New(Default(Limit{Rate: 4, Burst: 1}), Clock(clk))
			calls := 0
			h := Server(l)(func(context.Context, any) (any, error) { calls++; return "ok", nil })
			reply := mapHeader{}
			info := &middleware.Info{Kind: c.kind, Side: middleware.Server, Operation: "op-" + c.name, Header: mapHeader{}}
			if c.reply {
				info.Reply = reply
			}
			ctx := middleware.NewContext(context.Background(), info)
			rejects := decisions.WithLabelValues(info.Operation, "reject", "rate_limited")
			before := testutil.ToFloat64(rejects)
			if _, err := h(ctx, nil); err != nil {
				t.Fatalf("first call: %v", err)
			}
			_, err := h(ctx, nil)
			e := errs.From(err)
			if err == nil || e.Code != codes.ResourceExhausted || e.Reason != ReasonRateLimited ||
				e.HTTPStatus() != http.StatusTooManyRequests || e.Retryable {
				t.Fatalf("second call: err = %v (retryable %v); want ResourceExhausted %s, 429, not retryable", err, e.Retryable, ReasonRateLimited)
			}
			if got := e.Metadata[MetadataRetryAfter]; got != "250" {
				t.Fatalf("metadata %s = %q; want 250", MetadataRetryAfter, got)
			}
			if got := reply.Get("Retry-After"); got != c.wantAfter {
				t.Fatalf("Retry-After = %q; want %q", got, c.wantAfter)
			}
			if calls != 1 {
				t.Fatalf("handler calls = %d; want 1", calls)
			}
			// Across the gRPC wire the delay survives.
			back := errs.FromStatus(status.Convert(e))
			if back.Metadata[MetadataRetryAfter] != "250" || back.Retryable {
				t.Fatalf("after the wire: %+v; want retry_after_ms 250, not retryable", back)
			}
			if got := testutil.ToFloat64(rejects) - before; got != 1 {
				t.Fatalf("reject counter went up by %v; want 1", got)
			}
		})
	}
}

func TestCaller(t *testing.T) {
	cases := []struct {
		name   string
		ctx    context.Context
		header mapHeader
		req    any
		want   string
	}{
		{"authenticated subject wins", auth.WithSubject(context.Background(), 42), mapHeader{HeaderClientID: "web"}, nil, "user:42"},
		{"client id header", context.Background(), mapHeader{HeaderClientID: "web"}, nil, "client:web"},
		{"peer address", context.Background(), mapHeader{}, &http.Request{RemoteAddr: "10.0.0.7:5123"}, "ip:10.0.0.7"},
		{"nothing known", context.Background(), mapHeader{}, nil, "anonymous"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			info := &middleware.Info{Operation: "op", Header: c.header}
			if got := Caller(c.ctx, info, c.req); got != c.want {
				t.Fatalf("Caller() = %q; want %q", got, c.want)
			}
		})
	}
}

func TestState(t *testing.T) {
	l := New(Routes(map[string]Limit{"GET /v1/x": {Rate: 5, Burst: 5}}), Clock(clock.NewFake(time.Time{})))
	l.Allow("GET /v1/y", "k")
	b, err := json.Marshal(l.State())
	if err != nil {
		t.Fatal(err)
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	if st.Keys != 1 || st.Admitted != 1 || st.Routes["GET /v1/x"].Rate != 5 || st.Default.Rate != DefaultRate || len(st.Routes) != 1 {
		t.Fatalf("State() = %s", b)
	}
}

type mapHeader map[string]string

func (m mapHeader) Get(k string) string { return m[k] }
func (m mapHeader) Set(k, v string)     { m[k] = v }

func BenchmarkAllow(b *testing.B) {
	l := New(Default(Limit{Rate: 1e9, Burst: 1e9}))
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = "GET /v1/notes/{id}|user:" + strconv.Itoa(i)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			l.Allow("GET /v1/notes/{id}", keys[i&1023])
			i++
		}
	})
}

func BenchmarkServer(b *testing.B) {
	l := New(Default(Limit{Rate: 1e9, Burst: 1e9}))
	h := Server(l)(func(context.Context, any) (any, error) { return nil, nil })
	info := &middleware.Info{Kind: middleware.GRPC, Side: middleware.Server, Operation: "/note.v1.Note/GetNote", Header: mapHeader{}}
	ctx := middleware.NewContext(auth.WithSubject(context.Background(), 12345), info)
	b.ReportAllocs()
	for b.Loop() {
		_, _ = h(ctx, nil)
	}
}
