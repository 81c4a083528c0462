package grpc

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	testpb "google.golang.org/grpc/interop/grpc_testing"

	"github.com/redline-dev/redline/ha/balancer"
	"github.com/redline-dev/redline/kit/errs"
	"github.com/redline-dev/redline/kit/fault"
	"github.com/redline-dev/redline/kit/fault/faulttest"
	"github.com/redline-dev/redline/kit/log"
	"github.com/redline-dev/redline/kit/middleware"
	"github.com/redline-dev/redline/kit/registry"
	"github.com/redline-dev/redline/kit/registry/memory"
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

// TestFaultInstance: a server given an Instance name puts it in its server Points, so a
// fault can pick that server out of the replicas of its service; its clients' Points carry
// none.
func TestFaultInstance(t *testing.T) {
	srv := startInstance(t, "svc", "svc-2")
	conn, err := NewClient(srv.Endpoint(), ClientLogger(log.Discard()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	inj := &faulttest.Recorder{}
	faulttest.Install(t, inj)
	if _, err := testpb.NewTestServiceClient(conn).UnaryCall(context.Background(), &testpb.SimpleRequest{}); err != nil {
		t.Fatalf("UnaryCall = %v", err)
	}
	want := fault.Point{Kind: fault.GRPC, Side: fault.Server, Service: "svc", Instance: "svc-2", Op: unaryCall}
	servers := inj.SeenWhere(func(p fault.Point) bool { return p.Side == fault.Server })
	if len(servers) != 1 || servers[0] != want {
		t.Fatalf("server points = %+v; want [%+v]", servers, want)
	}
	for _, p := range inj.SeenWhere(func(p fault.Point) bool { return p.Side == fault.Client }) {
		if p.Instance != "" {
			t.Fatalf("client point %+v has an instance; want none", p)
		}
	}
}

// TestRegistryInstanceReachesBalancer: the registry label "instance" of a node reaches the
// balancer's node as its Instance, which labels the node's picks.
func TestRegistryInstanceReachesBalancer(t *testing.T) {
	srv := startInstance(t, "inst-svc", "inst-svc-2")
	reg := memory.New()
	defer reg.Close()
	node := registry.Node{Service: "inst-svc", ID: "inst-svc-2-test", Addr: srv.Endpoint(),
		Labels: map[string]string{registry.LabelInstance: "inst-svc-2"}}
	if err := reg.Register(context.Background(), node); err != nil {
		t.Fatal(err)
	}
	conn, err := NewClient(Scheme+":///inst-svc", Registry(reg), ClientLogger(log.Discard()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := testpb.NewTestServiceClient(conn).UnaryCall(context.Background(), &testpb.SimpleRequest{}, grpc.WaitForReady(true)); err != nil {
		t.Fatalf("UnaryCall = %v", err)
	}
	for _, c := range balancer.State().([]balancer.ChannelState) {
		if c.Target != Scheme+":///inst-svc" {
			continue
		}
		if len(c.Nodes) != 1 || c.Nodes[0].Instance != "inst-svc-2" || c.Nodes[0].Picks == 0 {
			t.Fatalf("balancer nodes = %+v; want one, instance inst-svc-2, picked", c.Nodes)
		}
		return
	}
	t.Fatal("no balancer channel for registry:///inst-svc")
}

// startInstance starts a server of service named instance that answers every UnaryCall,
// stopped when the test ends.
func startInstance(t *testing.T, service, instance string) *Server {
	t.Helper()
	srv := NewServer(service, Logger(log.Discard()), Instance(instance))
	testpb.RegisterTestServiceServer(srv, &testService{fn: func(context.Context, *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
		return &testpb.SimpleResponse{}, nil
	}})
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop(context.Background()) })
	return srv
}
