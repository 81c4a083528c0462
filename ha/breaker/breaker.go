// Package breaker provides the Google SRE client-side adaptive throttle ("Handling
// Overload"), one per target service and operation, with a probe path that brings a healed
// backend back to full pass-through in about a second, and the client middleware that
// applies it.
//
// A Breaker counts, over a rolling window, the requests its client attempted (local
// rejections included) and the requests the backend accepted, and rejects a new request
// locally with probability
//
//	P = max(0, (requests - K·accepts) / (requests + 1))
//
// so a client sends at most about K times what the backend is currently accepting. Below
// MinRequests requests in the window P is 0.
//
// Recovery. Left alone the formula recovers slowly: while P is near 1 almost nothing is
// admitted, so accepts grow only a few per second (go-zero#4101 saw 15 minutes). Here, while
// P > 0, the first request of every ProbeInterval (stretched so that probes stay under 2% of
// the client's requests) is admitted whatever P says: a probe. A
// probe that succeeds halves a recovery ceiling on P (it starts at 1); one that fails puts
// the ceiling back to 1, and every other failure doubles it, so a backend that dies again is
// throttled again within milliseconds. With the defaults a healed backend is probed within
// 100 ms and P ≤ 1/128 after 7 successful probes: full pass-through in well under a second,
// while the window forgets the failures on its own. When P falls to 0 the ceiling resets.
//
// Criticality. K is scaled by the request's criticality (meta.Criticality): CRITICAL_PLUS
// ×2 (rejected only when fewer than 1 in 4 requests succeed), CRITICAL ×1, SHEDDABLE_PLUS
// ×0.75, SHEDDABLE ×0.55 (K = 1.1, the book's "aggressive").
//
// Defaults, each changeable by an Option:
//   - K: 2 (WithK), the SRE book's value.
//   - Window: 1 s in 10 buckets (WithWindow). With K = 2, P reaches 0.9 only when 95% of
//     the window's requests failed, so the time to throttle 90% of calls after a backend
//     dies is about 0.95 × window: the book's 2 minutes or kratos' 3 s cannot meet "90%
//     rejected within 1 s", 1 s can. Recovery does not depend on the window (the probes
//     do it), so the window is as short as detection needs and no shorter: a client needs
//     MinRequests per window, i.e. 20 rps, before it ever throttles.
//   - MinRequests: 20 (WithMinRequests), as kratos.
//   - ProbeInterval: 100 ms (WithProbeInterval): at most 10 probes a second against a dead
//     backend, and never more than 1 in 50 of the window's requests (not configurable), so
//     at 1,000 rps probes are 1% of the calls; at 50 rps there is one a second and recovery
//     takes several seconds instead of under one.
//   - Failures: codes Unavailable, DeadlineExceeded (except the local DEADLINE_CONSUMED),
//     ResourceExhausted and Internal count against the backend; Canceled (the caller gave up)
//     is not counted at all; every other answer, InvalidArgument and NotFound included, is
//     an accept, since the backend served it (WithFailureCodes, WithClassifier).
//   - Criticality scale: as above (WithCriticalityScale).
//   - Clock: clock.Real{} (WithClock).
//
// A local rejection is ErrOpen: Unavailable, reason BREAKER_OPEN, not retryable.
//
// Client belongs in the client chain inside the retry middleware (so every attempt asks
// the breaker and a rejection ends the retries) and inside any other local HA middleware
// (bulkhead, ...), so the errors it counts are the backend's, not local refusals.
//
// Every decision is counted in redline_ha_breaker_decisions_total{service, operation,
// decision, reason}: decision admit (reason closed or throttled), probe (probe) or reject
// (throttled).
package breaker

import (
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"

	"github.com/redline-dev/redline/ha/clock"
	"github.com/redline-dev/redline/kit/errs"
	"github.com/redline-dev/redline/kit/meta"
)

