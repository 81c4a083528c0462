// Package retry provides client retries that cannot become a retry storm: exponential
// backoff with full jitter, at most three attempts, a per-client retry budget, chain stop,
// "overloaded, don't retry" and gRPC pushback honored, retries only for idempotent calls,
// and hedged (backup) requests after the operation's observed p95 latency.
//
// A Retrier is the policy of one client. Its decisions are plain methods on explicit time
// (Begin, OnFailure, HedgeDelay, TryHedge, Observe), so simulations drive it on simulated
// time; Client is the middleware that applies it with real goroutines.
//
// The rules, in the order a failed attempt meets them:
//   - Only eligible calls are retried or hedged: operations matched by WithIdempotent, HTTP
//     GET, HEAD and OPTIONS, and calls carrying an idempotency key (WithIdempotencyKey on
//     the ctx, or an Idempotency-Key header). A key from the ctx is also written to the
//     outbound header, so the server can deduplicate.
//   - A non-retryable error (errs.IsRetryable false: "overloaded, don't retry", the
//     breaker's local rejection, NotFound, ...) is never retried.
//   - Chain stop: a call made while serving a request that was itself a retry (meta
//     Attempt > 0 on the inbound request) is not retried, and a retryable error the
//     Retrier gives up on is returned marked not retryable, so the layer above does not
//     retry it again. Only the layer right above the failing one retries: three layers cost
//     about 1.1× the calls, not 3³ = 27×.
//   - At most MaxAttempts attempts per call, hedges included.
//   - gRPC pushback: an error carrying metadata grpc-retry-pushback-ms (PushbackKey) is
//     retried after exactly that delay, and never when the value is negative or does not
//     parse. The kit's errors carry metadata across the wire in their ErrorInfo; a server
//     sets it with (*errs.Error).WithMetadata(retry.PushbackKey, "250"). A transport that
//     reads the standard trailer instead copies it into the error's metadata.
//   - The budget: every call deposits Ratio tokens (at most Burst held) and Floor tokens
//     arrive each second; a retry or a hedge spends one. Retries therefore stay under
//     Ratio of calls plus Floor a second (plus at most Burst saved up).
//   - The delay (backoff or pushback) must end before the call's deadline.
//
// Hedging needs a transport whose concurrent attempts share nothing: see HeaderCloner.
//
// Hedging (WithHedging, for eligible operations only): when the first attempt has not
// answered after HedgeDelay, a second is sent, and so on up to MaxAttempts, each paid from
// the budget. The first success wins; the others are cancelled, and Client returns only
// after every attempt has returned, so no goroutine outlives the call. The delay is the
// operation's observed HedgeQuantile latency (a log-bucketed histogram per operation that
// halves its counts every 1,000 samples), never below HedgeMinDelay; until 20 samples are
// seen no hedge is sent. An attempt cancelled because another won is recorded at the
// hedge delay, a lower bound, so the estimate is not pulled down by the requests hedging
// rescued, nor ratcheted up.
//
// Defaults, each changeable by an Option:
//   - MaxAttempts: 3 (WithMaxAttempts), the SRE book's limit.
//   - Backoff: full jitter, uniform in [0, min(250 ms, 25 ms × 2^n)] before retry n+1
//     (WithBackoff); Envoy's base and 10× cap, sized for 100 ms internal deadlines.
//   - Budget: Ratio 0.1, Floor 3 a second, Burst 10 (WithBudget).
//   - Chain stop: on (WithChainStop).
//   - Idempotent operations: none beyond HTTP GET/HEAD/OPTIONS and keyed calls
//     (WithIdempotent).
//   - Hedging: off (WithHedging); HedgeQuantile 0.95 (WithHedgeQuantile), HedgeMinDelay
//     5 ms (WithHedgeMinDelay), or a fixed delay (WithHedgeDelay).
//   - Clock: clock.Real{} (WithClock); sleep: a timer that stops early when the ctx ends
//     (WithSleep).
//
// Every retry, hedge and refusal is counted in redline_ha_retry_decisions_total{service,
// operation, decision, reason}: decision retry (reason: the error's code, or pushback),
// hedge (reason delay), or refuse (reason not_idempotent, not_retryable, chain_stop,
// max_attempts, budget, pushback, deadline, canceled, hedge_budget, hedge_unsafe).
package retry

