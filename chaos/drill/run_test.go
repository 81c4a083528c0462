package drill

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/redline-dev/redline/chaos/faults"
	"github.com/redline-dev/redline/kit/fault"
	"github.com/redline-dev/redline/kit/log"
	"github.com/redline-dev/redline/kit/metric"
	"github.com/redline-dev/redline/stress/scenario"
)

// fakeStack is a BFF route, an admin endpoint (/metrics and a real fault registry's
// /chaos/faults) and an SRE API, in memory: the whole drill runs in a synctest bubble, on
// its fake clock, with no network.
type fakeStack struct {
	t    *testing.T
	reg  *faults.Registry
	mux  *http.ServeMux
	reqs *prometheus.CounterVec
	dur  *prometheus.HistogramVec
	slow prometheus.Counter

	// sticky makes the BFF fail from the first fault it meets until the end: a system
	// that does not recover.
	sticky, broken atomic.Bool
	// blindOnFault makes /metrics fail while a fault is active.
	blindOnFault atomic.Bool
	// bffCalls counts BFF requests; adminCalls admin and SRE requests.
	bffCalls, adminCalls atomic.Int64
	// onFaults, set before the drill runs, sees each request to /chaos/faults before it is
	// served.
	onFaults func(*http.Request)

	mu       sync.Mutex
	incident []map[string]any // bodies posted to the SRE API, in order, with "path"
}

func newFakeStack(t *testing.T, opts ...faults.Option) *fakeStack {
	s := &fakeStack{t: t, mux: http.NewServeMux(),
		reg: faults.New(append([]faults.Option{faults.WithLogger(log.Discard())}, opts...)...)}
	prom := prometheus.NewRegistry()
	s.reqs = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "redline_http_server_requests_total"},
		[]string{"service", "route", "method", "code", "lane"})
	s.dur = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "redline_http_server_duration_seconds", Buckets: metric.Buckets},
		[]string{"service", "route", "method", "code", "lane"})
	s.slow = prometheus.NewCounter(prometheus.CounterOpts{Name: "fake_slow_requests_total"})
	prom.MustRegister(s.reqs, s.dur, s.slow)
	s.reg.Register(s.mux)
	metrics := promhttp.HandlerFor(prom, promhttp.HandlerOpts{})
	s.mux.Handle("GET /metrics", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.adminCalls.Add(1)
		if s.blindOnFault.Load() && len(s.reg.List()) > 0 {
			http.Error(w, "down", http.StatusInternalServerError)
			return
		}
		metrics.ServeHTTP(w, r)
	}))
	s.mux.HandleFunc("GET /v1/explore", func(w http.ResponseWriter, r *http.Request) {
		s.bffCalls.Add(1)
		start := time.Now()
		err := s.reg.Inject(r.Context(), fault.Point{Kind: fault.HTTP, Side: fault.Server, Service: "bff", Op: "GET /v1/explore"})
		if err != nil && s.sticky.Load() {
			s.broken.Store(true)
		}
		code := http.StatusOK
		if err != nil || s.broken.Load() {
			code = http.StatusServiceUnavailable
		}
		el := time.Since(start)
		if el > 10*time.Millisecond {
			s.slow.Inc()
		}
		lv := []string{"bff", "GET /v1/explore", "GET", strconv.Itoa(code), ""}
		s.reqs.WithLabelValues(lv...).Inc()
		s.dur.WithLabelValues(lv...).Observe(el.Seconds())
		w.WriteHeader(code)
		_, _ = io.WriteString(w, `{"notes":[]}`)
	})
	s.mux.HandleFunc("POST /v1/incidents/", s.sre)
	s.mux.HandleFunc("POST /v1/incidents", s.sre)
	return s
}

// sre records what the drill posts to the SRE API and answers an incident with id "inc-1".
func (s *fakeStack) sre(w http.ResponseWriter, r *http.Request) {
	s.adminCalls.Add(1)
	body := map[string]any{}
	_ = json.NewDecoder(r.Body).Decode(&body)
	body["path"] = r.URL.Path
	s.mu.Lock()
	s.incident = append(s.incident, body)
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"id":"inc-1","title":"t","state":"triggered"}`)
}

func (s *fakeStack) posted() []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]map[string]any(nil), s.incident...)
}

// RoundTrip serves req in memory.
func (s *fakeStack) RoundTrip(req *http.Request) (*http.Response, error) {
	if s.onFaults != nil && strings.HasPrefix(req.URL.Path, "/chaos/faults") {
		s.onFaults(req)
	}
	rec := httptest.NewRecorder()
	s.mux.ServeHTTP(rec, req)
	resp := rec.Result()
	resp.Request = req
	return resp, nil
}

func (s *fakeStack) env(progress io.Writer) Env {
	return Env{BFF: "http://bff.test", Admin: "http://admin.test", SRE: "http://sre.test",
		Client: &http.Client{Transport: s, Timeout: 10 * time.Second}, Progress: progress, RunID: "drtest"}
}

// testDrill parses y with the explore scenario.
func testDrill(t *testing.T, y string) *Drill {
	t.Helper()
	d, err := Parse("t.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	if d.Scenario, err = scenario.Parse("explore.yaml", []byte(exploreScenario), scenario.Routes(scenario.RedNoteRoutes)); err != nil {
		t.Fatal(err)
	}
	return d
}

const guardDrill = `name: explore-down
steady_state:
  window: 2s
  slis: [{name: bff-errors, service: bff, routes: ["GET /v1/explore"], max_error_ratio: 0.01}]