// Defaults.
const (
	DefaultK             = 2.0
	DefaultWindow        = time.Second
	DefaultBuckets       = 10
	DefaultMinRequests   = 20
	DefaultProbeInterval = 100 * time.Millisecond
)

// ReasonOpen is the reason of ErrOpen.
const ReasonOpen = "BREAKER_OPEN"

// ErrOpen is the error of a local rejection. It is not retryable: the retry middleware and
// upstream callers must not turn a throttled call into more calls.
var ErrOpen = errs.New(codes.Unavailable, ReasonOpen,
	"rejected locally by the client-side throttle: the backend is failing").NoRetry()

// Decision is what Allow decided.
type Decision uint8

// Decisions.
const (
	// Reject means do not send; the caller returns ErrOpen.
	Reject Decision = iota
	// Admit means send and Mark the outcome.
	Admit
	// Probe means send and Mark the outcome: it was admitted only to test the backend.
	Probe
)

// Allowed reports whether the request may be sent.
func (d Decision) Allowed() bool { return d != Reject }

// String returns the metric label of d.
func (d Decision) String() string {
	switch d {
	case Admit:
		return "admit"
	case Probe:
		return "probe"
	}
	return "reject"
}

// Outcome is how a call's result counts.
type Outcome uint8

// Outcomes.
const (
	// Success is an accept: the backend served the request.
	Success Outcome = iota
	// Failure counts as a request but not an accept.
	Failure
	// Ignore does not count: the result says nothing about the backend.
	Ignore
)

// Classifier maps a call's error (nil on success) to an Outcome.
type Classifier func(err error) Outcome

// FailureCodes returns the classifier that counts the given codes as failures, Canceled and
// the local DEADLINE_CONSUMED as Ignore, and everything else as Success.
func FailureCodes(cs ...codes.Code) Classifier {
	var set [32]bool
	for _, c := range cs {
		if int(c) < len(set) {
			set[c] = true
		}
	}
	return func(err error) Outcome {
		if err == nil {
			return Success
		}
		e := errs.From(err)
		switch {
		case e.Code == codes.Canceled, e.Reason == errs.ReasonDeadlineConsumed, e.Reason == ReasonOpen:
			return Ignore
		case int(e.Code) < len(set) && set[e.Code]:
			return Failure
		}
		return Success
	}
}

// DefaultClassifier counts Unavailable, DeadlineExceeded, ResourceExhausted and Internal as
// failures.
var DefaultClassifier = FailureCodes(codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted, codes.Internal)

type options struct {
	k           float64
	window      time.Duration
	buckets     int
	minRequests int
	probe       time.Duration
	classify    Classifier
	scale       map[meta.Criticality]float64
	clock       clock.Clock
	seed        uint64
	seeded      bool
}

// Option configures a Breaker or a Group.
type Option func(*options)

// WithK sets K, how many requests the client may send per accepted one before it throttles;
// default 2. Lower is more aggressive (1.1), higher more lenient.
func WithK(k float64) Option { return func(o *options) { o.k = k } }

// WithWindow sets the rolling window and its number of buckets; default 1 s in 10. The
// time to throttle 90% of calls after a backend dies is about 0.95 × window.
func WithWindow(window time.Duration, buckets int) Option {
	return func(o *options) { o.window, o.buckets = window, buckets }
}

// WithMinRequests sets the requests the window must hold before anything is rejected;
// default 20.
func WithMinRequests(n int) Option { return func(o *options) { o.minRequests = n } }

// WithProbeInterval sets how often a request is let through to test a throttled backend;
// default 100 ms. 0 disables probes (the plain SRE throttle, which recovers slowly).
func WithProbeInterval(d time.Duration) Option { return func(o *options) { o.probe = d } }

// WithClassifier sets which results count as failures; default DefaultClassifier.
func WithClassifier(c Classifier) Option { return func(o *options) { o.classify = c } }

// WithFailureCodes is WithClassifier(FailureCodes(cs...)).
func WithFailureCodes(cs ...codes.Code) Option {
	return func(o *options) { o.classify = FailureCodes(cs...) }
}

