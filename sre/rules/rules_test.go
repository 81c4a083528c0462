package rules

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/redline-dev/redline/sre/slo"
)

// promtool returns the promtool binary, skipping when it is absent unless
// REDLINE_REQUIRE_PROMTOOL is set (as `make rules-check` does).
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("REDLINE_REQUIRE_PROMTOOL") != "" {
			t.Fatalf("promtool not found and REDLINE_REQUIRE_PROMTOOL is set: apt-get install -y prometheus")
		}
		t.Skip("promtool not found (Debian package prometheus); skipping the promtool checks")
	}
	return p
}

func run(t *testing.T, dir, bin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", bin, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// representatives returns the first SLO of each shape (kind, transport, one route or
// several): the rest differ only in label values and numbers. promtool takes about 4 s per
// SLO, so go test runs these and `make rules-check` runs every default.
func representatives(all []slo.SLO) []slo.SLO {
	seen := map[string]bool{}
	var out []slo.SLO
	for _, s := range all {
		k := fmt.Sprint(s.Indicator.Kind, s.Indicator.Transport, len(s.Indicator.Routes) > 1)
		if !seen[k] {
			seen[k] = true
			out = append(out, s)
		}
	}
	return out
}

// TestPromtoolDefaults writes the rules of every default SLO, has promtool check them all
// and run the outage and slow-burn tests of one SLO of each shape.
func TestPromtoolDefaults(t *testing.T) {
	bin := promtool(t)
	dir := t.TempDir()
	defaults := slo.Defaults()
	paths, err := WriteDir(dir, defaults)
	if err != nil {
		t.Fatalf("WriteDir: %v", err)
	}
	var ruleFiles []string
	for _, p := range paths {
		if strings.HasSuffix(p, ".rules.yaml") {
			ruleFiles = append(ruleFiles, filepath.Base(p))
		}
	}
	run(t, dir, bin, append([]string{"check", "rules"}, ruleFiles...)...)
	reps := representatives(defaults)
	if len(reps) < 4 {
		t.Fatalf("only %d shapes among the defaults; want availability and latency on HTTP and gRPC", len(reps))
	}
	var testFiles []string
	for _, s := range reps {
		testFiles = append(testFiles, s.Name+".outage.test.yaml", s.Name+".slowburn.test.yaml")
	}
	run(t, dir, bin, append([]string{"test", "rules"}, testFiles...)...)
}

// TestWriteDefaults writes every default SLO's files, into $REDLINE_RULES_OUT when set (as
// `make rules-check` does before running promtool on all of them).
func TestWriteDefaults(t *testing.T) {
	dir := os.Getenv("REDLINE_RULES_OUT")
	if dir == "" {
		dir = t.TempDir()
	}
	defaults := slo.Defaults()
	paths, err := WriteDir(dir, defaults)
	if err != nil {
		t.Fatalf("WriteDir: %v", err)
	}
	if len(paths) != 3*len(defaults) {
		t.Fatalf("WriteDir wrote %d files for %d SLOs; want 3 each", len(paths), len(defaults))
	}
	for i, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var v any = &TestFile{}
		if i < len(defaults) {
			v = &File{}
		}
		dec := yaml.NewDecoder(strings.NewReader(string(b)))
		dec.KnownFields(true)
		if err := dec.Decode(v); err != nil {
			t.Fatalf("%s does not read back: %v", p, err)
		}
	}
}

// TestPromtoolCatchesWrongRules proves the generated tests can fail: rules whose page limit
// is doubled must fail the outage test.
func TestPromtoolCatchesWrongRules(t *testing.T) {
	bin := promtool(t)
	dir := t.TempDir()
	s := slo.AvailabilitySLO("note", "/note.v1.Note/GetNote", 0.999, 30*slo.Day)
	if _, err := WriteDir(dir, []slo.SLO{s}); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, s.Name+".rules.yaml")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), ">= 0.0144") {
		t.Fatalf("no 1h page limit 0.0144 in\n%s", b)
	}
	if err := os.WriteFile(p, []byte(strings.ReplaceAll(string(b), ">= 0.0144", ">= 0.0288")), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "test", "rules", s.Name+".outage.test.yaml")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Fatalf("promtool passed rules with a doubled page limit:\n%s", out)
	}
}

func TestGenerate(t *testing.T) {
	s := slo.LatencySLO("bff", "GET /v1/notes/{id}", 1e9, 0.99, 28*slo.Day, slo.WithRoutes("GET /v1/feed"), slo.WithName("reads"))
	f, err := Generate(s)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	out := string(b)
	for _, want := range []string{
		"slo:sli_error:ratio_rate5m", "slo:sli_error:ratio_rate3d", "slo:sli_error:ratio_rate28d",
		"slo:objective:ratio", "slo:error_budget:ratio", "slo:current_burn_rate:ratio",
		"slo:period_burn_rate:ratio", "slo:period_error_budget_remaining:ratio",
		"redline_http_server_duration_seconds_bucket", "le=~`1(\\.0)?`",
		"route=~`GET /v1/notes/\\{id\\}|GET /v1/feed`", `lane=""`,
		">= 0.1344", // 13.44 × 0.01 for the 28-day page
		"severity: page", "severity: ticket",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("rules lack %q:\n%s", want, out)
		}
	}
	var back File
	if err := yaml.Unmarshal(b, &back); err != nil || len(back.Groups) != 1 || len(back.Groups[0].Rules) != len(f.Groups[0].Rules) {
		t.Fatalf("rules do not read back: %v", err)
	}
}

func TestGenerateRejectsInvalid(t *testing.T) {
	s := slo.AvailabilitySLO("note", "/note.v1.Note/GetNote", 1.5, 30*slo.Day)
	if _, err := Generate(s); err == nil {
		t.Fatal("Generate(target 1.5) succeeded")
	}
	if _, err := WriteDir(t.TempDir(), []slo.SLO{s}); err == nil {
		t.Fatal("WriteDir(target 1.5) succeeded")
	}
}
