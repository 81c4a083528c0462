package incident

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/redline-dev/redline/ha/clock"
	"github.com/redline-dev/redline/kit/errs"
	"github.com/redline-dev/redline/kit/log"
	kithttp "github.com/redline-dev/redline/kit/transport/http"
	"github.com/redline-dev/redline/sre/oncall"
)

func TestHTTP(t *testing.T) {
	clk := clock.NewFake(t0)
	store := openStore(t, backends(t)[0].open(t), clk)
	p := &pager{}
	esc, err := oncall.NewEscalator(store, directory(), p, oncall.WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	srv := kithttp.NewServer("sre", kithttp.Logger(log.Discard()))
	Register(srv, store, NewResponder(store, esc))
	ts := httptest.NewServer(srv)
	defer ts.Close()

	call := func(method, path, body string, wantStatus int, out any) string {
		t.Helper()
		req, _ := http.NewRequest(method, ts.URL+path, strings.NewReader(body))
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != wantStatus {
			t.Fatalf("%s %s = %d %s; want %d", method, path, resp.StatusCode, raw, wantStatus)
		}
		if out != nil {
			if err := json.Unmarshal(raw, out); err != nil {
				t.Fatalf("%s %s: decode %s: %v", method, path, raw, err)
			}
		}
		return string(raw)
	}

	bad := strings.Replace(webhook, `"version":"4"`, `"version":"3"`, 1)
	if body := call("POST", "/v1/alerts/alertmanager", bad, 400, nil); !strings.Contains(body, "version") {
		t.Fatalf("400 body %s does not name the field", body)
	}
	var list incidentsResp
	call("GET", "/v1/incidents", "", 200, &list)
	if len(list.Incidents) != 0 {
		t.Fatalf("a malformed webhook created %d incidents", len(list.Incidents))
	}

	var got incidentsResp
	call("POST", "/v1/alerts/alertmanager", webhook, 200, &got)
	if len(got.Incidents) != 1 || got.Incidents[0].Service != "order" {
		t.Fatalf("webhook answered %+v", got)
	}
	id := got.Incidents[0].ID
	if _, err := esc.Tick(t.Context()); err != nil || p.users() != "ana" {
		t.Fatalf("page after the webhook: %q, %v", p.users(), err)
	}

	var opened Incident
	call("POST", "/v1/incidents", `{"title":"checkout slow","service":"cart","severity":"SEV3","actor":"bo"}`, 201, &opened)
	if opened.State != Triggered || opened.Service != "cart" {
		t.Fatalf("opened %+v", opened)
	}
	call("POST", "/v1/incidents", `{"title":"x","service":"cart","severity":"SEV9"}`, 400, nil)

	clk.Advance(2 * time.Minute)
	var inc Incident
	call("POST", "/v1/incidents/"+id+"/ack", "", 200, &inc)
	if inc.State != Acknowledged {
		t.Fatalf("ack gave %+v", inc)
	}
	call("POST", "/v1/incidents/inc-missing/ack", "", 404, nil)
	call("PUT", "/v1/incidents/"+id+"/roles", `{"commander":"ana","communications":"bo","actor":"ana"}`, 200, &inc)
	call("POST", "/v1/incidents/"+id+"/timeline", `{"kind":"deploy","actor":"ci","text":"rollback v42"}`, 200, nil)
	call("POST", "/v1/incidents/"+id+"/timeline", `{"kind":"resolve","text":"sneaky"}`, 400, nil)
	call("POST", "/v1/incidents/"+id+"/todos", `{"owner":"bo","text":"alert on p99"}`, 200, nil)
	clk.Advance(5 * time.Minute)
	call("POST", "/v1/incidents/"+id+"/mitigate", `{"actor":"ana","text":"rolled back"}`, 200, nil)
	call("POST", "/v1/incidents/"+id+"/resolve", `{"actor":"ana"}`, 200, &inc)
	call("POST", "/v1/incidents/"+id+"/ack", "", errs.HTTPStatus(codes.FailedPrecondition), nil)

	var tl timelineResp
	call("GET", "/v1/incidents/"+id+"/timeline", "", 200, &tl)
	if got, want := kinds(tl.Entries), "alert,notify,ack,note,deploy,mitigate,resolve"; got != want {
		t.Fatalf("timeline %s; want %s", got, want)
	}
	call("GET", "/v1/incidents/inc-missing/timeline", "", 404, nil)
	var pm postmortemResp
	call("GET", "/v1/incidents/"+id+"/postmortem", "", 200, &pm)
	if !strings.Contains(pm.Markdown, "## The three golden questions") || !strings.Contains(pm.Markdown, "rollback v42") || !strings.Contains(pm.Markdown, "alert on p99 — owner: bo") {
		t.Fatalf("postmortem:\n%s", pm.Markdown)
	}
	var m MTTx
	call("GET", "/v1/mttx?service=order&since=2026-01-01T00:00:00Z", "", 200, &m)
	if m.Know.N != 1 || m.Know.P50 != 2*time.Minute || m.Detect.P50 != time.Minute {
		t.Fatalf("mttx %+v", m)
	}
	call("GET", "/v1/mttx?since=yesterday", "", 400, nil)
	call("GET", "/v1/incidents?limit=-1", "", 400, nil)
	call("GET", "/v1/incidents?open=1", "", 200, &list)
	if len(list.Incidents) != 1 || list.Incidents[0].ID != opened.ID {
		t.Fatalf("open incidents %+v; want only the manual one", list.Incidents)
	}
}