load: {scenario: explore, rate: 20, duration: 8s}
faults:
  - {at: 2s, for: 4s, spec: {service: bff, kind: http, side: server, op: GET /v1/explore, type: error, code: 503}}
guard_interval: 500ms
rollback_check: 0s
`

// TestGuardAbortsWithinOneInterval: an error fault breaks the SLI; the first guard sample
// after the fault breaches its abort bound (5 × 1%), and at that sample the load is
// canceled and every fault cleared, including one the drill did not add.
func TestGuardAbortsWithinOneInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newFakeStack(t)
		var out bytes.Buffer
		d := testDrill(t, guardDrill)
		rep, err := Run(t.Context(), d, s.env(&out))
		if err != nil {
			t.Fatal(err)
		}
		t.Log(out.String())
		if rep.Verdict != Aborted {
			t.Fatalf("verdict %s (%s); want aborted", rep.Verdict, rep.Reason)
		}
		ab := rep.Guard.Abort
		if ab == nil || ab.SLI != "bff-errors" || ab.Bound != 0.05 || ab.Observed <= 0.05 || !strings.Contains(rep.Reason, "bff-errors") {
			t.Fatalf("abort = %+v, reason %q; want bff-errors beyond 5%%", ab, rep.Reason)
		}
		var added time.Time
		for _, f := range rep.Faults {
			if f.Phase == PhaseExperiment {
				added = f.AddedAt
				if f.RemovedBy != "guard" || !f.RemovedAt.Equal(ab.ActedAt) {
					t.Errorf("fault %+v; want removed by the guard at %v", f, ab.ActedAt)
				}
			}
		}
		// The SLI crossed its abort bound between the last sample within it and the
		// breaching one, one interval apart; the guard acted at that sample, the first
		// beyond the bound.
		iv := d.GuardInterval
		if ab.LastOKAt.IsZero() || !ab.LastOKAt.Before(ab.BreachAt) || ab.BreachAt.Sub(ab.LastOKAt) > iv {
			t.Errorf("last ok sample %v, breach %v; want consecutive samples, %v apart", ab.LastOKAt, ab.BreachAt, iv)
		}
		if ab.ActedAt.Before(ab.BreachAt) || ab.ActedAt.Sub(ab.BreachAt) > iv {
			t.Errorf("breach %v, acted %v; want the action within %v of the breach", ab.BreachAt, ab.ActedAt, iv)
		}
		if added.IsZero() || ab.BreachAt.Before(added) || ab.BreachAt.Sub(added) > 2*iv {
			t.Errorf("fault added at %v, breach at %v; want the breach within two intervals (%v)", added, ab.BreachAt, iv)
		}
		breachT := ab.BreachAt.Sub(rep.Started).Seconds()
		for _, p := range rep.SLIs[0].Points {
			if p.V > ab.Bound && p.T < breachT-0.0005 {
				t.Errorf("the SLI was %v > %v at %.3fs, before the guard acted on the sample at %.3fs", p.V, ab.Bound, p.T, breachT)
			}
		}
		if n := len(s.reg.List()); n != 0 {
			t.Errorf("%d faults active after the abort", n)
		}
		if l := rep.Load; l == nil || l.Stopped != "canceled" || l.Started >= uint64(l.Planned) {
			t.Errorf("load %+v; want it canceled before its %d planned iterations", l, l.Planned)
		}
		if p := rep.Phases[len(rep.Phases)-1]; p.Name != PhaseAfter || !p.Pass {
			t.Errorf("last phase %+v; want the steady state back after the abort", p)
		}
	})
}

// TestGuardTripsDuringASlowAdd: the BFF breaks while the POST /chaos/faults is slow; the
// guard still judges every sample and trips within the usual time, before the POST
// returns, and the fault that POST adds after the guard's clear is removed too.
func TestGuardTripsDuringASlowAdd(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newFakeStack(t)
		d := testDrill(t, guardDrill)
		var posted, returned time.Time
		s.onFaults = func(req *http.Request) {
			if req.Method != http.MethodPost || !posted.IsZero() {
				return
			}
			posted = time.Now()
			s.broken.Store(true)
			time.Sleep(5 * time.Second) // within the admin call's 10s timeout
			s.broken.Store(false)
			returned = time.Now()
		}
		var out bytes.Buffer
		rep, err := Run(t.Context(), d, s.env(&out))
		if err != nil {
			t.Fatal(err)
		}
		if rep.Verdict != Aborted || rep.Guard.Abort.SLI != "bff-errors" {
			t.Fatalf("verdict %s (%s); want aborted on bff-errors\n%s", rep.Verdict, rep.Reason, out.String())
		}
		ab, iv := rep.Guard.Abort, d.GuardInterval
		if ab.BreachAt.Before(posted) || ab.BreachAt.Sub(posted) > 2*iv || ab.ActedAt.Sub(ab.BreachAt) > iv || !ab.ActedAt.Before(returned) {
			t.Errorf("POST from %v to %v, breach %v, acted %v; want the breach within %v of the POST and the action within %v of it, before the POST returned",
				posted, returned, ab.BreachAt, ab.ActedAt, 2*iv, iv)
		}
		if n := len(s.reg.List()); n != 0 {
			t.Errorf("%d faults active after the abort: %+v", n, s.reg.List())
		}
		if len(rep.Faults) != 1 || rep.Faults[0].ID == "" || rep.Faults[0].RemovedBy != "guard" || rep.Faults[0].RemovedAt.Before(returned) {
			t.Errorf("faults %+v; want the one added after the clear removed for the guard", rep.Faults)
		}
		if p := phaseNamed(rep, PhaseExperiment); p == nil || p.Pass || !strings.HasPrefix(p.Detail, "aborted by the guard") {
			t.Errorf("experiment phase %+v; want it aborted", p)
		}
	})
}

// TestGuardTripsAfterTheSchedule: the BFF breaks once the last fault is removed, while the
// load runs on; the guard trips then, and the experiment is recorded as aborted.
func TestGuardTripsAfterTheSchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newFakeStack(t)
		d := testDrill(t, strings.Replace(guardDrill, "type: error, code: 503", "type: delay, delay: 1ms", 1))
		d.Faults[0].For = time.Second // removed at 3s; the load runs to 8s
		s.onFaults = func(req *http.Request) {
			if req.Method == http.MethodDelete && req.URL.Path != "/chaos/faults" {
				s.broken.Store(true)
			}
		}
		rep, err := Run(t.Context(), d, s.env(nil))
		if err != nil {
			t.Fatal(err)
		}
		if rep.Verdict != Aborted || rep.Guard.Abort == nil {
			t.Fatalf("verdict %s (%s); want aborted", rep.Verdict, rep.Reason)
		}
		if f := rep.Faults[0]; f.RemovedBy != "schedule" || !rep.Guard.Abort.BreachAt.After(f.RemovedAt) {
			t.Fatalf("fault %+v, breach at %v; want the breach after the fault's removal on schedule", f, rep.Guard.Abort.BreachAt)
		}
		p := phaseNamed(rep, PhaseExperiment)
		if p == nil || p.Pass || !strings.HasPrefix(p.Detail, "aborted by the guard: bff-errors") {
			t.Errorf("experiment phase %+v; want it aborted", p)
		}
	})
}

func phaseNamed(rep *Report, name string) *Phase {
	for i := range rep.Phases {
		if rep.Phases[i].Name == name {
			return &rep.Phases[i]
		}
	}
	return nil
}

// TestGuardClearsEveryFault: DELETE /chaos/faults is the big red button: a fault someone
// else set goes too.
func TestGuardClearsEveryFault(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newFakeStack(t)
		d := testDrill(t, guardDrill)
		// A fault of another drill, on a route this one does not touch; it would outlive
		// this test by an hour.
		if _, err := s.reg.Add(faults.Spec{Type: faults.TypeAbort, Service: "search", TTL: "1h"}); err != nil {
			t.Fatal(err)
		}
		rep, err := Run(t.Context(), d, s.env(nil))
		if err != nil {
			t.Fatal(err)
		}
		if rep.Verdict != Aborted || rep.Guard.Abort.Cleared != 2 {
			t.Fatalf("verdict %s, abort %+v; want aborted, 2 faults cleared", rep.Verdict, rep.Guard.Abort)
		}
		if n := len(s.reg.List()); n != 0 {
			t.Errorf("%d faults active after the abort", n)
		}
	})
}

// TestGuardAbortsWhenBlind: the armed guard that cannot read the metrics three times in a
// row aborts.
func TestGuardAbortsWhenBlind(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newFakeStack(t)
		s.blindOnFault.Store(true)
		d := testDrill(t, strings.Replace(guardDrill, "type: error, code: 503", "type: delay, delay: 1ms", 1))
		rep, err := Run(t.Context(), d, s.env(nil))
		if err != nil {
			t.Fatal(err)
		}
		if rep.Verdict != Aborted || !strings.Contains(rep.Reason, "could not read the metrics 3 times") {
			t.Fatalf("verdict %s (%s); want aborted, blind", rep.Verdict, rep.Reason)
		}
		if len(s.reg.List()) != 0 {
			t.Error("faults left after the abort")
		}
	})
}

const harmlessDrill = `name: explore-slow
description: A small delay; nothing breaks.
steady_state:
  window: 2s
  slis:
    - {name: bff-errors, service: bff, routes: ["GET /v1/explore"], max_error_ratio: 0.01}
    - {name: bff-p99, service: bff, max_p99: 250ms}
