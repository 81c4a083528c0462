package grpc

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/resolver"
	"google.golang.org/protobuf/proto"

	"github.com/redline-dev/redline/ha"
	"github.com/redline-dev/redline/ha/balancer"
	"github.com/redline-dev/redline/kit/errs"
	"github.com/redline-dev/redline/kit/fault"
	"github.com/redline-dev/redline/kit/meta"
	"github.com/redline-dev/redline/kit/middleware"
	"github.com/redline-dev/redline/kit/registry"
)

// DefaultClientTimeout is the budget of a call made without a deadline in its ctx: internal
// calls get 100 ms, as the seed's rule says.
const DefaultClientTimeout = 100 * time.Millisecond

// Client is a connection to one service with the kit's client chain. Target
// "registry:///note" resolves through the registry given with Registry; any other target
// ("127.0.0.1:9001") is dialed directly.
type Client struct {
	*grpc.ClientConn
	service string
	chain   middleware.Middleware
	reg     registry.Registry
	lane    string
}

type clientOptions struct {
	ha       *ha.Client
	logger   *slog.Logger
	deadline middleware.DeadlineConfig
	extra    []middleware.Middleware
	defaults bool
	reg      registry.Registry
	grpcOpts []grpc.DialOption
	lane     string
}

// ClientOption configures a Client.
type ClientOption func(*clientOptions)

// ClientLogger sets the logger for failed calls; the default is slog.Default().
func ClientLogger(l *slog.Logger) ClientOption { return func(o *clientOptions) { o.logger = l } }

// ClientDeadline sets the client's deadline policy; the default is DefaultClientTimeout.
func ClientDeadline(cfg middleware.DeadlineConfig) ClientOption {
	return func(o *clientOptions) { o.deadline = cfg }
}

// ClientMiddleware appends ms after the default client chain.
func ClientMiddleware(ms ...middleware.Middleware) ClientOption {
	return func(o *clientOptions) { o.extra = append(o.extra, ms...) }
}

// ClientHA sets the client's HA parts (retry, breakers, bulkhead, degradation), built by the
// caller with ha.NewClient so it can configure them and show their state. Without it the
// client builds its own from ha.Default().
func ClientHA(h *ha.Client) ClientOption { return func(o *clientOptions) { o.ha = h } }

// ClientWithoutDefaults drops the default client chain, HA and the fault hook included.
func ClientWithoutDefaults() ClientOption { return func(o *clientOptions) { o.defaults = false } }

// ClientLane sends every call made without a lane in lane: the clients of a stack's shadow
// instances use it, so their background work (relays, retriers, periodic jobs) reaches
// shadow instances too. The lane is set before the client chain runs, so the metadata
// middleware propagates it and the balancer routes by it.
func ClientLane(lane string) ClientOption { return func(o *clientOptions) { o.lane = lane } }

// Registry resolves "registry:///SERVICE" targets through r.
func Registry(r registry.Registry) ClientOption { return func(o *clientOptions) { o.reg = r } }

// DialOptions passes options to grpc.NewClient.
func DialOptions(opts ...grpc.DialOption) ClientOption {
	return func(o *clientOptions) { o.grpcOpts = append(o.grpcOpts, opts...) }
}

// Scheme is the target scheme resolved through the registry.
const Scheme = "registry"

