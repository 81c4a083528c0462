package balancer

import (
	"cmp"

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

// picks is redline_ha_balancer_picks_total; see the package doc.
var picks = func() *prometheus.CounterVec {
	v := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "redline_ha_balancer_picks_total",
		Help: "Balancer picks by service and node instance (the node's instance label, else the service name).",
	}, []string{"service", "instance"})
	metric.Registry.MustRegister(v)
	return v
}()

// pickCounter resolves the picks counter of a node of service named instance ("" for a
// node without one), once per node rather than per pick.
func pickCounter(service, instance string) prometheus.Counter {
	return picks.WithLabelValues(service, cmp.Or(instance, service))
}
