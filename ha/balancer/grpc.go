package balancer

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	grpcbalancer "google.golang.org/grpc/balancer"
	"google.golang.org/grpc/balancer/base"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/serviceconfig"
	"google.golang.org/grpc/status"
)

// Name is the gRPC load-balancing policy this package registers. Select it with the
// service config {"loadBalancingConfig":[{"redline_p2c":{}}]}; the policy's config takes
// "subsetSize" and "clientId" (deterministic subsetting, off by default).
const Name = "redline_p2c"

func init() { grpcbalancer.Register(NewBuilder(Name)) }

// NewBuilder returns a gRPC balancer builder named name whose channels each get their
// own P2C built with opts. Register it with google.golang.org/grpc/balancer.Register (at
// init time) to use a filter or non-default options; Name is registered with defaults.
func NewBuilder(name string, opts ...Option) grpcbalancer.Builder {
	return &builder{name: name, opts: opts}
}

type builder struct {
	name string
	opts []Option
}

// lbConfig is the policy's service-config JSON.
type lbConfig struct {
	serviceconfig.LoadBalancingConfig `json:"-"`
	// SubsetSize turns on deterministic subsetting; 0 keeps the builder's option.
	SubsetSize int `json:"subsetSize,omitempty"`
	// ClientID is this client's dense index among the clients of the service.
	ClientID int `json:"clientId,omitempty"`
}

func (b *builder) Name() string { return b.name }

func (b *builder) ParseConfig(js json.RawMessage) (serviceconfig.LoadBalancingConfig, error) {
	cfg := &lbConfig{}
	if len(js) > 0 {
		if err := json.Unmarshal(js, cfg); err != nil {
			return nil, fmt.Errorf("%s: parse config: %w", b.name, err)
		}
	}
	if cfg.SubsetSize < 0 || cfg.ClientID < 0 {
		return nil, fmt.Errorf("%s: subsetSize and clientId must not be negative", b.name)
	}
	return cfg, nil
}

func (b *builder) Build(cc grpcbalancer.ClientConn, opts grpcbalancer.BuildOptions) grpcbalancer.Balancer {
	// The target names the service ("registry:///note" → "note") for the picks counter;
	// a ServiceName among the builder's options wins.
	p := New(append([]Option{ServiceName(opts.Target.Endpoint())}, b.opts...)...)
	// The channel subsets before creating SubConns, so the P2C sees the subset only.
	size, id := p.o.subsetSize, p.o.clientID
	p.o.subsetSize = 0
	pb := &pickerBuilder{p2c: p, info: map[string]Node{}}
	l := &lb{
		Balancer: base.NewBalancerBuilder(b.name, pb, base.Config{HealthCheck: true}).Build(cc, opts),
		p2c:      p, pb: pb, size: size, clientID: id, target: opts.Target.String(),
	}
	live.add(l)
	return l
}

// lb is base's balancer (one SubConn per address, kept connected) with subsetting in
// front and the P2C behind its pickers.
type lb struct {
	grpcbalancer.Balancer
	p2c            *P2C
	pb             *pickerBuilder
	size, clientID int
	target         string
}

func (l *lb) UpdateClientConnState(s grpcbalancer.ClientConnState) error {
	size, id := l.size, l.clientID
	if cfg, ok := s.BalancerConfig.(*lbConfig); ok && cfg.SubsetSize > 0 {
		size, id = cfg.SubsetSize, cfg.ClientID
	}
	addrs := s.ResolverState.Addresses
	if len(addrs) == 0 {
		for _, ep := range s.ResolverState.Endpoints {
			if len(ep.Addresses) > 0 {
				a := ep.Addresses[0]
				a.BalancerAttributes = ep.Attributes
				addrs = append(addrs, a)
			}
		}
	}
	nodes := make([]Node, 0, len(addrs))
	info := make(map[string]Node, len(addrs))
	for _, a := range addrs {
		n := nodeOf(a)
		nodes = append(nodes, n)
		info[a.Addr] = n
	}
	l.pb.setInfo(info)
	if size > 0 && len(nodes) > size {
		keep := make(map[string]bool, size)
		for _, n := range SubsetOf(nodes, size, id) {
			keep[n.Addr] = true
		}
		addrs = slices.DeleteFunc(slices.Clone(addrs), func(a resolver.Address) bool { return !keep[a.Addr] })
	}
	s.ResolverState.Addresses = addrs
	s.ResolverState.Endpoints = nil
	return l.Balancer.UpdateClientConnState(s)
}

func (l *lb) Close() {
	live.remove(l)
	l.Balancer.Close()
}

type pickerBuilder struct {
	p2c  *P2C
	mu   sync.Mutex
	info map[string]Node // by address, from the resolver's attributes
}