import (
	"context"
	"math"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
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
	DefaultMaxAttempts   = 3
	DefaultBackoffBase   = 25 * time.Millisecond
	DefaultBackoffMax    = 250 * time.Millisecond
	DefaultBudgetRatio   = 0.1
	DefaultBudgetFloor   = 3.0
	DefaultBudgetBurst   = 10
	DefaultHedgeQuantile = 0.95
	DefaultHedgeMinDelay = 5 * time.Millisecond
)

// PushbackKey is the error metadata key (and gRPC trailer) of server pushback, in
// milliseconds; negative means do not retry.
const PushbackKey = "grpc-retry-pushback-ms"

// Refusal reasons.
const (
	ReasonNotIdempotent = "not_idempotent"
	ReasonNotRetryable  = "not_retryable"
	ReasonChainStop     = "chain_stop"
	ReasonMaxAttempts   = "max_attempts"
	ReasonBudget        = "budget"
	ReasonPushback      = "pushback"
	ReasonDeadline      = "deadline"
	ReasonCanceled      = "canceled"
	ReasonHedgeBudget   = "hedge_budget"
	ReasonHedgeUnsafe   = "hedge_unsafe"
)

type options struct {
	maxAttempts  int
	base, cap    time.Duration
	ratio, floor float64
	burst        float64
	chainStop    bool
	idempotent   middleware.Matcher
	hedge        middleware.Matcher
	quantile     float64
	minDelay     time.Duration
	fixedDelay   time.Duration
	clock        clock.Clock
	sleep        func(ctx context.Context, d time.Duration) error
	seed         uint64
	seeded       bool
}

// Option configures a Retrier.
type Option func(*options)

// WithMaxAttempts sets the most attempts per call, the first and hedges included; default 3.
func WithMaxAttempts(n int) Option { return func(o *options) { o.maxAttempts = n } }

// WithBackoff sets the full-jitter backoff: retry n+1 waits uniformly in
// [0, min(max, base × 2^n)]; default 25 ms and 250 ms.
func WithBackoff(base, max time.Duration) Option {
	return func(o *options) { o.base, o.cap = base, max }
}

// WithBudget sets the retry budget: each call deposits ratio tokens, floorPerSecond tokens
// arrive each second, at most burst are held, and each retry or hedge spends one; default
// 0.1, 3 and 10. A negative ratio disables the budget (for experiments only).
func WithBudget(ratio, floorPerSecond float64, burst int) Option {
	return func(o *options) { o.ratio, o.floor, o.burst = ratio, floorPerSecond, float64(burst) }
}

// WithChainStop turns chain stop on or off; default on. Off, a call serving a retried
// request retries too, and given-up errors go upstream still retryable: the storm the
// control experiment shows.
func WithChainStop(on bool) Option { return func(o *options) { o.chainStop = on } }

// WithIdempotent declares the operations that are safe to retry and hedge, in addition to
// HTTP GET, HEAD and OPTIONS and calls with an idempotency key; default none.
func WithIdempotent(m middleware.Matcher) Option { return func(o *options) { o.idempotent = m } }

// WithHedging enables hedged requests for the matched operations (which must also be
// eligible for retries); default none.
func WithHedging(m middleware.Matcher) Option { return func(o *options) { o.hedge = m } }

// WithHedgeQuantile sets the latency quantile after which a hedge is sent; default 0.95.
func WithHedgeQuantile(q float64) Option { return func(o *options) { o.quantile = q } }

// WithHedgeMinDelay sets the least hedge delay; default 5 ms.
func WithHedgeMinDelay(d time.Duration) Option { return func(o *options) { o.minDelay = d } }

// WithHedgeDelay sets a fixed hedge delay instead of the observed quantile; default 0 (use
// the quantile).
func WithHedgeDelay(d time.Duration) Option { return func(o *options) { o.fixedDelay = d } }

// WithClock sets the clock of the budget, the latency samples and the deadline checks;
// default clock.Real{}. The ctx deadline is compared with it, so anything but a simulation
// must use the real clock.
func WithClock(c clock.Clock) Option { return func(o *options) { o.clock = c } }

