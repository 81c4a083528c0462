package load

import (
	"context"
	"errors"
	"math"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/redline-dev/redline/ha/clock"
)

// The engine tests run in testing/synctest bubbles: time is fake and moves only when
// every goroutine waits, so the schedule, the simulated servers and the measurements are
// exact and the tests take no real time.

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// sleeper is a simulated server whose every answer takes d.
func sleeper(d time.Duration) Doer {
	return DoerFunc(func(ctx context.Context, it *Iteration) {
		_ = it.Step("req", func() (int, error) {
			if err := clock.Sleep(ctx, d); err != nil {
				return 0, err
			}
			return 200, nil
		})
	})
}

func TestScheduleConstant(t *testing.T) {
	s, err := Constant(250, 4*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if s.Total() != 1000 {
		t.Fatalf("Total() = %d; want 1000", s.Total())
	}
	for i := range s.Total() {
		got, ok := s.At(i)
		want := time.Duration(float64(i) / 250 * float64(time.Second))
		if !ok || (got-want).Abs() > time.Nanosecond {
			t.Fatalf("At(%d) = %v, %v; want %v", i, got, ok, want)
		}
	}
	if _, ok := s.At(1000); ok {
		t.Fatal("At(Total()) is ok; want false")
	}
}

func TestScheduleRamp(t *testing.T) {
	// 0 → 100/s over 10 s: N(t) = 5t², so arrival i is due at √(i/5) s; then 100/s for
	// 2 s, then down to 0 over 4 s: 500 + 200 + 200 arrivals.
	s, err := Ramp(0, Stage{10 * time.Second, 100}, Stage{2 * time.Second, 100}, Stage{4 * time.Second, 0})
	if err != nil {
		t.Fatal(err)
	}
	if s.Total() != 900 || s.Duration() != 16*time.Second {
		t.Fatalf("Total, Duration = %d, %v; want 900, 16s", s.Total(), s.Duration())
	}
	for i := range int64(500) {
		got, _ := s.At(i)
		want := time.Duration(math.Sqrt(float64(i)/5) * float64(time.Second))
		if (got - want).Abs() > time.Microsecond {
			t.Fatalf("At(%d) = %v; want %v", i, got, want)
		}
	}
	for i := int64(500); i < 700; i++ {
		got, _ := s.At(i)
		want := 10*time.Second + time.Duration(float64(i-500)/100*float64(time.Second))
		if (got - want).Abs() > time.Microsecond {
			t.Fatalf("At(%d) = %v; want %v", i, got, want)
		}
	}
	// Ramp down: N(t) = 100t − 12.5t² from 12 s.
	for i := int64(700); i < 900; i++ {
		got, _ := s.At(i)
		n := float64(i - 700)
		want := 12*time.Second + time.Duration((100-math.Sqrt(100*100-4*12.5*n))/25*float64(time.Second))
		if (got - want).Abs() > time.Microsecond {
			t.Fatalf("At(%d) = %v; want %v", i, got, want)
		}
	}
	prev := time.Duration(-1)
	for i := range s.Total() {
		got, _ := s.At(i)
		if got <= prev {
			t.Fatalf("At(%d) = %v is not after At(%d) = %v", i, got, i-1, prev)
		}
		prev = got
	}
	if r := s.Rate(5 * time.Second); r != 50 {
		t.Errorf("Rate(5s) = %v; want 50", r)
	}
}

func TestScheduleRejectsBadInput(t *testing.T) {
	for name, f := range map[string]func() (Schedule, error){
		"negative rate":  func() (Schedule, error) { return Constant(-5, time.Second) },
		"zero rate":      func() (Schedule, error) { return Constant(0, time.Second) },
		"NaN rate":       func() (Schedule, error) { return Constant(math.NaN(), time.Second) },
		"infinite rate":  func() (Schedule, error) { return Constant(math.Inf(1), time.Second) },
		"zero duration":  func() (Schedule, error) { return Constant(10, 0) },
		"negative stage": func() (Schedule, error) { return Ramp(10, Stage{time.Second, -1}) },
		"no stages":      func() (Schedule, error) { return Ramp(10) },
		"all zero":       func() (Schedule, error) { return Ramp(0, Stage{time.Second, 0}) },
	} {
		if _, err := f(); !errors.Is(err, ErrSchedule) {
			t.Errorf("%s: err = %v; want ErrSchedule", name, err)
		}
	}
	if _, err := Run(context.Background(), Schedule{}, sleeper(0)); !errors.Is(err, ErrSchedule) {
		t.Errorf("Run with a zero Schedule: err = %v; want ErrSchedule", err)
	}
}

func TestRunStartsEachIterationWhenDue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, _ := Ramp(20, Stage{3 * time.Second, 200}, Stage{2 * time.Second, 200})
		var mu sync.Mutex
		var due, began []time.Duration
		t0 := time.Now()
		res, err := Run(context.Background(), s, DoerFunc(func(ctx context.Context, it *Iteration) {
			mu.Lock()
			due = append(due, it.Intended.Sub(t0))
			began = append(began, time.Since(t0))
			mu.Unlock()
			_ = it.Step("req", func() (int, error) { time.Sleep(30 * time.Millisecond); return 200, nil })
		}))
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(due)
		slices.Sort(began)
		if int64(len(due)) != s.Total() || res.Started != uint64(s.Total()) || res.Requests != uint64(s.Total()) {
			t.Fatalf("%d iterations, %d started, %d requests; want %d", len(due), res.Started, res.Requests, s.Total())
		}
		for i := range due {
			want, _ := s.At(int64(i))
			if due[i] != want || began[i] != want {
				t.Fatalf("iteration %d due at %v, began at %v; want %v", i, due[i], began[i], want)
			}
		}
		// 30 ms each, on time: every latency is the service time.
		if res.Latency.Max != 30*time.Millisecond || res.Latency.Min != 30*time.Millisecond || res.Lag.Max != 0 {
			t.Errorf("latency %v..%v, lag max %v; want 30ms, 0", res.Latency.Min, res.Latency.Max, res.Lag.Max)
		}
		if res.MaxActive < 6 { // 200/s × 30 ms
			t.Errorf("MaxActive = %d; want at least 6 iterations overlapping", res.MaxActive)
		}
		if math.Abs(res.ActualRate-res.TargetRate) > 1e-9 {
			t.Errorf("ActualRate = %v; want TargetRate %v", res.ActualRate, res.TargetRate)
		}
		var started uint64
		for _, sec := range res.Series {
			started += sec.Started
		}
		if started != res.Started || res.Series[4].Started != 200 {
			t.Errorf("series started %d (second 4: %d); want %d (200)", started, res.Series[4].Started, res.Started)
		}
	})
}

