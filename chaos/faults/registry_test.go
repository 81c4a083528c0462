package faults

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc/codes"

	"github.com/redline-dev/redline/kit/errs"
	"github.com/redline-dev/redline/kit/fault"
	"github.com/redline-dev/redline/kit/log"
	"github.com/redline-dev/redline/kit/meta"
)

var (
	httpServer = fault.Point{Kind: fault.HTTP, Side: fault.Server, Service: "note", Op: "GET /v1/notes/{id}"}
	grpcClient = fault.Point{Kind: fault.GRPC, Side: fault.Client, Service: "feed", Target: "note", Op: "/note.v1.Note/GetNote"}
	sqlClient  = fault.Point{Kind: fault.SQL, Side: fault.Client, Service: "note", Op: "query"}
	queuePub   = fault.Point{Kind: fault.Queue, Side: fault.Client, Service: "note", Op: "note.created"}
	grpcNote2  = fault.Point{Kind: fault.GRPC, Side: fault.Server, Service: "note", Instance: "note-2", Op: "/note.v1.Note/GetNote"}
)

func TestScope(t *testing.T) {
	red := meta.WithLane(context.Background(), "red")
	blue := meta.WithLane(context.Background(), "blue")
	// A baseline request carries metadata, just no lane.
	base := meta.NewContext(context.Background(), meta.MD{RequestID: "r1"})
	tests := []struct {
		name string
		spec Spec
		ctx  context.Context
		p    fault.Point
		hit  bool
	}{
		{"any", Spec{}, base, httpServer, true},
		{"any data", Spec{}, base, sqlClient, true},
		{"service", Spec{Service: "note"}, base, httpServer, true},
		{"other service", Spec{Service: "feed"}, base, httpServer, false},
		{"kind", Spec{Kind: "http"}, base, httpServer, true},
		{"other kind", Spec{Kind: "grpc"}, base, httpServer, false},
		{"side", Spec{Side: "server"}, base, httpServer, true},
		{"other side", Spec{Side: "client"}, base, httpServer, false},
		{"data is client side", Spec{Side: "client"}, base, sqlClient, true},
		{"target", Spec{Target: "note"}, base, grpcClient, true},
		{"other target", Spec{Target: "user"}, base, grpcClient, false},
		{"target on server", Spec{Target: "note"}, base, httpServer, false},
		{"op exact", Spec{Op: "GET /v1/notes/{id}"}, base, httpServer, true},
		{"op exact is not prefix", Spec{Op: "GET /v1/notes"}, base, httpServer, false},
		{"op prefix", Spec{Op: "GET /v1/*"}, base, httpServer, true},
		{"op other prefix", Spec{Op: "POST /v1/*"}, base, httpServer, false},
		{"op star", Spec{Op: "*"}, base, sqlClient, true},
		{"queue subject prefix", Spec{Kind: "queue", Op: "note.*"}, base, queuePub, true},
		{"lane any, baseline", Spec{}, base, httpServer, true},
		{"lane any, lane", Spec{}, red, httpServer, true},
		{"baseline, baseline", Spec{Lane: "baseline"}, base, httpServer, true},
		{"baseline, no metadata", Spec{Lane: "baseline"}, context.Background(), httpServer, true},
		{"baseline, lane", Spec{Lane: "baseline"}, red, httpServer, false},
		{"lane, same lane", Spec{Lane: "red"}, red, httpServer, true},
		{"lane, other lane", Spec{Lane: "red"}, blue, httpServer, false},
		{"lane, baseline", Spec{Lane: "red"}, base, httpServer, false},
		{"all fields", Spec{Service: "feed", Kind: "grpc", Side: "client", Target: "note", Op: "/note.v1.Note/*", Lane: "red"}, red, grpcClient, true},
		{"instance", Spec{Instance: "note-2"}, base, grpcNote2, true},
		{"other instance", Spec{Instance: "note-3"}, base, grpcNote2, false},
		{"instance, server without one", Spec{Instance: "note-2"}, base, httpServer, false},
		{"instance, client", Spec{Instance: "note"}, base, grpcClient, false},
		{"no instance, server with one", Spec{Service: "note", Side: "server"}, base, grpcNote2, true},
		{"all fields but lane", Spec{Service: "feed", Kind: "grpc", Side: "client", Target: "note", Op: "/note.v1.Note/*", Lane: "red"}, base, grpcClient, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			s := tt.spec
			s.Type, s.Code = TypeError, "Internal"
			e.add(t, s)
			err := e.reg.Inject(tt.ctx, tt.p)
			if hit := err != nil; hit != tt.hit {
				t.Errorf("Inject(%+v) = %v; want hit %v", tt.p, err, tt.hit)
			}
		})
	}
}

