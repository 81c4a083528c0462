package breaker

import (
	"context"
	"sort"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/redline-dev/redline/kit/meta"
	"github.com/redline-dev/redline/kit/metric"
	"github.com/redline-dev/redline/kit/middleware"
)

// Group holds one Breaker per (service, operation), made on first use with the Group's
// options. It is safe for concurrent use.
type Group struct {
	o *options

	mu       sync.RWMutex
	breakers map[key]*Breaker
}

type key struct{ service, operation string }

// NewGroup returns an empty Group whose breakers take opts.
func NewGroup(opts ...Option) *Group {
	return &Group{o: newOptions(opts), breakers: map[key]*Breaker{}}
}

// Get returns the Breaker of service and operation, making it on first use.
func (g *Group) Get(service, operation string) *Breaker {
	k := key{service, operation}
	g.mu.RLock()
	b, ok := g.breakers[k]
	g.mu.RUnlock()
	if ok {
		return b
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if b, ok = g.breakers[k]; !ok {
		o := g.o
		if o.seeded { // reproducible, but no two breakers roll the same dice
			c := *g.o
			c.seed ^= seedOf(service, operation)
			o = &c
		}
		b = newBreaker(o, newCounters(service, operation))
		g.breakers[k] = b
	}
	return b
}

// State returns the Snapshot of every Breaker, sorted by service and operation.
func (g *Group) State() any {
	now := g.o.clock.Now()
	g.mu.RLock()
	out := make([]Snapshot, 0, len(g.breakers))
	for _, b := range g.breakers {
		out = append(out, b.snapshot(now))
	}
	g.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Service != out[j].Service {
			return out[i].Service < out[j].Service
		}
		return out[i].Operation < out[j].Operation
	})
	return out
}

// Client is the client middleware: it asks the Breaker of the call's target service and
// operation (middleware.FromContext) before sending, returns ErrOpen without sending when
// it rejects, and marks the outcome otherwise. Calls without Info share the breaker of
// ("", "").
func Client(g *Group) middleware.Middleware {
	return func(next middleware.Handler) middleware.Handler {
		return func(ctx context.Context, req any) (any, error) {
			var service, operation string
			if info := middleware.FromContext(ctx); info != nil {
				service, operation = info.Service, info.Operation
			}
			b := g.Get(service, operation)
			d := b.Allow(g.o.clock.Now(), meta.FromContext(ctx).Criticality)
			if !d.Allowed() {
				return nil, ErrOpen
			}
			resp, err := next(ctx, req)
			switch g.o.classify(err) {
			case Success:
				b.Mark(g.o.clock.Now(), d, true)
			case Failure:
				b.Mark(g.o.clock.Now(), d, false)
			}
			return resp, err
		}
	}
}

// seedOf hashes the key (FNV-1a) into a seeded Group's per-breaker seed.
func seedOf(service, operation string) uint64 {
	h := uint64(14695981039346656037)
	for _, s := range [2]string{service, operation} {
		for i := 0; i < len(s); i++ {
			h = (h ^ uint64(s[i])) * 1099511628211
		}
		h = (h ^ 0xff) * 1099511628211
	}
	return h
}

var decisions = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "redline_ha_breaker_decisions_total",
	Help: "Client-side throttle decisions, by target service, operation, decision (admit, probe, reject) and reason.",
}, []string{"service", "operation", "decision", "reason"})

func init() { metric.Registry.MustRegister(decisions) }

func newCounters(service, operation string) *counters {
	return &counters{service: service, operation: operation,
		admitClosed:    decisions.WithLabelValues(service, operation, "admit", "closed"),
		admitThrottled: decisions.WithLabelValues(service, operation, "admit", "throttled"),
		probe:          decisions.WithLabelValues(service, operation, "probe", "probe"),
		rej:            decisions.WithLabelValues(service, operation, "reject", "throttled"),
	}
}
