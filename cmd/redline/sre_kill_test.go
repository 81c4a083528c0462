package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestSREKilledMidEscalationResumes: `redline serve sre` pages the primary for an
// Alertmanager alert and is killed with SIGKILL before the ack timeout; restarted on the same
// database it loses no incident or timeline entry, and the escalation goes on to the
// secondary on time.
func TestSREKilledMidEscalationResumes(t *testing.T) {
	var (
		mu    sync.Mutex
		pages []string
	)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p struct {
			User string `json:"user"`
		}
		_ = json.NewDecoder(r.Body).Decode(&p)
		mu.Lock()
		pages = append(pages, p.User)
		mu.Unlock()
	}))
	defer hook.Close()
	paged := func() string {
		mu.Lock()
		defer mu.Unlock()
		return strings.Join(pages, ",")
	}
	dir := t.TempDir()
	sre := freeAddr(t)
	const token = "kill-test-admin-token"
	cfg := fmt.Sprintf(`admin: {addr: %q, token: %q}
sre:
  addr: %q
  oncall: {primary: [ana], secondary: [ben], manager: cleo, ack_timeout: 4s, webhook: %q}
`, freeAddr(t), token, sre, hook.URL)
	if err := os.WriteFile(filepath.Join(dir, "redline.yaml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	api := func(method, path, body string) (int, string) {
		req, _ := http.NewRequest(method, "http://"+sre+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	serve := func() *proc {
		p := start(t, dir, nil, "serve", "sre", "--config", "redline.yaml")
		eventually(t, 30*time.Second, "the SRE API answers", func() bool { code, _ := api("GET", "/v1/oncall", ""); return code == 200 })
		return p
	}
	p := serve()
	code, body := api("POST", "/v1/alerts/alertmanager", `{"version":"4","status":"firing","receiver":"redline","groupKey":"{}:{}",
		"alerts":[{"status":"firing","labels":{"alertname":"SLOBurnRatePage","slo":"order-availability","service":"order","severity":"page"},
		"annotations":{"summary":"order burns its budget"},"startsAt":"2026-11-25T10:00:00Z"}]}`)
	var opened struct{ Incidents []struct{ ID string } }
	if err := json.Unmarshal([]byte(body), &opened); code != 200 || err != nil || len(opened.Incidents) != 1 {
		t.Fatalf("webhook = %d %s", code, body)
	}
	id := opened.Incidents[0].ID
	eventually(t, 20*time.Second, "the primary paged", func() bool { return paged() == "ana" })
	// The page is sent, then recorded: kill once the record is in, so the restart has
	// nothing to page twice and the test knows exactly what the timeline held.
	var before string
	eventually(t, 10*time.Second, "the primary's page on the timeline", func() bool {
		_, before = api("GET", "/v1/incidents/"+id+"/timeline", "")
		return strings.Contains(before, "paged ana")
	})

	if err := p.cmd.Process.Kill(); err != nil { // SIGKILL: no stop hook runs
		t.Fatal(err)
	}
	if code := p.wait(t, 10*time.Second); code != -1 {
		t.Fatalf("exit code after SIGKILL = %d; want -1 (killed)", code)
	}
	if got := paged(); got != "ana" {
		t.Fatalf("pages while down = %s", got)
	}
	serve()
	eventually(t, 20*time.Second, "the secondary paged after the restart", func() bool { return paged() == "ana,ben" })

	type timeline struct {
		Entries []struct {
			Seq        int64
			Kind, Text string
			At         time.Time
		}
	}
	var tb, ta timeline
	if err := json.Unmarshal([]byte(before), &tb); err != nil || len(tb.Entries) < 2 {
		t.Fatalf("timeline before the kill: %v %s", err, before)
	}
	// The page is sent, then its timeline entry written: wait for the entry.
	var after string
	eventually(t, 10*time.Second, "the secondary's page on the timeline", func() bool {
		_, after = api("GET", "/v1/incidents/"+id+"/timeline", "")
		return strings.Contains(after, "paged ben")
	})
	if err := json.Unmarshal([]byte(after), &ta); err != nil || len(ta.Entries) <= len(tb.Entries) {
		t.Fatalf("timeline after the restart: %v %s", err, after)
	}
	for i, e := range tb.Entries {
		if ta.Entries[i] != e {
			t.Fatalf("entry %d after the restart = %+v; before the kill %+v", i, ta.Entries[i], e)
		}
	}
	kinds := ""
	for _, e := range ta.Entries {
		kinds += string(e.Kind) + " "
	}
	if kinds != "alert notify escalate " {
		t.Fatalf("timeline kinds = %s; want the alert, the primary's page (notify) and the secondary's (escalate)", kinds)
	}
}
