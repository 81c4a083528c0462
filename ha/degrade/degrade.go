// Package degrade provides graceful degradation: a fallback hook on client calls, switches
// that force a named dependency's fallback from dynamic configuration, and, at the BFF, a
// cache of last good responses with per-route default responses to serve when a call fails.
//
// A failure is degradable (IsDegradable) when the dependency is unavailable or slow rather
// than the request being wrong: codes Unavailable (which includes an open breaker,
// BREAKER_OPEN), DeadlineExceeded and ResourceExhausted (rate limited, shed, bulkhead full).
// Canceled, InvalidArgument, NotFound and the like are the caller's answer and pass through.
//
// Defaults, each changeable by an Option:
//   - Degradable: IsDegradable.
//   - MaxEntries: 2,048 last good responses (DefaultMaxEntries), least recently used
//     dropped first.
//   - MaxAge: 5 minutes (DefaultMaxAge); an older response is not served.
//   - Defaults: none; a default response per route (operation) for when nothing good is
//     cached.
//   - Key: LastGoodKey, which caches only GET and HEAD requests of an HTTP server, keyed
//     by route, path and query, lane and caller (see LastGoodKey).
//   - Clock: clock.Real{}.
//
// Where they go: Client outermost in the client chain, outside retry, the breaker and the
// bulkhead, so that the fallback answers once those have given up; Server (LastGood) in the
// BFF's server chain inside the rate limiter and the shedder, so that their rejections reach
// the client as rejections, while the failures of the BFF's dependencies are degraded.
package degrade

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"

	"github.com/redline-dev/redline/ha/clock"
	"github.com/redline-dev/redline/kit/errs"
	"github.com/redline-dev/redline/kit/metric"
	"github.com/redline-dev/redline/kit/middleware"
)

// Defaults.
const (
	DefaultMaxEntries = 2048
	DefaultMaxAge     = 5 * time.Minute
)

// ReasonForced is the reason of ErrForced.
const ReasonForced = "DEGRADE_FORCED"

// ErrForced is the error a fallback gets, and the caller gets when there is no fallback,
// when a switch forces a dependency into degraded mode. It is not retryable: the switch is
// an operator's decision that retries cannot undo.
var ErrForced = errs.New(codes.Unavailable, ReasonForced,
	"the dependency is switched to degraded mode: the call was not made").NoRetry()

// Fallback answers in place of a failed or switched-off call. err is the call's error, or
// ErrForced. It runs on the caller's goroutine with the caller's ctx, which may already
// be past its deadline: keep it local (a default, a cached value), never another remote call.
type Fallback func(ctx context.Context, req any, err error) (any, error)

// IsDegradable reports whether err means the dependency is unavailable, overloaded or slow,
// so that a fallback may answer instead.
func IsDegradable(err error) bool {
	if err == nil {
		return false
	}
	switch errs.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted:
		return true
	}
	return false
}

// Option configures Client, NewSwitches and NewLastGood; each documents what it reads.
type Option func(*options)

type options struct {
	degradable func(error) bool
	maxEntries int
	maxAge     time.Duration
	defaults   map[string]any
	key        KeyFunc
	clock      clock.Clock
}

func newOptions(opts []Option) options {
	o := options{degradable: IsDegradable, maxEntries: DefaultMaxEntries, maxAge: DefaultMaxAge,
		key: LastGoodKey, clock: clock.Real{}}
	for _, opt := range opts {
		opt(&o)
	}
	if o.maxEntries < 1 {
		o.maxEntries = 1
	}
	return o
}

// Degradable sets which failures a fallback or a last good response may answer (Client,
// LastGood); the default is IsDegradable.
func Degradable(f func(error) bool) Option { return func(o *options) { o.degradable = f } }

// Clock sets the time source (Switches, LastGood); the default is clock.Real{}.
func Clock(c clock.Clock) Option { return func(o *options) { o.clock = c } }

// Client is the client middleware. A call to a dependency whose switch is on is not made:
// its fallback answers with ErrForced, or the caller gets ErrForced when it has none. A call
// that fails with a degradable error is answered by its fallback when it has one. Fallbacks
// and switches are looked up by operation (the gRPC full method) first, then by target
// service. switches may be nil.
func Client(fallbacks map[string]Fallback, switches *Switches, opts ...Option) middleware.Middleware {
	o := newOptions(opts)
	fbs := make(map[string]Fallback, len(fallbacks))
	for k, f := range fallbacks {
		fbs[k] = f
	}
	var counters counterCache
	return func(next middleware.Handler) middleware.Handler {
		return func(ctx context.Context, req any) (any, error) {
			info := middleware.FromContext(ctx)
			if info == nil {
				return next(ctx, req)
			}
			name, fb := info.Service, fbs[info.Operation]
			if fb != nil {
				name = info.Operation
			} else {
				fb = fbs[info.Service]
			}
			if forced := switches.forced(info.Operation, info.Service); forced != "" {
				err := ErrForced.WithMetadata("dependency", forced)
				if fb == nil {
					count(forced, "fail", "switch")
					return nil, err
				}
				count(forced, "forced", "switch")
				return fb(ctx, req, err)
			}
			resp, err := next(ctx, req)
			if err == nil {
				counters.pass(name).Inc()
				return resp, nil
			}
			if fb == nil || !o.degradable(err) {
				return resp, err
			}
			count(name, "fallback", errs.Code(err).String())
			return fb(ctx, req, err)
		}
	}
}

// counterCache holds the pass counter of each name, so a successful call, the common case,
// costs no label hashing.
type counterCache struct {
	mu sync.RWMutex
	m  map[string]prometheus.Counter
}

func (c *counterCache) pass(name string) prometheus.Counter {
	c.mu.RLock()
	ctr := c.m[name]
	c.mu.RUnlock()
	if ctr != nil {
		return ctr
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]prometheus.Counter{}
	}
	if ctr = c.m[name]; ctr == nil {
		ctr = decisions.WithLabelValues(name, "pass", "ok")
		c.m[name] = ctr
	}
	return ctr
}

func count(name, decision, reason string) { decisions.WithLabelValues(name, decision, reason).Inc() }

// decisions counts what the degradation middleware did.
var decisions = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "redline_ha_degrade_decisions_total",
	Help: "Degradation decisions, by dependency or route, decision (pass, fallback, forced, last_good, default, fail) and reason (ok, switch, or the failure's code).",
}, []string{"name", "decision", "reason"})

func init() { metric.Registry.MustRegister(decisions) }
