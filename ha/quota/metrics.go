package quota

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/redline-dev/redline/kit/metric"
)

var (
	decisions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "redline_ha_quota_decisions_total",
		Help: "Quota client decisions, by resource, decision (admit|reject) and reason: the mode " +
			"the client was in (lease|held|fallback|fail_open|initial|unknown_resource).",
	}, []string{"resource", "decision", "reason"})
	transitions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "redline_ha_quota_transitions_total",
		Help: "Quota client mode changes, by resource, from and to (lease|held|fallback|fail_open|initial|unknown_resource).",
	}, []string{"resource", "from", "to"})
	renewals = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "redline_ha_quota_renewals_total",
		Help: "Quota client batched renewals, by result (ok|unavailable|invalid|error).",
	}, []string{"result"})
	serviceRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "redline_ha_quota_service_requests_total",
		Help: "Quota service requests, by method, result (ok|invalid|unavailable) and reason.",
	}, []string{"method", "result", "reason"})
)

func init() { metric.Registry.MustRegister(decisions, transitions, renewals, serviceRequests) }
