package bulkhead

import (
	"context"
	"encoding/json"
	"errors"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"

	"github.com/redline-dev/redline/ha/clock"
	"github.com/redline-dev/redline/kit/errs"
	"github.com/redline-dev/redline/kit/middleware"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// dependencies is a fake downstream: calls to a blocked service wait until it is released.
type dependencies struct {
	entered chan string // one value per call that reached the dependency
	release chan struct{}
	blocked string
}

func (d *dependencies) handler(ctx context.Context, _ any) (any, error) {
	svc := middleware.FromContext(ctx).Service
	d.entered <- svc
	if svc == d.blocked {
		<-d.release
	}
	return svc, nil
}

func call(h middleware.Handler, svc string) error {
	ctx := middleware.NewContext(context.Background(), &middleware.Info{Kind: middleware.GRPC, Side: middleware.Client,
		Service: svc, Operation: "/" + svc + ".v1." + svc + "/Get"})
	_, err := h(ctx, nil)
	return err
}

// TestSlowDependencyCannotTakeEveryWorker runs a pool of workers that each call dependency
// A or B. A hangs. Without a bulkhead every worker ends up stuck in A and B starves; with
// one, A holds exactly its limit of workers, A's further callers are refused at once, and
// every B call completes while A is still hung.
func TestSlowDependencyCannotTakeEveryWorker(t *testing.T) {
	const workers, jobs, limit = 8, 100, 3
	cases := []struct {
		name      string
		bulkhead  bool
		wantStuck int // workers inside A once the pool stops making progress
	}{
		{"without bulkhead B starves", false, workers},
		{"with bulkhead B proceeds", true, limit},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dep := &dependencies{entered: make(chan string, jobs), release: make(chan struct{}), blocked: "A"}
			h := middleware.Handler(dep.handler)
			b := New(Limit(limit), Clock(clock.NewFake(time.Time{})))
			if c.bulkhead {
				h = Client(b)(h)
			}
			queue := make(chan string, jobs)
			for i := range jobs {
				queue <- map[bool]string{true: "A", false: "B"}[i%2 == 0]
			}
			close(queue)
			type result struct {
				svc string
				err error
			}
			results := make(chan result, jobs)
			var wg sync.WaitGroup
			for range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for svc := range queue {
						results <- result{svc, call(h, svc)}
					}
				}()
			}

			// Wait until wantStuck workers are inside A. Without a bulkhead that is every
			// worker, so the pool has stopped: what is in results now is all it will do.
			inA := 0
			for inA < c.wantStuck {
				if <-dep.entered == "A" {
					inA++
				}
			}
			doneB, rejectedA := 0, 0
			count := func(r result) {
				switch {
				case r.svc == "B" && r.err == nil:
					doneB++
				case r.svc == "A" && errs.Reason(r.err) == ReasonFull:
					rejectedA++
				default:
					t.Fatalf("%s: unexpected result %v", r.svc, r.err)
				}
			}
			if c.bulkhead {
				// Every job but the limit hung in A finishes while A still hangs.
				for range jobs - limit {
					count(<-results)
				}
			}
			for len(results) > 0 {
				count(<-results)
			}
			for len(dep.entered) > 0 {
				if <-dep.entered == "A" {
					inA++
				}
			}
			if c.bulkhead {
				if doneB != jobs/2 || rejectedA != jobs/2-limit || inA != limit {
					t.Fatalf("while A hangs: B done %d, A rejected %d, A in flight %d; want %d, %d, %d",
						doneB, rejectedA, inA, jobs/2, jobs/2-limit, limit)
				}
				st := b.State().(State)
				if cs := st.Compartments[0]; cs.Key != "A" || cs.InFlight != limit || cs.Rejected != uint64(jobs/2-limit) {
					t.Fatalf("State A = %+v", cs)
				}
			} else if doneB >= jobs/2 || inA != workers || rejectedA != 0 {
				t.Fatalf("without bulkhead: B done %d, A in flight %d; want B starved (< %d), all %d workers in A",
					doneB, inA, jobs/2, workers)
			}
			close(dep.release)
			wg.Wait()
			close(results)
			for r := range results {
				if r.err != nil && errs.Reason(r.err) != ReasonFull {
					t.Fatalf("%s after release: %v", r.svc, r.err)
				}
			}
			if c.bulkhead {
				// A's slots are back.
				if st := b.State().(State); st.Compartments[0].InFlight != 0 {
					t.Fatalf("A in flight after release = %d; want 0", st.Compartments[0].InFlight)
				}
			}
		})
	}
}

