package balancer

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/redline-dev/redline/ha/clock"
	"github.com/redline-dev/redline/kit/errs"
)

func newTest(opts ...Option) (*P2C, *clock.Fake) {
	clk := clock.NewFake(time.Time{})
	return New(append([]Option{WithClock(clk), Seed(1)}, opts...)...), clk
}

// call picks, lets rtt pass, and reports err.
func call(t *testing.T, b *P2C, clk *clock.Fake, rtt time.Duration, err error) string {
	t.Helper()
	p, perr := b.Pick(context.Background())
	if perr != nil {
		t.Fatalf("Pick: %v", perr)
	}
	clk.Advance(rtt)
	p.Done(err, -1)
	return p.Node.Addr
}

func nodeState(b *P2C, addr string) NodeState {
	for _, s := range b.nodeStates() {
		if s.Addr == addr {
			return s
		}
	}
	return NodeState{}
}

// set gives a node the stats of a table case directly.
func set(b *P2C, addr string, lag time.Duration, inflight int64, success float64, cpu int64) {
	st := b.snap.Load().byAddr[addr]
	st.lag.Store(math.Float64bits(float64(lag)))
	st.inflight.Store(inflight)
	st.success.Store(math.Float64bits(success))
	st.cpu.Store(cpu)
}

func TestPickLowerCost(t *testing.T) {
	type st struct {
		lag      time.Duration
		inflight int64
		success  float64
		cpu      int64
	}
	cases := []struct {
		name string
		a, b st
		want string
	}{
		{"lower latency", st{10 * time.Millisecond, 0, 1, -1}, st{100 * time.Millisecond, 0, 1, -1}, "a"},
		{"10× latency beats 3 in flight", st{10 * time.Millisecond, 3, 1, -1}, st{100 * time.Millisecond, 0, 1, -1}, "a"},
		{"many in flight lose", st{10 * time.Millisecond, 20, 1, -1}, st{20 * time.Millisecond, 0, 1, -1}, "b"},
		{"failing node loses", st{10 * time.Millisecond, 0, 0.2, -1}, st{20 * time.Millisecond, 0, 1, -1}, "b"},
		{"saturated cpu loses a tie", st{10 * time.Millisecond, 0, 1, 1000}, st{10 * time.Millisecond, 0, 1, 500}, "b"},
		{"idle cpu does not save a slow node", st{10 * time.Millisecond, 1, 1, 850}, st{100 * time.Millisecond, 0, 1, 50}, "a"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, _ := newTest(ProbeInterval(0))
			b.Update([]Node{{Addr: "a"}, {Addr: "b"}})
			set(b, "a", c.a.lag, c.a.inflight, c.a.success, c.a.cpu)
			set(b, "b", c.b.lag, c.b.inflight, c.b.success, c.b.cpu)
			for range 10 {
				p, err := b.Pick(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				if p.Node.Addr != c.want {
					t.Fatalf("Pick = %s; want %s", p.Node.Addr, c.want)
				}
				p.Node.st.inflight.Add(-1) // undo, keep the case's stats
			}
		})
	}
}

// TestProbeAndRecover: a penalized node is probed once it has gone unpicked for
// ProbeInterval, one request at a time, and fast answers bring it back.
func TestProbeAndRecover(t *testing.T) {
	b, clk := newTest()
	b.Update([]Node{{Addr: "fast"}, {Addr: "slow"}})
	set(b, "fast", 10*time.Millisecond, 0, 1, -1)
	set(b, "slow", 200*time.Millisecond, 0, 1, -1)
	b.snap.Load().byAddr["slow"].lastObs = clk.Now().UnixNano()
	for i := range 5 {
		if got := call(t, b, clk, 10*time.Millisecond, nil); got != "fast" {
			t.Fatalf("pick %d = %s; want fast", i, got)
		}
	}
	clk.Advance(950 * time.Millisecond) // slow unpicked for 1 s, fast for 960 ms
	// Due a probe: the first pick goes to slow; a concurrent second one does not.
	p1, _ := b.Pick(context.Background())
	p2, _ := b.Pick(context.Background())
	if p1.Node.Addr != "slow" || p2.Node.Addr != "fast" {
		t.Fatalf("picks after 1 s idle = %s, %s; want slow (probe), fast", p1.Node.Addr, p2.Node.Addr)
	}
	clk.Advance(10 * time.Millisecond)
	p1.Done(nil, -1)
	p2.Done(nil, -1)
	// One fast answer after 1 s of silence moves lag most of the way: 200·e^-1 + 10·(1-e^-1).
	want := 200*math.Exp(-1.01) + 10*(1-math.Exp(-1.01))
	if got := nodeState(b, "slow").LagMS; math.Abs(got-want) > 0.5 {
		t.Fatalf("slow lag after probe = %.1f ms; want %.1f", got, want)
	}
	// Probing continues once a second until the healed node, now the faster one (10 ms
	// against 12 ms), wins on its own.
	picks := map[string]int{}
	for range 1000 {
		p, _ := b.Pick(context.Background())
		rtt := 12 * time.Millisecond
		if p.Node.Addr == "slow" {
			rtt = 10 * time.Millisecond
		}
		clk.Advance(rtt)
		p.Done(nil, -1)
		picks[p.Node.Addr]++
	}
	if picks["slow"] < 300 {
		t.Fatalf("recovered node got %d of 1000 picks over 11 s; want ≥ 300", picks["slow"])
	}
}