load: {scenario: explore, rate: 20, duration: 6s}
faults:
  - {at: 1s, for: 3s, spec: {service: bff, kind: http, side: server, op: GET /v1/explore, type: delay, delay: 20ms}}
expect:
  - {sli: bff-errors, during: faults, max_error_ratio: 0.05}
  - {sli: bff-p99, during: faults}
  - {metric: fake_slow_requests_total, increases: true, within: 500ms}
  - {goodput: 0.99}
guard_interval: 500ms
rollback_check: 1s
`

// TestHarmlessFaultPasses: every phase runs and holds, each fault is added and removed on
// schedule (at is from the experiment's start), each expectation is judged on what was
// measured, and the drill is on the incident timeline.
func TestHarmlessFaultPasses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newFakeStack(t)
		var out bytes.Buffer
		rep, err := Run(t.Context(), testDrill(t, harmlessDrill), s.env(&out))
		if err != nil {
			t.Fatal(err)
		}
		if !rep.Passed() {
			t.Fatalf("verdict %s: %s\n%s", rep.Verdict, rep.Reason, out.String())
		}
		var names []string
		for _, p := range rep.Phases {
			names = append(names, p.Name)
		}
		if got := strings.Join(names, ","); got != "steady-state,rollback-rehearsal,experiment,after" {
			t.Errorf("phases %s", got)
		}
		exp := rep.Phases[2]
		if len(rep.Faults) != 2 {
			t.Fatalf("faults %+v; want one in the rehearsal, one in the experiment", rep.Faults)
		}
		f := rep.Faults[1]
		if f.Phase != PhaseExperiment || f.RemovedBy != "schedule" || f.TTL != "13s" ||
			f.AddedAt.Sub(exp.Started) < time.Second || f.AddedAt.Sub(exp.Started) > time.Second+10*time.Millisecond ||
			f.RemovedAt.Sub(f.AddedAt) < 3*time.Second || f.RemovedAt.Sub(f.AddedAt) > 3*time.Second+10*time.Millisecond {
			t.Errorf("experiment fault %+v, experiment started %v; want added 1s in, removed 3s later, ttl 3s + 10s", f, exp.Started)
		}
		if rep.Faults[0].Phase != PhaseRehearsal || rep.Faults[0].RemovedBy != "schedule" || rep.Faults[0].TTL != "11s" {
			t.Errorf("rehearsal fault %+v", rep.Faults[0])
		}
		for _, o := range rep.Expectations {
			if !o.Pass {
				t.Errorf("expectation %+v failed", o)
			}
		}
		if p99 := rep.Expectations[1].Value; p99 < 0.02 || p99 > 0.025 {
			t.Errorf("p99 during a 20ms delay = %v s; want within the 10–25 ms bucket's top", p99)
		}
		if n := len(s.reg.List()); n != 0 {
			t.Errorf("%d faults left", n)
		}
		if rep.Guard.Abort != nil || rep.Guard.Checks == 0 {
			t.Errorf("guard %+v; want armed checks and no abort", rep.Guard)
		}
		// The incident: opened SEV4 with no policy, a drill entry per phase and fault,
		// resolved.
		posts := s.posted()
		if len(posts) < 8 {
			t.Fatalf("SRE API got %d posts: %v", len(posts), posts)
		}
		if o := posts[0]; o["path"] != "/v1/incidents" || o["severity"] != "SEV4" || o["policy"] != "" || o["title"] != "drill explore-slow" || o["service"] != "bff" {
			t.Errorf("open = %v", o)
		}
		if last := posts[len(posts)-1]; last["path"] != "/v1/incidents/inc-1/resolve" {
			t.Errorf("last post = %v; want the resolve", last)
		}
		for _, p := range posts[1 : len(posts)-1] {
			if p["path"] != "/v1/incidents/inc-1/timeline" || p["kind"] != "drill" {
				t.Errorf("timeline post %v; want kind drill", p)
			}
		}
		if rep.Incident != "inc-1" {
			t.Errorf("report incident %q", rep.Incident)
		}
	})
}

// TestNotInSteadyStateInjectsNothing: a system already failing is reported as such and no
// fault is added.
func TestNotInSteadyStateInjectsNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newFakeStack(t)
		if _, err := s.reg.Add(faults.Spec{Type: faults.TypeError, Code: "503", Service: "bff", TTL: "1h"}); err != nil {
			t.Fatal(err)
		}
		rep, err := Run(t.Context(), testDrill(t, harmlessDrill), s.env(nil))
		if err != nil {
			t.Fatal(err)
		}
		if rep.Verdict != NotSteady || len(rep.Faults) != 0 || len(rep.Phases) != 1 || !strings.Contains(rep.Reason, "bff-errors 100.00% > 1.00%") {
			t.Fatalf("verdict %s (%s), faults %v, phases %d; want not-steady, nothing injected", rep.Verdict, rep.Reason, rep.Faults, len(rep.Phases))
		}
		for _, e := range s.reg.Events() {
			if e.Type == "added" && strings.Contains(e.Description, "explore-slow") {
				t.Errorf("the drill added a fault: %+v", e)
			}
		}
	})
}

// TestRollbackFailureStopsBeforeTheExperiment: after the rehearsal's faults are removed the
// system stays broken, so the experiment never runs.
func TestRollbackFailureStopsBeforeTheExperiment(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newFakeStack(t)
		s.sticky.Store(true)
		d := testDrill(t, strings.Replace(harmlessDrill, "type: delay, delay: 20ms", "type: error, code: 503", 1))
		d.Abort.MaxErrorRatio = 1 // the guard stays out of it
		rep, err := Run(t.Context(), d, s.env(nil))
		if err != nil {
			t.Fatal(err)
		}
		if rep.Verdict != RollbackFailed || !strings.Contains(rep.Reason, "steady state not back within 1s") {
			t.Fatalf("verdict %s (%s); want rollback-failed", rep.Verdict, rep.Reason)
		}
		for _, p := range rep.Phases {
			if p.Name == PhaseExperiment {
				t.Error("the experiment ran")
			}
		}
		if len(s.reg.List()) != 0 {
			t.Error("faults left")
		}
	})
}

// TestRefusedFaultIsAnError: the admin API refuses a fault (its ttl beyond the registry's
// max); the drill stops with an error and removes what it added.
func TestRefusedFaultIsAnError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newFakeStack(t, faults.WithMaxTTL(13*time.Second))
		d := testDrill(t, strings.Replace(harmlessDrill, "rollback_check: 1s", "rollback_check: 0s", 1))
		d.Faults = append(d.Faults, Fault{At: 2 * time.Second, For: 3 * time.Second, Spec: faults.Spec{Type: faults.TypeAbort, Service: "nobody"}})
		d.Faults[0].For = 3 * time.Second
		d.Faults[1].At = 1500 * time.Millisecond
		d.Faults[1].For = 4 * time.Second // ttl 14s > 13s
		rep, err := Run(t.Context(), d, s.env(nil))
		if err == nil || rep == nil || rep.Verdict != Errored || !strings.Contains(err.Error(), "add faults[1]") {
			t.Fatalf("Run = %v, %+v; want an error adding faults[1]", err, rep)
		}
		if len(s.reg.List()) != 0 {
			t.Errorf("faults left: %+v", s.reg.List())
		}
		if rep.Faults[0].RemovedBy != "cleanup" || rep.Faults[1].Error == "" {
			t.Errorf("faults %+v; want the first removed by the cleanup, the second refused", rep.Faults)
		}
	})
}

// TestRunRefusesBeforeSendingAnything: a bad drill or env is an ErrInvalid, and neither the
// BFF nor the admin endpoint hears of it.
func TestRunRefusesBeforeSendingAnything(t *testing.T) {
	s := newFakeStack(t)
	for _, tc := range []struct {
		name string
		edit func(*Drill, *Env)
		want string
	}{
		{"a lane without a token", func(d *Drill, _ *Env) { d.Load.Lane = "red" }, `load.lane "red" needs a lane token`},
		{"no admin URL", func(_ *Drill, e *Env) { e.Admin = "" }, `the admin URL "" is not an http(s) URL`},
		{"a bad SRE URL", func(_ *Drill, e *Env) { e.SRE = "sre:9200" }, `the SRE API URL "sre:9200"`},
		{"an invalid drill", func(d *Drill, _ *Env) { d.Faults[0].For = time.Hour }, "faults[0]: at 1s + for 1h0m0s ends after"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, env := testDrill(t, harmlessDrill), s.env(nil)
			tc.edit(d, &env)
			rep, err := Run(context.Background(), d, env)
			if rep != nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Run = %v, %v; want ErrInvalid with %q", rep, err, tc.want)
			}
		})
	}
	if n, m := s.bffCalls.Load(), s.adminCalls.Load(); n+m != 0 {
		t.Errorf("%d BFF and %d admin calls; want none", n, m)
	}
}

// TestReportFiles: the JSON round-trips and the HTML is self-contained with a plot per SLI,
// the faults shaded and the abort marked.
func TestReportFiles(t *testing.T) {
	var rep *Report
	synctest.Test(t, func(t *testing.T) {
		var err error
		rep, err = Run(t.Context(), testDrill(t, guardDrill), newFakeStack(t).env(nil))
		if err != nil {
			t.Fatal(err)
		}
	})
	dir := t.TempDir()
	jsonPath, htmlPath, err := WriteFiles(dir, rep)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := readFile(t, jsonPath)
	var back Report
	if err := json.Unmarshal(raw, &back); err != nil || back.Verdict != Aborted || back.Guard.Abort == nil || len(back.SLIs[0].Points) == 0 {
		t.Fatalf("drill.json = %v, %+v", err, back)
	}
	_, page := readFile(t, htmlPath)
	for _, want := range []string{"<svg", `fill-opacity="0.14"`, ">fault 0</text>", ">abort</text>", "stroke-dasharray", "ABORTED", "bff-errors", "The experiment&#39;s load"} {
		if !strings.Contains(page, want) {
			t.Errorf("drill.html lacks %q", want)
		}
	}
	for _, bad := range []string{"<script", "<link", " src=", "url("} {
		if strings.Contains(page, bad) {
			t.Errorf("drill.html fetches or runs something: it has %q", bad)
		}
	}
}

func readFile(t *testing.T, path string) ([]byte, string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b, string(b)
}

// fakeSupervisor is the admin API of `up --procs`' supervisor, in memory: a process the
// drill kills or pauses is down until started or resumed (its for is the supervisor's to
// honour, and is recorded), and while "explore" is down the BFF's explore route fails.
type fakeSupervisor struct {
	mu    sync.Mutex
	calls []string // "kill explore {restart_after:4s}", "start explore", ...
	down  map[string]bool
	// audits are the answers of GET /chaos/audit/checkout, in turn; the last one repeats.
	audits []string
}

func (s *fakeStack) withSupervisor() *fakeSupervisor {
	sup := &fakeSupervisor{down: map[string]bool{}}
	s.mux.HandleFunc("POST /chaos/procs/{name}/{action}", func(w http.ResponseWriter, r *http.Request) {
		name, action := r.PathValue("name"), r.PathValue("action")
		var body []byte
		if r.Body != nil {
			body, _ = io.ReadAll(r.Body)
		}
		sup.mu.Lock()
		call := strings.TrimSpace(action + " " + name + " " + string(body))
		sup.calls = append(sup.calls, call)
		switch action {
		case "kill", "pause":
			sup.down[name] = true
		case "start", "resume":
			sup.down[name] = false
		}
		broken := sup.down["explore"]
		sup.mu.Unlock()
		s.broken.Store(broken)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"name":"`+name+`","state":"running"}`)
	})
	s.mux.HandleFunc("GET /chaos/audit/checkout", func(w http.ResponseWriter, r *http.Request) {
		sup.mu.Lock()
		a := `{}`
		if len(sup.audits) > 0 {
			a = sup.audits[0]
			if len(sup.audits) > 1 {
				sup.audits = sup.audits[1:]
			}
		}
		sup.calls = append(sup.calls, "audit")
		sup.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, a)
	})
	return sup
}

