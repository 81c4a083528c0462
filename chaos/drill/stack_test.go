package drill_test

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redline-dev/redline/chaos/drill"
	"github.com/redline-dev/redline/services/stack"
	"github.com/redline-dev/redline/services/stack/stacktest"
)

// exploreScenario is anonymous explore requests: GET /v1/explore answers 200 on an empty
// stack, so every error is the drill's doing.
const exploreScenario = `name: explore
journeys:
  - name: explore
    weight: 1
    steps:
      - {name: explore, path: '/v1/explore?kind=hot&limit=5'}
`

// TestDrillOnStack runs drills against the real stack, in process, chaos enabled: the
// faults go through its admin API, the SLIs come from its /metrics, the drill is recorded
// on its SRE API. One stack for both drills (the stack's fault registry is the process's
// injector); each drill cleans up its faults.
func TestDrillOnStack(t *testing.T) {
	s := stacktest.Start(t, nil)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "explore.yaml"), []byte(exploreScenario), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(t *testing.T, name, body string) *drill.Report {
		t.Helper()
		return runOnStack(t, s, loadDrill(t, dir, name, body), s.SREURL())
	}

	// The guard: a 500 on the route the load hits breaks the error ratio; the guard aborts
	// at the first sample beyond 5%, clears the faults and stops the load. (An Unavailable
	// would not do: the BFF serves its last good explore page instead, ha/degrade.)
	t.Run("guard aborts", func(t *testing.T) {
		rep := run(t, "explore-down", `name: explore-down
steady_state:
  window: 2s
  slis: [{name: bff-errors, service: bff, routes: ["GET /v1/explore"], max_error_ratio: 0.01}]
load: {scenario: explore.yaml, rate: 20, duration: 8s}
faults:
  - {at: 2s, for: 5s, spec: {service: bff, kind: http, side: server, op: GET /v1/explore, type: error, code: Internal}}
guard_interval: 500ms
rollback_check: 0s
`)
		if rep.Verdict != drill.Aborted {
			t.Fatalf("verdict %s (%s); want aborted", rep.Verdict, rep.Reason)
		}
		ab := rep.Guard.Abort
		if ab == nil || ab.SLI != "bff-errors" || ab.ClearError != "" || ab.Cleared < 1 || !strings.Contains(rep.Reason, "bff-errors") {
			t.Fatalf("abort %+v, reason %q; want bff-errors, the fault cleared", ab, rep.Reason)
		}
		// One interval between the last sample within bounds and the breaching one, plus
		// what one scrape takes; and the guard acted on that sample.
		iv, scrape := 500*time.Millisecond, 500*time.Millisecond // a scrape of the in-process stack takes milliseconds; half an interval is ample
		if ab.LastOKAt.IsZero() || ab.BreachAt.Sub(ab.LastOKAt) > iv+scrape {
			t.Errorf("last ok sample %v, breach %v; want at most one interval and a scrape apart", ab.LastOKAt, ab.BreachAt)
		}
		if ab.ActedAt.Before(ab.BreachAt) || ab.ActedAt.Sub(ab.BreachAt) > iv {
			t.Errorf("breach %v, acted %v; want the action within one interval", ab.BreachAt, ab.ActedAt)
		}
		breachT := ab.BreachAt.Sub(rep.Started).Seconds()
		for _, p := range rep.SLIs[0].Points {
			if p.V > ab.Bound && p.T < breachT-0.001 {
				t.Errorf("the SLI was beyond its abort bound at %.3fs, before the sample the guard acted on (%.3fs)", p.T, breachT)
			}
		}
		if l := rep.Load; l == nil || l.Stopped != "canceled" || l.Started >= uint64(l.Planned) {
			t.Errorf("load %+v; want it stopped before its planned iterations", l)
		}
		for _, f := range rep.Faults {
			if f.RemovedBy != "guard" {
				t.Errorf("fault %+v; want removed by the guard", f)
			}
		}
		if rep.Incident == "" {
			t.Fatalf("no incident recorded; warnings %v", rep.Warnings)
		}
		var tl struct{ Entries []struct{ Kind, Text string } }
		stacktest.Do(t, "GET", s.SREURL()+"/v1/incidents/"+rep.Incident+"/timeline", nil).JSON(t, &tl)
		var abort bool
		for _, e := range tl.Entries {
			abort = abort || e.Kind == "drill" && strings.HasPrefix(e.Text, "guard abort:")
		}
		if !abort {
			t.Errorf("the incident's timeline has no guard abort: %+v", tl.Entries)
		}
		var inc struct{ State, Severity, Policy string }
		stacktest.Do(t, "GET", s.SREURL()+"/v1/incidents/"+rep.Incident, nil).JSON(t, &inc)
		if inc.State != "resolved" || inc.Severity != "SEV4" || inc.Policy != "" {
			t.Errorf("incident %+v; want a resolved SEV4 without a policy", inc)
		}
	})

	// A harmless fault: a small delay; the rehearsal, the experiment and the check after
	// pass, and so do the expectations.
	t.Run("harmless fault passes", func(t *testing.T) {
		rep := run(t, "explore-slow", `name: explore-slow
steady_state:
  window: 2s
  slis:
    - {name: bff-errors, service: bff, routes: ["GET /v1/explore"], max_error_ratio: 0.01}
    - {name: bff-p99, service: bff, routes: ["GET /v1/explore"], max_p99: 2s}
load: {scenario: explore.yaml, rate: 20, duration: 5s}
faults:
  - {at: 1s, for: 3s, spec: {service: bff, kind: http, side: server, op: GET /v1/explore, type: delay, delay: 30ms}}
expect:
  - {sli: bff-errors, during: faults}
  - {metric: redline_chaos_fault_injections_total, labels: {service: bff, type: delay}, increases: true, within: 1s}
  - {goodput: 0.95}
guard_interval: 500ms
rollback_check: 1s
`)
		if !rep.Passed() {
			t.Fatalf("verdict %s: %s", rep.Verdict, rep.Reason)
		}
		if len(rep.Phases) != 4 || len(rep.Faults) != 2 || len(rep.Expectations) != 3 {
			t.Fatalf("phases %d, faults %d, expectations %d; want 4, 2, 3", len(rep.Phases), len(rep.Faults), len(rep.Expectations))
		}
		if inj := rep.Expectations[1]; !inj.Pass || inj.Value <= 0 {
			t.Errorf("injections %+v; want them to rise", inj)
		}
	})
}

