package capacity

import (
	"context"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/goleak"

	"github.com/redline-dev/redline/ha/clock"
	"github.com/redline-dev/redline/kit/metric"
	"github.com/redline-dev/redline/stress/load"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// queue is a simulated server with one worker: requests are served in arrival order,
// each taking an exponentially distributed time with mean 1/capacity. It runs on the
// synctest bubble's clock.
type queue struct {
	mu       sync.Mutex
	r        *rand.Rand
	mean     time.Duration
	nextFree time.Time
}

func (q *queue) serve(ctx context.Context) error {
	q.mu.Lock()
	start := time.Now()
	if q.nextFree.After(start) {
		start = q.nextFree
	}
	q.nextFree = start.Add(time.Duration(q.r.ExpFloat64() * float64(q.mean)))
	done := q.nextFree
	q.mu.Unlock()
	return clock.Sleep(ctx, time.Until(done))
}

// TestSearchFindsTheCapacityOfAQueue runs the real engine against a simulated 500/s
// server on a fake clock: latency climbs near 500/s and the p99 threshold breaks above it.
func TestSearchFindsTheCapacityOfAQueue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := &queue{r: rand.New(rand.NewPCG(7, 7)), mean: 2 * time.Millisecond}
		doer := load.DoerFunc(func(ctx context.Context, it *load.Iteration) {
			_ = it.Step("req", func() (int, error) { return 200, q.serve(ctx) })
		})
		var seen []float64
		rep, err := Search(context.Background(), Config{
			Start: 100, MaxRate: 2000,
			Step: func(ctx context.Context, rate float64) (*load.Result, error) {
				s, err := load.Constant(rate, 20*time.Second)
				if err != nil {
					return nil, err
				}
				return load.Run(ctx, s, doer, load.WithThresholds(load.LatencyBelow(99, 100*time.Millisecond)))
			},
			OnStep: func(s Step) { seen = append(seen, s.Rate) },
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range rep.Steps {
			t.Logf("%7.2f/s  p99 %-12v pass %v %s", s.Rate, s.Result.Latency.P99, s.Pass, s.Why)
		}
		if len(seen) != len(rep.Steps) {
			t.Errorf("OnStep saw %d steps; want %d", len(seen), len(rep.Steps))
		}
		last := rep.Steps[len(rep.Steps)-1]
		if last.Pass || !strings.Contains(last.Why, "p99 <= 100ms broken") {
			t.Fatalf("last step %+v; want it broken by p99", last)
		}
		if rep.MaxSustainable < 300 || rep.MaxSustainable >= 500 {
			t.Errorf("MaxSustainable = %v; want below the server's 500/s and above 300/s", rep.MaxSustainable)
		}
		if rep.Knee == 0 || rep.Knee > last.Rate {
			t.Errorf("Knee = %v; want a step at or before the failing %v", rep.Knee, last.Rate)
		}
		if !strings.HasPrefix(rep.StoppedBy, "the step at") || rep.Bottleneck != "unknown (no metrics endpoint given)" {
			t.Errorf("StoppedBy %q, Bottleneck %q", rep.StoppedBy, rep.Bottleneck)
		}
	})
}

// fake returns a result with the given p99 that passes unless broken is set.
func fake(p99 time.Duration, started int64, broken string) *load.Result {
	r := &load.Result{Planned: 1000, Started: uint64(started), Elapsed: 10 * time.Second}
	r.Latency.P99 = p99
	if broken != "" {
		r.Aborted = broken
		r.Thresholds = []load.ThresholdResult{{Name: broken, Observed: "1.2s"}}
	}
	return r
}

