package slo

import (
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/redline-dev/redline/ha/clock"
)

// sim drives one SLO of an evaluator on a fake clock with cumulative counts.
type sim struct {
	t    *testing.T
	e    *Evaluator
	clk  *clock.Fake
	name string
	c    Counts
}

func newSim(t *testing.T, s SLO, opts ...EvalOption) *sim {
	t.Helper()
	clk := clock.NewFake(time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC))
	e, err := NewEvaluator([]SLO{s}, append([]EvalOption{WithClock(clk)}, opts...)...)
	if err != nil {
		t.Fatalf("NewEvaluator: %v", err)
	}
	sm := &sim{t: t, e: e, clk: clk, name: s.Name}
	sm.record()
	return sm
}

func (s *sim) record() {
	s.t.Helper()
	if err := s.e.Record(s.name, s.c); err != nil {
		s.t.Fatalf("Record: %v", err)
	}
}

// run advances d in steps of step, adding bad and total events per step; it stops early
// when stop returns true and returns the time spent.
func (s *sim) run(d, step time.Duration, bad, total float64, stop func() bool) time.Duration {
	s.t.Helper()
	for spent := time.Duration(0); spent < d; {
		s.clk.Advance(step)
		spent += step
		s.c.Bad += bad
		s.c.Total += total
		s.record()
		if stop != nil && stop() {
			return spent
		}
	}
	return d
}

func (s *sim) status() Status {
	s.t.Helper()
	st, err := s.e.Status(s.name)
	if err != nil {
		s.t.Fatalf("Status: %v", err)
	}
	return st
}

func firing(st Status, sev Severity) bool {
	for _, a := range st.Firing {
		if a.Severity == sev {
			return true
		}
	}
	return false
}

func testSLO(objective float64, period time.Duration, opts ...Option) SLO {
	return AvailabilitySLO("note", "/note.v1.Note/GetNote", objective, period, opts...)
}

// steady feeds 7 h of clean traffic at 100 requests per 5 s, so every page window (6 h at
// most) is full, as the workbook's numbers assume: with less history behind it, a window
// holds fewer good requests and an outage reaches its limit sooner.
func steady(s *sim) {
	s.run(6*time.Hour, time.Minute, 0, 1200, nil)
	s.run(time.Hour, fineRes, 0, 100, nil)
}

// TestFullOutagePages is the workbook case: with an hour of steady clean traffic behind it,
// a full outage reaches the 1h window's limit of 14.4 × budget after
// 14.4 × (1 − SLO) × 1 h (51.84 s at 99.9%), while the 5m window is past it at once.
func TestFullOutagePages(t *testing.T) {
	for _, tc := range []struct {
		objective float64
		period    time.Duration
		want      time.Duration
	}{
		{0.999, 30 * Day, 51840 * time.Millisecond},
		{0.999, 28 * Day, 48384 * time.Millisecond}, // factor 13.44
		{0.995, 30 * Day, 259200 * time.Millisecond},
	} {
		t.Run(FormatDuration(tc.period)+"-"+ftoa(tc.objective), func(t *testing.T) {
			s := newSim(t, testSLO(tc.objective, tc.period))
			steady(s)
			if st := s.status(); len(st.Firing) != 0 || st.BudgetRemaining != 1 {
				t.Fatalf("before the outage: firing %v, budget %v; want none, 1", st.Firing, st.BudgetRemaining)
			}
			outage := s.clk.Now()
			got := s.run(time.Hour, fineRes, 100, 100, func() bool { return firing(s.status(), Page) })
			if lo, hi := tc.want*9/10, tc.want*11/10; got < lo || got > hi {
				t.Fatalf("paged after %v; want %v ±10%% [%v, %v]", got, tc.want, lo, hi)
			}
			t.Logf("full outage against %v over %s paged after %v (workbook %v)", tc.objective, FormatDuration(tc.period), got, tc.want)
			// The page knows when the burn began: the outage's start, to one bucket.
			if a := s.status().Firing[0]; !a.ImpactStart.Equal(outage) {
				t.Fatalf("impact start = %v; want the outage's start %v (fired %v)", a.ImpactStart, outage, a.FiredAt)
			}
		})
	}
}

func ftoa(f float64) string { return time.Duration(f * 1e3).String() }

// TestSlowBurnTickets: a 2× burn is under every page factor (14.4, 6) and under the 1d/2h
// ticket's 3, so only the 3d/6h ticket fires, once the 3d window has averaged up to 1×:
// after 1.5 d of burning behind 3 clean days.
func TestSlowBurnTickets(t *testing.T) {
	s := newSim(t, testSLO(0.999, 30*Day))
	s.run(3*Day, time.Minute, 0, 1000, nil)
	var events []Alert
	got := s.run(3*Day, time.Minute, 2, 1000, func() bool {
		st := s.status()
		if firing(st, Page) {
			t.Fatalf("a 2x burn paged at %v", st.At)
		}
		return firing(st, Ticket)
	})
	if got < 35*time.Hour || got > 37*time.Hour {
		t.Fatalf("ticket after %v of a 2x burn; want about 36h", got)
	}
	s.run(Day, time.Minute, 2, 1000, func() bool { return firing(s.status(), Page) })
	events = s.e.Events()
	if len(events) != 1 || events[0].Severity != Ticket || events[0].Condition.Long != 3*Day {
		t.Fatalf("events = %+v; want one 3d ticket", events)
	}
	if r := s.status().BudgetRemaining; r >= 1 || r <= 0 {
		t.Fatalf("budget remaining after 2.5 d at 2x = %v; want in (0, 1)", r)
	}
}

