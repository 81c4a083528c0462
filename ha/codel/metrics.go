package codel

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/redline-dev/redline/kit/metric"
)

var decisions = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "redline_ha_codel_decisions_total",
	Help: "Admission queue decisions, by decision (admit|queue|reject|cancel) and reason.",
}, []string{"service", "decision", "reason"})

func init() { metric.Registry.MustRegister(decisions) }

// counters are the decision series of one Queue, resolved once so the hot path does not
// hash labels.
type counters struct {
	admitNow, admitQueued, queued                     prometheus.Counter
	rejectFull, rejectSojourn, rejectDeadline, cancel prometheus.Counter
}

func newCounters(service string) counters {
	c := func(decision, reason string) prometheus.Counter {
		return decisions.WithLabelValues(service, decision, reason)
	}
	return counters{
		admitNow:       c("admit", "free_slot"),   // a slot was free on arrival
		admitQueued:    c("admit", "dequeued"),    // admitted after waiting
		queued:         c("queue", "no_slot"),     // every slot busy: the request waits
		rejectFull:     c("reject", "queue_full"), // the queue was full, or made room for a more critical waiter
		rejectSojourn:  c("reject", "sojourn"),    // waited past its bound in a standing queue
		rejectDeadline: c("reject", "deadline"),   // its deadline passed while it waited
		cancel:         c("cancel", "caller"),     // its caller went away
	}
}
