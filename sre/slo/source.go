package slo

import (
	"slices"

	dto "github.com/prometheus/client_model/go"
)

// ServerErrorCodes are the gRPC code labels that count against availability; on HTTP it is
// every 5xx status. This is kit/metric's classification (its Summary's Errors column).
var ServerErrorCodes = []string{"Internal", "Unavailable", "DeadlineExceeded", "Unknown", "DataLoss", "Unimplemented"}

// ServerError reports whether a code label of a RED family is the server's fault.
func ServerError(code string) bool {
	return slices.Contains(ServerErrorCodes, code) || (len(code) == 3 && code[0] == '5')
}

// RequestsFamily and DurationFamily name the RED families an indicator reads, as in
// DESIGN.md: redline_{http,grpc}_server_requests_total and
// redline_{http,grpc}_server_duration_seconds.
func RequestsFamily(t Transport) string { return "redline_" + string(t) + "_server_requests_total" }

// DurationFamily: see RequestsFamily.
func DurationFamily(t Transport) string { return "redline_" + string(t) + "_server_duration_seconds" }

// FamilySet is one gather of a registry, indexed by family name.
type FamilySet map[string]*dto.MetricFamily

// Families indexes gathered metric families by name.
func Families(mfs []*dto.MetricFamily) FamilySet {
	out := make(FamilySet, len(mfs))
	for _, mf := range mfs {
		out[mf.GetName()] = mf
	}
	return out
}

// Counts sums an indicator's cumulative counts over the series of its service and routes in
// the baseline lane (lane=""): stress-test lanes do not spend the budget. Availability
// reads the requests counter; Latency reads the duration histogram, counting as bad every
// request above the threshold bucket.
func (f FamilySet) Counts(ind Indicator) Counts { return f.CountsLane(ind, "") }

// CountsLane is Counts over the series whose lane label is lane ("" is the baseline, as
// Counts reads it), to measure a stress-test or canary lane against the same indicator.
func (f FamilySet) CountsLane(ind Indicator, lane string) Counts {
	var c Counts
	name := RequestsFamily(ind.Transport)
	if ind.Kind == Latency {
		name = DurationFamily(ind.Transport)
	}
	mf := f[name]
	if mf == nil {
		return c
	}
	le := ind.Threshold.Seconds()
	for _, m := range mf.GetMetric() {
		var service, route, code, mlane string
		for _, lp := range m.GetLabel() {
			switch lp.GetName() {
			case "service":
				service = lp.GetValue()
			case "route":
				route = lp.GetValue()
			case "code":
				code = lp.GetValue()
			case "lane":
				mlane = lp.GetValue()
			}
		}
		if service != ind.Service || mlane != lane || (len(ind.Routes) > 0 && !slices.Contains(ind.Routes, route)) {
			continue
		}
		if ind.Kind == Availability {
			v := m.GetCounter().GetValue()
			c.Total += v
			if ServerError(code) {
				c.Bad += v
			}
			continue
		}
		h := m.GetHistogram()
		n := float64(h.GetSampleCount())
		good := 0.0
		for _, b := range h.GetBucket() {
			if b.GetUpperBound() == le {
				good = float64(b.GetCumulativeCount())
				break
			}
		}
		c.Total += n
		c.Bad += n - good
	}
	return c
}
