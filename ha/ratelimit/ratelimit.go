// Package ratelimit provides a token-bucket rate limiter keyed by route and caller, and the
// server middleware that answers HTTP 429 / gRPC ResourceExhausted with a retry-after when a
// caller runs out of tokens.
//
// Each (route, caller) pair gets its own bucket: Rate tokens a second, holding at most Burst.
// Buckets are kept in memory, at most MaxKeys of them, least recently used dropped first; a
// bucket idle for IdleTTL that has refilled completely is dropped as well, which loses
// nothing, since a new bucket starts full.
//
// Defaults, each changeable by an Option:
//   - Default limit: 100 requests a second with a burst of 200, per route and caller
//     (DefaultRate, DefaultBurst). Routes without an entry in Routes get it.
//   - Routes: none; a route listed there gets its own Rate and Burst, and Rate 0 exempts it.
//   - Key: DefaultKey, the operation plus the caller: the authenticated subject
//     (auth.Subject) when an earlier middleware set one, else the x-client-id header, else
//     the peer's IP address, else "anonymous".
//   - MaxKeys: 100,000 buckets (DefaultMaxKeys), about 10 MB.
//   - IdleTTL: 1 minute (DefaultIdleTTL).
//   - Clock: clock.Real{}.
//
// A rejection is errs.New(codes.ResourceExhausted, "RATE_LIMITED", ...) with metadata
// retry_after_ms; on an HTTP server the middleware also sets the Retry-After header (whole
// seconds, rounded up) on the reply. The error is not retryable: the kit's retry middleware
// would spend its budget sending the same caller's request to the same empty bucket. The
// retry-after is advice for the end client, which may come back after the delay.
//
// Server belongs in the server chain after the metadata middleware and, at the edge, after
// criticality.Edge; put it after auth.Require (as a route middleware) to key by the verified
// user rather than by a client-chosen header. The default limit is an edge limit, per user:
// on an internal server every caller without an x-client-id header shares the peer address
// (all of `redline up` is 127.0.0.1), so give internal servers their own Default or Routes,
// sized for the whole calling service, rather than the edge default.
package ratelimit

import (
	"context"
	"fmt"
	"hash/maphash"
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/redline-dev/redline/ha/clock"
	"github.com/redline-dev/redline/kit/auth"
	"github.com/redline-dev/redline/kit/errs"
	"github.com/redline-dev/redline/kit/metric"
	"github.com/redline-dev/redline/kit/middleware"
)

// Defaults.
const (
	DefaultRate    = 100
	DefaultBurst   = 200
	DefaultMaxKeys = 100_000
	DefaultIdleTTL = time.Minute
)

// HeaderClientID names the calling client when no authenticated subject is known.
const HeaderClientID = "x-client-id"

// ReasonRateLimited is the reason of a rejection.
const ReasonRateLimited = "RATE_LIMITED"

// MetadataRetryAfter is the error metadata key holding the delay, in whole milliseconds
// rounded up, after which the caller has a token again.
const MetadataRetryAfter = "retry_after_ms"

// Limit is the rate and burst of one route's buckets.
type Limit struct {
	// Rate is the number of requests a second a caller may make; 0 or less means no limit.
	Rate float64 `koanf:"rate" json:"rate"`
	// Burst is how many requests a caller may make at once after being idle; less than 1
	// means Rate rounded up (one second's worth), and at least 1.
	Burst int `koanf:"burst" json:"burst"`
}

// KeyFunc returns the bucket key of a request: its route and caller, or any other grouping.
// req is the request as the middleware sees it (*http.Request on an HTTP server).
type KeyFunc func(ctx context.Context, info *middleware.Info, req any) string

// Option configures a Limiter.
type Option func(*options)

type options struct {
	def     Limit
	routes  map[string]Limit
	key     KeyFunc
	maxKeys int
	idleTTL time.Duration
	clock   clock.Clock
}

// Default sets the limit of routes that Routes does not list; the default is
// DefaultRate requests a second with a burst of DefaultBurst.
func Default(l Limit) Option { return func(o *options) { o.def = l } }

// Routes sets per-route limits by operation (the HTTP route pattern such as
// "GET /v1/notes/{id}", or the gRPC full method); the default is none.
func Routes(m map[string]Limit) Option { return func(o *options) { o.routes = m } }

// Key sets how requests map to buckets; the default is DefaultKey.
func Key(f KeyFunc) Option { return func(o *options) { o.key = f } }