func TestSearchVerdicts(t *testing.T) {
	p99s := map[float64]time.Duration{100: 5 * time.Millisecond, 200: 4 * time.Millisecond, 400: 7 * time.Millisecond,
		800: 7500 * time.Microsecond, 1600: 40 * time.Millisecond, 3200: time.Second}
	step := func(_ context.Context, rate float64) (*load.Result, error) {
		if rate >= 3200 {
			return fake(p99s[rate], 1000, "p99 <= 500ms"), nil
		}
		return fake(p99s[rate], 1000, ""), nil
	}
	rep, err := Search(context.Background(), Config{Start: 100, Factor: 2, MaxRate: 10000, Step: step})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Steps) != 6 || rep.MaxSustainable != 1600 || rep.Knee != 1600 {
		t.Fatalf("%d steps, max %v, knee %v; want 6, 1600, 1600 (40ms > 2 × 4ms)", len(rep.Steps), rep.MaxSustainable, rep.Knee)
	}
	if want := "the step at 3200/s failed: p99 <= 500ms broken (1.2s)"; rep.StoppedBy != want {
		t.Errorf("StoppedBy = %q; want %q", rep.StoppedBy, want)
	}

	// Every step passes: the search ends at the max rate.
	rep, _ = Search(context.Background(), Config{Start: 100, Factor: 2, MaxRate: 800, Step: step})
	if rep.MaxSustainable != 800 || rep.Knee != 0 || !strings.Contains(rep.StoppedBy, "max rate 800/s was reached") {
		t.Errorf("max %v, knee %v, stopped %q; want 800, none, max rate reached", rep.MaxSustainable, rep.Knee, rep.StoppedBy)
	}

	// A generator that cannot keep up fails the step: it measured itself.
	rep, _ = Search(context.Background(), Config{Start: 100, Factor: 2, MaxRate: 800,
		Step: func(_ context.Context, rate float64) (*load.Result, error) {
			return fake(time.Millisecond, int64(100000/rate), ""), nil
		}})
	if len(rep.Steps) != 2 || rep.MaxSustainable != 100 || !strings.Contains(rep.StoppedBy, "load generator started only 500 of 1000") {
		t.Errorf("%d steps, max %v, stopped %q; want the generator's shortfall at 200/s", len(rep.Steps), rep.MaxSustainable, rep.StoppedBy)
	}

	for _, bad := range []Config{{Start: 0, Step: step}, {Start: 10, Factor: 1, Step: step}, {Start: 10, MaxRate: 5, Step: step}, {Start: 10}} {
		if _, err := Search(context.Background(), bad); err == nil {
			t.Errorf("Search(%+v) = nil error; want one", bad)
		}
	}
}

func TestSearchSaysWhenTheAdminEndpointIsUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	rep, err := Search(context.Background(), Config{Start: 100, Factor: 2, MaxRate: 200,
		Step: func(context.Context, float64) (*load.Result, error) { return fake(time.Millisecond, 1000, ""), nil },
		Observe: func(ctx context.Context) (Metrics, error) {
			return FetchMetrics(ctx, http.DefaultClient, url, "")
		}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(rep.Bottleneck, "unknown (admin endpoint unreachable: ") || !strings.Contains(rep.Bottleneck, "connection refused") {
		t.Errorf("Bottleneck = %q; want it unknown, saying the endpoint is unreachable", rep.Bottleneck)
	}
}

// TestFetchMetricsReadsTheKitFamilies scrapes the kit's own registry, as the admin
// endpoint serves it, between two rounds of traffic.
func TestFetchMetricsReadsTheKitFamilies(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer s3cret" {
			http.Error(w, "token", http.StatusUnauthorized)
			return
		}
		promhttp.HandlerFor(metric.Registry, promhttp.HandlerOpts{}).ServeHTTP(w, r)
	}))
	defer srv.Close()
	if _, err := FetchMetrics(context.Background(), srv.Client(), srv.URL, "wrong"); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("wrong token: err = %v; want a 401", err)
	}
	svc := "captest-order"
	before, err := FetchMetrics(context.Background(), srv.Client(), srv.URL, "s3cret")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		code, d := "OK", 3*time.Millisecond
		if i >= 90 {
			code, d = "Unavailable", 40*time.Millisecond
		}
		metric.GRPCServer.Observe(svc, "/order.v1.Order/CreateOrder", "POST", code, "", d)
	}
	metric.HTTPServer.Observe("captest-bff", "POST /v1/orders", "POST", "503", "stress-1", 50*time.Millisecond)
	after, err := FetchMetrics(context.Background(), srv.Client(), srv.URL+"/", "s3cret")
	if err != nil {
		t.Fatal(err)
	}
	var got, bff ServiceStep
	for _, s := range Delta(before, after) {
		switch s.Service {
		case svc:
			got = s
		case "captest-bff":
			bff = s
		}
	}
	if got.Requests != 100 || got.Errors != 10 {
		t.Fatalf("delta %+v; want 100 requests, 10 errors", got)
	}
	// 90 in (2.5ms, 5ms], 10 in (25ms, 50ms]: rank 99 is in the upper bucket.
	if got.P99 <= 25*time.Millisecond || got.P99 > 50*time.Millisecond {
		t.Errorf("p99 = %v; want in the (25ms, 50ms] bucket", got.P99)
	}
	if bff.Requests != 1 || bff.Errors != 1 {
		t.Errorf("bff delta %+v; want its one 503 counted as an error", bff)
	}
}