func (pb *pickerBuilder) setInfo(info map[string]Node) {
	pb.mu.Lock()
	pb.info = info
	pb.mu.Unlock()
}

func (pb *pickerBuilder) Build(info base.PickerBuildInfo) grpcbalancer.Picker {
	pb.mu.Lock()
	defer pb.mu.Unlock()
	scs := make(map[string]grpcbalancer.SubConn, len(info.ReadySCs))
	nodes := make([]Node, 0, len(info.ReadySCs))
	for sc, sci := range info.ReadySCs {
		n, ok := pb.info[sci.Address.Addr]
		if !ok {
			n = nodeOf(sci.Address)
		}
		scs[n.Addr] = sc
		nodes = append(nodes, n)
	}
	slices.SortFunc(nodes, func(a, b Node) int { return strings.Compare(a.Addr, b.Addr) })
	pb.p2c.Update(nodes)
	return &picker{p2c: pb.p2c, scs: scs}
}

type picker struct {
	p2c *P2C
	scs map[string]grpcbalancer.SubConn
}

func (p *picker) Pick(info grpcbalancer.PickInfo) (grpcbalancer.PickResult, error) {
	if len(p.scs) == 0 {
		return grpcbalancer.PickResult{}, grpcbalancer.ErrNoSubConnAvailable
	}
	pk, err := p.p2c.Pick(info.Ctx)
	if err != nil {
		return grpcbalancer.PickResult{}, status.Error(codes.Unavailable, err.Error())
	}
	sc, ok := p.scs[pk.Node.Addr]
	if !ok { // a newer picker is on its way
		pk.Done(context.Canceled, -1)
		return grpcbalancer.PickResult{}, grpcbalancer.ErrNoSubConnAvailable
	}
	return grpcbalancer.PickResult{SubConn: sc, Done: func(di grpcbalancer.DoneInfo) {
		pk.Done(di.Err, CPUFromMD(di.Trailer))
	}}, nil
}

// attrKey keys the node's weight and lane in resolver.Address.BalancerAttributes.
type attrKey struct{}

type nodeAttr struct {
	weight   float64
	lane     string
	instance string
}

// WithNode returns addr carrying n's Weight, Lane and Instance for the redline_p2c policy,
// in its BalancerAttributes (which do not change SubConn identity). A resolver sets it per
// address: balancer.WithNode(resolver.Address{Addr: a}, balancer.Node{Lane: l, Weight: w}).
func WithNode(addr resolver.Address, n Node) resolver.Address {
	addr.BalancerAttributes = addr.BalancerAttributes.WithValue(attrKey{},
		nodeAttr{weight: n.Weight, lane: n.Lane, instance: n.Instance})
	return addr
}

// nodeOf reads the Node that WithNode put in addr.
func nodeOf(addr resolver.Address) Node {
	n := Node{Addr: addr.Addr}
	if a, ok := addr.BalancerAttributes.Value(attrKey{}).(nodeAttr); ok {
		n.Weight, n.Lane, n.Instance = a.weight, a.lane, a.instance
	}
	return n
}

// CPUFromMD reads the CPU a server reported under CPUKey in md, in per mille (0–1000), or
// -1 when there is none or it does not parse.
func CPUFromMD(md metadata.MD) int64 {
	v := md.Get(CPUKey)
	if len(v) == 0 {
		return -1
	}
	cpu, err := strconv.ParseInt(v[0], 10, 64)
	if err != nil || cpu < 0 {
		return -1
	}
	return min(cpu, 1000)
}

// ChannelState is the admin view of one gRPC channel that uses the policy.
type ChannelState struct {
	Target string      `json:"target"`
	Nodes  []NodeState `json:"nodes"`
}

// State returns a JSON-able snapshot of every live gRPC channel using the policy
// ([]ChannelState, sorted by target), for the admin page.
func State() any {
	return live.states()
}

var live = &registry{m: map[*lb]struct{}{}}

type registry struct {
	mu sync.Mutex
	m  map[*lb]struct{}
}

func (r *registry) add(l *lb) {
	r.mu.Lock()
	r.m[l] = struct{}{}
	r.mu.Unlock()
}

func (r *registry) remove(l *lb) {
	r.mu.Lock()
	delete(r.m, l)
	r.mu.Unlock()
}

func (r *registry) states() []ChannelState {
	r.mu.Lock()
	out := make([]ChannelState, 0, len(r.m))
	for l := range r.m {
		out = append(out, ChannelState{Target: l.target, Nodes: l.p2c.nodeStates()})
	}
	r.mu.Unlock()
	slices.SortFunc(out, func(a, b ChannelState) int { return strings.Compare(a.Target, b.Target) })
	return out
}
