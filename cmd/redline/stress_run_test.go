package main

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redline-dev/redline/kit/meta"
	"github.com/redline-dev/redline/stress/lane"
	"github.com/redline-dev/redline/stress/report"
)

// fakeBFF answers GET /v1/explore and GET /v1/notes/{id} like the BFF, after delay, and
// counts every request and the lane tokens it saw.
type fakeBFF struct {
	*httptest.Server
	requests atomic.Int64
	mu       sync.Mutex
	tokens   map[string]int
}

func newFakeBFF(t *testing.T, delay time.Duration) *fakeBFF {
	f := &fakeBFF{tokens: map[string]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/explore", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"notes":[{"id":"1","author_id":"9"},{"id":"2","author_id":"9"}]}`))
	})
	mux.HandleFunc("GET /v1/notes/{id}", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"id":"` + r.PathValue("id") + `"}`))
	})
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.requests.Add(1)
		if tok := r.Header.Get(meta.HeaderLaneToken); tok != "" {
			f.mu.Lock()
			f.tokens[tok]++
			f.mu.Unlock()
		}
		time.Sleep(delay)
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

const exploreScenario = `
name: explore
journeys:
  - name: browse
    weight: 1
    steps:
      - {name: explore, path: '/v1/explore?kind=hot', extract: {note_id: 'notes.*.id'}}
      - {name: note, path: '/v1/notes/{{.note_id}}', expect: [200]}
`

func writeScenario(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "s.yaml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// execute runs `redline args...` in this process.
func execute(args ...string) (stdout, stderr string, err error) {
	root := newRoot()
	var out, errw bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errw)
	root.SetArgs(args)
	err = root.Execute()
	return out.String(), errw.String(), err
}

// TestStressRejectsBadInputBeforeAnyTraffic: each mistake is a usage error that says what
// is wrong, and the target sees no request at all.
func TestStressRejectsBadInputBeforeAnyTraffic(t *testing.T) {
	t.Setenv("REDLINE_STRESS__KEY", "")
	bff := newFakeBFF(t, 0)
	good := writeScenario(t, exploreScenario)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"negative rate", []string{"--rate", "-5"}, "--rate -5 for --duration 30s: bad load schedule: the rate must be a positive number"},
		{"zero rate", []string{"--rate", "0"}, "the rate must be a positive number"},
		{"zero duration", []string{"--duration", "0s"}, "stage 1: the duration must be positive"},
		{"unknown route", []string{"--scenario", writeScenario(t, strings.Replace(exploreScenario, "/v1/notes/{{.note_id}}", "/v1/nope", 1))},
			`journey 1 "browse" step 2 "note": GET /v1/nope is not a known route`},
		{"bad yaml", []string{"--scenario", writeScenario(t, "journeys: [\n")}, "s.yaml: "},
		{"unknown field", []string{"--scenario", writeScenario(t, strings.Replace(exploreScenario, "weight: 1", "weight: 1\n    wait: 2", 1))},
			"field wait not found"},
		{"variable before extraction", []string{"--scenario", writeScenario(t, strings.Replace(exploreScenario, "extract: {note_id:", "extract: {id:", 1))},
			"uses {{.note_id}}, which nothing defines before it"},
		{"unknown built-in", []string{"--scenario", "nosuch"}, `"nosuch" is neither a built-in scenario`},
		{"bad ramp", []string{"--ramp", "30s-100"}, "each stage is duration:rate"},
		{"ramp and duration", []string{"--ramp", "1s:10", "--duration", "2s"}, "give --duration or --ramp, not both"},
		{"negative ramp", []string{"--ramp", "1s:-10"}, "stage 1: the rate must be 0 or more"},
		{"bad error rate", []string{"--max-error-rate", "5"}, "--max-error-rate is a share from 0 to 1"},
		{"bad in-flight", []string{"--max-inflight", "0"}, "--max-inflight must be at least 1"},
		{"bad target", []string{"--target", "localhost:8080"}, `--target "localhost:8080" is not an http(s) URL`},
		{"lane without key", []string{"--lane", "stress-1"}, "stress.key is not set"},
		{"bad step factor", []string{"--find-capacity", "--step-factor", "0.9"}, "want --step-factor > 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"stress", "--scenario", good, "--target", bff.URL, "--out", t.TempDir()}, tc.args...)
			_, _, err := execute(args...)
			var u usageError
			if err == nil || !errors.As(err, &u) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("stress %v = %v; want a usage error with %q", tc.args, err, tc.want)
			}
			if n := bff.requests.Load(); n != 0 {
				t.Fatalf("the target saw %d requests before the error", n)
			}
		})
	}
}

// newFakeAdmin is an admin endpoint whose BFF admitted every lane request bff saw, and
// whose leak scan finds one leak.
func newFakeAdmin(t *testing.T, bff *fakeBFF) *httptest.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
		bff.mu.Lock()
		n := 0
		for _, c := range bff.tokens {
			n += c
		}
		bff.mu.Unlock()
		fmt.Fprintf(w, "redline_lane_admitted_total{lane=\"stress-1\",service=\"bff\"} %d\n", n)
		fmt.Fprintln(w, `redline_lane_rejected_total{reason="signature",service="bff"} 0`)
	})
	mux.HandleFunc("GET /stress/snapshot", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, `{"note.notes":{"rows":1,"sum":"01"}}`)
	})
	mux.HandleFunc("GET /stress/leaks", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"sentinel":%q,"leaks":[{"store":"sql","where":"note.notes.title","count":1}],"scanned":["sql note: 1 text columns"]}`,
			r.URL.Query().Get("sentinel"))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// TestStressLaneNeedsAdmission: a lane run first checks, through the admin endpoint, that
