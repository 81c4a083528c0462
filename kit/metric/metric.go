// Package metric provides the Prometheus registry of a Redline process and the RED metric
// families of its transports, named as in DESIGN.md section 5:
// redline_{http,grpc}_{server,client}_requests_total{service,route,method,code,lane},
// redline_{http,grpc}_{server,client}_duration_seconds (same labels) and
// redline_{http,grpc}_{server,client}_inflight{service,route}.
package metric

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Registry is the process-wide registry that /metrics serves. Every kit and ha package
// registers here, so one scrape sees the whole process, including all services of
// `redline up` (told apart by the service label).
var Registry = newRegistry()

func newRegistry() *prometheus.Registry {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return r
}

// Labels of the RED families.
var redLabels = []string{"service", "route", "method", "code", "lane"}

// Buckets for request durations: 0.5 ms to 10 s, dense where SLO thresholds live.
var Buckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// RED holds the request counter, duration histogram and in-flight gauge of one transport
// and side.
type RED struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inflight *prometheus.GaugeVec

	// Plain maps under a read lock rather than sync.Map: a struct key boxed into sync.Map's
	// interface would allocate on every request.
	mu     sync.RWMutex
	series map[seriesKey]*series
	gauges map[routeKey]prometheus.Gauge
}

type routeKey struct{ service, route string }

type seriesKey struct{ service, route, method, code, lane string }

type series struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

func newRED(prefix, help string) *RED {
	r := &RED{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: prefix + "_requests_total", Help: help + " requests, by outcome.",
		}, redLabels),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: prefix + "_duration_seconds", Help: help + " request duration.", Buckets: Buckets,
		}, redLabels),
		inflight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: prefix + "_inflight", Help: help + " requests in progress.",
		}, []string{"service", "route"}),
		series: map[seriesKey]*series{},
		gauges: map[routeKey]prometheus.Gauge{},
	}
	Registry.MustRegister(r.requests, r.duration, r.inflight)
	return r
}

// The four RED families.
var (
	HTTPServer = newRED("redline_http_server", "HTTP server")
	HTTPClient = newRED("redline_http_client", "HTTP client")
	GRPCServer = newRED("redline_grpc_server", "gRPC server")
	GRPCClient = newRED("redline_grpc_client", "gRPC client")
)

// Observe counts one request and records its duration. The label set is resolved once and
// cached, so the steady state allocates nothing.
func (r *RED) Observe(service, route, method, code, lane string, d time.Duration) {
	k := seriesKey{service, route, method, code, lane}
	r.mu.RLock()
	ser, ok := r.series[k]
	r.mu.RUnlock()
	if !ok {
		r.mu.Lock()
		if ser, ok = r.series[k]; !ok {
			ser = &series{
				requests: r.requests.WithLabelValues(service, route, method, code, lane),
				duration: r.duration.WithLabelValues(service, route, method, code, lane),
			}
			r.series[k] = ser
		}
		r.mu.Unlock()
	}
	ser.requests.Inc()
	ser.duration.Observe(d.Seconds())
}

// Inflight returns the in-progress gauge of a route; callers Inc when a request starts and
// Dec when it ends.
func (r *RED) Inflight(service, route string) prometheus.Gauge {
	k := routeKey{service, route}
	r.mu.RLock()
	g, ok := r.gauges[k]
	r.mu.RUnlock()
	if !ok {
		r.mu.Lock()
		if g, ok = r.gauges[k]; !ok {
			g = r.inflight.WithLabelValues(service, route)
			r.gauges[k] = g
		}
		r.mu.Unlock()
	}
	return g
}
