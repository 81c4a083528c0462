package procs

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	chaosfaults "github.com/redline-dev/redline/chaos/faults"
	"github.com/redline-dev/redline/kit/errs"
	"github.com/redline-dev/redline/kit/log"
	kithttp "github.com/redline-dev/redline/kit/transport/http"
)

const fanoutToken = "s3cret"

// fakeChild is a process's admin endpoint: a real chaos/faults registry's API behind the
// admin token, counting the calls that reach it.
type fakeChild struct {
	name     string
	reg      *chaosfaults.Registry
	srv      *httptest.Server
	calls    atomic.Int64
	failPost atomic.Bool // POST /chaos/faults answers 500
}

func newFakeChild(t *testing.T, name string, opts ...chaosfaults.Option) *fakeChild {
	t.Helper()
	c := &fakeChild{name: name, reg: chaosfaults.New(append([]chaosfaults.Option{chaosfaults.WithLogger(log.Discard())}, opts...)...)}
	mux := http.NewServeMux()
	c.reg.Register(mux)
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.calls.Add(1)
		if r.Header.Get("Authorization") != "Bearer "+fanoutToken {
			kithttp.WriteError(w, errs.Unauthenticated(errs.ReasonUnauthenticated, "admin endpoints need Authorization: Bearer <admin token>"))
			return
		}
		if r.Method == http.MethodPost && c.failPost.Load() {
			kithttp.WriteError(w, errs.Internal(fmt.Errorf("disk on fire")))
			return
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(c.srv.Close)
	return c
}

// down closes the child's endpoint: calls to it are refused.
func (c *fakeChild) down() { c.srv.Close() }

func (c *fakeChild) info(state State) Info {
	return Info{Name: c.name, State: state, Admin: strings.TrimPrefix(c.srv.URL, "http://")}
}

func (c *fakeChild) add(t *testing.T, s chaosfaults.Spec) {
	t.Helper()
	if _, err := c.reg.Add(s); err != nil {
		t.Fatalf("%s: Add(%+v) = %v", c.name, s, err)
	}
}

func (c *fakeChild) ids() []string {
	var out []string
	for _, f := range c.reg.List() {
		out = append(out, f.ID)
	}
	return out
}

// fanout is a FaultFanout over children, all running unless states says otherwise.
type fanout struct {
	f        *FaultFanout
	children []*fakeChild
	states   map[string]State
}

func newFanout(t *testing.T, token string, children ...*fakeChild) *fanout {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	fo := &fanout{children: children, states: map[string]State{}}
	list := func() []Info {
		out := []Info{{Name: "no-admin", State: Running}} // serves no fault API: never called
		for _, c := range children {
			st := fo.states[c.name]
			if st == "" {
				st = Running
			}
			out = append(out, c.info(st))
		}
		return out
	}
	fo.f = NewFaultFanout(list, token, &http.Client{Transport: tr, Timeout: DefaultFaultTimeout})
	return fo
}

func (fo *fanout) serve(t *testing.T, method, path, body string) (int, []byte) {
	t.Helper()
	mux := http.NewServeMux()
	fo.f.Register(mux)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(method, path, strings.NewReader(body)))
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: Content-Type %q; want application/json", method, path, ct)
	}
	return rec.Code, rec.Body.Bytes()
}

// calls counts the calls that reached the children.
func (fo *fanout) calls() int64 {
	var n int64
	for _, c := range fo.children {
		n += c.calls.Load()
	}
	return n
}

func threeChildren(t *testing.T) (a, b, c *fakeChild) {
	return newFakeChild(t, "a"), newFakeChild(t, "b"), newFakeChild(t, "c")
}

