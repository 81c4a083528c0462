package stack_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redline-dev/redline/services/stack"
	"github.com/redline-dev/redline/services/stack/stacktest"
)

// TestSLOBurnPagesGatesAndSurvivesRestart: real requests burn an SLO declared in a spec
// file; the in-process evaluator pages the on-call through the router and an incident; the
// release gate freezes the service; and after a restart on the same data the incident, its
// timeline and the spent budget are all still there, so the gate still says no.
func TestSLOBurnPagesGatesAndSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	spec := filepath.Join(dir, "slos.yaml")
	if err := os.WriteFile(spec, []byte(stacktest.SignupSLO), 0o644); err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		pages []string
	)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p struct {
			User     string `json:"user"`
			Incident struct {
				Title string `json:"title"`
			} `json:"incident"`
		}
		_ = json.NewDecoder(r.Body).Decode(&p)
		mu.Lock()
		pages = append(pages, p.User)
		mu.Unlock()
	}))
	defer hook.Close()
	edit := func(c *stack.Config) {
		c.DataDir = dir
		c.Admin.Token = "admin-token-for-tests"
		c.SRE.SLOs = []string{spec}
		c.SRE.EvalInterval = time.Second
		c.SRE.OnCall.Primary, c.SRE.OnCall.AckTimeout, c.SRE.OnCall.Webhook = []string{"ana"}, time.Hour, hook.URL
	}
	auth := []string{"Authorization", "Bearer admin-token-for-tests"}
	s := stacktest.Start(t, edit)

	// Before any traffic: 100% budget, no alert, the gate allows.
	var st struct {
		BudgetRemaining float64 `json:"budget_remaining"`
		Firing          []struct{ Severity string }
		Spec            struct{ File string }
	}
	stacktest.Do(t, "GET", s.SREURL()+"/v1/slos/bff-signup-latency", nil, auth...).JSON(t, &st)
	if st.BudgetRemaining != 1 || len(st.Firing) != 0 || st.Spec.File != spec {
		t.Fatalf("before traffic: %+v; want 100%% budget, nothing firing, the spec's file", st)
	}
	if r := stacktest.Do(t, "GET", s.SREURL()+"/v1/gate?service=bff", nil, auth...); !strings.Contains(string(r.Body), `"allow":true`) {
		t.Fatalf("gate before traffic = %d %s", r.Status, r.Body)
	}

	for i := range 12 {
		r := stacktest.Do(t, "POST", s.BFF+"/v1/users", map[string]string{"username": fmt.Sprintf("burner%02d", i), "password": "correct horse battery"})
		if r.Status != http.StatusCreated {
			t.Fatalf("sign-up = %d %s", r.Status, r.Body)
		}
	}
	stacktest.Eventually(t, "the page reaches the primary", func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		if len(pages) > 0 && pages[0] == "ana" {
			return true, ""
		}
		r := stacktest.Do(t, "GET", s.SREURL()+"/v1/slos/bff-signup-latency", nil, auth...)
		return false, "pages " + strings.Join(pages, ",") + "; SLO " + string(r.Body)
	})
	stacktest.Do(t, "GET", s.SREURL()+"/v1/slos/bff-signup-latency", nil, auth...).JSON(t, &st)
	if st.BudgetRemaining >= 0 || len(st.Firing) == 0 || st.Firing[0].Severity != "page" {
		t.Fatalf("after the burn: %+v; want the budget overspent and a page firing", st)
	}
	var list struct {
		Incidents []struct {
			ID, Service, Severity, Title string
			DedupKey                     string `json:"dedup_key"`
		}
	}
	stacktest.Do(t, "GET", s.SREURL()+"/v1/incidents?open=1", nil, auth...).JSON(t, &list)
	if len(list.Incidents) != 1 || list.Incidents[0].Service != "bff" || list.Incidents[0].Severity != "SEV2" ||
		list.Incidents[0].DedupKey != "slo:bff-signup-latency:page" {
		t.Fatalf("open incidents = %+v; want one SEV2 for bff keyed by the SLO", list.Incidents)
	}
	id := list.Incidents[0].ID
	gate := stacktest.Do(t, "GET", s.SREURL()+"/v1/gate?service=bff", nil, auth...)
	if !strings.Contains(string(gate.Body), `"allow":false`) || !strings.Contains(string(gate.Body), "frozen") {
		t.Fatalf("gate after the burn = %s; want a freeze", gate.Body)
	}
	if r := stacktest.Do(t, "GET", s.SREURL()+"/v1/gate?service=nope", nil, auth...); r.Status != http.StatusNotFound {
		t.Fatalf("gate of an unknown service = %d %s; want 404", r.Status, r.Body)
	}
	if r := stacktest.Do(t, "GET", s.SREURL()+"/v1/gate", nil, auth...); r.Status != http.StatusBadRequest {
		t.Fatalf("gate without a service = %d %s; want 400", r.Status, r.Body)
	}
	// Resolved, the incident has spent the budget many times over: the draft says so, the
	// gate asks for the postmortem, and publishing it leaves only the freeze.
	for _, step := range []string{"mitigate", "resolve"} {
		if r := stacktest.Do(t, "POST", s.SREURL()+"/v1/incidents/"+id+"/"+step, nil, auth...); r.Status != 200 {
			t.Fatalf("%s = %d %s", step, r.Status, r.Body)
		}
	}
	var pm struct{ Markdown string }
	stacktest.Do(t, "GET", s.SREURL()+"/v1/incidents/"+id+"/postmortem", nil, auth...).JSON(t, &pm)
	if !strings.Contains(pm.Markdown, "Error budget spent") || !strings.Contains(pm.Markdown, "bff-signup-latency ") {
		t.Fatalf("postmortem draft does not state the budget spent:\n%s", pm.Markdown)
	}
	gate = stacktest.Do(t, "GET", s.SREURL()+"/v1/gate?service=bff", nil, auth...)
	if !strings.Contains(string(gate.Body), "postmortem "+id+" --publish") {
		t.Fatalf("gate after the resolution = %s; want it to ask for %s's postmortem", gate.Body, id)
	}
	if r := stacktest.Do(t, "PUT", s.SREURL()+"/v1/incidents/"+id+"/postmortem", map[string]string{"author": "ana", "markdown": pm.Markdown}, auth...); r.Status != 200 {
		t.Fatalf("publish = %d %s", r.Status, r.Body)
	}
	gate = stacktest.Do(t, "GET", s.SREURL()+"/v1/gate?service=bff", nil, auth...)
	if strings.Contains(string(gate.Body), "--publish") || !strings.Contains(string(gate.Body), "frozen") {
		t.Fatalf("gate after the postmortem = %s; want only the freeze", gate.Body)
	}
	before := stacktest.Do(t, "GET", s.SREURL()+"/v1/incidents/"+id+"/timeline", nil, auth...)

	s.Stop()
	s = stacktest.Start(t, edit)
	after := stacktest.Do(t, "GET", s.SREURL()+"/v1/incidents/"+id+"/timeline", nil, auth...)
	type timeline struct {
		Entries []struct {
			Seq        int64
			Kind, Text string
			At         time.Time
		}
	}
	var tb, ta timeline
	before.JSON(t, &tb)
	after.JSON(t, &ta)
	if len(tb.Entries) < 2 || len(ta.Entries) < len(tb.Entries) {
		t.Fatalf("timeline before the restart %s, after %s", before.Body, after.Body)
	}
	for i, e := range tb.Entries {
		if ta.Entries[i] != e {
			t.Fatalf("timeline entry %d after the restart = %+v; before it was %+v", i, ta.Entries[i], e)
		}
	}
	stacktest.Do(t, "GET", s.SREURL()+"/v1/slos/bff-signup-latency", nil, auth...).JSON(t, &st)
	if st.BudgetRemaining >= 0 {
		t.Fatalf("budget after the restart = %v; want it still overspent (restored)", st.BudgetRemaining)
	}
	if gate := stacktest.Do(t, "GET", s.SREURL()+"/v1/gate?service=bff", nil, auth...); !strings.Contains(string(gate.Body), `"allow":false`) {
		t.Fatalf("gate after the restart = %s; want still frozen", gate.Body)
	}
}
