package main

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redline-dev/redline/chaos/drill"
	"github.com/redline-dev/redline/services/stack/stacktest"
)

// drillYAML is a short drill: 500s on the explore route the load hits, which the guard
// aborts.
const drillYAML = `name: explore-down
steady_state:
  window: 2s
  slis: [{name: bff-errors, service: bff, routes: ["GET /v1/explore"], max_error_ratio: 0.01}]
load: {scenario: explore.yaml, rate: 20, duration: 8s}
faults:
  - {at: 2s, for: 5s, spec: {service: bff, kind: http, side: server, op: GET /v1/explore, type: error, code: Internal}}
guard_interval: 500ms
rollback_check: 0s
`

const drillScenario = `name: explore
journeys:
  - {name: explore, weight: 1, steps: [{name: explore, path: '/v1/explore?kind=hot&limit=5'}]}
`

// writeDrill writes the drill and its scenario into a temp dir and returns the drill's path.
func writeDrill(t *testing.T, body string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "explore.yaml"), []byte(drillScenario), 0o644); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "drill.yaml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestDrillRejectsBadInputBeforeAnyTraffic: a bad drill file or flag is a usage error
// (exit status 2) that names the field, and neither the BFF, the admin endpoint nor the
// SRE API hears a thing.
func TestDrillRejectsBadInputBeforeAnyTraffic(t *testing.T) {
	t.Setenv("REDLINE_STRESS__KEY", "")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("the drill sent %s %s before it was checked", r.Method, r.URL)
		w.WriteHeader(http.StatusTeapot)
	}))
	defer srv.Close()
	good := writeDrill(t, drillYAML)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown field", []string{writeDrill(t, drillYAML+"retries: 3\n")}, "drill.yaml:10: retries: unknown field"},
		{"bad fault", []string{writeDrill(t, strings.Replace(drillYAML, "code: Internal", "code: Sometimes", 1))},
			`drill.yaml:7: faults[0].spec.code: "Sometimes" is neither a gRPC code name`},
		{"fault past the load", []string{writeDrill(t, strings.Replace(drillYAML, "for: 5s", "for: 7s", 1))},
			"faults[0]: at 2s + for 7s ends after the load's duration 8s"},
		{"unknown SLI", []string{writeDrill(t, drillYAML+"expect: [{sli: nope}]\n")}, `expect[0].sli: no SLI "nope"`},
		{"no load", []string{writeDrill(t, strings.Replace(drillYAML, "load: {scenario: explore.yaml, rate: 20, duration: 8s}\n", "", 1))},
			"load: required"},
		{"missing scenario", []string{writeDrill(t, strings.Replace(drillYAML, "explore.yaml", "nowhere.yaml", 1))}, "load.scenario: "},
		{"no file", []string{filepath.Join(t.TempDir(), "none.yaml")}, "no such file"},
		{"lane without a key", []string{writeDrill(t, strings.Replace(drillYAML, "duration: 8s}", "duration: 8s, lane: red}", 1))},
			"stress.key is not set"},
		{"zero scale", []string{good, "--duration-scale", "0"}, "--duration-scale must be a positive factor"},
		{"bad URL", []string{good, "--admin", "localhost:9090"}, `--admin "localhost:9090" is not an http(s) URL`},
		{"two files", []string{good, good}, "accepts 1 arg(s)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"drill"}, tc.args...)
			if !strings.Contains(strings.Join(tc.args, " "), "--admin") {
				args = append(args, "--admin", srv.URL)
			}
			args = append(args, "--bff", srv.URL, "--sre", srv.URL, "--out", t.TempDir())
			_, _, err := execute(args...)
			var u usageError
			if tc.name != "two files" && !errors.As(err, &u) {
				t.Fatalf("drill %v = %v; want a usage error (exit status 2)", tc.args, err)
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("drill %v = %v; want it to say %q", tc.args, err, tc.want)
			}
		})
	}
}

// TestDrillExitStatus: a drill the guard aborts exits 99 with the reason on stdout and the
// report written; --duration-scale halves it.
func TestDrillExitStatus(t *testing.T) {
	s := stacktest.Start(t, nil)
	out := t.TempDir()
	stdout, stderr, err := execute("drill", writeDrill(t, drillYAML), "--bff", s.BFF, "--admin", s.Admin, "--out", out,
		"--duration-scale", "0.5")
	var ee exitError
	if !errors.As(err, &ee) || ee.code != exitDrillFailed {
		t.Fatalf("drill = %v\nstdout:\n%s\nstderr:\n%s\nwant exit status 99", err, stdout, stderr)
	}
	if !strings.Contains(stdout, "drill explore-down") || !strings.Contains(stdout, "ABORTED") || !strings.Contains(stdout, "guard: aborted") {
		t.Errorf("stdout:\n%s\nwant the verdict and the guard's abort", stdout)
	}
	if !strings.Contains(stderr, "GUARD ABORT") || !strings.Contains(stderr, "phase steady-state ok") {
		t.Errorf("stderr:\n%s\nwant live progress", stderr)
	}
	raw, err := os.ReadFile(filepath.Join(out, "drill.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep drill.Report
	if err := json.Unmarshal(raw, &rep); err != nil || rep.Verdict != drill.Aborted || rep.Window != 1 || rep.Guard.Interval != 0.25 {
		t.Fatalf("drill.json = %v, verdict %s, window %v, guard %v; want aborted, scaled by 0.5", err, rep.Verdict, rep.Window, rep.Guard.Interval)
	}
	if _, err := os.Stat(filepath.Join(out, "drill.html")); err != nil {
		t.Error(err)
	}
}
