package sim

import (
	"testing"
	"time"
)

func TestEventsRunInTimeOrder(t *testing.T) {
	s := New(1)
	var got []int
	s.After(3*time.Millisecond, func() { got = append(got, 3) })
	s.After(time.Millisecond, func() {
		got = append(got, 1)
		s.After(time.Millisecond, func() { got = append(got, 2) })
	})
	s.After(time.Millisecond, func() { got = append(got, 11) }) // same instant: scheduling order
	n := s.RunFor(time.Second, 100)
	if n != 4 || len(got) != 4 || got[0] != 1 || got[1] != 11 || got[2] != 2 || got[3] != 3 {
		t.Fatalf("ran %d events in order %v; want [1 11 2 3]", n, got)
	}
	if s.Elapsed() != time.Second {
		t.Fatalf("clock at %v after RunFor(1s); want 1s", s.Elapsed())
	}
}

func TestSameSeedSameRun(t *testing.T) {
	run := func() time.Duration {
		s := New(42)
		var l Latencies
		s.Every(time.Millisecond, Start.Add(time.Second), func() {
			l.Add(Tail{Base: LogNormal{Median: 10 * time.Millisecond, Sigma: 0.5}, P: 0.01, Factor: 20}.Sample(s.Rand()))
		})
		s.Run(Start.Add(time.Second), 10_000)
		return l.Quantile(0.99)
	}
	if a, b := run(), run(); a != b || a == 0 {
		t.Fatalf("p99 %v then %v; want the same non-zero value for the same seed", a, b)
	}
}

func TestQuantile(t *testing.T) {
	var l Latencies
	for i := 1; i <= 100; i++ {
		l.Add(time.Duration(i))
	}
	if l.Quantile(0.5) != 50 || l.Quantile(0.99) != 99 || l.Quantile(1) != 100 {
		t.Fatalf("quantiles %v %v %v; want 50 99 100", l.Quantile(0.5), l.Quantile(0.99), l.Quantile(1))
	}
}
