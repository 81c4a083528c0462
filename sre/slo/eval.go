package slo

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/redline-dev/redline/ha/clock"
)

// Counts are cumulative event counts of one SLO, as counters are: they only grow, except
// when the process restarts and they start again from zero.
type Counts struct {
	Bad, Total float64
}

// State of an alert.
type State string

// The states.
const (
	Firing   State = "firing"
	Resolved State = "resolved"
)

// Alert is one burn-rate condition of one SLO that fired.
type Alert struct {
	SLO        string    `json:"slo"`
	Service    string    `json:"service"`
	Severity   Severity  `json:"severity"`
	Condition  Condition `json:"condition"`
	State      State     `json:"state"`
	FiredAt    time.Time `json:"fired_at"`
	ResolvedAt time.Time `json:"resolved_at,omitzero"`
	// BurnRate is the long window's burn rate when the alert fired.
	BurnRate float64 `json:"burn_rate"`
	// ImpactStart is when the burn that fired the alert began, to a 5 s bucket: the start
	// of the run of buckets before FiredAt (within the long window and the last 2 h) whose
	// error ratio was at or above the alert's threshold. FiredAt − ImpactStart is the time
	// to detect.
	ImpactStart time.Time `json:"impact_start"`
}

// Window is the error ratio of an SLO over one window.
type Window struct {
	Window     time.Duration `json:"window"`
	Bad        float64       `json:"bad"`
	Total      float64       `json:"total"`
	ErrorRatio float64       `json:"error_ratio"`
	BurnRate   float64       `json:"burn_rate"`
}

// Status is an SLO's state at one instant.
type Status struct {
	SLO       string    `json:"slo"`
	Service   string    `json:"service"`
	Objective float64   `json:"objective"`
	At        time.Time `json:"at"`
	// Windows are the alert windows, shortest first.
	Windows []Window `json:"windows"`
	// Period is the error ratio over the SLO period (the calendar period so far for a
	// calendar window); with Timeslices budgeting, Bad and Total count slices.
	Period Window `json:"period"`
	// BudgetRemaining is 1 − period burn rate: 1 (100%) with no bad events, 0 when the
	// budget is spent, negative beyond.
	BudgetRemaining float64 `json:"budget_remaining"`
	Firing          []Alert `json:"firing"`
}

// EvalOption configures an Evaluator.
type EvalOption func(*evalOptions)

type evalOptions struct {
	clock  clock.Clock
	notify func(Alert)
	keep   int
}

// WithClock sets the time source (default clock.Real{}).
func WithClock(c clock.Clock) EvalOption { return func(o *evalOptions) { o.clock = c } }

// WithNotify calls f on every alert transition, firing and resolved, after the evaluator's
// lock is released; f must not block for long.
func WithNotify(f func(Alert)) EvalOption { return func(o *evalOptions) { o.notify = f } }

// WithHistory sets how many alert transitions Events keeps (default 1000).
func WithHistory(n int) EvalOption { return func(o *evalOptions) { o.keep = n } }

// ErrUnknownSLO is returned for an SLO name the evaluator was not built with.
var ErrUnknownSLO = errors.New("slo: unknown SLO")

// Evaluator turns periodic samples of cumulative counts into error ratios, budgets and
// multiwindow burn-rate alerts. It is safe for concurrent use.
type Evaluator struct {
	o      evalOptions
	mu     sync.Mutex
	slos   map[string]*tracked
	order  []*tracked
	events []Alert
}

type tracked struct {
	slo    SLO
	levels []*ring
	period *ring
	last   Counts
	primed bool
	conds  []condState
}

type condState struct {
	since  time.Time // when the condition became true; zero while false
	firing *Alert
}

