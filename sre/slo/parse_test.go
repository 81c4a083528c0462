package slo

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestParseExample(t *testing.T) {
	got, err := ParseFiles("testdata/note.yaml")
	if err != nil {
		t.Fatalf("ParseFiles: %v", err)
	}
	want := []SLO{
		{Name: "note-get-availability", Service: "note", Description: "99.9% of note reads succeed.",
			Indicator: Indicator{Kind: Availability, Transport: GRPC, Service: "note",
				Routes: []string{"/note.v1.Note/GetNote", "/note.v1.Note/GetNotes"}},
			Objective: 0.999, Period: 30 * Day, Budgeting: Occurrences, MinRequests: 20,
			Conditions: []Condition{{Severity: Page, Long: time.Hour, Short: 5 * time.Minute, Factor: 14.4}},
			File:       "testdata/note.yaml"},
		{Name: "note-get-latency", Service: "note",
			Indicator: Indicator{Kind: Latency, Transport: GRPC, Service: "note",
				Routes: []string{"/note.v1.Note/GetNote"}, Threshold: 50 * time.Millisecond},
			Objective: 0.99, Period: 30 * Day, Calendar: "month", Budgeting: Timeslices,
			TimesliceTarget: 0.95, TimesliceWindow: time.Minute, File: "testdata/note.yaml"},
		{Name: "note-create-latency", Service: "note",
			Indicator: Indicator{Kind: Latency, Transport: GRPC, Service: "note",
				Routes: []string{"/note.v1.Note/CreateNote"}, Threshold: 100 * time.Millisecond},
			Objective: 0.99, Period: 28 * Day, Budgeting: Occurrences, File: "testdata/note.yaml"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ParseFiles =\n%+v\nwant\n%+v", got, want)
	}
	if f := got[2].Alerts()[0].Factor; f != 13.44 {
		t.Fatalf("28d page factor = %v; want 13.44", f)
	}
}

// TestParseErrors: each broken spec names the file, the field path and the reason.
func TestParseErrors(t *testing.T) {
	base, err := os.ReadFile("testdata/note.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, old, new string
		want           string // regexp over the error
	}{
		{"target", "target: 0.999", "target: 1.5", `bad\.yaml: spec\.objectives\[0\]\.target: 1\.5 is not in \(0, 1\)`},
		{"target type", "target: 0.999", "target: high", `bad\.yaml:\d+: spec\.objectives\[0\]\.target: "high" is not a number`},
		{"unknown field", "budgetingMethod: Occurrences\n  objectives:\n    - displayName", "budgetingMethod: Occurrences\n  budget: 3\n  objectives:\n    - displayName", `bad\.yaml:\d+: spec\.budget: unknown field`},
		{"le not a bucket", "le: 0.05", "le: 0.06", `bad\.yaml: spec\.indicator\.spec\.ratioMetric\.total\.metricSource\.spec\.le: latency threshold 60ms is not a bucket bound`},
		{"bad window", "duration: 30d", "duration: 30x", `bad\.yaml:\d+: spec\.timeWindow\[0\]\.duration: duration "30x": unit must be`},
		{"short window", "duration: 30d", "duration: 1d", `spec\.timeWindow\[0\]\.duration: 24h0m0s is outside \[3d, 400d\]`},
		{"missing ref", "indicatorRef: note-get-errors", "indicatorRef: nope", `bad\.yaml:\d+: spec\.indicatorRef: no SLI named "nope"`},
		{"missing service", "  service: note\n  indicatorRef", "  service: notes\n  indicatorRef", `spec\.service: no Service named "notes"`},
		{"api version", "apiVersion: openslo/v1\nkind: Service", "apiVersion: openslo/v2\nkind: Service", `bad\.yaml:\d+: apiVersion: "openslo/v2" is not openslo/v1`},
		{"kind", "kind: Service", "kind: Team", `kind: "Team" is not one of`},
		{"outcome", "outcome: server_error", "outcome: client_error", `ratioMetric\.bad\.metricSource\.spec\.outcome: "client_error" is not server_error`},
		{"transport", "transport: grpc", "transport: udp", `"udp" is neither http nor grpc`},
		{"http route", `routes: ["/note.v1.Note/CreateNote"]`, `routes: ["GET /v1/notes"]`, `routes\[0\]: "GET /v1/notes" is not a grpc route label`},
		{"op", "op: gte", "op: lt", `conditions\[0\]\.spec\.condition\.op: "lt" is not gte`},
		{"never fires", "target: 0.999", "target: 0.9", `spec\.alertPolicies\[0\]: burn rate 14\.4 × budget 0\.1\d* ≥ 1: the alert can never fire`},
		{"duplicate", "kind: SLO\nmetadata:\n  name: note-get-latency", "kind: SLO\nmetadata:\n  name: note-get-availability", `SLO "note-get-availability" is already defined`},
		{"duplicate key", "  budgetingMethod: Occurrences\n  objectives:\n    - displayName", "  budgetingMethod: Occurrences\n  budgetingMethod: Occurrences\n  objectives:\n    - displayName", `spec\.budgetingMethod: duplicate field`},
		{"alias", "  description: Notes, read by the BFF.", "  description: &d Notes\n  x: *d", `YAML anchors and aliases are not supported|unknown field`},
		{"calendar", "duration: 1M", "duration: 2M", `a calendar window is 1w or 1M, not "2M"`},
		{"timeslice", "timeSliceWindow: 1m", "timeSliceWindow: 7m", `spec\.objectives\[0\]\.timeSliceWindow: 7m0s must divide 1h`},
		{"threshold value", "value: 0.1", "value: 0.3", `latency threshold 300ms is not a bucket bound`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := strings.Replace(string(base), tc.old, tc.new, 1)
			if src == string(base) {
				t.Fatalf("test case does not change the spec: %q", tc.old)
			}
			_, err := Parse("bad.yaml", []byte(src))
			if err == nil {
				t.Fatalf("Parse succeeded; want an error matching %s", tc.want)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error does not wrap ErrInvalid: %v", err)
			}
			if !regexp.MustCompile(tc.want).MatchString(err.Error()) {
				t.Fatalf("Parse error =\n%v\nwant match %s", err, tc.want)
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.File != "bad.yaml" || fe.Reason == "" {
				t.Fatalf("error %v has no FieldError naming bad.yaml", err)
			}
		})
	}
}

func TestParseAcrossFiles(t *testing.T) {
	dir := t.TempDir()
	doc, err := os.ReadFile("testdata/note.yaml")
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.SplitN(string(doc), "\n---\n", 2)
	a, b := filepath.Join(dir, "service.yaml"), filepath.Join(dir, "slos.yaml")
	if err := os.WriteFile(a, []byte(parts[0]), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(b, []byte(parts[1]), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := ParseFiles(a, b)
	if err != nil || len(got) != 3 {
		t.Fatalf("ParseFiles(two files) = %d SLOs, %v; want 3, nil", len(got), err)
	}
	if _, err := Parse("slos.yaml", []byte(parts[1])); err == nil || !strings.Contains(err.Error(), `no Service named "note"`) {
		t.Fatalf("Parse without the Service = %v; want no Service named note", err)
	}
}

func TestParseEmpty(t *testing.T) {
	for _, in := range []string{"", "# nothing\n", "[1, 2]", "kind: SLO"} {
		if _, err := Parse("x.yaml", []byte(in)); err == nil {
			t.Errorf("Parse(%q) succeeded; want an error", in)
		}
	}
}

func FuzzParse(f *testing.F) {
	if b, err := os.ReadFile("testdata/note.yaml"); err == nil {
		f.Add(b)
	}
	f.Add([]byte("apiVersion: openslo/v1\nkind: SLO\nmetadata: {name: x}\nspec: {}\n"))
	f.Add([]byte("a: &a [*a, *a]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		slos, err := Parse("fuzz.yaml", data)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error does not wrap ErrInvalid: %v", err)
			}
			return
		}
		for _, s := range slos {
			if err := s.Validate(); err != nil {
				t.Fatalf("parsed SLO does not validate: %v", err)
			}
		}
	})
}