func TestPercent(t *testing.T) {
	for _, tt := range []struct {
		percent float64
		want    int
	}{
		{0, 1000}, // omitted means 100
		{100, 1000},
		// The count the seeded draw gives: about half, exactly this many.
		{50, 512},
		{1, 8},
	} {
		t.Run(fmt.Sprint(tt.percent), func(t *testing.T) {
			e := newEnv(t)
			f := e.add(t, Spec{Type: TypeError, Code: "Unavailable", Percent: tt.percent})
			if want := cmp.Or(tt.percent, 100); f.Percent != want {
				t.Errorf("Fault.Percent = %v; want %v", f.Percent, want)
			}
			hits := 0
			for range 1000 {
				if e.reg.Inject(context.Background(), httpServer) != nil {
					hits++
				}
			}
			if hits != tt.want {
				t.Errorf("percent %v: %d hits of 1000; want %d", tt.percent, hits, tt.want)
			}
			if got := e.reg.List()[0].Injected; got != int64(hits) {
				t.Errorf("Injected = %d; want %d", got, hits)
			}
		})
	}
}

// TestPercentFallsThrough checks that a fault that loses its draw lets the next one act.
func TestPercentFallsThrough(t *testing.T) {
	e := newEnv(t, WithRand(func() float64 { return 0.7 }))
	e.add(t, Spec{Type: TypeError, Code: "Internal", Percent: 50})
	e.add(t, Spec{Type: TypeError, Code: "Unavailable"})
	if got := errs.Code(e.reg.Inject(context.Background(), httpServer)); got != codes.Unavailable {
		t.Errorf("Inject = %v; want the second fault's Unavailable", got)
	}
}

func TestLaneFaultSparesBaseline(t *testing.T) {
	e := newEnv(t)
	e.add(t, Spec{Type: TypeAbort, Lane: "stress"})
	for _, ctx := range []context.Context{
		context.Background(),
		meta.NewContext(context.Background(), meta.MD{RequestID: "abc", Attempt: 1}),
		meta.WithLane(meta.WithLane(context.Background(), "stress"), ""),
	} {
		for _, p := range []fault.Point{httpServer, grpcClient, sqlClient, queuePub} {
			if err := e.reg.Inject(ctx, p); err != nil {
				t.Fatalf("Inject(baseline, %+v) = %v; want nil", p, err)
			}
		}
	}
	if err := e.reg.Inject(meta.WithLane(context.Background(), "stress"), httpServer); err == nil {
		t.Fatal("Inject(stress lane) = nil; want the abort")
	}
}

func TestActionError(t *testing.T) {
	for _, tt := range []struct {
		code ErrorCode
		want codes.Code
	}{
		{"503", codes.Unavailable},
		{"500", codes.Internal},
		{"504", codes.DeadlineExceeded},
		{"429", codes.ResourceExhausted},
		{"Unavailable", codes.Unavailable},
		{"Internal", codes.Internal},
	} {
		t.Run(string(tt.code), func(t *testing.T) {
			e := newEnv(t)
			e.add(t, Spec{ID: "boom", Type: TypeError, Code: tt.code})
			err := e.reg.Inject(context.Background(), httpServer)
			var ee *errs.Error
			if !errors.As(err, &ee) {
				t.Fatalf("Inject = %v; want an *errs.Error", err)
			}
			if ee.Code != tt.want || ee.Reason != ReasonFaultInjected {
				t.Errorf("Inject = %v %s; want %v %s", ee.Code, ee.Reason, tt.want, ReasonFaultInjected)
			}
			if !strings.Contains(ee.Message, "boom") || ee.Metadata[MetadataFault] != "boom" {
				t.Errorf("error %q, metadata %v: want the fault id boom", ee.Message, ee.Metadata)
			}
		})
	}
	e := newEnv(t)
	e.add(t, Spec{ID: "msg", Type: TypeError, Code: "Unavailable", Message: "note is down"})
	if got := errs.From(e.reg.Inject(context.Background(), httpServer)).Message; got != "note is down (fault msg)" {
		t.Errorf("message = %q; want %q", got, "note is down (fault msg)")
	}
}

