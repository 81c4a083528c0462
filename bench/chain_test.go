package bench

import (
	"context"
	"testing"
	"time"

	kmiddleware "github.com/go-kratos/kratos/v2/middleware"
	"github.com/go-kratos/kratos/v2/transport"
	"google.golang.org/grpc"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"

	"github.com/redline-dev/redline/kit/middleware"
	rgrpc "github.com/redline-dev/redline/kit/transport/grpc"
)

// The end-to-end gRPC benchmark spends ~70 µs per call in grpc-go and the scheduler, so a
// chain overhead of a few µs drowns in its noise on a busy machine. BenchmarkGRPCChain
// measures the same chains without the wire: each variant does what its framework's unary
// server interceptor does per call (kit: kit/transport/grpc Server.unary; kratos:
// transport/grpc unaryServerInterceptor) around the same service method, with the incoming
// metadata grpc-go would hand it. The interceptors are unexported, so these mirror them; keep
// them in step.

// incomingMD is the metadata grpc-go passes a server for a plain call from grpc-go.
var incomingMD = metadata.MD{
	":authority":   {"bufnet"},
	"content-type": {"application/grpc"},
	"user-agent":   {"grpc-go/1.85.0"},
}

const unaryMethod = "/grpc.testing.TestService/UnaryCall"

var unaryInfo = &grpc.UnaryServerInfo{FullMethod: unaryMethod}

func unaryHandler(ctx context.Context, req any) (any, error) {
	return testService{}.UnaryCall(ctx, req.(*testpb.SimpleRequest))
}

// kitUnary mirrors kit/transport/grpc Server.unary with the chain ms.
func kitUnary(ms []middleware.Middleware) grpc.UnaryServerInterceptor {
	chain := middleware.Chain(ms...)(func(ctx context.Context, req any) (any, error) {
		return middleware.FromContext(ctx).Next(ctx, req)
	})
	return func(ctx context.Context, req any, ui *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		md, _ := metadata.FromIncomingContext(ctx)
		info := &middleware.Info{
			Kind: middleware.GRPC, Side: middleware.Server, Service: "bench",
			Operation: ui.FullMethod, Method: "unary", Header: rgrpc.MD(md), Start: time.Now(),
			Next: middleware.Handler(handler),
		}
		return chain(middleware.NewContext(ctx, info), req)
	}
}

// kratosUnary mirrors kratos' transport/grpc unaryServerInterceptor: a transport in the ctx,
// the server timeout, the chain built per call, less the merge with the server's base ctx
// (an internal package), which a kratos server also pays on every call.
func kratosUnary(ms []kmiddleware.Middleware, timeout time.Duration) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, ui *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		md, _ := metadata.FromIncomingContext(ctx)
		replyHeader := metadata.MD{}
		tr := &kratosTransport{op: ui.FullMethod, req: kratosHeader(md), reply: kratosHeader(replyHeader)}
		ctx = transport.NewServerContext(ctx, tr)
		if timeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, timeout)
			defer cancel()
		}
		h := kmiddleware.Handler(handler)
		if len(ms) > 0 {
			h = kmiddleware.Chain(ms...)(h)
		}
		return h(ctx, req)
	}
}

type kratosTransport struct {
	op         string
	req, reply kratosHeader
}

func (*kratosTransport) Kind() transport.Kind              { return transport.KindGRPC }
func (*kratosTransport) Endpoint() string                  { return "" }
func (t *kratosTransport) Operation() string               { return t.op }
func (t *kratosTransport) RequestHeader() transport.Header { return t.req }
func (t *kratosTransport) ReplyHeader() transport.Header   { return t.reply }

// kratosHeader is kratos' gRPC headerCarrier.
type kratosHeader metadata.MD

func (h kratosHeader) Get(key string) string {
	if v := metadata.MD(h).Get(key); len(v) > 0 {
		return v[0]
	}
	return ""
}
func (h kratosHeader) Set(key, value string)      { metadata.MD(h).Set(key, value) }
func (h kratosHeader) Add(key, value string)      { metadata.MD(h).Append(key, value) }
func (h kratosHeader) Values(key string) []string { return metadata.MD(h).Get(key) }
func (h kratosHeader) Keys() []string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	return keys
}

func grpcChainCases(b *testing.B) []struct {
	name string
	ic   grpc.UnaryServerInterceptor
} {
	dl := middleware.DeadlineConfig{Default: rgrpc.DefaultServerTimeout, Margin: rgrpc.DefaultMargin}
	return []struct {
		name string
		ic   grpc.UnaryServerInterceptor
	}{
		{"bare", kitUnary(nil)},
		{"kit", kitUnary(middleware.ServerDefaults(kitLogger(true), dl))},
		{"kit-nolog", kitUnary(middleware.ServerDefaults(kitLogger(false), dl))},
		{"kratos-bare", kratosUnary(nil, 0)},
		{"kratos", kratosUnary(kratosChain(b, true), time.Second)},
		{"kratos-nolog", kratosUnary(kratosChain(b, false), time.Second)},
	}
}

// BenchmarkGRPCChain runs one unary call through each framework's server interceptor and
// chain, in process, without grpc-go's transport.
func BenchmarkGRPCChain(b *testing.B) {
	for _, c := range grpcChainCases(b) {
		b.Run(c.name, func(b *testing.B) {
			ctx := metadata.NewIncomingContext(context.Background(), incomingMD)
			req := &testpb.SimpleRequest{ResponseSize: 32, Payload: &testpb.Payload{Body: make([]byte, 32)}}
			resp, err := c.ic(ctx, req, unaryInfo, unaryHandler)
			if err != nil || len(resp.(*testpb.SimpleResponse).GetPayload().GetBody()) != 32 {
				b.Fatalf("UnaryCall = %v, %v; want a 32-byte payload", resp, err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := c.ic(ctx, req, unaryInfo, unaryHandler); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