func TestFaultFanoutAddToService(t *testing.T) {
	a, b, c := threeChildren(t)
	fo := newFanout(t, fanoutToken, a, b, c)
	code, body := fo.serve(t, "POST", "/chaos/faults", `{"type": "delay", "service": "b", "delay": "300ms", "ttl": "10m", "reason": "drill"}`)
	if code != http.StatusCreated {
		t.Fatalf("POST = %d %s; want 201", code, body)
	}
	added := decode[AddedFault](t, body)
	if fmt.Sprint(added.Procs) != "[b]" || added.ID == "" || added.Service != "b" || added.Delay != "300ms" || added.Source != chaosfaults.SourceAPI {
		t.Errorf("POST answered %s; want b's fault and procs [b]", body)
	}
	if got := b.ids(); fmt.Sprint(got) != "["+added.ID+"]" {
		t.Errorf("b's faults = %v; want [%s]", got, added.ID)
	}
	if len(a.ids())+len(c.ids()) != 0 {
		t.Errorf("a has %v, c has %v; want nothing: the fault is b's", a.ids(), c.ids())
	}
	if n := a.calls.Load() + c.calls.Load(); n != 0 {
		t.Errorf("a and c got %d calls; want 0", n)
	}
}

func TestFaultFanoutAddToAll(t *testing.T) {
	a, b, c := threeChildren(t)
	fo := newFanout(t, fanoutToken, a, b, c)
	code, body := fo.serve(t, "POST", "/chaos/faults", `{"type": "error", "kind": "grpc", "code": "Unavailable", "percent": 10}`)
	if code != http.StatusCreated {
		t.Fatalf("POST = %d %s; want 201", code, body)
	}
	added := decode[AddedFault](t, body)
	if fmt.Sprint(added.Procs) != "[a b c]" || len(added.ID) != 8 || added.Percent != 10 {
		t.Errorf("POST answered %s; want an id of 8 hex digits and procs [a b c]", body)
	}
	for _, ch := range []*fakeChild{a, b, c} {
		if got := ch.ids(); fmt.Sprint(got) != "["+added.ID+"]" {
			t.Errorf("%s's faults = %v; want [%s], the same id everywhere", ch.name, got, added.ID)
		}
	}

	// A spec's own id is kept.
	code, body = fo.serve(t, "POST", "/chaos/faults", `{"id": "drill-7", "type": "abort", "kind": "http"}`)
	if added := decode[AddedFault](t, body); code != http.StatusCreated || added.ID != "drill-7" {
		t.Errorf("POST with an id = %d %s; want 201 with id drill-7", code, body)
	}
	if got := b.ids(); len(got) != 2 || got[1] != "drill-7" {
		t.Errorf("b's faults = %v; want drill-7 second", got)
	}
}

// TestFaultFanoutAddAllOrNothing: when one process refuses or fails the fault, no process
// keeps it, and the answer is that process's error.
func TestFaultFanoutAddAllOrNothing(t *testing.T) {
	for _, tt := range []struct {
		name   string
		setup  func(t *testing.T, b *fakeChild)
		body   string
		status int
		reason string
		field  string
		keeps  string // what b keeps afterwards
	}{
		{"b refuses the ttl", nil, `{"type": "abort", "ttl": "10m"}`, 400, chaosfaults.ReasonBadFault, "ttl", "[]"},
		{"b has the id", func(t *testing.T, b *fakeChild) {
			b.add(t, chaosfaults.Spec{ID: "drill-1", Type: chaosfaults.TypeAbort})
		},
			`{"id": "drill-1", "type": "delay", "delay": "1s"}`, 409, chaosfaults.ReasonFaultExists, "id", "[drill-1]"},
		{"b fails", func(_ *testing.T, b *fakeChild) { b.failPost.Store(true) }, `{"type": "abort"}`, 500, errs.ReasonInternal, "", "[]"},
		{"b is down", func(_ *testing.T, b *fakeChild) { b.down() }, `{"type": "abort"}`, 503, ReasonFaultsFailed, "", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a, c := newFakeChild(t, "a"), newFakeChild(t, "c")
			b := newFakeChild(t, "b", chaosfaults.WithMaxTTL(time.Minute))
			if tt.setup != nil {
				tt.setup(t, b)
			}
			fo := newFanout(t, fanoutToken, a, b, c)
			code, body := fo.serve(t, "POST", "/chaos/faults", tt.body)
			e := decode[errs.Body](t, body).Error
			if code != tt.status || e.Reason != tt.reason || e.Metadata["field"] != tt.field || e.Metadata["procs"] != "b" {
				t.Fatalf("POST = %d %s; want %d %s naming field %q and process b", code, body, tt.status, tt.reason, tt.field)
			}
			if !strings.HasPrefix(e.Message, "b: ") || !strings.Contains(e.Message, "removed again from a, c") {
				t.Errorf("message %q; want it to name b and that a and c gave the fault back", e.Message)
			}
			if len(a.ids())+len(c.ids()) != 0 {
				t.Errorf("a has %v, c has %v; want nothing", a.ids(), c.ids())
			}
			if tt.keeps != "" && fmt.Sprint(b.ids()) != tt.keeps {
				t.Errorf("b has %v; want %s", b.ids(), tt.keeps)
			}
		})
	}
}

