package metric

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestObserveCountsBySeries(t *testing.T) {
	r := newTestRED(t)
	r.Observe("svc", "GET /x", "GET", "200", "", time.Millisecond)
	r.Observe("svc", "GET /x", "GET", "200", "", time.Millisecond)
	r.Observe("svc", "GET /x", "GET", "500", "canary", time.Millisecond)
	if got := testutil.ToFloat64(r.requests.WithLabelValues("svc", "GET /x", "GET", "200", "")); got != 2 {
		t.Fatalf("200 series = %v; want 2", got)
	}
	if got := testutil.ToFloat64(r.requests.WithLabelValues("svc", "GET /x", "GET", "500", "canary")); got != 1 {
		t.Fatalf("canary 500 series = %v; want 1", got)
	}
	g := r.Inflight("svc", "GET /x")
	g.Inc()
	if got := testutil.ToFloat64(g); got != 1 {
		t.Fatalf("inflight = %v; want 1", got)
	}
}

func TestObserveDoesNotAllocate(t *testing.T) {
	r := newTestRED(t)
	r.Observe("svc", "GET /x", "GET", "200", "", time.Millisecond)
	allocs := testing.AllocsPerRun(100, func() {
		r.Observe("svc", "GET /x", "GET", "200", "", time.Millisecond)
		r.Inflight("svc", "GET /x").Inc()
	})
	if allocs != 0 {
		t.Fatalf("Observe+Inflight allocate %v times per request; want 0", allocs)
	}
}

func newTestRED(t *testing.T) *RED {
	name := "redline_test_" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "_"))
	return newRED(name, "test")
}

func BenchmarkObserve(b *testing.B) {
	r := newRED("redline_bench_observe", "bench")
	b.ReportAllocs()
	for b.Loop() {
		r.Observe("svc", "GET /x", "GET", "200", "", time.Millisecond)
	}
}

func TestSummary(t *testing.T) {
	for range 98 {
		HTTPServer.Observe("summary-svc", "GET /x", "GET", "200", "", 3*time.Millisecond)
	}
	HTTPServer.Observe("summary-svc", "GET /x", "GET", "503", "", 3*time.Millisecond)
	HTTPServer.Observe("summary-svc", "GET /x", "GET", "404", "", 3*time.Millisecond)
	rows, err := Summary()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if r.Service != "summary-svc" {
			continue
		}
		if r.Requests != 100 || r.Errors != 1 || r.P50Ms <= 2.5 || r.P50Ms > 5 {
			t.Fatalf("summary = %+v; want 100 requests, 1 server error (404 is the client's), p50 in the 2.5–5 ms bucket", r)
		}
		return
	}
	t.Fatal("no summary row for summary-svc")
}