func (sup *fakeSupervisor) log() []string {
	sup.mu.Lock()
	defer sup.mu.Unlock()
	return append([]string(nil), sup.calls...)
}

const procDrill = `name: explore-killed
steady_state:
  window: 2s
  slis: [{name: bff-errors, service: bff, routes: ["GET /v1/explore"], max_error_ratio: 0.01}]
load: {scenario: explore, rate: 20, duration: 8s}
faults:
  - {at: 2s, for: 4s, proc: {name: explore, action: kill}}
guard_interval: 500ms
rollback_check: 0s
`

// TestProcFaultGuardBringsTheProcessBack: a killed process breaks the SLI; the guard aborts
// and starts the process at once instead of waiting for the supervisor's restart.
func TestProcFaultGuardBringsTheProcessBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newFakeStack(t)
		sup := s.withSupervisor()
		env := s.env(nil)
		env.Procs = "http://procs.test"
		rep, err := Run(t.Context(), testDrill(t, procDrill), env)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Verdict != Aborted || rep.Guard.Abort == nil || rep.Guard.Abort.ClearError != "" {
			t.Fatalf("verdict %s (%s), abort %+v; want aborted, cleared", rep.Verdict, rep.Reason, rep.Guard.Abort)
		}
		want := []string{`kill explore {"restart_after":"4s"}`, "start explore"}
		if got := sup.log(); !reflect.DeepEqual(got, want) {
			t.Errorf("supervisor calls %q; want %q", got, want)
		}
		f := rep.Faults[0]
		if f.Proc == nil || f.RemovedBy != "guard" || !f.RemovedAt.Equal(rep.Guard.Abort.ActedAt) || f.What != "kill -9 explore (restarted after 4s)" {
			t.Errorf("fault %+v; want the kill, removed by the guard when it acted", f)
		}
		if rep.Guard.Abort.Cleared != 1 || !strings.Contains(rep.Guard.Decisions[len(rep.Guard.Decisions)-1].Detail, "bringing back the processes") {
			t.Errorf("abort %+v, decisions %+v; want the process counted and named", rep.Guard.Abort, rep.Guard.Decisions)
		}
		if p := phaseNamed(rep, PhaseAfter); p == nil || !p.Pass {
			t.Errorf("after phase %+v; want the steady state back", p)
		}
	})
}

