package middleware

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/redline-dev/redline/kit/errs"
	"github.com/redline-dev/redline/kit/fault"
	"github.com/redline-dev/redline/kit/fault/faulttest"
	"github.com/redline-dev/redline/kit/log"
)

var errInjected = errs.New(codes.Unavailable, errs.ReasonUnavailable, "injected")

func TestFaultPoints(t *testing.T) {
	serverInfo := &Info{Kind: GRPC, Side: Server, Service: "note", Operation: "/note.v1.Note/GetNote"}
	cases := []struct {
		name    string
		mw      Middleware
		ctx     func() context.Context
		want    fault.Point
		handler bool // the handler runs: the op is not the one failed
	}{
		{
			name: "server",
			mw:   Fault(fault.GRPC, fault.Server, "note"),
			ctx:  func() context.Context { return NewContext(context.Background(), serverInfo) },
			want: fault.Point{Kind: fault.GRPC, Side: fault.Server, Service: "note", Op: "/note.v1.Note/GetNote"},
		},
		{
			name: "server instance",
			mw:   ServerFault(fault.GRPC, "note", "note-2"),
			ctx:  func() context.Context { return NewContext(context.Background(), serverInfo) },
			want: fault.Point{Kind: fault.GRPC, Side: fault.Server, Service: "note", Instance: "note-2", Op: "/note.v1.Note/GetNote"},
		},
		{
			name: "server without an instance name",
			mw:   ServerFault(fault.GRPC, "note", ""),
			ctx:  func() context.Context { return NewContext(context.Background(), serverInfo) },
			want: fault.Point{Kind: fault.GRPC, Side: fault.Server, Service: "note", Op: "/note.v1.Note/GetNote"},
		},
		{
			name: "client in a request takes the server's name",
			mw:   Fault(fault.HTTP, fault.Client, ""),
			ctx: func() context.Context {
				ctx := NewContext(context.Background(), serverInfo)
				return NewContext(ctx, &Info{Kind: HTTP, Side: Client, Service: "user", Operation: "GET /v1/users/{id}"})
			},
			want: fault.Point{Kind: fault.HTTP, Side: fault.Client, Service: "note", Target: "user", Op: "GET /v1/users/{id}"},
		},
		{
			name: "hedged attempt still finds the server",
			mw:   Fault(fault.GRPC, fault.Client, ""),
			ctx: func() context.Context {
				ctx := NewContext(context.Background(), serverInfo)
				client := &Info{Kind: GRPC, Side: Client, Service: "user", Operation: "/user.v1.User/Get"}
				attempt := *client
				return NewContext(NewContext(ctx, client), &attempt)
			},
			want: fault.Point{Kind: fault.GRPC, Side: fault.Client, Service: "note", Target: "user", Op: "/user.v1.User/Get"},
		},
		{
			name: "client outside any request",
			mw:   Fault(fault.GRPC, fault.Client, ""),
			ctx: func() context.Context {
				return NewContext(context.Background(), &Info{Kind: GRPC, Side: Client, Service: "user", Operation: "/user.v1.User/Get"})
			},
			want: fault.Point{Kind: fault.GRPC, Side: fault.Client, Target: "user", Op: "/user.v1.User/Get"},
		},
		{
			name: "client with its owner's name",
			mw:   Fault(fault.GRPC, fault.Client, "relay"),
			ctx: func() context.Context {
				ctx := NewContext(context.Background(), serverInfo)
				return NewContext(ctx, &Info{Kind: GRPC, Side: Client, Service: "user", Operation: "/user.v1.User/Get"})
			},
			want: fault.Point{Kind: fault.GRPC, Side: fault.Client, Service: "relay", Target: "user", Op: "/user.v1.User/Get"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			inj := &faulttest.Recorder{Op: c.want.Op, Err: errInjected}
			faulttest.Install(t, inj)
			called := false
			h := c.mw(func(context.Context, any) (any, error) { called = true; return "ok", nil })
			_, err := h(c.ctx(), nil)
			if !errors.Is(err, errInjected) {
				t.Fatalf("err = %v; want the injected error", err)
			}
			if called {
				t.Fatal("the handler ran; a failed call must not reach it")
			}
			if got := inj.Seen(); len(got) != 1 || got[0] != c.want {
				t.Fatalf("points = %+v; want [%+v]", got, c.want)
			}
		})
	}
}

