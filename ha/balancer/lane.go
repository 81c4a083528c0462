package balancer

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	oteltrace "go.opentelemetry.io/otel/trace"

	"github.com/redline-dev/redline/kit/meta"
	"github.com/redline-dev/redline/kit/metric"
)

// laneRoutes counts the lane filter's outcomes, by result:
//
//	same      a lane request went to a node of its lane
//	fallback  the lane has no node of this service; it went to a baseline node
//	baseline  a baseline request went to a baseline node while lane nodes were present
//	none      no node fits: a lane request with neither lane nor baseline nodes, or a
//	          baseline request when only lane nodes exist
var laneRoutes = func() map[string]prometheus.Counter {
	v := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "redline_ha_balancer_lane_routes_total",
		Help: "Lane routing of picks by result (same|fallback|baseline|none).",
	}, []string{"result"})
	metric.Registry.MustRegister(v)
	out := map[string]prometheus.Counter{}
	for _, r := range []string{"same", "fallback", "baseline", "none"} {
		out[r] = v.WithLabelValues(r)
	}
	return out
}()

// LaneFilter is the default Filter: it routes a request by its lane (kit/meta).
//
//   - A request in lane L goes to the nodes labelled L. When the service has none, it falls
//     back to the baseline nodes, and the fallback is counted
//     (redline_ha_balancer_lane_routes_total{result="fallback"}) and added to the request's
//     span as the event "lane fallback". The request keeps its lane: the next hop routes by
//     it again, so a lane may hold any subset of the services (Istio returns 503 instead).
//   - A baseline request goes only to baseline nodes: a canary or stress instance never
//     serves baseline traffic. When a service has only lane nodes, baseline picks fail.
//
// A service whose nodes are all baseline costs a scan and no allocation.
func LaneFilter(ctx context.Context, nodes []Node) []Node {
	lane := meta.Lane(ctx)
	same, baseline := 0, 0
	for _, n := range nodes {
		switch n.Lane {
		case "":
			baseline++
		case lane:
			same++
		}
	}
	if lane == "" {
		switch {
		case baseline == len(nodes):
			return nodes
		case baseline == 0:
			laneRoutes["none"].Inc()
			return nil
		}
		laneRoutes["baseline"].Inc()
		return keepLane(nodes, "", baseline)
	}
	if same > 0 {
		laneRoutes["same"].Inc()
		return keepLane(nodes, lane, same)
	}
	if baseline == 0 {
		laneRoutes["none"].Inc()
		return nil
	}
	laneRoutes["fallback"].Inc()
	oteltrace.SpanFromContext(ctx).AddEvent("lane fallback",
		oteltrace.WithAttributes(attribute.String("lane", lane)))
	return keepLane(nodes, "", baseline)
}

// keepLane returns the n nodes of lane, nodes itself when that is all of them.
func keepLane(nodes []Node, lane string, n int) []Node {
	if n == len(nodes) {
		return nodes
	}
	out := make([]Node, 0, n)
	for _, node := range nodes {
		if node.Lane == lane {
			out = append(out, node)
		}
	}
	return out
}
