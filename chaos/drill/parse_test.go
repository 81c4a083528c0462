package drill

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/redline-dev/redline/chaos/faults"
	"github.com/redline-dev/redline/sre/slo"
)

// goodDrill is the drill of the package doc.
const goodDrill = `name: note-slow
description: One slow note path; the BFF degrades and the SLO holds.
target: {bff: http://127.0.0.1:8080, admin: http://127.0.0.1:9090}
steady_state:
  window: 10s
  slis:
    - {name: bff-errors, service: bff, transport: http, max_error_ratio: 0.01}
    - {name: bff-p99, service: bff, routes: ["GET /v1/notes/{id}"], max_p99: 250ms}
load: {scenario: rednote, rate: 50, duration: 60s, lane: ""}
faults:
  - at: 10s
    for: 30s
    spec: {service: note, kind: grpc, side: server, type: delay, delay: 300ms}
expect:
  - {sli: bff-errors, during: faults, max_error_ratio: 0.05}
  - {metric: redline_ha_breaker_decisions_total, labels: {result: reject}, increases: true, within: 2s}
  - {goodput: 0.9}
abort:
  max_error_ratio: 0.5
guard_interval: 1s
rollback_check: 10s
`

func TestParseGoodDrill(t *testing.T) {
	d, err := Parse("note-slow.yaml", []byte(goodDrill))
	if err != nil {
		t.Fatal(err)
	}
	want := &Drill{
		Name: "note-slow", Description: "One slow note path; the BFF degrades and the SLO holds.", File: "note-slow.yaml",
		Target: Target{BFF: "http://127.0.0.1:8080", Admin: "http://127.0.0.1:9090"},
		SteadyState: SteadyState{Window: 10 * time.Second, SLIs: []SLI{
			{Name: "bff-errors", Service: "bff", Transport: slo.HTTP, MaxErrorRatio: 0.01},
			{Name: "bff-p99", Service: "bff", Transport: slo.HTTP, Routes: []string{"GET /v1/notes/{id}"}, MaxP99: 250 * time.Millisecond},
		}},
		Load: LoadSpec{Scenario: "rednote", Rate: 50, Duration: time.Minute},
		Faults: []Fault{{At: 10 * time.Second, For: 30 * time.Second,
			Spec: faults.Spec{Service: "note", Kind: "grpc", Side: "server", Type: "delay", Delay: "300ms"}}},
		Expect: []Expectation{
			{SLI: "bff-errors", During: DuringFaults, MaxErrorRatio: 0.05},
			{Metric: "redline_ha_breaker_decisions_total", Labels: map[string]string{"result": "reject"}, Increases: true, Within: 2 * time.Second},
			{Goodput: 0.9},
		},
		Abort:         Abort{MaxErrorRatio: 0.5},
		GuardInterval: time.Second, RollbackCheck: 10 * time.Second,
	}
	if !reflect.DeepEqual(d, want) {
		t.Fatalf("Parse =\n%+v\nwant\n%+v", d, want)
	}
	if got := d.AbortBound(d.SteadyState.SLIs[1]); got != 5*0.25 {
		t.Errorf("default abort bound of a 250ms p99 = %v; want 1.25 (×%d)", got, AbortFactor)
	}
	if got := d.AbortBound(d.SteadyState.SLIs[0]); got != 0.5 {
		t.Errorf("abort bound of bff-errors = %v; want abort.max_error_ratio 0.5", got)
	}
}

// TestParseDefaults: guard_interval defaults to 1s, rollback_check to the window, transport
// to http.
func TestParseDefaults(t *testing.T) {
	d, err := Parse("d.yaml", []byte(`name: d
steady_state: {window: 5s, slis: [{name: e, service: bff, max_error_ratio: 0.01}]}
load: {scenario: rednote, rate: 1, duration: 10s}
faults: [{at: 0s, for: 5s, spec: {type: abort, service: bff}}]
`))
	if err != nil {
		t.Fatal(err)
	}
	if d.GuardInterval != time.Second || d.RollbackCheck != 5*time.Second || d.SteadyState.SLIs[0].Transport != slo.HTTP {
		t.Fatalf("defaults: guard %v, rollback %v, transport %q; want 1s, 5s, http", d.GuardInterval, d.RollbackCheck, d.SteadyState.SLIs[0].Transport)
	}
}

