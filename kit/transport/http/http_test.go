package http

import (
	"context"
	"encoding/json"
	"errors"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/redline-dev/redline/kit/errs"
	"github.com/redline-dev/redline/kit/log"
	"github.com/redline-dev/redline/kit/meta"
	"github.com/redline-dev/redline/kit/middleware"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type echoReq struct {
	Name string `json:"name"`
	N    int    `json:"n"`
}

func (r *echoReq) Validate() error {
	if r.Name == "" {
		return errs.InvalidArgument("NAME_REQUIRED", "name is required")
	}
	return nil
}

type echoResp struct {
	Name      string `json:"name"`
	RequestID string `json:"request_id"`
	Lane      string `json:"lane"`
}

func (echoResp) Created() bool { return true }

func newTestServer(t *testing.T, opts ...ServerOption) (*Server, *httptest.Server, *int) {
	t.Helper()
	calls := new(int)
	s := NewServer("test", append([]ServerOption{Logger(log.Discard()), MaxBody(64)}, opts...)...)
	Route(s, "POST /echo", func(ctx context.Context, in *echoReq) (*echoResp, error) {
		*calls++
		md := meta.FromContext(ctx)
		return &echoResp{Name: in.Name, RequestID: md.RequestID, Lane: md.Lane}, nil
	})
	Route(s, "GET /slow", func(ctx context.Context, _ *struct{}) (*struct{}, error) {
		*calls++
		select {
		case <-time.After(time.Second):
			return &struct{}{}, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	})
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return s, ts, calls
}

func do(t *testing.T, req *http.Request) (int, errs.Body, []byte) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var b errs.Body
	_ = json.Unmarshal(raw, &b)
	return resp.StatusCode, b, raw
}

func TestBadBodiesAreRefusedWithReason(t *testing.T) {
	_, ts, calls := newTestServer(t)
	cases := []struct {
		name, body, reason string
	}{
		{"malformed", `{"name":`, errs.ReasonBadJSON},
		{"syntax", `{"name" "x"}`, errs.ReasonBadJSON},
		{"empty", ``, errs.ReasonBadJSON},
		{"unknown field", `{"name":"a","admin":true}`, errs.ReasonUnknownField},
		{"trailing data", `{"name":"a"} {"name":"b"}`, errs.ReasonBadJSON},
		{"wrong type", `{"name":"a","n":"x"}`, errs.ReasonInvalidArgument},
		{"oversized", `{"name":"` + strings.Repeat("a", 100) + `"}`, errs.ReasonBodyTooLarge},
		{"invalid", `{"name":""}`, "NAME_REQUIRED"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", ts.URL+"/echo", strings.NewReader(c.body))
			status, body, raw := do(t, req)
			if status != http.StatusBadRequest || body.Error.Reason != c.reason {
				t.Fatalf("POST %q = %d %s; want 400 with reason %s", c.body, status, raw, c.reason)
			}
			if body.Error.RequestID == "" {
				t.Fatalf("error body has no request id: %s", raw)
			}
		})
	}
	if *calls != 0 {
		t.Fatalf("handler ran %d times for bad input; want 0", *calls)
	}
}

func TestRequestIDAndEdgeLane(t *testing.T) {
	_, ts, _ := newTestServer(t, Edge())
	req, _ := http.NewRequest("POST", ts.URL+"/echo", strings.NewReader(`{"name":"a"}`))
	req.Header.Set(meta.HeaderBaggage, "lane=sneaky")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out echoResp
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("status = %d; want 201", resp.StatusCode)
	}
	if out.RequestID == "" || resp.Header.Get("X-Request-Id") != out.RequestID {
		t.Fatalf("request id: handler saw %q, header says %q", out.RequestID, resp.Header.Get("X-Request-Id"))
	}
	if out.Lane != "" {
		t.Fatalf("edge accepted unsigned lane %q", out.Lane)
	}
}