func TestDoneAccounting(t *testing.T) {
	overloaded := errs.Overloaded("TEST", "busy")
	cases := []struct {
		name        string
		err         error
		rtt         time.Duration
		wantLag     float64 // ms
		wantSuccess float64
		wantFails   uint64
	}{
		{"success lowers lag", nil, 10 * time.Millisecond, 50*math.Exp(-0.51) + 10*(1-math.Exp(-0.51)), 1, 0},
		{"fast failure keeps lag", overloaded, time.Millisecond, 50, math.Exp(-0.501), 1},
		{"slow failure raises lag", overloaded, 80 * time.Millisecond, 80, math.Exp(-0.58), 1},
		{"slow success raises lag at once", nil, 80 * time.Millisecond, 80, 1, 0},
		{"client error is a success", errs.NotFound("NOPE", "no"), 10 * time.Millisecond, 50*math.Exp(-0.51) + 10*(1-math.Exp(-0.51)), 1, 0},
		{"cancelled is not counted", context.Canceled, 10 * time.Millisecond, 50, 1, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, clk := newTest()
			b.Update([]Node{{Addr: "a"}})
			set(b, "a", 50*time.Millisecond, 0, 1, -1)
			st := b.snap.Load().byAddr["a"]
			st.lastObs = clk.Now().UnixNano()
			clk.Advance(500 * time.Millisecond)
			call(t, b, clk, c.rtt, c.err)
			s := nodeState(b, "a")
			if math.Abs(s.LagMS-c.wantLag) > 0.01 || math.Abs(s.Success-c.wantSuccess) > 0.001 || s.Fails != c.wantFails || s.Inflight != 0 {
				t.Fatalf("lag %.2f ms, success %.3f, fails %d, inflight %d; want %.2f, %.3f, %d, 0",
					s.LagMS, s.Success, s.Fails, s.Inflight, c.wantLag, c.wantSuccess, c.wantFails)
			}
		})
	}
}

func TestWarmUp(t *testing.T) {
	b, clk := newTest()
	b.Update([]Node{{Addr: "a"}, {Addr: "b"}})
	clk.Advance(time.Second)
	b.Update([]Node{{Addr: "a"}, {Addr: "b"}, {Addr: "c"}})
	if w := nodeState(b, "c").Warm; w != 1 {
		t.Fatalf("node added in the picker's first WarmUp: warm = %v; want 1 (no slow start)", w)
	}
	clk.Advance(10 * time.Second)
	b.Update([]Node{{Addr: "a"}, {Addr: "b"}, {Addr: "c"}, {Addr: "d"}})
	cases := []struct {
		after time.Duration
		want  float64
	}{{0, 0.1}, {500 * time.Millisecond, 0.1}, {5 * time.Second, 0.5}, {10 * time.Second, 1}}
	var elapsed time.Duration
	for _, c := range cases {
		clk.Advance(c.after - elapsed)
		elapsed = c.after
		if w := nodeState(b, "d").Warm; math.Abs(w-c.want) > 1e-9 {
			t.Errorf("warm %v after joining = %v; want %v", c.after, w, c.want)
		}
	}
}

func TestFilter(t *testing.T) {
	type laneKey struct{}
	lanes := func(ctx context.Context, nodes []Node) []Node {
		lane, _ := ctx.Value(laneKey{}).(string)
		var out []Node
		for _, n := range nodes {
			if n.Lane == lane {
				out = append(out, n)
			}
		}
		return out
	}
	filtered := testutil.ToFloat64(decisions.filtered)
	defer func() {
		if got := testutil.ToFloat64(decisions.filtered) - filtered; got != 50 {
			t.Errorf("reject/filtered decisions counted %v; want 50", got)
		}
	}()
	b, _ := newTest(WithFilter(lanes))
	b.Update([]Node{{Addr: "a"}, {Addr: "b"}, {Addr: "c1", Lane: "canary"}, {Addr: "c2", Lane: "canary"}})
	cases := []struct {
		lane    string
		want    map[string]bool
		wantErr error
	}{
		{"", map[string]bool{"a": true, "b": true}, nil},
		{"canary", map[string]bool{"c1": true, "c2": true}, nil},
		{"blue", nil, ErrNoNode},
	}
	for _, c := range cases {
		t.Run(c.lane, func(t *testing.T) {
			ctx := context.WithValue(context.Background(), laneKey{}, c.lane)
			for range 50 {
				p, err := b.Pick(ctx)
				if !errors.Is(err, c.wantErr) {
					t.Fatalf("Pick err = %v; want %v", err, c.wantErr)
				}
				if err == nil {
					if !c.want[p.Node.Addr] {
						t.Fatalf("Pick = %s; want one of %v", p.Node.Addr, c.want)
					}
					p.Done(nil, -1)
				}
			}
		})
	}
}

