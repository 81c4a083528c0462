package slo

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/redline-dev/redline/ha/clock"
	"github.com/redline-dev/redline/kit/metric"
)

// red is a registry with the RED families of one transport, as kit/metric registers them.
type red struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newRED(t Transport) *red {
	labels := []string{"service", "route", "method", "code", "lane"}
	r := &red{
		reg:      prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: RequestsFamily(t), Help: "requests"}, labels),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: DurationFamily(t), Help: "durations", Buckets: metric.Buckets}, labels),
	}
	r.reg.MustRegister(r.requests, r.duration)
	return r
}

func (r *red) observe(service, route, code, lane string, d time.Duration, n int) {
	for range n {
		r.requests.WithLabelValues(service, route, "GET", code, lane).Inc()
		r.duration.WithLabelValues(service, route, "GET", code, lane).Observe(d.Seconds())
	}
}

func TestCountsLane(t *testing.T) {
	r := newRED(HTTP)
	const route = "GET /v1/x"
	r.observe("svc", route, "200", "", 10*time.Millisecond, 7)
	r.observe("svc", route, "500", "", 10*time.Millisecond, 1)
	r.observe("svc", route, "200", "stress", 400*time.Millisecond, 3)
	r.observe("svc", route, "503", "stress", 10*time.Millisecond, 2)
	r.observe("svc", route, "200", "canary", 10*time.Millisecond, 5)
	r.observe("svc", "GET /v1/y", "500", "stress", 10*time.Millisecond, 4) // another route
	r.observe("other", route, "500", "stress", 10*time.Millisecond, 4)     // another service
	mfs, err := r.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	f := Families(mfs)
	avail := AvailabilitySLO("svc", route, 0.999, 30*Day).Indicator
	lat := LatencySLO("svc", route, 250*time.Millisecond, 0.99, 30*Day).Indicator
	for _, tc := range []struct {
		ind  Indicator
		lane string
		want Counts
	}{
		{avail, "", Counts{Bad: 1, Total: 8}},
		{avail, "stress", Counts{Bad: 2, Total: 5}},
		{avail, "canary", Counts{Bad: 0, Total: 5}},
		{avail, "none", Counts{}},
		{lat, "", Counts{Bad: 0, Total: 8}},
		{lat, "stress", Counts{Bad: 3, Total: 5}},
	} {
		if got := f.CountsLane(tc.ind, tc.lane); got != tc.want {
			t.Errorf("CountsLane(%s, %q) = %+v; want %+v", tc.ind.Kind, tc.lane, got, tc.want)
		}
	}
	if got, want := f.Counts(avail), f.CountsLane(avail, ""); got != want {
		t.Errorf("Counts = %+v; want CountsLane(\"\") = %+v", got, want)
	}
}

// serve serves reg's metrics page, requiring "Bearer token" when token != "".
func serve(t *testing.T, reg *prometheus.Registry, token string) *httptest.Server {
	t.Helper()
	h := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		if token != "" && r.Header.Get("Authorization") != "Bearer "+token {
			http.Error(w, "no token", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// TestScrape: two processes of a service behind admin tokens add up; the token goes with
// every request; one failing URL fails the whole gather, naming the URL.
func TestScrape(t *testing.T) {
	const route = "/x.v1.X/Get"
	a, b := newRED(GRPC), newRED(GRPC)
	a.observe("x", route, "OK", "", time.Millisecond, 10)
	a.observe("x", route, "Internal", "", time.Millisecond, 1)
	b.observe("x", route, "OK", "", time.Millisecond, 5)
	b.observe("x", route, "Unavailable", "", time.Millisecond, 2)
	b.observe("x", route, "Internal", "stress", time.Millisecond, 9)
	sa, sb := serve(t, a.reg, "secret"), serve(t, b.reg, "secret")
	urls := []string{sa.URL + "/metrics", sb.URL + "/metrics"}
	ind := AvailabilitySLO("x", route, 0.999, 30*Day).Indicator

	mfs, err := Scrape(urls, "secret", nil).Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	f := Families(mfs)
	if got, want := f.Counts(ind), (Counts{Bad: 3, Total: 18}); got != want {
		t.Errorf("Counts over both = %+v; want %+v", got, want)
	}
	if got, want := f.CountsLane(ind, "stress"), (Counts{Bad: 9, Total: 9}); got != want {
		t.Errorf("CountsLane(stress) over both = %+v; want %+v", got, want)
	}
	if n := len(f[RequestsFamily(GRPC)].GetMetric()); n != 5 {
		t.Errorf("merged requests family has %d series; want 5", n)
	}
	for i := 1; i < len(mfs); i++ {
		if mfs[i-1].GetName() >= mfs[i].GetName() {
			t.Errorf("families not sorted by name: %s before %s", mfs[i-1].GetName(), mfs[i].GetName())
		}
	}

	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "redline_grpc_server_requests_total{service=\"x\" 1\n")
	}))
	t.Cleanup(broken.Close)
	huge := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		line := strings.Repeat("#", 1<<20-1) + "\n"
		for range 33 {
			io.WriteString(w, line)
		}
	}))
	t.Cleanup(huge.Close)
	for _, tc := range []struct {
		name  string
		urls  []string
		token string
		bad   string
		want  string
	}{
		{"no token", urls, "", urls[0], "401"},
		{"wrong token", urls, "guess", urls[1], "401"},
		{"down", []string{urls[0], down.URL + "/metrics"}, "secret", down.URL + "/metrics", "connect"},
		{"not found", []string{sa.URL + "/nope", urls[1]}, "secret", sa.URL + "/nope", "404"},
		{"parse", []string{broken.URL, urls[0]}, "secret", broken.URL, "line 1"},
		{"too big", []string{huge.URL}, "", huge.URL, "32 MiB"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mfs, err := Scrape(tc.urls, tc.token, &http.Client{Timeout: 10 * time.Second}).Gather()
			if err == nil || !strings.Contains(err.Error(), "scrape "+tc.bad+":") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Gather = %v; want an error naming %s with %q", err, tc.bad, tc.want)
			}
			if mfs != nil {
				t.Fatalf("Gather returned %d families with its error; want none", len(mfs))
			}
		})
	}
}

