package http

import (
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/redline-dev/redline/kit/meta"
	"github.com/redline-dev/redline/kit/metric"
)

var egressStripped = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "redline_lane_egress_stripped_total",
	Help: "Calls to third parties made in a lane whose lane (and other internal metadata) was stripped, by host."}, []string{"host"})

func init() { metric.Registry.MustRegister(egressStripped) }

// ThirdParty wraps rt (http.DefaultTransport when nil) for calls leaving the system: it
// removes W3C baggage (which holds the lane), trace context and every X-Redline-* header
// before the request goes out, since baggage has no integrity and a third party must not
// learn, or act on, our lanes. A call made in a lane is counted in
// redline_lane_egress_stripped_total{host}. Which provider a lane may reach (only mocks)
// is decided before this, by the caller's configuration.
func ThirdParty(rt http.RoundTripper) http.RoundTripper {
	if rt == nil {
		rt = http.DefaultTransport
	}
	return thirdParty{rt}
}

type thirdParty struct{ rt http.RoundTripper }

func (t thirdParty) RoundTrip(r *http.Request) (*http.Response, error) {
	if meta.Lane(r.Context()) != "" {
		egressStripped.WithLabelValues(r.URL.Host).Inc()
	}
	strip := false
	for k := range r.Header {
		if internalHeader(k) {
			strip = true
			break
		}
	}
	if strip { // RoundTrippers must not change the caller's request
		r = r.Clone(r.Context())
		for k := range r.Header {
			if internalHeader(k) {
				r.Header.Del(k)
			}
		}
	}
	return t.rt.RoundTrip(r)
}

func internalHeader(k string) bool {
	k = strings.ToLower(k)
	return k == meta.HeaderBaggage || k == "traceparent" || k == "tracestate" || strings.HasPrefix(k, "x-redline-")
}