// MaxKeys bounds the number of buckets kept; the least recently used go first. The default
// is DefaultMaxKeys; values below 16 are raised to 16.
func MaxKeys(n int) Option { return func(o *options) { o.maxKeys = n } }

// IdleTTL sets how long a full bucket stays after its last request; the default is
// DefaultIdleTTL.
func IdleTTL(d time.Duration) Option { return func(o *options) { o.idleTTL = d } }

// Clock sets the time source; the default is clock.Real{}.
func Clock(c clock.Clock) Option { return func(o *options) { o.clock = c } }

// DefaultKey keys a request by its operation and caller (see Caller).
func DefaultKey(ctx context.Context, info *middleware.Info, req any) string {
	var buf [128]byte
	b := append(buf[:0], info.Operation...)
	b = append(b, '|')
	return string(appendCaller(ctx, b, info, req)) // one allocation, for the key itself
}

// Caller names who sent a request: "user:<id>" for an authenticated subject,
// "client:<id>" for an x-client-id header (at most 128 bytes), "ip:<addr>" for the peer
// address, else "anonymous". The header is the client's own claim: at the edge, key by the
// verified subject where rotating client ids must not buy a fresh bucket.
func Caller(ctx context.Context, info *middleware.Info, req any) string {
	return string(appendCaller(ctx, nil, info, req))
}

func appendCaller(ctx context.Context, b []byte, info *middleware.Info, req any) []byte {
	if sub, ok := auth.Subject(ctx); ok {
		return strconv.AppendInt(append(b, "user:"...), sub, 10)
	}
	if info != nil && info.Header != nil {
		if id := info.Header.Get(HeaderClientID); id != "" && len(id) <= 128 {
			return append(append(b, "client:"...), id...)
		}
	}
	if r, ok := req.(*http.Request); ok && r.RemoteAddr != "" {
		return append(append(b, "ip:"...), hostOf(r.RemoteAddr)...)
	}
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		return append(append(b, "ip:"...), hostOf(p.Addr.String())...)
	}
	return append(b, "anonymous"...)
}

// hostOf drops the port of addr, so one host's connections share a bucket.
func hostOf(addr string) string {
	if host, _, err := net.SplitHostPort(addr); err == nil {
		return host
	}
	return addr
}

// Limiter is a set of token buckets. It is safe for concurrent use.
type Limiter struct {
	o    options
	seed maphash.Seed

	mu     sync.RWMutex
	routes map[string]*route

	admitted, rejected atomic.Uint64

	shards [numShards]shard
}

const numShards = 16

// route is the resolved limit of one operation, with its counters.
type route struct {
	limit     Limit
	unlimited bool
	interval  int64 // nanoseconds per token
	tolerance int64 // how far ahead of now the bucket's theoretical arrival time may run
	admit     prometheus.Counter
	reject    prometheus.Counter
	pass      prometheus.Counter
}

// New returns a Limiter.
func New(opts ...Option) *Limiter {
	o := options{def: Limit{Rate: DefaultRate, Burst: DefaultBurst}, key: DefaultKey,
		maxKeys: DefaultMaxKeys, idleTTL: DefaultIdleTTL, clock: clock.Real{}}
	for _, opt := range opts {
		opt(&o)
	}
	if o.maxKeys < numShards {
		o.maxKeys = numShards
	}
	l := &Limiter{o: o, seed: maphash.MakeSeed(), routes: make(map[string]*route, len(o.routes))}
	for op, lim := range o.routes {
		l.routes[op] = newRoute(op, lim)
	}
	for i := range l.shards {
		s := &l.shards[i]
		s.max = o.maxKeys / numShards
		s.m = map[string]*entry{}
		s.lru.prev, s.lru.next = &s.lru, &s.lru
	}
	return l
}

func newRoute(op string, lim Limit) *route {
	r := &route{
		admit:  decisions.WithLabelValues(op, "admit", "within_limit"),
		reject: decisions.WithLabelValues(op, "reject", "rate_limited"),
		pass:   decisions.WithLabelValues(op, "admit", "unlimited"),
	}
	if lim.Rate <= 0 || math.IsNaN(lim.Rate) || math.IsInf(lim.Rate, 0) {
		r.unlimited = true
		r.limit = Limit{}
		return r
	}
	if lim.Burst < 1 {
		lim.Burst = max(1, int(math.Ceil(lim.Rate)))
	}
	r.limit = lim
	r.interval = max(1, int64(float64(time.Second)/lim.Rate))
	r.tolerance = int64(lim.Burst-1) * r.interval
	return r
}

