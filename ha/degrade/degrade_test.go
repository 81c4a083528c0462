package degrade

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"

	"github.com/redline-dev/redline/ha/clock"
	"github.com/redline-dev/redline/kit/errs"
	"github.com/redline-dev/redline/kit/middleware"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// downstream is a fake dependency that counts its calls and fails with err when set.
type downstream struct {
	calls int
	err   error
}

func (d *downstream) handler(context.Context, any) (any, error) {
	d.calls++
	if d.err != nil {
		return nil, d.err
	}
	return "live", nil
}

func clientCall(h middleware.Handler, svc, op string) (any, error) {
	ctx := middleware.NewContext(context.Background(), &middleware.Info{Kind: middleware.GRPC, Side: middleware.Client,
		Service: svc, Operation: op})
	return h(ctx, "req")
}

func TestClientFallback(t *testing.T) {
	breakerOpen := errs.New(codes.Unavailable, "BREAKER_OPEN", "open").NoRetry()
	cases := []struct {
		name     string
		err      error
		want     any
		wantErr  codes.Code
		fallback bool // whether the fallback ran
	}{
		{"success passes", nil, "live", codes.OK, false},
		{"unavailable falls back", errs.New(codes.Unavailable, errs.ReasonUnavailable, "down"), "fallback", codes.OK, true},
		{"deadline falls back", errs.From(context.DeadlineExceeded), "fallback", codes.OK, true},
		{"overloaded falls back", errs.Overloaded("SHED", "busy"), "fallback", codes.OK, true},
		{"breaker open falls back", breakerOpen, "fallback", codes.OK, true},
		{"not found is the answer", errs.NotFound("NOTE_NOT_FOUND", "no"), nil, codes.NotFound, false},
		{"invalid argument is the answer", errs.InvalidArgument("BAD", "bad"), nil, codes.InvalidArgument, false},
		{"caller cancelled", errs.From(context.Canceled), nil, codes.Canceled, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := &downstream{err: c.err}
			var got error
			ran := false
			h := Client(map[string]Fallback{"note": func(_ context.Context, req any, err error) (any, error) {
				ran, got = true, err
				if req != "req" {
					t.Errorf("fallback req = %v; want the call's", req)
				}
				return "fallback", nil
			}}, nil)(d.handler)
			resp, err := clientCall(h, "note", "/note.v1.Note/GetNote")
			if resp != c.want || errs.Code(err) != c.wantErr || ran != c.fallback {
				t.Fatalf("call = %v, %v (fallback ran %v); want %v, %v (%v)", resp, err, ran, c.want, c.wantErr, c.fallback)
			}
			if ran && got != c.err {
				t.Fatalf("fallback got err %v; want the call's %v", got, c.err)
			}
		})
	}
}

func TestClientFallbackByOperationFirst(t *testing.T) {
	d := &downstream{err: errs.New(codes.Unavailable, errs.ReasonUnavailable, "down")}
	fb := func(v string) Fallback {
		return func(context.Context, any, error) (any, error) { return v, nil }
	}
	h := Client(map[string]Fallback{"note": fb("service"), "/note.v1.Note/ListNotes": fb("operation")}, nil)(d.handler)
	cases := []struct{ svc, op, want string }{
		{"note", "/note.v1.Note/ListNotes", "operation"},
		{"note", "/note.v1.Note/GetNote", "service"},
	}
	for _, c := range cases {
		resp, err := clientCall(h, c.svc, c.op)
		if err != nil || resp != c.want {
			t.Errorf("call %s = %v, %v; want %q", c.op, resp, err, c.want)
		}
	}
	if _, err := clientCall(h, "user", "/user.v1.User/Get"); errs.Code(err) != codes.Unavailable {
		t.Errorf("call without a fallback = %v; want the Unavailable error", err)
	}
}

