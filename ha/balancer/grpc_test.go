package balancer_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"

	"github.com/redline-dev/redline/ha/balancer"
	"github.com/redline-dev/redline/kit/meta"
	"github.com/redline-dev/redline/kit/metric"
	kitgrpc "github.com/redline-dev/redline/kit/transport/grpc"
)

type testBackend struct {
	testpb.UnimplementedTestServiceServer
	delay time.Duration
	calls atomic.Int64
}

func (b *testBackend) UnaryCall(ctx context.Context, _ *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	b.calls.Add(1)
	if b.delay > 0 { // the slow backend's handler; the test asserts counts, not times
		t := time.NewTimer(b.delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return &testpb.SimpleResponse{}, nil
}

// startBackends runs one kit gRPC server per delay, each reporting cpu as its CPU.
func startBackends(t *testing.T, cpu int64, delays ...time.Duration) ([]*testBackend, []resolver.Address) {
	t.Helper()
	var backends []*testBackend
	var addrs []resolver.Address
	for i, d := range delays {
		b := &testBackend{delay: d}
		srv := kitgrpc.NewServer(fmt.Sprint("backend", i), kitgrpc.WithoutDefaults(),
			kitgrpc.Middleware(balancer.ReportCPU(func() int64 { return cpu })))
		testpb.RegisterTestServiceServer(srv.Server, b)
		if err := srv.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = srv.Stop(ctx)
		})
		backends = append(backends, b)
		addrs = append(addrs, balancer.WithNode(resolver.Address{Addr: srv.Endpoint()}, balancer.Node{Weight: 1}))
	}
	return backends, addrs
}

func dial(t *testing.T, scheme string, addrs []resolver.Address, serviceConfig string) (testpb.TestServiceClient, string) {
	t.Helper()
	r := manual.NewBuilderWithScheme(scheme)
	r.InitialState(resolver.State{Addresses: addrs})
	target := scheme + ":///backends"
	cc, err := grpc.NewClient(target, grpc.WithResolvers(r),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultServiceConfig(serviceConfig))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return testpb.NewTestServiceClient(cc), target
}

func channelState(target string) (balancer.ChannelState, bool) {
	for _, c := range balancer.State().([]balancer.ChannelState) {
		if c.Target == target {
			return c, true
		}
	}
	return balancer.ChannelState{}, false
}

// warmUp calls until the channel's picker has want ready nodes (connections come up one
// by one), then zeroes the backends' counters.
func warmUp(t *testing.T, client testpb.TestServiceClient, target string, want int, backends []*testBackend) {
	t.Helper()
	for i := 0; ; i++ {
		if _, err := client.UnaryCall(context.Background(), &testpb.SimpleRequest{}, grpc.WaitForReady(true)); err != nil {
			t.Fatal(err)
		}
		if c, ok := channelState(target); ok && len(c.Nodes) == want {
			break
		}
		if i > 10000 {
			t.Fatalf("channel %s never had %d ready nodes", target, want)
		}
	}
	for _, b := range backends {
		b.calls.Store(0)
	}
}

