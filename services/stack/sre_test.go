package stack_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redline-dev/redline/services/stack"
	"github.com/redline-dev/redline/services/stack/stacktest"
)

// TestSREPagesAndEscalates: an Alertmanager webhook posted to `redline up`'s SRE API opens
// an incident and pages the primary; without an ack the secondary is paged after the ack
// timeout; the ack and resolve close it, and the timeline and postmortem show every step.
// The API needs the admin token.
func TestSREPagesAndEscalates(t *testing.T) {
	var (
		mu    sync.Mutex
		pages []string
	)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p struct {
			User  string `json:"user"`
			Level int    `json:"level"`
		}
		_ = json.NewDecoder(r.Body).Decode(&p)
		mu.Lock()
		pages = append(pages, p.User)
		mu.Unlock()
	}))
	defer hook.Close()
	s := stacktest.Start(t, func(c *stack.Config) {
		c.Admin.Token = "admin-token-for-tests"
		c.SRE.OnCall.Primary, c.SRE.OnCall.Secondary, c.SRE.OnCall.Manager = []string{"ana"}, []string{"ben"}, "cleo"
		c.SRE.OnCall.AckTimeout, c.SRE.OnCall.Webhook = time.Second, hook.URL
	})
	auth := []string{"Authorization", "Bearer admin-token-for-tests"}
	body := `{"version":"4","status":"firing","receiver":"redline","groupKey":"{}:{alertname=\"NoteErrorBudgetBurn\"}",
		"groupLabels":{"alertname":"NoteErrorBudgetBurn"},"commonLabels":{},"commonAnnotations":{},"externalURL":"http://am",
		"alerts":[{"status":"firing","labels":{"alertname":"NoteErrorBudgetBurn","service":"note","severity":"page"},
		"annotations":{"summary":"note burns its error budget 14x"},"startsAt":"2026-11-25T10:00:00Z","endsAt":"0001-01-01T00:00:00Z",
		"generatorURL":"http://prom","fingerprint":"abc"}]}`
	if r := stacktest.Do(t, "POST", s.SREURL()+"/v1/alerts/alertmanager", body); r.Status != http.StatusUnauthorized {
		t.Fatalf("webhook without the token = %d %s; want 401", r.Status, r.Body)
	}
	if r := stacktest.Do(t, "POST", s.SREURL()+"/v1/alerts/alertmanager", `{"version":"4","alerts":[{}]}`, auth...); r.Status != 400 {
		t.Fatalf("malformed webhook = %d %s; want 400", r.Status, r.Body)
	}
	r := stacktest.Do(t, "POST", s.SREURL()+"/v1/alerts/alertmanager", body, auth...)
	var opened struct {
		Incidents []struct{ ID, State string }
	}
	r.JSON(t, &opened)
	if r.Status != 200 || len(opened.Incidents) != 1 {
		t.Fatalf("webhook = %d %s; want one incident", r.Status, r.Body)
	}
	id := opened.Incidents[0].ID
	stacktest.Eventually(t, "the primary, then the secondary paged", func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		return strings.HasPrefix(strings.Join(pages, ","), "ana,ben"), strings.Join(pages, ",")
	})
	for _, step := range []string{"ack", "resolve"} {
		if r := stacktest.Do(t, "POST", s.SREURL()+"/v1/incidents/"+id+"/"+step, nil, auth...); r.Status != 200 {
			t.Fatalf("%s = %d %s", step, r.Status, r.Body)
		}
	}
	r = stacktest.Do(t, "GET", s.SREURL()+"/v1/incidents/"+id+"/timeline", nil, auth...)
	for _, kind := range []string{"alert", "notify", "escalate", "ack", "resolve"} {
		if !strings.Contains(string(r.Body), `"kind":"`+kind+`"`) {
			t.Errorf("timeline lacks %s: %s", kind, r.Body)
		}
	}
	if r := stacktest.Do(t, "GET", s.SREURL()+"/v1/incidents/"+id+"/postmortem", nil, auth...); !strings.Contains(string(r.Body), "Did it alert?") {
		t.Errorf("postmortem = %s", r.Body)
	}
	if r := stacktest.Do(t, "GET", s.SREURL()+"/v1/oncall", nil, auth...); !strings.Contains(string(r.Body), `"user":"ana"`) ||
		!strings.Contains(string(r.Body), `"user":"cleo"`) {
		t.Errorf("on call = %s", r.Body)
	}
}
