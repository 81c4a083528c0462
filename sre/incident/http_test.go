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

// caller returns a function that sends a request to ts, fails t unless the answer has
// wantStatus, decodes it into out (when not nil) and returns its body.
func caller(t *testing.T, ts *httptest.Server) func(method, path, body string, wantStatus int, out any) string {
	return func(method, path, body string, wantStatus int, out any) string {
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
}

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

	call := caller(t, ts)

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

func TestHTTPPublishPostmortem(t *testing.T) {
	clk := clock.NewFake(t0)
	store := openStore(t, backends(t)[0].open(t), clk)
	srv := kithttp.NewServer("sre", kithttp.Logger(log.Discard()))
	Register(srv, store, NewResponder(store, nil))
	ts := httptest.NewServer(srv)
	defer ts.Close()
	call := caller(t, ts)
	body := func(author, md string) string {
		b, _ := json.Marshal(map[string]string{"author": author, "markdown": md})
		return string(b)
	}

	var inc Incident
	call("POST", "/v1/incidents", `{"title":"checkout slow","service":"cart","severity":"SEV3","actor":"bo"}`, 201, &inc)
	pm := "/v1/incidents/" + inc.ID + "/postmortem"
	var draft postmortemResp
	call("GET", pm, "", 200, &draft)
	if draft.Published || draft.Author != "" || !draft.PublishedAt.IsZero() || !strings.Contains(draft.Markdown, "· draft") {
		t.Fatalf("GET before publishing = %+v; want the draft", draft)
	}
	if raw := call("GET", pm, "", 200, nil); strings.Contains(raw, "published_at") {
		t.Errorf("the draft's answer has a published_at: %s", raw)
	}
	text := draft.Markdown + "\nWhat we learned.\n"
	if raw := call("PUT", pm, body("ana", text), errs.HTTPStatus(codes.FailedPrecondition), nil); !strings.Contains(raw, "mitigate or resolve") {
		t.Fatalf("PUT on a triggered incident: %s; want it to say to mitigate or resolve first", raw)
	}
	call("POST", "/v1/incidents/"+inc.ID+"/mitigate", `{"actor":"ana"}`, 200, nil)
	raw := call("PUT", pm, body("ana", strings.Replace(text, "\n### How to recover faster?\n", "\n", 1)), 400, nil)
	if !strings.Contains(raw, "How to recover faster?") || strings.Contains(raw, "Did it alert?") {
		t.Fatalf("PUT without a heading: %s; want a 400 that names only the missing heading", raw)
	}
	call("PUT", pm, `{"markdown":"x"}`, 400, nil)
	call("PUT", "/v1/incidents/inc-missing/postmortem", body("ana", text), 404, nil)
	var tl timelineResp
	call("GET", "/v1/incidents/"+inc.ID+"/timeline", "", 200, &tl)
	if got := kinds(tl.Entries); strings.Contains(got, "postmortem") {
		t.Fatalf("refused PUTs wrote timeline entries: %s", got)
	}
	if call("GET", pm, "", 200, &draft); draft.Published {
		t.Fatalf("refused PUTs published %+v", draft)
	}

	clk.Advance(time.Hour)
	var put, got postmortemResp
	call("PUT", pm, body("ana", text), 200, &put)
	call("GET", pm, "", 200, &got)
	for name, r := range map[string]postmortemResp{"PUT": put, "GET": got} {
		if !r.Published || r.Author != "ana" || r.Markdown != text || !r.PublishedAt.Equal(t0.Add(time.Hour)) {
			t.Errorf("%s after publishing = published %v, author %q, at %v, %d bytes; want ana's text at %v",
				name, r.Published, r.Author, r.PublishedAt, len(r.Markdown), t0.Add(time.Hour))
		}
	}
	call("GET", "/v1/incidents/"+inc.ID, "", 200, &inc)
	if !inc.PostmortemAt.Equal(t0.Add(time.Hour)) {
		t.Errorf("incident postmortem_at = %v; want %v", inc.PostmortemAt, t0.Add(time.Hour))
	}
	call("GET", "/v1/incidents/"+inc.ID+"/timeline", "", 200, &tl)
	if got, want := kinds(tl.Entries), "alert,mitigate,postmortem"; got != want {
		t.Errorf("timeline %s; want %s", got, want)
	}
	call("GET", "/v1/incidents/inc-missing/postmortem", "", 404, nil)
}