// NewEvaluator returns an evaluator of slos, each validated.
func NewEvaluator(slos []SLO, opts ...EvalOption) (*Evaluator, error) {
	o := evalOptions{clock: clock.Real{}, keep: 1000}
	for _, f := range opts {
		f(&o)
	}
	e := &Evaluator{o: o, slos: map[string]*tracked{}}
	var errs []error
	for _, s := range slos {
		if err := s.Validate(); err != nil {
			errs = append(errs, err)
			continue
		}
		if _, dup := e.slos[s.Name]; dup {
			errs = append(errs, fmt.Errorf("%w: %w", ErrInvalid, &FieldError{File: s.File, Field: "metadata.name", Reason: fmt.Sprintf("SLO %q twice", s.Name)}))
			continue
		}
		t := &tracked{slo: s, conds: make([]condState, len(s.Alerts()))}
		t.levels = []*ring{newRing(fineRes, fineSpan), newRing(midRes, maxWindow)}
		res, span := time.Hour, s.Period
		if s.Calendar == "month" {
			span = 31 * Day
		}
		if s.Budgeting == Timeslices {
			res = s.TimesliceWindow
		}
		t.period = newRing(res, span)
		e.slos[s.Name] = t
		e.order = append(e.order, t)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return e, nil
}

// The ring resolutions. Short windows need fine buckets: a full outage against 99.9% pages
// after 51.84 s, and 5 s buckets keep the page within 10% of that. Long windows and the
// period do with coarse ones, which keeps an SLO near 70 KiB: 1440 5-second buckets cover
// 2 h (the 5m, 30m, 1h and 2h windows), 864 5-minute buckets cover 3 d (6h, 1d, 3d), and
// hourly buckets (or timeslice-sized ones for Timeslices budgeting) cover the period. One
// flat ring of 5-second buckets over 30 days would need 518,400 buckets (12 MiB) per SLO.
const (
	fineRes  = 5 * time.Second
	fineSpan = 2 * time.Hour
	midRes   = 5 * time.Minute
)

// ring is a circular array of buckets, each holding the events of one interval of res.
// A bucket remembers its interval's index, so a stale one (from a lap ago) reads as empty.
type ring struct {
	res   int64 // nanoseconds
	idx   []int64
	bad   []float64
	total []float64
}

func newRing(res, span time.Duration) *ring {
	n := int(span/res) + 1
	r := &ring{res: int64(res), idx: make([]int64, n), bad: make([]float64, n), total: make([]float64, n)}
	for i := range r.idx {
		r.idx[i] = -1 << 62
	}
	return r
}

func (r *ring) slot(t time.Time) int64 { return floorDiv(t.UnixNano(), r.res) }

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

func (r *ring) add(t time.Time, bad, total float64) {
	i := r.slot(t)
	j := int(modPos(i, int64(len(r.idx))))
	if r.idx[j] != i {
		r.idx[j], r.bad[j], r.total[j] = i, 0, 0
	}
	r.bad[j] += bad
	r.total[j] += total
}

func modPos(a, n int64) int64 {
	m := a % n
	if m < 0 {
		m += n
	}
	return m
}

// sum adds the buckets with index in [from, to].
func (r *ring) sum(from, to int64) (bad, total float64) {
	if to-from+1 > int64(len(r.idx)) {
		from = to - int64(len(r.idx)) + 1
	}
	for i := from; i <= to; i++ {
		j := int(modPos(i, int64(len(r.idx))))
		if r.idx[j] == i {
			bad += r.bad[j]
			total += r.total[j]
		}
	}
	return bad, total
}

// burnStart returns when the burn that fired an alert began. Walking the fine ring back
// from now over at most w, it sums each bucket's excess over the alert's threshold,
// bad − limit × total, and picks the bucket where that sum (from it to now) is largest:
// the change point, as CUSUM finds it. Clean traffic before the burn only lowers the sum,
// so it is left out, while a noisy burn, with some clean buckets inside, still starts
// where it started. A bucket holds the samples taken in it, each counting the interval
// before it, so the burn starts one bucket before its first.
func (t *tracked) burnStart(now time.Time, w time.Duration, limit float64) time.Time {
	r := t.levels[0]
	to := r.slot(now)
	from := max(to-int64(w)/r.res+1, to-int64(len(r.idx))+1)
	start := to
	var sum, best float64
	for i := to; i >= from; i-- {
		j := int(modPos(i, int64(len(r.idx))))
		if r.idx[j] != i || r.total[j] <= 0 {
			continue
		}
		sum += r.bad[j] - limit*r.total[j]
		if sum > best {
			start, best = i, sum
		}
	}
	return time.Unix(0, (start-1)*r.res).UTC()
}

// window sums the last w of t's levels: the current bucket and the ones before it, w/res
// in all, from the finest ring that spans w.
func (t *tracked) window(now time.Time, w time.Duration) (bad, total float64) {
	for _, r := range t.levels {
		if int64(w) <= r.res*int64(len(r.idx)-1) {
			to := r.slot(now)
			return r.sum(to-int64(w)/r.res+1, to)
		}
	}
	r := t.levels[len(t.levels)-1]
	to := r.slot(now)
	return r.sum(to-int64(len(r.idx))+1, to)
}

func (t *tracked) periodStart(now time.Time) time.Time {
	u := now.UTC()
	switch t.slo.Calendar {
	case "month":
		return time.Date(u.Year(), u.Month(), 1, 0, 0, 0, 0, time.UTC)
	case "week":
		d := time.Date(u.Year(), u.Month(), u.Day(), 0, 0, 0, 0, time.UTC)
		return d.AddDate(0, 0, -((int(d.Weekday()) + 6) % 7))
	}
	return now.Add(-t.slo.Period)
}

// periodRatio returns the period's bad and total: events for Occurrences, complete slices
// with traffic for Timeslices.
func (t *tracked) periodRatio(now time.Time) (bad, total float64) {
	from, to := t.periodSlots(now)
	if t.slo.Budgeting != Timeslices {
		return t.period.sum(from, to)
	}
	return t.slices(from, to-1) // the current slice is not complete yet
}

// periodSlots returns the first and last bucket of the period ring in the current period.
func (t *tracked) periodSlots(now time.Time) (from, to int64) {
	r := t.period
	from = r.slot(t.periodStart(now))
	if t.slo.Calendar == "" {
		from++ // the bucket holding now − period is mostly outside the window
	}
	return from, r.slot(now)
}

// slices counts the period ring's slices with traffic in [from, to] and the bad ones among
// them.
func (t *tracked) slices(from, to int64) (bad, total float64) {
	r := t.period
	for i := from; i <= to; i++ {
		j := int(modPos(i, int64(len(r.idx))))
		if r.idx[j] != i || r.total[j] <= 0 {
			continue
		}
		total++
		if (r.total[j]-r.bad[j])/r.total[j] < t.slo.TimesliceTarget {
			bad++
		}
	}
	return bad, total
}

// Record feeds the cumulative counts of one SLO at the clock's now and evaluates its alerts.
// The first call only sets the baseline; a drop in either count is read as a restart.
func (e *Evaluator) Record(name string, c Counts) error {
	e.mu.Lock()
	t, ok := e.slos[name]
	if !ok {
		e.mu.Unlock()
		return fmt.Errorf("%w: %q", ErrUnknownSLO, name)
	}
	changed := e.record(t, e.o.clock.Now(), c)
	e.mu.Unlock()
	e.publish(changed)
	return nil
}

// Sample gathers g (kit/metric.Registry in production) and records every SLO's counts.
func (e *Evaluator) Sample(g prometheus.Gatherer) error {
	mfs, err := g.Gather()
	if err != nil {
		return fmt.Errorf("slo: gather: %w", err)
	}
	fams := Families(mfs)
	e.mu.Lock()
	now := e.o.clock.Now()
	var changed []Alert
	for _, t := range e.order {
		changed = append(changed, e.record(t, now, fams.Counts(t.slo.Indicator))...)
	}
	e.mu.Unlock()
	e.publish(changed)
	return nil
}

func (e *Evaluator) publish(changed []Alert) {
	if e.o.notify == nil {
		return
	}
	for _, a := range changed {
		e.o.notify(a)
	}
}

func (e *Evaluator) record(t *tracked, now time.Time, c Counts) []Alert {
	if !t.primed {
		t.last, t.primed = c, true
		return e.evaluate(t, now)
	}
	d := Counts{Bad: c.Bad - t.last.Bad, Total: c.Total - t.last.Total}
	if d.Bad < 0 || d.Total < 0 {
		d = c // a restarted process counts from zero again
	}
	t.last = c
	d.Bad = min(max(d.Bad, 0), max(d.Total, 0))
	t.add(now, d)
	return e.evaluate(t, now)
}

// add puts the events d of a sample at now into every ring.
func (t *tracked) add(now time.Time, d Counts) {
	if d.Total <= 0 {
		return
	}
	for _, r := range t.levels {
		r.add(now, d.Bad, d.Total)
	}
	t.period.add(now, d.Bad, d.Total)
}

func ratio(bad, total float64) float64 {
	if total <= 0 {
		return 0
	}
	return bad / total
}

func (e *Evaluator) evaluate(t *tracked, now time.Time) []Alert {
	var changed []Alert
	s := t.slo
	for i, c := range s.Alerts() {
		lb, lt := t.window(now, c.Long)
		sb, st := t.window(now, c.Short)
		limit := c.Factor * s.Budget()
		on := st >= s.MinTraffic() && ratio(lb, lt) >= limit && ratio(sb, st) >= limit
		cs := &t.conds[i]
		switch {
		case on && cs.since.IsZero():
			cs.since = now
		case !on:
			cs.since = time.Time{}
		}
		switch {
		case on && cs.firing == nil && now.Sub(cs.since) >= c.For:
			cs.firing = &Alert{SLO: s.Name, Service: s.Service, Severity: c.Severity, Condition: c,
				State: Firing, FiredAt: now, BurnRate: ratio(lb, lt) / s.Budget(), ImpactStart: t.burnStart(now, c.Long, limit)}
			changed = append(changed, *cs.firing)
		case !on && cs.firing != nil:
			a := *cs.firing
			a.State, a.ResolvedAt = Resolved, now
			cs.firing = nil
			changed = append(changed, a)
		}
	}
	e.events = append(e.events, changed...)
	if over := len(e.events) - e.o.keep; over > 0 {
		e.events = append(e.events[:0], e.events[over:]...)
	}
	return changed
}

// Status returns an SLO's windows, budget and firing alerts at the clock's now.
func (e *Evaluator) Status(name string) (Status, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	t, ok := e.slos[name]
	if !ok {
		return Status{}, fmt.Errorf("%w: %q", ErrUnknownSLO, name)
	}
	return e.status(t, e.o.clock.Now()), nil
}

// Statuses returns every SLO's status, in the order the evaluator was built with.
func (e *Evaluator) Statuses() []Status {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.o.clock.Now()
	out := make([]Status, 0, len(e.order))
	for _, t := range e.order {
		out = append(out, e.status(t, now))
	}
	return out
}

func (e *Evaluator) status(t *tracked, now time.Time) Status {
	s := t.slo
	st := Status{SLO: s.Name, Service: s.Service, Objective: s.Objective, At: now, Firing: []Alert{}}
	for _, w := range s.Windows() {
		b, n := t.window(now, w)
		r := ratio(b, n)
		st.Windows = append(st.Windows, Window{Window: w, Bad: b, Total: n, ErrorRatio: r, BurnRate: r / s.Budget()})
	}
	b, n := t.periodRatio(now)
	r := ratio(b, n)
	st.Period = Window{Window: now.Sub(t.periodStart(now)), Bad: b, Total: n, ErrorRatio: r, BurnRate: r / s.Budget()}
	st.BudgetRemaining = 1 - st.Period.BurnRate
	for _, cs := range t.conds {
		if cs.firing != nil {
			st.Firing = append(st.Firing, *cs.firing)
		}
	}
	return st
}

// Events returns the latest alert transitions, oldest first.
func (e *Evaluator) Events() []Alert {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]Alert(nil), e.events...)
}
