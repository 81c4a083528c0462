package bench

import (
	"context"
	"net"
	"testing"

	kgrpc "github.com/go-kratos/kratos/v2/transport/grpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/test/bufconn"

	rgrpc "github.com/redline-dev/redline/kit/transport/grpc"
)

// testService answers UnaryCall with a payload of the requested size.
type testService struct {
	testgrpc.UnimplementedTestServiceServer
}

func (testService) UnaryCall(_ context.Context, in *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	return &testpb.SimpleResponse{Payload: &testpb.Payload{Body: make([]byte, in.GetResponseSize())}}, nil
}

// grpcServer is what each variant provides: a registrar for the service, and serve/stop.
type grpcServer interface {
	grpc.ServiceRegistrar
	Serve(net.Listener) error
	Stop()
}

type grpcCase struct {
	name string
	srv  func(b *testing.B) grpcServer
}

func grpcCases() []grpcCase {
	return []grpcCase{
		{"grpc-go", func(*testing.B) grpcServer { return grpc.NewServer() }},
		{"bare", func(*testing.B) grpcServer { return rgrpc.NewServer("bench", rgrpc.WithoutDefaults()).Server }},
		{"kit", func(*testing.B) grpcServer { return rgrpc.NewServer("bench", rgrpc.Logger(kitLogger(true))).Server }},
		{"kit-nolog", func(*testing.B) grpcServer {
			return rgrpc.NewServer("bench", rgrpc.Logger(kitLogger(false))).Server
		}},
		// kratos-bare: no middleware and no transport timeout, so that kratos' chain overhead
		// includes its deadline as the kit's does.
		{"kratos-bare", func(*testing.B) grpcServer { return kgrpc.NewServer(kgrpc.Timeout(0)).Server }},
		{"kratos", func(b *testing.B) grpcServer {
			return kgrpc.NewServer(kgrpc.Middleware(kratosChain(b, true)...)).Server
		}},
		{"kratos-nolog", func(b *testing.B) grpcServer {
			return kgrpc.NewServer(kgrpc.Middleware(kratosChain(b, false)...)).Server
		}},
	}
}

// dialBuf serves srv on an in-memory bufconn listener and returns a client of it. Both are
// stopped when b ends.
func dialBuf(b *testing.B, srv grpcServer) testgrpc.TestServiceClient {
	b.Helper()
	testgrpc.RegisterTestServiceServer(srv, testService{})
	lis := bufconn.Listen(1 << 20)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(lis)
	}()
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = conn.Close()
		srv.Stop()
		<-done
	})
	return testgrpc.NewTestServiceClient(conn)
}

// BenchmarkGRPCServer makes one unary call end to end, client included, over bufconn; the
// chain's overhead is the difference between the variants.
func BenchmarkGRPCServer(b *testing.B) {
	for _, c := range grpcCases() {
		b.Run(c.name, func(b *testing.B) {
			client := dialBuf(b, c.srv(b))
			ctx := context.Background()
			req := &testpb.SimpleRequest{ResponseSize: 32, Payload: &testpb.Payload{Body: make([]byte, 32)}}
			resp, err := client.UnaryCall(ctx, req)
			if err != nil || len(resp.GetPayload().GetBody()) != 32 {
				b.Fatalf("UnaryCall = %v, %v; want a 32-byte payload", resp, err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := client.UnaryCall(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
