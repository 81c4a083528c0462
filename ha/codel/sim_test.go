package codel_test

import (
	"math"
	"testing"
	"time"

	"github.com/redline-dev/redline/ha/codel"
	"github.com/redline-dev/redline/ha/shed"
	"github.com/redline-dev/redline/ha/sim"
	"github.com/redline-dev/redline/kit/meta"
)

// The model: one server with a fixed number of workers (its cores) and a FIFO run queue
// behind them, LogNormal service times, open-model Poisson clients with a 1 s deadline.
const (
	workers        = 20
	clientDeadline = time.Second
	cpuEvery       = 250 * time.Millisecond // what the real sampler does by default
	cpuAlpha       = 0.5
)

var service = sim.LogNormal{Median: 10 * time.Millisecond, Sigma: 0.3}

// capacity is workers / mean service time, in requests per second.
func capacity() float64 {
	mean := float64(service.Median) * math.Exp(service.Sigma*service.Sigma/2)
	return workers / (mean / float64(time.Second))
}

// server is the workers and their run queue. It tracks busy worker-time so the simulated
// CPU sampler can read usage the way the cgroup reader does.
type server struct {
	s        *sim.Sim
	busy     int
	runq     []func()
	busyNS   float64 // integral of busy workers over time
	lastMark time.Time
}

func (v *server) mark() {
	now := v.s.Now()
	v.busyNS += float64(v.busy) * float64(now.Sub(v.lastMark))
	v.lastMark = now
}

// submit runs a job of length d on a worker, after the jobs before it, then calls done.
func (v *server) submit(d time.Duration, done func()) {
	job := func() {
		v.mark()
		v.busy++
		v.s.After(d, func() {
			v.mark()
			v.busy--
			if len(v.runq) > 0 {
				next := v.runq[0]
				v.runq = v.runq[1:]
				next()
			}
			done()
		})
	}
	if v.busy < workers {
		job()
		return
	}
	v.runq = append(v.runq, job)
}

type phase struct {
	load float64 // × capacity
	dur  time.Duration
}

// outcome of one request.
type request struct {
	crit     meta.Criticality
	arrive   time.Duration // since sim.Start
	rejected bool
	rejectAt time.Duration
	done     bool
	latency  time.Duration // arrival to completion: queue wait + run queue + service
	doneAt   time.Duration
}

type mix func(r float64) meta.Criticality

func allCritical(float64) meta.Criticality { return meta.Critical }

// run drives phases of load through the server, with the admission queue and the shedder
// in front when control is set, and returns every request's outcome.
func run(t *testing.T, seed uint64, control bool, phases []phase, crit mix) []*request {
	t.Helper()
	s := sim.New(seed)
	srv := &server{s: s, lastMark: s.Now()}
	var end time.Duration
	for _, p := range phases {
		end += p.dur
	}

	var (
		q    *codel.Queue
		shd  *shed.Shedder
		cpu  float64
		last float64
	)
	if control {
		var err error
		shd, err = shed.New(shed.WithClock(s), shed.WithCPU(func() float64 { return cpu }))
		if err != nil {
			t.Fatal(err)
		}
		q, err = codel.New(codel.WithClock(s), codel.WithLimiter(shd))
		if err != nil {
			t.Fatal(err)
		}
		// The CPU sampler as shed runs it: usage over the last period, into an EMA.
		s.Every(cpuEvery, sim.Start.Add(end), func() {
			srv.mark()
			u := (srv.busyNS - last) / (workers * float64(cpuEvery))
			last = srv.busyNS
			cpu = cpuAlpha*u + (1-cpuAlpha)*cpu
		})
	}

	var reqs []*request
	handle := func(r *request) {
		var tok shed.Token
		if control {
			var err error
			if tok, err = shd.Allow(r.crit); err != nil {
				r.rejected, r.rejectAt = true, s.Elapsed()
				q.Release(s.Now())
				return
			}
		}
		srv.submit(service.Sample(s.Rand()), func() {
			if control {
				shd.Done(tok)
				q.Release(s.Now())
			}
			r.done, r.doneAt = true, s.Elapsed()
			r.latency = r.doneAt - r.arrive
		})
	}
	arrive := func(r *request) {
		if !control {
			handle(r)
			return
		}
		deadline := s.Now().Add(clientDeadline)
		_, ok, err := q.Arrive(s.Now(), r.crit, deadline, func(err error) {
			if err != nil {
				r.rejected, r.rejectAt = true, s.Elapsed()
				return
			}
			handle(r)
		})
		switch {
		case ok:
			handle(r)
		case err != nil:
			r.rejected, r.rejectAt = true, s.Elapsed()
		}
	}

	var at time.Duration
	for _, p := range phases {
		rate := p.load * capacity()
		mean := time.Duration(float64(time.Second) / rate)
		stop := at + p.dur
		var next func()
		next = func() {
			r := &request{crit: crit(s.Rand().Float64()), arrive: s.Elapsed()}
			reqs = append(reqs, r)
			arrive(r)
			if d := s.Elapsed() + (sim.Exp{Mean: mean}).Sample(s.Rand()); d < stop {
				s.At(sim.Start.Add(d), next)
			}
		}
		s.At(sim.Start.Add(at+(sim.Exp{Mean: mean}).Sample(s.Rand())), next)
		at = stop
	}
	// Let what is still queued finish (or miss its deadline) after the last arrival.
	s.Run(sim.Start.Add(end+10*time.Second), 20_000_000)
	return reqs
}

