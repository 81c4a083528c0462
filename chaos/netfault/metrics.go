package netfault

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/redline-dev/redline/kit/metric"
)

var (
	toxicsActive = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "redline_chaos_net_toxics_active",
		Help: "Network toxics active now (not expired), over every netfault.Proxies of the process.",
	})
	toxicsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "redline_chaos_net_toxics_total",
		Help: "Network toxics added, by proxy and type (latency|bandwidth|reset_peer|timeout|slicer|limit_data).",
	}, []string{"proxy", "type"})
)

func init() { metric.Registry.MustRegister(toxicsActive, toxicsTotal) }
