package shed

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/redline-dev/redline/ha/clock"
	"github.com/redline-dev/redline/kit/errs"
	"github.com/redline-dev/redline/kit/meta"
)

// fixture is a Shedder on a fake clock with a CPU the test sets.
type fixture struct {
	s   *Shedder
	clk *clock.Fake
	cpu float64
}

func newFixture(t *testing.T, opts ...Option) *fixture {
	t.Helper()
	f := &fixture{clk: clock.NewFake(time.Time{})}
	s, err := New(append([]Option{WithClock(f.clk), WithCPU(func() float64 { return f.cpu })}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	f.s = s
	return f
}

// warm fills buckets of the window: in each, n requests that take rt, so the estimate is
// n × rt / 100ms.
func (f *fixture) warm(t *testing.T, buckets, n int, rt time.Duration) {
	t.Helper()
	cpu := f.cpu
	f.cpu = 0
	for range buckets {
		toks := make([]Token, n)
		for i := range toks {
			var err error
			if toks[i], err = f.s.Allow(meta.Critical); err != nil {
				t.Fatal(err)
			}
		}
		f.clk.Advance(rt)
		for _, tok := range toks {
			f.s.Done(tok)
		}
		f.clk.Advance(100*time.Millisecond - rt)
	}
	f.cpu = cpu
}

// hold admits n requests with the CPU idle and never finishes them.
func (f *fixture) hold(t *testing.T, n int) {
	t.Helper()
	cpu := f.cpu
	f.cpu = 0
	for range n {
		if _, err := f.s.Allow(meta.Critical); err != nil {
			t.Fatal(err)
		}
	}
	f.cpu = cpu
}

// steady moves the clock to a bucket outside the probing phases, so the pressured limit is
// the plain estimate.
func (f *fixture) steady() {
	for f.s.win.id(f.clk.Now())%probeCycle < 2 {
		f.clk.Advance(100 * time.Millisecond)
	}
}

func TestShedDecisions(t *testing.T) {
	// The window holds 10 requests of 50 ms per 100 ms bucket: limit 5.
	cases := []struct {
		name     string
		cpu      float64
		inflight int
		crit     meta.Criticality
		admit    bool
	}{
		{"cold CPU admits over the limit", 0.5, 9, meta.Critical, true},
		{"hot CPU admits under the limit", 0.85, 4, meta.Critical, true},
		{"hot CPU sheds at the limit", 0.85, 5, meta.Critical, false},
		{"SHEDDABLE is shed from threshold-0.10", 0.71, 5, meta.Sheddable, false},
		{"SHEDDABLE_PLUS is shed from threshold-0.05", 0.71, 5, meta.SheddablePlus, true},
		{"SHEDDABLE_PLUS at 0.76", 0.76, 5, meta.SheddablePlus, false},
		{"CRITICAL below the threshold", 0.76, 5, meta.Critical, true},
		{"CRITICAL_PLUS is shed only from 0.9", 0.85, 5, meta.CriticalPlus, true},
		{"CRITICAL_PLUS at 0.95", 0.95, 5, meta.CriticalPlus, false},
		{"one request always passes", 1, 0, meta.Sheddable, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			f.warm(t, 10, 10, 50*time.Millisecond)
			f.steady()
			f.hold(t, c.inflight)
			f.cpu = c.cpu
			_, err := f.s.Allow(c.crit)
			if (err == nil) != c.admit {
				t.Fatalf("Allow(%v) at cpu %.2f with %d in flight (limit %d) = %v; want admit %v",
					c.crit, c.cpu, c.inflight, f.s.Limit(), err, c.admit)
			}
			if err != nil && (!errors.Is(err, ErrOverloaded) || errs.Code(err) != codes.ResourceExhausted || errs.IsRetryable(err)) {
				t.Fatalf("rejection %v; want ErrOverloaded, ResourceExhausted, not retryable", err)
			}
		})
	}
}

// atLimit returns a fixture whose window gives limit 5, with 5 requests in flight.
func atLimit(t *testing.T) *fixture {
	t.Helper()
	f := newFixture(t)
	f.warm(t, 10, 10, 50*time.Millisecond)
	f.steady()
	f.hold(t, 5)
	return f
}

func TestShedCoolDown(t *testing.T) {
	f := atLimit(t)
	f.cpu = 0.9
	if _, err := f.s.Allow(meta.Critical); err == nil {
		t.Fatal("Allow at cpu 0.9 at the limit admitted; want shed")
	}
	f.cpu = 0.1 // the CPU drops at once; the cool-down holds the limit for 1 s
	steps := []struct {
		after time.Duration
		crit  meta.Criticality
		admit bool
	}{
		{0, meta.CriticalPlus, true},                   // never held by the cool-down alone
		{300 * time.Millisecond, meta.Critical, false}, // and restarts the cool-down
		{1100 * time.Millisecond, meta.Critical, false},
		{2500 * time.Millisecond, meta.Critical, true},
	}
	start := f.clk.Now()
	for _, st := range steps {
		f.clk.Set(start.Add(st.after))
		f.steady()
		tok, err := f.s.Allow(st.crit)
		if (err == nil) != st.admit {
			t.Fatalf("Allow(%v) %v after the shed = %v; want admit %v", st.crit, st.after, err, st.admit)
		}
		if err == nil {
			f.s.Done(tok)
		}
	}
}

func TestShedLimit(t *testing.T) {
	t.Run("nothing to estimate from", func(t *testing.T) {
		f := newFixture(t)
		if got := f.s.Limit(); got != math.MaxInt32 {
			t.Fatalf("Limit() on an empty window = %d; want MaxInt32", got)
		}
	})
	t.Run("headroom without pressure", func(t *testing.T) {
		cases := []struct{ n, want int }{{10, 16}, {40, 40}} // estimates 5 and 20
		for _, c := range cases {
			f := newFixture(t)
			f.warm(t, 5, c.n, 50*time.Millisecond)
			if got := f.s.Limit(); got != c.want {
				t.Fatalf("Limit() unpressured with estimate %d = %d; want %d", c.n/2, got, c.want)
			}
		}
	})
	t.Run("probing cycle under pressure", func(t *testing.T) {
		f := newFixture(t)
		f.warm(t, 10, 40, 50*time.Millisecond) // estimate 20: probes by 2
		f.cpu = 0.9
		for f.s.win.id(f.clk.Now())%probeCycle != 0 {
			f.clk.Advance(100 * time.Millisecond)
		}
		var got []int
		for range probeCycle {
			got = append(got, f.s.Limit())
			f.clk.Advance(100 * time.Millisecond)
		}
		want := []int{22, 18, 20, 20, 20, 20, 20, 20}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("Limit() over a cycle = %v; want %v", got, want)
			}
		}
	})
	t.Run("the window forgets", func(t *testing.T) {
		f := newFixture(t)
		f.warm(t, 5, 40, 50*time.Millisecond)
		f.clk.Advance(6 * time.Second)
		if got := f.s.Limit(); got != math.MaxInt32 {
			t.Fatalf("Limit() after the window passed = %d; want MaxInt32", got)
		}
	})
}