func TestUpdate(t *testing.T) {
	b, clk := newTest()
	if _, err := b.Pick(context.Background()); !errors.Is(err, ErrNoNode) {
		t.Fatalf("Pick with no nodes: err = %v; want ErrNoNode", err)
	}
	b.Update([]Node{{Addr: "a"}})
	call(t, b, clk, 30*time.Millisecond, nil)
	b.Update([]Node{{Addr: "a", Weight: 2}, {Addr: "b"}, {Addr: "b"}})
	if got := len(b.Nodes()); got != 2 {
		t.Fatalf("len(Nodes()) = %d; want 2 (duplicates dropped)", got)
	}
	a, nb := nodeState(b, "a"), nodeState(b, "b")
	if a.LagMS != 30 || a.Picks != 1 || a.Weight != 2 {
		t.Fatalf("a after Update = %+v; want lag 30, 1 pick, weight 2 (stats kept)", a)
	}
	if nb.LagMS != 30 {
		t.Fatalf("new node lag = %v ms; want 30 (the others' mean)", nb.LagMS)
	}
	if _, err := json.Marshal(b.State()); err != nil {
		t.Fatalf("State does not marshal: %v", err)
	}
	s := New(Subset(3, 1))
	s.Update(nodesNamed(30))
	if got := len(s.Nodes()); got != 3 {
		t.Fatalf("with Subset(3, 1): %d nodes; want 3", got)
	}
}

func BenchmarkPick(b *testing.B) {
	p := New()
	p.Update(nodesNamed(10))
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			pk, err := p.Pick(ctx)
			if err != nil {
				b.Error(err)
				return
			}
			pk.Done(nil, 500)
		}
	})
}

// TestPicksCounter: every pick adds one to redline_ha_balancer_picks_total of its node:
// labelled by the node's Instance, or by the service for a node without one. A node whose
// instance changes at the same address is counted under its new name from then on.
func TestPicksCounter(t *testing.T) {
	b, clk := newTest(ServiceName("picks-svc"))
	b.Update([]Node{{Addr: "a", Instance: "picks-svc-2"}, {Addr: "b"}})
	counter := func(instance string) float64 { return testutil.ToFloat64(picks.WithLabelValues("picks-svc", instance)) }
	named, unnamed := counter("picks-svc-2"), counter("picks-svc")
	for range 200 {
		call(t, b, clk, time.Millisecond, nil)
	}
	a, bb := nodeState(b, "a"), nodeState(b, "b")
	if a.Instance != "picks-svc-2" || bb.Instance != "" {
		t.Fatalf("node instances = %q, %q; want picks-svc-2, none", a.Instance, bb.Instance)
	}
	if a.Picks == 0 || bb.Picks == 0 || a.Picks+bb.Picks != 200 {
		t.Fatalf("picks a=%d b=%d; want both > 0, 200 in all", a.Picks, bb.Picks)
	}
	if got := counter("picks-svc-2") - named; got != float64(a.Picks) {
		t.Errorf("picks_total{instance=picks-svc-2} += %v; want %d, node a's picks", got, a.Picks)
	}
	if got := counter("picks-svc") - unnamed; got != float64(bb.Picks) {
		t.Errorf("picks_total{instance=picks-svc} += %v; want %d, node b's picks (no instance: the service)", got, bb.Picks)
	}

	b.Update([]Node{{Addr: "a", Instance: "picks-svc-2"}, {Addr: "b", Instance: "picks-svc-3"}})
	third, unnamed := counter("picks-svc-3"), counter("picks-svc")
	for range 100 {
		call(t, b, clk, time.Millisecond, nil)
	}
	bb = nodeState(b, "b")
	if got := counter("picks-svc-3") - third; bb.Picks == 0 || got != float64(bb.Picks) {
		t.Errorf("after renaming b: picks_total{instance=picks-svc-3} += %v; want its %d picks (> 0)", got, bb.Picks)
	}
	if got := counter("picks-svc") - unnamed; got != 0 {
		t.Errorf("after renaming b: picks_total{instance=picks-svc} += %v; want 0", got)
	}
}
