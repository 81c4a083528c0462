package stack_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	notev1 "github.com/redline-dev/redline/api/note/v1"
	"github.com/redline-dev/redline/services/stack"
	"github.com/redline-dev/redline/services/stack/stacktest"
)

// TestSlowReplicaLosesPicks is the drill of one slow replica: with note.replicas: 2 the BFF
// balances GetNote over note and note-2, each behind its own chaos.net proxy and with its
// own HA parts; a delay fault scoped to instance note-2 slows only note-2, and the P2C
// balancer, once it has met the slow replica, sends it under a quarter of the picks. All
// assertions are on counts, from redline_ha_balancer_picks_total deltas (the metrics are
// the process's, shared with the other tests) and the fault's hit count; none on time.
func TestSlowReplicaLosesPicks(t *testing.T) {
	s := stacktest.Start(t, func(c *stack.Config) {
		c.Note.Replicas = 2
		c.Chaos.Enabled, c.Chaos.Net.Enabled = true, true
		c.HA.RateLimit.Off = true // the drill reads faster than the BFF's 100/s per route
	})
	if s.GRPCAddr("note") == "" || s.GRPCAddr("note-2") == "" || s.GRPCAddr("note") == s.GRPCAddr("note-2") {
		t.Fatalf("replica addresses %q and %q; want two servers", s.GRPCAddr("note"), s.GRPCAddr("note-2"))
	}
	proxies := netProxies(t, s)
	for _, name := range []string{"note", "note-2"} {
		if p, ok := proxies[name]; !ok || p.Upstream != s.GRPCAddr(name) {
			t.Errorf("proxy %s = %+v (found %v); want one in front of %s", name, p, ok, s.GRPCAddr(name))
		}
	}
	var state struct {
		HA struct {
			Servers map[string]any `json:"servers"`
		} `json:"ha"`
	}
	stacktest.Do(t, "GET", s.Admin+"/state", nil).JSON(t, &state)
	for _, name := range []string{"note", "note-2"} {
		if _, ok := state.HA.Servers[name]; !ok {
			t.Errorf("/state ha.servers has no %q: %v", name, keys(state.HA.Servers))
		}
	}

	bearer, _ := stacktest.Session(t, s.BFF, "replica_drill")
	r := stacktest.Do(t, "POST", s.BFF+"/v1/notes", map[string]any{"title": "one slow replica"}, "Authorization", bearer)
	if r.Status != http.StatusCreated {
		t.Fatalf("create note = %d %s", r.Status, r.Body)
	}
	var n struct{ ID string }
	r.JSON(t, &n)
	get := func(calls int) {
		t.Helper()
		for i := range calls {
			if r := stacktest.Do(t, "GET", s.BFF+"/v1/notes/"+n.ID, nil); r.Status != http.StatusOK {
				t.Fatalf("get note, call %d = %d %s", i, r.Status, r.Body)
			}
		}
	}

	// Both replicas serve: each gets picks. A replica whose first answer was slow (a cold
	// connection) is avoided until the balancer probes it again, so this reads in rounds
	// until both have been picked rather than a fixed number of times.
	start1, start2 := notePicks(t, s)
	var before1, before2 float64
	stacktest.Eventually(t, "both replicas picked before the fault", func() (bool, string) {
		get(20)
		a1, a2 := notePicks(t, s)
		before1, before2 = a1-start1, a2-start2
		return before1 >= 1 && before2 >= 1, fmt.Sprintf("note %v picks, note-2 %v", before1, before2)
	})

	spec := `{"type":"delay","service":"note","instance":"note-2","kind":"grpc","side":"server",` +
		`"op":"/note.v1.Note/GetNote","delay":"150ms","ttl":"1m","reason":"replica drill"}`
	r = stacktest.Do(t, "POST", s.Admin+"/chaos/faults", []byte(spec))
	var f struct{ ID string }
	r.JSON(t, &f)
	if r.Status != http.StatusCreated {
		t.Fatalf("add fault = %d %s", r.Status, r.Body)
	}
	injected := func() int64 {
		t.Helper()
		var l struct {
			Faults []struct {
				ID       string
				Injected int64
			}
		}
		stacktest.Do(t, "GET", s.Admin+"/chaos/faults", nil).JSON(t, &l)
		if len(l.Faults) != 1 || l.Faults[0].ID != f.ID {
			t.Fatalf("active faults = %+v; want %s alone", l.Faults, f.ID)
		}
		return l.Faults[0].Injected
	}

	// The fault is scoped to note-2: a call straight to replica 1 passes untouched, one
	// straight to note-2 is slowed.
	id, err := strconv.ParseInt(n.ID, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		instance string
		want     int64
	}{{"note", 0}, {"note-2", 1}} {
		if _, err := notev1.NewNoteClient(s.Conn(t, c.instance)).GetNote(context.Background(), &notev1.GetNoteRequest{Id: id}); err != nil {
			t.Fatalf("GetNote on %s = %v", c.instance, err)
		}
		if got := injected(); got != c.want {
			t.Fatalf("after a call straight to %s the fault hit %d calls; want %d", c.instance, got, c.want)
		}
	}

	// Through the BFF, the balancer sends the slow replica clearly less than half. It reads
	// until the balancer has tried note-2 under the fault at least once (a replica it
	// already avoided is probed again within a second) and 300 picks are in, so the share
	// is that of a replica known to be slow, not one the balancer happened to avoid.
	b1, b2 := notePicks(t, s)
	var slow1, slow2 float64
	var hit int64
	stacktest.Eventually(t, "300 picks, one of them of note-2 under the fault", func() (bool, string) {
		get(50)
		a1, a2 := notePicks(t, s)
		slow1, slow2 = a1-b1, a2-b2
		hit = injected() - 1 // less the direct call above
		return hit >= 1 && slow1+slow2 >= 300, fmt.Sprintf("note %v picks, note-2 %v, the fault hit %d", slow1, slow2, hit)
	})
	if total := slow1 + slow2; slow2/total >= 0.25 {
		t.Fatalf("while note-2 is slow: note %v picks, note-2 %v (%.0f%%); want under 25%% to note-2", slow1, slow2, 100*slow2/total)
	}
	if float64(hit) > slow2 {
		t.Fatalf("the fault hit %d calls through the BFF, more than the %v picked for note-2", hit, slow2)
	}
	t.Logf("picks before the fault: note %v, note-2 %v; with note-2 slow: note %v, note-2 %v (the fault hit %d of them)",
		before1, before2, slow1, slow2, hit)
}

