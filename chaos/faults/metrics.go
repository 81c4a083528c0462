package faults

import (
	"runtime"
	"sync"
	"weak"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/redline-dev/redline/kit/metric"
)

var (
	injections = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "redline_chaos_fault_injections_total",
		Help: "Calls a chaos fault hit, by the service the call ran in, its kind (http|grpc|sql|cache|queue) " +
			"and the fault's type (delay|error|abort|timeout|drop).",
	}, []string{"service", "kind", "type"})
	activeFaults = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "redline_chaos_faults_active",
		Help: "Chaos faults active now (not expired), over every fault registry of the process.",
	}, func() float64 { return float64(liveActive()) })
)

func init() { metric.Registry.MustRegister(injections, activeFaults) }

// live holds the registries of the process weakly, so the gauge counts the faults of
// those in use and a discarded registry (a test's) is forgotten when it is collected.
var live struct {
	mu   sync.Mutex
	next uint64
	regs map[uint64]weak.Pointer[Registry]
}

func track(r *Registry) {
	live.mu.Lock()
	if live.regs == nil {
		live.regs = map[uint64]weak.Pointer[Registry]{}
	}
	id := live.next
	live.next++
	live.regs[id] = weak.Make(r)
	live.mu.Unlock()
	runtime.AddCleanup(r, untrack, id)
}

func untrack(id uint64) {
	live.mu.Lock()
	delete(live.regs, id)
	live.mu.Unlock()
}

// liveActive counts the active faults of every live registry; it prunes expired ones, so
// the gauge drops when a fault expires even if no call looks at it.
func liveActive() int {
	live.mu.Lock()
	regs := make([]weak.Pointer[Registry], 0, len(live.regs))
	for _, w := range live.regs {
		regs = append(regs, w)
	}
	live.mu.Unlock()
	n := 0
	for _, w := range regs {
		if r := w.Value(); r != nil {
			n += r.activeCount()
		}
	}
	return n
}
