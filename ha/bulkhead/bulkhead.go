// Package bulkhead provides concurrency limits per dependency (client side) and per route
// (server side), so that one slow dependency or route cannot take every goroutine: when a
// compartment is full, further calls into it are rejected with "overloaded, don't retry"
// (errs.Overloaded, reason BULKHEAD_FULL) while the other compartments carry on.
//
// Defaults, each changeable by an Option:
//   - Limit: 256 calls in flight per compartment (DefaultLimit). By Little's law that is
//     25,600 calls a second at 10 ms, or 2,560 a second when every call runs into the
//     100 ms internal timeout, which is when the bulkhead should start refusing.
//   - Limits: none; per-compartment overrides by key, where 0 or less means unlimited.
//   - MaxWait: 0 (DefaultMaxWait), so a full compartment rejects at once. A full
//     compartment means the dependency is slow, and a waiting caller holds the very
//     goroutine the bulkhead exists to save; queueing is the server's admission queue's job.
//     A positive MaxWait waits that long for a slot, and never past the ctx.
//   - Key: the target service on a client (Client), the operation on a server (Server).
//     Set Key to func(i *middleware.Info) string { return i.Service + " " + i.Operation }
//     for a compartment per dependency method. Keys must come from a bounded set.
//   - Clock: clock.Real{}; it stamps the last rejection shown on the admin page.
//
// Client belongs in the client chain inside retry and the breaker (each attempt takes a
// slot, and a BULKHEAD_FULL is a local rejection that is not retried), outside the transport
// call. Server belongs in the server chain after the metadata and deadline middleware.
package bulkhead

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/redline-dev/redline/ha/clock"
	"github.com/redline-dev/redline/kit/errs"
	"github.com/redline-dev/redline/kit/metric"
	"github.com/redline-dev/redline/kit/middleware"
)

// Defaults.
const (
	DefaultLimit   = 256
	DefaultMaxWait = time.Duration(0)
)

// ReasonFull is the reason of a rejection.
const ReasonFull = "BULKHEAD_FULL"

// Option configures a Bulkhead.
type Option func(*options)

type options struct {
	limit   int
	limits  map[string]int
	maxWait time.Duration
	key     func(*middleware.Info) string
	clock   clock.Clock
}

// Limit sets the number of calls in flight per compartment; the default is DefaultLimit.
// 0 or less means unlimited.
func Limit(n int) Option { return func(o *options) { o.limit = n } }

// Limits overrides Limit per compartment key; the default is none.
func Limits(m map[string]int) Option { return func(o *options) { o.limits = m } }

// MaxWait sets how long a call waits for a slot in a full compartment; the default is
// DefaultMaxWait (reject at once).
func MaxWait(d time.Duration) Option { return func(o *options) { o.maxWait = d } }

// Key sets the compartment of a call; the default is the target service on a client and
// the operation on a server.
func Key(f func(*middleware.Info) string) Option { return func(o *options) { o.key = f } }

// Clock sets the time source; the default is clock.Real{}.
func Clock(c clock.Clock) Option { return func(o *options) { o.clock = c } }

// Bulkhead is a set of compartments, each with its own concurrency limit. It is safe for
// concurrent use.
type Bulkhead struct {
	o     options
	mu    sync.RWMutex
	comps map[string]*compartment
}

// compartment is the semaphore of one key: a slot is a value in the channel.
type compartment struct {
	key      string
	slots    chan struct{} // nil: unlimited
	full     *errs.Error   // built once: a rejection must not allocate under overload
	waiting  atomic.Int64
	admitted atomic.Uint64
	rejected atomic.Uint64
	lastFull atomic.Int64 // Unix ns of the last rejection

	admitFree, admitWaited, rejectFull, rejectCtx prometheus.Counter
}

// New returns a Bulkhead.
func New(opts ...Option) *Bulkhead {
	o := options{limit: DefaultLimit, maxWait: DefaultMaxWait, clock: clock.Real{}}
	for _, opt := range opts {
		opt(&o)
	}
	return &Bulkhead{o: o, comps: map[string]*compartment{}}
}

