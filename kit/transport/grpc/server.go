// Package grpc provides the kit's gRPC server and client. Both run the shared middleware
// chain (kit/middleware) with the default server or client chain first, carry kit/meta and
// W3C trace context in gRPC metadata, and let grpc-go carry the deadline as grpc-timeout.
// Clients resolve targets through a kit/registry.
//
// The default chains end in the HA parts and then middleware.Fault, the fault-injection
// hook (kit/fault): an injected error is a failing handler on a server and a failing
// remote on a client (an abort is returned as the Unavailable error it is). With no
// injector installed the hook costs one atomic load per call.
package grpc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	"github.com/redline-dev/redline/ha"
	"github.com/redline-dev/redline/kit/errs"
	"github.com/redline-dev/redline/kit/fault"
	"github.com/redline-dev/redline/kit/internal/serve"
	"github.com/redline-dev/redline/kit/middleware"
)

// DefaultServerTimeout is the budget of an internal call whose caller set no deadline.
const DefaultServerTimeout = time.Second

// DefaultMargin is taken off inbound deadlines for the transit back.
const DefaultMargin = 2 * time.Millisecond

// Server is a gRPC server with the kit's middleware chain. It implements app.Component.
type Server struct {
	*grpc.Server
	name   string
	o      serverOptions
	health *health.Server
	chain  middleware.Handler
	ownHA  *ha.Server
	serve.Loop
}

type serverOptions struct {
	addr     string
	logger   *slog.Logger
	deadline middleware.DeadlineConfig
	extra    []middleware.Middleware
	defaults bool
	ha       *ha.Server
	instance string
	grpcOpts []grpc.ServerOption
}

// ServerOption configures a Server.
type ServerOption func(*serverOptions)

// Address sets the listen address; the default is "127.0.0.1:0" (a free loopback port).
func Address(addr string) ServerOption { return func(o *serverOptions) { o.addr = addr } }

// Logger sets the logger of the recovery and logging middleware; the default is slog.Default().
func Logger(l *slog.Logger) ServerOption { return func(o *serverOptions) { o.logger = l } }

// Deadline sets the server's deadline policy; the default is DefaultServerTimeout with
// DefaultMargin.
func Deadline(cfg middleware.DeadlineConfig) ServerOption {
	return func(o *serverOptions) { o.deadline = cfg }
}

// Middleware appends ms after the default chain. Use middleware.Select to apply one to some
// methods only.
func Middleware(ms ...middleware.Middleware) ServerOption {
	return func(o *serverOptions) { o.extra = append(o.extra, ms...) }
}

// HA sets the server's HA parts (shedder, admission queue, bulkhead), built by the caller
// with ha.NewServer so it can configure them and show their state; the caller closes it.
// Without this option the server builds its own from ha.Default() and closes it at Stop.
func HA(h *ha.Server) ServerOption { return func(o *serverOptions) { o.ha = h } }

// Instance names the server as one instance of its service, for a process that serves a
// service from several servers (replicas: "note", "note-2", ...): the fault hook puts it
// in every Point (fault.Point.Instance), so a fault can be scoped to this server alone.
// The default is "": the server has no instance name.
func Instance(name string) ServerOption { return func(o *serverOptions) { o.instance = name } }

// WithoutDefaults drops the default chain, HA and the fault hook included; only Middleware
// options apply. For benchmarks and tests of the chain itself.
func WithoutDefaults() ServerOption { return func(o *serverOptions) { o.defaults = false } }

// GRPCOptions passes options to grpc.NewServer.
func GRPCOptions(opts ...grpc.ServerOption) ServerOption {
	return func(o *serverOptions) { o.grpcOpts = append(o.grpcOpts, opts...) }
}

// NewServer returns a server for the named service. Register services on it with its
// embedded *grpc.Server before Start.
func NewServer(name string, opts ...ServerOption) *Server {
	o := serverOptions{addr: "127.0.0.1:0", logger: slog.Default(), defaults: true,
		deadline: middleware.DeadlineConfig{Default: DefaultServerTimeout, Margin: DefaultMargin}}
	for _, opt := range opts {
		opt(&o)
	}
	s := &Server{name: name, o: o, health: health.NewServer()}
	var ms []middleware.Middleware
	if o.defaults {
		ms = middleware.ServerDefaults(o.logger, o.deadline)
		h, owned, err := ha.Own(o.ha, name, false)
		if err != nil {
			o.logger.Error("HA parts disabled: they failed to start", "service", name, "error", err)
		}
		s.ownHA = owned
		if h != nil {
			ms = append(ms, h.Middleware()...)
		}
		// Innermost: an injected fault is a failing or slow handler to everything above.
		ms = append(ms, middleware.ServerFault(fault.GRPC, name, o.instance))
	}
	ms = append(ms, o.extra...)
	s.chain = middleware.Chain(ms...)(func(ctx context.Context, req any) (any, error) {
		return middleware.FromContext(ctx).Next(ctx, req)
	})
	// Stream workers reuse goroutines (and their grown stacks) across calls instead of
	// starting one per call; bench/README.md has the numbers.
	gopts := append([]grpc.ServerOption{grpc.ChainUnaryInterceptor(s.unary),
		grpc.NumStreamWorkers(uint32(runtime.GOMAXPROCS(0)))}, o.grpcOpts...)
	s.Server = grpc.NewServer(gopts...)
	healthpb.RegisterHealthServer(s.Server, s.health)
	return s
}

func (s *Server) unary(ctx context.Context, req any, ui *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	info := &middleware.Info{
		Kind: middleware.GRPC, Side: middleware.Server, Service: s.name,
		Operation: ui.FullMethod, Method: "unary", Header: MD(md), Start: time.Now(),
		Next: middleware.Handler(handler),
	}
	resp, err := s.chain(middleware.NewContext(ctx, info), req)
	if err != nil {
		return nil, errs.From(err)
	}
	return resp, nil
}

// Start listens and serves in the background. It returns once the listener is bound, so
// Endpoint is valid afterwards.
func (s *Server) Start(ctx context.Context) error {
	if err := s.Loop.Start(ctx, "grpc "+s.name, s.o.addr, s.Server.Serve); err != nil {
		return err
	}
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	return nil
}

// Stop reports NOT_SERVING, lets in-flight calls finish, and forces the rest closed when
// ctx ends.
func (s *Server) Stop(ctx context.Context) error {
	s.health.Shutdown()
	done := make(chan struct{})
	go func() { s.Server.GracefulStop(); close(done) }()
	var forced error
	select {
	case <-done:
	case <-ctx.Done():
		forced = fmt.Errorf("grpc %s: drain cut short: %w", s.name, ctx.Err())
		s.Server.Stop()
		<-done
	}
	var haErr error
	if s.ownHA != nil {
		haErr = s.ownHA.Close()
	}
	return errors.Join(s.Loop.Wait(grpc.ErrServerStopped), forced, haErr)
}

// MD adapts gRPC metadata to middleware.Header and meta.Carrier.
type MD metadata.MD

// Get returns the first value of key.
func (m MD) Get(key string) string {
	if m == nil {
		return ""
	}
	if v := m[key]; len(v) > 0 {
		return v[0]
	}
	if v := m[strings.ToLower(key)]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// Set replaces the values of key.
func (m MD) Set(key, value string) { m[strings.ToLower(key)] = []string{value} }

// Clone copies m, so concurrent attempts of one call (hedging) share no header.
func (m MD) Clone() middleware.Header { return MD(metadata.MD(m).Copy()) }

// Keys lists the keys, so an MD can serve as an OpenTelemetry carrier.
func (m MD) Keys() []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
