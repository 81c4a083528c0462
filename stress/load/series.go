package load

import (
	"sync"
	"time"
)

// series keeps the per-second counts and latency percentiles. A second's histogram (two
// significant digits, 14 KB) lives until the second is two seconds old, then only its
// percentiles stay, so memory grows by a few dozen bytes a second however long the run.
type series struct {
	mu   sync.Mutex
	t0   time.Time
	secs []*second
}

type second struct {
	out  Second
	hist *Histogram // nil once finalized
}

// at returns the second holding t, growing the series; the caller holds mu.
func (s *series) at(t time.Time) *second {
	k := max(int(t.Sub(s.t0)/time.Second), 0)
	for len(s.secs) <= k {
		n := len(s.secs)
		s.secs = append(s.secs, &second{out: Second{At: time.Duration(n) * time.Second}, hist: newHistogram(coarseBits)})
	}
	return s.secs[k]
}

// start counts an iteration started at t.
func (s *series) start(t time.Time) {
	s.mu.Lock()
	s.at(t).out.Started++
	s.mu.Unlock()
}

// done counts a request that ended at t. A request ending in a finalized second (it took
// the recorder two seconds to get here) is counted, but not in that second's percentiles.
func (s *series) done(t time.Time, latency time.Duration, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sec := s.at(t)
	if ok {
		sec.out.OK++
	} else {
		sec.out.Errors++
	}
	if sec.hist != nil {
		sec.hist.Record(latency)
	}
}

// finalize turns the seconds before second k into percentiles and frees their histograms.
func (s *series) finalize(k int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := 0; i < k && i < len(s.secs); i++ {
		if sec := s.secs[i]; sec.hist != nil {
			sec.fill()
			sec.hist = nil
		}
	}
}

func (sec *second) fill() {
	q := sec.hist.Quantiles(0.5, 0.9, 0.99, 0.999)
	sec.out.P50, sec.out.P90, sec.out.P99, sec.out.P999 = q[0], q[1], q[2], q[3]
}

// get returns second k so far (zero when the run has not reached it).
func (s *series) get(k int) Second {
	s.mu.Lock()
	defer s.mu.Unlock()
	if k < 0 || k >= len(s.secs) {
		return Second{At: time.Duration(max(k, 0)) * time.Second}
	}
	sec := s.secs[k]
	if sec.hist != nil {
		sec.fill()
	}
	return sec.out
}

// all returns every second; call finalize first.
func (s *series) all() []Second {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Second, len(s.secs))
	for i, sec := range s.secs {
		out[i] = sec.out
	}
	return out
}