// TestProcFaultOnSchedule: a pause that harms nothing is rehearsed and run, each time
// resumed on schedule, and the drill passes.
func TestProcFaultOnSchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newFakeStack(t)
		sup := s.withSupervisor()
		env := s.env(nil)
		env.Procs = "http://procs.test"
		d := testDrill(t, strings.NewReplacer("proc: {name: explore, action: kill}", "proc: {name: search, action: pause}",
			"rollback_check: 0s", "rollback_check: 1s").Replace(procDrill))
		rep, err := Run(t.Context(), d, env)
		if err != nil {
			t.Fatal(err)
		}
		if !rep.Passed() {
			t.Fatalf("verdict %s: %s", rep.Verdict, rep.Reason)
		}
		want := []string{`pause search {"for":"1s"}`, "resume search", `pause search {"for":"4s"}`, "resume search"}
		if got := sup.log(); !reflect.DeepEqual(got, want) {
			t.Errorf("supervisor calls %q; want %q", got, want)
		}
		for _, f := range rep.Faults {
			if f.RemovedBy != "schedule" || f.ID == "" {
				t.Errorf("fault %+v; want removed on schedule", f)
			}
		}
	})
}

func TestProcFaultNeedsTheSupervisor(t *testing.T) {
	s := newFakeStack(t)
	_, err := Run(t.Context(), testDrill(t, procDrill), s.env(nil))
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "process faults go to the supervisor of `redline up --procs`") {
		t.Fatalf("Run without Procs = %v; want ErrInvalid naming the supervisor", err)
	}
	if s.bffCalls.Load() != 0 || s.adminCalls.Load() != 0 {
		t.Errorf("%d BFF and %d admin calls; want none before the refusal", s.bffCalls.Load(), s.adminCalls.Load())
	}
}