// WithCriticalityScale multiplies K by factor for requests of criticality c; defaults
// CRITICAL_PLUS 2, CRITICAL 1, SHEDDABLE_PLUS 0.75, SHEDDABLE 0.55.
func WithCriticalityScale(c meta.Criticality, factor float64) Option {
	return func(o *options) { o.scale[c] = factor }
}

// WithClock sets the clock the middleware reads; default clock.Real{}.
func WithClock(c clock.Clock) Option { return func(o *options) { o.clock = c } }

// WithSeed seeds the random source that rolls the rejections, for reproducible
// simulations; default a random seed per Breaker.
func WithSeed(seed uint64) Option { return func(o *options) { o.seed, o.seeded = seed, true } }

func newOptions(opts []Option) *options {
	o := &options{k: DefaultK, window: DefaultWindow, buckets: DefaultBuckets,
		minRequests: DefaultMinRequests, probe: DefaultProbeInterval, classify: DefaultClassifier,
		scale: map[meta.Criticality]float64{meta.CriticalPlus: 2, meta.Critical: 1,
			meta.SheddablePlus: 0.75, meta.Sheddable: 0.55},
		clock: clock.Real{}}
	for _, opt := range opts {
		opt(o)
	}
	o.buckets = max(o.buckets, 1)
	if o.window < time.Duration(o.buckets) {
		o.window = time.Duration(o.buckets)
	}
	return o
}

// Breaker is the adaptive throttle of one target. It is safe for concurrent use. Allow and
// Mark take the time explicitly, so simulations drive it on simulated time.
type Breaker struct {
	o     *options
	kByC  [4]float64 // K per criticality, indexed by criticality+2
	width time.Duration

	mu        sync.Mutex
	buckets   []bucket
	head      int
	headStart time.Time
	requests  int64
	accepts   int64
	ceiling   float64
	lastProbe time.Time
	rng       rand.PCG

	metrics *counters
}

type bucket struct{ requests, accepts int64 }

// New returns a Breaker. A Breaker made by New counts no metrics; those of a Group do.
func New(opts ...Option) *Breaker { return newBreaker(newOptions(opts), nil) }

func newBreaker(o *options, m *counters) *Breaker {
	b := &Breaker{o: o, width: o.window / time.Duration(o.buckets),
		buckets: make([]bucket, o.buckets), ceiling: 1, metrics: m}
	for c := meta.Sheddable; c <= meta.CriticalPlus; c++ {
		f, ok := o.scale[c]
		if !ok {
			f = 1
		}
		b.kByC[c+2] = o.k * f
	}
	seed := o.seed
	if !o.seeded {
		seed = rand.Uint64()
	}
	b.rng.Seed(seed, seed^0x5851f42d4c957f2d)
	return b
}

// Allow decides whether a request of criticality c may be sent at now. A rejection counts
// as a request; an admitted request counts when its outcome is Marked.
func (b *Breaker) Allow(now time.Time, c meta.Criticality) Decision {
	b.mu.Lock()
	b.advance(now)
	p := b.prob(b.kByC[critIndex(c)])
	if b.prob(b.o.k) <= 0 {
		b.ceiling = 1 // not throttling: the next episode starts from the plain formula
	}
	p = min(p, b.ceiling)
	d, throttled := Admit, p > 0
	switch {
	case !throttled:
	case b.o.probe > 0 && now.Sub(b.lastProbe) >= b.probeInterval():
		b.lastProbe = now
		d = Probe
	case float64(b.rng.Uint64()>>11)/(1<<53) < p:
		d = Reject
		b.buckets[b.head].requests++
		b.requests++
	}
	b.mu.Unlock()
	b.metrics.count(d, throttled)
	return d
}

// probeInterval is ProbeInterval, stretched so that probes are at most 1 in probeShare of
// the window's requests: a client sending 50 rps probes once a second, not ten times, and
// a thousand clients of an overloaded backend add at most 2% to what they offer it.
func (b *Breaker) probeInterval() time.Duration {
	if b.requests <= 0 {
		return b.o.probe
	}
	return max(b.o.probe, b.o.window*probeShare/time.Duration(b.requests))
}

