package retry

import (
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/redline-dev/redline/ha/sim"
	"github.com/redline-dev/redline/kit/errs"
	"github.com/redline-dev/redline/kit/middleware"
)

var errDown = errs.New(codes.Unavailable, errs.ReasonUnavailable, "backend down")

// TestSimBudget: an open-model client at 1,000 rps against a backend that fails half its
// requests for 5 s. Every retryable failure asks OnFailure; retries must stay within 10% of
// the calls plus the floor (3/s) and the burst (10) saved up before the failures began.
func TestSimBudget(t *testing.T) {
	const (
		rps     = 1000
		burstAt = 2 * time.Second
		burstT  = 5 * time.Second
		end     = 10 * time.Second
	)
	tests := []struct {
		name  string
		opts  []Option
		limit bool // retries are bounded by the budget
	}{
		{name: "budget", limit: true},
		{name: "no budget (control)", opts: []Option{WithBudget(-1, 0, 0)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := sim.New(5)
			r := New(append([]Option{WithClock(s), WithSeed(1)}, tt.opts...)...)
			inBurst := func() bool { e := s.Elapsed(); return e >= burstAt && e < burstAt+burstT }
			var calls, retries, failed, sent int
			service := sim.LogNormal{Median: 5 * time.Millisecond, Sigma: 0.3}
			var try func(n int)
			try = func(n int) {
				sent++
				s.After(service.Sample(s.Rand()), func() {
					if !inBurst() || s.Rand().Float64() >= 0.5 {
						return
					}
					d := r.OnFailure(s.Now(), Failure{Operation: "op", Attempt: n, Err: errDown})
					if !d.Retry {
						if inBurst() {
							failed++
						}
						return
					}
					if inBurst() {
						retries++
					}
					s.After(d.Delay, func() { try(n + 1) })
				})
			}
			arrivals := sim.Exp{Mean: time.Second / rps}
			var arrive func()
			arrive = func() {
				r.Begin()
				if inBurst() {
					calls++
				}
				try(0)
				if s.Elapsed() < end {
					s.After(arrivals.Sample(s.Rand()), arrive)
				}
			}
			s.After(0, arrive)
			s.Run(sim.Start.Add(end+time.Second), 1_000_000)
			bound := DefaultBudgetRatio*float64(calls) + DefaultBudgetFloor*burstT.Seconds() + DefaultBudgetBurst
			t.Logf("burst: %d calls, %d retries (%.1f%%; bound %.0f), %d calls failed for good, %d attempts sent in all",
				calls, retries, 100*float64(retries)/float64(calls), bound, failed, sent)
			if tt.limit && float64(retries) > bound {
				t.Errorf("retries during the burst = %d; want ≤ 10%% of %d calls + floor + burst = %.0f", retries, calls, bound)
			}
			if !tt.limit && float64(retries) < 2*bound {
				t.Errorf("control retried %d times; want far above the budget's %.0f, or the test proves nothing", retries, bound)
			}
			if got := r.Stats("refuse", ReasonBudget); tt.limit && got == 0 {
				t.Errorf("no refusal counted with reason budget")
			}
		})
	}
}

// TestSimChainStop: X → A → B → C, every edge with its own Retrier, C failing every
// request with a retryable error. Chain stop keeps the requests C sees at about 1.1× what X
// sends; the control, with neither chain stop nor budget, is the 3³ = 27× storm.
func TestSimChainStop(t *testing.T) {
	const (
		rps = 1000
		dur = 3 * time.Second
	)
	noBudget := WithBudget(-1, 0, 0)
	tests := []struct {
		name     string
		opts     []Option
		min, max float64 // bounds on C requests / X calls
	}{
		// B retries C within its budget; A and X are told not to retry.
		{name: "chain stop and budget", min: 1, max: 1.1 + (DefaultBudgetFloor*(dur.Seconds()+1)+DefaultBudgetBurst)/(rps*dur.Seconds())},
		// Budgets alone compound per layer: 1.1³.
		{name: "budget only", opts: []Option{WithChainStop(false)}, min: 1.2, max: 1.4},
		// Chain stop alone: only B retries, three attempts.
		{name: "chain stop only", opts: []Option{noBudget}, min: 2.9, max: 3},
		{name: "neither (control)", opts: []Option{WithChainStop(false), noBudget}, min: 26, max: 27},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := sim.New(9)
			var edges [3]*Retrier
			for i := range edges {
				edges[i] = New(append([]Option{WithClock(s), WithSeed(uint64(i))}, tt.opts...)...)
			}
			var xCalls, cRequests int
			// serve runs node (1 = A, 2 = B, 3 = C) for a request whose meta Attempt is attempt.
			var serve func(node, attempt int, done func(error))
			// call is node e's client to node e+1, serving a request with inbound attempt.
			call := func(e, inbound int, done func(error)) {
				r := edges[e]
				r.Begin()
				var try func(n int)
				try = func(n int) {
					// Attempt 0 carries the inbound attempt on (the Metadata middleware
					// propagates the ctx's meta); retry n carries n.
					serve(e+1, max(inbound, n), func(err error) {
						if err == nil {
							done(nil)
							return
						}
						d := r.OnFailure(s.Now(), Failure{Operation: "op", Attempt: n, Inbound: inbound, Err: err})
						if !d.Retry {
							done(d.Err)
							return
						}
						s.After(d.Delay, func() { try(n + 1) })
					})
				}
				try(0)
			}
			serve = func(node, attempt int, done func(error)) {
				if node == 3 {
					cRequests++
					s.After(time.Millisecond, func() { done(errDown) })
					return
				}
				call(node, attempt, done)
			}
			s.Every(time.Second/rps, sim.Start.Add(dur), func() {
				xCalls++
				call(0, 0, func(error) {})
			})
			s.Run(sim.Start.Add(dur+10*time.Second), 10_000_000)
			ratio := float64(cRequests) / float64(xCalls)
			t.Logf("X sent %d calls, C got %d requests: %.3f×; retries by edge X→A %d, A→B %d, B→C %d",
				xCalls, cRequests, ratio, edges[0].Stats("retry", ""), edges[1].Stats("retry", ""), edges[2].Stats("retry", ""))
			if ratio < tt.min || ratio > tt.max {
				t.Errorf("C requests / X calls = %.3f; want in [%.3f, %.3f]", ratio, tt.min, tt.max)
			}
		})
	}
}

