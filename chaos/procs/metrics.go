package procs

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/redline-dev/redline/kit/metric"
)

var (
	faults = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "redline_chaos_proc_faults_total",
		Help: "Process faults asked of a supervisor, by process and action (kill|stop|start|pause|resume|restart).",
	}, []string{"proc", "action"})
	restarts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "redline_chaos_proc_restarts_total",
		Help: "Starts of a supervised process after its first, by process and cause (crash|fault).",
	}, []string{"proc", "cause"})
)

func init() { metric.Registry.MustRegister(faults, restarts) }
