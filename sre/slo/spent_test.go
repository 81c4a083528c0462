package slo

import (
	"errors"
	"math"
	"testing"
	"time"
)

func (s *sim) spent(from, to time.Time) float64 {
	s.t.Helper()
	got, err := s.e.Spent(s.name, from, to)
	if err != nil {
		s.t.Fatalf("Spent: %v", err)
	}
	return got
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-12*math.Max(1, math.Abs(b)) }

// TestSpentIncident: 2 h of 1000 requests per 5 s, then 10 minutes at 1% errors, against
// 99.9% over 30 days. The incident's 1200 bad requests spend 1200 ÷ (0.001 × 1,560,000) of
// the budget; an hour later the 5 s ring still tells its minutes apart, and days later the
// coarser rings still hold the whole of it.
func TestSpentIncident(t *testing.T) {
	s := newSim(t, testSLO(0.999, 30*Day))
	t0 := s.clk.Now()
	s.run(2*time.Hour, fineRes, 0, 1000, nil)
	start := s.clk.Now()
	s.run(10*time.Minute, fineRes, 10, 1000, nil)
	end := s.clk.Now()
	total := 1_560_000.0

	check := func(what string, from, to time.Time, want float64) {
		t.Helper()
		if got := s.spent(from, to); !near(got, want) {
			t.Errorf("%s: Spent(%s, %s) = %v; want %v", what, from.Sub(t0), to.Sub(t0), got, want)
		}
	}
	check("incident", start, end, 1200/(0.001*total))
	check("clean hour before", start.Add(-time.Hour), start, 0)
	check("incident's inner 8 minutes", start.Add(time.Minute), end.Add(-time.Minute), 960/(0.001*total))
	check("to in the future", start, end.Add(Day), 1200/(0.001*total))

	s.run(time.Hour, fineRes, 0, 1000, nil)
	total += 720_000
	check("clean hour after", end, s.clk.Now(), 0)
	check("an hour later, inner 8 minutes", start.Add(time.Minute), end.Add(-time.Minute), 960/(0.001*total))
	check("an hour later, incident", start, end, 1200/(0.001*total))

	s.run(4*Day, time.Minute, 0, 12000, nil) // past the 5 s ring, then past the 5 min one
	total += 4 * 1440 * 12000
	check("4 days later, incident", start, end, 1200/(0.001*total))
	check("4 days later, from before the period", t0.Add(-60*Day), s.clk.Now(), 1-s.status().BudgetRemaining)
	check("4 days later, clean day", end.Add(Day), end.Add(2*Day), 0)
}

// TestSpentRings: between the hour and the 4 days of TestSpentIncident, a query 3 h back
// reads the 5 min ring, which holds the incident whole but not its minutes apart.
func TestSpentRings(t *testing.T) {
	s := newSim(t, testSLO(0.999, 30*Day))
	s.run(2*time.Hour, fineRes, 0, 1000, nil)
	start := s.clk.Now()
	s.run(10*time.Minute, fineRes, 10, 1000, nil)
	end := s.clk.Now()
	s.run(3*time.Hour, time.Minute, 0, 12000, nil)
	total := 1_560_000 + 180*12000.0
	if got, want := s.spent(start, end), 1200/(0.001*total); !near(got, want) {
		t.Errorf("Spent(incident) = %v; want %v", got, want)
	}
	// On 5 min buckets, minutes 1 to 9 of the incident take its first two buckets.
	if got, fine := s.spent(start.Add(time.Minute), end.Add(-time.Minute)), 960/(0.001*total); got <= fine {
		t.Errorf("Spent(inner 8 minutes) 3 h later = %v; want more than the 5 s reading %v", got, fine)
	}
}

