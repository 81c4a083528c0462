// Package load is Redline's open-model load generator, usable as a Go library and through
// `redline stress`.
//
// A Schedule says when each iteration is due: Constant(rate, d), or Ramp(start, stages...)
// with linear ramps. Run starts every iteration at its due time, whether or not earlier
// ones have finished, and measures each request's latency from
// when it was meant to be sent, so a server that stalls is charged for every request the
// stall delayed (coordinated omission, corrected as wrk2 does). The service time, from the
// actual send, is kept beside it. Iterations run on workers that stay for the run; a
// worker is added whenever none is idle, so only WithMaxInFlight bounds concurrency: an
// iteration that finds that many running waits for one to finish, its wait counted in its
// latency, and one still waiting when the schedule ends is counted as dropped, never
// silently skipped.
//
// An iteration is a Doer's work: one HTTP request (HTTPDoer), or a journey of several
// (stress/scenario). Each request is one Iteration.Step, recorded in lock-free
// HdrHistogram-style histograms (three significant digits, 1 µs to 1 h) overall and per
// step, in per-second series, and, when it fails, in an errors table by kind, status and
// reason. Failed requests stay in the latency record.
//
//	sched, _ := load.Constant(500, time.Minute)
//	client := load.NewClient(10*time.Second, 0) // keep-alive, at most 1024 connections
//	doer := load.HTTPDoer(client, load.Request{Name: "explore", Method: "GET", URL: url})
//	res, err := load.Run(ctx, sched, doer,
//		load.WithThresholds(load.LatencyBelow(99, 500*time.Millisecond), load.ErrorRateBelow(0.01)),
//		load.WithProgress(func(s load.Snapshot) { fmt.Println(s.Elapsed, s.P99) }))
//	// res.Passed(), res.Latency.P99, res.Aborted, ...
//
// Thresholds are checked once a second after the warm-up and at the end; a broken one
// aborts the run. The engine reads time only through its Clock, so tests run it in a
// testing/synctest bubble on a fake, deterministic clock.
package load

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// A Doer performs one iteration: it makes its requests through it.Step, and returns when
// the iteration is over. ctx ends when the run is aborted or its drain time is up.
type Doer interface {
	Do(ctx context.Context, it *Iteration)
}

// DoerFunc adapts a function to Doer.
type DoerFunc func(ctx context.Context, it *Iteration)

// Do implements Doer.
func (f DoerFunc) Do(ctx context.Context, it *Iteration) { f(ctx, it) }

// Iteration is one arrival of the schedule.
type Iteration struct {
	// N numbers the iterations of a run from 0, in order of their due times.
	N int64
	// Intended is when the iteration was due.
	Intended time.Time
	run      *run
	from     time.Time // where the next step's latency counts from
}

// Step makes one request named name by calling f, which returns the HTTP status (0 when
// there was no response) and nil, or an error: an *Error for what the doer detected
// itself, any other error is classified by Classify. The first step's latency counts from
// the iteration's intended time, each later one's from the end of the step before it.
// Step returns f's error.
func (it *Iteration) Step(name string, f func() (status int, err error)) error {
	r := it.run
	start := r.clock.Now()
	status, err := f()
	end := r.clock.Now()
	from := it.from
	it.from = end
	if err != nil && r.iterCtx.Err() != nil && errors.Is(err, context.Canceled) {
		r.canceled.Add(1) // cut short by an abort or the drain limit: not the server's doing
		return err
	}
	r.record(name, status, err, end.Sub(from), end.Sub(start), end)
	return err
}

// Options of Run.
type options struct {
	clock       Clock
	maxInFlight int
	thresholds  []Threshold
	warmup      time.Duration
	progress    func(Snapshot)
	drain       time.Duration
}

// Option configures Run.
type Option func(*options)

// WithClock sets the clock; the default is Real.
func WithClock(c Clock) Option { return func(o *options) { o.clock = c } }

// WithMaxInFlight bounds the iterations running at once (the workers); the default is
// 10000.
func WithMaxInFlight(n int) Option { return func(o *options) { o.maxInFlight = n } }

// WithThresholds sets the conditions that abort the run when broken.
func WithThresholds(t ...Threshold) Option {
	return func(o *options) { o.thresholds = append(o.thresholds, t...) }
}

