package grpc

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc/codes"
	testpb "google.golang.org/grpc/interop/grpc_testing"

	"github.com/redline-dev/redline/kit/errs"
	"github.com/redline-dev/redline/kit/fault"
	"github.com/redline-dev/redline/kit/fault/faulttest"
	"github.com/redline-dev/redline/kit/log"
	"github.com/redline-dev/redline/kit/middleware"
)

const unaryCall = "/grpc.testing.TestService/UnaryCall"

// TestFaults: a fault injected at the server or at the client fails the call with the
// injected Unavailable error before the handler runs; the Points say where. An abort is
// returned as the Unavailable error it is.
func TestFaults(t *testing.T) {
	abort := errs.New(codes.Unavailable, errs.ReasonUnavailable, "injected abort").WithCause(fault.ErrAbort)
	injected := errs.New(codes.Unavailable, errs.ReasonUnavailable, "injected fault")
	for _, c := range []struct {
		name, side string
		err        error
	}{
		{"server", fault.Server, injected},
		{"server abort", fault.Server, abort},
		{"client", fault.Client, injected},
		{"client abort", fault.Client, abort},
	} {
		t.Run(c.name, func(t *testing.T) {
			var handled atomic.Int32
			srv := NewServer("svc", Logger(log.Discard()))
			testpb.RegisterTestServiceServer(srv, &testService{fn: func(context.Context, *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
				handled.Add(1)
				return &testpb.SimpleResponse{}, nil
			}})
			if err := srv.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			defer srv.Stop(context.Background())
			conn, err := NewClient(srv.Endpoint(), ClientLogger(log.Discard()))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			cli := testpb.NewTestServiceClient(conn)
			if _, err := cli.UnaryCall(context.Background(), &testpb.SimpleRequest{}); err != nil {
				t.Fatalf("no injector: UnaryCall = %v", err)
			}

			inj := &faulttest.Recorder{Err: c.err, Match: func(_ int, p fault.Point) bool { return p.Side == c.side }}
			faulttest.Install(t, inj)
			ctx := middleware.NewContext(context.Background(), &middleware.Info{Kind: middleware.GRPC,
				Side: middleware.Server, Service: "caller", Operation: "/caller.v1.Caller/Do"})
			_, err = cli.UnaryCall(ctx, &testpb.SimpleRequest{})
			if e := errs.From(err); e.Code != codes.Unavailable || e.Reason != errs.ReasonUnavailable {
				t.Fatalf("UnaryCall = %v; want the injected Unavailable", err)
			}
			if c.side == fault.Client && !errors.Is(err, c.err) {
				t.Fatalf("UnaryCall = %v; want the injected error itself", err)
			}
			if n := handled.Load(); n != 1 {
				t.Fatalf("handler ran %d times; want 1 (the call before the injector)", n)
			}
			clientPoint := fault.Point{Kind: fault.GRPC, Side: fault.Client, Service: "caller", Target: srv.Endpoint(), Op: unaryCall}
			serverPoint := fault.Point{Kind: fault.GRPC, Side: fault.Server, Service: "svc", Op: unaryCall}
			clients := inj.SeenWhere(func(p fault.Point) bool { return p.Side == fault.Client })
			servers := inj.SeenWhere(func(p fault.Point) bool { return p.Side == fault.Server })
			if len(clients) == 0 {
				t.Fatal("the client's injector was never asked")
			}
			for _, p := range clients { // retries may ask again
				if p != clientPoint {
					t.Fatalf("client point = %+v; want %+v", p, clientPoint)
				}
			}
			if c.side == fault.Client && len(servers) != 0 {
				t.Fatalf("server points = %+v; a call failed at the client must not reach the server", servers)
			}
			if c.side == fault.Server {
				if len(servers) != len(clients) {
					t.Fatalf("server asked %d times, client %d; want one server Point per attempt", len(servers), len(clients))
				}
				for _, p := range servers {
					if p != serverPoint {
						t.Fatalf("server point = %+v; want %+v", p, serverPoint)
					}
				}
			}
		})
	}
}