// NewClient connects lazily to target, which names service.
func NewClient(target string, opts ...ClientOption) (*Client, error) {
	o := clientOptions{logger: slog.Default(), defaults: true,
		deadline: middleware.DeadlineConfig{Default: DefaultClientTimeout}}
	for _, opt := range opts {
		opt(&o)
	}
	service := target
	c := &Client{}
	gopts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	if rest, ok := strings.CutPrefix(target, Scheme+":///"); ok {
		if o.reg == nil {
			return nil, fmt.Errorf("grpc client %s: target needs a registry (use Registry option)", target)
		}
		service = rest
		c.reg = o.reg
		gopts = append(gopts, grpc.WithResolvers(&registryResolver{reg: o.reg, service: service}),
			grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"`+balancer.Name+`":{}}]}`))
	}
	gopts = append(gopts, grpc.WithChainUnaryInterceptor(c.unary))
	gopts = append(gopts, o.grpcOpts...)
	var ms []middleware.Middleware
	if o.defaults {
		ms = middleware.ClientDefaults(o.logger, o.deadline)
		if o.ha == nil {
			o.ha = ha.NewClient(ha.Default(), nil, nil)
		}
		ms = append(ms, o.ha.Middleware()...)
		// Innermost: an injected fault is a failing or slow remote to retries and breakers.
		ms = append(ms, middleware.Fault(fault.GRPC, fault.Client, ""))
	}
	c.chain = middleware.Chain(append(ms, o.extra...)...)
	c.service, c.lane = service, o.lane
	cc, err := grpc.NewClient(target, gopts...)
	if err != nil {
		return nil, fmt.Errorf("grpc client %s: %w", target, err)
	}
	c.ClientConn = cc
	return c, nil
}

func (c *Client) unary(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	if c.lane != "" && meta.Lane(ctx) == "" {
		ctx = meta.WithLane(ctx, c.lane)
	}
	out := MD(metadata.MD{})
	if md, ok := metadata.FromOutgoingContext(ctx); ok {
		out = MD(md.Copy())
	}
	info := &middleware.Info{Kind: middleware.GRPC, Side: middleware.Client, Service: c.service,
		Operation: method, Method: "unary", Header: out, Start: time.Now()}
	h := c.chain(func(ctx context.Context, req any) (any, error) {
		// A hedged attempt runs beside the first with its own copy of the Info and header
		// (ha/retry): it sends that header and decodes into a reply of its own.
		attempt := middleware.FromContext(ctx)
		if attempt == info {
			ctx = metadata.NewOutgoingContext(ctx, metadata.MD(out))
			return reply, invoker(ctx, method, req, reply, cc, opts...)
		}
		own := proto.Clone(reply.(proto.Message))
		proto.Reset(own)
		ctx = metadata.NewOutgoingContext(ctx, metadata.MD(attempt.Header.(MD)))
		return own, invoker(ctx, method, req, own, cc, unshared(opts)...)
	})
	resp, err := h(middleware.NewContext(ctx, info), req)
	if err != nil {
		return errs.From(err)
	}
	if won, ok := resp.(proto.Message); ok && resp != reply {
		proto.Reset(reply.(proto.Message))
		proto.Merge(reply.(proto.Message), won)
	}
	return nil
}

// Check is a readiness check: it fails while the registry lists no instance of the
// service. It asks the registry itself, so it answers the same whether or not the
// connection has been used yet. Directly dialed targets always pass.
func (c *Client) Check(ctx context.Context) error {
	if c.reg == nil {
		return nil
	}
	nodes, err := c.reg.Nodes(ctx, c.service)
	if err != nil {
		return fmt.Errorf("%s: registry: %w", c.service, err)
	}
	if len(nodes) == 0 {
		return fmt.Errorf("%s: no instances registered", c.service)
	}
	return nil
}

// Service returns the name of the target service.
func (c *Client) Service() string { return c.service }

// registryResolver feeds the registry's view of a service to grpc-go.
type registryResolver struct {
	reg     registry.Registry
	service string

	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

func (r *registryResolver) Scheme() string { return Scheme }

func (r *registryResolver) Build(_ resolver.Target, cc resolver.ClientConn, _ resolver.BuildOptions) (resolver.Resolver, error) {
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := r.reg.Watch(ctx, r.service)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("watch %s: %w", r.service, err)
	}
	r.mu.Lock()
	r.cancel, r.done = cancel, make(chan struct{})
	done := r.done
	r.mu.Unlock()
	go func() {
		defer close(done)
		for nodes := range ch {
			addrs := make([]resolver.Address, 0, len(nodes))
			for _, n := range nodes {
				addrs = append(addrs, balancer.WithNode(resolver.Address{Addr: n.Addr, ServerName: n.Service},
					balancer.Node{Addr: n.Addr, Lane: n.Lane(), Instance: n.Labels[registry.LabelInstance]}))
			}
			if len(addrs) == 0 {
				cc.ReportError(fmt.Errorf("%s: no instances registered", r.service))
				continue
			}
			_ = cc.UpdateState(resolver.State{Addresses: addrs})
		}
	}()
	return r, nil
}

func (r *registryResolver) ResolveNow(resolver.ResolveNowOptions) {}

func (r *registryResolver) Close() {
	r.mu.Lock()
	cancel, done := r.cancel, r.done
	r.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

// unshared drops the call options that write into the caller's variables (header, trailer,
// peer): two attempts running at once would race on them.
func unshared(opts []grpc.CallOption) []grpc.CallOption {
	out := make([]grpc.CallOption, 0, len(opts))
	for _, o := range opts {
		switch o.(type) {
		case grpc.HeaderCallOption, grpc.TrailerCallOption, grpc.PeerCallOption:
			continue
		}
		out = append(out, o)
	}
	return out
}