// TestRunLatencyCountsFromIntendedTime: with one worker, 100 ms apart and 260 ms each,
// iteration i starts at 260i ms though due at 100i ms, so its latency is 260+160i ms while
// its service time stays 260 ms. What is still waiting at the end (2 s) is dropped.
func TestRunLatencyCountsFromIntendedTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, _ := Constant(10, 2*time.Second)
		res, err := Run(context.Background(), s, sleeper(260*time.Millisecond), WithMaxInFlight(1))
		if err != nil {
			t.Fatal(err)
		}
		if res.Started != 8 || res.Dropped != 12 || res.Delayed < 7 {
			t.Fatalf("started %d, dropped %d, delayed %d; want 8, 12, at least 7", res.Started, res.Dropped, res.Delayed)
		}
		if res.Latency.Min != 260*time.Millisecond || res.Latency.Max != 1380*time.Millisecond {
			t.Errorf("latency %v..%v; want 260ms..1.38s", res.Latency.Min, res.Latency.Max)
		}
		if res.Service.Min != 260*time.Millisecond || res.Service.Max != 260*time.Millisecond {
			t.Errorf("service %v..%v; want 260ms", res.Service.Min, res.Service.Max)
		}
		if res.Lag.Max != 1120*time.Millisecond {
			t.Errorf("lag max %v; want 1.12s", res.Lag.Max)
		}
		if got := res.ErrorRate(); got != 0.6 {
			t.Errorf("ErrorRate() = %v; want 0.6 (12 dropped of 20)", got)
		}
		if len(res.ErrorKinds) != 1 || res.ErrorKinds[0].Kind != KindDropped || res.ErrorKinds[0].Count != 12 {
			t.Errorf("errors %+v; want one row of 12 dropped", res.ErrorKinds)
		}
	})
}

// TestRunStepsOfAJourney: the second step's latency counts from the end of the first.
func TestRunStepsOfAJourney(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, _ := Constant(50, time.Second)
		res, err := Run(context.Background(), s, DoerFunc(func(ctx context.Context, it *Iteration) {
			if it.Step("a", func() (int, error) { time.Sleep(10 * time.Millisecond); return 200, nil }) != nil {
				return
			}
			_ = it.Step("b", func() (int, error) {
				time.Sleep(20 * time.Millisecond)
				if it.N%5 == 0 {
					return 503, &Error{Kind: KindStatus, Status: 503, Reason: "OVERLOADED"}
				}
				return 200, nil
			})
		}))
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Steps) != 2 || res.Steps[0].Name != "a" || res.Steps[1].Name != "b" {
			t.Fatalf("steps %+v; want a, b", res.Steps)
		}
		a, b := res.Steps[0], res.Steps[1]
		if a.Latency.Max != 10*time.Millisecond || b.Latency.Min != 20*time.Millisecond || b.Latency.Max != 20*time.Millisecond {
			t.Errorf("a max %v, b %v..%v; want 10ms, 20ms", a.Latency.Max, b.Latency.Min, b.Latency.Max)
		}
		if b.Requests != 50 || b.Errors != 10 || b.Statuses[503] != 10 || b.Statuses[200] != 40 || res.Errors != 10 || res.OK != 90 {
			t.Errorf("b: %d requests, %d errors, statuses %v; run %d ok %d errors", b.Requests, b.Errors, b.Statuses, res.OK, res.Errors)
		}
		want := ErrorCount{Step: "b", Kind: KindStatus, Status: 503, Reason: "OVERLOADED", Count: 10, Example: "status 503 OVERLOADED"}
		if len(res.ErrorKinds) != 1 || res.ErrorKinds[0].Count != want.Count || res.ErrorKinds[0].Reason != want.Reason || res.ErrorKinds[0].Step != "b" {
			t.Errorf("errors %+v; want %+v", res.ErrorKinds, want)
		}
	})
}

