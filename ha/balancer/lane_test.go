package balancer

import (
	"context"
	"errors"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/redline-dev/redline/kit/meta"
)

func TestLaneFilterRoutes(t *testing.T) {
	mixed := []Node{{Addr: "a"}, {Addr: "b"}, {Addr: "c1", Lane: "canary"}, {Addr: "c2", Lane: "canary"}}
	cases := []struct {
		name   string
		nodes  []Node
		lane   string
		want   map[string]bool
		result string // the lane_routes counter that must move, "" for none
	}{
		{"baseline avoids lane nodes", mixed, "", map[string]bool{"a": true, "b": true}, "baseline"},
		{"lane prefers its nodes", mixed, "canary", map[string]bool{"c1": true, "c2": true}, "same"},
		{"missing lane falls back", mixed, "blue", map[string]bool{"a": true, "b": true}, "fallback"},
		{"all baseline is free", []Node{{Addr: "a"}, {Addr: "b"}}, "", map[string]bool{"a": true, "b": true}, ""},
		{"only lane nodes refuse baseline", []Node{{Addr: "c1", Lane: "canary"}}, "", nil, "none"},
		{"no lane nor baseline", []Node{{Addr: "c1", Lane: "canary"}}, "blue", nil, "none"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := map[string]float64{}
			for r, ctr := range laneRoutes {
				before[r] = testutil.ToFloat64(ctr)
			}
			b, _ := newTest()
			b.Update(c.nodes)
			ctx := meta.WithLane(context.Background(), c.lane)
			for range 40 {
				p, err := b.Pick(ctx)
				if c.want == nil {
					if !errors.Is(err, ErrNoNode) {
						t.Fatalf("Pick = %v, %v; want ErrNoNode", p.Node, err)
					}
					continue
				}
				if err != nil || !c.want[p.Node.Addr] {
					t.Fatalf("Pick = %s, %v; want one of %v", p.Node.Addr, err, c.want)
				}
				p.Done(nil, -1)
			}
			for r, ctr := range laneRoutes {
				want := 0.0
				if r == c.result {
					want = 40
				}
				if got := testutil.ToFloat64(ctr) - before[r]; got != want {
					t.Errorf("lane_routes{result=%q} moved by %v; want %v", r, got, want)
				}
			}
		})
	}
}

func TestLaneFallbackInTrace(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	ctx, span := tp.Tracer("test").Start(meta.WithLane(context.Background(), "blue"), "call")
	b, _ := newTest()
	b.Update([]Node{{Addr: "a"}, {Addr: "c1", Lane: "canary"}})
	p, err := b.Pick(ctx)
	if err != nil || p.Node.Addr != "a" {
		t.Fatalf("Pick = %s, %v; want the baseline node a", p.Node.Addr, err)
	}
	p.Done(nil, -1)
	span.End()
	ended := rec.Ended()
	if len(ended) != 1 || len(ended[0].Events()) != 1 || ended[0].Events()[0].Name != "lane fallback" {
		t.Fatalf("span events = %v; want one \"lane fallback\"", ended[0].Events())
	}
	if got := ended[0].Events()[0].Attributes[0].Value.AsString(); got != "blue" {
		t.Errorf("fallback event lane = %q; want blue", got)
	}
}

func BenchmarkLaneFilter(b *testing.B) {
	nodes := []Node{{Addr: "a"}, {Addr: "b"}, {Addr: "c"}, {Addr: "d"}}
	mixed := append(nodes[:len(nodes):len(nodes)], Node{Addr: "x", Lane: "canary"})
	for _, c := range []struct {
		name  string
		nodes []Node
		lane  string
	}{{"baseline-only", nodes, ""}, {"mixed-baseline", mixed, ""}, {"mixed-lane", mixed, "canary"}} {
		b.Run(c.name, func(b *testing.B) {
			ctx := meta.WithLane(context.Background(), c.lane)
			b.ReportAllocs()
			for b.Loop() {
				if len(LaneFilter(ctx, c.nodes)) == 0 {
					b.Fatal("no node")
				}
			}
		})
	}
}