func TestNewRejectsBadOptions(t *testing.T) {
	cases := []struct {
		name string
		opt  Option
	}{
		{"zero buckets", WithWindow(time.Second, 0)},
		{"threshold above 1", WithThreshold(1.5)},
		{"alpha 0", WithCPUSampling(time.Second, 0)},
		{"headroom below 1", WithHeadroom(0.5, 1)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := New(WithCPU(func() float64 { return 0 }), c.opt); err == nil {
				t.Fatal("New accepted it; want an error")
			}
		})
	}
}

func TestServerMiddleware(t *testing.T) {
	f := atLimit(t)
	f.cpu = 0.85
	calls := 0
	h := Server(f.s)(func(context.Context, any) (any, error) { calls++; return "ok", nil })
	cases := []struct {
		crit meta.Criticality
		code codes.Code
	}{
		{meta.Critical, codes.ResourceExhausted},
		{meta.CriticalPlus, codes.OK},
	}
	for _, c := range cases {
		ctx := meta.NewContext(context.Background(), meta.MD{Criticality: c.crit})
		_, err := h(ctx, nil)
		if errs.Code(err) != c.code {
			t.Fatalf("handler for %v = %v; want %v", c.crit, err, c.code)
		}
	}
	if calls != 1 || f.s.Inflight() != 5 {
		t.Fatalf("handler calls %d, in flight %d after; want 1 and 5 (the admitted one done)", calls, f.s.Inflight())
	}
	b, err := json.Marshal(f.s.State())
	if err != nil {
		t.Fatal(err)
	}
	var st map[string]any
	if err := json.Unmarshal(b, &st); err != nil || st["cpu_source"] != SourceInjected || st["rejected"] != 1.0 {
		t.Fatalf("State() = %s; want cpu_source %q and 1 rejected", b, SourceInjected)
	}
}

func BenchmarkAllow(b *testing.B) {
	for _, bc := range []struct {
		name string
		cpu  float64
	}{{"idle", 0.2}, {"pressure", 0.95}} {
		b.Run(bc.name, func(b *testing.B) {
			s, err := New(WithCPU(func() float64 { return bc.cpu }))
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if tok, err := s.Allow(meta.Critical); err == nil {
						s.Done(tok)
					}
				}
			})
		})
	}
}