func services(rows ...ServiceStep) []ServiceStep { return rows }

func TestBottleneck(t *testing.T) {
	res := &load.Result{Elapsed: 10 * time.Second}
	ms := time.Millisecond
	low := services(
		ServiceStep{Service: "bff", Requests: 1000, P99: 5 * ms},
		ServiceStep{Service: "feed", Requests: 1000, P99: 2 * ms},
		ServiceStep{Service: "note", Requests: 3000, P99: ms},
	)
	for _, tc := range []struct {
		name string
		last []ServiceStep
		want string
	}{
		{"inner service sheds", services(
			ServiceStep{Service: "bff", Requests: 3000, Shed: 50, P99: 80 * ms},
			ServiceStep{Service: "feed", Requests: 3000, Shed: 20, P99: 30 * ms},
			ServiceStep{Service: "note", Requests: 9000, P99: 40 * ms},
		), "feed"},
		{"only the edge sheds", services(
			ServiceStep{Service: "bff", Requests: 3000, Shed: 50, P99: 80 * ms},
			ServiceStep{Service: "note", Requests: 9000, P99: ms},
		), "bff"},
		{"inner p99 grows most", services(
			ServiceStep{Service: "bff", Requests: 3000, P99: 100 * ms},
			ServiceStep{Service: "feed", Requests: 3000, P99: 3 * ms},
			ServiceStep{Service: "note", Requests: 9000, P99: 20 * ms},
		), "note"},
		{"only the edge slows", services(
			ServiceStep{Service: "bff", Requests: 3000, P99: 100 * ms},
			ServiceStep{Service: "feed", Requests: 3000, P99: 2 * ms},
		), "bff"},
		{"nothing moves", services(
			ServiceStep{Service: "bff", Requests: 3000, P99: 6 * ms},
			ServiceStep{Service: "feed", Requests: 3000, P99: 2 * ms},
		), "unknown (no service's p99 grew"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			steps := []Step{{Rate: 100, Result: res, Services: low}, {Rate: 115, Result: res}, {Rate: 300, Result: res, Services: tc.last}}
			got, why := Bottleneck(steps)
			if !strings.HasPrefix(got, tc.want) {
				t.Fatalf("Bottleneck = %q (%s); want %q", got, why, tc.want)
			}
			t.Log(got, "—", why)
		})
	}
	if got, _ := Bottleneck([]Step{{Rate: 100, Result: res, Services: low}}); !strings.HasPrefix(got, "unknown") {
		t.Errorf("one step: Bottleneck = %q; want unknown", got)
	}
}

func FuzzParseMetrics(f *testing.F) {
	f.Add("# TYPE redline_grpc_server_requests_total counter\nredline_grpc_server_requests_total{service=\"note\",code=\"OK\"} 3\n")
	f.Add("redline_http_server_duration_seconds_bucket{service=\"bff\",le=\"0.005\"} 1\nredline_http_server_duration_seconds_bucket{service=\"bff\",le=\"+Inf\"} 2\n")
	f.Add("redline_ha_shed_decisions_total{service=\"feed\",decision=\"reject\",reason=\"cpu\"} 7\n")
	f.Add("not metrics {{{")
	f.Fuzz(func(t *testing.T, text string) {
		m, err := ParseMetrics(strings.NewReader(text))
		if err != nil {
			return
		}
		for _, s := range Delta(Metrics{}, m) {
			if s.P99 < 0 {
				t.Fatalf("negative p99 %v from %q", s.P99, text)
			}
		}
	})
}
