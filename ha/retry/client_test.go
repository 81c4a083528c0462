package retry

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc/codes"

	"github.com/redline-dev/redline/ha/clock"
	"github.com/redline-dev/redline/kit/errs"
	"github.com/redline-dev/redline/kit/meta"
	"github.com/redline-dev/redline/kit/middleware"
)

const opGet = "/note.v1.Note/GetNote"

// header is a middleware.Header that can be cloned, as a hedge-safe transport's is.
type header map[string]string

func (h header) Get(k string) string { return h[strings.ToLower(k)] }
func (h header) Set(k, v string)     { h[strings.ToLower(k)] = v }
func (h header) Clone() middleware.Header {
	c := header{}
	for k, v := range h {
		c[k] = v
	}
	return c
}

// plainHeader cannot be cloned.
type plainHeader map[string]string

func (h plainHeader) Get(k string) string { return h[k] }
func (h plainHeader) Set(k, v string)     { h[k] = v }

// backend is a fake handler that answers from a script, one entry per attempt, and records
// what each attempt saw.
type backend struct {
	mu       sync.Mutex
	script   []error // the last entry repeats
	attempts []int   // meta Attempt per call
	headers  []string
}

func (b *backend) handle(ctx context.Context, req any) (any, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := len(b.attempts)
	b.attempts = append(b.attempts, meta.FromContext(ctx).Attempt)
	if info := middleware.FromContext(ctx); info != nil && info.Header != nil {
		b.headers = append(b.headers, info.Header.Get(meta.HeaderAttempt))
	}
	err := b.script[min(n, len(b.script)-1)]
	if err != nil {
		return nil, err
	}
	return "ok", nil
}

// sleeps records the delays asked for, without sleeping.
type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.d = append(s.d, d)
	s.mu.Unlock()
	return ctx.Err()
}

func grpcCtx(op string, h middleware.Header) context.Context {
	return middleware.NewContext(context.Background(), &middleware.Info{Kind: middleware.GRPC,
		Side: middleware.Client, Service: "note", Operation: op, Method: "unary", Header: h})
}