// WithWarmup sets how long thresholds wait before their first live check; the default is
// 5 s. The check at the end counts everything.
func WithWarmup(d time.Duration) Option { return func(o *options) { o.warmup = d } }

// WithProgress sets a function called once a second with the run's progress, from one
// goroutine.
func WithProgress(f func(Snapshot)) Option { return func(o *options) { o.progress = f } }

// WithDrain sets how long iterations still running at the schedule's end may take to
// finish before they are canceled; the default is 30 s.
func WithDrain(d time.Duration) Option { return func(o *options) { o.drain = d } }

// Run runs d on schedule s and returns what it measured. It returns an error only for a
// bad argument, before it sends anything; a broken threshold or an ended ctx stops the run
// and shows in Result.Aborted.
func Run(ctx context.Context, s Schedule, d Doer, opts ...Option) (*Result, error) {
	o := options{clock: Real{}, maxInFlight: 10000, warmup: 5 * time.Second, drain: 30 * time.Second}
	for _, opt := range opts {
		opt(&o)
	}
	switch {
	case s.total == 0:
		return nil, fmt.Errorf("%w: an empty schedule: build it with Constant or Ramp", ErrSchedule)
	case d == nil:
		return nil, errors.New("load: nil Doer")
	case o.maxInFlight < 1:
		return nil, fmt.Errorf("load: max in flight must be at least 1, got %d", o.maxInFlight)
	}
	runCtx, abort := context.WithCancelCause(ctx)
	defer abort(nil)
	iterCtx, cancelIters := context.WithCancel(runCtx)
	defer cancelIters()
	r := newRun(o.clock, iterCtx)

	monCtx, stopMonitor := context.WithCancel(runCtx)
	monitorDone := make(chan struct{})
	go func() {
		defer close(monitorDone)
		r.monitor(monCtx, s, &o, abort)
	}()

	last, cut := r.schedule(runCtx, s, d, o.maxInFlight)

	// Let what is in flight finish, within the drain time.
	finished := make(chan struct{})
	go func() { r.wg.Wait(); close(finished) }()
	drainCtx, stopDrain := context.WithCancel(runCtx)
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		if o.clock.SleepUntil(drainCtx, o.clock.Now().Add(o.drain)) == nil {
			cancelIters()
		}
	}()
	<-finished
	stopDrain()
	<-drained
	end := o.clock.Now()
	stopMonitor()
	<-monitorDone

	res := r.result(s, last, cut, end)
	// The final verdict counts everything; a threshold that aborted the run keeps the
	// verdict it had then.
	v := r.view()
	final := context.WithoutCancel(ctx)
	for _, t := range o.thresholds {
		tr := ThresholdResult{Name: t.Name}
		if b := r.broken.Load(); b != nil && b.Name == t.Name {
			tr = *b
		} else {
			tr.Observed, tr.Pass = t.eval(final, v)
		}
		res.Thresholds = append(res.Thresholds, tr)
	}
	switch b := r.broken.Load(); {
	case b != nil:
		res.Aborted = b.Name
	case ctx.Err() != nil:
		res.Aborted = "canceled"
	}
	return res, nil
}

// run is the state of one Run.
type run struct {
	clock   Clock
	t0      time.Time
	iterCtx context.Context // the iterations' ctx, to tell our cancellations from errors
	wg      sync.WaitGroup

	started, delayed, dropped, canceled atomic.Uint64
	requests, ok, errors                atomic.Uint64
	inFlight, maxActive                 atomic.Int64
	latency, service, lag               *Histogram

	steps  sync.Map // name → *stepStats
	errMu  sync.Mutex
	errs   map[errKey]*ErrorCount
	series series

	broken atomic.Pointer[ThresholdResult]
}

// MaxErrorKeys bounds the rows of the errors table; further distinct errors count under
// KindOther.
const MaxErrorKeys = 200

type errKey struct {
	step, kind, reason string
	status             int
}

type stepStats struct {
	latency, service     *Histogram
	requests, ok, errors atomic.Uint64
	statuses             [600]atomic.Uint64
}