func TestDeadlineHeader(t *testing.T) {
	_, ts, calls := newTestServer(t)
	t.Run("budget cuts the handler", func(t *testing.T) {
		req, _ := http.NewRequest("GET", ts.URL+"/slow", nil)
		req.Header.Set(meta.HeaderTimeout, "50ms")
		start := time.Now()
		status, body, _ := do(t, req)
		if status != http.StatusGatewayTimeout || body.Error.Reason != errs.ReasonDeadline {
			t.Fatalf("status = %d %+v; want 504 %s", status, body, errs.ReasonDeadline)
		}
		if d := time.Since(start); d >= time.Second {
			t.Fatalf("took %v: deadline did not cancel the handler", d)
		}
	})
	t.Run("expired on arrival", func(t *testing.T) {
		before := *calls
		req, _ := http.NewRequest("GET", ts.URL+"/slow", nil)
		req.Header.Set(meta.HeaderTimeout, "0s")
		status, body, _ := do(t, req)
		if status != http.StatusGatewayTimeout || body.Error.Reason != errs.ReasonDeadlineConsumed || *calls != before {
			t.Fatalf("status = %d %+v, calls %d→%d; want refused 504", status, body, before, *calls)
		}
	})
	t.Run("bad header", func(t *testing.T) {
		req, _ := http.NewRequest("GET", ts.URL+"/slow", nil)
		req.Header.Set(meta.HeaderTimeout, "soon")
		if status, body, _ := do(t, req); status != http.StatusBadRequest || body.Error.Reason != "BAD_TIMEOUT" {
			t.Fatalf("status = %d %+v; want 400 BAD_TIMEOUT", status, body)
		}
	})
}

