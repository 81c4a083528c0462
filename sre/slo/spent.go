package slo

import (
	"fmt"
	"time"
)

// Spent returns the share of name's current-period error budget that the bad events between
// from and to spent: bad events in [from, to] ÷ (budget × the period's events so far, as
// Status.Period counts them), so 0.25 is a quarter of the budget and the Spent of the whole
// period is 1 − BudgetRemaining. to is clamped to the clock's now and from to the period's
// start. With Timeslices budgeting it counts bad slices in [from, to] ÷ (budget × slices
// with traffic in the period), complete slices only. With no traffic in the period it
// returns 0. It returns ErrUnknownSLO for a name the evaluator lacks and an error when from
// is after to.
//
// It reads the finest ring that still holds from: 5 s buckets within the last 2 h, 5 min
// ones within 3 d, the period's buckets beyond, so a 10-minute incident an hour ago is
// measured to 5 s. A sample at t holds the events of the 5 s before t (the sampling
// interval), so on the 5 s ring [from, to] is exact at sample times; on a coarser ring it
// takes every bucket [from, to] touches, up to one bucket more on each side.
func (e *Evaluator) Spent(name string, from, to time.Time) (float64, error) {
	if from.After(to) {
		return 0, fmt.Errorf("slo: Spent %q: from %s is after to %s", name, from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	t, ok := e.slos[name]
	if !ok {
		return 0, fmt.Errorf("%w: %q", ErrUnknownSLO, name)
	}
	return t.spent(e.o.clock.Now(), from, to), nil
}

func (t *tracked) spent(now, from, to time.Time) float64 {
	_, total := t.periodRatio(now)
	if total <= 0 {
		return 0
	}
	from = maxTime(from, t.periodStart(now))
	to = minTime(to, now)
	if from.After(to) {
		return 0
	}
	// A sample at s holds the events of (s − fineRes, s], one sample a 5 s bucket. Between
	// sample times from and to, those are the samples in (from, to]: on the 5 s ring, the
	// buckets after from's through to's, wherever the samples fall in their buckets. A
	// coarser bucket takes every sample that holds some of (from, to], up to the first one
	// after to.
	start, end := from.Add(fineRes), to.Add(fineRes-1)
	var bad float64
	if t.slo.Budgeting != Timeslices {
		for _, r := range t.levels {
			first, cur := r.slot(start), r.slot(now)
			if first > cur-int64(len(r.idx)) {
				last := r.slot(end)
				if r.res == int64(fineRes) {
					last = r.slot(to)
				}
				bad, _ = r.sum(first, min(last, cur))
				return bad / (t.slo.Budget() * total)
			}
		}
	}
	pfrom, pto := t.periodSlots(now)
	first, last := max(t.period.slot(start), pfrom), min(t.period.slot(end), pto)
	if t.slo.Budgeting == Timeslices {
		bad, _ = t.slices(first, min(last, pto-1))
	} else {
		bad, _ = t.period.sum(first, last)
	}
	return bad / (t.slo.Budget() * total)
}

func maxTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return b
	}
	return a
}

func minTime(a, b time.Time) time.Time {
	if a.After(b) {
		return b
	}
	return a
}
