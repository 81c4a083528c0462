package quota

import (
	"context"
	"fmt"
	"math"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc/codes"

	quotav1 "github.com/redline-dev/redline/api/quota/v1"
	"github.com/redline-dev/redline/ha/clock"
	"github.com/redline-dev/redline/kit/errs"
	"github.com/redline-dev/redline/kit/log"
	"github.com/redline-dev/redline/kit/middleware"
	kitgrpc "github.com/redline-dev/redline/kit/transport/grpc"
)

const redisAddr = "127.0.0.1:6379"

// redisStore returns a store on the real Redis under a prefix of the test's own, removed
// afterwards. It fails, naming the script that starts Redis, when Redis is down; it skips
// only when REDLINE_SKIP_INTEGRATION=1.
func redisStore(t *testing.T) *RedisStore {
	t.Helper()
	if os.Getenv("REDLINE_SKIP_INTEGRATION") == "1" {
		t.Skip("REDLINE_SKIP_INTEGRATION=1")
	}
	rdb := redis.NewClient(&redis.Options{Addr: redisAddr})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		_ = rdb.Close()
		t.Fatalf("Redis at %s is not reachable (%v): start it with `bash scripts/services.sh` (make services), or set REDLINE_SKIP_INTEGRATION=1", redisAddr, err)
	}
	prefix := fmt.Sprintf("test-quota-%s-%d", t.Name(), time.Now().UnixNano())
	s := NewRedisStore(rdb, prefix)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		keys, err := rdb.Keys(ctx, "{"+prefix+"}:*").Result()
		if err == nil && len(keys) > 0 {
			err = rdb.Del(ctx, keys...).Err()
		}
		if err != nil {
			t.Errorf("cleaning up %s: %v", prefix, err)
		}
		_ = rdb.Close()
	})
	return s
}

// deadRedisStore is a store on a port where nothing listens.
func deadRedisStore(t *testing.T) *RedisStore {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	rdb := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: 100 * time.Millisecond, MaxRetries: -1, DialerRetries: 1})
	t.Cleanup(func() { _ = rdb.Close() })
	return NewRedisStore(rdb, "dead")
}