// route returns the resolved limit of op, creating it from the default on first use.
func (l *Limiter) route(op string) *route {
	l.mu.RLock()
	r := l.routes[op]
	l.mu.RUnlock()
	if r != nil {
		return r
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if r = l.routes[op]; r == nil {
		r = newRoute(op, l.o.def)
		l.routes[op] = r
	}
	return r
}

// Allow takes a token from the bucket key under route's limit. When there is none it
// reports false and how long until there is one.
func (l *Limiter) Allow(route, key string) (ok bool, retryAfter time.Duration) {
	return l.allow(l.route(route), key)
}

func (l *Limiter) allow(r *route, key string) (bool, time.Duration) {
	if r.unlimited {
		r.pass.Inc()
		l.admitted.Add(1)
		return true, 0
	}
	now := l.o.clock.Now().UnixNano()
	s := &l.shards[maphash.String(l.seed, key)%numShards]
	wait := s.take(key, now, r, int64(l.o.idleTTL))
	if wait > 0 {
		r.reject.Inc()
		l.rejected.Add(1)
		return false, time.Duration(wait)
	}
	r.admit.Inc()
	l.admitted.Add(1)
	return true, 0
}

// Len returns the number of buckets held, after dropping the idle ones.
func (l *Limiter) Len() int {
	now := l.o.clock.Now().UnixNano()
	n := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		s.expire(now, int64(l.o.idleTTL), -1)
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}

// State is the JSON snapshot of a Limiter for the admin page.
type State struct {
	Default  Limit            `json:"default"`
	Routes   map[string]Limit `json:"routes"`
	Keys     int              `json:"keys"`
	MaxKeys  int              `json:"max_keys"`
	IdleTTL  string           `json:"idle_ttl"`
	Admitted uint64           `json:"admitted"`
	Rejected uint64           `json:"rejected"`
}

// State returns a State.
func (l *Limiter) State() any {
	st := State{Default: l.o.def, Routes: map[string]Limit{}, Keys: l.Len(), MaxKeys: l.o.maxKeys,
		IdleTTL: l.o.idleTTL.String(), Admitted: l.admitted.Load(), Rejected: l.rejected.Load()}
	l.mu.RLock()
	for op, r := range l.routes {
		if _, listed := l.o.routes[op]; listed {
			st.Routes[op] = r.limit
		}
	}
	l.mu.RUnlock()
	return st
}

// Server is the server middleware: it takes a token for each request from the bucket that
// the Key option names, and rejects the request with RATE_LIMITED when there is none.
func Server(l *Limiter) middleware.Middleware {
	return func(next middleware.Handler) middleware.Handler {
		return func(ctx context.Context, req any) (any, error) {
			info := middleware.FromContext(ctx)
			if info == nil {
				return next(ctx, req)
			}
			r := l.route(info.Operation)
			if r.unlimited {
				l.allow(r, "")
				return next(ctx, req)
			}
			ok, wait := l.allow(r, l.o.key(ctx, info, req))
			if !ok {
				return nil, rejection(info, r, wait)
			}
			return next(ctx, req)
		}
	}
}

// rejection builds the RATE_LIMITED error and sets Retry-After on an HTTP reply.
func rejection(info *middleware.Info, r *route, wait time.Duration) error {
	ms := (wait + time.Millisecond - 1) / time.Millisecond
	if info.Reply != nil {
		secs := (wait + time.Second - 1) / time.Second
		info.Reply.Set("Retry-After", strconv.FormatInt(int64(max(1, secs)), 10))
	}
	return errs.New(codes.ResourceExhausted, ReasonRateLimited,
		fmt.Sprintf("rate limit of %g requests/s (burst %d) exceeded for %s: retry after %s",
			r.limit.Rate, r.limit.Burst, info.Operation, time.Duration(ms)*time.Millisecond)).
		WithMetadata(MetadataRetryAfter, strconv.FormatInt(int64(ms), 10))
}

// decisions counts admissions and rejections.
var decisions = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "redline_ha_ratelimit_decisions_total",
	Help: "Rate limiter decisions, by route, decision (admit, reject) and reason.",
}, []string{"route", "decision", "reason"})

func init() { metric.Registry.MustRegister(decisions) }
