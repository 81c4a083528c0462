// Package shed provides BBR-style adaptive load shedding for servers: a Shedder that
// rejects requests with "overloaded, don't retry" when the CPU of the process's cgroup is
// hot and more requests are in flight than the server has lately been able to complete,
// and its server middleware.
//
// The estimate is Little's law over a rolling window: limit = maxPass × minRT / bucket,
// where maxPass is the most requests finished in one bucket and minRT the least mean
// response time of a bucket. Shedding happens when
//
//	(CPU ≥ threshold(criticality) OR a request was shed within the cool-down)
//	AND inflight ≥ limit
//
// Beyond kratos' BBR and go-zero's shedder:
//   - CPU is read against the cgroup v2 quota (cpu.max, cpu.stat usage_usec), else the
//     cgroup v1 quota (cpu.cfs_quota_us / cpu.cfs_period_us, cpuacct.usage), else the host
//     (/proc/stat), and State names the source. It is sampled every 250 ms into an EMA that
//     weighs the new sample 0.5, so it crosses the threshold within about 500 ms of a load
//     step, where kratos' 0.95/0.05 EMA every 500 ms takes seconds.
//   - The estimate probes, like BBR's gain cycle: one bucket in eight allows about 10% more
//     (to find throughput the limit hides), the next about 10% less (to let the queue drain
//     so minRT is measured without queueing). A plain maxPass × minRT estimate measures its
//     own limit and stays wherever it started, too low after a quiet period or too high
//     after a queue built up.
//   - Limit exposes the concurrency the server should run at, for an admission queue in
//     front (ha/codel): under pressure the estimate; otherwise twice the estimate and at
//     least 16, so load can grow quickly but cannot pile up inside the process while the
//     CPU EMA catches up.
//   - Criticality: SHEDDABLE is shed from CPU ≥ threshold−0.10, SHEDDABLE_PLUS from
//     threshold−0.05, CRITICAL from the threshold, CRITICAL_PLUS only from threshold +
//     (1−threshold)/2 and never by the cool-down alone.
//
// Defaults: threshold 0.8 (of the cgroup quota), window 5 s in 50 buckets of 100 ms,
// cool-down 1 s, CPU sampled every 250 ms with EMA weight 0.5, unpressured headroom 2×,
// minimum unpressured limit 16, real clock. Decisions are counted in
// redline_ha_shed_decisions_total{service,decision,reason}.
package shed

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redline-dev/redline/ha/clock"
	"github.com/redline-dev/redline/kit/errs"
	"github.com/redline-dev/redline/kit/meta"
	"github.com/redline-dev/redline/kit/middleware"
)

// ErrOverloaded is returned for a shed request: ResourceExhausted, reason OVERLOADED, not
// retryable.
var ErrOverloaded = errs.Overloaded(errs.ReasonOverloaded, "server overloaded: request shed")

// Option configures a Shedder.
type Option func(*options)

type options struct {
	clock       clock.Clock
	cpu         func() float64
	cpuInterval time.Duration
	cpuAlpha    float64
	threshold   float64
	window      time.Duration
	buckets     int
	coolDown    time.Duration
	headroom    float64
	minLimit    int
	service     string
	paths       paths
}

// WithClock sets the clock of the window and the cool-down. Default clock.Real{}.
func WithClock(c clock.Clock) Option { return func(o *options) { o.clock = c } }

// WithCPU replaces the cgroup/host sampler with f, which returns the CPU usage in 0..1;
// Simulations feed their own CPU this way. Default: the cgroup/host sampler.
func WithCPU(f func() float64) Option { return func(o *options) { o.cpu = f } }

// WithCPUSampling sets how often the sampler reads the CPU and the EMA weight of a new
// sample (0 < alpha ≤ 1). Default every 250 ms, alpha 0.5.
func WithCPUSampling(every time.Duration, alpha float64) Option {
	return func(o *options) { o.cpuInterval, o.cpuAlpha = every, alpha }
}

// WithThreshold sets the CPU usage (0..1 of the quota) from which CRITICAL requests are
// shed; the other levels are offset from it (see the package doc). Default 0.8.
func WithThreshold(t float64) Option { return func(o *options) { o.threshold = t } }

// WithWindow sets the rolling window and its number of buckets. Default 5 s in 50.
func WithWindow(d time.Duration, buckets int) Option {
	return func(o *options) { o.window, o.buckets = d, buckets }
}

// WithCoolDown sets how long after a shed request the shedder keeps shedding over the limit
// even if the CPU has dropped, so it does not flap. Default 1 s.
func WithCoolDown(d time.Duration) Option { return func(o *options) { o.coolDown = d } }

