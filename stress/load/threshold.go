package load

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// A Threshold is a condition a run must hold. The engine checks every threshold once a
// second after the warm-up (WithWarmup) and once at the end; the first one broken aborts
// the run, and Result.Aborted names it.
type Threshold struct {
	// Name says what must hold, e.g. "p99 <= 500ms".
	Name string
	// eval returns what it observed and whether the condition holds.
	eval func(ctx context.Context, v view) (observed string, ok bool)
}

// ThresholdResult is a threshold's verdict.
type ThresholdResult struct {
	Name     string
	Observed string
	Pass     bool
	// At is when it was found broken, from the start (0 when it passed).
	At time.Duration
}

// view is what thresholds read: the run's counters and histogram so far.
type view struct {
	requests, errors, dropped uint64
	latency                   *Histogram
}

// LatencyBelow holds while the percentile (0–100, e.g. 99 or 99.9) of every request's
// latency so far, errors included, is at most limit.
func LatencyBelow(percentile float64, limit time.Duration) Threshold {
	return Threshold{
		Name: fmt.Sprintf("p%s <= %v", strconv.FormatFloat(percentile, 'f', -1, 64), limit),
		eval: func(_ context.Context, v view) (string, bool) {
			if v.latency.Count() == 0 {
				return "no requests yet", true
			}
			got := v.latency.Quantile(percentile / 100)
			return got.Round(10 * time.Microsecond).String(), got <= limit
		},
	}
}

// ErrorRateBelow holds while the share of failed requests so far (dropped iterations
// count as failed) is at most limit (0.01 is 1%).
func ErrorRateBelow(limit float64) Threshold {
	return Threshold{
		Name: fmt.Sprintf("error rate <= %s%%", strconv.FormatFloat(100*limit, 'f', -1, 64)),
		eval: func(_ context.Context, v view) (string, bool) {
			n := v.requests + v.dropped
			if n == 0 {
				return "no requests yet", true
			}
			rate := float64(v.errors+v.dropped) / float64(n)
			return fmt.Sprintf("%.3f%% (%d of %d)", 100*rate, v.errors+v.dropped, n), rate <= limit
		},
	}
}

// CheckTimeout bounds each call of a Check threshold's function.
const CheckTimeout = 2 * time.Second

// Check holds while f returns nil: a hook for outside health, such as the baseline's SLO
// burn rate. f is called once a second after the warm-up and at the end, each time within
// CheckTimeout; an error, a timeout included, breaks the threshold, so a stress test
// stops when it cannot tell whether production is healthy.
func Check(name string, f func(ctx context.Context) error) Threshold {
	return Threshold{
		Name: name,
		eval: func(ctx context.Context, _ view) (string, bool) {
			ctx, cancel := context.WithTimeout(ctx, CheckTimeout)
			defer cancel()
			if err := f(ctx); err != nil {
				return err.Error(), false
			}
			return "ok", true
		},
	}
}