func TestClientRoundTrip(t *testing.T) {
	_, ts, _ := newTestServer(t)
	c := NewClient("test", ts.URL, ClientLogger(log.Discard()))
	var out echoResp
	ctx := meta.NewContext(context.Background(), meta.MD{RequestID: "rid-7"})
	if err := c.Do(ctx, "POST", "/echo", nil, echoReq{Name: "x"}, &out); err != nil {
		t.Fatal(err)
	}
	if out.RequestID != "rid-7" {
		t.Fatalf("request id = %q; want rid-7 carried by the client", out.RequestID)
	}
	err := c.Do(ctx, "POST", "/echo", nil, echoReq{}, &out)
	if e := errs.From(err); e.Reason != "NAME_REQUIRED" || e.HTTPStatus() != 400 {
		t.Fatalf("err = %v; want NAME_REQUIRED 400", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	err = c.Do(ctx, "GET", "/slow", nil, nil, nil)
	if !errors.Is(err, errs.New(errs.From(err).Code, errs.ReasonDeadline, "")) {
		t.Fatalf("err = %v; want %s", err, errs.ReasonDeadline)
	}
}

func FuzzDecodeJSON(f *testing.F) {
	f.Add([]byte(`{"name":"a","n":1}`))
	f.Add([]byte(`{"name":"a"}x`))
	f.Add([]byte(`[`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var v echoReq
		err := DecodeJSON(strings.NewReader(string(body)), 64, &v)
		if err == nil {
			return
		}
		e := errs.From(err)
		if e.HTTPStatus() != http.StatusBadRequest || e.Reason == "" {
			t.Fatalf("DecodeJSON(%q) = %v; want a 400 with a reason", body, err)
		}
	})
}

func TestPathShape(t *testing.T) {
	cases := map[string]string{
		"/v1/notes/123":         "/v1/notes/{id}",
		"/v1/users/9/notes?x=1": "/v1/users/{id}/notes",
		"/v1/me":                "/v1/me",
	}
	for in, want := range cases {
		if got := PathShape(in); got != want {
			t.Errorf("PathShape(%q) = %q; want %q", in, got, want)
		}
	}
}

func TestEdgeDropsSteeringHeaders(t *testing.T) {
	var seen http.Header
	s := NewServer("edge", Logger(log.Discard()), Edge())
	Route(s, "GET /h", func(ctx context.Context, _ *struct{}) (*struct{}, error) {
		seen = http.Header(middleware.FromContext(ctx).Header.(Header))
		return &struct{}{}, nil
	})
	req := httptest.NewRequest("GET", "/h", nil)
	for _, k := range []string{"Baggage", "X-Redline-Attempt", "Traceparent", "X-Client-Id"} {
		req.Header.Set(k, "1")
	}
	s.ServeHTTP(httptest.NewRecorder(), req)
	for _, k := range []string{"Baggage", "X-Redline-Attempt", "Traceparent", "X-Client-Id"} {
		if seen.Get(k) != "" {
			t.Errorf("edge passed %s through", k)
		}
	}
}

type rawReq struct{ body []byte }

func (r *rawReq) SetRaw(b []byte) { r.body = b }

func TestRawBodyIsPassedAsIs(t *testing.T) {
	s := NewServer("test", Logger(log.Discard()), MaxBody(16))
	Route(s, "POST /hook", func(_ context.Context, in *rawReq) (*echoResp, error) {
		return &echoResp{Name: string(in.body)}, nil
	})
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	// Not JSON, with spacing a JSON decode would lose: the handler sees the exact bytes.
	req, _ := http.NewRequest("POST", ts.URL+"/hook", strings.NewReader(`{ "a" :1}x`))
	if status, _, raw := do(t, req); status != http.StatusCreated || !strings.Contains(string(raw), `"name":"{ \"a\" :1}x"`) {
		t.Fatalf("POST raw = %d %s; want the exact body back", status, raw)
	}
	req, _ = http.NewRequest("POST", ts.URL+"/hook", strings.NewReader(strings.Repeat("a", 17)))
	if status, body, raw := do(t, req); status != http.StatusBadRequest || body.Error.Reason != errs.ReasonBodyTooLarge {
		t.Fatalf("POST oversized raw = %d %s; want 400 %s", status, raw, errs.ReasonBodyTooLarge)
	}
}

type queued struct{}

func (queued) Accepted() bool { return true }

func TestAcceptedAnswers202(t *testing.T) {
	s := NewServer("test", Logger(log.Discard()))
	Route(s, "POST /queue", func(context.Context, *struct{}) (*queued, error) { return &queued{}, nil })
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	req, _ := http.NewRequest("POST", ts.URL+"/queue", strings.NewReader(`{}`))
	if status, _, raw := do(t, req); status != http.StatusAccepted {
		t.Fatalf("POST /queue = %d %s; want 202", status, raw)
	}
}

func TestEdgeAdmitsOnlySignedLanes(t *testing.T) {
	errBad := errors.New("bad signature")
	verify := func(tok string) (string, error) {
		if tok == "signed-stress-1" {
			return "stress-1", nil
		}
		return "", errBad
	}
	reason := func(error) string { return "signature" }
	_, ts, _ := newTestServer(t, Edge(), EdgeLanes(verify, reason))
	_, plain, _ := newTestServer(t, Edge())
	lane := func(url string, headers ...string) string {
		t.Helper()
		req, _ := http.NewRequest("POST", url+"/echo", strings.NewReader(`{"name":"a"}`))
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		_, _, raw := do(t, req)
		var r echoResp
		_ = json.Unmarshal(raw, &r)
		return r.Lane
	}
	rejected := func(r string) float64 { return testutil.ToFloat64(lanesRejected.WithLabelValues("test", r)) }
	sig, noKey := rejected("signature"), rejected("no_key")
	if got := lane(ts.URL, "X-Redline-Lane", "signed-stress-1"); got != "stress-1" {
		t.Fatalf("signed lane = %q; want stress-1", got)
	}
	// A forged token, or a lane smuggled in as baggage, stays baseline.
	if got := lane(ts.URL, "X-Redline-Lane", "forged"); got != "" {
		t.Fatalf("forged lane token = %q; want the baseline", got)
	}
	if got := lane(ts.URL, "Baggage", "lane=stress-1"); got != "" {
		t.Fatalf("baggage lane at the edge = %q; want the baseline", got)
	}
	// A webhook carries the token in its URL.
	for tok, want := range map[string]string{"signed-stress-1": "stress-1", "forged": ""} {
		req, _ := http.NewRequest("POST", ts.URL+"/echo?redline_lane="+tok+"&keep=1", strings.NewReader(`{"name":"a"}`))
		_, _, raw := do(t, req)
		var r echoResp
		_ = json.Unmarshal(raw, &r)
		if r.Lane != want {
			t.Fatalf("query token %s: lane %q; want %q", tok, r.Lane, want)
		}
	}
	if got := lane(plain.URL, "X-Redline-Lane", "signed-stress-1"); got != "" {
		t.Fatalf("lane token at an edge with no key = %q; want the baseline", got)
	}
	if rejected("signature") != sig+2 || rejected("no_key") != noKey+1 {
		t.Fatalf("rejections: signature +%v, no_key +%v; want +2 and +1", rejected("signature")-sig, rejected("no_key")-noKey)
	}
}

// TestThirdPartyStripsLanes: a call leaving the system carries no baggage, trace context
// or X-Redline-* header, whatever the caller set, and a lane call is counted.
func TestThirdPartyStripsLanes(t *testing.T) {
	got := make(chan http.Header, 1)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got <- r.Header.Clone() }))
	defer ts.Close()
	hc := &http.Client{Transport: ThirdParty(nil)}
	req, _ := http.NewRequestWithContext(meta.WithLane(context.Background(), "stress-1"), "POST", ts.URL+"/charge", nil)
	req.Header.Set("Baggage", "lane=stress-1")
	req.Header.Set("Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	req.Header.Set("X-Redline-Lane", "token")
	req.Header.Set("X-Redline-Request-Id", "r1")
	req.Header.Set("Content-Type", "application/json")
	host := strings.TrimPrefix(ts.URL, "http://")
	before := testutil.ToFloat64(egressStripped.WithLabelValues(host))
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	h := <-got
	for _, k := range []string{"Baggage", "Traceparent", "X-Redline-Lane", "X-Redline-Request-Id"} {
		if h.Get(k) != "" {
			t.Errorf("the third party received %s: %q", k, h.Get(k))
		}
	}
	if h.Get("Content-Type") != "application/json" || req.Header.Get("Baggage") == "" {
		t.Errorf("other headers lost (%v), or the caller's request changed", h)
	}
	if got := testutil.ToFloat64(egressStripped.WithLabelValues(host)) - before; got != 1 {
		t.Errorf("stripped lane calls counted %v; want 1", got)
	}
}