// stats over a set of requests.
type stats struct {
	offered, admitted, rejected, good int
	lat                               sim.Latencies
}

func (st *stats) p99() time.Duration { return st.lat.Quantile(0.99) }

// collect summarizes the requests that arrived in [from, to); good counts those that
// completed within the client deadline, by arrival.
func collect(reqs []*request, from, to time.Duration, keep func(*request) bool) *stats {
	st := &stats{}
	for _, r := range reqs {
		if r.arrive < from || r.arrive >= to || (keep != nil && !keep(r)) {
			continue
		}
		st.offered++
		switch {
		case r.rejected:
			st.rejected++
		case r.done:
			st.admitted++
			st.lat.Add(r.latency)
			if r.latency <= clientDeadline {
				st.good++
			}
		}
	}
	return st
}

// goodput is the rate of requests completed within their deadline, counted by completion
// time in [from, to): what the server delivered while the load lasted.
func goodput(reqs []*request, from, to time.Duration) float64 {
	n := 0
	for _, r := range reqs {
		if r.done && r.latency <= clientDeadline && r.doneAt >= from && r.doneAt < to {
			n++
		}
	}
	return float64(n) / (to - from).Seconds()
}

// recovery is how long after from the last 100 ms window with a rejection ends; 0 when no
// window after from has one.
func recovery(reqs []*request, from, to time.Duration) time.Duration {
	const win = 100 * time.Millisecond
	var last time.Duration = -1
	for _, r := range reqs {
		if r.rejected && r.rejectAt >= from && r.rejectAt < to {
			if w := (r.rejectAt - from) / win; w > last {
				last = w
			}
		}
	}
	return (last + 1) * win
}