// WithSleep sets how Client waits for a backoff or a hedge delay: it returns nil after d,
// or the ctx's error when the ctx ends first. Default: a timer. Tests inject one that does
// not sleep.
func WithSleep(sleep func(ctx context.Context, d time.Duration) error) Option {
	return func(o *options) { o.sleep = sleep }
}

// WithSeed seeds the backoff jitter, for reproducible simulations; default random.
func WithSeed(seed uint64) Option { return func(o *options) { o.seed, o.seeded = seed, true } }

// Retrier is the retry policy and state of one client: budget, jitter and per-operation
// latency. It is safe for concurrent use.
type Retrier struct {
	o *options

	mu     sync.Mutex
	tokens float64
	last   time.Time
	rng    rand.PCG

	calls   atomic.Int64
	lat     latencies
	statsMu sync.Mutex
	stats   map[statKey]*stat
}

type statKey struct{ service, op, decision, reason string }

// stat is one decision series: its count here and its resolved Prometheus counter, so
// counting neither allocates nor hashes labels.
type stat struct {
	n int64
	c prometheus.Counter
}

// New returns a Retrier.
func New(opts ...Option) *Retrier {
	o := &options{maxAttempts: DefaultMaxAttempts, base: DefaultBackoffBase, cap: DefaultBackoffMax,
		ratio: DefaultBudgetRatio, floor: DefaultBudgetFloor, burst: DefaultBudgetBurst,
		chainStop: true, quantile: DefaultHedgeQuantile, minDelay: DefaultHedgeMinDelay,
		clock: clock.Real{}, sleep: clock.Sleep}
	for _, opt := range opts {
		opt(o)
	}
	o.maxAttempts = max(o.maxAttempts, 1)
	r := &Retrier{o: o, tokens: o.burst, stats: map[statKey]*stat{}}
	seed := o.seed
	if !o.seeded {
		seed = rand.Uint64()
	}
	r.rng.Seed(seed, seed^0x2545f4914f6cdd1d)
	return r
}

// Begin counts a new call: it deposits its share into the budget. (The floor's tokens are
// added when a token is spent; both are capped at Burst.)
func (r *Retrier) Begin() {
	r.calls.Add(1)
	if r.o.ratio <= 0 {
		return
	}
	r.mu.Lock()
	r.tokens = min(r.o.burst, r.tokens+r.o.ratio)
	r.mu.Unlock()
}

// Failure describes a failed attempt to OnFailure.
type Failure struct {
	Service, Operation string
	// Attempt is the attempt that failed: 0 for the first.
	Attempt int
	// Inbound is the attempt number of the request this call serves (its meta Attempt).
	Inbound int
	// Deadline is the call's deadline; zero for none.
	Deadline time.Time
	Err      error
}

// Decision is what OnFailure decided.
type Decision struct {
	// Retry says to try again after Delay.
	Retry bool
	Delay time.Duration
	// Reason is the metric reason of the decision.
	Reason string
	// Err is what to return when not retrying: the attempt's error, marked not retryable
	// when chain stop is on and the Retrier gave up on a retryable error.
	Err error
}

// OnFailure decides, at now, whether an eligible call tries again after f. It spends a
// budget token when it says yes, and counts the decision.
func (r *Retrier) OnFailure(now time.Time, f Failure) Decision {
	d := r.decide(now, f)
	if d.Retry {
		r.count(f.Service, f.Operation, "retry", d.Reason)
		return d
	}
	r.count(f.Service, f.Operation, "refuse", d.Reason)
	d.Err = r.giveUp(f.Err, d.Reason)
	return d
}