// TestFaultFanoutAddRefusedUpFront: a spec the supervisor can judge itself is refused
// before any process is called.
func TestFaultFanoutAddRefusedUpFront(t *testing.T) {
	for _, tt := range []struct {
		name, token, body string
		restarting        string
		status            int
		reason, field     string
		msg               string
	}{
		{"bad percent", fanoutToken, `{"type": "abort", "percent": 150}`, "", 400, chaosfaults.ReasonBadFault, "percent", "percent"},
		{"bad duration", fanoutToken, `{"type": "delay", "delay": "abc"}`, "", 400, chaosfaults.ReasonBadFault, "delay", "delay"},
		{"unknown field", fanoutToken, `{"type": "abort", "precent": 5}`, "", 400, errs.ReasonUnknownField, "precent", "precent"},
		{"malformed", fanoutToken, `{"type": `, "", 400, errs.ReasonBadJSON, "", ""},
		{"too large", fanoutToken, `{"reason": "` + strings.Repeat("x", chaosfaults.MaxBody) + `"}`, "", 400, errs.ReasonBodyTooLarge, "", ""},
		{"no such process", fanoutToken, `{"type": "abort", "service": "zzz"}`, "", 400, chaosfaults.ReasonBadFault, "service", "the processes are a, b, c"},
		{"target restarting", fanoutToken, `{"type": "abort", "service": "b"}`, "b", 412, ReasonState, "", "b is restarting"},
		{"one of all restarting", fanoutToken, `{"type": "abort"}`, "c", 412, ReasonState, "", "c is restarting"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a, b, c := threeChildren(t)
			fo := newFanout(t, tt.token, a, b, c)
			if tt.restarting != "" {
				fo.states[tt.restarting] = Restarting
			}
			code, body := fo.serve(t, "POST", "/chaos/faults", tt.body)
			e := decode[errs.Body](t, body).Error
			if code != tt.status || e.Reason != tt.reason || e.Metadata["field"] != tt.field || !strings.Contains(e.Message, tt.msg) {
				t.Errorf("POST = %d %s; want %d %s naming field %q, saying %q", code, body, tt.status, tt.reason, tt.field, tt.msg)
			}
			if n := fo.calls(); n != 0 {
				t.Errorf("the processes got %d calls; want 0", n)
			}
		})
	}
}

// TestFaultFanoutTokenRefused: a process that refuses the supervisor's token is the
// supervisor's failure (503), not the caller's 401.
func TestFaultFanoutTokenRefused(t *testing.T) {
	a, b, c := threeChildren(t)
	fo := newFanout(t, "wrong", a, b, c)
	code, body := fo.serve(t, "POST", "/chaos/faults", `{"type": "abort", "service": "a"}`)
	e := decode[errs.Body](t, body).Error
	if code != http.StatusServiceUnavailable || e.Reason != ReasonFaultsFailed || !strings.Contains(e.Message, "a: refused the supervisor's admin token") {
		t.Errorf("POST = %d %s; want 503 %s saying a refused the token", code, body, ReasonFaultsFailed)
	}
}

