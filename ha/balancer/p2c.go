// Package balancer provides client-side load balancing: a power-of-two-choices (P2C)
// picker that scores nodes by time-decayed latency, in-flight requests, success rate and
// the CPU the server reports, with slow start for new nodes, probing of penalized nodes,
// deterministic subsetting for large fleets and a node-filter hook; the gRPC balancer
// "redline_p2c" built on it; and the server middleware ReportCPU that feeds the CPU back.
//
// The core (P2C) knows nothing of gRPC, so the simulator in ha/sim drives it directly.
//
// # Scoring
//
// Of two nodes drawn at random, Pick takes the one with the lower cost
//
//	cost = (lag + 100µs) × (inflight + 1) × (1 + (cpu/1000)^8) / (success × weight × warm)
//
// where:
//
//   - lag is a time-decayed EWMA of the round-trip time (old value weighted e^(-Δt/Tau),
//     Δt since the previous answer) that jumps at once to a slower answer ("peak EWMA",
//     as in Finagle), so a node that turns slow is dropped at its first slow answer.
//     A failed call never lowers lag (its sample is max(rtt, lag)): a node that fails
//     fast does not look fast.
//   - lag × (inflight+1) is linear in lag, unlike go-zero's and kratos' sqrt(lag):
//     sqrt shows a 10× slower node as only 3.2× worse, so it wins again as soon as the
//     others have a few requests in flight. In the simulation that is the difference
//     between a p99 of 23 ms and of 100 ms with one slow node among five.
//   - success is a time-decayed EWMA of the share of calls that did not fail
//     (Unavailable, ResourceExhausted, Internal, Unknown, DeadlineExceeded, DataLoss,
//     Aborted count as failures; cancelled calls are not counted; floor 0.01).
//   - cpu is what the server last reported in x-redline-cpu (per mille; see ReportCPU).
//     The term is smooth and small below 700‰ (1.17 at 800‰, 1.43 at 900‰, 2 at 1000‰):
//     CPU warns of saturation but is no load measure. A node that is slow for a reason
//     other than CPU gets little traffic and so reports an idle CPU; the seed's score,
//     sqrt(lag) multiplied by the CPU, sends traffic back to it (p99 102 ms in the
//     simulation), and a hard knee at 600‰ or 800‰ turned CPU noise at normal load into
//     worse choices among healthy nodes.
//   - weight is the node's relative capacity (from the resolver; 0 means 1).
//   - warm is 0.1 when a node joins a running picker and ramps linearly to 1 over WarmUp
//     (slow start). Nodes seen within the picker's first WarmUp are not warmed: a client
//     that just started cannot tell a new server from an old one.
//
// A node that has not been picked for ProbeInterval is taken whenever it is one of the
// two candidates, one request at a time. Its answer refreshes lag with a weight that grows
// with the silence (1 − e^(−1 s/Tau) = 63% after 1 s), so a node that healed is back to its
// share within about 2 s (go-zero's 10 s EWMA: not within 10 s).
//
// # gRPC
//
// Importing the package registers the gRPC policy Name ("redline_p2c"); a channel selects
// it with the service config {"loadBalancingConfig":[{"redline_p2c":{}}]}, whose policy
// config takes "subsetSize" and "clientId". A resolver attaches a node's weight and lane
// with WithNode. Servers send their CPU with ReportCPU in the server chain; the picker
// reads it from the trailer when the call ends, so the client chain needs no middleware.
// The package-level State lists every live channel's nodes for the admin page.
//
// # Defaults
//
//   - Tau: 1 s. Slow nodes are caught by the peak rule whatever Tau is, so Tau only sets
//     how fast a node is forgiven and how much one answer moves the estimate; 1 s keeps
//     recovery within a few seconds while averaging over tens of answers at normal rates.
//     (kratos uses 600 ms, go-zero 10 s.)
//   - ProbeInterval: 1 s (go-zero's force pick); 0 disables probing.
//   - WarmUp: 10 s; 0 disables slow start.
//   - Subsetting: off (every node). Turn it on with Subset(size, clientID), or
//     "subsetSize"/"clientId" in the gRPC policy config, when clients have a dense index
//     (0..N-1); see SubsetOf.
//   - Filter: LaneFilter (lane requests prefer their lane's nodes and fall back to the
//     baseline; baseline requests never reach lane nodes).
//   - Clock: clock.Real{}.
//
// # Metrics
//
// Decisions are counted in redline_ha_balancer_decisions_total{decision,reason}:
// pick/score, pick/probe, pick/single, reject/no_node and reject/filtered.
//
// Picks are counted per node in redline_ha_balancer_picks_total{service,instance}: service
// is the picker's (ServiceName; the gRPC policy takes it from the channel's target,
// "registry:///note" → "note") and instance the node's Instance (the registry label
// "instance", such as "note-2"), or the service name for a node without one. So a drill
// that slows one replica sees that replica's share of picks fall. The label is a name the
// servers give themselves, not a node's address or random id, so the series stay few;
// nodes without an instance name share one series per service. The counter is resolved
// when the node set changes, so a pick costs one atomic add for it.
package balancer

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"

	"github.com/redline-dev/redline/ha/clock"
	"github.com/redline-dev/redline/kit/errs"
)