func TestClient(t *testing.T) {
	unavailable := errs.New(codes.Unavailable, errs.ReasonUnavailable, "down")
	tests := []struct {
		name     string
		opts     []Option
		ctx      func() context.Context
		script   []error
		wantErr  codes.Code // codes.OK for success
		attempts []int      // meta Attempt seen by each attempt
		headers  []string   // x-redline-attempt on the wire per attempt
		reason   string     // a refuse reason that must be counted
		delays   []time.Duration
		retryErr bool // the returned error is still retryable
	}{
		{
			name:     "retries until success",
			ctx:      func() context.Context { return grpcCtx(opGet, header{}) },
			script:   []error{unavailable, unavailable, nil},
			attempts: []int{0, 1, 2}, headers: []string{"", "1", "2"},
		},
		{
			name:     "three attempts at most, then not retryable upstream",
			ctx:      func() context.Context { return grpcCtx(opGet, header{}) },
			script:   []error{unavailable},
			wantErr:  codes.Unavailable,
			attempts: []int{0, 1, 2}, reason: ReasonMaxAttempts,
		},
		{
			name:     "overloaded is not retried",
			ctx:      func() context.Context { return grpcCtx(opGet, header{}) },
			script:   []error{errs.Overloaded("SHED", "busy")},
			wantErr:  codes.ResourceExhausted,
			attempts: []int{0}, reason: ReasonNotRetryable,
		},
		{
			name:     "not found is not retried",
			ctx:      func() context.Context { return grpcCtx(opGet, header{}) },
			script:   []error{errs.NotFound("NO_NOTE", "none")},
			wantErr:  codes.NotFound,
			attempts: []int{0}, reason: ReasonNotRetryable,
		},
		{
			name:     "undeclared operation is not retried",
			ctx:      func() context.Context { return grpcCtx("/note.v1.Note/CreateNote", header{}) },
			script:   []error{unavailable, nil},
			wantErr:  codes.Unavailable,
			attempts: []int{0}, reason: ReasonNotIdempotent, retryErr: true,
		},
		{
			name: "idempotency key makes it retryable and goes on the wire",
			ctx: func() context.Context {
				return WithIdempotencyKey(grpcCtx("/note.v1.Note/CreateNote", header{}), "k-1")
			},
			script:   []error{unavailable, nil},
			attempts: []int{0, 1},
		},
		{
			name: "HTTP GET is retryable",
			ctx: func() context.Context {
				return middleware.NewContext(context.Background(), &middleware.Info{Kind: middleware.HTTP,
					Side: middleware.Client, Service: "bff", Operation: "GET /v1/notes/{id}", Method: http.MethodGet})
			},
			script:   []error{unavailable, nil},
			attempts: []int{0, 1},
		},
		{
			name: "chain stop: a call serving a retry is not retried",
			ctx: func() context.Context {
				return meta.NewContext(grpcCtx(opGet, header{}), meta.MD{RequestID: "r", Attempt: 1})
			},
			script:   []error{unavailable, nil},
			wantErr:  codes.Unavailable,
			attempts: []int{1}, reason: ReasonChainStop,
		},
		{
			name:     "pushback sets the delay",
			ctx:      func() context.Context { return grpcCtx(opGet, header{}) },
			script:   []error{unavailable.WithMetadata(PushbackKey, "70"), nil},
			attempts: []int{0, 1}, delays: []time.Duration{70 * time.Millisecond},
		},
		{
			name:     "negative pushback stops",
			ctx:      func() context.Context { return grpcCtx(opGet, header{}) },
			script:   []error{unavailable.WithMetadata(PushbackKey, "-1"), nil},
			wantErr:  codes.Unavailable,
			attempts: []int{0}, reason: ReasonPushback,
		},
		{
			name: "budget exhausted",
			opts: []Option{WithBudget(0.1, 0, 1)},
			ctx:  func() context.Context { return grpcCtx(opGet, header{}) },
			// One token: one retry, then the budget refuses.
			script:   []error{unavailable},
			wantErr:  codes.Unavailable,
			attempts: []int{0, 1}, reason: ReasonBudget,
		},
		{
			name: "no time left for the backoff",
			opts: []Option{WithClock(clock.Real{}), WithBackoff(time.Hour, time.Hour)},
			ctx: func() context.Context {
				ctx, cancel := context.WithTimeout(grpcCtx(opGet, header{}), time.Minute)
				t.Cleanup(cancel)
				return ctx
			},
			script:   []error{unavailable, nil},
			wantErr:  codes.Unavailable,
			attempts: []int{0}, reason: ReasonDeadline,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var sl sleeps
			opts := append([]Option{WithClock(clock.NewFake(time.Time{})), WithSleep(sl.sleep), WithSeed(1),
				WithIdempotent(middleware.Operations(opGet))}, tt.opts...)
			r := New(opts...)
			b := &backend{script: tt.script}
			ctx := tt.ctx()
			resp, err := Client(r)(b.handle)(ctx, "req")
			if got := errs.Code(err); got != tt.wantErr {
				t.Fatalf("call error = %v; want code %v", err, tt.wantErr)
			}
			if err == nil && resp != "ok" {
				t.Fatalf("call response = %v; want ok", resp)
			}
			if err != nil && errs.IsRetryable(err) != tt.retryErr {
				t.Errorf("returned error retryable = %v; want %v", errs.IsRetryable(err), tt.retryErr)
			}
			if !equal(b.attempts, tt.attempts) {
				t.Errorf("attempts seen by the backend = %v; want %v", b.attempts, tt.attempts)
			}
			if tt.headers != nil && !equal(b.headers, tt.headers) {
				t.Errorf("x-redline-attempt per attempt = %q; want %q", b.headers, tt.headers)
			}
			if tt.reason != "" && r.Stats("refuse", tt.reason) != 1 {
				t.Errorf("refusals with reason %s = %d; want 1 (state %+v)", tt.reason, r.Stats("refuse", tt.reason), r.State())
			}
			if retries := r.Stats("retry", ""); int(retries) != len(tt.attempts)-1 {
				t.Errorf("retries counted = %d; want %d", retries, len(tt.attempts)-1)
			}
			for i, d := range sl.d {
				if i < len(tt.delays) && d != tt.delays[i] {
					t.Errorf("delay %d = %v; want %v", i, d, tt.delays[i])
				}
				if ceil := DefaultBackoffBase << i; tt.delays == nil && (d < 0 || d > ceil) {
					t.Errorf("backoff %d = %v; want full jitter in [0, %v]", i, d, ceil)
				}
			}
			if info := middleware.FromContext(ctx); info != nil && info.Header != nil && IdempotencyKey(ctx) != "" {
				if got := info.Header.Get(HeaderIdempotencyKey); got != IdempotencyKey(ctx) {
					t.Errorf("Idempotency-Key header = %q; want %q", got, IdempotencyKey(ctx))
				}
			}
		})
	}
}