// TestSampleScrapeFailure: a gather that fails is no sample: the evaluator keeps its counts
// and the next good one counts everything since the last.
func TestSampleScrapeFailure(t *testing.T) {
	const route = "/x.v1.X/Get"
	reg := newRED(GRPC)
	var down atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			http.Error(w, "restarting", http.StatusServiceUnavailable)
			return
		}
		promhttp.HandlerFor(reg.reg, promhttp.HandlerOpts{}).ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	clk := clock.NewFake(time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC))
	s := AvailabilitySLO("x", route, 0.999, 30*Day)
	e, err := NewEvaluator([]SLO{s}, WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	g := Scrape([]string{srv.URL}, "", nil)
	reg.observe("x", route, "OK", "", time.Millisecond, 100)
	if err := e.Sample(g); err != nil {
		t.Fatal(err)
	}
	reg.observe("x", route, "Internal", "", time.Millisecond, 4)
	down.Store(true)
	clk.Advance(fineRes)
	if err := e.Sample(g); err == nil || !strings.Contains(err.Error(), srv.URL) {
		t.Fatalf("Sample during the failure = %v; want an error naming %s", err, srv.URL)
	}
	if p := status(t, e, s.Name).Period; p.Total != 0 {
		t.Fatalf("a failed sample recorded %v requests; want none", p.Total)
	}
	down.Store(false)
	clk.Advance(fineRes)
	if err := e.Sample(g); err != nil {
		t.Fatal(err)
	}
	if p := status(t, e, s.Name).Period; p.Bad != 4 || p.Total != 4 {
		t.Fatalf("after the failure period = %v/%v; want 4/4", p.Bad, p.Total)
	}
}

// TestScrapeTimeout: a process that never answers fails the gather once the client's
// Timeout passes; the server is held until the test ends, so no answer can come first.
func TestScrapeTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	_, err := Scrape([]string{srv.URL}, "", &http.Client{Timeout: time.Millisecond}).Gather()
	if err == nil || !strings.Contains(err.Error(), srv.URL) || !strings.Contains(err.Error(), "Timeout") {
		t.Fatalf("Gather = %v; want a timeout naming %s", err, srv.URL)
	}
}

func TestScrapeTypeClash(t *testing.T) {
	a := prometheus.NewRegistry()
	a.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "things_total", Help: "h"}))
	b := prometheus.NewRegistry()
	b.MustRegister(prometheus.NewGauge(prometheus.GaugeOpts{Name: "things_total", Help: "h"}))
	ua, ub := serve(t, a, "").URL+"/metrics", serve(t, b, "").URL+"/metrics"
	_, err := Scrape([]string{ua, ub}, "", nil).Gather()
	if err == nil || !strings.Contains(err.Error(), ub) || !strings.Contains(err.Error(), "things_total") {
		t.Fatalf("Gather = %v; want an error naming %s and things_total", err, ub)
	}
}

// swappable serves the metrics page of whichever registry it holds, so a test can restart
// the process behind a URL by swapping in a new one.
type swappable struct{ r atomic.Pointer[red] }

func (s *swappable) serve(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		promhttp.HandlerFor(s.r.Load().reg, promhttp.HandlerOpts{}).ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/metrics"
}

