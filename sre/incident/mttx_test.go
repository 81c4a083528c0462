package incident

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redline-dev/redline/ha/clock"
)

func TestPercentile(t *testing.T) {
	ds := []time.Duration{10, 1, 9, 2, 8, 3, 7, 4, 6, 5}
	for _, tt := range []struct {
		p    float64
		want time.Duration
	}{{50, 5}, {90, 9}, {100, 10}, {1, 1}, {0, 1}} {
		if got := Percentile(ds, tt.p); got != tt.want {
			t.Errorf("Percentile(1..10, %v) = %d; want %d", tt.p, got, tt.want)
		}
	}
	if got := Percentile(nil, 50); got != 0 {
		t.Errorf("Percentile(nil) = %d; want 0", got)
	}
}

func TestComputeMTTx(t *testing.T) {
	var incs []Incident
	// Ten incidents: detect i minutes, know 2i, fix 3i, verify 4i, i = 1..10; the last one
	// was resolved straight from triggered, so it counts only toward MTTI.
	for i := 1; i <= 10; i++ {
		d := time.Duration(i) * time.Minute
		inc := Incident{ImpactStart: t0, TriggeredAt: t0.Add(d)}
		if i < 10 {
			inc.AcknowledgedAt = inc.TriggeredAt.Add(2 * d)
			inc.MitigatedAt = inc.AcknowledgedAt.Add(3 * d)
			inc.ResolvedAt = inc.MitigatedAt.Add(4 * d)
		} else {
			inc.ResolvedAt = inc.TriggeredAt.Add(time.Hour)
		}
		incs = append(incs, inc)
	}
	m := ComputeMTTx(incs)
	tests := []struct {
		s        Stage
		name     string
		n        int
		p50, p90 time.Duration
	}{
		{m.Detect, "MTTI", 10, 5 * time.Minute, 9 * time.Minute},
		{m.Know, "MTTK", 9, 10 * time.Minute, 18 * time.Minute}, // 2..18 step 2: ranks 5 and 9
		{m.Fix, "MTTF", 9, 15 * time.Minute, 27 * time.Minute},
		{m.Verify, "MTTV", 9, 20 * time.Minute, 36 * time.Minute},
	}
	for _, tt := range tests {
		if tt.s.Name != tt.name || tt.s.N != tt.n || tt.s.P50 != tt.p50 || tt.s.P90 != tt.p90 {
			t.Errorf("%s = %+v; want n %d, p50 %s, p90 %s", tt.name, tt.s, tt.n, tt.p50, tt.p90)
		}
	}
	if len(m.Stages()) != 4 {
		t.Error("Stages() is not the four stages")
	}
}

func TestStoreMTTxAndPostmortem(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewFake(t0)
	s := openStore(t, backends(t)[0].open(t), clk)
	var id string
	for i, key := range []string{"a", "b", "c"} {
		inc, _, err := s.Trigger(ctx, Trigger{DedupKey: key, Title: "checkout | failing", Service: "order", Severity: SEV1,
			ImpactStart: clk.Now().Add(-time.Duration(i+1) * time.Minute), Actor: "alert:Burn", Text: "order availability burn 14.4x"})
		if err != nil {
			t.Fatal(err)
		}
		id = inc.ID
		clk.Advance(time.Duration(i+1) * time.Minute)
		if _, err := s.Acknowledge(ctx, inc.ID, "ana", ""); err != nil {
			t.Fatal(err)
		}
		clk.Advance(10 * time.Minute)
		if _, err := s.Mitigate(ctx, inc.ID, "ana", "rolled back deploy 42"); err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Hour)
		if _, err := s.Resolve(ctx, inc.ID, "ana", ""); err != nil {
			t.Fatal(err)
		}
	}
	m, err := s.MTTx(ctx, Filter{Service: "order"})
	if err != nil {
		t.Fatal(err)
	}
	if m.Detect.N != 3 || m.Detect.P50 != 2*time.Minute || m.Know.P90 != 3*time.Minute || m.Fix.P50 != 10*time.Minute || m.Verify.P50 != time.Hour {
		t.Fatalf("MTTx = %+v", m)
	}
	if _, err := s.AddTodo(ctx, id, "bo", "Alert on checkout latency"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetRoles(ctx, id, Roles{Commander: "ana"}, "ana"); err != nil {
		t.Fatal(err)
	}
	todo, err := s.AddTodo(ctx, id, "cy", "Runbook for rollback")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CompleteTodo(ctx, id, todo.Seq); err != nil {
		t.Fatal(err)
	}
	if err := s.CompleteTodo(ctx, id, 99); !errors.Is(err, ErrNotFound) {
		t.Errorf("CompleteTodo(99) = %v; want ErrNotFound", err)
	}
	md, err := s.Postmortem(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	last := -1
	for _, h := range PostmortemHeadings {
		i := strings.Index(md, "\n"+h+"\n")
		if i < 0 || i < last {
			t.Fatalf("postmortem lacks heading %q in order:\n%s", h, md)
		}
		last = i
	}
	for _, want := range []string{
		"# Postmortem: checkout | failing",
		"order availability burn 14.4x",
		"| ack | ana |", "rolled back deploy 42", "| resolve | ana |",
		"- [ ] Alert on checkout latency — owner: bo",
		"- [x] Runbook for rollback — owner: cy",
		"Yes. The first alert was recorded",
		"Incident commander: ana",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("postmortem lacks %q:\n%s", want, md)
		}
	}
	tl, _ := s.Timeline(ctx, id)
	for _, e := range tl {
		if !strings.Contains(md, stamp(e.At)+" | "+string(e.Kind)) {
			t.Errorf("postmortem timeline lacks entry %+v", e)
		}
	}
	// Without todos the draft proposes the template's, owned by the commander.
	draft := Postmortem(&Incident{ID: "x", Title: "t", Roles: Roles{Commander: "cy"}}, nil, nil)
	if !strings.Contains(draft, "— owner: cy") || !strings.Contains(draft, "No alert is in the timeline") {
		t.Errorf("draft without todos or alerts:\n%s", draft)
	}
}