func newRun(c Clock, iterCtx context.Context) *run {
	r := &run{clock: c, iterCtx: iterCtx, latency: NewHistogram(), service: NewHistogram(), lag: NewHistogram(),
		errs: map[errKey]*ErrorCount{}}
	r.t0 = c.Now()
	r.series.t0 = r.t0
	return r
}

// schedule starts the iterations at their due times. It returns when the last one
// started and, when it stopped before the end of the schedule (an abort, or no free worker
// until the end), when it stopped.
func (r *run) schedule(ctx context.Context, s Schedule, d Doer, maxInFlight int) (last, cut time.Time) {
	// Iterations run on workers that stay for the run, so their stacks, once grown, are
	// reused. A worker is added whenever none is idle, up to maxInFlight.
	work := make(chan *Iteration)
	workers := 0
	worker := func(it *Iteration) {
		defer r.wg.Done()
		for ok := true; ok; it, ok = <-work {
			d.Do(r.iterCtx, it)
			r.inFlight.Add(-1)
		}
	}
	defer close(work)
	// Waiting for a worker stops at the schedule's end: what is still due then is dropped.
	schedCtx, stop := context.WithCancel(ctx)
	timerDone := make(chan struct{})
	go func() {
		defer close(timerDone)
		_ = r.clock.SleepUntil(schedCtx, r.t0.Add(s.Duration()))
		stop()
	}()
	defer func() { stop(); <-timerDone }()

	i := int64(0)
	for ; i < s.total; i++ {
		off, _ := s.At(i)
		due := r.t0.Add(off)
		if r.clock.Now().Before(due) && r.clock.SleepUntil(ctx, due) != nil {
			cut = r.clock.Now()
			break
		}
		it := &Iteration{N: i, Intended: due, run: r, from: due}
		active := r.inFlight.Add(1)
		sent := false
		select {
		case work <- it:
			sent = true
		default:
			if workers < maxInFlight {
				workers++
				r.wg.Add(1)
				go worker(it)
				sent = true
				break
			}
			r.delayed.Add(1)
			select {
			case work <- it:
				sent = true
			case <-schedCtx.Done():
			}
		}
		if !sent {
			r.inFlight.Add(-1)
			cut = r.clock.Now()
			break
		}
		start := r.clock.Now()
		last = start
		r.lag.Record(start.Sub(due))
		r.series.start(start)
		r.started.Add(1)
		for m := r.maxActive.Load(); active > m && !r.maxActive.CompareAndSwap(m, active); m = r.maxActive.Load() {
		}
		if ctx.Err() != nil {
			cut = start
			i++
			break
		}
	}
	// Iterations due by now that never started were dropped.
	now := r.clock.Now()
	for ; i < s.total; i++ {
		if off, _ := s.At(i); r.t0.Add(off).After(now) {
			break
		}
		r.dropped.Add(1)
	}
	return last, cut
}

// monitor reports progress and checks thresholds once a second until ctx ends.
func (r *run) monitor(ctx context.Context, s Schedule, o *options, abort context.CancelCauseFunc) {
	for k := 1; ; k++ {
		if o.clock.SleepUntil(ctx, r.t0.Add(time.Duration(k)*time.Second)) != nil {
			return
		}
		r.series.finalize(k - 2)
		if o.progress != nil {
			sec := r.series.get(k - 1)
			o.progress(Snapshot{
				Elapsed: time.Duration(k) * time.Second, TargetRate: s.Rate(time.Duration(k) * time.Second),
				ActualRate: float64(sec.Started), InFlight: r.inFlight.Load(),
				Requests: r.requests.Load(), OK: r.ok.Load(), Errors: r.errors.Load(), Dropped: r.dropped.Load(),
				P50: sec.P50, P99: sec.P99,
			})
		}
		if time.Duration(k)*time.Second < o.warmup {
			continue
		}
		v := r.view()
		for _, t := range o.thresholds {
			if obs, ok := t.eval(ctx, v); !ok && ctx.Err() == nil {
				tr := ThresholdResult{Name: t.Name, Observed: obs, At: time.Duration(k) * time.Second}
				r.broken.Store(&tr)
				abort(fmt.Errorf("threshold %s broken: %s", t.Name, obs))
				return
			}
		}
	}
}

func (r *run) view() view {
	return view{requests: r.requests.Load(), errors: r.errors.Load(), dropped: r.dropped.Load(), latency: r.latency}
}