func (b *Bulkhead) compartment(key string) *compartment {
	b.mu.RLock()
	c := b.comps[key]
	b.mu.RUnlock()
	if c != nil {
		return c
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if c = b.comps[key]; c != nil {
		return c
	}
	limit := b.o.limit
	if n, ok := b.o.limits[key]; ok {
		limit = n
	}
	c = &compartment{key: key,
		admitFree:   decisions.WithLabelValues(key, "admit", "free"),
		admitWaited: decisions.WithLabelValues(key, "admit", "waited"),
		rejectFull:  decisions.WithLabelValues(key, "reject", "full"),
		rejectCtx:   decisions.WithLabelValues(key, "reject", "ctx_done"),
	}
	if limit > 0 {
		c.slots = make(chan struct{}, limit)
		c.full = errs.Overloaded(ReasonFull, fmt.Sprintf("%d calls to %s already in flight: the bulkhead is full", limit, key)).
			WithMetadata("bulkhead", key)
	}
	b.comps[key] = c
	return c
}

// Permit is a slot taken by Acquire. Release it exactly once.
type Permit struct{ c *compartment }

// Release gives the slot back.
func (p Permit) Release() {
	if p.c != nil && p.c.slots != nil {
		<-p.c.slots
	}
}

// Acquire takes a slot in key's compartment. When it is full it waits up to MaxWait (never
// past ctx) and then fails with BULKHEAD_FULL; a ctx that ends first fails with the ctx's
// DeadlineExceeded or Canceled.
func (b *Bulkhead) Acquire(ctx context.Context, key string) (Permit, error) {
	c := b.compartment(key)
	if c.slots == nil {
		c.admitted.Add(1)
		c.admitFree.Inc()
		return Permit{c}, nil
	}
	select {
	case c.slots <- struct{}{}:
		c.admitted.Add(1)
		c.admitFree.Inc()
		return Permit{c}, nil
	default:
	}
	if b.o.maxWait <= 0 {
		return Permit{}, b.reject(c)
	}
	if err := ctx.Err(); err != nil {
		c.rejected.Add(1)
		c.rejectCtx.Inc()
		return Permit{}, errs.From(err)
	}
	c.waiting.Add(1)
	defer c.waiting.Add(-1)
	t := time.NewTimer(b.o.maxWait)
	defer t.Stop()
	select {
	case c.slots <- struct{}{}:
		c.admitted.Add(1)
		c.admitWaited.Inc()
		return Permit{c}, nil
	case <-ctx.Done():
		c.rejected.Add(1)
		c.rejectCtx.Inc()
		return Permit{}, errs.From(ctx.Err())
	case <-t.C:
		return Permit{}, b.reject(c)
	}
}

func (b *Bulkhead) reject(c *compartment) error {
	c.rejected.Add(1)
	c.rejectFull.Inc()
	c.lastFull.Store(b.o.clock.Now().UnixNano())
	return c.full
}

// CompartmentState is one compartment on the admin page.
type CompartmentState struct {
	Key      string    `json:"key"`
	Limit    int       `json:"limit"` // 0: unlimited
	InFlight int       `json:"in_flight"`
	Waiting  int64     `json:"waiting"`
	Admitted uint64    `json:"admitted"`
	Rejected uint64    `json:"rejected"`
	LastFull time.Time `json:"last_full,omitzero"`
}

// State is the JSON snapshot of a Bulkhead for the admin page.
type State struct {
	Limit        int                `json:"limit"`
	MaxWait      string             `json:"max_wait"`
	Compartments []CompartmentState `json:"compartments"`
}

// State returns a State, compartments sorted by key.
func (b *Bulkhead) State() any {
	st := State{Limit: b.o.limit, MaxWait: b.o.maxWait.String(), Compartments: []CompartmentState{}}
	b.mu.RLock()
	for _, c := range b.comps {
		cs := CompartmentState{Key: c.key, Limit: cap(c.slots), InFlight: len(c.slots), Waiting: c.waiting.Load(),
			Admitted: c.admitted.Load(), Rejected: c.rejected.Load()}
		if ns := c.lastFull.Load(); ns != 0 {
			cs.LastFull = time.Unix(0, ns).UTC()
		}
		st.Compartments = append(st.Compartments, cs)
	}
	b.mu.RUnlock()
	sort.Slice(st.Compartments, func(i, j int) bool { return st.Compartments[i].Key < st.Compartments[j].Key })
	return st
}

// Client is the client middleware: each call holds a slot in its target's compartment
// (by default the target service) while it runs.
func Client(b *Bulkhead) middleware.Middleware { return b.middleware(clientKey) }

// Server is the server middleware: each request holds a slot in its route's compartment
// (by default the operation) while it runs.
func Server(b *Bulkhead) middleware.Middleware { return b.middleware(serverKey) }

func clientKey(info *middleware.Info) string {
	if info.Service != "" {
		return info.Service
	}
	return info.Operation
}

func serverKey(info *middleware.Info) string { return info.Operation }

func (b *Bulkhead) middleware(def func(*middleware.Info) string) middleware.Middleware {
	key := def
	if b.o.key != nil {
		key = b.o.key
	}
	return func(next middleware.Handler) middleware.Handler {
		return func(ctx context.Context, req any) (any, error) {
			info := middleware.FromContext(ctx)
			if info == nil {
				return next(ctx, req)
			}
			p, err := b.Acquire(ctx, key(info))
			if err != nil {
				return nil, err
			}
			defer p.Release()
			return next(ctx, req)
		}
	}
}

// decisions counts admissions and rejections.
var decisions = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "redline_ha_bulkhead_decisions_total",
	Help: "Bulkhead decisions, by compartment key, decision (admit, reject) and reason (free, waited, full, ctx_done).",
}, []string{"key", "decision", "reason"})

func init() { metric.Registry.MustRegister(decisions) }