// ErrNoNode is returned by Pick when no node is available, or the filter kept none.
var ErrNoNode = errors.New("balancer: no node available")

// Node is one backend.
type Node struct {
	// Addr identifies the node (host:port); stats follow it across Updates.
	Addr string `json:"addr"`
	// Weight is the node's relative capacity; 0 means 1.
	Weight float64 `json:"weight,omitempty"`
	// Lane is the node's stress-test lane, "" for the baseline.
	Lane string `json:"lane,omitempty"`
	// Instance names the server instance the node is (the registry label "instance",
	// such as "note-2"), "" when it has none. It labels the node's picks in
	// redline_ha_balancer_picks_total.
	Instance string `json:"instance,omitempty"`

	st *stats
}

// Filter narrows the nodes a request may go to, e.g. to the request's lane. It must not
// modify nodes; it returns a subset of it (a new slice, or nodes itself), and an empty
// result makes Pick fail with ErrNoNode. Nodes it returns must come from nodes (or carry
// the same Addr).
type Filter func(ctx context.Context, nodes []Node) []Node

type options struct {
	service    string
	clock      clock.Clock
	tau        time.Duration
	probe      time.Duration
	warmUp     time.Duration
	subsetSize int
	clientID   int
	filter     Filter
	seed       uint64
	seeded     bool
	// cost and plainEWMA let the simulation tests emulate peers' pickers.
	cost      costFunc
	plainEWMA bool
}

// Option configures a P2C.
type Option func(*options)

// ServiceName sets the service the picker balances, the service label of its picks in
// redline_ha_balancer_picks_total; the default is "". The gRPC policy sets it from the
// channel's target.
func ServiceName(name string) Option { return func(o *options) { o.service = name } }

// WithClock sets the clock; the default is clock.Real{}.
func WithClock(c clock.Clock) Option { return func(o *options) { o.clock = c } }

// Tau sets the time constant of the latency and success EWMAs; the default is 1 s.
func Tau(d time.Duration) Option { return func(o *options) { o.tau = d } }

// ProbeInterval sets how long a node may go unpicked before it is probed; the default is
// 1 s.
func ProbeInterval(d time.Duration) Option { return func(o *options) { o.probe = d } }

// WarmUp sets the slow-start window of a new node (0 disables it); the default is 10 s.
func WarmUp(d time.Duration) Option { return func(o *options) { o.warmUp = d } }

// Subset makes the picker use only the subset of size nodes that SubsetOf assigns to
// clientID; the default (size 0) is every node.
func Subset(size, clientID int) Option {
	return func(o *options) { o.subsetSize, o.clientID = size, clientID }
}

