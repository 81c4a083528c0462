package shed

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/redline-dev/redline/kit/metric"
)

// Reasons of the decisions metric.
const (
	reasonCPU      = "cpu"         // shed: CPU over the threshold and inflight at the limit
	reasonCoolDown = "cooldown"    // shed: within the cool-down of a shed and inflight at the limit
	reasonIdle     = "no_pressure" // admitted: CPU under the threshold
	reasonUnder    = "under_limit" // admitted under pressure: inflight below the limit
)

var decisions = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "redline_ha_shed_decisions_total",
	Help: "Adaptive shedding decisions, by decision (admit|reject) and reason.",
}, []string{"service", "decision", "reason"})

func init() { metric.Registry.MustRegister(decisions) }

// counters are the decision series of one Shedder, resolved once so the hot path does not
// hash labels.
type counters struct {
	admitIdle, admitUnder, rejectCPU, rejectCoolDown prometheus.Counter
}

func newCounters(service string) counters {
	return counters{
		admitIdle:      decisions.WithLabelValues(service, "admit", reasonIdle),
		admitUnder:     decisions.WithLabelValues(service, "admit", reasonUnder),
		rejectCPU:      decisions.WithLabelValues(service, "reject", reasonCPU),
		rejectCoolDown: decisions.WithLabelValues(service, "reject", reasonCoolDown),
	}
}

func (c counters) admit(pressured bool) {
	if pressured {
		c.admitUnder.Inc()
		return
	}
	c.admitIdle.Inc()
}

func (c counters) reject(why string) {
	if why == reasonCoolDown {
		c.rejectCoolDown.Inc()
		return
	}
	c.rejectCPU.Inc()
}