func hammer(t *testing.T, client testpb.TestServiceClient, workers, calls int) {
	t.Helper()
	var wg sync.WaitGroup
	errc := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			for range calls {
				if _, err := client.UnaryCall(context.Background(), &testpb.SimpleRequest{}); err != nil {
					errc <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
}

const p2cConfig = `{"loadBalancingConfig":[{"redline_p2c":{}}]}`

// TestGRPCSelectedAndSpreads: the service config selects redline_p2c, which spreads
// calls over three equal backends and reads the CPU trailer they send.
func TestGRPCSelectedAndSpreads(t *testing.T) {
	backends, addrs := startBackends(t, 420, 0, 0, 0)
	client, target := dial(t, "p2cspread", addrs, p2cConfig)
	warmUp(t, client, target, 3, backends)
	hammer(t, client, 8, 75)
	for i, b := range backends {
		if n := b.calls.Load(); n < 600*15/100 {
			t.Errorf("backend %d got %d of 600 calls; want ≥ 15%%", i, n)
		}
	}
	c, _ := channelState(target)
	for _, n := range c.Nodes {
		if n.CPU != 420 {
			t.Errorf("node %s cpu = %d; want 420 from the %s trailer", n.Addr, n.CPU, balancer.CPUKey)
		}
	}
}

// TestGRPCPicksByInstance: the gRPC policy takes the service from the channel's target
// and the instance from WithNode, and counts each call's pick under them: a node without
// an instance under the service's name.
func TestGRPCPicksByInstance(t *testing.T) {
	backends, addrs := startBackends(t, 420, 0, 0)
	addrs[0] = balancer.WithNode(resolver.Address{Addr: addrs[0].Addr}, balancer.Node{Instance: "picked-2", Weight: 1})
	client, target := dial(t, "p2cpicks", addrs, p2cConfig) // target p2cpicks:///backends
	warmUp(t, client, target, 2, backends)
	named, unnamed := pickCount(t, "backends", "picked-2"), pickCount(t, "backends", "backends")
	hammer(t, client, 4, 50)
	if got, want := pickCount(t, "backends", "picked-2")-named, backends[0].calls.Load(); got != float64(want) || want == 0 {
		t.Errorf("picks_total{service=backends,instance=picked-2} += %v; want the %d calls of its backend (> 0)", got, want)
	}
	if got, want := pickCount(t, "backends", "backends")-unnamed, backends[1].calls.Load(); got != float64(want) || want == 0 {
		t.Errorf("picks_total{service=backends,instance=backends} += %v; want the %d calls of the unnamed backend (> 0)", got, want)
	}
	c, _ := channelState(target)
	var instances []string
	for _, n := range c.Nodes {
		instances = append(instances, n.Instance)
	}
	if !slices.Contains(instances, "picked-2") {
		t.Errorf("channel state instances = %q; want picked-2 among them", instances)
	}
}

// pickCount reads redline_ha_balancer_picks_total{service,instance} from the process's
// registry: 0 before its first pick.
func pickCount(t *testing.T, service, instance string) float64 {
	t.Helper()
	mfs, err := metric.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "redline_ha_balancer_picks_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["service"] == service && labels["instance"] == instance {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// TestGRPCLanes: the lane from WithNode reaches the picker, baseline calls never reach the
// canary backend, canary calls reach only it, and a lane without backends falls back to the
// baseline ones.
func TestGRPCLanes(t *testing.T) {
	backends, addrs := startBackends(t, 420, 0, 0, 0)
	addrs[0] = balancer.WithNode(resolver.Address{Addr: addrs[0].Addr}, balancer.Node{Lane: "canary", Weight: 1})
	client, target := dial(t, "p2clanes", addrs, p2cConfig)
	canary := meta.WithLane(context.Background(), "canary")
	for i := 0; ; i++ { // the baseline warm-up cannot reach the canary backend: call it once
		if _, err := client.UnaryCall(canary, &testpb.SimpleRequest{}, grpc.WaitForReady(true)); err != nil {
			t.Fatal(err)
		}
		if c, ok := channelState(target); ok && len(c.Nodes) == 3 {
			break
		}
		if i > 10000 {
			t.Fatal("the channel never had 3 ready nodes")
		}
	}
	for _, b := range backends {
		b.calls.Store(0)
	}
	calls := func(ctx context.Context, n int) {
		for range n {
			if _, err := client.UnaryCall(ctx, &testpb.SimpleRequest{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	calls(context.Background(), 100)
	if n := backends[0].calls.Load(); n != 0 {
		t.Errorf("the canary backend served %d baseline calls; want 0", n)
	}
	calls(canary, 50)
	if n := backends[0].calls.Load(); n != 50 {
		t.Errorf("the canary backend served %d of 50 canary calls", n)
	}
	calls(meta.WithLane(context.Background(), "blue"), 50)
	if n := backends[0].calls.Load(); n != 50 {
		t.Errorf("lane blue reached the canary backend (%d calls); want a fallback to baseline", n-50)
	}
	if n := backends[1].calls.Load() + backends[2].calls.Load(); n != 150 {
		t.Errorf("baseline backends served %d calls; want 150 (100 baseline + 50 blue fallbacks)", n)
	}
	c, _ := channelState(target)
	for _, n := range c.Nodes {
		if want := n.Addr == addrs[0].Addr; (n.Lane == "canary") != want {
			t.Errorf("node %s lane = %q; want canary only on %s (from WithNode)", n.Addr, n.Lane, addrs[0].Addr)
		}
	}
}

// TestGRPCAvoidsSlowBackend: a backend whose handler takes 20 ms while the others answer
// at once gets a small share of the calls.
func TestGRPCAvoidsSlowBackend(t *testing.T) {
	backends, addrs := startBackends(t, 300, 20*time.Millisecond, 0, 0)
	client, target := dial(t, "p2cslow", addrs, p2cConfig)
	warmUp(t, client, target, 3, backends)
	hammer(t, client, 8, 50)
	slow := backends[0].calls.Load()
	t.Logf("calls: slow %d, fast %d and %d", slow, backends[1].calls.Load(), backends[2].calls.Load())
	if slow >= 400/10 {
		t.Errorf("slow backend got %d of 400 calls; want < 10%% (fair share 33%%)", slow)
	}
}

// TestGRPCSubset: subsetSize in the policy's config limits the channel to that many
// backends.
func TestGRPCSubset(t *testing.T) {
	backends, addrs := startBackends(t, 100, 0, 0, 0, 0)
	client, target := dial(t, "p2csubset", addrs, `{"loadBalancingConfig":[{"redline_p2c":{"subsetSize":2,"clientId":1}}]}`)
	warmUp(t, client, target, 2, backends)
	hammer(t, client, 4, 50)
	used := 0
	for _, b := range backends {
		if b.calls.Load() > 0 {
			used++
		}
	}
	if c, _ := channelState(target); used != 2 || len(c.Nodes) != 2 {
		t.Fatalf("backends used = %d, nodes in state = %d; want 2 and 2", used, len(c.Nodes))
	}
}