func TestHedgeCancelsLoser(t *testing.T) {
	// The first hedge timer fires at once; any later one waits until the call ends.
	var timers sync.Mutex
	fired := false
	sleep := func(ctx context.Context, d time.Duration) error {
		timers.Lock()
		first := !fired
		fired = true
		timers.Unlock()
		if !first {
			<-ctx.Done()
		}
		return ctx.Err()
	}
	r := New(WithClock(clock.NewFake(time.Time{})), WithSleep(sleep),
		WithIdempotent(middleware.Operations(opGet)), WithHedging(middleware.Operations(opGet)), WithHedgeDelay(20*time.Millisecond))
	var mu sync.Mutex
	var loserErr error
	var headers []string
	release := make(chan struct{})
	h := Client(r)(func(ctx context.Context, req any) (any, error) {
		info := middleware.FromContext(ctx)
		mu.Lock()
		headers = append(headers, info.Header.Get(meta.HeaderAttempt))
		mu.Unlock()
		if meta.FromContext(ctx).Attempt == 0 {
			<-ctx.Done() // the slow first attempt: it ends only when cancelled
			mu.Lock()
			loserErr = ctx.Err()
			mu.Unlock()
			close(release)
			return nil, errs.From(ctx.Err())
		}
		return "hedge", nil
	})
	orig := header{meta.HeaderRequestID: "req-1"}
	resp, err := h(grpcCtx(opGet, orig), "req")
	if err != nil || resp != "hedge" {
		t.Fatalf("hedged call = %v, %v; want the hedge's answer", resp, err)
	}
	select {
	case <-release:
	default:
		t.Fatalf("the call returned before its losing attempt did")
	}
	if !errors.Is(loserErr, context.Canceled) {
		t.Fatalf("losing attempt's ctx error = %v; want canceled", loserErr)
	}
	if got := r.Stats("hedge", ""); got != 1 {
		t.Fatalf("hedges counted = %d; want 1", got)
	}
	if len(orig) != 1 || len(headers) != 2 {
		t.Fatalf("original header %v, attempt headers %q; want the original untouched and two attempts", orig, headers)
	}
	got := testutil.ToFloat64(decisions.WithLabelValues("note", opGet, "hedge", "delay"))
	if got < 1 {
		t.Fatalf("redline_ha_retry_decisions_total{decision=hedge} = %v; want ≥ 1", got)
	}
}

func TestHedgeNeedsCloneableHeader(t *testing.T) {
	r := New(WithClock(clock.NewFake(time.Time{})), WithSleep(func(ctx context.Context, d time.Duration) error { return ctx.Err() }),
		WithIdempotent(middleware.Operations(opGet)), WithHedging(middleware.Operations(opGet)), WithHedgeDelay(time.Millisecond))
	b := &backend{script: []error{nil}}
	if _, err := Client(r)(b.handle)(grpcCtx(opGet, plainHeader{}), "req"); err != nil {
		t.Fatalf("call = %v; want success", err)
	}
	if r.Stats("refuse", ReasonHedgeUnsafe) != 1 || r.Stats("hedge", "") != 0 || len(b.attempts) != 1 {
		t.Fatalf("hedge_unsafe %d, hedges %d, attempts %d; want 1, 0, 1",
			r.Stats("refuse", ReasonHedgeUnsafe), r.Stats("hedge", ""), len(b.attempts))
	}
}

func TestHedgeDelayLearnsQuantile(t *testing.T) {
	r := New(WithHedging(middleware.Operations(opGet)))
	if _, ok := r.HedgeDelay(opGet); ok {
		t.Fatalf("HedgeDelay before any sample: ok; want cold")
	}
	for i := range 2000 {
		d := 10 * time.Millisecond
		if i%100 >= 95 {
			d = 200 * time.Millisecond
		}
		r.Observe(opGet, d)
	}
	d, ok := r.HedgeDelay(opGet)
	if !ok || d < 10*time.Millisecond || d > 11*time.Millisecond {
		t.Fatalf("HedgeDelay = %v, %v; want the p95, 10 ms within a bucket", d, ok)
	}
	if _, ok := r.HedgeDelay("/other"); ok {
		t.Fatalf("HedgeDelay of an operation without hedging: ok; want not")
	}
	if _, err := json.Marshal(r.State()); err != nil {
		t.Fatalf("State is not JSON-able: %v", err)
	}
}

func equal[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func BenchmarkClient(b *testing.B) {
	r := New(WithIdempotent(middleware.Operations(opGet)))
	h := Client(r)(func(ctx context.Context, req any) (any, error) { return "ok", nil })
	ctx := grpcCtx(opGet, header{})
	b.ReportAllocs()
	for b.Loop() {
		_, _ = h(ctx, nil)
	}
}

func BenchmarkOnFailure(b *testing.B) {
	r := New()
	now := time.Now()
	f := Failure{Service: "note", Operation: opGet, Err: errs.New(codes.Unavailable, errs.ReasonUnavailable, "down")}
	b.ReportAllocs()
	for b.Loop() {
		r.Begin()
		r.OnFailure(now, f)
	}
}
