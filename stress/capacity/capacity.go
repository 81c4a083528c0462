// Package capacity finds how much load a system sustains: Search runs the load generator
// at a rising constant rate, one step after another (×1.15 by default, the 10–15% steps
// practice recommends), until the p99 or error-rate thresholds break. It reports the
// maximum sustainable rate, the knee of the latency curve and, from the services' own
// metrics (the admin endpoint's /metrics), the bottleneck service.
//
//	rep, err := capacity.Search(ctx, capacity.Config{
//		Start: 100, MaxRate: 5000,
//		Step: func(ctx context.Context, rate float64) (*load.Result, error) {
//			s, _ := load.Constant(rate, 30*time.Second)
//			return load.Run(ctx, s, doer, load.WithThresholds(load.LatencyBelow(99, 500*time.Millisecond)))
//		},
//		Observe: func(ctx context.Context) (capacity.Metrics, error) {
//			return capacity.FetchMetrics(ctx, http.DefaultClient, "http://127.0.0.1:9090", "")
//		},
//	})
//	// rep.MaxSustainable, rep.Knee, rep.Bottleneck
//
// Definitions, so the numbers mean one thing:
//   - A step passes when its run went to the end with every threshold held and the
//     generator started at least 95% of the iterations asked (otherwise the generator, not
//     the system, was measured, and the search stops saying so).
//   - MaxSustainable is the highest rate of a passing step below the first failing one.
//   - The knee is the first step whose p99 is more than KneeFactor (2) times the lowest p99
//     of the steps before it: where latency starts to climb, usually below the breaking
//     point.
//   - The bottleneck is read from per-step deltas of the services' server metrics; see
//     Bottleneck.
package capacity

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/redline-dev/redline/stress/load"
)

// KneeFactor is how far p99 must rise over the lowest p99 before it to mark the knee.
const KneeFactor = 2

// MinGeneratorShare is the share of the asked iterations the generator must start for a
// step to count.
const MinGeneratorShare = 0.95

// Config configures Search.
type Config struct {
	// Start is the first step's rate (iterations per second); Factor multiplies it each
	// step (default 1.15); MaxRate ends the search (default 100× Start).
	Start, Factor, MaxRate float64
	// Step runs one step at a constant rate, with the thresholds that decide it.
	Step func(ctx context.Context, rate float64) (*load.Result, error)
	// Observe, when set, reads the services' metrics before the first step and after
	// each one, for the bottleneck. Its errors are reported, not fatal.
	Observe func(ctx context.Context) (Metrics, error)
	// OnStep, when set, is told about each step as it ends.
	OnStep func(Step)
}

// Step is one rate step.
type Step struct {
	Rate   float64
	Result *load.Result
	Pass   bool
	// Why says why a step failed: the threshold that broke, or the generator's shortfall.
	Why string
	// Services are the server-side numbers of this step, by service; empty when Observe
	// is unset or failed.
	Services []ServiceStep
}

// Report is what a search found.
type Report struct {
	Steps []Step
	// MaxSustainable is the highest passing rate before the first failure; 0 when the
	// first step failed.
	MaxSustainable float64
	// Knee is the rate of the knee step, 0 when p99 never rose KneeFactor-fold.
	Knee float64
	// StoppedBy says why the search ended.
	StoppedBy string
	// Bottleneck names the service that limits throughput, or "unknown (...)" with why.
	Bottleneck string
	// BottleneckWhy gives the numbers behind Bottleneck.
	BottleneckWhy string
}

// Search steps the rate up from cfg.Start until a step fails or the rate passes MaxRate.
// It returns an error for a bad Config or when a step could not run at all.
func Search(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.Factor == 0 {
		cfg.Factor = 1.15
	}
	if cfg.MaxRate == 0 {
		cfg.MaxRate = 100 * cfg.Start
	}
	switch {
	case !(cfg.Start > 0) || math.IsInf(cfg.Start, 0):
		return nil, fmt.Errorf("capacity: the start rate must be positive, got %v", cfg.Start)
	case !(cfg.Factor > 1) || math.IsInf(cfg.Factor, 0):
		return nil, fmt.Errorf("capacity: the step factor must be above 1, got %v", cfg.Factor)
	case cfg.MaxRate < cfg.Start:
		return nil, fmt.Errorf("capacity: the max rate %v is below the start rate %v", cfg.MaxRate, cfg.Start)
	case cfg.Step == nil:
		return nil, errors.New("capacity: no Step function")
	}
	rep := &Report{}
	var before Metrics
	var observeErr error
	observe := func() Metrics {
		if cfg.Observe == nil {
			return nil
		}
		m, err := cfg.Observe(ctx)
		if err != nil {
			observeErr = err
			return nil
		}
		return m
	}
	before = observe()
	for rate := cfg.Start; rate <= cfg.MaxRate*(1+1e-9); rate = math.Round(rate*cfg.Factor*100) / 100 {
		res, err := cfg.Step(ctx, rate)
		if err != nil {
			return rep, fmt.Errorf("capacity: step at %.0f/s: %w", rate, err)
		}
		st := Step{Rate: rate, Result: res, Pass: res.Passed()}
		switch {
		case res.Aborted != "":
			st.Why = "aborted: " + res.Aborted
			for _, t := range res.Thresholds {
				if t.Name == res.Aborted {
					st.Why = fmt.Sprintf("%s broken (%s)", t.Name, t.Observed)
				}
			}
		case !st.Pass:
			for _, t := range res.Thresholds {
				if !t.Pass {
					st.Why = fmt.Sprintf("%s broken (%s)", t.Name, t.Observed)
					break
				}
			}
		case float64(res.Started) < MinGeneratorShare*float64(res.Planned):
			st.Pass = false
			st.Why = fmt.Sprintf("the load generator started only %d of %d iterations: it, not the system, is the limit here", res.Started, res.Planned)
		}
		after := observe()
		if before != nil && after != nil {
			st.Services = Delta(before, after)
		}
		before = after
		rep.Steps = append(rep.Steps, st)
		if cfg.OnStep != nil {
			cfg.OnStep(st)
		}
		if !st.Pass {
			rep.StoppedBy = fmt.Sprintf("the step at %s/s failed: %s", fmtRate(rate), st.Why)
			break
		}
		rep.MaxSustainable = rate
		if ctx.Err() != nil {
			rep.StoppedBy = "canceled"
			break
		}
	}
	if rep.StoppedBy == "" {
		rep.StoppedBy = fmt.Sprintf("the max rate %s/s was reached with every threshold held", fmtRate(cfg.MaxRate))
	}
	rep.Knee = knee(rep.Steps)
	switch {
	case cfg.Observe == nil:
		rep.Bottleneck = "unknown (no metrics endpoint given)"
	case observeErr != nil:
		rep.Bottleneck = fmt.Sprintf("unknown (admin endpoint unreachable: %v)", observeErr)
	default:
		rep.Bottleneck, rep.BottleneckWhy = Bottleneck(rep.Steps)
	}
	return rep, nil
}

// knee returns the rate of the first step whose p99 exceeds KneeFactor times the lowest
// p99 before it, or 0.
func knee(steps []Step) float64 {
	low := time.Duration(math.MaxInt64)
	for i, s := range steps {
		p99 := s.Result.Latency.P99
		if i > 0 && float64(p99) > KneeFactor*float64(low) {
			return s.Rate
		}
		low = min(low, p99)
	}
	return 0
}

func fmtRate(r float64) string {
	if r == math.Trunc(r) {
		return fmt.Sprintf("%.0f", r)
	}
	return fmt.Sprintf("%.2f", r)
}
