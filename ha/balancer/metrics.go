package balancer

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/redline-dev/redline/kit/metric"
)

// decisions holds the resolved counters of redline_ha_balancer_decisions_total, so a pick
// costs one atomic add.
var decisions = newDecisionCounters()

type decisionCounters struct {
	score, probe, single, noNode, filtered prometheus.Counter
}

func newDecisionCounters() decisionCounters {
	v := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "redline_ha_balancer_decisions_total",
		Help: "Balancer picks by decision (pick|reject) and reason (score|probe|single|no_node|filtered).",
	}, []string{"decision", "reason"})
	metric.Registry.MustRegister(v)
	return decisionCounters{
		score:    v.WithLabelValues("pick", "score"),
		probe:    v.WithLabelValues("pick", "probe"),
		single:   v.WithLabelValues("pick", "single"),
		noNode:   v.WithLabelValues("reject", "no_node"),
		filtered: v.WithLabelValues("reject", "filtered"),
	}
}