func TestOverloadSimulation(t *testing.T) {
	const (
		warm      = 10 * time.Second
		overload  = 20 * time.Second
		afterward = 5 * time.Second
	)
	phases := []phase{{0.5, warm}, {3, overload}, {0.5, afterward}}
	c := capacity()
	t.Logf("model: %d workers, service %v median σ=%.1f, capacity %.0f req/s, client deadline %v",
		workers, service.Median, service.Sigma, c, clientDeadline)

	reqs := run(t, 1, true, phases, allCritical)
	unloaded := collect(reqs, 2*time.Second, warm, nil)
	over := collect(reqs, warm, warm+overload, nil)
	gp := goodput(reqs, warm, warm+overload)
	rec := recovery(reqs, warm+overload, warm+overload+afterward)
	unloadedP99, overP99 := unloaded.p99(), over.p99()
	t.Logf("unloaded (50%%): %d requests, %d rejected, p50 %v p99 %v",
		unloaded.offered, unloaded.rejected, unloaded.lat.Quantile(0.5), unloadedP99)
	t.Logf("overload (300%%): %d offered, %d admitted, %d rejected; goodput %.0f req/s = %.1f%% of capacity; admitted p50 %v p99 %v = %.2f× unloaded p99",
		over.offered, over.admitted, over.rejected, gp, 100*gp/c, over.lat.Quantile(0.5), overP99,
		float64(overP99)/float64(unloadedP99))
	t.Logf("recovery: full acceptance %v after the load dropped to 50%%", rec)

	if unloaded.rejected != 0 {
		t.Errorf("at 50%% load %d requests were rejected; want 0", unloaded.rejected)
	}
	if gp < 0.95*c {
		t.Errorf("goodput at 3× = %.0f req/s; want ≥ 95%% of capacity %.0f", gp, c)
	}
	if overP99 >= 2*unloadedP99 {
		t.Errorf("admitted p99 at 3× = %v; want < 2 × unloaded p99 %v", overP99, unloadedP99)
	}
	if rec > 2*time.Second {
		t.Errorf("full acceptance returned %v after the load dropped; want ≤ 2s", rec)
	}

	// The same load with nothing in front: the run queue grows without bound and almost
	// every request finishes after its caller gave up.
	base := run(t, 1, false, phases, allCritical)
	bgp := goodput(base, warm, warm+overload)
	bover := collect(base, warm, warm+overload, nil)
	t.Logf("baseline without queue or shedder: goodput %.0f req/s = %.1f%% of capacity; p99 %v",
		bgp, 100*bgp/c, bover.p99())
	if bgp >= 0.5*c {
		t.Errorf("baseline goodput at 3× = %.0f req/s; want it to collapse below 50%% of capacity %.0f", bgp, c)
	}
}

func TestOverloadByCriticality(t *testing.T) {
	// 3× capacity, a quarter of it at each level: CRITICAL_PLUS alone is 75% of capacity
	// and must all get through; CRITICAL gets what is left; the sheddable levels go first.
	levels := []meta.Criticality{meta.Sheddable, meta.SheddablePlus, meta.Critical, meta.CriticalPlus}
	quarter := func(r float64) meta.Criticality { return levels[int(r*4)] }
	const warm, overload = 5 * time.Second, 20 * time.Second
	reqs := run(t, 2, true, []phase{{0.5, warm}, {3, overload}}, quarter)
	c := capacity()
	gp := goodput(reqs, warm, warm+overload)
	t.Logf("goodput %.0f req/s = %.1f%% of capacity", gp, 100*gp/c)
	if gp < 0.95*c {
		t.Errorf("goodput = %.0f req/s; want ≥ 95%% of capacity %.0f", gp, c)
	}
	share := make([]float64, len(levels))
	for i, l := range levels {
		st := collect(reqs, warm, warm+overload, func(r *request) bool { return r.crit == l })
		share[i] = float64(st.good) / float64(st.offered)
		t.Logf("%-14s offered %6d, good %6d (%.1f%%), p99 %v", l, st.offered, st.good, 100*share[i], st.p99())
	}
	if share[3] < 0.95 {
		t.Errorf("CRITICAL_PLUS got %.1f%% through; want ≥ 95%% (it is 75%% of capacity)", 100*share[3])
	}
	if share[0] > 0.05 || share[1] > 0.05 {
		t.Errorf("SHEDDABLE got %.1f%%, SHEDDABLE_PLUS %.1f%% through; want ≤ 5%% while more critical work fills the server", 100*share[0], 100*share[1])
	}
	for i := 1; i < len(levels); i++ {
		if share[i] < share[i-1] {
			t.Errorf("%v got %.1f%% through, less than %v's %.1f%%; want higher levels served first",
				levels[i], 100*share[i], levels[i-1], 100*share[i-1])
		}
	}
}
