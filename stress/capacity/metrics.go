package capacity

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Metrics are the cumulative server-side numbers of every service in one scrape of a
// Redline admin endpoint's /metrics, by service label.
type Metrics map[string]*ServiceMetrics

// ServiceMetrics is one service's cumulative counters since its process started: server
// requests over HTTP and gRPC (all routes, codes and lanes), those that were the server's
// fault (5xx; Internal, Unavailable, DeadlineExceeded, Unknown, DataLoss, Unimplemented),
// requests shed by its adaptive shedder or CoDel queue, and its duration histogram.
type ServiceMetrics struct {
	Requests, Errors, Shed float64
	// Bounds are the histogram's upper bounds in seconds; Counts its cumulative counts.
	Bounds, Counts []float64
}

// ServiceStep is one service's share of one step: the deltas of its metrics.
type ServiceStep struct {
	Service                string
	Requests, Errors, Shed float64
	// P99 is estimated from the step's bucket deltas by linear interpolation, as
	// Prometheus's histogram_quantile does.
	P99 time.Duration
}

// FetchMetrics scrapes adminURL's /metrics with token as the bearer, if any.
func FetchMetrics(ctx context.Context, c *http.Client, adminURL, token string) (Metrics, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(adminURL, "/")+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s (is --admin-token right?)", req.URL, resp.Status)
	}
	return ParseMetrics(io.LimitReader(resp.Body, 64<<20))
}

// ParseMetrics reads the Prometheus text format and keeps the Redline server RED families
// and shedding decisions.
func ParseMetrics(r io.Reader) (Metrics, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("parse metrics: %w", err)
	}
	out := Metrics{}
	svc := func(name string) *ServiceMetrics {
		s, ok := out[name]
		if !ok {
			s = &ServiceMetrics{}
			out[name] = s
		}
		return s
	}
	for _, kind := range []string{"http", "grpc"} {
		for _, m := range fams["redline_"+kind+"_server_requests_total"].GetMetric() {
			l := labels(m)
			s := svc(l["service"])
			v := m.GetCounter().GetValue()
			s.Requests += v
			if serverFault(l["code"]) {
				s.Errors += v
			}
		}
		for _, m := range fams["redline_"+kind+"_server_duration_seconds"].GetMetric() {
			svc(labels(m)["service"]).addHistogram(m.GetHistogram())
		}
	}
	for _, fam := range []string{"redline_ha_shed_decisions_total", "redline_ha_codel_decisions_total"} {
		for _, m := range fams[fam].GetMetric() {
			if l := labels(m); l["decision"] == "reject" {
				svc(l["service"]).Shed += m.GetCounter().GetValue()
			}
		}
	}
	return out, nil
}

func labels(m *dto.Metric) map[string]string {
	out := make(map[string]string, len(m.GetLabel()))
	for _, lp := range m.GetLabel() {
		out[lp.GetName()] = lp.GetValue()
	}
	return out
}

// serverFault mirrors kit/metric's rule for a server error.
func serverFault(code string) bool {
	switch code {
	case "Internal", "Unavailable", "DeadlineExceeded", "Unknown", "DataLoss", "Unimplemented":
		return true
	}
	return len(code) == 3 && code[0] == '5'
}

// addHistogram adds a series' buckets; series with other bounds than the first are left
// out (every Redline server family uses kit/metric.Buckets).
func (s *ServiceMetrics) addHistogram(h *dto.Histogram) {
	bs := h.GetBucket()
	if s.Bounds == nil {
		for _, b := range bs {
			s.Bounds = append(s.Bounds, b.GetUpperBound())
		}
		s.Counts = make([]float64, len(bs))
	}
	if len(bs) != len(s.Bounds) {
		return
	}
	for i, b := range bs {
		if b.GetUpperBound() != s.Bounds[i] {
			return
		}
	}
	for i, b := range bs {
		s.Counts[i] += float64(b.GetCumulativeCount())
	}
}

// Delta returns each service's numbers between two scrapes, sorted by service. A service
// whose counters went down (its process restarted) is left out.
func Delta(before, after Metrics) []ServiceStep {
	var out []ServiceStep
	for name, a := range after {
		b := before[name]
		if b == nil {
			b = &ServiceMetrics{}
		}
		st := ServiceStep{Service: name, Requests: a.Requests - b.Requests, Errors: a.Errors - b.Errors, Shed: a.Shed - b.Shed}
		if st.Requests < 0 || st.Errors < 0 || st.Shed < 0 {
			continue
		}
		counts := slices.Clone(a.Counts)
		if len(b.Counts) == len(counts) {
			for i := range counts {
				counts[i] -= b.Counts[i]
			}
		}
		st.P99 = quantile(0.99, a.Bounds, counts)
		out = append(out, st)
	}
	slices.SortFunc(out, func(x, y ServiceStep) int { return strings.Compare(x.Service, y.Service) })
	return out
}

// quantile estimates quantile q from cumulative bucket counts, interpolating linearly
// within the bucket; a quantile in the last (+Inf) bucket is its lower bound.
func quantile(q float64, bounds, counts []float64) time.Duration {
	if len(counts) == 0 || counts[len(counts)-1] <= 0 {
		return 0
	}
	rank := q * counts[len(counts)-1]
	for i, c := range counts {
		if c < rank {
			continue
		}
		lo, below := 0.0, 0.0
		if i > 0 {
			lo, below = bounds[i-1], counts[i-1]
		}
		hi := bounds[i]
		if math.IsInf(hi, 1) {
			return time.Duration(lo * float64(time.Second))
		}
		frac := 1.0
		if c > below {
			frac = (rank - below) / (c - below)
		}
		return time.Duration((lo + (hi-lo)*frac) * float64(time.Second))
	}
	return time.Duration(bounds[len(bounds)-1] * float64(time.Second))
}