// TestScrapeRestartOne: two processes of a service, one of which restarts. The merged
// counters and histograms go on from where they were by exactly what the new process
// served, and an Evaluator sampling the Scraper records exactly the events served, not
// the other process's history again.
func TestScrapeRestartOne(t *testing.T) {
	const route = "/x.v1.X/Get"
	var a, b swappable
	a.r.Store(newRED(GRPC))
	b.r.Store(newRED(GRPC))
	g := Scrape([]string{a.serve(t), b.serve(t)}, "", nil)
	avail := AvailabilitySLO("x", route, 0.999, 30*Day)
	lat := LatencySLO("x", route, 250*time.Millisecond, 0.99, 30*Day)
	clk := clock.NewFake(time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC))
	e, err := NewEvaluator([]SLO{avail, lat}, WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	counts := func() (Counts, Counts) {
		t.Helper()
		mfs, err := g.Gather()
		if err != nil {
			t.Fatalf("Gather: %v", err)
		}
		f := Families(mfs)
		return f.Counts(avail.Indicator), f.Counts(lat.Indicator)
	}
	sample := func() {
		t.Helper()
		clk.Advance(fineRes)
		if err := e.Sample(g); err != nil {
			t.Fatalf("Sample: %v", err)
		}
	}
	// serve adds ok fast, slow and failed requests to r and to the events served: slow ones
	// are bad for latency, failed ones for availability.
	var sa, sl Counts
	serve := func(r *red, ok, slow, failed int) {
		r.observe("x", route, "OK", "", time.Millisecond, ok)
		r.observe("x", route, "OK", "", time.Second, slow)
		r.observe("x", route, "Internal", "", time.Millisecond, failed)
		n := float64(ok + slow + failed)
		sa.Total, sa.Bad = sa.Total+n, sa.Bad+float64(failed)
		sl.Total, sl.Bad = sl.Total+n, sl.Bad+float64(slow)
	}
	serve(a.r.Load(), 1000, 10, 5)
	serve(b.r.Load(), 1000, 10, 5)
	if err := e.Sample(g); err != nil { // the baseline
		t.Fatal(err)
	}
	sa, sl = Counts{}, Counts{}
	for range 120 { // 10 minutes
		serve(a.r.Load(), 500, 1, 1)
		serve(b.r.Load(), 500, 1, 1)
		sample()
	}
	av0, lat0 := counts()

	nb := newRED(GRPC) // b restarts: nothing failed since, so its Internal series is missing
	b.r.Store(nb)
	serve(nb, 7, 2, 0)
	serve(a.r.Load(), 500, 0, 0)
	av1, lat1 := counts()
	if want := (Counts{Bad: av0.Bad, Total: av0.Total + 509}); av1 != want {
		t.Errorf("availability after b restarted = %+v; want %+v", av1, want)
	}
	if want := (Counts{Bad: lat0.Bad + 2, Total: lat0.Total + 509}); lat1 != want {
		t.Errorf("latency after b restarted = %+v; want %+v", lat1, want)
	}
	sample()
	serve(nb, 3, 0, 1) // its Internal series comes back
	sample()
	for _, tc := range []struct {
		s      SLO
		served Counts
	}{{avail, sa}, {lat, sl}} {
		if p := status(t, e, tc.s.Name).Period; p.Bad != tc.served.Bad || p.Total != tc.served.Total {
			t.Errorf("%s: period = %v/%v; want the %v/%v served", tc.s.Name, p.Bad, p.Total, tc.served.Bad, tc.served.Total)
		}
	}

	// A series missing for 100 gathers is forgotten at its URL, its value kept.
	nb2 := newRED(GRPC)
	b.r.Store(nb2)
	nb2.observe("x", route, "OK", "", time.Millisecond, 1)
	before, _ := counts()
	for range forgetAfter {
		counts()
	}
	if got, _ := counts(); got != (Counts{Bad: before.Bad, Total: before.Total}) {
		t.Errorf("availability after %d gathers without b's Internal series = %+v; want %+v", forgetAfter+1, got, before)
	}
	n := 0
	for _, st := range g.live[1] {
		if st.fam == RequestsFamily(GRPC) {
			n++
		}
	}
	if n != 1 {
		t.Errorf("b's tracked requests series = %d; want the 1 it serves", n)
	}
	if len(g.dead) == 0 {
		t.Errorf("no forgotten series kept")
	}
	nb2.observe("x", route, "Internal", "", time.Millisecond, 2) // it comes back, as new
	if got, _ := counts(); got != (Counts{Bad: before.Bad + 2, Total: before.Total + 2}) {
		t.Errorf("availability after b's Internal series came back = %+v; want %+v", got, Counts{Bad: before.Bad + 2, Total: before.Total + 2})
	}
}

// TestScrapeRedacts: errors name a URL without its password.
func TestScrapeRedacts(t *testing.T) {
	for _, u := range []string{"https://user:secret@127.0.0.1:1/metrics", "http://user:secret@127.0.0.1:1/%zz"} {
		_, err := Scrape([]string{u}, "", &http.Client{Timeout: 10 * time.Second}).Gather()
		if err == nil || strings.Contains(err.Error(), "secret") {
			t.Errorf("Gather(%s) = %v; want an error without the password", u, err)
		}
	}
	_, err := Scrape([]string{"https://user:secret@127.0.0.1:1/metrics"}, "", nil).Gather()
	if err == nil || !strings.Contains(err.Error(), "https://user:xxxxx@127.0.0.1:1/metrics") {
		t.Errorf("Gather = %v; want an error naming the URL with its password redacted", err)
	}
}