// server is a simulated backend: workers serve a FIFO queue; a cancelled request leaves
// the queue, or frees its worker at once.
type server struct {
	s       *sim.Sim
	dist    sim.Dist
	workers int
	busy    int
	queue   []*job
}

type job struct {
	srv                          *server
	running, finished, cancelled bool
	done                         func()
}

func (sv *server) submit(done func()) *job {
	j := &job{srv: sv, done: done}
	if sv.busy < sv.workers {
		sv.start(j)
	} else {
		sv.queue = append(sv.queue, j)
	}
	return j
}

func (sv *server) start(j *job) {
	sv.busy++
	j.running = true
	sv.s.After(sv.dist.Sample(sv.s.Rand()), func() {
		if j.cancelled {
			return
		}
		j.finished = true
		sv.release()
		j.done()
	})
}

func (sv *server) release() {
	sv.busy--
	for len(sv.queue) > 0 {
		j := sv.queue[0]
		sv.queue = sv.queue[1:]
		if !j.cancelled {
			sv.start(j)
			return
		}
	}
}

func (j *job) cancel() {
	if j.cancelled || j.finished {
		return
	}
	j.cancelled = true
	if j.running {
		j.srv.release()
	}
}

// TestSimHedging: 1,000 rps over 10 servers of 4 workers each (about half busy), service
// time LogNormal(10 ms, 0.3) of which 5% take 20× longer. Hedging after the observed p95
// must cut p99 at least in half, for at most 1.1× the backend requests.
func TestSimHedging(t *testing.T) {
	const (
		rps  = 1000
		dur  = 20 * time.Second
		op   = "/note.v1.Note/GetNote"
		warm = 2 * time.Second // the hedger learns the p95 first; measure after
	)
	type outcome struct {
		p50, p99        time.Duration
		calls, requests int
		hedges          int64
	}
	run := func(opts ...Option) outcome {
		s := sim.New(13)
		r := New(append([]Option{WithClock(s), WithSeed(2), WithIdempotent(middleware.Operations(op))}, opts...)...)
		dist := sim.Tail{Base: sim.LogNormal{Median: 10 * time.Millisecond, Sigma: 0.3}, P: 0.05, Factor: 20}
		servers := make([]*server, 10)
		for i := range servers {
			servers[i] = &server{s: s, dist: dist, workers: 4}
		}
		var lat sim.Latencies
		var out outcome
		arrivals := sim.Exp{Mean: time.Second / rps}
		var arrive func()
		arrive = func() {
			start := s.Now()
			measured := s.Elapsed() >= warm
			r.Begin()
			if measured {
				out.calls++
			}
			first := s.Rand().IntN(len(servers))
			jobs := make([]*job, 0, 2)
			won := false
			var hedgeAt time.Duration
			send := func(srv int) {
				if measured {
					out.requests++
				}
				n := len(jobs)
				jobs = append(jobs, nil)
				jobs[n] = servers[srv].submit(func() {
					if won {
						return
					}
					won = true
					if n == 0 {
						r.Observe(op, s.Now().Sub(start))
					} else {
						r.Observe(op, hedgeAt) // the first attempt lost: a lower bound, as Client records
					}
					for i, j := range jobs {
						if i != n {
							j.cancel()
						}
					}
					if measured {
						lat.Add(s.Now().Sub(start))
					}
				})
			}
			send(first)
			if delay, ok := r.HedgeDelay(op); ok {
				s.After(delay, func() {
					if won || !r.TryHedge(s.Now(), "", op, 1) {
						return
					}
					hedgeAt = delay
					send((first + 1 + s.Rand().IntN(len(servers)-1)) % len(servers))
				})
			}
			if s.Elapsed() < dur {
				s.After(arrivals.Sample(s.Rand()), arrive)
			}
		}
		s.After(0, arrive)
		s.Run(sim.Start.Add(dur+10*time.Second), 10_000_000)
		out.p50, out.p99, out.hedges = lat.Quantile(0.5), lat.Quantile(0.99), r.Stats("hedge", "")
		d, _ := r.HedgeDelay(op)
		t.Logf("p50 %v, p99 %v; %d calls, %d backend requests (%.3f×), %d hedges, hedge delay %v",
			out.p50, out.p99, out.calls, out.requests, float64(out.requests)/float64(out.calls), out.hedges, d)
		return out
	}
	plain := run()
	hedged := run(WithHedging(middleware.Operations(op)))
	if ratio := float64(plain.p99) / float64(hedged.p99); ratio < 2 {
		t.Errorf("p99 without hedging %v, with %v: %.2f× lower; want ≥ 2×", plain.p99, hedged.p99, ratio)
	}
	if load := float64(hedged.requests) / float64(hedged.calls); load > 1.1 {
		t.Errorf("backend requests / calls with hedging = %.3f; want ≤ 1.1", load)
	}
}