// TestEdgeKeepsClientIDOnlyInALane: the edge strips a self-chosen x-client-id (it would
// dodge per-caller limits) unless the request is in a signed lane, where it names the load
// generator's virtual user.
func TestEdgeKeepsClientIDOnlyInALane(t *testing.T) {
	seen := make(chan string, 4)
	verify := func(tok string) (string, error) {
		if tok == "signed" {
			return "stress-1", nil
		}
		return "", errors.New("bad")
	}
	capture := func(next middleware.Handler) middleware.Handler {
		return func(ctx context.Context, req any) (any, error) {
			info := middleware.FromContext(ctx)
			seen <- info.Header.Get("x-client-id")
			return next(ctx, req)
		}
	}
	_, ts, _ := newTestServer(t, Edge(), EdgeLanes(verify, func(error) string { return "signature" }), Middleware(capture))
	for _, c := range []struct {
		token, want string
	}{{"signed", "vu-7"}, {"", ""}, {"forged", ""}} {
		req, _ := http.NewRequest("POST", ts.URL+"/echo", strings.NewReader(`{"name":"a"}`))
		req.Header.Set("X-Client-Id", "vu-7")
		if c.token != "" {
			req.Header.Set("X-Redline-Lane", c.token)
		}
		do(t, req)
		if got := <-seen; got != c.want {
			t.Errorf("token %q: the handler saw x-client-id %q; want %q", c.token, got, c.want)
		}
	}
}