func TestFaultFanoutRemove(t *testing.T) {
	a, b, c := threeChildren(t)
	a.add(t, chaosfaults.Spec{ID: "x", Type: chaosfaults.TypeAbort})
	c.add(t, chaosfaults.Spec{ID: "x", Type: chaosfaults.TypeAbort})
	b.add(t, chaosfaults.Spec{ID: "y", Type: chaosfaults.TypeAbort})
	fo := newFanout(t, fanoutToken, a, b, c)

	code, body := fo.serve(t, "DELETE", "/chaos/faults/x", "")
	if code != http.StatusOK || string(body) != "{\"removed\":2}\n" {
		t.Errorf("DELETE x = %d %s; want 200 removed 2", code, body)
	}
	if len(a.ids())+len(c.ids()) != 0 || fmt.Sprint(b.ids()) != "[y]" {
		t.Errorf("after DELETE x: a %v, b %v, c %v; want only b's y", a.ids(), b.ids(), c.ids())
	}
	code, body = fo.serve(t, "DELETE", "/chaos/faults/x", "")
	if e := decode[errs.Body](t, body).Error; code != http.StatusNotFound || e.Reason != chaosfaults.ReasonFaultNotFound {
		t.Errorf("DELETE x again = %d %s; want 404 %s", code, body, chaosfaults.ReasonFaultNotFound)
	}

	// A process that does not answer: the fault removed elsewhere is still a 200, which
	// names it; removed nowhere, it is not a 404 but a 503.
	c.down()
	code, body = fo.serve(t, "DELETE", "/chaos/faults/y", "")
	r := decode[Removed](t, body)
	if code != http.StatusOK || r.Removed != 1 || len(r.Unreachable) != 1 || r.Unreachable[0].Proc != "c" {
		t.Errorf("DELETE y with c down = %d %s; want 200 removed 1, c unreachable", code, body)
	}
	code, body = fo.serve(t, "DELETE", "/chaos/faults/y", "")
	if e := decode[errs.Body](t, body).Error; code != http.StatusServiceUnavailable || e.Reason != ReasonFaultsFailed || e.Metadata["procs"] != "c" {
		t.Errorf("DELETE y again with c down = %d %s; want 503 naming c", code, body)
	}
}

