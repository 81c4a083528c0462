package degrade_test

import (
	"github.com/redline-dev/redline/ha/degrade"

	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/redline-dev/redline/ha/clock"
	"github.com/redline-dev/redline/kit/errs"
	"github.com/redline-dev/redline/kit/log"
	"github.com/redline-dev/redline/kit/meta"
	"github.com/redline-dev/redline/kit/middleware"
	kithttp "github.com/redline-dev/redline/kit/transport/http"
)

type page struct {
	Text string `json:"text"`
}

type idReq struct{ ID string }

func (r *idReq) Bind(hr *http.Request) error { r.ID = hr.PathValue("id"); return nil }

// bff is a kit HTTP server whose note route fails with fail when set.
type bff struct {
	srv   *kithttp.Server
	fail  error
	calls int
}

func newBFF(lg *degrade.LastGood) *bff {
	b := &bff{srv: kithttp.NewServer("bff", kithttp.Logger(log.Discard()), kithttp.Middleware(degrade.Server(lg)))}
	kithttp.Route(b.srv, "GET /v1/notes/{id}", func(ctx context.Context, in *idReq) (*page, error) {
		b.calls++
		if b.fail != nil {
			return nil, b.fail
		}
		return &page{Text: "note " + in.ID + " v" + string(rune('0'+b.calls))}, nil
	})
	kithttp.Route(b.srv, "POST /v1/notes", func(ctx context.Context, in *page) (*page, error) {
		b.calls++
		if b.fail != nil {
			return nil, b.fail
		}
		return in, nil
	})
	return b
}

type reply struct {
	status   int
	text     string
	degraded string
	age      string
	reason   string
}

func (b *bff) get(path, token string) reply {
	r := httptest.NewRequest(http.MethodGet, path, nil)
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	w := httptest.NewRecorder()
	b.srv.ServeHTTP(w, r)
	out := reply{status: w.Code, degraded: w.Header().Get(degrade.HeaderDegraded), age: w.Header().Get(degrade.HeaderDegradedAge)}
	if w.Code == http.StatusOK {
		var p page
		_ = json.Unmarshal(w.Body.Bytes(), &p)
		out.text = p.Text
	} else {
		var body errs.Body
		_ = json.Unmarshal(w.Body.Bytes(), &body)
		out.reason = body.Error.Reason
	}
	return out
}

var down = errs.New(codes.Unavailable, errs.ReasonUnavailable, "note service is down")

func TestLastGood(t *testing.T) {
	clk := clock.NewFake(time.Time{})
	lg := degrade.NewLastGood(degrade.Clock(clk), degrade.MaxAge(time.Minute))
	b := newBFF(lg)

	steps := []struct {
		name    string
		fail    error
		advance time.Duration
		path    string
		token   string
		want    reply
	}{
		{"live answer is remembered", nil, 0, "/v1/notes/1", "", reply{status: 200, text: "note 1 v1"}},
		{"failure serves the last good", down, 30 * time.Second, "/v1/notes/1", "", reply{status: 200, text: "note 1 v1", degraded: "last-good", age: "30"}},
		{"timeouts and overload degrade too", errs.Overloaded("SHED", "busy"), 0, "/v1/notes/1", "", reply{status: 200, text: "note 1 v1", degraded: "last-good", age: "30"}},
		{"other params are another key", down, 0, "/v1/notes/2", "", reply{status: 503, reason: errs.ReasonUnavailable}},
		{"query is part of the key", down, 0, "/v1/notes/1?x=1", "", reply{status: 503, reason: errs.ReasonUnavailable}},
		{"another caller never gets it", down, 0, "/v1/notes/1", "alice", reply{status: 503, reason: errs.ReasonUnavailable}},
		{"a newer live answer replaces it", nil, 0, "/v1/notes/1", "", reply{status: 200, text: "note 1 v7"}},
		{"too old is not served", down, time.Minute + time.Second, "/v1/notes/1", "", reply{status: 503, reason: errs.ReasonUnavailable}},
		{"per caller: alice live", nil, 0, "/v1/notes/1", "alice", reply{status: 200, text: "note 1 v9"}},
		{"per caller: alice degraded", down, 0, "/v1/notes/1", "alice", reply{status: 200, text: "note 1 v9", degraded: "last-good", age: "0"}},
		{"per caller: bob does not see alice's", down, 0, "/v1/notes/1", "bob", reply{status: 503, reason: errs.ReasonUnavailable}},
		{"a 404 forgets", errs.NotFound("NOTE_NOT_FOUND", "gone"), 0, "/v1/notes/1", "alice", reply{status: 404, reason: "NOTE_NOT_FOUND"}},
		{"forgotten stays forgotten", down, 0, "/v1/notes/1", "alice", reply{status: 503, reason: errs.ReasonUnavailable}},
	}
	for _, s := range steps {
		b.fail = s.fail
		clk.Advance(s.advance)
		if got := b.get(s.path, s.token); got != s.want {
			t.Fatalf("%s: GET %s = %+v; want %+v", s.name, s.path, got, s.want)
		}
	}
	st := lg.State().(degrade.LastGoodState)
	if st.ServedGood != 3 || st.Stored != 3 || st.Missing != 6 {
		t.Fatalf("State() = %+v; want 3 served last good, 3 stored, 6 missing", st)
	}
}