func TestNoTrafficNoAlert(t *testing.T) {
	s := newSim(t, testSLO(0.999, 30*Day))
	s.run(4*Day, time.Minute, 0, 0, nil)
	st := s.status()
	if len(st.Firing) != 0 || len(s.e.Events()) != 0 {
		t.Fatalf("alerts with no traffic: %v", s.e.Events())
	}
	if st.BudgetRemaining != 1 || st.Period.ErrorRatio != 0 {
		t.Fatalf("budget with no traffic = %v, ratio %v; want 1, 0", st.BudgetRemaining, st.Period.ErrorRatio)
	}
}

// TestMinimumTraffic: one failing request a minute is a 100% error ratio, but the guard
// (100 requests) holds while a short window has fewer: the 5m and 30m windows never reach
// it, so there is no page; the 2h window does after 100 minutes, so the ticket fires then.
func TestMinimumTraffic(t *testing.T) {
	s := newSim(t, testSLO(0.999, 30*Day, WithMinRequests(100)))
	got := s.run(6*time.Hour, time.Minute, 1, 1, func() bool {
		st := s.status()
		if firing(st, Page) {
			t.Fatalf("paged on %v requests", st.Windows)
		}
		return firing(st, Ticket)
	})
	if got != 100*time.Minute {
		t.Fatalf("ticket after %v; want 100m (the 2h window holding 100 requests)", got)
	}
}

// TestRecoveryResets: after an outage every alert resolves within its short window of the
// recovery, since the short window is what drops below the limit first.
func TestRecoveryResets(t *testing.T) {
	s := newSim(t, testSLO(0.999, 30*Day))
	steady(s)
	s.run(10*time.Minute, fineRes, 100, 100, nil)
	recovered := s.clk.Now()
	if st := s.status(); !firing(st, Page) || !firing(st, Ticket) {
		t.Fatalf("after 10 min of outage firing = %+v; want page and ticket", st.Firing)
	}
	s.run(7*time.Hour, fineRes, 0, 100, nil)
	if st := s.status(); len(st.Firing) != 0 {
		t.Fatalf("still firing 7h after recovery: %+v", st.Firing)
	}
	resolved := 0
	for _, a := range s.e.Events() {
		if a.State != Resolved {
			continue
		}
		resolved++
		if took := a.ResolvedAt.Sub(recovered); took > a.Condition.Short {
			t.Errorf("%s %s/%s resolved %v after recovery; want within %v", a.Severity,
				FormatDuration(a.Condition.Long), FormatDuration(a.Condition.Short), took, a.Condition.Short)
		}
	}
	if resolved != 4 {
		t.Fatalf("resolved %d alerts; want 4: %+v", resolved, s.e.Events())
	}
}

// TestWeightedByTraffic: the period ratio is Σbad/Σtotal, not the mean of per-bucket ratios
// (which would be 0.5 here).
func TestWeightedByTraffic(t *testing.T) {
	s := newSim(t, testSLO(0.999, 30*Day))
	s.run(time.Hour, time.Minute, 0, 1000/60.0, nil)
	s.run(time.Hour, time.Minute, 10/60.0, 10/60.0, nil)
	st := s.status()
	want := 10.0 / 1010
	if math.Abs(st.Period.ErrorRatio-want) > 1e-9 {
		t.Fatalf("period error ratio = %v; want %v", st.Period.ErrorRatio, want)
	}
	if math.Abs(st.BudgetRemaining-(1-want/0.001)) > 1e-6 {
		t.Fatalf("budget remaining = %v; want %v", st.BudgetRemaining, 1-want/0.001)
	}
}

func TestCounterReset(t *testing.T) {
	s := newSim(t, testSLO(0.999, 30*Day))
	s.run(10*time.Minute, time.Minute, 0, 100, nil)
	s.c = Counts{Bad: 5, Total: 50} // the process restarted
	s.clk.Advance(time.Minute)
	s.record()
	st := s.status()
	if st.Period.Total != 1050 || st.Period.Bad != 5 {
		t.Fatalf("after a restart period = %v/%v; want 5/1050", st.Period.Bad, st.Period.Total)
	}
}