func (r *Retrier) decide(now time.Time, f Failure) Decision {
	e := errs.From(f.Err)
	if !e.Retryable {
		return Decision{Reason: ReasonNotRetryable}
	}
	if r.o.chainStop && f.Inbound > 0 {
		return Decision{Reason: ReasonChainStop}
	}
	if f.Attempt+1 >= r.o.maxAttempts {
		return Decision{Reason: ReasonMaxAttempts}
	}
	reason := codeReason(e.Code)
	var delay time.Duration
	if v, ok := e.Metadata[PushbackKey]; ok {
		ms, err := strconv.ParseInt(v, 10, 64)
		if err != nil || ms < 0 {
			return Decision{Reason: ReasonPushback}
		}
		delay, reason = time.Duration(ms)*time.Millisecond, ReasonPushback
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if reason != ReasonPushback {
		delay = r.backoff(f.Attempt)
	}
	if !f.Deadline.IsZero() && !now.Add(delay).Before(f.Deadline) {
		return Decision{Reason: ReasonDeadline}
	}
	if !r.spend(now) {
		return Decision{Reason: ReasonBudget}
	}
	return Decision{Retry: true, Delay: delay, Reason: reason}
}

// giveUp marks a retryable error the Retrier will not retry as not retryable, so the layer
// above does not retry it either.
func (r *Retrier) giveUp(err error, reason string) error {
	if !r.o.chainStop || reason == ReasonNotRetryable {
		return err
	}
	return errs.From(err).NoRetry()
}

// HedgeDelay returns how long to wait for an attempt of op before hedging it; ok is false
// when hedging is off for op or its latency is not known yet.
func (r *Retrier) HedgeDelay(op string) (d time.Duration, ok bool) {
	if r.o.hedge == nil || !r.o.hedge(op) {
		return 0, false
	}
	if r.o.fixedDelay > 0 {
		return r.o.fixedDelay, true
	}
	q, ok := r.lat.quantile(op, r.o.quantile)
	return max(q, r.o.minDelay), ok
}

// TryHedge decides at now whether to send attempt number attempt (≥ 1) of op as a hedge:
// within MaxAttempts and paid from the budget. It counts the decision.
func (r *Retrier) TryHedge(now time.Time, service, op string, attempt int) bool {
	if attempt >= r.o.maxAttempts {
		return false // no hedge timer is armed past the limit; nothing to count
	}
	r.mu.Lock()
	ok := r.spend(now)
	r.mu.Unlock()
	if !ok {
		r.count(service, op, "refuse", ReasonHedgeBudget)
		return false
	}
	r.count(service, op, "hedge", "delay")
	return true
}

// Observe records how long an attempt of op took, for its hedge delay. Only operations
// with hedging enabled are tracked.
func (r *Retrier) Observe(op string, d time.Duration) {
	if r.tracks(op) {
		r.lat.observe(op, d)
	}
}

// tracks reports whether op's latency feeds its hedge delay.
func (r *Retrier) tracks(op string) bool {
	return r.o.hedge != nil && r.o.fixedDelay == 0 && r.o.hedge(op)
}

// Snapshot is the JSON-able state of a Retrier.
type Snapshot struct {
	Calls        int64             `json:"calls"`
	BudgetTokens float64           `json:"budget_tokens"`
	Decisions    map[string]int64  `json:"decisions"`
	HedgeDelays  map[string]string `json:"hedge_delays,omitempty"`
}

// State returns a Snapshot of r.
func (r *Retrier) State() any {
	s := Snapshot{Calls: r.calls.Load(), Decisions: map[string]int64{}}
	r.mu.Lock()
	r.refill(r.o.clock.Now())
	s.BudgetTokens = r.tokens
	r.mu.Unlock()
	r.statsMu.Lock()
	for k, st := range r.stats {
		s.Decisions[k.decision+"/"+k.reason] += st.n
	}
	r.statsMu.Unlock()
	for _, op := range r.lat.ops() {
		if d, ok := r.HedgeDelay(op); ok {
			if s.HedgeDelays == nil {
				s.HedgeDelays = map[string]string{}
			}
			s.HedgeDelays[op] = d.String()
		}
	}
	return s
}

// Stats returns how many decisions of the kind (retry, hedge, refuse) and reason were made,
// over all services and operations; reason "" sums all reasons.
func (r *Retrier) Stats(decision, reason string) int64 {
	r.statsMu.Lock()
	defer r.statsMu.Unlock()
	var n int64
	for k, st := range r.stats {
		if k.decision == decision && (reason == "" || k.reason == reason) {
			n += st.n
		}
	}
	return n
}

func (r *Retrier) count(service, op, decision, reason string) {
	k := statKey{service, op, decision, reason}
	r.statsMu.Lock()
	st, ok := r.stats[k]
	if !ok {
		st = &stat{c: decisions.WithLabelValues(service, op, decision, reason)}
		r.stats[k] = st
	}
	st.n++
	r.statsMu.Unlock()
	st.c.Inc()
}

// refill adds the floor's tokens since the last refill. r.mu is held.
func (r *Retrier) refill(now time.Time) {
	if !r.last.IsZero() && now.After(r.last) {
		r.tokens = min(r.o.burst, r.tokens+r.o.floor*now.Sub(r.last).Seconds())
	}
	if now.After(r.last) {
		r.last = now
	}
}

// spend takes one token. r.mu is held.
func (r *Retrier) spend(now time.Time) bool {
	if r.o.ratio < 0 {
		return true
	}
	r.refill(now)
	if r.tokens < 1 {
		return false
	}
	r.tokens--
	return true
}

// backoff is the full-jitter delay before retry attempt+1. r.mu is held.
func (r *Retrier) backoff(attempt int) time.Duration {
	ceil := r.o.cap
	if attempt < 30 {
		ceil = min(ceil, r.o.base<<attempt)
	}
	if ceil <= 0 {
		return 0
	}
	return time.Duration(float64(r.rng.Uint64()>>11) / (1 << 53) * float64(ceil))
}

var codeReasons = func() (out [17]string) {
	for c := codes.OK; c <= codes.Unauthenticated; c++ {
		out[c] = c.String()
	}
	return out
}()

func codeReason(c codes.Code) string {
	if int(c) < len(codeReasons) {
		return codeReasons[c]
	}
	return c.String()
}

var decisions = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "redline_ha_retry_decisions_total",
	Help: "Retry decisions, by target service, operation, decision (retry, hedge, refuse) and reason.",
}, []string{"service", "operation", "decision", "reason"})