func TestLastGoodDefault(t *testing.T) {
	lg := degrade.NewLastGood(degrade.Clock(clock.NewFake(time.Time{})), degrade.Defaults(map[string]any{"GET /v1/notes/{id}": &page{Text: "default"}}))
	b := newBFF(lg)
	b.fail = down
	want := reply{status: 200, text: "default", degraded: "default"}
	if got := b.get("/v1/notes/9", ""); got != want {
		t.Fatalf("GET with nothing cached = %+v; want %+v", got, want)
	}
	b.fail = errs.InvalidArgument("BAD", "bad")
	want = reply{status: 400, reason: "BAD"}
	if got := b.get("/v1/notes/9", ""); got != want {
		t.Fatalf("GET failing with a non-degradable error = %+v; want %+v", got, want)
	}
}

func TestLastGoodOnlyCachesReads(t *testing.T) {
	lg := degrade.NewLastGood(degrade.Clock(clock.NewFake(time.Time{})), degrade.Defaults(map[string]any{"POST /v1/notes": &page{Text: "default"}}))
	b := newBFF(lg)
	post := func() int {
		r := httptest.NewRequest(http.MethodPost, "/v1/notes", strings.NewReader(`{"text":"x"}`))
		w := httptest.NewRecorder()
		b.srv.ServeHTTP(w, r)
		return w.Code
	}
	if code := post(); code != 200 {
		t.Fatalf("POST = %d; want 200", code)
	}
	b.fail = down
	if code := post(); code != 503 {
		t.Fatalf("failing POST = %d; want 503: a write is never answered from a cache", code)
	}
	if n := lg.State().(degrade.LastGoodState).Entries; n != 0 {
		t.Fatalf("entries after POSTs = %d; want 0", n)
	}
}

func TestLastGoodKeyIsolation(t *testing.T) {
	req := httptest.NewRequest(http.MethodGet, "/v1/feed?cursor=a", nil)
	info := &middleware.Info{Kind: middleware.HTTP, Side: middleware.Server, Operation: "GET /v1/feed"}
	base := degrade.LastGoodKey(context.Background(), info, req)
	cases := []struct {
		name string
		ctx  context.Context
		req  *http.Request
		info *middleware.Info
		same bool
	}{
		{"same request", context.Background(), req, info, true},
		{"another lane", meta.WithLane(context.Background(), "stress"), req, info, false},
		{"another query", context.Background(), httptest.NewRequest(http.MethodGet, "/v1/feed?cursor=b", nil), info, false},
	}
	for _, c := range cases {
		if got := degrade.LastGoodKey(c.ctx, c.info, c.req); (got == base) != c.same {
			t.Errorf("%s: key %q vs %q; want same = %v", c.name, got, base, c.same)
		}
	}
	grpcInfo := &middleware.Info{Kind: middleware.GRPC, Side: middleware.Server, Operation: "/x"}
	if k := degrade.LastGoodKey(context.Background(), grpcInfo, "msg"); k != "" {
		t.Errorf("gRPC key = %q; want none", k)
	}
}

func TestLastGoodBounded(t *testing.T) {
	clk := clock.NewFake(time.Time{})
	lg := degrade.NewLastGood(degrade.Clock(clk), degrade.MaxEntries(2))
	b := newBFF(lg)
	for _, id := range []string{"1", "2", "3"} {
		b.get("/v1/notes/"+id, "")
	}
	b.fail = down
	cases := []struct {
		path     string
		degraded string
	}{
		{"/v1/notes/1", ""}, // least recently used: dropped
		{"/v1/notes/2", "last-good"},
		{"/v1/notes/3", "last-good"},
	}
	for _, c := range cases {
		if got := b.get(c.path, ""); got.degraded != c.degraded {
			t.Errorf("GET %s degraded = %q; want %q", c.path, got.degraded, c.degraded)
		}
	}
	if n := lg.State().(degrade.LastGoodState).Entries; n != 2 {
		t.Fatalf("entries = %d; want 2", n)
	}
}

func BenchmarkLastGood(b *testing.B) {
	lg := degrade.NewLastGood()
	h := degrade.Server(lg)(func(context.Context, any) (any, error) { return &page{}, nil })
	req := httptest.NewRequest(http.MethodGet, "/v1/notes/123?x=1", nil)
	ctx := middleware.NewContext(context.Background(), &middleware.Info{Kind: middleware.HTTP, Side: middleware.Server,
		Operation: "GET /v1/notes/{id}", Method: http.MethodGet})
	b.ReportAllocs()
	for b.Loop() {
		_, _ = h(ctx, req)
	}
}