// TestDrillNetFaultOnStack runs a drill whose fault is an L4 latency toxic on the feed
// service's chaos.net proxy: added and removed through the stack's /chaos/net, in the
// rehearsal and the experiment, and gone afterwards.
func TestDrillNetFaultOnStack(t *testing.T) {
	s := stacktest.Start(t, func(c *stack.Config) { c.Chaos.Net.Enabled = true })
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "explore.yaml"), []byte(exploreScenario), 0o644); err != nil {
		t.Fatal(err)
	}
	rep := runOnStack(t, s, loadDrill(t, dir, "feed-latency", `name: feed-latency
steady_state:
  window: 2s
  slis:
    - {name: bff-errors, service: bff, routes: ["GET /v1/explore"], max_error_ratio: 0.01}
    - {name: bff-p99, service: bff, routes: ["GET /v1/explore"], max_p99: 2s}
load: {scenario: explore.yaml, rate: 20, duration: 5s}
faults:
  - {at: 1s, for: 3s, net: {proxy: feed, type: latency, attributes: {latency: 30ms}}}
expect:
  - {sli: bff-errors, during: faults}
  - {metric: redline_chaos_net_toxics_total, increases: true, within: 1s}
guard_interval: 500ms
rollback_check: 1s
`), "")
	if !rep.Passed() {
		t.Fatalf("verdict %s: %s", rep.Verdict, rep.Reason)
	}
	if len(rep.Faults) != 2 || rep.Faults[1].Net == nil || rep.Faults[1].ID == "" || rep.Faults[1].RemovedBy != "schedule" {
		t.Fatalf("faults %+v; want the toxic rehearsed and run, removed on schedule", rep.Faults)
	}
	var net struct {
		Proxies []struct {
			Name   string
			Toxics []any
		}
	}
	stacktest.Do(t, "GET", s.Admin+"/chaos/net", nil).JSON(t, &net)
	for _, p := range net.Proxies {
		if len(p.Toxics) != 0 {
			t.Errorf("proxy %s has toxics after the drill: %v", p.Name, p.Toxics)
		}
	}
}

// loadDrill writes body to dir/name.yaml and loads it.
func loadDrill(t *testing.T, dir, name, body string) *drill.Drill {
	t.Helper()
	path := filepath.Join(dir, name+".yaml")
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := drill.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// runOnStack runs d against the stack s (recorded on its SRE API when sre is set), logs its
// progress, and checks that no in-process fault is left behind.
func runOnStack(t *testing.T, s *stacktest.Running, d *drill.Drill, sre string) *drill.Report {
	t.Helper()
	var out bytes.Buffer
	rep, err := drill.Run(context.Background(), d, drill.Env{BFF: s.BFF, Admin: s.Admin, SRE: sre, Progress: &out})
	t.Log(out.String())
	if err != nil {
		t.Fatal(err)
	}
	r := stacktest.Do(t, "GET", s.Admin+"/chaos/faults", nil)
	var active struct{ Faults []any }
	r.JSON(t, &active)
	if r.Status != http.StatusOK || len(active.Faults) != 0 {
		t.Errorf("after the drill GET /chaos/faults = %d %s; want no fault", r.Status, r.Body)
	}
	return rep
}