// notePicks reads redline_ha_balancer_picks_total of the two note replicas from the
// admin endpoint's /metrics, as a drill would.
func notePicks(t *testing.T, s *stacktest.Running) (note, note2 float64) {
	t.Helper()
	r := stacktest.Do(t, "GET", s.Admin+"/metrics", nil)
	if r.Status != http.StatusOK {
		t.Fatalf("GET /metrics = %d", r.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(r.Body))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	for _, m := range families["redline_ha_balancer_picks_total"].GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if labels["service"] != "note" {
			continue
		}
		switch labels["instance"] {
		case "note":
			note = m.GetCounter().GetValue()
		case "note-2":
			note2 = m.GetCounter().GetValue()
		}
	}
	return note, note2
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestNoteReplicasValidated: note.replicas takes 1 to 8, and a bad value is refused
// naming the key and the range.
func TestNoteReplicasValidated(t *testing.T) {
	for _, tc := range []struct {
		replicas int
		ok       bool
	}{{1, true}, {2, true}, {stack.MaxReplicas, true}, {0, false}, {-1, false}, {stack.MaxReplicas + 1, false}} {
		c := stack.Default()
		c.Note.Replicas = tc.replicas
		err := c.Validate()
		if tc.ok != (err == nil) || err != nil && !strings.Contains(err.Error(), "note.replicas "+strconv.Itoa(tc.replicas)+": want 1 to 8") {
			t.Errorf("Validate with note.replicas %d = %v; want ok=%v, naming note.replicas and 1 to 8", tc.replicas, err, tc.ok)
		}
	}
	if got := stack.Default().Note.Replicas; got != 1 {
		t.Errorf("default note.replicas = %d; want 1", got)
	}
}
