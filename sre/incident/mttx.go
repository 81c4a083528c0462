package incident

import (
	"context"
	"math"
	"slices"
	"time"
)

// Stage is one MTTx stage across incidents: how many incidents reached both its ends, and
// the 50th and 90th percentile of its duration.
type Stage struct {
	Name string        `json:"name"`
	From string        `json:"from"`
	To   string        `json:"to"`
	N    int           `json:"n"`
	P50  time.Duration `json:"p50"`
	P90  time.Duration `json:"p90"`
}

// MTTx is the time each stage of incident response takes, as percentiles, not means: one
// long incident should not hide that most are handled fast, or the reverse.
type MTTx struct {
	// Detect (MTTI): start of impact to triggered.
	Detect Stage `json:"mtti"`
	// Know (MTTK): triggered to acknowledged.
	Know Stage `json:"mttk"`
	// Fix (MTTF): acknowledged to mitigated.
	Fix Stage `json:"mttf"`
	// Verify (MTTV): mitigated to resolved.
	Verify Stage `json:"mttv"`
}

// Stages returns the four stages in order.
func (m MTTx) Stages() []Stage { return []Stage{m.Detect, m.Know, m.Fix, m.Verify} }

// ComputeMTTx computes MTTx over incidents. An incident counts toward a stage only when it
// has both of the stage's timestamps (one resolved straight from triggered adds to none of
// Know, Fix and Verify).
func ComputeMTTx(incs []Incident) MTTx {
	stage := func(name, from, to string, span func(*Incident) (time.Time, time.Time)) Stage {
		var ds []time.Duration
		for i := range incs {
			a, b := span(&incs[i])
			if !a.IsZero() && !b.IsZero() && !b.Before(a) {
				ds = append(ds, b.Sub(a))
			}
		}
		return Stage{Name: name, From: from, To: to, N: len(ds), P50: Percentile(ds, 50), P90: Percentile(ds, 90)}
	}
	return MTTx{
		Detect: stage("MTTI", "impact start", "triggered", func(i *Incident) (time.Time, time.Time) { return i.ImpactStart, i.TriggeredAt }),
		Know:   stage("MTTK", "triggered", "acknowledged", func(i *Incident) (time.Time, time.Time) { return i.TriggeredAt, i.AcknowledgedAt }),
		Fix:    stage("MTTF", "acknowledged", "mitigated", func(i *Incident) (time.Time, time.Time) { return i.AcknowledgedAt, i.MitigatedAt }),
		Verify: stage("MTTV", "mitigated", "resolved", func(i *Incident) (time.Time, time.Time) { return i.MitigatedAt, i.ResolvedAt }),
	}
}

// Percentile returns the p-th percentile (0 < p ≤ 100) of ds by the nearest-rank method:
// the smallest value with at least p% of the values at or below it. It is 0 for no values.
func Percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	return s[min(max(rank, 1), len(s))-1]
}

// MTTx computes MTTx over the incidents f selects (at most f.Limit, DefaultListLimit by
// default, the most recent).
func (s *Store) MTTx(ctx context.Context, f Filter) (MTTx, error) {
	incs, err := s.List(ctx, f)
	if err != nil {
		return MTTx{}, err
	}
	return ComputeMTTx(incs), nil
}