func TestFaultFanoutClear(t *testing.T) {
	t.Run("all answer", func(t *testing.T) {
		a, b, c := threeChildren(t)
		a.add(t, chaosfaults.Spec{Type: chaosfaults.TypeAbort})
		a.add(t, chaosfaults.Spec{Type: chaosfaults.TypeAbort})
		b.add(t, chaosfaults.Spec{Type: chaosfaults.TypeAbort})
		fo := newFanout(t, fanoutToken, a, b, c)
		code, body := fo.serve(t, "DELETE", "/chaos/faults", "")
		if code != http.StatusOK || string(body) != "{\"removed\":3}\n" {
			t.Errorf("DELETE = %d %s; want 200 removed 3", code, body)
		}
		if len(a.ids())+len(b.ids()) != 0 {
			t.Errorf("after DELETE: a %v, b %v; want none", a.ids(), b.ids())
		}
	})
	t.Run("one down", func(t *testing.T) {
		a, b, c := threeChildren(t)
		a.add(t, chaosfaults.Spec{Type: chaosfaults.TypeAbort})
		a.add(t, chaosfaults.Spec{Type: chaosfaults.TypeAbort})
		c.add(t, chaosfaults.Spec{Type: chaosfaults.TypeAbort})
		b.down()
		fo := newFanout(t, fanoutToken, a, b, c)
		code, body := fo.serve(t, "DELETE", "/chaos/faults", "")
		e := decode[errs.Body](t, body).Error
		if code != http.StatusServiceUnavailable || e.Reason != ReasonFaultsFailed || e.Metadata["procs"] != "b" || e.Metadata["removed"] != "3" ||
			!strings.Contains(e.Message, "NOT cleared in b (") || !strings.Contains(e.Message, "3 removed in the other processes") {
			t.Errorf("DELETE with b down = %d %s; want 503 naming b, 3 removed elsewhere", code, body)
		}
		if len(a.ids())+len(c.ids()) != 0 {
			t.Errorf("after DELETE: a %v, c %v; want them cleared all the same", a.ids(), c.ids())
		}
	})
	t.Run("paused and restarting", func(t *testing.T) {
		// A paused process keeps its faults: a failure, without a call that could only
		// time out. A restarting one has none: skipped.
		a, b, c := threeChildren(t)
		a.add(t, chaosfaults.Spec{Type: chaosfaults.TypeAbort})
		b.add(t, chaosfaults.Spec{Type: chaosfaults.TypeAbort})
		fo := newFanout(t, fanoutToken, a, b, c)
		fo.states["b"] = Paused
		fo.states["c"] = Restarting
		code, body := fo.serve(t, "DELETE", "/chaos/faults", "")
		e := decode[errs.Body](t, body).Error
		if code != http.StatusServiceUnavailable || e.Metadata["procs"] != "b" || !strings.Contains(e.Message, "b (paused: it cannot answer") {
			t.Errorf("DELETE with b paused = %d %s; want 503 naming b as paused", code, body)
		}
		if len(a.ids()) != 0 || len(b.ids()) != 1 || b.calls.Load()+c.calls.Load() != 0 {
			t.Errorf("a %v, b %v, calls to b and c %d; want a cleared, b untouched, no calls to b or c",
				a.ids(), b.ids(), b.calls.Load()+c.calls.Load())
		}
		fo.states["b"] = Running
		if code, body := fo.serve(t, "DELETE", "/chaos/faults", ""); code != http.StatusOK || string(body) != "{\"removed\":1}\n" {
			t.Errorf("DELETE with b running again = %d %s; want 200 removed 1", code, body)
		}
	})
}

func TestFaultFanoutList(t *testing.T) {
	a, b, c := threeChildren(t)
	a.add(t, chaosfaults.Spec{ID: "a1", Type: chaosfaults.TypeAbort})
	a.add(t, chaosfaults.Spec{ID: "a2", Type: chaosfaults.TypeDelay, Delay: "1s"})
	c.add(t, chaosfaults.Spec{ID: "c1", Type: chaosfaults.TypeAbort, Service: "c"})
	b.down()
	fo := newFanout(t, fanoutToken, a, b, c)
	code, body := fo.serve(t, "GET", "/chaos/faults", "")
	l := decode[FaultList](t, body)
	var got []string
	for _, f := range l.Faults {
		got = append(got, f.Proc+"/"+f.ID)
	}
	if code != http.StatusOK || fmt.Sprint(got) != "[a/a1 a/a2 c/c1]" || l.Faults[1].Delay != "1s" {
		t.Errorf("GET = %d %s; want a1, a2 of a, then c1 of c", code, body)
	}
	if len(l.Unreachable) != 1 || l.Unreachable[0].Proc != "b" || !strings.Contains(l.Unreachable[0].Error, "connection refused") {
		t.Errorf("GET unreachable = %+v; want b, connection refused", l.Unreachable)
	}
	if !strings.Contains(string(body), `"proc":"a"`) {
		t.Errorf("GET = %s; want each fault with its \"proc\"", body)
	}

	// No fault and every process answering: two empty lists, not nulls.
	fo = newFanout(t, fanoutToken, newFakeChild(t, "d"))
	if code, body := fo.serve(t, "GET", "/chaos/faults", ""); code != http.StatusOK || string(body) != "{\"faults\":[],\"unreachable\":[]}\n" {
		t.Errorf("GET empty = %d %s; want two empty lists", code, body)
	}
}