// TestParseRejectsBadDrills: each mistake is an error that names the file, the field and
// the reason.
func TestParseRejectsBadDrills(t *testing.T) {
	edit := func(old, new string) string {
		if !strings.Contains(goodDrill, old) {
			t.Fatalf("the good drill has no %q", old)
		}
		return strings.Replace(goodDrill, old, new, 1)
	}
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"empty", "", []string{"d.yaml: empty"}},
		{"not YAML", "name: [", []string{"d.yaml: YAML:"}},
		{"a list", "- name: x\n", []string{"d.yaml:1: want a mapping"}},
		{"two documents", goodDrill + "---\nname: again\n", []string{"one drill per file"}},
		{"unknown field", edit("guard_interval: 1s", "guard_interval: 1s\nretries: 3"), []string{"d.yaml:21: retries: unknown field"}},
		{"unknown nested field", edit("window: 10s", "window: 10s\n  windows: 2"), []string{"steady_state.windows: unknown field"}},
		{"duplicate field", edit("name: note-slow", "name: note-slow\nname: again"), []string{"name: duplicate field"}},
		{"bad name", edit("name: note-slow", "name: Note Slow"), []string{"d.yaml:1: name: \"Note Slow\" is not a DNS label"}},
		{"no name", edit("name: note-slow\n", ""), []string{"name: required"}},
		{"no steady state", edit(goodDrill[strings.Index(goodDrill, "steady_state:"):strings.Index(goodDrill, "load:")], ""),
			[]string{"steady_state: required"}},
		{"no load", edit(`load: {scenario: rednote, rate: 50, duration: 60s, lane: ""}`+"\n", ""), []string{"load: required"}},
		{"no faults", edit(goodDrill[strings.Index(goodDrill, "faults:"):strings.Index(goodDrill, "expect:")], ""), []string{"faults: required"}},
		{"bad target", edit("bff: http://127.0.0.1:8080", "bff: 127.0.0.1:8080"), []string{"target.bff: \"127.0.0.1:8080\" is not an http(s) URL"}},
		{"window not a duration", edit("window: 10s", "window: ten"), []string{"d.yaml:5: steady_state.window: \"ten\" is not a duration"}},
		{"negative window", edit("window: 10s", "window: -10s"), []string{"steady_state.window: -10s: want a positive duration"}},
		{"no SLIs", edit(goodDrill[strings.Index(goodDrill, "  slis:"):strings.Index(goodDrill, "load:")], ""), []string{"steady_state.slis: required"}},
		{"SLI with two bounds", edit("max_error_ratio: 0.01}", "max_error_ratio: 0.01, max_p99: 1s}"),
			[]string{"steady_state.slis[0]: give max_error_ratio or max_p99, not both"}},
		{"SLI without a bound", edit(", max_error_ratio: 0.01}", "}"), []string{"steady_state.slis[0]: needs a bound"}},
		{"SLI ratio out of range", edit("max_error_ratio: 0.01}", "max_error_ratio: 1.5}"), []string{"steady_state.slis[0].max_error_ratio: 1.5 is not a ratio"}},
		{"SLI bad transport", edit("transport: http", "transport: udp"), []string{"steady_state.slis[0].transport: \"udp\" is neither http nor grpc"}},
		{"SLI twice", edit("name: bff-p99", "name: bff-errors"), []string{"steady_state.slis[1].name: \"bff-errors\" is declared twice"}},
		{"SLI bad lane", edit("service: bff, transport", "service: bff, lane: Red, transport"), []string{"steady_state.slis[0].lane: \"Red\" is not a lane name"}},
		{"SLI routes not a list", edit(`routes: ["GET /v1/notes/{id}"]`, `routes: "GET /v1/notes/{id}"`), []string{"steady_state.slis[1].routes: want a list"}},
		{"no scenario", edit("scenario: rednote, ", ""), []string{"load.scenario: required"}},
		{"negative rate", edit("rate: 50", "rate: -5"), []string{"load.rate: -5 is not a rate"}},
		{"rate not a number", edit("rate: 50", "rate: fast"), []string{"load.rate: \"fast\" is not a number"}},
		{"zero duration", edit("duration: 60s", "duration: 0s"), []string{"load.duration: 0s: want a positive duration"}},
		{"bad lane", edit(`lane: ""}`, `lane: "Stress 1"}`), []string{"load.lane: \"Stress 1\" is not a lane name"}},
		{"fault after the load", edit("for: 30s", "for: 55s"), []string{"faults[0]: at 10s + for 55s ends after the load's duration 1m0s"}},
		{"fault without for", edit("    for: 30s\n", ""), []string{"faults[0].for: 0s: want a positive duration"}},
		{"negative at", edit("at: 10s", "at: -1s"), []string{"faults[0].at: -1s: want a positive duration"}},
		{"fault without spec", edit("    spec: {service: note, kind: grpc, side: server, type: delay, delay: 300ms}\n", ""),
			[]string{"faults[0].spec: required"}},
		{"bad fault delay", edit("delay: 300ms", "delay: slow"), []string{"d.yaml:13: faults[0].spec.delay: \"slow\" is not a duration such as 250ms"}},
		{"fault of no type", edit("type: delay, delay: 300ms", "delay: 300ms"), []string{"faults[0].spec.type: missing"}},
		{"fault for a data client's server", edit("kind: grpc, side: server", "kind: sql, side: server"), []string{"faults[0].spec.side: sql calls have only a client side"}},
		{"unknown fault field", edit("delay: 300ms}", "delay: 300ms, slowness: 3}"), []string{"faults[0].spec.slowness: unknown field"}},
		{"fault with a ttl", edit("delay: 300ms}", "delay: 300ms, ttl: 1h}"), []string{"faults[0].spec.ttl: the drill sets each fault's ttl"}},
		{"fault too long", edit("duration: 60s", "duration: 2h"), []string{"load.duration: 2h0m0s is longer than 59m50s"}},
		{"expect unknown SLI", edit("sli: bff-errors, during", "sli: bff-latency, during"), []string{"expect[0].sli: no SLI \"bff-latency\""}},
		{"expect two kinds", edit("{goodput: 0.9}", "{goodput: 0.9, sli: bff-errors}"), []string{"expect[2]: give exactly one of sli, metric, goodput and audit"}},
		{"expect nothing", edit("{goodput: 0.9}", "{during: faults}"), []string{"expect[2]: give exactly one of sli, metric, goodput and audit"}},
		{"expect bad during", edit("during: faults", "during: lunch"), []string{"expect[0].during: \"lunch\" is not faults, experiment or after"}},
		{"expect the wrong bound", edit("during: faults, max_error_ratio: 0.05", "during: faults, max_p99: 1s"),
			[]string{"expect[0].max_p99: SLI \"bff-errors\" is an error ratio: bound it with max_error_ratio"}},
		{"metric without increases", edit("increases: true, ", ""), []string{"expect[1].increases: required for a metric expectation"}},
		{"increases not a bool", edit("increases: true", "increases: maybe"), []string{"expect[1].increases: \"maybe\" is not true or false"}},
		{"bad metric name", edit("metric: redline_ha_breaker_decisions_total", "metric: breaker-decisions"), []string{"expect[1].metric: \"breaker-decisions\" is not a Prometheus metric name"}},
		{"metric with a bound", edit("within: 2s}", "within: 2s, max_p99: 1s}"), []string{"expect[1]: a metric expectation takes labels, increases (or max_rate, or max_share and of) and within only"}},
		{"goodput over 1", edit("goodput: 0.9", "goodput: 90"), []string{"expect[2].goodput: 90 is not a ratio in (0, 1]"}},
		{"goodput without load", edit("rate: 50", "rate: 0"), []string{"expect[2].goodput: goodput is measured on the drill's own load"}},
		{"abort below the bound", edit("max_error_ratio: 0.5", "max_error_ratio: 0.001"),
			[]string{"abort.max_error_ratio: 0.001 is below SLI \"bff-errors\"'s own bound 0.01"}},
		{"abort p99 below the bound", edit("max_error_ratio: 0.5", "max_p99: 100ms"), []string{"abort.max_p99: 100ms is below SLI \"bff-p99\"'s own bound 250ms"}},
		{"unknown abort field", edit("max_error_ratio: 0.5", "max_errors: 5"), []string{"abort.max_errors: unknown field"}},
		{"guard slower than the window", edit("guard_interval: 1s", "guard_interval: 20s"), []string{"guard_interval: 20s is longer than the steady-state window 10s"}},
		{"guard too fast", edit("guard_interval: 1s", "guard_interval: 1ms"), []string{"guard_interval: 1ms: want at least 100ms"}},
		{"negative rollback check", edit("rollback_check: 10s", "rollback_check: -1s"), []string{"rollback_check: -1s: want a positive duration"}},
		{"an alias", edit("steady_state:\n", "steady_state: &ss\n"), []string{"steady_state: YAML anchors and aliases are not supported"}},
		{"several at once", edit("rate: 50", "rate: -1") + "bogus: 1\n", []string{"load.rate", "bogus: unknown field"}},
		{"spec and proc", edit("type: delay, delay: 300ms}", "type: delay, delay: 300ms}\n    proc: {name: order, action: kill}"),
			[]string{"faults[0]: give one of spec (an in-process fault), proc (a process fault) and net (an L4 fault), not several"}},
		{"proc without a name", edit("spec: {service: note, kind: grpc, side: server, type: delay, delay: 300ms}", "proc: {action: kill}"),
			[]string{"faults[0].proc.name: required"}},
		{"proc stop", edit("spec: {service: note, kind: grpc, side: server, type: delay, delay: 300ms}", "proc: {name: order, action: stop}"),
			[]string{"faults[0].proc.action: \"stop\" is neither kill nor pause (a process fault must end by itself)"}},
		{"proc unknown field", edit("spec: {service: note, kind: grpc, side: server, type: delay, delay: 300ms}", "proc: {name: order, action: kill, signal: 9}"),
			[]string{"faults[0].proc.signal: unknown field"}},
		{"metric increases and max_rate", edit("increases: true,", "increases: true, max_rate: 5,"),
			[]string{"expect[1].increases: give increases, max_rate or max_share"}},
		{"max_share without of", edit("increases: true,", "max_share: 0.2,"), []string{"expect[1].of: required with max_share"}},
		{"max_share over 1", edit("increases: true,", "max_share: 20, of: {service: note},"), []string{"expect[1].max_share: 20 is not a share in (0, 1]"}},
		{"negative max_rate", edit("increases: true,", "max_rate: -1,"), []string{"expect[1].max_rate: -1 is not a positive rate"}},
		{"of without max_share", edit("increases: true,", "increases: true, of: {service: note},"), []string{"expect[1].of: of goes with max_share"}},
		{"proc faults overlap", edit("    spec: {service: note, kind: grpc, side: server, type: delay, delay: 300ms}",
			"    proc: {name: order, action: kill}\n  - {at: 20s, for: 5s, proc: {name: order, action: pause}}"),
			[]string{"faults[1]: overlaps faults[0] on process order"}},
		{"net without proxy", edit("spec: {service: note, kind: grpc, side: server, type: delay, delay: 300ms}", "net: {outage: true}"),
			[]string{"faults[0].net.proxy: required"}},
		{"net outage and toxic", edit("spec: {service: note, kind: grpc, side: server, type: delay, delay: 300ms}", "net: {proxy: redis, outage: true, type: latency, attributes: {latency: 10ms}}"),
			[]string{"faults[0].net: give outage: true (the dependency goes away) or a toxic's type, not both"}},
		{"net neither", edit("spec: {service: note, kind: grpc, side: server, type: delay, delay: 300ms}", "net: {proxy: redis}"),
			[]string{"faults[0].net: needs outage: true or a toxic's type"}},
		{"net bad toxic", edit("spec: {service: note, kind: grpc, side: server, type: delay, delay: 300ms}", "net: {proxy: note, type: latency, attributes: {latency: soon}}"),
			[]string{"faults[0].net.attributes.latency:"}},
		{"net with a ttl", edit("spec: {service: note, kind: grpc, side: server, type: delay, delay: 300ms}", "net: {proxy: redis, outage: true, ttl: 1h}"),
			[]string{"faults[0].net.ttl: the drill sets a net fault's ttl"}},
		{"net fractional bytes", edit("spec: {service: note, kind: grpc, side: server, type: delay, delay: 300ms}", "net: {proxy: note, type: limit_data, attributes: {bytes: 1.5}}"),
			[]string{"faults[0].net.attributes.bytes: 1.5: want a whole number"}},
		{"spec and net", edit("type: delay, delay: 300ms}", "type: delay, delay: 300ms}\n    net: {proxy: redis, outage: true}"),
			[]string{"faults[0]: give one of spec (an in-process fault), proc (a process fault) and net (an L4 fault), not several"}},
		{"unknown audit", edit("{goodput: 0.9}", "{audit: ledger}"), []string{"expect[2].audit: \"ledger\" is not an audit"}},
		{"audit with labels", edit("{goodput: 0.9}", "{audit: checkout, labels: {a: b}}"), []string{"expect[2]: an audit expectation takes audit and settle only"}},
		{"settle on a goodput", edit("{goodput: 0.9}", "{goodput: 0.9, settle: 5s}"), []string{"expect[2].settle: only an audit expectation takes settle"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := Parse("d.yaml", []byte(tc.yaml))
			if err == nil {
				t.Fatalf("Parse = %+v; want an error", d)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("Parse error %v does not wrap ErrInvalid", err)
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.File != "d.yaml" {
				t.Errorf("Parse error %v is not a *FieldError naming d.yaml", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Parse error =\n%v\nwant it to contain %q", err, w)
				}
			}
		})
	}
}