func init() { metric.Registry.MustRegister(decisions) }

// latencies holds a log-bucketed latency histogram per operation.
type latencies struct {
	mu   sync.RWMutex
	byOp map[string]*histogram
}

func (l *latencies) get(op string) *histogram {
	l.mu.RLock()
	h := l.byOp[op]
	l.mu.RUnlock()
	if h != nil {
		return h
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.byOp == nil {
		l.byOp = map[string]*histogram{}
	}
	if h = l.byOp[op]; h == nil {
		h = &histogram{}
		l.byOp[op] = h
	}
	return h
}

func (l *latencies) observe(op string, d time.Duration) { l.get(op).observe(d) }

func (l *latencies) quantile(op string, q float64) (time.Duration, bool) {
	l.mu.RLock()
	h := l.byOp[op]
	l.mu.RUnlock()
	if h == nil {
		return 0, false
	}
	return h.quantile(q)
}

func (l *latencies) ops() []string {
	l.mu.RLock()
	defer l.mu.RUnlock()
	out := make([]string, 0, len(l.byOp))
	for op := range l.byOp {
		out = append(out, op)
	}
	return out
}

// Histogram geometry: bucket i holds latencies up to histMin × 2^((i+1)/8), about 9% wide,
// from 50 µs to 52 s.
const (
	histMin     = 50 * time.Microsecond
	histPerOct  = 8
	histBuckets = 20 * histPerOct
	histDecayAt = 1000 // samples; then every count is halved
	histWarm    = 20   // samples before a quantile is trusted
)

type histogram struct {
	mu     sync.Mutex
	counts [histBuckets]uint32
	total  uint32
	seen   uint32 // samples ever, saturating: warm-up
}

func (h *histogram) observe(d time.Duration) {
	i := 0
	if d > histMin {
		i = min(int(histPerOct*math.Log2(float64(d)/float64(histMin))), histBuckets-1)
	}
	h.mu.Lock()
	h.counts[i]++
	h.total++
	if h.seen < histWarm {
		h.seen++
	}
	if h.total >= histDecayAt {
		h.total = 0
		for j := range h.counts {
			h.counts[j] /= 2
			h.total += h.counts[j]
		}
	}
	h.mu.Unlock()
}

func (h *histogram) quantile(q float64) (time.Duration, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.seen < histWarm || h.total == 0 {
		return 0, false
	}
	want := uint32(math.Ceil(q * float64(h.total)))
	var cum uint32
	for i, c := range h.counts {
		cum += c
		if cum >= want {
			return time.Duration(float64(histMin) * math.Exp2(float64(i+1)/histPerOct)), true
		}
	}
	return time.Duration(float64(histMin) * math.Exp2(float64(histBuckets)/histPerOct)), true
}
