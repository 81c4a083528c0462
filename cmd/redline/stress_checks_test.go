package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/redline-dev/redline/services/stack"
)

func TestBusinessSeries(t *testing.T) {
	metrics := `# HELP redline_http_server_requests_total x
redline_http_server_requests_total{code="200",lane="",method="GET",route="GET /v1/feed",service="bff"} 12
redline_http_server_requests_total{code="200",lane="stress-1",method="GET",route="GET /v1/feed",service="bff"} 500
redline_http_server_requests_total{code="200",lane="",method="POST",route="/charge",service="payprovider"} 3
redline_grpc_server_requests_total{code="OK",lane="",method="unary",route="/order.v1.Order/PlaceOrder",service="order"} 4
redline_grpc_server_requests_total{code="OK",lane="",method="unary",route="/interaction.v1.Interaction/GetCounts",service="interaction"} 90
redline_grpc_server_requests_total{code="OK",lane="shadow",method="unary",route="/order.v1.Order/MarkPaid",service="order"} 7
`
	got, err := businessSeries(strings.NewReader(metrics))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[`redline_http_server_requests_total{code="200",lane="",method="GET",route="GET /v1/feed",service="bff"}`] != 12 ||
		got[`redline_grpc_server_requests_total{code="OK",lane="",method="unary",route="/order.v1.Order/PlaceOrder",service="order"}`] != 4 {
		t.Fatalf("businessSeries = %v; want the baseline BFF request and the baseline order write only", got)
	}
	if _, err := businessSeries(strings.NewReader(`redline_http_server_requests_total{lane="",service="bff"} x`)); err == nil {
		t.Fatal("a bad value parsed")
	}
	moved := businessCheck(got, map[string]float64{`a`: 1})
	if moved.Pass || !strings.Contains(moved.Detail, "a: 0 → 1") {
		t.Fatalf("businessCheck = %+v; want the moved series named", moved)
	}
	if same := businessCheck(got, got); !same.Pass {
		t.Fatalf("businessCheck of equal maps = %+v", same)
	}
}

func TestLeakAndTableChecks(t *testing.T) {
	clean := stack.LeakReport{Sentinel: "rlabc12345", Scanned: []string{"sql note: 3 text columns"}}
	if c := leakCheck(clean); !c.Pass {
		t.Fatalf("no leaks = %+v", c)
	}
	leaky := clean
	leaky.Leaks = []stack.Leak{{Store: "sql", Where: "note.notes.title", Count: 2}}
	if c := leakCheck(leaky); c.Pass || !strings.Contains(c.Detail, "note.notes.title: 2") {
		t.Fatalf("a leak = %+v", c)
	}
	blind := clean
	blind.Skipped = []string{"cache: cannot be scanned"}
	if c := leakCheck(blind); c.Pass {
		t.Fatalf("an unscanned store passed: %+v", c)
	}
	a := snapshot{"note.notes": {Rows: 3, Sum: "01"}}
	b := snapshot{"note.notes": {Rows: 4, Sum: "02"}}
	if c := tablesCheck(a, a); !c.Pass {
		t.Fatalf("same tables = %+v", c)
	}
	if c := tablesCheck(a, b); c.Pass || !strings.Contains(c.Detail, "3 rows") {
		t.Fatalf("changed tables = %+v", c)
	}
}

func FuzzBusinessSeries(f *testing.F) {
	f.Add(`redline_http_server_requests_total{code="200",lane="",service="bff"} 1`)
	f.Add(`redline_grpc_server_requests_total{route="/a.B/Create",lane=""} 2e3` + "\n# x\n")
	f.Fuzz(func(t *testing.T, s string) {
		got, err := businessSeries(strings.NewReader(s))
		if err == nil {
			for k := range got {
				if !strings.HasPrefix(k, "redline_") {
					t.Fatalf("kept %q", k)
				}
			}
		}
	})
}

// TestBaselineHealth: the lane run's guard fails when the baseline's BFF requests start
// failing between two looks, and not before.
func TestBaselineHealth(t *testing.T) {
	var ok, shed float64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "redline_http_server_requests_total{code=\"200\",lane=\"\",route=\"GET /v1/feed\",service=\"bff\"} %g\n", ok)
		fmt.Fprintf(w, "redline_http_server_requests_total{code=\"429\",lane=\"\",route=\"GET /v1/feed\",service=\"bff\"} %g\n", shed)
		fmt.Fprintf(w, "redline_http_server_requests_total{code=\"429\",lane=\"stress-1\",route=\"GET /v1/feed\",service=\"bff\"} %g\n", 10*shed)
	}))
	defer srv.Close()
	check := baselineHealth(adminClient{base: srv.URL, hc: srv.Client()}, 0.01)
	ctx := context.Background()
	for i, step := range []struct {
		ok, shed float64
		fail     bool
	}{
		{100, 0, false}, // first look: nothing to compare
		{200, 0, false},
		{300, 50, true}, // 50 of 150 baseline requests shed
		{400, 50, false},
		{405, 55, false}, // 10 requests: too few to judge
	} {
		ok, shed = step.ok, step.shed
		if err := check(ctx); (err != nil) != step.fail {
			t.Fatalf("look %d: %v; want failure %v", i, err, step.fail)
		}
	}
	srv.Close()
	for i := range 3 {
		if err := check(ctx); (err != nil) != (i == 2) {
			t.Fatalf("unreachable look %d: %v; want a failure on the third", i, err)
		}
	}
}

func TestGuardsCheck(t *testing.T) {
	before := map[string]float64{`redline_lane_rejected_total{reason="signature",service="bff"}`: 2}
	if c := guardsCheck(before, before); !c.Pass {
		t.Fatalf("unmoved guards = %+v", c)
	}
	after := map[string]float64{`redline_lane_rejected_total{reason="signature",service="bff"}`: 2,
		`redline_lane_baseline_refused_total{client="sql"}`: 1}
	if c := guardsCheck(before, after); c.Pass || !strings.Contains(c.Detail, `client="sql"} +1`) {
		t.Fatalf("a refusal during the run = %+v", c)
	}
}