// WithFilter sets the node filter; the default is LaneFilter, and nil turns filtering off.
func WithFilter(f Filter) Option { return func(o *options) { o.filter = f } }

// Seed makes the random choices reproducible (for simulations); the default draws from
// the runtime's per-thread random source.
func Seed(seed uint64) Option { return func(o *options) { o.seed, o.seeded = seed, true } }

// Default values of the options.
const (
	DefaultTau           = time.Second
	DefaultProbeInterval = time.Second
	DefaultWarmUp        = 10 * time.Second
)

// P2C is a power-of-two-choices picker. It is safe for concurrent use; Pick takes no lock.
type P2C struct {
	o    options
	rng  atomic.Uint64
	snap atomic.Pointer[snapshot]

	mu    sync.Mutex // serializes Update
	first int64      // unix ns of the first non-empty Update; 0 before
}

type snapshot struct {
	nodes  []Node
	byAddr map[string]*stats
}

// stats is what the picker knows of a node. Pick reads it with atomics; Done updates the
// EWMAs under mu.
type stats struct {
	inflight atomic.Int64
	lastPick atomic.Int64 // unix ns
	lag      atomic.Uint64
	success  atomic.Uint64
	cpu      atomic.Int64 // per mille; -1 unknown
	picks    atomic.Uint64
	fails    atomic.Uint64

	added    int64 // unix ns
	warming  bool
	instance string             // the node's Instance when the stats were made
	picked   prometheus.Counter // redline_ha_balancer_picks_total of the node

	mu      sync.Mutex
	lastObs int64 // unix ns of the last observation; 0 none
}

func (s *stats) lagNS() float64    { return math.Float64frombits(s.lag.Load()) }
func (s *stats) successF() float64 { return math.Float64frombits(s.success.Load()) }

// New returns a picker with no nodes; call Update.
func New(opts ...Option) *P2C {
	o := options{clock: clock.Real{}, tau: DefaultTau, probe: DefaultProbeInterval,
		warmUp: DefaultWarmUp, cost: redlineCost, filter: LaneFilter}
	for _, opt := range opts {
		opt(&o)
	}
	b := &P2C{o: o}
	b.rng.Store(o.seed)
	b.snap.Store(&snapshot{byAddr: map[string]*stats{}})
	return b
}

// Update replaces the node set (after subsetting, when on). Nodes that stay keep their
// stats; new ones start at the mean lag of the others and, once the picker is older than
// WarmUp, warm up. A node whose Instance changed at the same address is another server:
// it starts anew, counted under its new name.
func (b *P2C) Update(nodes []Node) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.o.subsetSize > 0 {
		nodes = SubsetOf(nodes, b.o.subsetSize, b.o.clientID)
	}
	now := b.o.clock.Now().UnixNano()
	old := b.snap.Load()
	if b.first == 0 && len(nodes) > 0 {
		b.first = now
	}
	var sum float64
	for _, st := range old.byAddr {
		sum += st.lagNS()
	}
	initLag := 0.0
	if len(old.byAddr) > 0 {
		initLag = sum / float64(len(old.byAddr))
	}
	next := &snapshot{nodes: make([]Node, 0, len(nodes)), byAddr: make(map[string]*stats, len(nodes))}
	for _, n := range nodes {
		if _, dup := next.byAddr[n.Addr]; dup {
			continue
		}
		st := old.byAddr[n.Addr]
		if st == nil || st.instance != n.Instance {
			st = &stats{added: now, warming: b.o.warmUp > 0 && now-b.first > int64(b.o.warmUp),
				instance: n.Instance, picked: pickCounter(b.o.service, n.Instance)}
			st.lag.Store(math.Float64bits(initLag))
			st.success.Store(math.Float64bits(1))
			st.cpu.Store(-1)
			st.lastPick.Store(now)
		}
		n.st = st
		next.nodes = append(next.nodes, n)
		next.byAddr[n.Addr] = st
	}
	b.snap.Store(next)
}

