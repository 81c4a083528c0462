package load

import (
	"context"
	"math"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/redline-dev/redline/ha/clock"
)

// stallServer is a simulated server that answers in 1 ms, except that it stalls for the
// 5th second of every 5: a request arriving at t in [5k+4 s, 5k+5 s) is answered 1 ms
// after the stall ends.
type stallServer struct{ t0 time.Time }

const (
	stallEvery = 5 * time.Second
	stallFor   = time.Second
	fast       = time.Millisecond
)

// answerAt is when a request arriving at offset t (from the start) is answered.
func answerAt(t time.Duration) time.Duration {
	if phase := t % stallEvery; phase >= stallEvery-stallFor {
		return t - phase + stallEvery + fast
	}
	return t + fast
}

// serve waits, on the bubble's clock, until the request arriving now is answered.
func (s stallServer) serve(ctx context.Context) error {
	now := time.Since(s.t0)
	return clock.Sleep(ctx, answerAt(now)-now)
}

// TestCoordinatedOmission is the test: against a server that stalls for 1 s every
// 5 s, the open-model run's p99 and p99.9 are within 5% of the values computed from the
// intended schedule, and a closed-loop measurement of the same server over the same time
// (one worker, latency from the actual send, as wrk and most tools measure) reports a p99
// that hides the stalls.
func TestCoordinatedOmission(t *testing.T) {
	const rate = 100
	const duration = 60 * time.Second
	synctest.Test(t, func(t *testing.T) {
		srv := stallServer{t0: time.Now()}
		s, _ := Constant(rate, duration)
		res, err := Run(context.Background(), s, DoerFunc(func(ctx context.Context, it *Iteration) {
			_ = it.Step("req", func() (int, error) { return 200, srv.serve(ctx) })
		}))
		if err != nil {
			t.Fatal(err)
		}

		// What the intended schedule says each request must see.
		want := make([]time.Duration, 0, s.Total())
		for i := range s.Total() {
			at, _ := s.At(i)
			want = append(want, answerAt(at)-at)
		}
		slices.Sort(want)
		p99, p999 := exact(want, 0.99), exact(want, 0.999)
		// 20% of requests arrive in a stall, with waits spread evenly over 0–1 s: the top
		// 1% of all requests is the top 5% of those, about 0.95 s.
		if p99 < 900*time.Millisecond || p999 < 990*time.Millisecond {
			t.Fatalf("schedule says p99 %v, p99.9 %v; want the stalls (≥ 0.9 s, ≥ 0.99 s)", p99, p999)
		}
		for _, c := range []struct {
			name      string
			got, want time.Duration
		}{{"p99", res.Latency.P99, p99}, {"p99.9", res.Latency.P999, p999}} {
			if math.Abs(float64(c.got-c.want)) > 0.05*float64(c.want) {
				t.Errorf("open model %s = %v; want %v within 5%%", c.name, c.got, c.want)
			}
		}
		t.Logf("open model: p99 %v (schedule %v), p99.9 %v (schedule %v)", res.Latency.P99, p99, res.Latency.P999, p999)
		if res.Requests != uint64(s.Total()) || res.Errors != 0 {
			t.Fatalf("%d requests, %d errors; want %d, 0", res.Requests, res.Errors, s.Total())
		}
	})

	// The same server, measured closed-loop for the same minute.
	synctest.Test(t, func(t *testing.T) {
		srv := stallServer{t0: time.Now()}
		closed := NewHistogram()
		for time.Since(srv.t0) < duration {
			sent := time.Now()
			if err := srv.serve(context.Background()); err != nil {
				t.Fatal(err)
			}
			closed.Record(time.Since(sent))
		}
		p99 := closed.Quantile(0.99)
		// The lone worker sends one request per stall: 12 slow ones among ~48,000.
		if p99 > 2*fast {
			t.Errorf("closed-loop p99 = %v; want about %v, the stalls hidden", p99, fast)
		}
		if closed.Max() < 900*time.Millisecond {
			t.Errorf("closed-loop max = %v; want a stall in it", closed.Max())
		}
		t.Logf("closed loop: %d requests, p99 %v, p99.9 %v, max %v", closed.Count(), p99, closed.Quantile(0.999), closed.Max())
	})
}

// TestServiceTimeHidesWhatLatencyShows: with one worker the engine itself behaves like a
// closed loop behind the schedule; the service time (from the actual send) then misses
// the stalls that the latency (from the intended send) shows.
func TestServiceTimeHidesWhatLatencyShows(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := stallServer{t0: time.Now()}
		s, _ := Constant(100, 30*time.Second)
		res, err := Run(context.Background(), s, DoerFunc(func(ctx context.Context, it *Iteration) {
			_ = it.Step("req", func() (int, error) { return 200, srv.serve(ctx) })
		}), WithMaxInFlight(1))
		if err != nil {
			t.Fatal(err)
		}
		if res.Latency.P99 < 900*time.Millisecond || res.Service.P99 > 2*fast {
			t.Fatalf("latency p99 %v, service p99 %v; want ≥ 0.9 s and about 1 ms", res.Latency.P99, res.Service.P99)
		}
		if res.Delayed == 0 || res.Lag.Max < 900*time.Millisecond {
			t.Errorf("delayed %d, lag max %v; want the generator held back by the stalls", res.Delayed, res.Lag.Max)
		}
	})
}