const auditA = `{"settled": true, "orders": {"PAID": 3}, "payments": {"SUCCEEDED": 3}, "skus": [{"sku": 1, "available": 7, "reserved": 0, "sold": 3}]}`

// TestAuditWaitsForTheShopToSettle: the audit before, then after the experiment until the
// shop settles; a settled, consistent, conserving shop passes.
func TestAuditWaitsForTheShopToSettle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newFakeStack(t)
		sup := s.withSupervisor()
		sup.audits = []string{auditA,
			`{"settled": false, "unsettled": ["2 payments pending"], "orders": {"PAID": 3, "PENDING_PAYMENT": 2}, "skus": [{"sku": 1, "available": 5, "reserved": 2, "sold": 3}]}`,
			`{"settled": true, "orders": {"PAID": 5}, "payments": {"SUCCEEDED": 5}, "skus": [{"sku": 1, "available": 5, "reserved": 0, "sold": 5}]}`}
		d := testDrill(t, strings.Replace(guardDrill, "type: error, code: 503", "type: delay, delay: 1ms", 1)+
			"expect: [{audit: checkout, settle: 5s}]\n")
		rep, err := Run(t.Context(), d, s.env(nil)) // no Procs: the admin endpoint audits
		if err != nil {
			t.Fatal(err)
		}
		if !rep.Passed() {
			t.Fatalf("verdict %s: %s", rep.Verdict, rep.Reason)
		}
		if got := sup.log(); !reflect.DeepEqual(got, []string{"audit", "audit", "audit"}) {
			t.Errorf("calls %q; want one audit before, two after (the first unsettled)", got)
		}
		if o := rep.Expectations[0]; !o.Pass || !strings.Contains(o.Observed, "2 orders placed during the drill (all orders now: PAID 5), 1 SKUs conserved") {
			t.Errorf("outcome %+v", o)
		}
	})
}