// TestParseTakesEveryFaultField: every field of faults.Spec but ttl and until, which the
// drill sets, is accepted in a drill's fault spec, so the two cannot drift apart.
func TestParseTakesEveryFaultField(t *testing.T) {
	values := map[string]string{"id": "f-1", "type": "timeout", "service": "note", "kind": "grpc", "side": "client",
		"target": "user", "op": "/user.v1.User/*", "lane": "baseline", "percent": "50", "max_wait": "2s", "reason": "why"}
	rt := reflect.TypeFor[faults.Spec]()
	var fields []string
	for i := range rt.NumField() {
		name, _, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ",")
		switch name {
		case "ttl", "until":
			continue
		case "delay", "jitter", "code", "message":
			continue // refused on a timeout fault; checked below on their own types
		case "instance":
			continue // a server side's; checked below
		}
		v, ok := values[name]
		if !ok {
			t.Fatalf("faults.Spec field %q has no test value: add it here and to the drill parser", name)
		}
		fields = append(fields, name+": "+v)
	}
	spec := "{" + strings.Join(fields, ", ") + "}"
	for _, s := range []string{spec, "{type: delay, delay: 10ms, jitter: 5ms}", "{type: error, code: 503, message: down}",
		"{type: delay, delay: 10ms, service: note, kind: grpc, side: server, instance: note-2}"} {
		y := strings.Replace(goodDrill, "{service: note, kind: grpc, side: server, type: delay, delay: 300ms}", s, 1)
		if _, err := Parse("d.yaml", []byte(y)); err != nil {
			t.Errorf("spec %s: %v", s, err)
		}
	}
}