// TestSpentWindowsAgree: on the 5 s ring, the Spent of the last w is the w window's bad
// events ÷ (budget × period total), and that of the whole period is 1 − BudgetRemaining.
// (On the 5 min ring a window sums the 72 buckets that end it, 5h55m05s of samples for 6h,
// while Spent takes the 73 that [now − 6h, now] touches.)
func TestSpentWindowsAgree(t *testing.T) {
	s := newSim(t, testSLO(0.995, 30*Day))
	s.run(30*time.Hour, time.Minute, 3, 900, nil)
	s.run(3*time.Hour, fineRes, 1, 100, nil)
	st := s.status()
	now := s.clk.Now()
	for _, w := range st.Windows {
		if w.Window > fineSpan {
			continue
		}
		want := w.Bad / (0.005 * st.Period.Total)
		if got := s.spent(now.Add(-w.Window), now); !near(got, want) {
			t.Errorf("Spent(last %s) = %v; want %v", FormatDuration(w.Window), got, want)
		}
	}
	if got, want := s.spent(now.Add(-31*Day), now), 1-st.BudgetRemaining; !near(got, want) {
		t.Errorf("Spent(period) = %v; want 1 − budget remaining = %v", got, want)
	}
}

func TestSpentTimeslices(t *testing.T) {
	s := newSim(t, testSLO(0.95, 30*Day, WithTimeslices(0.9, time.Minute)))
	t0 := s.clk.Now()
	s.run(8*time.Minute, time.Minute, 0, 100, nil)
	s.run(2*time.Minute, time.Minute, 50, 100, nil)
	s.clk.Advance(time.Minute) // complete the last slice
	for _, tc := range []struct {
		from, to time.Duration
		want     float64
	}{
		{0, 8 * time.Minute, 0},
		{8 * time.Minute, 10 * time.Minute, 2 / (0.05 * 10)},
		{0, time.Hour, 2 / (0.05 * 10)},
		{9 * time.Minute, 9 * time.Minute, 1 / (0.05 * 10)},
	} {
		if got := s.spent(t0.Add(tc.from), t0.Add(tc.to)); !near(got, tc.want) {
			t.Errorf("Spent(%v, %v) = %v; want %v", tc.from, tc.to, got, tc.want)
		}
	}
}

func TestSpentNoTraffic(t *testing.T) {
	s := newSim(t, testSLO(0.999, 30*Day))
	s.run(time.Hour, fineRes, 0, 0, nil)
	if got := s.spent(s.clk.Now().Add(-time.Hour), s.clk.Now()); got != 0 {
		t.Fatalf("Spent with no traffic = %v; want 0", got)
	}
}

func TestSpentErrors(t *testing.T) {
	s := newSim(t, testSLO(0.999, 30*Day))
	now := s.clk.Now()
	if _, err := s.e.Spent("nope", now.Add(-time.Hour), now); !errors.Is(err, ErrUnknownSLO) {
		t.Errorf("Spent(unknown) = %v; want ErrUnknownSLO", err)
	}
	if _, err := s.e.Spent(s.name, now, now.Add(-time.Hour)); err == nil {
		t.Errorf("Spent(from after to) = nil error; want one")
	}
}

// TestSpentUnaligned: with samples 2 s after the 5 s bucket edges, a query between sample
// times counts exactly the samples in (from, to], not the one after to.
func TestSpentUnaligned(t *testing.T) {
	s := newSim(t, testSLO(0.999, 30*Day))
	s.clk.Advance(2 * time.Second)
	s.record()
	s.run(time.Hour, fineRes, 0, 1000, nil)
	start := s.clk.Now()
	s.run(10*time.Minute, fineRes, 10, 1000, nil)
	end := s.clk.Now()
	s.run(10*time.Minute, fineRes, 0, 1000, nil)
	total := 960_000.0 // 80 minutes of 12 samples a minute
	for _, tc := range []struct {
		name     string
		from, to time.Time
		bad      float64
	}{
		{"clean hour before", start.Add(-time.Hour), start, 0},
		{"incident", start, end, 1200},
		{"its first minute", start, start.Add(time.Minute), 120},
		{"one sample", start.Add(time.Minute), start.Add(time.Minute + fineRes), 10},
		{"a sample time", start.Add(time.Minute), start.Add(time.Minute), 0},
		{"clean after", end, s.clk.Now(), 0},
	} {
		if got, want := s.spent(tc.from, tc.to), tc.bad/(0.001*total); !near(got, want) {
			t.Errorf("%s: Spent = %v; want %v", tc.name, got, want)
		}
	}
}
