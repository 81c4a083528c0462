package http

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/redline-dev/redline/kit/errs"
	"github.com/redline-dev/redline/kit/fault"
	"github.com/redline-dev/redline/kit/fault/faulttest"
	"github.com/redline-dev/redline/kit/log"
	"github.com/redline-dev/redline/kit/metric"
	"github.com/redline-dev/redline/kit/middleware"
)

// failing fails the Points of op on side with err.
func failing(side, op string, err error) *faulttest.Recorder {
	return &faulttest.Recorder{Err: err, Match: func(_ int, p fault.Point) bool { return p.Side == side && p.Op == op }}
}

var (
	errInjected = errs.New(codes.Unavailable, errs.ReasonUnavailable, "injected fault")
	errAbort    = errs.New(codes.Unavailable, errs.ReasonUnavailable, "injected abort").WithCause(fault.ErrAbort)
)

// served counts the requests the server family of the metrics recorded for op with code.
func served(t *testing.T, op, code string) float64 {
	t.Helper()
	mfs, err := metric.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0.0
	for _, mf := range mfs {
		if mf.GetName() != "redline_http_server_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, lp := range m.GetLabel() {
				l[lp.GetName()] = lp.GetValue()
			}
			if l["service"] == "test" && l["route"] == op && l["code"] == code {
				n += m.GetCounter().GetValue()
			}
		}
	}
	return n
}

func post(t *testing.T, url string) *http.Request {
	t.Helper()
	req, err := http.NewRequest("POST", url+"/echo", strings.NewReader(`{"name":"a"}`))
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// TestServerFault: a fault injected at a server fails the request before the handler, with
// the unified error body, and the chain above (metrics) counts it; with nothing installed
// the server answers as usual.
func TestServerFault(t *testing.T) {
	_, ts, calls := newTestServer(t)
	if status, _, raw := do(t, post(t, ts.URL)); status != http.StatusCreated {
		t.Fatalf("no injector: POST /echo = %d %s; want 201", status, raw)
	}
	inj := failing(fault.Server, "POST /echo", errInjected)
	faulttest.Install(t, inj)
	before := served(t, "POST /echo", "503")
	status, body, raw := do(t, post(t, ts.URL))
	if status != http.StatusServiceUnavailable || body.Error.Reason != errs.ReasonUnavailable || body.Error.RequestID == "" {
		t.Fatalf("POST /echo = %d %s; want 503 %s with a request id", status, raw, errs.ReasonUnavailable)
	}
	if *calls != 1 {
		t.Fatalf("handler ran %d times; want 1 (the call before the injector)", *calls)
	}
	if got := served(t, "POST /echo", "503") - before; got != 1 {
		t.Fatalf("metrics counted %v requests with 503; want 1", got)
	}
	want := fault.Point{Kind: fault.HTTP, Side: fault.Server, Service: "test", Op: "POST /echo"}
	if got := inj.Seen(); len(got) != 1 || got[0] != want {
		t.Fatalf("points = %+v; want [%+v]", got, want)
	}
}

// TestServerAbortDropsTheConnection: an abort injected at a server closes the connection
// with no answer; the chain still counts the request as failed.
func TestServerAbortDropsTheConnection(t *testing.T) {
	_, ts, calls := newTestServer(t)
	faulttest.Install(t, failing(fault.Server, "POST /echo", errAbort))
	before := served(t, "POST /echo", "503")
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	defer hc.CloseIdleConnections()
	resp, err := hc.Do(post(t, ts.URL))
	if err == nil {
		resp.Body.Close()
		t.Fatalf("POST /echo answered %d; want the connection dropped", resp.StatusCode)
	}
	if *calls != 0 {
		t.Fatalf("handler ran %d times; want 0", *calls)
	}
	if got := served(t, "POST /echo", "503") - before; got != 1 {
		t.Fatalf("metrics counted %v requests with 503; want 1", got)
	}
}

// TestClientFault: a fault injected at a client fails the call without sending it, with the
// injected error; its Point names the called service as Target and, for a call made in a
// request, the service serving that request.
func TestClientFault(t *testing.T) {
	_, ts, calls := newTestServer(t)
	inj := failing(fault.Client, "POST /echo", errAbort)
	faulttest.Install(t, inj)
	c := NewClient("echo", ts.URL, ClientLogger(log.Discard()))
	ctx := middleware.NewContext(context.Background(), &middleware.Info{Kind: middleware.HTTP,
		Side: middleware.Server, Service: "bff", Operation: "GET /v1/home"})
	err := c.Do(ctx, "POST", "/echo", nil, echoReq{Name: "x"}, nil)
	if errs.Code(err) != codes.Unavailable || !errors.Is(err, fault.ErrAbort) {
		t.Fatalf("Do = %v; want the injected Unavailable abort", err)
	}
	if middleware.Aborted(err) {
		t.Fatal("a client's abort is marked as the server's: a handler passing it up would drop its own caller")
	}
	if *calls != 0 {
		t.Fatalf("server handled %d calls; want 0", *calls)
	}
	want := fault.Point{Kind: fault.HTTP, Side: fault.Client, Service: "bff", Target: "echo", Op: "POST /echo"}
	got := inj.Seen()
	if len(got) == 0 {
		t.Fatal("the injector was never asked")
	}
	for _, p := range got { // retries may ask again; every attempt is the same Point
		if p != want {
			t.Fatalf("point = %+v; want %+v", p, want)
		}
	}
}