func TestScale(t *testing.T) {
	d, err := Parse("d.yaml", []byte(goodDrill))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Scale(0.1); err != nil {
		t.Fatal(err)
	}
	f := d.Faults[0]
	if d.SteadyState.Window != time.Second || d.Load.Duration != 6*time.Second || f.At != time.Second || f.For != 3*time.Second ||
		d.Expect[1].Within != 200*time.Millisecond || d.RollbackCheck != time.Second || d.GuardInterval != 100*time.Millisecond {
		t.Errorf("Scale(0.1) = window %v, duration %v, fault %v+%v, within %v, rollback %v, guard %v",
			d.SteadyState.Window, d.Load.Duration, f.At, f.For, d.Expect[1].Within, d.RollbackCheck, d.GuardInterval)
	}
	if d.SteadyState.SLIs[1].MaxP99 != 250*time.Millisecond || f.Spec.Delay != "300ms" {
		t.Errorf("Scale changed a latency: p99 bound %v, delay %s; want 250ms, 300ms", d.SteadyState.SLIs[1].MaxP99, f.Spec.Delay)
	}
	if err := d.Scale(0); err == nil || !errors.Is(err, ErrInvalid) {
		t.Errorf("Scale(0) = %v; want ErrInvalid", err)
	}
}

// TestLoadResolvesTheScenario: a scenario file is read relative to the drill's directory
// and checked against the BFF's routes; a bad one names load.scenario.
func TestLoadResolvesTheScenario(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("explore.yaml", exploreScenario)
	d, err := Load(write("d.yaml", strings.Replace(goodDrill, "scenario: rednote", "scenario: explore.yaml", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if d.Scenario == nil || d.Scenario.Name != "explore" {
		t.Fatalf("Load: scenario %+v; want explore", d.Scenario)
	}
	write("bad.yaml", strings.Replace(exploreScenario, "/v1/explore", "/v1/nowhere", 1))
	_, err = Load(write("d2.yaml", strings.Replace(goodDrill, "scenario: rednote", "scenario: bad.yaml", 1)))
	if err == nil || !strings.Contains(err.Error(), "load.scenario: ") || !strings.Contains(err.Error(), "/v1/nowhere?kind=hot&limit=5 is not a known route") {
		t.Fatalf("Load with a bad scenario = %v; want load.scenario naming the route", err)
	}
}

// exploreScenario is one anonymous request: GET /v1/explore.
const exploreScenario = `name: explore
journeys:
  - name: explore
    weight: 1
    steps:
      - {name: explore, path: '/v1/explore?kind=hot&limit=5'}
`

func TestParseProcFaultsAndNewExpectations(t *testing.T) {
	y := strings.NewReplacer(
		"spec: {service: note, kind: grpc, side: server, type: delay, delay: 300ms}", "proc: {name: order, action: kill}",
		"{goodput: 0.9}", "{audit: checkout, settle: 20s}",
		"labels: {result: reject}, increases: true, within: 2s}", "labels: {instance: note-2}, max_share: 0.25, of: {service: note}}",
		"admin: http://127.0.0.1:9090}", "admin: http://127.0.0.1:9105, procs: http://127.0.0.1:9090}",
	).Replace(goodDrill)
	y = strings.Replace(y, "abort:", "  - {metric: redline_ha_quota_decisions_total, labels: {decision: admit}, max_rate: 55}\nabort:", 1)
	d, err := Parse("d.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	if got := d.Faults[0].Proc; got == nil || *got != (ProcFault{Name: "order", Action: ProcKill}) || d.Faults[0].Spec != (faults.Spec{}) {
		t.Errorf("faults[0] = %+v; want proc kill order and no spec", d.Faults[0])
	}
	if d.Target.Procs != "http://127.0.0.1:9090" {
		t.Errorf("target.procs = %q", d.Target.Procs)
	}
	if e := d.Expect[1]; e.Kind() != ExpectMetric || e.MaxShare != 0.25 || e.Of["service"] != "note" || e.Labels["instance"] != "note-2" {
		t.Errorf("expect[1] = %+v; want a max_share of note", e)
	}
	if e := d.Expect[2]; e.Kind() != ExpectAudit || e.Audit != AuditCheckout || e.Settle != 20*time.Second {
		t.Errorf("expect[2] = %+v; want the checkout audit, settle 20s", e)
	}
	if e := d.Expect[3]; e.Kind() != ExpectMetric || e.MaxRate != 55 {
		t.Errorf("expect[3] = %+v; want max_rate 55", e)
	}
	if got := d.Faults[0].Describe(); got != "kill -9 order (restarted after 30s)" {
		t.Errorf("Describe = %q", got)
	}
}

// TestBuiltinDrills: every built-in drill loads (its scenario too) and stays valid at the
// scales the tests and `--duration-scale` use.
func TestBuiltinDrills(t *testing.T) {
	want := []string{"note-slow-instance", "order-kill", "payment-slow", "quota-down", "redis-down"}
	if got := Builtin(); !reflect.DeepEqual(got, want) {
		t.Fatalf("Builtin() = %v; want %v", got, want)
	}
	for _, name := range want {
		d, err := Load(name)
		if err != nil {
			t.Fatalf("Load(%q): %v", name, err)
		}
		if d.Name != name || d.File != "builtin:"+name || d.Scenario == nil || d.Description == "" {
			t.Errorf("Load(%q) = name %q, file %q, scenario %v, description %q", name, d.Name, d.File, d.Scenario != nil, d.Description)
		}
		if err := d.Scale(0.5); err != nil {
			t.Errorf("%s at half length: %v", name, err)
		}
	}
	if _, err := Load("redis-dwn"); err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "neither a drill file nor a built-in drill (note-slow-instance,") {
		t.Errorf("Load(redis-dwn) = %v; want an error listing the built-in drills", err)
	}
}

func TestParseNetFaults(t *testing.T) {
	y := strings.Replace(goodDrill, "spec: {service: note, kind: grpc, side: server, type: delay, delay: 300ms}",
		"net: {proxy: note, type: latency, stream: upstream, toxicity: 0.5, attributes: {latency: 100ms, jitter: 10ms}}\n"+
			"  - {at: 1s, for: 5s, net: {proxy: redis, outage: true}}", 1)
	d, err := Parse("d.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	n := d.Faults[0].Net
	if n == nil || n.Proxy != "note" || n.Outage || n.Toxic == nil || n.Toxic.Type != "latency" || n.Toxic.Stream != "upstream" ||
		n.Toxic.Toxicity == nil || *n.Toxic.Toxicity != 0.5 || n.Toxic.Attributes.Latency != "100ms" || n.Toxic.Attributes.Jitter != "10ms" {
		t.Errorf("faults[0].net = %+v (toxic %+v)", n, n.Toxic)
	}
	if o := d.Faults[1].Net; o == nil || !o.Outage || o.Proxy != "redis" || o.Toxic != nil {
		t.Errorf("faults[1].net = %+v; want an outage of redis", o)
	}
	if got := d.Faults[0].Describe(); got != "latency toxic on note (latency 100ms, jitter 10ms, upstream, toxicity 0.5)" {
		t.Errorf("Describe = %q", got)
	}
	if got := d.Faults[1].Describe(); got != "outage: redis (proxy disabled)" {
		t.Errorf("Describe = %q", got)
	}
}
