package load

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// ErrSchedule is wrapped by every error about a rate or a duration.
var ErrSchedule = errors.New("bad load schedule")

// A Stage moves the arrival rate linearly from where the previous stage ended (or the
// schedule's start rate) to Target over Duration. A stage whose target equals the rate it
// starts at holds that rate.
type Stage struct {
	Duration time.Duration
	// Target is the rate at the end of the stage, in iterations per second.
	Target float64
}

// A Schedule says when each iteration is due: the i-th arrival (from 0) is due when the
// integral of the rate from the start reaches i. At a constant rate r that is i/r, so the
// arrivals are evenly spaced; on a ramp they are spaced by the instantaneous rate. It is
// the open model: arrivals never wait for earlier iterations to finish.
type Schedule struct {
	stages []Stage
	from   []float64       // rate at the start of each stage
	before []float64       // arrivals (real-valued) before each stage
	offset []time.Duration // start of each stage
	total  int64
	end    time.Duration
}

// Constant returns a schedule of rate iterations per second for d.
func Constant(rate float64, d time.Duration) (Schedule, error) {
	if !(rate > 0) || math.IsInf(rate, 0) {
		return Schedule{}, fmt.Errorf("%w: the rate must be a positive number of iterations per second, got %v", ErrSchedule, rate)
	}
	return Ramp(rate, Stage{Duration: d, Target: rate})
}

// Ramp returns a schedule that starts at rate start and follows stages in order.
func Ramp(start float64, stages ...Stage) (Schedule, error) {
	if !(start >= 0) || math.IsInf(start, 0) {
		return Schedule{}, fmt.Errorf("%w: the start rate must be 0 or more, got %v", ErrSchedule, start)
	}
	if len(stages) == 0 {
		return Schedule{}, fmt.Errorf("%w: no stages: give a duration and a rate", ErrSchedule)
	}
	s := Schedule{stages: stages}
	rate, n, at := start, 0.0, time.Duration(0)
	for i, st := range stages {
		if st.Duration <= 0 {
			return Schedule{}, fmt.Errorf("%w: stage %d: the duration must be positive, got %v", ErrSchedule, i+1, st.Duration)
		}
		if !(st.Target >= 0) || math.IsInf(st.Target, 0) {
			return Schedule{}, fmt.Errorf("%w: stage %d: the rate must be 0 or more, got %v", ErrSchedule, i+1, st.Target)
		}
		s.from = append(s.from, rate)
		s.before = append(s.before, n)
		s.offset = append(s.offset, at)
		n += (rate + st.Target) / 2 * st.Duration.Seconds()
		rate, at = st.Target, at+st.Duration
	}
	s.end = at
	// Arrival i is due at N(t) = i for i < N(end); a rounding error must not add one.
	s.total = int64(math.Ceil(n - 1e-9))
	if s.total <= 0 {
		return Schedule{}, fmt.Errorf("%w: the schedule sends nothing: raise a rate", ErrSchedule)
	}
	return s, nil
}

// Total is the number of iterations the schedule sends.
func (s Schedule) Total() int64 { return s.total }

// Duration is how long the schedule lasts.
func (s Schedule) Duration() time.Duration { return s.end }

// Rate is the target rate at offset t from the start, in iterations per second.
func (s Schedule) Rate(t time.Duration) float64 {
	for k, st := range s.stages {
		if t < s.offset[k]+st.Duration {
			frac := float64(t-s.offset[k]) / float64(st.Duration)
			return s.from[k] + (st.Target-s.from[k])*max(frac, 0)
		}
	}
	return 0
}

// At returns when arrival i is due, as an offset from the start; false when the schedule
// sends fewer than i+1 iterations.
func (s Schedule) At(i int64) (time.Duration, bool) {
	if i < 0 || i >= s.total {
		return 0, false
	}
	x := float64(i)
	k := len(s.stages) - 1
	for k > 0 && s.before[k] > x {
		k--
	}
	st := s.stages[k]
	n := x - s.before[k]
	// Within the stage, arrivals so far are N(t) = b·t + a·t² with b the stage's start
	// rate and a = (target−b)/(2·duration); solve N(t) = n in its cancellation-free form.
	b := s.from[k]
	a := (st.Target - b) / (2 * st.Duration.Seconds())
	den := b + math.Sqrt(math.Max(0, b*b+4*a*n))
	var sec float64
	if n > 0 && den > 0 {
		sec = 2 * n / den
	}
	t := s.offset[k] + time.Duration(sec*float64(time.Second))
	return min(t, s.offset[k]+st.Duration), true
}
