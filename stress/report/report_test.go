package report

import (
	"bytes"
	"context"
	"errors"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/redline-dev/redline/stress/capacity"
	"github.com/redline-dev/redline/stress/load"
)

// sampleResult runs the engine on a fake clock against a server that answers in 2 ms,
// 300 ms for every 50th request, and fails every 20th; the error-rate threshold fails at
// the end (its live checks wait past the run).
func sampleResult(t *testing.T) *load.Result {
	var res *load.Result
	synctest.Test(t, func(t *testing.T) {
		s, _ := load.Constant(100, 8*time.Second)
		var err error
		res, err = load.Run(context.Background(), s, load.DoerFunc(func(ctx context.Context, it *load.Iteration) {
			_ = it.Step("home/feed", func() (int, error) {
				d := 2 * time.Millisecond
				if it.N%50 == 0 {
					d = 300 * time.Millisecond
				}
				time.Sleep(d)
				if it.N%20 == 0 {
					return 503, &load.Error{Kind: load.KindStatus, Status: 503, Reason: "OVERLOADED", Detail: "GET /v1/feed: 503"}
				}
				return 200, nil
			})
		}), load.WithThresholds(load.LatencyBelow(99, time.Second), load.ErrorRateBelow(0.01)), load.WithWarmup(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
	})
	return res
}

func TestJSONRoundTrip(t *testing.T) {
	res := sampleResult(t)
	meta := Meta{RunID: "rlabcdefghij", Scenario: "rednote", Target: "http://127.0.0.1:8080", Lane: "stress-1",
		Started: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	doc := New(meta, res, nil, []Check{{Name: "leaks: sql", Pass: true, Detail: "0 rows"}})
	if doc.Passed || doc.Run.Thresholds[1].Pass {
		t.Fatalf("Passed = %v with a 5%% error rate over a 1%% threshold", doc.Passed)
	}
	var buf bytes.Buffer
	if err := WriteJSON(&buf, doc); err != nil {
		t.Fatal(err)
	}
	back, err := ReadJSON(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(doc, back) {
		t.Fatalf("round trip changed the document:\n%s", buf.String())
	}
	// Field names are the documented schema.
	for _, key := range []string{`"schema": "redline.stress/v1"`, `"run_id": "rlabcdefghij"`, `"lane": "stress-1"`, `"p99_ms"`,
		`"error_kinds"`, `"class": "5xx"`, `"reason": "OVERLOADED"`, `"t_s"`, `"spectrum"`, `"service_spectrum"`,
		`"thresholds"`, `"checks"`, `"statuses"`, `"503": 40`} {
		if !strings.Contains(buf.String(), key) {
			t.Errorf("JSON lacks %s", key)
		}
	}
	if doc.Run.Requests != 800 || doc.Run.Errors != 40 || doc.Run.Latency.P99 != 300 || doc.Run.Latency.P50 != 2 {
		t.Errorf("run %d requests, %d errors, p50 %v p99 %v; want 800, 40, 2, 300", doc.Run.Requests, doc.Run.Errors,
			doc.Run.Latency.P50, doc.Run.Latency.P99)
	}
	buf.Reset()
	_ = WriteJSON(&buf, &Document{Schema: "other/v9"})
	if _, err := ReadJSON(&buf); err == nil {
		t.Error("ReadJSON accepted another schema")
	}
}

var external = regexp.MustCompile(`(?i)(src|href)\s*=\s*["']?\s*(https?:)?//|<script|<link|@import|url\(`)

func TestHTMLIsSelfContainedWithThePlots(t *testing.T) {
	res := sampleResult(t)
	doc := New(Meta{RunID: "rl1", Scenario: "rednote <script>", Target: "http://127.0.0.1:8080"}, res, nil,
		[]Check{{Name: "baseline rows unchanged", Pass: false, Detail: "notes: 1200 → 1201"}})
	var buf bytes.Buffer
	if err := WriteHTML(&buf, doc); err != nil {
		t.Fatal(err)
	}
	html := buf.String()
	if n := strings.Count(html, "<svg"); n != 3 {
		t.Errorf("%d svg plots; want 3 (throughput, percentiles over time, distribution)", n)
	}
	for _, want := range []string{"Throughput", "Latency percentiles per second", "Latency by percentile", "99.9%",
		"p99 &lt;= 1s", "broken at", "home/feed", "OVERLOADED", "baseline rows unchanged", "notes: 1200 → 1201", "FAILED",
		"rednote &lt;script&gt;", "<polyline"} {
		if !strings.Contains(html, want) {
			t.Errorf("HTML lacks %q", want)
		}
	}
	if m := external.FindString(html); m != "" {
		t.Errorf("HTML loads something from outside: %q", m)
	}

	// A capacity search adds its two plots.
	rep := &capacity.Report{MaxSustainable: 200, Knee: 230, StoppedBy: "the step at 264.5/s failed", Bottleneck: "feed",
		BottleneckWhy: "feed's own p99 grew 9×"}
	for i, rate := range []float64{200, 230, 264.5} {
		r := *res
		r.Latency.P99 = time.Duration(i+1) * 40 * time.Millisecond
		rep.Steps = append(rep.Steps, capacity.Step{Rate: rate, Result: &r, Pass: i < 2,
			Services: []capacity.ServiceStep{{Service: "feed", Requests: 100 * rate, P99: time.Duration(i+1) * 9 * time.Millisecond}}})
	}
	doc = New(Meta{RunID: "rl2", Scenario: "rednote"}, nil, rep, nil)
	buf.Reset()
	if err := WriteHTML(&buf, doc); err != nil {
		t.Fatal(err)
	}
	html = buf.String()
	if n := strings.Count(html, "<svg"); n != 2 || !strings.Contains(html, "p99 by offered rate") || !strings.Contains(html, "feed&#39;s own p99 grew") {
		t.Errorf("capacity page: %d plots; want the p99 and rate plots and the bottleneck", n)
	}
	if !doc.Passed || doc.Capacity.Steps[2].Services[0].P99 != 27 {
		t.Errorf("capacity doc passed=%v, step 3 %+v", doc.Passed, doc.Capacity.Steps[2])
	}
	if m := external.FindString(html); m != "" {
		t.Errorf("capacity HTML loads something from outside: %q", m)
	}
}

func TestWriteFiles(t *testing.T) {
	dir := t.TempDir() + "/out"
	doc := New(Meta{RunID: "rl3"}, sampleResult(t), nil, nil)
	j, h, err := WriteFiles(dir, doc)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{j, h} {
		if st, err := os.Stat(p); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", p, err)
		}
	}
	if _, _, err := WriteFiles("/dev/null/x", doc); err == nil || errors.Is(err, nil) {
		t.Error("WriteFiles into a file's path succeeded")
	}
}