func TestTimeslices(t *testing.T) {
	s := newSim(t, testSLO(0.95, 30*Day, WithTimeslices(0.9, time.Minute)))
	s.run(8*time.Minute, time.Minute, 0, 100, nil)
	s.run(2*time.Minute, time.Minute, 50, 100, nil)
	s.clk.Advance(time.Minute) // complete the last slice
	st := s.status()
	if st.Period.Bad != 2 || st.Period.Total != 10 {
		t.Fatalf("slices = %v bad of %v; want 2 of 10", st.Period.Bad, st.Period.Total)
	}
	if want := 1 - 0.2/0.05; math.Abs(st.BudgetRemaining-want) > 1e-9 {
		t.Fatalf("budget remaining = %v; want %v", st.BudgetRemaining, want)
	}
}

func TestCalendarMonth(t *testing.T) {
	s := newSim(t, testSLO(0.999, 30*Day, WithCalendar("month")))
	s.clk.Set(time.Date(2026, 3, 31, 22, 0, 0, 0, time.UTC))
	s.record()
	s.run(time.Hour, time.Minute, 1, 100, nil) // March
	s.run(2*time.Hour, time.Minute, 0, 100, nil)
	st := s.status()
	// A sample at t holds the events of (t − step, t]: April's are those at 00:00 to 01:00.
	if st.Period.Bad != 0 || st.Period.Total != 6100 || st.BudgetRemaining != 1 {
		t.Fatalf("April so far = %v/%v (budget %v); want 0/6100, 1", st.Period.Bad, st.Period.Total, st.BudgetRemaining)
	}
}

func TestUnknownSLO(t *testing.T) {
	e, err := NewEvaluator(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Record("nope", Counts{}); !errors.Is(err, ErrUnknownSLO) {
		t.Fatalf("Record(unknown) = %v; want ErrUnknownSLO", err)
	}
	if _, err := e.Status("nope"); !errors.Is(err, ErrUnknownSLO) {
		t.Fatalf("Status(unknown) = %v; want ErrUnknownSLO", err)
	}
}

func TestNotify(t *testing.T) {
	var got []Alert
	s := newSim(t, testSLO(0.999, 30*Day), WithNotify(func(a Alert) { got = append(got, a) }))
	steady(s)
	s.run(time.Minute, fineRes, 100, 100, nil)
	// With only 7 h of history the 3d/6h ticket fires too; the 1h page must be there.
	paged := false
	for _, a := range got {
		paged = paged || (a.State == Firing && a.Severity == Page && a.Condition.Long == time.Hour)
	}
	if !paged {
		t.Fatalf("notified %+v; want the 1h page among them", got)
	}
}

// BenchmarkSample is the evaluator's periodic cost: one gather of a registry holding the
// RED series of 13 services (6 routes, 3 codes, 2 lanes each) and the update of the 26
// default SLOs, as `redline up` does every 5 s.
func BenchmarkSample(b *testing.B) {
	reg := prometheus.NewRegistry()
	labels := []string{"service", "route", "method", "code", "lane"}
	req := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "redline_grpc_server_requests_total"}, labels)
	dur := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "redline_grpc_server_duration_seconds",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}}, labels)
	reg.MustRegister(req, dur)
	slos := Defaults()
	for _, s := range slos {
		for r := range 6 {
			route := fmt.Sprintf("/%s.v1.X/Method%d", s.Service, r)
			if r < len(s.Indicator.Routes) {
				route = s.Indicator.Routes[r]
			}
			for _, code := range []string{"OK", "Internal", "NotFound"} {
				for _, lane := range []string{"", "stress-1"} {
					req.WithLabelValues(s.Service, route, "POST", code, lane).Add(100)
					dur.WithLabelValues(s.Service, route, "POST", code, lane).Observe(0.01)
				}
			}
		}
	}
	clk := clock.NewFake(time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC))
	e, err := NewEvaluator(slos, WithClock(clk))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		clk.Advance(fineRes)
		if err := e.Sample(reg); err != nil {
			b.Fatal(err)
		}
	}
}

// TestNoisyBurnStartsWhereItStarted: a burn of 1.8% errors on average, every fourth 5 s
// bucket clean, pages after many minutes; the page's impact start is the burn's start, not
// the last clean bucket before the page.
func TestNoisyBurnStartsWhereItStarted(t *testing.T) {
	s := newSim(t, testSLO(0.999, 30*Day))
	steady(s)
	burn := s.clk.Now()
	for i := 0; ; i++ {
		bad := 2.4
		if i%4 == 3 {
			bad = 0
		}
		s.run(fineRes, fineRes, bad, 100, nil)
		if st := s.status(); firing(st, Page) {
			a := st.Firing[0]
			if a.FiredAt.Sub(burn) < 10*time.Minute {
				t.Fatalf("paged after %v; the scenario wants a long burn", a.FiredAt.Sub(burn))
			}
			if !a.ImpactStart.Equal(burn) {
				t.Fatalf("impact start = %v; want the burn's start %v (fired %v)", a.ImpactStart, burn, a.FiredAt)
			}
			return
		}
		if i > 10000 {
			t.Fatal("never paged")
		}
	}
}