// WithHeadroom sets how far above the estimate Limit lets concurrency grow while the CPU is
// not under pressure, and the least Limit it then returns. Default 2× and 16.
func WithHeadroom(factor float64, minLimit int) Option {
	return func(o *options) { o.headroom, o.minLimit = factor, minLimit }
}

// WithService sets the service label of the metrics. Default "".
func WithService(name string) Option { return func(o *options) { o.service = name } }

// withPaths points the CPU sampler at other roots (tests).
func withPaths(p paths) Option { return func(o *options) { o.paths = p } }

// Token is what Allow hands out for an admitted request; give it back to Done.
type Token struct{ start time.Time }

// Shedder decides whether a server takes a request. It is safe for concurrent use.
type Shedder struct {
	o       options
	cpu     func() float64
	source  string
	sampler *sampler
	width   time.Duration

	inflight atomic.Int64
	lastDrop atomic.Int64 // clock UnixNano of the last shed request; 0 if none

	mu  sync.Mutex
	win window

	admitted, rejected atomic.Uint64
	m                  counters
}

// New returns a Shedder. Without WithCPU it detects the CPU source and starts sampling it;
// the error says why no source works.
func New(opts ...Option) (*Shedder, error) {
	o := options{
		clock:       clock.Real{},
		cpuInterval: 250 * time.Millisecond,
		cpuAlpha:    0.5,
		threshold:   0.8,
		window:      5 * time.Second,
		buckets:     50,
		coolDown:    time.Second,
		headroom:    2,
		minLimit:    16,
		paths:       paths{cgroup: "/sys/fs/cgroup", proc: "/proc", ncpu: runtime.NumCPU()},
	}
	for _, opt := range opts {
		opt(&o)
	}
	switch {
	case o.buckets < 1 || o.window < time.Duration(o.buckets):
		return nil, fmt.Errorf("shed: window %v in %d buckets: want at least one bucket of 1ns", o.window, o.buckets)
	case o.threshold <= 0 || o.threshold > 1:
		return nil, fmt.Errorf("shed: threshold %v: want 0 < t ≤ 1", o.threshold)
	case o.cpuAlpha <= 0 || o.cpuAlpha > 1 || o.cpuInterval <= 0:
		return nil, fmt.Errorf("shed: CPU sampling every %v with alpha %v: want a positive interval and 0 < alpha ≤ 1", o.cpuInterval, o.cpuAlpha)
	case o.headroom < 1 || o.minLimit < 1:
		return nil, fmt.Errorf("shed: headroom %v, min limit %d: want ≥ 1 and ≥ 1", o.headroom, o.minLimit)
	}
	s := &Shedder{o: o, cpu: o.cpu, source: SourceInjected, width: o.window / time.Duration(o.buckets)}
	s.win = newWindow(o.buckets, s.width)
	s.m = newCounters(o.service)
	if s.cpu == nil {
		r, err := detectCPU(o.paths)
		if err != nil {
			return nil, err
		}
		s.sampler = newSampler(r, o.cpuAlpha, o.cpuInterval)
		s.source = r.source()
		s.cpu = s.sampler.read
	}
	return s, nil
}

// Close releases the Shedder. The CPU is sampled on read, so there is nothing to stop
// today; Close stays so owners need not change if that does.
func (s *Shedder) Close() error { return nil }

// threshold is the CPU usage from which requests of level c are shed.
func (s *Shedder) threshold(c meta.Criticality) float64 {
	t := s.o.threshold
	switch {
	case c >= meta.CriticalPlus:
		return t + (1-t)/2
	case c == meta.SheddablePlus:
		return t - 0.05
	case c <= meta.Sheddable:
		return t - 0.10
	}
	return t
}

// pressure reports whether requests of level c are under shedding at now, and why.
func (s *Shedder) pressure(now time.Time, cpu float64, c meta.Criticality) (bool, string) {
	if cpu >= s.threshold(c) {
		return true, reasonCPU
	}
	if c < meta.CriticalPlus {
		if last := s.lastDrop.Load(); last != 0 && now.UnixNano()-last < int64(s.o.coolDown) {
			return true, reasonCoolDown
		}
	}
	return false, ""
}

// limitLocked returns the concurrency limit at now; ok is false while the window has no
// finished bucket to estimate from.
func (s *Shedder) limitLocked(now time.Time, pressured bool) (limit int, est float64, ok bool) {
	maxPass, minRT, ok := s.win.stats(now)
	if !ok {
		return 0, 0, false
	}
	est = float64(maxPass) * float64(minRT) / float64(s.width)
	if !pressured {
		return max(s.o.minLimit, int(math.Ceil(est*s.o.headroom))), est, true
	}
	limit = max(1, int(math.Ceil(est)))
	delta := max(1, int(math.Round(est*probeGain)))
	switch s.win.id(now) % probeCycle {
	case 0:
		limit += delta
	case 1:
		limit = max(1, limit-delta)
	}
	return limit, est, true
}