func (r *run) step(name string) *stepStats {
	if s, ok := r.steps.Load(name); ok {
		return s.(*stepStats)
	}
	s, _ := r.steps.LoadOrStore(name, &stepStats{latency: NewHistogram(), service: NewHistogram()})
	return s.(*stepStats)
}

func (r *run) record(name string, status int, err error, latency, service time.Duration, end time.Time) {
	s := r.step(name)
	r.latency.Record(latency)
	r.service.Record(service)
	s.latency.Record(latency)
	s.service.Record(service)
	if status < 0 || status >= len(s.statuses) {
		status = 0
	}
	s.statuses[status].Add(1)
	r.requests.Add(1)
	s.requests.Add(1)
	if err == nil {
		r.ok.Add(1)
		s.ok.Add(1)
	} else {
		r.errors.Add(1)
		s.errors.Add(1)
		r.countError(name, Classify(err))
	}
	r.series.done(end, latency, err == nil)
}

func (r *run) countError(step string, e *Error) {
	k := errKey{step: step, kind: e.Kind, reason: e.Reason, status: e.Status}
	r.errMu.Lock()
	defer r.errMu.Unlock()
	c, ok := r.errs[k]
	if !ok && len(r.errs) >= MaxErrorKeys {
		k = errKey{step: step, kind: KindOther}
		c, ok = r.errs[k]
	}
	if !ok {
		c = &ErrorCount{Step: k.step, Kind: k.kind, Status: k.status, Reason: k.reason, Example: e.Detail}
		r.errs[k] = c
	}
	c.Count++
}

// result assembles the Result once every iteration has ended.
func (r *run) result(s Schedule, last, cut, end time.Time) *Result {
	res := &Result{
		Start: r.t0, Elapsed: end.Sub(r.t0), Planned: s.total,
		TargetRate: float64(s.total) / s.Duration().Seconds(),
		Started:    r.started.Load(), Delayed: r.delayed.Load(), Dropped: r.dropped.Load(),
		Canceled: r.canceled.Load(), MaxActive: r.maxActive.Load(),
		Requests: r.requests.Load(), OK: r.ok.Load(), Errors: r.errors.Load(),
		Latency: summarize(r.latency), Service: summarize(r.service), Lag: summarize(r.lag),
		Spectrum: spectrum(r.latency), ServiceSpectrum: spectrum(r.service),
	}
	if res.Dropped > 0 {
		r.errs[errKey{kind: KindDropped}] = &ErrorCount{Kind: KindDropped, Count: res.Dropped,
			Example: "the in-flight limit stayed full until the schedule ended"}
	}
	// Started over the schedule's span, or until the last start when it ran late, or
	// until the scheduler stopped.
	window := s.Duration()
	if !last.IsZero() {
		window = max(window, last.Sub(r.t0))
	}
	if !cut.IsZero() {
		window = cut.Sub(r.t0)
	}
	if window > 0 {
		res.ActualRate = float64(res.Started) / window.Seconds()
	}
	r.steps.Range(func(k, v any) bool {
		st := v.(*stepStats)
		sr := StepResult{Name: k.(string), Requests: st.requests.Load(), OK: st.ok.Load(), Errors: st.errors.Load(),
			Latency: summarize(st.latency), Service: summarize(st.service), Statuses: map[int]uint64{}}
		for code := range st.statuses {
			if n := st.statuses[code].Load(); n > 0 {
				sr.Statuses[code] = n
			}
		}
		res.Steps = append(res.Steps, sr)
		return true
	})
	slices.SortFunc(res.Steps, func(a, b StepResult) int { return strings.Compare(a.Name, b.Name) })
	for _, c := range r.errs {
		res.ErrorKinds = append(res.ErrorKinds, *c)
	}
	slices.SortFunc(res.ErrorKinds, func(a, b ErrorCount) int {
		if c := cmp.Compare(b.Count, a.Count); c != 0 {
			return c
		}
		return strings.Compare(a.Step+a.Kind+a.Reason, b.Step+b.Kind+b.Reason)
	})
	r.series.finalize(int(^uint(0) >> 1))
	res.Series = r.series.all()
	return res
}
