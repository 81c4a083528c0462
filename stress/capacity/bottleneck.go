package capacity

import (
	"fmt"
	"slices"
	"time"
)

// Edge is the service label of the BFF, the edge every request crosses: its latency
// includes every inner service's, so it is named the bottleneck only when no inner
// service explains the rise.
const Edge = "bff"

// MinGrowth is the p99 growth below which no service is called a bottleneck.
const MinGrowth = 1.5

// Bottleneck names the service that limits throughput, comparing the last step with the
// first (both must have service numbers):
//
//  1. Overload first: the service that shed or failed the most requests per second in the
//     last step, when that is more than in the first step. An inner service is preferred
//     to the edge when both did.
//  2. Otherwise latency: the service whose own server-side p99 grew the most from the
//     first step to the last (at least MinGrowth-fold), again preferring an inner service
//     that grew MinGrowth-fold to the edge.
//  3. Otherwise "unknown": no service's numbers moved, so the limit is elsewhere (often the
//     load generator, or a machine both share).
func Bottleneck(steps []Step) (name, why string) {
	var first, last *Step
	for i := range steps {
		if len(steps[i].Services) == 0 {
			continue
		}
		if first == nil {
			first = &steps[i]
		}
		last = &steps[i]
	}
	if first == nil || first == last {
		return "unknown (fewer than two steps with service metrics)", ""
	}
	base := map[string]ServiceStep{}
	for _, s := range first.Services {
		base[s.Service] = s
	}
	perSec := func(st *Step, n float64) float64 {
		if st.Result == nil || st.Result.Elapsed <= 0 {
			return n
		}
		return n / st.Result.Elapsed.Seconds()
	}

	type cand struct {
		s            ServiceStep
		score        float64
		growth       float64
		from, to     time.Duration
		over, before float64
	}
	var overloaded, slower []cand
	for _, s := range last.Services {
		b := base[s.Service]
		over, before := perSec(last, s.Shed+s.Errors), perSec(first, b.Shed+b.Errors)
		if over > before && s.Shed+s.Errors > 0 {
			overloaded = append(overloaded, cand{s: s, score: over, over: over, before: before})
		}
		if s.P99 > 0 && s.Requests > 0 {
			from := max(b.P99, 100*time.Microsecond) // a floor, so an idle first step cannot dominate
			g := float64(s.P99) / float64(from)
			if g >= MinGrowth {
				slower = append(slower, cand{s: s, score: g, growth: g, from: b.P99, to: s.P99})
			}
		}
	}
	pick := func(cs []cand) (cand, bool) {
		slices.SortFunc(cs, func(a, b cand) int {
			if a.score != b.score {
				if a.score > b.score {
					return -1
				}
				return 1
			}
			if a.s.Service < b.s.Service {
				return -1
			}
			return 1
		})
		for _, c := range cs {
			if c.s.Service != Edge {
				return c, true
			}
		}
		if len(cs) > 0 {
			return cs[0], true
		}
		return cand{}, false
	}
	span := fmt.Sprintf("from %s/s to %s/s", fmtRate(first.Rate), fmtRate(last.Rate))
	if c, ok := pick(overloaded); ok {
		return c.s.Service, fmt.Sprintf("%s shed or failed %.1f requests/s at %s/s (%.1f/s at %s/s); its p99 %v",
			c.s.Service, c.over, fmtRate(last.Rate), c.before, fmtRate(first.Rate), c.s.P99.Round(100*time.Microsecond))
	}
	if c, ok := pick(slower); ok {
		return c.s.Service, fmt.Sprintf("%s's own p99 grew %.1f× %s (%v → %v)", c.s.Service, c.growth, span,
			c.from.Round(100*time.Microsecond), c.to.Round(100*time.Microsecond))
	}
	return fmt.Sprintf("unknown (no service's p99 grew %.1f× or shed requests %s: the limit is outside the services, e.g. the load generator or the machine)", MinGrowth, span), ""
}