// the BFF admits its lane; without an admin endpoint no traffic is sent.
func TestStressLaneNeedsAdmission(t *testing.T) {
	t.Setenv("REDLINE_STRESS__KEY", "stress-key-0123456789")
	bff := newFakeBFF(t, 0)
	_, _, err := execute("stress", "--scenario", writeScenario(t, exploreScenario), "--target", bff.URL,
		"--rate", "40", "--duration", "1s", "--lane", "stress-1", "--out", t.TempDir(), "--admin", "http://127.0.0.1:1")
	if err == nil || !strings.Contains(err.Error(), "cannot check that the BFF admits lane stress-1") {
		t.Fatalf("stress without an admin endpoint = %v", err)
	}
	if n := bff.requests.Load(); n != 0 {
		t.Fatalf("the target saw %d requests", n)
	}
}

// TestStressRunsAScenarioInALane runs a real (short) test against a fake BFF: every
// request carries a valid lane token and the report files are written. A lane run checks
// the baseline afterwards through the admin endpoint; the fake one reports a leak, and a
// failed check fails the run.
func TestStressRunsAScenarioInALane(t *testing.T) {
	const key = "stress-key-0123456789"
	t.Setenv("REDLINE_STRESS__KEY", key)
	bff := newFakeBFF(t, 0)
	admin := newFakeAdmin(t, bff)
	out := filepath.Join(t.TempDir(), "report")
	stdout, stderr, err := execute("stress", "--scenario", writeScenario(t, exploreScenario), "--target", bff.URL,
		"--rate", "40", "--duration", "1s", "--lane", "stress-1", "--p99", "5s", "--max-error-rate", "0", "--out", out,
		"--admin", admin.URL)
	var u usageError
	if err == nil || errors.As(err, &u) || !strings.Contains(err.Error(), "checks failed: zero leaks") {
		t.Fatalf("stress = %v; want the leak check failed\n%s%s", err, stdout, stderr)
	}
	if !strings.Contains(stdout, "note.notes.title: 1") {
		t.Errorf("stdout does not name the leak:\n%s", stdout)
	}
	for _, want := range []string{"requests 80  ok 80  errors 0", "threshold p99 <= 5s: held", "FAILED", filepath.Join(out, "report.html")} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	if !strings.Contains(stderr, "lane stress-1") {
		t.Errorf("stderr lacks the lane:\n%s", stderr)
	}
	if len(bff.tokens) != 1 {
		t.Fatalf("lane tokens seen: %v; want one token on every request", bff.tokens)
	}
	signer, _ := lane.NewSigner(key, nil)
	for tok, n := range bff.tokens {
		if got, err := signer.Verify(tok); err != nil || got != "stress-1" || n != 81 {
			t.Errorf("token on %d requests verifies as %q, %v; want stress-1 on 81 (80 and the admission probe)", n, got, err)
		}
	}
	f, err := os.Open(filepath.Join(out, "result.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := report.ReadJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	if doc.Passed || len(doc.Checks) == 0 || doc.Lane != "stress-1" || doc.Run.Requests != 80 || len(doc.Run.Steps) != 2 ||
		len(doc.RunID) != 12 || !strings.HasPrefix(doc.RunID, "rl") {
		t.Errorf("result.json: passed %v, %d checks, lane %q, requests %d, steps %d, run id %q", doc.Passed, len(doc.Checks),
			doc.Lane, doc.Run.Requests, len(doc.Run.Steps), doc.RunID)
	}
}

// TestStressRunsAScenarioInBaseline: without a lane there are no checks, and a run whose
// thresholds hold passes.
func TestStressRunsAScenarioInBaseline(t *testing.T) {
	bff := newFakeBFF(t, 0)
	out := t.TempDir()
	stdout, stderr, err := execute("stress", "--scenario", writeScenario(t, exploreScenario), "--target", bff.URL,
		"--rate", "40", "--duration", "1s", "--p99", "5s", "--out", out)
	if err != nil {
		t.Fatalf("stress: %v\n%s%s", err, stdout, stderr)
	}
	if !strings.Contains(stdout, "requests 80  ok 80  errors 0") || !strings.Contains(stdout, "PASSED") || len(bff.tokens) != 0 {
		t.Errorf("stdout:\n%s\nlane tokens %v; want a passing baseline run without tokens", stdout, bff.tokens)
	}
}

// TestStressFindCapacity runs a two-step search with an unreachable admin endpoint: the
// search completes, and the bottleneck says why it is unknown.
func TestStressFindCapacity(t *testing.T) {
	bff := newFakeBFF(t, 0)
	out := t.TempDir()
	stdout, stderr, err := execute("stress", "--scenario", writeScenario(t, exploreScenario), "--target", bff.URL,
		"--find-capacity", "--rate", "20", "--step-factor", "1.5", "--step-duration", "1s", "--max-rate", "30",
		"--admin", "http://127.0.0.1:1", "--out", out)
	if err != nil {
		t.Fatalf("stress: %v\n%s%s", err, stdout, stderr)
	}
	for _, want := range []string{"capacity: max sustainable 30.0/s", "the max rate 30/s was reached",
		"bottleneck: unknown (admin endpoint unreachable: "} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	if !strings.Contains(stderr, "step     20.0/s:") || !strings.Contains(stderr, "step     30.0/s:") {
		t.Errorf("stderr lacks the steps:\n%s", stderr)
	}
}

// TestStressThresholdExitStatus runs the binary: a broken p99 threshold exits 99, after
// writing the report.
func TestStressThresholdExitStatus(t *testing.T) {
	bff := newFakeBFF(t, 20*time.Millisecond)
	out := t.TempDir()
	cmd := exec.Command(binary, "stress", "--scenario", writeScenario(t, exploreScenario), "--target", bff.URL,
		"--rate", "20", "--duration", "1s", "--p99", "5ms", "--out", out)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != exitThresholds {
		t.Fatalf("exit = %v; want status %d\n%s", err, exitThresholds, buf.String())
	}
	for _, want := range []string{"threshold p99 <= 5ms: BROKEN", "FAILED", "thresholds broken: exit status 99"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, buf.String())
		}
	}
	if _, err := os.Stat(filepath.Join(out, "report.html")); err != nil {
		t.Errorf("no report after a broken threshold: %v", err)
	}
}