func TestFaultPassesWhenNothingIsInjected(t *testing.T) {
	ctx := NewContext(context.Background(), &Info{Kind: HTTP, Side: Server, Service: "s", Operation: "GET /a"})
	h := Fault(fault.HTTP, fault.Server, "s")(func(context.Context, any) (any, error) { return "ok", nil })
	t.Run("no injector", func(t *testing.T) {
		faulttest.Install(t, nil)
		if resp, err := h(ctx, nil); resp != "ok" || err != nil {
			t.Fatalf("h = %v, %v; want ok, nil", resp, err)
		}
	})
	t.Run("injector says nil", func(t *testing.T) {
		inj := &faulttest.Recorder{Op: "GET /other", Err: errInjected}
		faulttest.Install(t, inj)
		if resp, err := h(ctx, nil); resp != "ok" || err != nil {
			t.Fatalf("h = %v, %v; want ok, nil", resp, err)
		}
		if n := len(inj.Seen()); n != 1 {
			t.Fatalf("injector asked %d times; want 1", n)
		}
	})
}

// TestFaultMarksAbortsOfHTTPServersOnly: only an abort injected at an HTTP server is marked
// for dropping the connection; at a client (whose error a handler may pass up) or a gRPC
// server it is the plain Unavailable error.
func TestFaultMarksAbortsOfHTTPServersOnly(t *testing.T) {
	abort := errs.New(codes.Unavailable, errs.ReasonUnavailable, "connection aborted").WithCause(fault.ErrAbort)
	cases := []struct {
		kind, side string
		want       bool
	}{
		{fault.HTTP, fault.Server, true},
		{fault.HTTP, fault.Client, false},
		{fault.GRPC, fault.Server, false},
		{fault.GRPC, fault.Client, false},
	}
	for _, c := range cases {
		t.Run(c.kind+" "+c.side, func(t *testing.T) {
			faulttest.Install(t, &faulttest.Recorder{Op: "op", Err: abort})
			ctx := NewContext(context.Background(), &Info{Service: "s", Operation: "op"})
			_, err := Fault(c.kind, c.side, "s")(func(context.Context, any) (any, error) { return nil, nil })(ctx, nil)
			if got := Aborted(err); got != c.want {
				t.Fatalf("Aborted(%v) = %v; want %v", err, got, c.want)
			}
			if e := errs.From(err); e.Code != codes.Unavailable || !errors.Is(err, fault.ErrAbort) {
				t.Fatalf("err = %v; want the Unavailable abort, unchanged under the mark", err)
			}
		})
	}
	if Aborted(abort) {
		t.Fatal("Aborted(unmarked abort) = true; want false")
	}
}

// TestRecoveryLetsHTTPAbortsThrough: http.ErrAbortHandler reaches net/http from an HTTP
// server; elsewhere it is a panic like any other.
func TestRecoveryLetsHTTPAbortsThrough(t *testing.T) {
	h := Recovery(log.Discard())(func(context.Context, any) (any, error) { panic(http.ErrAbortHandler) })
	run := func(info *Info) (p any, err error) {
		defer func() { p = recover() }()
		_, err = h(NewContext(context.Background(), info), nil)
		return nil, err
	}
	if p, _ := run(&Info{Kind: HTTP, Side: Server}); p != http.ErrAbortHandler {
		t.Fatalf("HTTP server: recovered %v; want http.ErrAbortHandler to propagate", p)
	}
	p, err := run(&Info{Kind: GRPC, Side: Server})
	if p != nil || errs.Reason(err) != errs.ReasonPanic {
		t.Fatalf("gRPC server: panic %v, err %v; want a PANIC error", p, err)
	}
}

// BenchmarkFaultMiddlewareNone is the hook's cost with no injector installed: one atomic
// load and the call of next.
func BenchmarkFaultMiddlewareNone(b *testing.B) {
	b.Cleanup(fault.Install(nil))
	ctx := NewContext(context.Background(), &Info{Kind: GRPC, Side: Client, Service: "s", Operation: "/s.v1.S/Get"})
	next := func(context.Context, any) (any, error) { return nil, nil }
	h := Fault(fault.GRPC, fault.Client, "")(next)
	b.ReportAllocs()
	for b.Loop() {
		_, _ = h(ctx, nil)
	}
}
