package metric

import (
	"math"
	"sort"
	"strings"

	dto "github.com/prometheus/client_model/go"
)

// RouteSummary is what one server route has done since the process started: requests,
// errors (5xx on HTTP, server-fault codes on gRPC) and latency quantiles estimated from the
// duration histogram.
type RouteSummary struct {
	Kind     string  `json:"kind"` // http or grpc
	Service  string  `json:"service"`
	Route    string  `json:"route"`
	Lane     string  `json:"lane,omitempty"`
	Requests float64 `json:"requests"`
	Errors   float64 `json:"errors"`
	P50Ms    float64 `json:"p50_ms"`
	P99Ms    float64 `json:"p99_ms"`
}

// serverError reports whether a code label is the server's fault.
func serverError(code string) bool {
	switch code {
	case "Internal", "Unavailable", "DeadlineExceeded", "Unknown", "DataLoss", "Unimplemented":
		return true
	}
	return len(code) == 3 && code[0] == '5'
}

// Summary reads the server RED families of Registry into one row per kind, service, route
// and lane, sorted. It is for dashboards: Prometheus remains the place for history.
func Summary() ([]RouteSummary, error) {
	mfs, err := Registry.Gather()
	if err != nil {
		return nil, err
	}
	type key struct{ kind, service, route, lane string }
	rows := map[key]*RouteSummary{}
	hist := map[key]*histogram{}
	row := func(k key) *RouteSummary {
		r, ok := rows[k]
		if !ok {
			r = &RouteSummary{Kind: k.kind, Service: k.service, Route: k.route, Lane: k.lane}
			rows[k] = r
			hist[k] = &histogram{}
		}
		return r
	}
	for _, mf := range mfs {
		name := mf.GetName()
		var kind string
		switch {
		case strings.HasPrefix(name, "redline_http_server_"):
			kind = "http"
		case strings.HasPrefix(name, "redline_grpc_server_"):
			kind = "grpc"
		default:
			continue
		}
		for _, m := range mf.GetMetric() {
			l := labels(m)
			k := key{kind, l["service"], l["route"], l["lane"]}
			switch {
			case strings.HasSuffix(name, "_requests_total"):
				r := row(k)
				r.Requests += m.GetCounter().GetValue()
				if serverError(l["code"]) {
					r.Errors += m.GetCounter().GetValue()
				}
			case strings.HasSuffix(name, "_duration_seconds"):
				row(k)
				hist[k].add(m.GetHistogram())
			}
		}
	}
	out := make([]RouteSummary, 0, len(rows))
	for k, r := range rows {
		h := hist[k]
		r.P50Ms, r.P99Ms = h.quantile(0.5)*1000, h.quantile(0.99)*1000
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Service != b.Service {
			return a.Service < b.Service
		}
		if a.Route != b.Route {
			return a.Route < b.Route
		}
		return a.Lane < b.Lane
	})
	return out, nil
}

func labels(m *dto.Metric) map[string]string {
	out := make(map[string]string, len(m.GetLabel()))
	for _, lp := range m.GetLabel() {
		out[lp.GetName()] = lp.GetValue()
	}
	return out
}

// histogram merges the cumulative buckets of several series with the same bounds.
type histogram struct {
	bounds []float64
	counts []float64
	total  float64
}

func (h *histogram) add(p *dto.Histogram) {
	if h.bounds == nil {
		for _, b := range p.GetBucket() {
			h.bounds = append(h.bounds, b.GetUpperBound())
		}
		h.counts = make([]float64, len(h.bounds))
	}
	for i, b := range p.GetBucket() {
		if i < len(h.counts) {
			h.counts[i] += float64(b.GetCumulativeCount())
		}
	}
	h.total += float64(p.GetSampleCount())
}

// quantile interpolates linearly inside the bucket that holds q, as Prometheus'
// histogram_quantile does; 0 without data, the top bound when q lands above it.
func (h *histogram) quantile(q float64) float64 {
	if h.total == 0 {
		return 0
	}
	rank := q * h.total
	lower, below := 0.0, 0.0
	for i, c := range h.counts {
		if c >= rank {
			span := c - below
			if span <= 0 {
				return h.bounds[i]
			}
			return lower + (h.bounds[i]-lower)*(rank-below)/span
		}
		lower, below = h.bounds[i], c
	}
	if len(h.bounds) == 0 {
		return math.NaN()
	}
	return h.bounds[len(h.bounds)-1]
}