// serveGRPC runs s on a kit gRPC server on loopback and returns a client of it.
func serveGRPC(t *testing.T, s *Service) quotav1.QuotaClient {
	t.Helper()
	srv := kitgrpc.NewServer("quota", kitgrpc.Logger(log.Discard()))
	quotav1.RegisterQuotaServer(srv, s)
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Stop(ctx)
	})
	conn, err := kitgrpc.NewClient(srv.Endpoint(), kitgrpc.ClientLogger(log.Discard()),
		kitgrpc.ClientDeadline(middleware.DeadlineConfig{Default: 5 * time.Second}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return quotav1.NewQuotaClient(conn)
}

// driver runs clients on a fake clock in 10 ms steps: each offers a steady, evenly spaced
// rate and renews when its Renew said, or at once when its bucket ran dry (the
// background loop's wake-up).
type driver struct {
	clk     *clock.Fake
	clients []*Client
	rates   []float64
	credit  []float64
	nextAt  []time.Time
}

func (d *driver) run(t *testing.T, resource string, dur time.Duration) {
	t.Helper()
	const step = 10 * time.Millisecond
	if d.credit == nil {
		d.credit, d.nextAt = make([]float64, len(d.clients)), make([]time.Time, len(d.clients))
	}
	end := d.clk.Now().Add(dur)
	for d.clk.Now().Before(end) {
		now := d.clk.Now()
		for i, c := range d.clients {
			d.credit[i] += d.rates[i] * step.Seconds()
			for ; d.credit[i] >= 1; d.credit[i]-- {
				c.Allow(resource)
			}
			select {
			case <-c.wake:
				d.nextAt[i] = now
			default:
			}
			if !now.Before(d.nextAt[i]) {
				next, _ := c.Renew(context.Background())
				d.nextAt[i] = now.Add(next)
			}
		}
		d.clk.Advance(step)
	}
}

// TestRedisFairness is the fairness test against real Redis, through a real gRPC
// server: global 150/s, three clients offering 10, 50 and 200 requests a second; the
// grants converge to 10, 50 and 90 within two lease periods. Lease expiry is judged by the
// service's clock, a fake one here, so the run is deterministic; Redis holds the state.
func TestRedisFairness(t *testing.T) {
	const ttl = 2 * time.Second
	clk := clock.NewFake(time.Time{})
	svc, err := NewService(redisStore(t), map[string]Resource{"search": {Limit: 150, LeaseTTL: ttl}},
		ServiceClock(clk), ServiceLogger(log.Discard()))
	if err != nil {
		t.Fatal(err)
	}
	api := serveGRPC(t, svc)
	d := &driver{clk: clk, rates: []float64{10, 50, 200}}
	for i := range d.rates {
		c, err := NewClient(api, ID(fmt.Sprintf("client-%d", i)), Clock(clk), Manual(), Headroom(1),
			Logger(log.Discard()), Policies(map[string]Policy{"search": {}}))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		d.clients = append(d.clients, c)
	}
	d.run(t, "search", 2*ttl)
	st, err := api.Status(context.Background(), &quotav1.StatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	want := []float64{10, 50, 90}
	cs := st.GetResources()[0].GetClients()
	if len(cs) != 3 {
		t.Fatalf("Status lists %d clients; want 3: %v", len(cs), st)
	}
	for i, c := range cs {
		u, _ := d.clients[i].Usage("search")
		t.Logf("%s: demand %.2f, granted %.2f (client's rate %.2f, %s)", c.GetClientId(), c.GetDemand(), c.GetGranted(), u.Rate, u.Mode)
		if math.Abs(c.GetGranted()-want[i]) > 0.02*want[i] || math.Abs(u.Rate-want[i]) > 0.02*want[i] {
			t.Errorf("%s after two lease periods: granted %.2f, client rate %.2f; want %v (±2%%)", c.GetClientId(), c.GetGranted(), u.Rate, want[i])
		}
	}
}

// TestRedisSharedByInstances: two service instances on one Redis serve concurrent
// clients; the optimistic transactions keep the grants within the limit.
func TestRedisSharedByInstances(t *testing.T) {
	store := redisStore(t)
	clk := clock.NewFake(time.Time{})
	var svcs []*Service
	for range 2 {
		s, err := NewService(store, map[string]Resource{"r": {Limit: 100}}, ServiceClock(clk), ServiceLogger(log.Discard()))
		if err != nil {
			t.Fatal(err)
		}
		svcs = append(svcs, s)
	}
	var wg sync.WaitGroup
	errc := make(chan error, 20*5)
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 5 {
				_, err := svcs[i%2].GetCapacity(context.Background(), &quotav1.GetCapacityRequest{
					ClientId: fmt.Sprintf("c%d", i), Resources: []*quotav1.ResourceRequest{rr("r", 30)}})
				if err != nil {
					errc <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatalf("GetCapacity: %v", err)
	}
	st, err := svcs[1].Status(context.Background(), &quotav1.StatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	r := st.GetResources()[0]
	if len(r.GetClients()) != 20 || r.GetGranted() > 100+1e-9 || r.GetGranted() < 50 {
		t.Fatalf("20 clients through 2 instances: %d clients, %.2f granted; want 20 clients, at most the limit 100", len(r.GetClients()), r.GetGranted())
	}
}

// TestRedisOutage: with Redis gone the service answers UNAVAILABLE, and its clients hold
// their leases, then use global/N, with no error to their callers; when Redis is back they
// get leases again.
func TestRedisOutage(t *testing.T) {
	t.Run("closed port", func(t *testing.T) {
		svc, err := NewService(deadRedisStore(t), map[string]Resource{"r": {Limit: 10}}, ServiceLogger(log.Discard()))
		if err != nil {
			t.Fatal(err)
		}
		_, err = svc.GetCapacity(context.Background(), &quotav1.GetCapacityRequest{ClientId: "a", Resources: []*quotav1.ResourceRequest{rr("r", 1)}})
		if e := errs.From(err); err == nil || e.Code != codes.Unavailable || e.Reason != ReasonStoreUnavailable {
			t.Fatalf("GetCapacity with Redis down = %v; want Unavailable %s", err, ReasonStoreUnavailable)
		}
		if _, err := svc.Status(context.Background(), &quotav1.StatusRequest{}); errs.Code(err) != codes.Unavailable {
			t.Fatalf("Status with Redis down = %v; want Unavailable", err)
		}
		if st := svc.State().(ServiceState); st.Error == "" {
			t.Fatalf("State with Redis down has no error: %+v", st)
		}
	})
	t.Run("clients fall back", func(t *testing.T) {
		live, dead := redisStore(t), deadRedisStore(t)
		store := &flipStore{}
		store.cur.Store(live)
		clk := clock.NewFake(time.Time{})
		const ttl = 2 * time.Second
		svc, err := NewService(store, map[string]Resource{"r": {Limit: 100, LeaseTTL: ttl}, "soft": {Limit: 100, LeaseTTL: ttl, FailOpen: true}},
			ServiceClock(clk), ServiceLogger(log.Discard()))
		if err != nil {
			t.Fatal(err)
		}
		api := Local(svc)
		d := &driver{clk: clk, rates: []float64{30, 200}}
		for i := range d.rates {
			c, err := NewClient(api, ID(fmt.Sprintf("c%d", i)), Clock(clk), Manual(), Logger(log.Discard()),
				Policies(map[string]Policy{"r": {}, "soft": {}}))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = c.Close() })
			d.clients = append(d.clients, c)
		}
		d.run(t, "r", 2*time.Second)
		lease := d.clients[1].State().(ClientState).Resources[0]
		if lease.Mode != ModeLease || lease.Clients != 2 {
			t.Fatalf("before the outage: %+v; want a lease among 2 clients", lease)
		}
		store.cur.Store(dead)
		d.run(t, "r", time.Second)
		u, _ := d.clients[1].Usage("r")
		if u.Mode != ModeHeld || u.Rate != lease.Rate {
			t.Fatalf("Redis down for 1 s: %+v; want the lease %v held", u, lease.Rate)
		}
		d.run(t, "r", ttl)
		for i, c := range d.clients {
			u, _ := c.Usage("r")
			if u.Mode != ModeFallback || u.Rate != 50 {
				t.Fatalf("client %d after its lease expired: %+v; want fallback at 100/2", i, u)
			}
			if soft, _ := c.Usage("soft"); soft.Mode != ModeFailOpen || !c.Allow("soft") {
				t.Fatalf("client %d, fail-open resource: %+v; want fail_open", i, soft)
			}
		}
		clk.Advance(time.Second) // the bucket refills to its burst
		var admitted int
		for range 100 {
			if d.clients[1].Allow("r") {
				admitted++
			}
		}
		if admitted != 13 {
			t.Fatalf("in fallback 100 calls at once admitted %d; want a full bucket: 250 ms of 50/s, 13", admitted)
		}
		store.cur.Store(live)
		d.run(t, "r", 2*time.Second)
		for i, c := range d.clients {
			if u, _ := c.Usage("r"); u.Mode != ModeLease {
				t.Fatalf("client %d after Redis returned: %+v; want lease", i, u)
			}
		}
	})
}