// The probing gain cycle: in probeCycle buckets, one probes up and the next drains.
const (
	probeCycle = 8
	probeGain  = 0.1
)

// Allow admits or sheds one request of criticality c. An admitted request must be given
// back with Done. A shed one gets ErrOverloaded.
func (s *Shedder) Allow(c meta.Criticality) (Token, error) {
	now := s.o.clock.Now()
	cpu := s.cpu()
	pressured, why := s.pressure(now, cpu, c)
	if pressured {
		s.mu.Lock()
		limit, _, ok := s.limitLocked(now, true)
		s.mu.Unlock()
		if in := s.inflight.Load(); ok && in >= int64(limit) {
			s.lastDrop.Store(now.UnixNano())
			s.rejected.Add(1)
			s.m.reject(why)
			return Token{}, ErrOverloaded
		}
	}
	s.inflight.Add(1)
	s.admitted.Add(1)
	s.m.admit(pressured)
	return Token{start: now}, nil
}

// Done records that an admitted request finished.
func (s *Shedder) Done(t Token) {
	now := s.o.clock.Now()
	s.inflight.Add(-1)
	s.mu.Lock()
	s.win.add(now, now.Sub(t.start))
	s.mu.Unlock()
}

// Limit is the concurrency the server should run at now, for an admission queue in front
// of the shedder: the estimate (with its probing) while CRITICAL requests are under
// pressure, else the estimate times the headroom and at least the minimum. It is
// math.MaxInt32 while there is nothing to estimate from.
func (s *Shedder) Limit() int {
	now := s.o.clock.Now()
	pressured, _ := s.pressure(now, s.cpu(), meta.Critical)
	s.mu.Lock()
	limit, _, ok := s.limitLocked(now, pressured)
	s.mu.Unlock()
	if !ok {
		return math.MaxInt32
	}
	return limit
}

// CPU returns the CPU usage the shedder sees now, in 0..1 of the quota; servers report it
// to clients for P2C balancing.
func (s *Shedder) CPU() float64 { return s.cpu() }

// Inflight is the number of admitted requests not yet done.
func (s *Shedder) Inflight() int { return int(s.inflight.Load()) }

type state struct {
	CPU          float64 `json:"cpu"`
	CPUSource    string  `json:"cpu_source"`
	CPUError     string  `json:"cpu_error,omitempty"`
	Threshold    float64 `json:"threshold"`
	Pressure     bool    `json:"pressure"`
	CoolingDown  bool    `json:"cooling_down"`
	Inflight     int64   `json:"inflight"`
	Limit        int     `json:"limit"`
	Estimate     float64 `json:"estimate"`
	MaxPass      int64   `json:"max_pass"`
	MinRTMillis  float64 `json:"min_rt_ms"`
	BucketMillis float64 `json:"bucket_ms"`
	Admitted     uint64  `json:"admitted"`
	Rejected     uint64  `json:"rejected"`
}

// State returns a JSON-able snapshot for the admin page.
func (s *Shedder) State() any {
	now := s.o.clock.Now()
	cpu := s.cpu()
	pressured, why := s.pressure(now, cpu, meta.Critical)
	s.mu.Lock()
	limit, est, ok := s.limitLocked(now, pressured)
	maxPass, minRT, _ := s.win.stats(now)
	s.mu.Unlock()
	if !ok {
		limit = -1 // nothing to estimate from yet: no limit
	}
	st := state{
		CPU: cpu, CPUSource: s.source, Threshold: s.o.threshold,
		Pressure: pressured, CoolingDown: why == reasonCoolDown,
		Inflight: s.inflight.Load(), Limit: limit, Estimate: est,
		MaxPass: maxPass, MinRTMillis: float64(minRT) / 1e6, BucketMillis: float64(s.width) / 1e6,
		Admitted: s.admitted.Load(), Rejected: s.rejected.Load(),
	}
	if s.sampler != nil {
		if err := s.sampler.err(); err != nil {
			st.CPUError = err.Error()
		}
	}
	return st
}

// Server sheds requests on a server by the criticality in their metadata. It belongs in
// the server chain after the metadata and deadline middleware and after codel.Server, if
// any: rejections there cost nothing but the answer.
func Server(s *Shedder) middleware.Middleware {
	return func(next middleware.Handler) middleware.Handler {
		return func(ctx context.Context, req any) (any, error) {
			t, err := s.Allow(meta.FromContext(ctx).Criticality)
			if err != nil {
				return nil, err
			}
			defer s.Done(t)
			return next(ctx, req)
		}
	}
}