func TestActionAbort(t *testing.T) {
	e := newEnv(t)
	e.add(t, Spec{Type: TypeAbort})
	err := e.reg.Inject(context.Background(), httpServer)
	if !errors.Is(err, fault.ErrAbort) {
		t.Errorf("errors.Is(%v, fault.ErrAbort) = false", err)
	}
	var ee *errs.Error
	if !errors.As(err, &ee) || ee.Code != codes.Unavailable || ee.Reason != ReasonFaultInjected {
		t.Errorf("abort = %v; want an *errs.Error Unavailable %s", err, ReasonFaultInjected)
	}
	if _, ok := err.(*errs.Error); !ok {
		t.Errorf("abort is a %T; want *errs.Error itself", err)
	}
}

func TestActionDelay(t *testing.T) {
	e := newEnv(t, WithRand(func() float64 { return 0.5 }))
	e.add(t, Spec{Type: TypeDelay, Delay: "250ms", Jitter: "100ms", Service: "note"})
	e.add(t, Spec{Type: TypeDelay, Delay: "1s", Service: "feed"})
	if err := e.reg.Inject(context.Background(), httpServer); err != nil {
		t.Fatalf("Inject = %v; want nil after the delay", err)
	}
	if err := e.reg.Inject(context.Background(), grpcClient); err != nil {
		t.Fatalf("Inject = %v; want nil after the delay", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := e.reg.Inject(ctx, httpServer); !errors.Is(err, context.Canceled) {
		t.Errorf("Inject(canceled) = %v; want the context's error", err)
	}
	want := []time.Duration{300 * time.Millisecond, time.Second, 300 * time.Millisecond}
	if got := e.slept(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("slept %v; want %v", got, want)
	}
}

func TestJitterRange(t *testing.T) {
	e := newEnv(t)
	e.add(t, Spec{Type: TypeDelay, Delay: "10ms", Jitter: "5ms"})
	lo, hi := time.Hour, time.Duration(0)
	for range 1000 {
		_ = e.reg.Inject(context.Background(), httpServer)
	}
	for _, d := range e.slept() {
		lo, hi = min(lo, d), max(hi, d)
	}
	if lo < 10*time.Millisecond || hi > 15*time.Millisecond || hi-lo < 4*time.Millisecond {
		t.Errorf("delays in [%v, %v]; want spread over [10ms, 15ms]", lo, hi)
	}
}

func TestActionTimeout(t *testing.T) {
	e := newEnv(t)
	e.add(t, Spec{Type: TypeTimeout, Service: "note"})
	e.add(t, Spec{Type: TypeTimeout, Service: "feed", MaxWait: "5s"})

	// Without a deadline: max_wait, default or given.
	for _, p := range []fault.Point{httpServer, grpcClient} {
		err := e.reg.Inject(context.Background(), p)
		if errs.Code(err) != codes.DeadlineExceeded || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Inject = %v; want DeadlineExceeded", err)
		}
	}
	if got := e.slept(); len(got) != 2 || got[0] != DefaultMaxWait || got[1] != 5*time.Second {
		t.Errorf("waited %v; want [%v 5s]", got, DefaultMaxWait)
	}

	// With a deadline: until the deadline, however far.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Hour)
	defer cancel()
	if err := e.reg.Inject(ctx, grpcClient); errs.Code(err) != codes.DeadlineExceeded {
		t.Errorf("Inject(deadline) = %v; want DeadlineExceeded", err)
	}
	if got := e.slept()[2]; got <= time.Hour || got > 2*time.Hour {
		t.Errorf("waited %v; want the time to the deadline, 2h", got)
	}

	// A caller that gives up gets Canceled.
	cctx, ccancel := context.WithCancel(context.Background())
	ccancel()
	if err := e.reg.Inject(cctx, httpServer); errs.Code(err) != codes.Canceled {
		t.Errorf("Inject(canceled) = %v; want Canceled", err)
	}
}

// TestTimeoutRealSleep runs a timeout fault on the default sleep with a context whose
// deadline has passed: it returns at once.
func TestTimeoutRealSleep(t *testing.T) {
	reg := New(WithLogger(log.Discard()))
	if _, err := reg.Add(Spec{Type: TypeTimeout}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	if err := reg.Inject(ctx, httpServer); errs.Code(err) != codes.DeadlineExceeded {
		t.Errorf("Inject = %v; want DeadlineExceeded", err)
	}
}

func TestActionDrop(t *testing.T) {
	e := newEnv(t)
	e.add(t, Spec{Type: TypeDrop, Kind: "queue"})
	if err := e.reg.Inject(context.Background(), queuePub); err != fault.ErrDrop {
		t.Errorf("Inject(queue) = %v; want fault.ErrDrop", err)
	}
	if err := e.reg.Inject(context.Background(), httpServer); err != nil {
		t.Errorf("Inject(http) = %v; want nil", err)
	}
	_, err := e.reg.Add(Spec{Type: TypeDrop, Kind: "grpc"})
	wantBadFault(t, err, "type", "only queue faults can drop messages")
}

func TestExpiry(t *testing.T) {
	e := newEnv(t)
	start := e.clk.Now()

	f := e.add(t, Spec{ID: "default", Type: TypeAbort})
	if !f.ExpiresAt.Equal(start.Add(DefaultTTL)) || !f.AddedAt.Equal(start) || f.Source != SourceAPI {
		t.Errorf("Add = %+v; want added now, expiring in %v, source api", f, DefaultTTL)
	}
	_, err := e.reg.Add(Spec{Type: TypeAbort, TTL: "61m"})
	wantBadFault(t, err, "ttl", "1h1m0s is over the limit of 1h0m0s")
	_, err = e.reg.Add(Spec{Type: TypeAbort, Until: start.Add(-time.Second).Format(time.RFC3339)})
	wantBadFault(t, err, "until", "has passed")
	_, err = e.reg.Add(Spec{Type: TypeAbort, Until: start.Add(2 * time.Hour).Format(time.RFC3339)})
	wantBadFault(t, err, "until", "more than 1h0m0s ahead")
	u := e.add(t, Spec{ID: "until", Type: TypeAbort, Service: "feed", Until: start.Add(10 * time.Minute).Format(time.RFC3339)})
	if !u.ExpiresAt.Equal(start.Add(10 * time.Minute)) {
		t.Errorf("ExpiresAt = %v; want until", u.ExpiresAt)
	}

	if e.reg.Inject(context.Background(), httpServer) == nil {
		t.Fatal("Inject = nil before expiry")
	}
	e.clk.Advance(DefaultTTL - time.Nanosecond)
	if e.reg.Inject(context.Background(), httpServer) == nil {
		t.Fatal("Inject = nil just before expiry")
	}
	e.clk.Advance(time.Nanosecond)
	if err := e.reg.Inject(context.Background(), httpServer); err != nil {
		t.Fatalf("Inject = %v at ExpiresAt; want nil", err)
	}
	if l := e.reg.List(); len(l) != 1 || l[0].ID != "until" {
		t.Errorf("List = %+v; want only the until fault", l)
	}
	e.clk.Advance(10 * time.Minute)
	if l := e.reg.List(); len(l) != 0 {
		t.Errorf("List = %+v; want none", l)
	}
	var expired []string
	for _, ev := range e.reg.Events() {
		if ev.Type == EventExpired {
			expired = append(expired, ev.ID+"@"+ev.Time.Sub(start).String())
		}
	}
	if fmt.Sprint(expired) != "[default@5m0s until@10m0s]" {
		t.Errorf("expired events %v; want [default@5m0s until@10m0s]", expired)
	}
}

func TestMaxTTLOption(t *testing.T) {
	e := newEnv(t, WithMaxTTL(3*time.Hour))
	if f := e.add(t, Spec{Type: TypeAbort, TTL: "2h"}); f.ExpiresAt.Sub(f.AddedAt) != 2*time.Hour {
		t.Errorf("ttl 2h under MaxTTL 3h: expires %v", f.ExpiresAt)
	}
	e = newEnv(t, WithMaxTTL(time.Minute))
	if f := e.add(t, Spec{Type: TypeAbort}); f.ExpiresAt.Sub(f.AddedAt) != time.Minute {
		t.Errorf("default ttl under MaxTTL 1m: expires after %v; want 1m", f.ExpiresAt.Sub(f.AddedAt))
	}
}

func TestAddRemoveClear(t *testing.T) {
	e := newEnv(t)
	f := e.add(t, Spec{Type: TypeAbort})
	if !validID(f.ID) || len(f.ID) != 8 {
		t.Errorf("assigned id %q; want 8 hex digits", f.ID)
	}
	e.add(t, Spec{ID: "mine", Type: TypeAbort})
	if _, err := e.reg.Add(Spec{ID: "mine", Type: TypeDelay, Delay: "1s"}); errs.Code(err) != codes.AlreadyExists {
		t.Errorf("Add(duplicate id) = %v; want AlreadyExists", err)
	}
	if err := e.reg.Remove("nope"); errs.Code(err) != codes.NotFound {
		t.Errorf("Remove(unknown) = %v; want NotFound", err)
	}
	if err := e.reg.Remove("mine"); err != nil {
		t.Errorf("Remove = %v", err)
	}
	if err := e.reg.Remove("mine"); errs.Code(err) != codes.NotFound {
		t.Errorf("Remove twice = %v; want NotFound", err)
	}
	e.add(t, Spec{Type: TypeDelay, Delay: "1s"})
	if err := e.reg.SetConfig([]Spec{{Type: TypeAbort, Service: "feed"}}); err != nil {
		t.Fatal(err)
	}
	if n := e.reg.Clear(); n != 3 {
		t.Errorf("Clear = %d; want 3", n)
	}
	if l := e.reg.List(); len(l) != 0 {
		t.Errorf("List after Clear = %+v", l)
	}
	for _, p := range []fault.Point{httpServer, grpcClient} {
		if err := e.reg.Inject(context.Background(), p); err != nil {
			t.Errorf("Inject after Clear = %v", err)
		}
	}
	// A reload of the same config does not undo the red button.
	if err := e.reg.SetConfig([]Spec{{Type: TypeAbort, Service: "feed"}}); err != nil {
		t.Fatal(err)
	}
	if l := e.reg.List(); len(l) != 0 {
		t.Errorf("List after Clear and reload = %+v; want none", l)
	}
	if n := e.reg.Clear(); n != 0 {
		t.Errorf("Clear of nothing = %d", n)
	}
}

func TestSetConfigTTL(t *testing.T) {
	e := newEnv(t)
	spec := Spec{Type: TypeAbort, Service: "note", TTL: "10m", Reason: "game day"}
	if err := e.reg.SetConfig([]Spec{spec}); err != nil {
		t.Fatal(err)
	}
	first := e.reg.List()
	if len(first) != 1 || first[0].Source != SourceConfig || !strings.HasPrefix(first[0].ID, "cfg-") {
		t.Fatalf("List = %+v; want one config fault with a derived id", first)
	}
	start := e.clk.Now()
	e.clk.Advance(6 * time.Minute)
	if err := e.reg.SetConfig([]Spec{spec}); err != nil {
		t.Fatal(err)
	}
	if l := e.reg.List(); len(l) != 1 || !l[0].ExpiresAt.Equal(start.Add(10*time.Minute)) || l[0].ID != first[0].ID {
		t.Fatalf("after a reload: %+v; want the same fault, still expiring at %v", l, start.Add(10*time.Minute))
	}
	e.clk.Advance(4 * time.Minute)
	if err := e.reg.Inject(context.Background(), httpServer); err != nil {
		t.Fatalf("Inject after the config ttl = %v; want nil", err)
	}
	if err := e.reg.SetConfig([]Spec{spec}); err != nil {
		t.Fatal(err)
	}
	if l := e.reg.List(); len(l) != 0 {
		t.Fatalf("an expired config fault came back on reload: %+v", l)
	}

	// A changed spec is a new fault with a fresh ttl.
	changed := spec
	changed.Reason = "game day, round 2"
	if err := e.reg.SetConfig([]Spec{changed}); err != nil {
		t.Fatal(err)
	}
	l := e.reg.List()
	if len(l) != 1 || !l[0].ExpiresAt.Equal(e.clk.Now().Add(10*time.Minute)) || l[0].ID == first[0].ID {
		t.Fatalf("changed spec: %+v; want a new fault expiring in 10m", l)
	}
	if e.reg.Inject(context.Background(), httpServer) == nil {
		t.Fatal("Inject = nil; want the changed config fault")
	}

	// A spec that leaves the config ends its fault; coming back, it starts afresh.
	if err := e.reg.SetConfig(nil); err != nil {
		t.Fatal(err)
	}
	if l := e.reg.List(); len(l) != 0 {
		t.Fatalf("List after an empty config = %+v", l)
	}
	e.clk.Advance(time.Minute)
	if err := e.reg.SetConfig([]Spec{changed}); err != nil {
		t.Fatal(err)
	}
	if l := e.reg.List(); len(l) != 1 || !l[0].ExpiresAt.Equal(e.clk.Now().Add(10*time.Minute)) {
		t.Fatalf("re-added spec: %+v; want a fresh ttl", l)
	}

	// A config until that has passed is accepted and never active.
	if err := e.reg.SetConfig([]Spec{{Type: TypeAbort, Until: start.Format(time.RFC3339)}}); err != nil {
		t.Fatalf("SetConfig(until passed) = %v", err)
	}
	if l := e.reg.List(); len(l) != 0 {
		t.Fatalf("List = %+v; want none", l)
	}
}

func TestSetConfigKeepsCountAndRemove(t *testing.T) {
	e := newEnv(t)
	spec := Spec{ID: "slow", Type: TypeDelay, Delay: "1s"}
	if err := e.reg.SetConfig([]Spec{spec}); err != nil {
		t.Fatal(err)
	}
	_ = e.reg.Inject(context.Background(), httpServer)
	if err := e.reg.SetConfig([]Spec{spec}); err != nil {
		t.Fatal(err)
	}
	if l := e.reg.List(); len(l) != 1 || l[0].Injected != 1 {
		t.Fatalf("after a reload: %+v; want the fault with its count", l)
	}
	if err := e.reg.Remove("slow"); err != nil {
		t.Fatal(err)
	}
	if err := e.reg.SetConfig([]Spec{spec}); err != nil {
		t.Fatal(err)
	}
	if l := e.reg.List(); len(l) != 0 {
		t.Fatalf("a removed config fault came back on reload: %+v", l)
	}
}

func TestSetConfigAllOrNothing(t *testing.T) {
	e := newEnv(t)
	good := Spec{ID: "a", Type: TypeAbort, Service: "note"}
	if err := e.reg.SetConfig([]Spec{good}); err != nil {
		t.Fatal(err)
	}
	api := e.add(t, Spec{ID: "api", Type: TypeAbort, Service: "user"})
	eventsBefore := len(e.reg.Events())
	tests := []struct {
		name  string
		specs []Spec
		field string
		msg   string
	}{
		{"bad field", []Spec{{ID: "b", Type: TypeAbort}, {Type: TypeDelay, Delay: "abc"}}, "chaos.faults[1].delay", `chaos.faults[1]: delay: "abc" is not a duration`},
		{"ttl over max", []Spec{{ID: "b", Type: TypeAbort, TTL: "2h"}}, "chaos.faults[0].ttl", "over the limit"},
		{"duplicate id", []Spec{{ID: "b", Type: TypeAbort}, {ID: "b", Type: TypeDrop, Kind: "queue"}}, "chaos.faults[1].id", `"b" is also the id of chaos.faults[0]`},
		{"same fault twice", []Spec{{Type: TypeAbort}, {Type: TypeAbort}}, "chaos.faults[1].id", "the same fault as chaos.faults[0]"},
		{"api id", []Spec{{ID: api.ID, Type: TypeAbort}}, "chaos.faults[0].id", "taken by a fault added through the API"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantBadFault(t, e.reg.SetConfig(tt.specs), tt.field, tt.msg)
			l := e.reg.List()
			if len(l) != 2 || l[0].ID != "api" || l[1].ID != "a" {
				t.Errorf("List after a refused config = %+v; want api and a unchanged", l)
			}
			if n := len(e.reg.Events()); n != eventsBefore {
				t.Errorf("%d events after a refused config; want %d", n, eventsBefore)
			}
		})
	}
	if _, err := e.reg.Add(Spec{ID: "a", Type: TypeAbort}); errs.Code(err) != codes.AlreadyExists {
		t.Errorf("Add(id of a config fault) = %v; want AlreadyExists", err)
	}
}

func TestEvents(t *testing.T) {
	e := newEnv(t)
	start := e.clk.Now()
	e.add(t, Spec{ID: "one", Type: TypeDelay, Delay: "250ms", Jitter: "50ms", Service: "note", Kind: "http", Op: "GET /v1/*", Percent: 50, TTL: "2m", Reason: "drill 7"})
	e.clk.Advance(time.Minute)
	e.add(t, Spec{ID: "two", Type: TypeError, Code: "503"})
	e.clk.Advance(time.Minute)
	if err := e.reg.Remove("two"); err != nil {
		t.Fatal(err)
	}
	e.add(t, Spec{ID: "three", Type: TypeAbort})
	e.clk.Advance(time.Minute)
	e.reg.Clear()

	var got []string
	for _, ev := range e.reg.Events() {
		got = append(got, fmt.Sprintf("%v %s %s", ev.Time.Sub(start), ev.Type, ev.ID))
	}
	want := []string{"0s added one", "1m0s added two", "2m0s expired one", "2m0s removed two", "2m0s added three", "3m0s cleared three"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	desc := e.reg.Events()[0].Description
	if wantDesc := `delay 250ms (+ up to 50ms jitter) on service=note kind=http op="GET /v1/*" at 50% (reason: drill 7)`; desc != wantDesc {
		t.Errorf("description = %q; want %q", desc, wantDesc)
	}
	if d := e.reg.Events()[1].Description; d != "error Unavailable on every call" {
		t.Errorf("description = %q", d)
	}
}

func TestEventsBounded(t *testing.T) {
	e := newEnv(t)
	for i := range MaxEvents/2 + 10 {
		e.add(t, Spec{ID: fmt.Sprintf("f%d", i), Type: TypeAbort})
		if err := e.reg.Remove(fmt.Sprintf("f%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	ev := e.reg.Events()
	if len(ev) != MaxEvents || ev[0].ID != "f10" || ev[0].Type != EventAdded || ev[len(ev)-1].ID != fmt.Sprintf("f%d", MaxEvents/2+9) {
		t.Errorf("%d events from %+v to %+v; want the last %d", len(ev), ev[0], ev[len(ev)-1], MaxEvents)
	}
}

func TestMetrics(t *testing.T) {
	e := newEnv(t)
	active := func() float64 { return testutil.ToFloat64(activeFaults) }
	before := active()
	counter := injections.WithLabelValues("feed", "grpc", "error")
	hits := testutil.ToFloat64(counter)
	e.add(t, Spec{Type: TypeError, Code: "Internal", Service: "feed"})
	e.add(t, Spec{Type: TypeAbort, Service: "nobody", TTL: "1m"})
	if got := active() - before; got != 2 {
		t.Errorf("faults_active rose by %v; want 2", got)
	}
	_ = e.reg.Inject(context.Background(), grpcClient)
	_ = e.reg.Inject(context.Background(), grpcClient)
	if got := testutil.ToFloat64(counter) - hits; got != 2 {
		t.Errorf("injections rose by %v; want 2", got)
	}
	// The gauge sees an expiry without any call.
	e.clk.Advance(time.Minute)
	if got := active() - before; got != 1 {
		t.Errorf("faults_active after an expiry is %v above; want 1", got)
	}
}

func TestInjectNoMatchAllocatesNothing(t *testing.T) {
	e := newEnv(t)
	for i := range 10 {
		e.add(t, Spec{Type: TypeError, Code: "Internal", Service: fmt.Sprintf("svc-%d", i), Lane: "red"})
	}
	ctx := meta.WithLane(context.Background(), "red")
	if n := testing.AllocsPerRun(100, func() { _ = e.reg.Inject(ctx, httpServer) }); n != 0 {
		t.Errorf("Inject with no match: %v allocations; want 0", n)
	}
}

func TestConcurrentUse(t *testing.T) {
	e := newEnv(t)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 200 {
			_, _ = e.reg.Add(Spec{ID: fmt.Sprintf("c%d", i), Type: TypeError, Code: "Internal", Percent: 50})
			_ = e.reg.SetConfig([]Spec{{Type: TypeDelay, Delay: "1ms", Service: fmt.Sprint(i % 3)}})
			if i%10 == 0 {
				e.reg.Clear()
			}
		}
	}()
	for range 2000 {
		_ = e.reg.Inject(context.Background(), httpServer)
	}
	<-done
	_ = e.reg.List()
}

// TestInstanceScope: a fault scoped to instance note-2 slows only the calls served by
// note-2; the other replicas of note (note, note-3), a note server without an instance
// name and note's clients go on untouched, and the fault's description names the instance.
func TestInstanceScope(t *testing.T) {
	e := newEnv(t)
	f := e.add(t, Spec{Type: TypeDelay, Delay: "150ms", Service: "note", Instance: "note-2", Kind: "grpc", Side: "server",
		Op: "/note.v1.Note/GetNote"})
	if f.Instance != "note-2" {
		t.Fatalf("Fault.Instance = %q; want note-2", f.Instance)
	}
	at := func(instance string) fault.Point {
		return fault.Point{Kind: fault.GRPC, Side: fault.Server, Service: "note", Instance: instance, Op: "/note.v1.Note/GetNote"}
	}
	client := fault.Point{Kind: fault.GRPC, Side: fault.Client, Service: "bff", Target: "note", Op: "/note.v1.Note/GetNote"}
	ctx := context.Background()
	for range 3 {
		for _, p := range []fault.Point{at("note"), at("note-2"), at("note-3"), at(""), client} {
			if err := e.reg.Inject(ctx, p); err != nil {
				t.Fatalf("Inject(%+v) = %v", p, err)
			}
		}
	}
	if got := e.slept(); len(got) != 3 || got[0] != 150*time.Millisecond {
		t.Fatalf("slept %v; want 150ms three times, once per call served by note-2", got)
	}
	if got := e.reg.List()[0].Injected; got != 3 {
		t.Fatalf("Injected = %d; want 3", got)
	}
	want := `delay 150ms on service=note instance=note-2 kind=grpc side=server op="/note.v1.Note/GetNote"`
	if d := e.reg.Events()[0].Description; d != want {
		t.Errorf("description = %q; want %q", d, want)
	}
	// The instance survives the admin API's JSON round trip.
	s, err := ParseSpec([]byte(`{"type": "delay", "delay": "150ms", "instance": "note-2"}`))
	if err != nil || s.Instance != "note-2" {
		t.Fatalf("ParseSpec = %+v, %v; want instance note-2", s, err)
	}
}
