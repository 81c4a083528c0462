package codel_test

import (
	"context"
	"encoding/json"
	"errors"
	"runtime"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/redline-dev/redline/ha/clock"
	"github.com/redline-dev/redline/ha/codel"
	"github.com/redline-dev/redline/kit/errs"
	"github.com/redline-dev/redline/kit/meta"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func ms(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }

func newQueue(t *testing.T, opts ...codel.Option) *codel.Queue {
	t.Helper()
	q, err := codel.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// log records what happened to each named request.
type log struct{ got map[string]error }

func (l *log) done(name string) func(error) {
	return func(err error) { l.got[name] = err }
}

// arrive offers a request and records an immediate outcome the same way a later one is.
func (l *log) arrive(t *testing.T, q *codel.Queue, at time.Time, name string, c meta.Criticality) *codel.Waiter {
	t.Helper()
	w, ok, err := q.Arrive(at, c, time.Time{}, l.done(name))
	switch {
	case ok:
		l.got[name] = nil
	case err != nil:
		l.got[name] = err
	}
	return w
}

func (l *log) admitted(names ...string) []string {
	var out []string
	for _, n := range names {
		if err, ok := l.got[n]; ok && err == nil {
			out = append(out, n)
		}
	}
	return out
}

func TestFIFOWhileNormal(t *testing.T) {
	q := newQueue(t, codel.WithLimit(1))
	l := &log{got: map[string]error{}}
	l.arrive(t, q, ms(0), "a", meta.Critical)
	l.arrive(t, q, ms(1), "b", meta.Critical)
	l.arrive(t, q, ms(2), "c", meta.Critical)
	if got := l.admitted("a", "b", "c"); len(got) != 1 || got[0] != "a" {
		t.Fatalf("admitted %v with limit 1; want [a]", got)
	}
	q.Release(ms(3))
	if got := l.admitted("b", "c"); len(got) != 1 || got[0] != "b" {
		t.Fatalf("after one release admitted %v; want [b] (oldest first)", got)
	}
}

func TestOverloadIsLIFOAndSloughs(t *testing.T) {
	q := newQueue(t, codel.WithLimit(1))
	l := &log{got: map[string]error{}}
	l.arrive(t, q, ms(0), "busy", meta.Critical)
	// A standing queue: its oldest waiter is above the 5 ms target from 5 ms on; a whole
	// interval later (105 ms) the queue is overloaded.
	l.arrive(t, q, ms(0), "old", meta.Critical)
	q.Sweep(ms(6))
	q.Sweep(ms(50))
	if _, ok := l.got["old"]; ok {
		t.Fatalf("old resolved %v before an interval above the target; want it still waiting", l.got["old"])
	}
	l.arrive(t, q, ms(100), "mid", meta.Critical)
	l.arrive(t, q, ms(104), "new", meta.Critical)
	q.Sweep(ms(107))
	if err := l.got["old"]; !errors.Is(err, codel.ErrSojourn) {
		t.Fatalf("old after 107 ms in an overloaded queue: %v; want ErrSojourn", err)
	}
	q.Release(ms(108))
	if got := l.admitted("mid", "new"); len(got) != 1 || got[0] != "new" {
		t.Fatalf("overloaded queue admitted %v; want [new] (newest first)", got)
	}
	q.Sweep(ms(111)) // mid has waited 11 ms > 2 × target
	if err := l.got["mid"]; !errors.Is(err, codel.ErrSojourn) || errs.IsRetryable(err) || errs.Code(err) != codes.ResourceExhausted {
		t.Fatalf("mid after 11 ms: %v; want ErrSojourn (ResourceExhausted, not retryable)", err)
	}
	// An empty queue for a whole interval makes it normal (FIFO) again.
	q.Sweep(ms(150))
	q.Sweep(ms(260))
	l.arrive(t, q, ms(261), "x", meta.Critical)
	l.arrive(t, q, ms(262), "y", meta.Critical)
	q.Release(ms(263))
	if got := l.admitted("x", "y"); len(got) != 1 || got[0] != "x" {
		t.Fatalf("after the overload admitted %v; want [x] (FIFO again)", got)
	}
}

func TestCriticality(t *testing.T) {
	t.Run("more critical first", func(t *testing.T) {
		q := newQueue(t, codel.WithLimit(1))
		l := &log{got: map[string]error{}}
		l.arrive(t, q, ms(0), "busy", meta.Critical)
		l.arrive(t, q, ms(1), "s", meta.Sheddable)
		l.arrive(t, q, ms(2), "c", meta.Critical)
		l.arrive(t, q, ms(3), "cp", meta.CriticalPlus)
		var order []string
		for i := range 3 {
			q.Release(ms(4 + i))
			for _, n := range []string{"s", "c", "cp"} {
				if _, ok := l.got[n]; ok && !contains(order, n) {
					order = append(order, n)
				}
			}
		}
		if len(order) != 3 || order[0] != "cp" || order[1] != "c" || order[2] != "s" {
			t.Fatalf("admission order %v; want [cp c s]", order)
		}
	})
	t.Run("a full queue makes room for the more critical", func(t *testing.T) {
		q := newQueue(t, codel.WithLimit(1), codel.WithMaxQueue(2))
		l := &log{got: map[string]error{}}
		l.arrive(t, q, ms(0), "busy", meta.Critical)
		l.arrive(t, q, ms(1), "s", meta.Sheddable)
		l.arrive(t, q, ms(1), "c", meta.Critical)
		l.arrive(t, q, ms(2), "c2", meta.Critical) // evicts s
		l.arrive(t, q, ms(2), "c3", meta.Critical) // nobody less critical: rejected
		if !errors.Is(l.got["s"], codel.ErrFull) || !errors.Is(l.got["c3"], codel.ErrFull) {
			t.Fatalf("s: %v, c3: %v; want both ErrFull", l.got["s"], l.got["c3"])
		}
		if _, ok := l.got["c2"]; ok {
			t.Fatalf("c2 resolved %v; want it waiting", l.got["c2"])
		}
	})
	t.Run("CRITICAL_PLUS waits an interval in overload", func(t *testing.T) {
		q := newQueue(t, codel.WithLimit(1))
		l := &log{got: map[string]error{}}
		l.arrive(t, q, ms(0), "busy", meta.Critical)
		l.arrive(t, q, ms(0), "c", meta.Critical)
		q.Sweep(ms(6)) // CoDel looks at the sojourn on events: above the target from here
		l.arrive(t, q, ms(100), "cp", meta.CriticalPlus)
		l.arrive(t, q, ms(100), "c2", meta.Critical)
		q.Sweep(ms(106)) // overloaded now
		q.Sweep(ms(150))
		if !errors.Is(l.got["c2"], codel.ErrSojourn) {
			t.Fatalf("CRITICAL after 50 ms overloaded: %v; want ErrSojourn", l.got["c2"])
		}
		if _, ok := l.got["cp"]; ok {
			t.Fatalf("CRITICAL_PLUS after 50 ms: %v; want still waiting", l.got["cp"])
		}
		q.Sweep(ms(201))
		if !errors.Is(l.got["cp"], codel.ErrSojourn) {
			t.Fatalf("CRITICAL_PLUS after 101 ms: %v; want ErrSojourn", l.got["cp"])
		}
	})
}

func contains(s []string, x string) bool {
	for _, v := range s {
		if v == x {
			return true
		}
	}
	return false
}

func TestDeadlineAndCancel(t *testing.T) {
	q := newQueue(t, codel.WithLimit(1))
	l := &log{got: map[string]error{}}
	l.arrive(t, q, ms(0), "busy", meta.Critical)
	if _, _, err := q.Arrive(ms(1), meta.Critical, ms(1), l.done("late")); !errors.Is(err, codel.ErrDeadline) {
		t.Fatalf("Arrive with its deadline reached = %v; want ErrDeadline", err)
	}
	if _, _, err := q.Arrive(ms(1), meta.Critical, ms(3), l.done("d")); err != nil {
		t.Fatal(err)
	}
	w := l.arrive(t, q, ms(1), "gone", meta.Critical)
	q.Release(ms(4)) // d's deadline passed: never admitted; gone is next
	if !errors.Is(l.got["d"], codel.ErrDeadline) || l.got["gone"] != nil {
		t.Fatalf("d: %v, gone: %v; want ErrDeadline and admitted", l.got["d"], l.got["gone"])
	}
	if q.Cancel(ms(5), w) {
		t.Fatal("Cancel of an admitted waiter = true; want false (the caller owns a slot)")
	}
	w2 := l.arrive(t, q, ms(5), "w2", meta.Critical)
	if !q.Cancel(ms(6), w2) {
		t.Fatal("Cancel of a waiting waiter = false; want true")
	}
	q.Release(ms(7))
	if _, ok := l.got["w2"]; ok {
		t.Fatalf("cancelled waiter resolved %v; want its done never called", l.got["w2"])
	}
}

type fixedLimit struct{ n int }

func (f *fixedLimit) Limit() int { return f.n }

func TestLimiter(t *testing.T) {
	lim := &fixedLimit{n: 1}
	q := newQueue(t, codel.WithLimit(3), codel.WithLimiter(lim))
	l := &log{got: map[string]error{}}
	for _, n := range []string{"a", "b", "c", "d"} {
		l.arrive(t, q, ms(0), n, meta.Critical)
	}
	if got := l.admitted("a", "b", "c", "d"); len(got) != 1 {
		t.Fatalf("admitted %v with the limiter at 1; want one", got)
	}
	lim.n = 10 // the ceiling, 3, still holds
	q.Sweep(ms(1))
	if got := l.admitted("a", "b", "c", "d"); len(got) != 3 {
		t.Fatalf("admitted %v with the limiter at 10 under a ceiling of 3; want three", got)
	}
}

func TestAcquire(t *testing.T) {
	clk := clock.NewFake(t0)
	q := newQueue(t, codel.WithLimit(1), codel.WithClock(clk))
	if err := q.Acquire(context.Background(), meta.Critical); err != nil {
		t.Fatal(err)
	}
	waitQueued := func(n int) {
		for queued(q) != n { // the goroutine has yet to queue; no sleeping
			runtime.Gosched()
		}
	}

	// A waiter whose caller gives up leaves the queue with the context's error.
	ctx, cancel := context.WithCancel(context.Background())
	res := make(chan error)
	go func() { res <- q.Acquire(ctx, meta.Critical) }()
	waitQueued(1)
	cancel()
	if err := <-res; errs.Code(err) != codes.Canceled {
		t.Fatalf("Acquire after cancel = %v; want Canceled", err)
	}
	if n := queued(q); n != 0 {
		t.Fatalf("%d waiting after the cancel; want 0", n)
	}

	// A waiter is admitted when the holder is done.
	go func() { res <- q.Acquire(context.Background(), meta.Critical) }()
	waitQueued(1)
	q.Done()
	if err := <-res; err != nil {
		t.Fatalf("Acquire after Done = %v; want nil", err)
	}
	q.Done()

	// An expired context never queues.
	expired, cancel2 := context.WithDeadline(context.Background(), time.Unix(0, 0))
	defer cancel2()
	if err := q.Acquire(expired, meta.Critical); errs.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("Acquire with an expired ctx = %v; want DeadlineExceeded", err)
	}
}

func queued(q *codel.Queue) int {
	b, _ := json.Marshal(q.State())
	var st struct{ Waiting int }
	_ = json.Unmarshal(b, &st)
	return st.Waiting
}

func TestServerMiddleware(t *testing.T) {
	q := newQueue(t, codel.WithLimit(1), codel.WithMaxQueue(0))
	var inner error
	h := codel.Server(q)(func(ctx context.Context, _ any) (any, error) {
		// While this request holds the only slot, another is turned away at once.
		_, inner = codel.Server(q)(func(context.Context, any) (any, error) { return nil, nil })(ctx, nil)
		return "ok", nil
	})
	ctx := meta.NewContext(context.Background(), meta.MD{Criticality: meta.Sheddable})
	resp, err := h(ctx, nil)
	if err != nil || resp != "ok" {
		t.Fatalf("outer request = %v, %v; want ok", resp, err)
	}
	if !errors.Is(inner, codel.ErrFull) || errs.IsRetryable(inner) {
		t.Fatalf("inner request = %v; want ErrFull, not retryable", inner)
	}
	b, err := json.Marshal(q.State())
	if err != nil {
		t.Fatal(err)
	}
	var st map[string]any
	if err := json.Unmarshal(b, &st); err != nil || st["inflight"] != 0.0 || st["rejected"] != 1.0 || st["mode"] != "fifo" {
		t.Fatalf("State() = %s; want 0 in flight, 1 rejected, fifo", b)
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	cases := []struct {
		name string
		opt  codel.Option
	}{
		{"zero limit", codel.WithLimit(0)},
		{"target above interval", codel.WithTarget(time.Second)},
		{"negative queue", codel.WithMaxQueue(-1)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := codel.New(c.opt); err == nil {
				t.Fatal("New accepted it; want an error")
			}
		})
	}
}

func BenchmarkAcquire(b *testing.B) {
	q, err := codel.New()
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := q.Acquire(ctx, meta.Critical); err == nil {
				q.Done()
			}
		}
	})
}
