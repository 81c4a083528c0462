package breaker

import (
	"testing"
	"time"

	"github.com/redline-dev/redline/ha/sim"
	"github.com/redline-dev/redline/kit/meta"
)

// outageRun drives one Breaker with an open-model client (Poisson arrivals at rate rps) of
// mixed criticality against a backend with LogNormal(5 ms) service time that fails every
// request between failAt and healAt. It records, per 100 ms bin, calls and local rejections.
type outageRun struct {
	bin            time.Duration
	calls, rejects []int
	sent           int // requests that reached the backend
}

func runOutage(t *testing.T, b *Breaker, rps float64, failAt, healAt, end time.Duration, crit func(i int) meta.Criticality) *outageRun {
	t.Helper()
	s := sim.New(7)
	r := &outageRun{bin: 100 * time.Millisecond}
	nbins := int(end / r.bin)
	r.calls, r.rejects = make([]int, nbins), make([]int, nbins)
	service := sim.LogNormal{Median: 5 * time.Millisecond, Sigma: 0.3}
	arrivals := sim.Exp{Mean: time.Duration(float64(time.Second) / rps)}
	i := 0
	var arrive func()
	arrive = func() {
		now := s.Elapsed()
		bin := int(now / r.bin)
		c := meta.Critical
		if crit != nil {
			c = crit(i)
		}
		i++
		r.calls[bin]++
		d := b.Allow(s.Now(), c)
		if !d.Allowed() {
			r.rejects[bin]++
		} else {
			r.sent++
			failing := now >= failAt && now < healAt
			s.After(service.Sample(s.Rand()), func() { b.Mark(s.Now(), d, !failing) })
		}
		if next := arrivals.Sample(s.Rand()); now+next < end {
			s.After(next, arrive)
		}
	}
	s.After(0, arrive)
	s.Run(sim.Start.Add(end+time.Second), 10_000_000)
	return r
}

// rejectRatio is rejects/calls over [from, to).
func (r *outageRun) rejectRatio(from, to time.Duration) float64 {
	var c, rej int
	for i := int(from / r.bin); i < int(to/r.bin) && i < len(r.calls); i++ {
		c += r.calls[i]
		rej += r.rejects[i]
	}
	if c == 0 {
		return 0
	}
	return float64(rej) / float64(c)
}

// firstBin returns the start of the first bin at or after from where ok(reject ratio)
// holds and keeps holding until to; -1 when none.
func (r *outageRun) firstBin(from, to time.Duration, ok func(ratio float64) bool) time.Duration {
	first := time.Duration(-1)
	for i := int(from / r.bin); i < int(to/r.bin); i++ {
		start := time.Duration(i) * r.bin
		if !ok(r.rejectRatio(start, start+r.bin)) {
			first = -1
			continue
		}
		if first < 0 {
			first = start
		}
	}
	return first
}

// TestSimOutage is the breaker target: at 1,000 rps, when the backend fails 100%,
// at least 90% of calls are rejected locally within 1 s; after it heals, full pass-through
// (at least 99% of the calls of every 100 ms window admitted) returns within 3 s.
func TestSimOutage(t *testing.T) {
	const (
		failAt = 3 * time.Second
		healAt = 8 * time.Second
		end    = 14 * time.Second
	)
	tests := []struct {
		name   string
		opts   []Option
		detect time.Duration // 100 ms bins reject ≥ 90% from failAt+detect on
		heal   time.Duration // bins admit ≥ 99% from healAt+heal on; 0 = must not
	}{
		{name: "defaults", detect: time.Second, heal: 3 * time.Second},
		// The control: the plain SRE throttle without probes recovers only as fast as the
		// few calls it admits can refill the window with accepts.
		{name: "no probes (control)", opts: []Option{WithProbeInterval(0)}, detect: time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := New(append([]Option{WithSeed(1)}, tt.opts...)...)
			r := runOutage(t, b, 1000, failAt, healAt, end, nil)
			before := r.rejectRatio(time.Second, failAt)
			during := r.rejectRatio(failAt+time.Second, failAt+2*time.Second)
			detect := r.firstBin(failAt, healAt, func(x float64) bool { return x >= 0.9 }) - failAt
			heal := r.firstBin(healAt, end, func(x float64) bool { return x <= 0.01 }) - healAt
			t.Logf("reject ratio: healthy %.4f, [fail+1s, fail+2s) %.4f, whole outage %.4f; "+
				"≥90%% rejected from fail+%v; ≥99%% admitted from heal+%v; backend got %d of %d calls",
				before, during, r.rejectRatio(failAt, healAt), detect, heal, r.sent, sum(r.calls))
			if before > 0 {
				t.Errorf("healthy backend: reject ratio %.4f; want 0", before)
			}
			if during < 0.9 {
				t.Errorf("reject ratio over [fail+1s, fail+2s) = %.4f; want ≥ 0.90", during)
			}
			if detect < 0 || detect > tt.detect {
				t.Errorf("100 ms windows reject ≥ 90%% from fail+%v on; want ≤ fail+%v", detect, tt.detect)
			}
			switch {
			case tt.heal > 0 && (heal < 0 || heal > tt.heal):
				t.Errorf("100 ms windows admit ≥ 99%% from heal+%v on; want ≤ heal+%v", heal, tt.heal)
			case tt.heal == 0 && heal >= 0 && heal <= 3*time.Second:
				t.Errorf("control recovered at heal+%v; the probes are not what the target rests on", heal)
			}
		})
	}
}

// TestSimCriticality: against a backend that is failing, CRITICAL_PLUS is rejected least
// and SHEDDABLE most.
func TestSimCriticality(t *testing.T) {
	levels := []meta.Criticality{meta.CriticalPlus, meta.Critical, meta.SheddablePlus, meta.Sheddable}
	// Four interleaved runs of the same arrival stream, one per level, would measure four
	// different windows; one stream with the levels in turn shares one window, as in life.
	b := New(WithSeed(3))
	const failAt, end = time.Second, 4 * time.Second
	s := sim.New(11)
	calls, rejects := map[meta.Criticality]int{}, map[meta.Criticality]int{}
	i := 0
	s.Every(time.Millisecond, sim.Start.Add(end), func() {
		c := levels[i%len(levels)]
		i++
		d := b.Allow(s.Now(), c)
		if s.Elapsed() >= failAt+time.Second {
			calls[c]++
			if !d.Allowed() {
				rejects[c]++
			}
		}
		if d.Allowed() {
			// 60% of requests fail: a backend at a fraction of its capacity.
			ok := s.Elapsed() < failAt || s.Rand().Float64() >= 0.6
			s.After(5*time.Millisecond, func() { b.Mark(s.Now(), d, ok) })
		}
	})
	s.Run(sim.Start.Add(end+time.Second), 1_000_000)
	prev := -1.0
	for _, c := range levels {
		ratio := float64(rejects[c]) / float64(calls[c])
		t.Logf("%s: rejected %.3f of %d", c, ratio, calls[c])
		if ratio <= prev {
			t.Errorf("%s rejected %.3f, no more than the level above (%.3f); want strictly more", c, ratio, prev)
		}
		prev = ratio
	}
}

func sum(xs []int) int {
	n := 0
	for _, x := range xs {
		n += x
	}
	return n
}