// Nodes returns the current node set (after subsetting).
func (b *P2C) Nodes() []Node { return append([]Node(nil), b.snap.Load().nodes...) }

// Picked is the outcome of Pick: the chosen node, and Done to report how the call went.
type Picked struct {
	Node  Node
	start int64
	b     *P2C
}

// Pick chooses a node for a request. The caller must call Done on the result exactly once.
func (b *P2C) Pick(ctx context.Context) (Picked, error) {
	snap := b.snap.Load()
	nodes := snap.nodes
	if b.o.filter != nil && len(nodes) > 0 {
		nodes = b.o.filter(ctx, nodes)
		if len(nodes) == 0 {
			decisions.filtered.Inc()
			return Picked{}, ErrNoNode
		}
	}
	var chosen Node
	now := b.o.clock.Now().UnixNano()
	switch len(nodes) {
	case 0:
		decisions.noNode.Inc()
		return Picked{}, ErrNoNode
	case 1:
		chosen = nodes[0]
		decisions.single.Inc()
	default:
		r := b.rand()
		n := uint64(len(nodes))
		i := r % n
		j := (r >> 32) % (n - 1)
		if j >= i {
			j++
		}
		x, y := nodes[i], nodes[j]
		sx, sy := statsOf(snap, x), statsOf(snap, y)
		switch {
		case sx == nil || sy == nil:
			if sx == nil {
				x, sx = y, sy
			}
			if sx == nil {
				decisions.noNode.Inc()
				return Picked{}, ErrNoNode
			}
			chosen = x
			decisions.single.Inc()
		case b.claimProbe(sx, now):
			chosen = x
			decisions.probe.Inc()
		case b.claimProbe(sy, now):
			chosen = y
			decisions.probe.Inc()
		default:
			chosen = x
			if b.o.cost(b, sy, y.Weight, now) < b.o.cost(b, sx, x.Weight, now) {
				chosen = y
			}
			decisions.score.Inc()
		}
	}
	st := statsOf(snap, chosen)
	if st == nil {
		decisions.noNode.Inc()
		return Picked{}, ErrNoNode
	}
	chosen.st = st
	st.inflight.Add(1)
	st.picks.Add(1)
	st.picked.Inc()
	st.lastPick.Store(now)
	return Picked{Node: chosen, start: now, b: b}, nil
}

func statsOf(snap *snapshot, n Node) *stats {
	if n.st != nil {
		return n.st
	}
	return snap.byAddr[n.Addr]
}

// claimProbe reports whether st is due a probe and, if so, claims it so that concurrent
// picks do not all probe the same node.
func (b *P2C) claimProbe(st *stats, now int64) bool {
	if b.o.probe <= 0 {
		return false
	}
	last := st.lastPick.Load()
	return now-last >= int64(b.o.probe) && st.lastPick.CompareAndSwap(last, now)
}

