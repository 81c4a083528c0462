// Package sim is a deterministic discrete-event simulator for the ha packages: a fake
// clock, an event queue, seeded randomness, service-time distributions with long tails,
// and latency records. Many clients and many servers run in `go test` in milliseconds,
// without sleeping, and the same seed gives the same run.
//
// A simulation schedules closures at instants; Run pops them in time order (ties in
// scheduling order) and moves the clock to each. HA components take the Sim as their
// clock.Clock, so what they measure is simulated time.
package sim

import (
	"container/heap"
	"math"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/redline-dev/redline/ha/clock"
)

// Sim is one simulation. It is not safe for concurrent use: everything runs on the goroutine
// that calls Run.
type Sim struct {
	now    time.Time
	seq    uint64
	events eventHeap
	rng    *rand.Rand
}

var _ clock.Clock = (*Sim)(nil)

// Start is the instant every simulation starts at.
var Start = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// New returns a simulation at Start with randomness seeded by seed.
func New(seed uint64) *Sim {
	return &Sim{now: Start, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// Now implements clock.Clock.
func (s *Sim) Now() time.Time { return s.now }

// Elapsed is the simulated time since Start.
func (s *Sim) Elapsed() time.Duration { return s.now.Sub(Start) }

// Rand is the simulation's random source.
func (s *Sim) Rand() *rand.Rand { return s.rng }

// At schedules f at t (now if t is in the past).
func (s *Sim) At(t time.Time, f func()) {
	if t.Before(s.now) {
		t = s.now
	}
	s.seq++
	heap.Push(&s.events, event{at: t, seq: s.seq, f: f})
}

// After schedules f after d.
func (s *Sim) After(d time.Duration, f func()) { s.At(s.now.Add(d), f) }

// Every schedules f every d from now until the simulation passes until.
func (s *Sim) Every(d time.Duration, until time.Time, f func()) {
	var tick func()
	tick = func() {
		f()
		if next := s.now.Add(d); !next.After(until) {
			s.At(next, tick)
		}
	}
	s.After(d, tick)
}

// Run processes events in time order until none are left or the next one is after until;
// the clock ends at until. It returns the number of events processed. maxEvents bounds a
// runaway simulation: Run panics past it, since a test that schedules forever is a bug.
func (s *Sim) Run(until time.Time, maxEvents int) int {
	n := 0
	for s.events.Len() > 0 && !s.events[0].at.After(until) {
		e := heap.Pop(&s.events).(event)
		s.now = e.at
		e.f()
		n++
		if n > maxEvents {
			panic("sim: more than maxEvents events; a schedule loops")
		}
	}
	if until.After(s.now) {
		s.now = until
	}
	return n
}

// RunFor is Run until now+d.
func (s *Sim) RunFor(d time.Duration, maxEvents int) int { return s.Run(s.now.Add(d), maxEvents) }

type event struct {
	at  time.Time
	seq uint64
	f   func()
}

type eventHeap []event

func (h eventHeap) Len() int { return len(h) }
func (h eventHeap) Less(i, j int) bool {
	if !h[i].at.Equal(h[j].at) {
		return h[i].at.Before(h[j].at)
	}
	return h[i].seq < h[j].seq
}
func (h eventHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *eventHeap) Push(x any)   { *h = append(*h, x.(event)) }
func (h *eventHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = event{}
	*h = old[:len(old)-1]
	return e
}

// Dist is a distribution of durations.
type Dist interface {
	Sample(r *rand.Rand) time.Duration
}

// Const always returns D.
type Const struct{ D time.Duration }

// Sample implements Dist.
func (c Const) Sample(*rand.Rand) time.Duration { return c.D }

// Exp is exponential with mean Mean: the inter-arrival time of a Poisson process.
type Exp struct{ Mean time.Duration }

// Sample implements Dist.
func (e Exp) Sample(r *rand.Rand) time.Duration {
	return time.Duration(r.ExpFloat64() * float64(e.Mean))
}

// LogNormal has median Median and shape Sigma (0.5 is moderate, 1 is a long tail).
type LogNormal struct {
	Median time.Duration
	Sigma  float64
}

// Sample implements Dist.
func (l LogNormal) Sample(r *rand.Rand) time.Duration {
	return time.Duration(float64(l.Median) * math.Exp(l.Sigma*r.NormFloat64()))
}

// Tail is Base, except that with probability P a sample is multiplied by Factor: the slow
// request that hedging exists for.
type Tail struct {
	Base   Dist
	P      float64
	Factor float64
}

// Sample implements Dist.
func (t Tail) Sample(r *rand.Rand) time.Duration {
	d := t.Base.Sample(r)
	if r.Float64() < t.P {
		d = time.Duration(float64(d) * t.Factor)
	}
	return d
}

// Scaled is Base times Factor: a slow node.
type Scaled struct {
	Base   Dist
	Factor float64
}

// Sample implements Dist.
func (s Scaled) Sample(r *rand.Rand) time.Duration {
	return time.Duration(float64(s.Base.Sample(r)) * s.Factor)
}

// Latencies records durations and answers percentiles exactly.
type Latencies struct {
	d      []time.Duration
	sorted bool
}

// Add records one duration.
func (l *Latencies) Add(d time.Duration) { l.d = append(l.d, d); l.sorted = false }

// Count is the number recorded.
func (l *Latencies) Count() int { return len(l.d) }

// Quantile returns the q-quantile (0 < q ≤ 1), or 0 when empty.
func (l *Latencies) Quantile(q float64) time.Duration {
	if len(l.d) == 0 {
		return 0
	}
	if !l.sorted {
		sort.Slice(l.d, func(i, j int) bool { return l.d[i] < l.d[j] })
		l.sorted = true
	}
	i := int(math.Ceil(q*float64(len(l.d)))) - 1
	if i < 0 {
		i = 0
	}
	return l.d[i]
}