func TestServerPerRoute(t *testing.T) {
	b := New(Limit(1), Limits(map[string]int{"GET /v1/feed": 2, "GET /v1/free": 0}))
	entered := make(chan struct{}, 8)
	release := make(chan struct{})
	h := Server(b)(func(ctx context.Context, _ any) (any, error) {
		if op := middleware.FromContext(ctx).Operation; op != "GET /v1/fast" && op != "GET /v1/free" {
			entered <- struct{}{}
			<-release
		}
		return nil, nil
	})
	serve := func(op string) error {
		ctx := middleware.NewContext(context.Background(), &middleware.Info{Kind: middleware.HTTP, Side: middleware.Server, Operation: op})
		_, err := h(ctx, nil)
		return err
	}
	rejects := decisions.WithLabelValues("GET /v1/slow", "reject", "full")
	before := testutil.ToFloat64(rejects)
	var wg sync.WaitGroup
	hold := func(op string) {
		wg.Add(1)
		go func() { defer wg.Done(); _ = serve(op) }()
		<-entered
	}
	hold("GET /v1/slow")
	hold("GET /v1/feed")
	hold("GET /v1/feed")
	cases := []struct {
		op     string
		reject bool
	}{
		{"GET /v1/slow", true}, // limit 1, held
		{"GET /v1/feed", true}, // override 2, both held
		{"GET /v1/fast", false},
		{"GET /v1/free", false}, // unlimited
	}
	for _, c := range cases {
		err := serve(c.op)
		if !c.reject {
			if err != nil {
				t.Errorf("serve(%q) = %v; want nil", c.op, err)
			}
			continue
		}
		e := errs.From(err)
		if err == nil || e.Code != codes.ResourceExhausted || e.Reason != ReasonFull || e.Retryable || e.HTTPStatus() != 429 {
			t.Errorf("serve(%q) = %v; want ResourceExhausted %s, not retryable", c.op, err, ReasonFull)
		}
	}
	close(release)
	wg.Wait()
	if err := serve("GET /v1/slow"); err != nil {
		t.Fatalf("after release: %v", err)
	}
	if got := testutil.ToFloat64(rejects) - before; got != 1 {
		t.Fatalf("reject counter went up by %v; want 1", got)
	}
}

// waitFor yields until cond holds: a handoff between goroutines, not a timed wait.
func waitFor(cond func() bool) {
	for !cond() {
		runtime.Gosched()
	}
}

func TestWait(t *testing.T) {
	cases := []struct {
		name     string
		maxWait  time.Duration
		finish   func(release func(), cancel context.CancelFunc) // what ends the wait
		wantCode codes.Code
		wantWhy  string
	}{
		{"slot freed", time.Hour, func(release func(), _ context.CancelFunc) { release() }, codes.OK, ""},
		{"ctx cancelled", time.Hour, func(_ func(), cancel context.CancelFunc) { cancel() }, codes.Canceled, ""},
		{"max wait passes", time.Millisecond, func(func(), context.CancelFunc) {}, codes.ResourceExhausted, ReasonFull},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := New(Limit(1), MaxWait(c.maxWait))
			holder, err := b.Acquire(context.Background(), "dep")
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() {
				p, err := b.Acquire(ctx, "dep")
				if err == nil {
					p.Release()
				}
				done <- err
			}()
			waitFor(func() bool {
				return b.State().(State).Compartments[0].Waiting == 1 || len(done) == 1
			})
			released := false
			c.finish(func() { holder.Release(); released = true }, cancel)
			err = <-done
			if errs.Code(err) != c.wantCode || errs.Reason(err) != c.wantWhy && c.wantWhy != "" {
				t.Fatalf("Acquire after %s = %v; want %v %s", c.name, err, c.wantCode, c.wantWhy)
			}
			if !released {
				holder.Release()
			}
		})
	}
}

func TestExpiredCtxDoesNotWait(t *testing.T) {
	b := New(Limit(1), MaxWait(time.Hour))
	p, _ := b.Acquire(context.Background(), "dep")
	defer p.Release()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := b.Acquire(ctx, "dep"); !errors.Is(errs.From(err), errs.From(context.Canceled)) {
		t.Fatalf("Acquire with a done ctx = %v; want Canceled", err)
	}
}

func TestState(t *testing.T) {
	clk := clock.NewFake(time.Time{})
	b := New(Limit(1), Clock(clk))
	p, _ := b.Acquire(context.Background(), "x")
	_, _ = b.Acquire(context.Background(), "x")
	p.Release()
	raw, err := json.Marshal(b.State())
	if err != nil {
		t.Fatal(err)
	}
	want := `{"limit":1,"max_wait":"0s","compartments":[{"key":"x","limit":1,"in_flight":0,"waiting":0,"admitted":1,"rejected":1,"last_full":"2026-01-01T00:00:00Z"}]}`
	if string(raw) != want {
		t.Fatalf("State() = %s; want %s", raw, want)
	}
}

func BenchmarkAcquire(b *testing.B) {
	bh := New()
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			p, err := bh.Acquire(ctx, "note")
			if err != nil {
				b.Fatal(err)
			}
			p.Release()
		}
	})
}

func BenchmarkClient(b *testing.B) {
	h := Client(New())(func(context.Context, any) (any, error) { return nil, nil })
	ctx := middleware.NewContext(context.Background(), &middleware.Info{Kind: middleware.GRPC, Side: middleware.Client, Service: "note"})
	b.ReportAllocs()
	for b.Loop() {
		_, _ = h(ctx, nil)
	}
}
