// Package criticality sets the criticality of requests at the edge, per route, so that
// shedding, queueing, retries and the breaker downstream know what to drop first. Inside the
// system kit/meta carries the level from hop to hop; only the edge decides it.
//
// A client at the edge is not trusted to raise its own level: Edge replaces whatever it sent
// with the route's level. It may lower it, though, by sending the x-redline-criticality
// header (meta.HeaderCriticality) with a lower level: a prefetch or a background sync can
// offer itself up for shedding first. A claim above the route's level, or a value that does
// not parse, is ignored.
//
// Defaults: routes not in the table get the default level passed to New; the kit's own
// default, when nothing sets one, is CRITICAL (meta.Critical).
//
// Edge belongs in the server chain of the edge server (the BFF) only, after the metadata
// middleware (which reads the client's header into meta) and before rate limiting and
// shedding. Internal servers trust the level their caller sent and need no Edge.
package criticality

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/redline-dev/redline/kit/meta"
	"github.com/redline-dev/redline/kit/metric"
	"github.com/redline-dev/redline/kit/middleware"
)

// Policy is the criticality of each route at the edge. It is safe for concurrent use.
type Policy struct {
	def    meta.Criticality
	routes map[string]meta.Criticality

	mu       sync.RWMutex
	counters map[string]*routeCounters

	assigned, lowered, refused atomic.Uint64
}

// routeCounters are the decision counters of one route, resolved once.
type routeCounters struct {
	assign, lower, refuse, invalid prometheus.Counter
}

// New returns a Policy giving each operation in routes (the HTTP route pattern, such as
// "GET /v1/notes/{id}", or the gRPC full method) its level, and every other one def.
func New(routes map[string]meta.Criticality, def meta.Criticality) *Policy {
	p := &Policy{def: def, routes: make(map[string]meta.Criticality, len(routes)), counters: map[string]*routeCounters{}}
	for op, c := range routes {
		p.routes[op] = c
	}
	return p
}

// Level returns the route's level of operation.
func (p *Policy) Level(operation string) meta.Criticality {
	if c, ok := p.routes[operation]; ok {
		return c
	}
	return p.def
}

// Assign returns the level of a request to operation whose client sent claimed (the raw
// header value, "" for none): the route's level, or claimed when that parses and is lower.
func (p *Policy) Assign(operation, claimed string) meta.Criticality {
	level := p.Level(operation)
	rc := p.routeCounters(operation)
	if claimed == "" {
		rc.assign.Inc()
		p.assigned.Add(1)
		return level
	}
	c, ok := meta.ParseCriticality(claimed)
	switch {
	case !ok:
		rc.invalid.Inc()
		p.refused.Add(1)
		return level
	case c < level:
		rc.lower.Inc()
		p.lowered.Add(1)
		return c
	case c > level:
		rc.refuse.Inc()
		p.refused.Add(1)
		return level
	}
	rc.assign.Inc()
	p.assigned.Add(1)
	return level
}

func (p *Policy) routeCounters(op string) *routeCounters {
	p.mu.RLock()
	rc := p.counters[op]
	p.mu.RUnlock()
	if rc != nil {
		return rc
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if rc = p.counters[op]; rc == nil {
		rc = &routeCounters{
			assign:  decisions.WithLabelValues(op, "assign", "route"),
			lower:   decisions.WithLabelValues(op, "lower", "client_lowered"),
			refuse:  decisions.WithLabelValues(op, "assign", "raise_refused"),
			invalid: decisions.WithLabelValues(op, "assign", "invalid_header"),
		}
		p.counters[op] = rc
	}
	return rc
}

// State is the JSON snapshot of a Policy for the admin page.
type State struct {
	Default  string            `json:"default"`
	Routes   map[string]string `json:"routes"`
	Assigned uint64            `json:"assigned"`
	Lowered  uint64            `json:"lowered"`
	// Refused counts claims that were ignored: above the route's level, or unparseable.
	Refused uint64 `json:"refused"`
}

// State returns a State.
func (p *Policy) State() any {
	st := State{Default: p.def.String(), Routes: make(map[string]string, len(p.routes)),
		Assigned: p.assigned.Load(), Lowered: p.lowered.Load(), Refused: p.refused.Load()}
	for op, c := range p.routes {
		st.Routes[op] = c.String()
	}
	return st
}

// Edge is the edge server middleware: it sets the request's criticality in kit/meta to the
// route's level, or to the lower one the client asked for in x-redline-criticality.
func Edge(p *Policy) middleware.Middleware {
	return func(next middleware.Handler) middleware.Handler {
		return func(ctx context.Context, req any) (any, error) {
			info := middleware.FromContext(ctx)
			if info == nil || info.Side != middleware.Server {
				return next(ctx, req)
			}
			claimed := ""
			if info.Header != nil {
				claimed = info.Header.Get(meta.HeaderCriticality)
			}
			md := meta.FromContext(ctx)
			if c := p.Assign(info.Operation, claimed); c != md.Criticality {
				md.Criticality = c
				ctx = meta.NewContext(ctx, md)
			}
			return next(ctx, req)
		}
	}
}

// FromConfig parses a route table of level names (CRITICAL_PLUS, CRITICAL, SHEDDABLE_PLUS,
// SHEDDABLE; any case), as read from configuration. Every bad entry is reported, each naming
// its route.
func FromConfig(m map[string]string) (map[string]meta.Criticality, error) {
	out := make(map[string]meta.Criticality, len(m))
	var bad []error
	ops := make([]string, 0, len(m))
	for op := range m {
		ops = append(ops, op)
	}
	sort.Strings(ops)
	for _, op := range ops {
		name := strings.TrimSpace(m[op])
		c, ok := meta.ParseCriticality(name)
		if !ok || name == "" {
			bad = append(bad, fmt.Errorf("route %q: criticality %q is not one of CRITICAL_PLUS, CRITICAL, SHEDDABLE_PLUS, SHEDDABLE: %w",
				op, m[op], ErrUnknownLevel))
			continue
		}
		out[op] = c
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("criticality: %w", errors.Join(bad...))
	}
	return out, nil
}

// ErrUnknownLevel is wrapped by FromConfig's errors for a level name it does not know.
var ErrUnknownLevel = errors.New("unknown criticality level")

// decisions counts the levels assigned at the edge.
var decisions = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "redline_ha_criticality_decisions_total",
	Help: "Criticality decisions at the edge, by route, decision (assign, lower) and reason (route, client_lowered, raise_refused, invalid_header).",
}, []string{"route", "decision", "reason"})

func init() { metric.Registry.MustRegister(decisions) }