func TestThresholdsAbortTheRun(t *testing.T) {
	// From 10 s on every request fails; the cumulative error rate passes 10% at 12 s.
	failing := DoerFunc(func(ctx context.Context, it *Iteration) {
		_ = it.Step("req", func() (int, error) {
			if err := clock.Sleep(ctx, 500*time.Microsecond); err != nil {
				return 0, err
			}
			if it.N >= 1000 {
				return 500, &Error{Kind: KindStatus, Status: 500}
			}
			return 200, nil
		})
	})
	stalling := DoerFunc(func(ctx context.Context, it *Iteration) {
		_ = it.Step("req", func() (int, error) {
			d := time.Millisecond
			if it.N >= 600 {
				d = 305 * time.Millisecond
			}
			if err := clock.Sleep(ctx, d); err != nil {
				return 0, err
			}
			return 200, nil
		})
	})
	unhealthyAt := 8 * time.Second
	for _, tc := range []struct {
		name      string
		doer      Doer
		threshold func(t0 time.Time) Threshold
		at        time.Duration
	}{
		{"error rate", failing, func(time.Time) Threshold { return ErrorRateBelow(0.10) }, 12 * time.Second},
		{"p99", stalling, func(time.Time) Threshold { return LatencyBelow(99, 100*time.Millisecond) }, 7 * time.Second},
		{"health check", sleeper(time.Millisecond), func(t0 time.Time) Threshold {
			return Check("baseline slo", func(ctx context.Context) error {
				if time.Since(t0) >= unhealthyAt {
					return errors.New("burn rate 20x")
				}
				return nil
			})
		}, 8 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s, _ := Constant(100, 30*time.Second)
				th := tc.threshold(time.Now())
				var snaps []Snapshot
				res, err := Run(context.Background(), s, tc.doer, WithThresholds(th), WithWarmup(5*time.Second),
					WithProgress(func(s Snapshot) { snaps = append(snaps, s) }))
				if err != nil {
					t.Fatal(err)
				}
				if res.Aborted != th.Name || res.Passed() {
					t.Fatalf("Aborted = %q, Passed() = %v; want %q, false", res.Aborted, res.Passed(), th.Name)
				}
				if len(res.Thresholds) != 1 || res.Thresholds[0].Pass || res.Thresholds[0].At != tc.at {
					t.Fatalf("thresholds %+v; want broken at %v", res.Thresholds, tc.at)
				}
				if want := uint64(tc.at / (10 * time.Millisecond)); res.Started < want || res.Started > want+1 {
					t.Errorf("started %d; want the %d due before the abort", res.Started, want)
				}
				if res.Elapsed > tc.at+time.Millisecond {
					t.Errorf("elapsed %v; want the run stopped at %v", res.Elapsed, tc.at)
				}
				if len(snaps) != int(tc.at/time.Second) {
					t.Errorf("%d progress snapshots; want one a second until the abort, %d", len(snaps), tc.at/time.Second)
				}
			})
		})
	}
}

func TestThresholdsPassAtTheEnd(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, _ := Constant(100, 3*time.Second)
		res, err := Run(context.Background(), s, sleeper(2*time.Millisecond),
			WithThresholds(LatencyBelow(99.9, 5*time.Millisecond), ErrorRateBelow(0)))
		if err != nil {
			t.Fatal(err)
		}
		if !res.Passed() || len(res.Thresholds) != 2 || res.Thresholds[0].Observed != "2ms" {
			t.Fatalf("Passed() = %v, thresholds %+v; want both held, p99.9 observed 2ms", res.Passed(), res.Thresholds)
		}
	})
}

func TestRunProgressAndCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		s, _ := Constant(100, time.Minute)
		var snaps []Snapshot
		res, err := Run(ctx, s, sleeper(time.Millisecond), WithProgress(func(s Snapshot) {
			snaps = append(snaps, s)
			if s.Elapsed == 4*time.Second {
				cancel()
			}
		}))
		if err != nil {
			t.Fatal(err)
		}
		if res.Aborted != "canceled" || len(snaps) != 4 {
			t.Fatalf("Aborted %q after %d snapshots; want canceled after 4", res.Aborted, len(snaps))
		}
		for i, s := range snaps {
			if s.Elapsed != time.Duration(i+1)*time.Second || s.ActualRate != 100 || s.TargetRate != 100 || s.P99 != time.Millisecond {
				t.Errorf("snapshot %d = %+v; want elapsed %ds, 100/s, p99 1ms", i, s, i+1)
			}
			if s.OK < uint64(100*(i+1))-1 || s.OK > uint64(100*(i+1)) {
				t.Errorf("snapshot %d: %d ok; want about %d", i, s.OK, 100*(i+1))
			}
		}
	})
}