func TestSwitchBypassesTheCall(t *testing.T) {
	clk := clock.NewFake(time.Time{})
	sw := NewSwitches(Clock(clk))
	note, user := &downstream{}, &downstream{}
	var fbErr error
	mw := Client(map[string]Fallback{"note": func(_ context.Context, _ any, err error) (any, error) {
		fbErr = err
		return "fallback", nil
	}}, sw)
	handlers := map[string]middleware.Handler{"note": mw(note.handler), "user": mw(user.handler)}

	cases := []struct {
		name      string
		on        []string
		svc, op   string
		want      any
		wantErr   string // reason
		wantCalls int    // downstream calls after this step, cumulative
	}{
		{"off: the call is made", nil, "note", "/note.v1.Note/GetNote", "live", "", 1},
		{"service switched: fallback, no call", []string{"note"}, "note", "/note.v1.Note/GetNote", "fallback", "", 1},
		{"operation switched: fallback, no call", []string{"/note.v1.Note/GetNote"}, "note", "/note.v1.Note/GetNote", "fallback", "", 1},
		{"other operation still called", []string{"/note.v1.Note/GetNote"}, "note", "/note.v1.Note/ListNotes", "live", "", 2},
		{"switched without a fallback: ErrForced, no call", []string{"user"}, "user", "/user.v1.User/Get", nil, ReasonForced, 2},
		{"off again", []string{}, "note", "/note.v1.Note/GetNote", "live", "", 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sw.Set(c.on)
			fbErr = nil
			resp, err := clientCall(handlers[c.svc], c.svc, c.op)
			if resp != c.want || errs.Reason(err) != c.wantErr {
				t.Fatalf("call = %v, %v; want %v, %q", resp, err, c.want, c.wantErr)
			}
			if note.calls != c.wantCalls || user.calls != 0 {
				t.Fatalf("note calls = %d, user calls = %d; want %d, 0", note.calls, user.calls, c.wantCalls)
			}
			if c.want == "fallback" && (!errors.Is(fbErr, ErrForced) || errs.IsRetryable(fbErr)) {
				t.Fatalf("fallback err = %v; want ErrForced, not retryable", fbErr)
			}
		})
	}
}

func TestSwitchesState(t *testing.T) {
	clk := clock.NewFake(time.Time{})
	sw := NewSwitches(Clock(clk))
	t0 := clk.Now()
	sw.Set([]string{"note", "search"})
	clk.Advance(time.Minute)
	sw.Set([]string{"search", "cart", ""})
	got := sw.State().([]SwitchState)
	want := []SwitchState{{"cart", t0.Add(time.Minute)}, {"search", t0}}
	if len(got) != len(want) {
		t.Fatalf("State() = %v; want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("State()[%d] = %v; want %v", i, got[i], want[i])
		}
	}
	if sw.Forced("note") || !sw.Forced("cart") {
		t.Fatalf("Forced(note), Forced(cart) = %v, %v; want false, true", sw.Forced("note"), sw.Forced("cart"))
	}
	var none *Switches
	if none.Forced("x") || len(none.State().([]SwitchState)) != 0 {
		t.Fatalf("a nil *Switches must force nothing")
	}
}

// TestSwitchesConcurrent runs readers against a writer under the race detector.
func TestSwitchesConcurrent(t *testing.T) {
	sw := NewSwitches()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
					sw.Forced("note")
					_ = sw.State()
				}
			}
		}()
	}
	for i := range 1000 {
		if i%2 == 0 {
			sw.Set([]string{"note"})
		} else {
			sw.Set(nil)
		}
	}
	close(stop)
	wg.Wait()
	if sw.Forced("note") {
		t.Fatalf("Forced after the last Set(nil) = true")
	}
}

func BenchmarkClient(b *testing.B) {
	sw := NewSwitches()
	sw.Set([]string{"search"})
	h := Client(map[string]Fallback{"note": func(context.Context, any, error) (any, error) { return nil, nil }}, sw)(
		func(context.Context, any) (any, error) { return nil, nil })
	ctx := middleware.NewContext(context.Background(), &middleware.Info{Kind: middleware.GRPC, Side: middleware.Client,
		Service: "note", Operation: "/note.v1.Note/GetNote"})
	b.ReportAllocs()
	for b.Loop() {
		_, _ = h(ctx, nil)
	}
}