// probeShare: at most one probe per this many requests of the window.
const probeShare = 50

// Mark records the outcome of a request that Allow admitted with d: ok is true for an
// accept (Outcome Success), false for a Failure. Results that Ignore are not Marked.
func (b *Breaker) Mark(now time.Time, d Decision, ok bool) {
	b.mu.Lock()
	b.advance(now)
	b.buckets[b.head].requests++
	b.requests++
	if ok {
		b.buckets[b.head].accepts++
		b.accepts++
	}
	switch {
	case d == Probe && ok:
		b.ceiling /= 2
	case d == Probe:
		b.ceiling = 1
	case !ok:
		b.ceiling = min(1, b.ceiling*2)
	}
	b.mu.Unlock()
}

// P returns the current probability that a CRITICAL request is rejected (not counting
// probes).
func (b *Breaker) P(now time.Time) float64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.advance(now)
	return min(b.prob(b.o.k), b.ceiling)
}

// Snapshot is the JSON-able state of a Breaker.
type Snapshot struct {
	Service   string  `json:"service,omitempty"`
	Operation string  `json:"operation,omitempty"`
	Requests  int64   `json:"requests"`
	Accepts   int64   `json:"accepts"`
	RejectP   float64 `json:"reject_p"`
	Ceiling   float64 `json:"ceiling"`
	K         float64 `json:"k"`
	Window    string  `json:"window"`
}

// State returns a Snapshot of b at the clock's now.
func (b *Breaker) State() any { return b.snapshot(b.o.clock.Now()) }

func (b *Breaker) snapshot(now time.Time) Snapshot {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.advance(now)
	s := Snapshot{Requests: b.requests, Accepts: b.accepts, RejectP: min(b.prob(b.o.k), b.ceiling),
		Ceiling: b.ceiling, K: b.o.k, Window: b.o.window.String()}
	if b.metrics != nil {
		s.Service, s.Operation = b.metrics.service, b.metrics.operation
	}
	return s
}

func critIndex(c meta.Criticality) int {
	return int(min(max(c, meta.Sheddable), meta.CriticalPlus) + 2)
}

// prob is the SRE formula over the window for a given K.
func (b *Breaker) prob(k float64) float64 {
	if b.requests < int64(b.o.minRequests) {
		return 0
	}
	r := float64(b.requests)
	return math.Max(0, (r-k*float64(b.accepts))/(r+1))
}

// advance rotates the ring so that its head bucket covers now. Instants before the head
// bucket (a caller that read the clock a little earlier) count in the head.
func (b *Breaker) advance(now time.Time) {
	if b.headStart.IsZero() {
		b.headStart = now
		return
	}
	steps := int64(now.Sub(b.headStart) / b.width)
	if steps <= 0 {
		return
	}
	if steps >= int64(len(b.buckets)) {
		clear(b.buckets)
		b.requests, b.accepts = 0, 0
		b.headStart = b.headStart.Add(time.Duration(steps) * b.width)
		return
	}
	for range steps {
		b.head = (b.head + 1) % len(b.buckets)
		old := &b.buckets[b.head]
		b.requests -= old.requests
		b.accepts -= old.accepts
		*old = bucket{}
	}
	b.headStart = b.headStart.Add(time.Duration(steps) * b.width)
}

// counters are the pre-resolved metric series of one Breaker, so counting allocates
// nothing.
type counters struct {
	service, operation                      string
	admitClosed, admitThrottled, probe, rej prometheus.Counter
}

func (m *counters) count(d Decision, throttled bool) {
	if m == nil {
		return
	}
	switch {
	case d == Reject:
		m.rej.Inc()
	case d == Probe:
		m.probe.Inc()
	case throttled:
		m.admitThrottled.Inc()
	default:
		m.admitClosed.Inc()
	}
}
