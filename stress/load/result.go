package load

import (
	"math"
	"time"
)

// Result is what a run measured. Latency is measured from each iteration's intended send
// time (its first request; a later request of a journey from when it was sent, right after
// the one before it), so a stalled server shows in it in full; Service is measured from the
// actual send, as a closed-loop tool would. The difference is the coordinated omission
// corrected.
type Result struct {
	Start   time.Time     // the schedule's time zero
	Elapsed time.Duration // until the last iteration finished

	// TargetRate is the schedule's mean rate; ActualRate is iterations started per second
	// over the schedule (or, when the generator fell behind, until the last start).
	TargetRate, ActualRate float64

	Planned   int64  // iterations the schedule holds
	Started   uint64 // iterations begun
	Delayed   uint64 // iterations that waited for a free worker: MaxInFlight were running
	Dropped   uint64 // iterations due before the end that never started: MaxInFlight stayed full
	Canceled  uint64 // requests cut short by an abort, not counted as requests
	MaxActive int64  // the most iterations in flight at once

	Requests, OK, Errors uint64

	Latency Summary // every request, errors included, from its intended time
	Service Summary // every request, from its actual send
	Lag     Summary // iteration start minus intended time: the generator's own delay

	// Spectrum and ServiceSpectrum are the percentile spectra of Latency and Service, for
	// a distribution plot.
	Spectrum, ServiceSpectrum []Point

	Steps      []StepResult
	ErrorKinds []ErrorCount
	Series     []Second

	Thresholds []ThresholdResult
	// Aborted names the threshold that stopped the run, or is "canceled" when the caller's
	// ctx ended; empty when the run went to the end.
	Aborted string
}

// Passed reports whether the run went to the end with every threshold held.
func (r *Result) Passed() bool {
	if r.Aborted != "" {
		return false
	}
	for _, t := range r.Thresholds {
		if !t.Pass {
			return false
		}
	}
	return true
}

// ErrorRate is the share of requests that failed, counting dropped iterations as failed.
func (r *Result) ErrorRate() float64 {
	n := r.Requests + r.Dropped
	if n == 0 {
		return 0
	}
	return float64(r.Errors+r.Dropped) / float64(n)
}

// Summary is a histogram's headline numbers.
type Summary struct {
	Count                           uint64
	Min, Mean, Max                  time.Duration
	P50, P90, P95, P99, P999, P9999 time.Duration
}

func summarize(h *Histogram) Summary {
	q := h.Quantiles(0.5, 0.9, 0.95, 0.99, 0.999, 0.9999)
	return Summary{Count: h.Count(), Min: h.Min(), Mean: h.Mean(), Max: h.Max(),
		P50: q[0], P90: q[1], P95: q[2], P99: q[3], P999: q[4], P9999: q[5]}
}

// Point is one point of a percentile spectrum: Percentile (0–100) of the values are at
// most Value.
type Point struct {
	Percentile float64
	Value      time.Duration
}

// spectrum samples h at percentiles spaced evenly on HdrHistogram's log axis
// 1/(1−p): ten points per decade, from p0 up to the last percentile the count resolves.
func spectrum(h *Histogram) []Point {
	n := h.Count()
	if n == 0 {
		return nil
	}
	var qs []float64
	for k := 0; ; k++ {
		q := 1 - math.Pow(10, -float64(k)/10)
		if 1-q < 1/float64(n) || k > 70 {
			break
		}
		qs = append(qs, q)
	}
	qs = append(qs, 1)
	vals := h.Quantiles(qs...)
	out := make([]Point, len(qs))
	for i := range qs {
		out[i] = Point{Percentile: 100 * qs[i], Value: vals[i]}
	}
	return out
}

// StepResult is one named step (a request of a journey, or the one request of a plain
// HTTP run).
type StepResult struct {
	Name                 string
	Requests, OK, Errors uint64
	Latency, Service     Summary
	// Statuses counts responses by HTTP status; 0 counts requests with no response.
	Statuses map[int]uint64
}

// ErrorCount is one row of the errors table: failures of one step, kind, status and
// reason.
type ErrorCount struct {
	Step    string
	Kind    string
	Status  int
	Reason  string
	Count   uint64
	Example string
}

// Second is one second of the run, by completion time.
type Second struct {
	At                  time.Duration // from the start
	Started             uint64        // iterations started in this second
	OK, Errors          uint64        // requests that ended in this second
	P50, P90, P99, P999 time.Duration // latency of those requests
}

// Snapshot is the live progress report, given to WithProgress once a second.
type Snapshot struct {
	Elapsed    time.Duration
	TargetRate float64 // what the schedule asks for now
	ActualRate float64 // iterations started in the last full second
	InFlight   int64
	Requests   uint64
	OK, Errors uint64
	Dropped    uint64
	P50, P99   time.Duration // requests that ended in the last full second
}