func TestAuditFindsALossyShop(t *testing.T) {
	for _, tc := range []struct{ name, after, want string }{
		{"stock leaked", `{"settled": true, "orders": {"PAID": 4}, "skus": [{"sku": 1, "available": 5, "reserved": 0, "sold": 4}]}`,
			"SKU 1: stock + reserved + sold = 9; it was 10"},
		{"sku gone", `{"settled": true, "orders": {"PAID": 3}, "skus": []}`, "SKU 1 vanished (it had 10 units)"},
		{"inconsistent", `{"settled": true, "orders": {"PAID": 3}, "skus": [{"sku": 1, "available": 7, "reserved": 0, "sold": 3}], "problems": ["order 9: PAID without its payment"]}`,
			"order 9: PAID without its payment"},
		{"never settled", `{"settled": false, "unsettled": ["1 orders open"], "orders": {"CREATING": 1, "PAID": 3}, "skus": [{"sku": 1, "available": 7, "reserved": 0, "sold": 3}]}`,
			"not settled: 1 orders open"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := newFakeStack(t)
				sup := s.withSupervisor()
				sup.audits = []string{auditA, tc.after}
				d := testDrill(t, strings.Replace(guardDrill, "type: error, code: 503", "type: delay, delay: 1ms", 1)+
					"expect: [{audit: checkout, settle: 3s}]\n")
				rep, err := Run(t.Context(), d, s.env(nil))
				if err != nil {
					t.Fatal(err)
				}
				if o := rep.Expectations[0]; rep.Verdict != Failed || o.Pass || !strings.Contains(o.Observed, tc.want) {
					t.Errorf("verdict %s, outcome %+v; want failed, saying %q", rep.Verdict, o, tc.want)
				}
			})
		})
	}
}

// TestMetricRateAndShare judges max_rate and max_share on two samples around the faults.
func TestMetricRateAndShare(t *testing.T) {
	d := testDrill(t, strings.Replace(guardDrill, "rollback_check: 0s", `rollback_check: 0s
expect:
  - {metric: admitted_total, max_rate: 55}
  - {metric: picks_total, labels: {instance: note-2}, max_share: 0.2, of: {service: note}}
`, 1))
	t0 := time.Unix(1000, 0)
	judge := func(admitted, part, whole float64, found bool) []Outcome {
		r := &run{d: d, start: t0, smp: &sampler{samples: []sample{
			{at: t0.Add(2 * time.Second), metrics: map[int]float64{0: 100, 1: 10}, of: map[int]float64{1: 100}, found: map[int]bool{0: true, 1: found}},
			{at: t0.Add(6 * time.Second), metrics: map[int]float64{0: 100 + admitted, 1: 10 + part}, of: map[int]float64{1: 100 + whole}, found: map[int]bool{0: true, 1: found}},
		}}, rep: &Report{Phases: []Phase{{Name: PhaseExperiment, Started: t0, Ended: t0.Add(8 * time.Second)}},
			Faults: []FaultRecord{{Phase: PhaseExperiment, AddedAt: t0.Add(2 * time.Second), RemovedAt: t0.Add(6 * time.Second)}}}}
		r.evaluate()
		return r.rep.Expectations
	}
	o := judge(200, 10, 200, true)
	if !o[0].Pass || o[0].Value != 50 || !o[1].Pass || o[1].Value != 0.05 {
		t.Errorf("within bounds: %+v; want 50/s and 5%%, both held", o)
	}
	o = judge(240, 60, 200, true)
	if o[0].Pass || o[0].Value != 60 || o[1].Pass || o[1].Value != 0.3 {
		t.Errorf("beyond bounds: %+v; want 60/s and 30%%, both failed", o)
	}
	if o = judge(0, 0, 0, true); o[1].Pass || !strings.Contains(o[1].Observed, "did not rise") {
		t.Errorf("no traffic: %+v; want the share failed for want of a whole", o[1])
	}
	if o = judge(0, 0, 200, false); o[1].Pass || !strings.Contains(o[1].Observed, `no series matches picks_total{instance="note-2"}`) {
		t.Errorf("no such instance: %+v; want it failed, naming the labels", o[1])
	}
}

