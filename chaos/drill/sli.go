package drill

import (
	"math"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/redline-dev/redline/ha/clock"
	"github.com/redline-dev/redline/sre/slo"
)

// counts are one SLI's cumulative counts at a sample: requests and server errors (error
// ratio), or requests and, per histogram bound, requests at most that long (p99).
type counts struct {
	total, bad float64
	bounds     []float64 // seconds, ascending
	le         []float64 // cumulative requests ≤ bounds[i]
}

// sample is one scrape of the metrics.
type sample struct {
	at      time.Time
	err     error
	slis    []counts
	metrics map[int]float64 // by index of a metric expectation
	of      map[int]float64 // the whole of a max_share expectation, by its index
	found   map[int]bool    // whether any series matched a metric expectation's labels
}

// sampler scrapes the SLIs' and metric expectations' counters and keeps every sample,
// oldest first, for windows to be differenced.
type sampler struct {
	g       prometheus.Gatherer
	clk     clock.Clock
	slis    []SLI
	lanes   []string // the lane label each SLI reads
	expect  []Expectation
	mu      sync.Mutex
	samples []sample
}

// take scrapes now and keeps the sample.
func (s *sampler) take() sample {
	mfs, err := s.g.Gather()
	smp := sample{at: s.clk.Now(), err: err}
	if err == nil {
		fs := slo.Families(mfs)
		for i, sli := range s.slis {
			smp.slis = append(smp.slis, countsOf(fs, sli, s.lanes[i]))
		}
		smp.metrics, smp.of, smp.found = map[int]float64{}, map[int]float64{}, map[int]bool{}
		for i, e := range s.expect {
			if e.Kind() == ExpectMetric {
				smp.metrics[i], smp.found[i] = metricValue(fs, e.Metric, e.Labels)
				if e.MaxShare > 0 {
					smp.of[i], _ = metricValue(fs, e.Metric, e.Of)
				}
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// After every sample taken at or before it: of two samples at one instant, the later
	// taken counts more.
	i := sort.Search(len(s.samples), func(i int) bool { return s.samples[i].at.After(smp.at) })
	s.samples = slices.Insert(s.samples, i, smp)
	return smp
}

// window returns the good samples that bound [from, to]: the last at or before from (else
// the first after it) and the last at or before to. ok is false when they are not two
// distinct samples.
func (s *sampler) window(from, to time.Time) (a, b sample, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ai, bi := -1, -1
	for i, x := range s.samples {
		if x.err != nil {
			continue
		}
		if !x.at.After(from) || ai < 0 {
			ai = i
		}
		if !x.at.After(to) {
			bi = i
		}
	}
	if ai < 0 || bi <= ai {
		return sample{}, sample{}, false
	}
	return s.samples[ai], s.samples[bi], true
}

// after returns the first good sample at or after t.
func (s *sampler) after(t time.Time) (sample, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, x := range s.samples {
		if x.err == nil && !x.at.Before(t) {
			return x, true
		}
	}
	return sample{}, false
}

// countsOf reads one SLI's counts through sre/slo's counting: an availability indicator
// for the error ratio; for the p99, a latency indicator at each bound of the histogram.
func countsOf(fs slo.FamilySet, s SLI, lane string) counts {
	ind := slo.Indicator{Kind: slo.Availability, Transport: s.Transport, Service: s.Service, Routes: s.Routes}
	if s.Kind() == ErrorRatio {
		c := fs.CountsLane(ind, lane)
		return counts{total: c.Total, bad: c.Bad}
	}
	var out counts
	ind.Kind = slo.Latency
	for _, b := range histogramBounds(fs[slo.DurationFamily(s.Transport)]) {
		ind.Threshold = time.Duration(math.Round(b * 1e9))
		if ind.Threshold.Seconds() != b {
			continue // a bound a Duration cannot hold exactly would match no bucket
		}
		c := fs.CountsLane(ind, lane)
		out.total = c.Total
		out.bounds = append(out.bounds, b)
		out.le = append(out.le, c.Total-c.Bad)
	}
	return out
}

// histogramBounds are the finite bucket bounds of a histogram family's first series.
func histogramBounds(mf *dto.MetricFamily) []float64 {
	if mf == nil || len(mf.GetMetric()) == 0 {
		return nil
	}
	var out []float64
	for _, b := range mf.GetMetric()[0].GetHistogram().GetBucket() {
		if !math.IsInf(b.GetUpperBound(), 1) {
			out = append(out, b.GetUpperBound())
		}
	}
	return out
}

// metricValue sums the series of family name whose labels include want: a counter's,
// gauge's or untyped value, a histogram's or summary's count.
func metricValue(fs slo.FamilySet, name string, want map[string]string) (sum float64, found bool) {
	mf := fs[name]
	if mf == nil {
		return 0, false
	}
	for _, m := range mf.GetMetric() {
		have := map[string]string{}
		for _, lp := range m.GetLabel() {
			have[lp.GetName()] = lp.GetValue()
		}
		match := true
		for k, v := range want {
			if have[k] != v {
				match = false
				break
			}
		}
		if !match {
			continue
		}
		found = true
		switch {
		case m.Counter != nil:
			sum += m.GetCounter().GetValue()
		case m.Gauge != nil:
			sum += m.GetGauge().GetValue()
		case m.Untyped != nil:
			sum += m.GetUntyped().GetValue()
		case m.Histogram != nil:
			sum += float64(m.GetHistogram().GetSampleCount())
		case m.Summary != nil:
			sum += float64(m.GetSummary().GetSampleCount())
		}
	}
	return sum, found
}

// value is an SLI over a window: V is a ratio or seconds; OK is false without requests (or
// when a counter went down: a restart inside the window).
type value struct {
	V        float64
	OK       bool
	Requests float64
	// Above is set for a p99 beyond the histogram's last bound: V is that bound.
	Above bool
}

// over computes SLI i between samples a and b.
func over(s SLI, a, b counts) value {
	total := b.total - a.total
	if total <= 0 || b.bad < a.bad {
		return value{}
	}
	if s.Kind() == ErrorRatio {
		return value{V: (b.bad - a.bad) / total, OK: true, Requests: total}
	}
	if len(a.bounds) != len(b.bounds) || len(b.bounds) == 0 {
		if len(a.bounds) == 0 && a.total == 0 { // the histogram appeared in the window
			a = counts{bounds: b.bounds, le: make([]float64, len(b.le))}
		} else {
			return value{}
		}
	}
	le := make([]float64, len(b.le))
	for i := range le {
		le[i] = b.le[i] - a.le[i]
	}
	v, above := quantile(0.99, b.bounds, le, total)
	return value{V: v, OK: true, Requests: total, Above: above}
}

// quantile interpolates quantile q linearly inside the bucket that holds it, as
// Prometheus' histogram_quantile does; a quantile beyond the last finite bound is that
// bound, with above set.
func quantile(q float64, bounds, le []float64, total float64) (v float64, above bool) {
	rank := q * total
	lower, below := 0.0, 0.0
	for i, c := range le {
		if c >= rank {
			if c-below <= 0 {
				return bounds[i], false
			}
			return lower + (bounds[i]-lower)*(rank-below)/(c-below), false
		}
		lower, below = bounds[i], c
	}
	return lower, true
}