func (b *P2C) rand() uint64 {
	if !b.o.seeded {
		return rand.Uint64()
	}
	// splitmix64 over an atomic counter: reproducible, lock-free.
	z := b.rng.Add(0x9e3779b97f4a7c15)
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

type costFunc func(b *P2C, st *stats, weight float64, now int64) float64

const lagEpsilon = float64(100 * time.Microsecond)

// redlineCost is the cost described in the package doc; lower is better.
func redlineCost(b *P2C, st *stats, weight float64, now int64) float64 {
	c := (st.lagNS() + lagEpsilon) * float64(st.inflight.Load()+1)
	c *= cpuFactor(st.cpu.Load())
	return c / (max(st.successF(), 0.01) * weightOf(weight) * b.warm(st, now))
}

func weightOf(w float64) float64 {
	if w <= 0 {
		return 1
	}
	return w
}

// cpuFactor is 1 + (cpu/1000)^8: 1.00 at 500‰, 1.17 at 800‰, 1.43 at 900‰, 2 at 1000‰
// (unknown CPU counts as 0). It is smooth, so CPU noise around a threshold cannot flip
// choices, and it barely moves below 700‰, so a node that is slow but idle is not
// preferred over a busy fast one.
func cpuFactor(cpu int64) float64 {
	if cpu <= 0 {
		return 1
	}
	u := float64(min(cpu, 1000)) / 1000
	u *= u // ^2
	u *= u // ^4
	u *= u // ^8
	return 1 + u
}

// warm is the slow-start factor of a node: 0.1 when it appears, 1 after WarmUp.
func (b *P2C) warm(st *stats, now int64) float64 {
	if !st.warming {
		return 1
	}
	age := float64(now-st.added) / float64(b.o.warmUp)
	if age >= 1 {
		return 1
	}
	return max(0.1, age)
}

// Done reports the end of the call: err as returned (nil on success; a cancelled call is
// not counted) and the CPU the server reported in per mille (negative when it sent none).
// It must be called exactly once per Picked.
func (p Picked) Done(err error, cpu int64) {
	st := p.Node.st
	if st == nil {
		return
	}
	st.inflight.Add(-1)
	failed := false
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return
		}
		switch errs.Code(err) {
		case codes.Canceled:
			return
		case codes.Unavailable, codes.ResourceExhausted, codes.Internal, codes.Unknown,
			codes.DeadlineExceeded, codes.DataLoss, codes.Aborted:
			failed = true
			st.fails.Add(1)
		}
	}
	now := p.b.o.clock.Now().UnixNano()
	rtt := float64(max(now-p.start, 0))
	if cpu >= 0 {
		st.cpu.Store(min(cpu, 1000))
	}
	st.mu.Lock()
	lag := st.lagNS()
	w := 0.0 // weight of the old value
	if st.lastObs != 0 {
		w = math.Exp(-float64(max(now-st.lastObs, 0)) / float64(p.b.o.tau))
	}
	st.lastObs = now
	switch {
	case failed:
		lag = max(lag, rtt)
	case rtt > lag && !p.b.o.plainEWMA: // peak: a slow answer counts at once
		lag = rtt
	default:
		lag = lag*w + rtt*(1-w)
	}
	ok := 1.0
	if failed {
		ok = 0
	}
	st.lag.Store(math.Float64bits(lag))
	st.success.Store(math.Float64bits(st.successF()*w + ok*(1-w)))
	st.mu.Unlock()
}

// NodeState is the admin view of one node.
type NodeState struct {
	Addr     string  `json:"addr"`
	Lane     string  `json:"lane,omitempty"`
	Instance string  `json:"instance,omitempty"`
	Weight   float64 `json:"weight"`
	LagMS    float64 `json:"lag_ms"`
	Inflight int64   `json:"inflight"`
	Success  float64 `json:"success"`
	CPU      int64   `json:"cpu_permille"` // -1: not reported
	Warm     float64 `json:"warm"`
	Cost     float64 `json:"cost"`
	Picks    uint64  `json:"picks"`
	Fails    uint64  `json:"fails"`
	IdleMS   float64 `json:"idle_ms"` // since the last pick
}

// State returns a JSON-able snapshot of the nodes and their scores, sorted by address.
func (b *P2C) State() any { return b.nodeStates() }

func (b *P2C) nodeStates() []NodeState {
	snap := b.snap.Load()
	now := b.o.clock.Now().UnixNano()
	out := make([]NodeState, 0, len(snap.nodes))
	for _, n := range snap.nodes {
		st := n.st
		out = append(out, NodeState{
			Addr: n.Addr, Lane: n.Lane, Instance: n.Instance, Weight: weightOf(n.Weight),
			LagMS: st.lagNS() / 1e6, Inflight: st.inflight.Load(), Success: st.successF(),
			CPU: st.cpu.Load(), Warm: b.warm(st, now), Cost: b.o.cost(b, st, n.Weight, now) / 1e6,
			Picks: st.picks.Load(), Fails: st.fails.Load(),
			IdleMS: float64(now-st.lastPick.Load()) / 1e6,
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Addr < out[j].Addr })
	return out
}