// withNet serves chaos.net's admin API in memory: a toxic or outage on "explore" breaks the
// explore route until it is removed; DELETE /chaos/net clears all.
func (s *fakeStack) withNet() *fakeSupervisor {
	sup := &fakeSupervisor{down: map[string]bool{}}
	update := func() {
		sup.mu.Lock()
		broken := sup.down["explore"]
		sup.mu.Unlock()
		s.broken.Store(broken)
	}
	record := func(r *http.Request, call string, down map[string]bool) {
		sup.mu.Lock()
		sup.calls = append(sup.calls, call)
		for k, v := range down {
			sup.down[k] = v
		}
		sup.mu.Unlock()
		update()
	}
	s.mux.HandleFunc("POST /chaos/net/toxics", func(w http.ResponseWriter, r *http.Request) {
		var t struct{ Proxy, Type, TTL string }
		_ = json.NewDecoder(r.Body).Decode(&t)
		record(r, "toxic "+t.Proxy+" "+t.Type+" ttl "+t.TTL, map[string]bool{t.Proxy: true})
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"id":"tx-`+t.Proxy+`","proxy":"`+t.Proxy+`"}`)
	})
	s.mux.HandleFunc("DELETE /chaos/net/toxics/{id}", func(w http.ResponseWriter, r *http.Request) {
		record(r, "delete "+r.PathValue("id"), map[string]bool{strings.TrimPrefix(r.PathValue("id"), "tx-"): false})
		_, _ = io.WriteString(w, `{"removed":1}`)
	})
	s.mux.HandleFunc("POST /chaos/net/proxies/{name}/{action}", func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		record(r, r.PathValue("action")+" "+name, map[string]bool{name: r.PathValue("action") == "disable"})
		_, _ = io.WriteString(w, `{"name":"`+name+`"}`)
	})
	s.mux.HandleFunc("DELETE /chaos/net", func(w http.ResponseWriter, r *http.Request) {
		record(r, "reset", map[string]bool{"explore": false})
		_, _ = io.WriteString(w, `{"removed":1,"enabled":0}`)
	})
	return sup
}

// TestNetFaults: an outage is rehearsed and run, each time enabled again on schedule; a
// toxic that breaks the SLI makes the guard reset chaos.net (DELETE /chaos/net).
func TestNetFaults(t *testing.T) {
	t.Run("outage on schedule", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := newFakeStack(t)
			sup := s.withNet()
			d := testDrill(t, strings.NewReplacer("proc: {name: explore, action: kill}", "net: {proxy: search, outage: true}",
				"rollback_check: 0s", "rollback_check: 1s").Replace(procDrill))
			rep, err := Run(t.Context(), d, s.env(nil))
			if err != nil {
				t.Fatal(err)
			}
			if !rep.Passed() {
				t.Fatalf("verdict %s: %s", rep.Verdict, rep.Reason)
			}
			want := []string{"disable search", "enable search", "disable search", "enable search"}
			if got := sup.log(); !reflect.DeepEqual(got, want) {
				t.Errorf("calls %q; want %q", got, want)
			}
			if f := rep.Faults[1]; f.Net == nil || f.TTL != "14s" || f.RemovedBy != "schedule" || f.What != "outage: search (proxy disabled)" {
				t.Errorf("fault %+v; want the outage with ttl for + 10s, removed on schedule", f)
			}
		})
	})
	t.Run("guard resets chaos.net", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := newFakeStack(t)
			sup := s.withNet()
			d := testDrill(t, strings.Replace(procDrill, "proc: {name: explore, action: kill}", "net: {proxy: explore, type: reset_peer}", 1))
			rep, err := Run(t.Context(), d, s.env(nil))
			if err != nil {
				t.Fatal(err)
			}
			if rep.Verdict != Aborted || rep.Guard.Abort == nil || rep.Guard.Abort.ClearError != "" {
				t.Fatalf("verdict %s (%s), abort %+v; want aborted and cleared", rep.Verdict, rep.Reason, rep.Guard.Abort)
			}
			if got := sup.log(); !reflect.DeepEqual(got, []string{"toxic explore reset_peer ttl 14s", "reset"}) {
				t.Errorf("calls %q; want the toxic, then the reset", got)
			}
			if f := rep.Faults[0]; f.ID != "tx-explore" || f.RemovedBy != "guard" {
				t.Errorf("fault %+v; want tx-explore removed by the guard", f)
			}
		})
	})
}

// TestFaultsGoToTheSupervisor: under --procs (Env.Procs set) in-process faults are added,
// removed and cleared through the supervisor, which reaches every process; the admin
// endpoint (one process's) only serves the metrics.
func TestFaultsGoToTheSupervisor(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newFakeStack(t)
		s.withSupervisor()
		var mu sync.Mutex
		hosts := map[string]int{}
		s.onFaults = func(req *http.Request) {
			mu.Lock()
			hosts[req.Method+" "+req.URL.Host]++
			mu.Unlock()
		}
		env := s.env(nil)
		env.Procs = "http://procs.test"
		rep, err := Run(t.Context(), testDrill(t, guardDrill), env)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Verdict != Aborted {
			t.Fatalf("verdict %s (%s); want the guard's abort", rep.Verdict, rep.Reason)
		}
		mu.Lock()
		defer mu.Unlock()
		if hosts["POST procs.test"] != 1 || hosts["DELETE procs.test"] != 1 || len(hosts) != 2 {
			t.Errorf("/chaos/faults calls %v; want the add and the guard's clear at the supervisor, none at the admin endpoint", hosts)
		}
	})
}
