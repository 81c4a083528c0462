package slo

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/redline-dev/redline/internal/specyaml"
	"github.com/redline-dev/redline/kit/metric"
)

// Kind is what an indicator measures.
type Kind string

// The indicator kinds.
const (
	// Availability counts a request as bad when it failed by the server's fault: an HTTP 5xx
	// or a gRPC Internal, Unavailable, DeadlineExceeded, Unknown, DataLoss or Unimplemented.
	Availability Kind = "availability"
	// Latency counts a request as good when it finished within Threshold.
	Latency Kind = "latency"
)

// Transport names a RED metric family of kit/metric.
type Transport string

// The transports.
const (
	HTTP Transport = "http"
	GRPC Transport = "grpc"
)

// Budgeting is an OpenSLO budgeting method.
type Budgeting string

// The budgeting methods.
const (
	// Occurrences: the SLI is good events over all events in the period.
	Occurrences Budgeting = "Occurrences"
	// Timeslices: the SLI is good slices over all slices with traffic; a slice is good
	// when its own good ratio is at least TimesliceTarget.
	Timeslices Budgeting = "Timeslices"
)

// Severity of a burn-rate alert.
type Severity string

// The severities.
const (
	Page   Severity = "page"
	Ticket Severity = "ticket"
)

// Indicator says which requests an SLO counts and which of them are good.
type Indicator struct {
	Kind      Kind
	Transport Transport
	Service   string
	// Routes are route labels ("GET /v1/notes/{id}", "/note.v1.Note/GetNote"); empty means
	// every route of the service.
	Routes []string
	// Threshold is the latency bound of a Latency indicator; it must be one of
	// metric.Buckets.
	Threshold time.Duration
}

// Condition is one multiwindow burn-rate alert: it fires when the error ratio over both
// Long and Short is at least Factor × (1 − objective).
type Condition struct {
	Severity Severity
	Long     time.Duration
	Short    time.Duration
	Factor   float64
	// For is how long the condition must hold before it fires (Prometheus "for").
	For time.Duration
}

// SLO is one service level objective, as parsed from YAML or declared in Go.
type SLO struct {
	// Name is unique and a DNS label: lowercase letters, digits and '-'.
	Name        string
	Service     string
	Description string
	Indicator   Indicator
	// Objective is the target ratio of good events, in (0, 1), e.g. 0.999.
	Objective float64
	// Period is the rolling window, or the nominal length of a calendar window.
	Period time.Duration
	// Calendar is "" for a rolling window, else "week" or "month": the budget then resets at
	// the start of each calendar week (Monday) or month, in UTC.
	Calendar        string
	Budgeting       Budgeting
	TimesliceTarget float64
	TimesliceWindow time.Duration
	// Conditions are the alerts; nil means the workbook's four (see Workbook).
	Conditions []Condition
	// MinRequests is the minimum-traffic guard: no condition fires while the short window
	// holds fewer requests. 0 means DefaultMinRequests.
	MinRequests float64
	// File is where the SLO was read from ("" when declared in Go); errors name it.
	File string
}

// DefaultMinRequests is the default minimum-traffic guard.
const DefaultMinRequests = 10

// Day is 24 hours.
const Day = 24 * time.Hour

// workbook is the SRE workbook's table for a 30-day period: budget fraction spent when the
// alert fires, long window, short window (1/12 of the long one).
var workbook = []struct {
	sev         Severity
	budget      float64
	long, short time.Duration
}{
	{Page, 0.02, time.Hour, 5 * time.Minute},
	{Page, 0.05, 6 * time.Hour, 30 * time.Minute},
	{Ticket, 0.10, Day, 2 * time.Hour},
	{Ticket, 0.10, 3 * Day, 6 * time.Hour},
}

// Workbook returns the four multiwindow multi-burn-rate conditions for a period. The windows
// are the workbook's; the factor is budget spent × period ÷ long window, as sloth derives
// it, so a 30-day period gives 14.4, 6, 3 and 1 and a 28-day one 13.44, 5.6, 2.8 and 0.93.
// Keeping the windows and scaling the factor alerts after the same fraction of the period's
// budget as scaling the windows would, and keeps the recording rule names fixed.
func Workbook(period time.Duration) []Condition {
	out := make([]Condition, 0, len(workbook))
	for _, w := range workbook {
		f := w.budget * period.Hours() / w.long.Hours()
		out = append(out, Condition{Severity: w.sev, Long: w.long, Short: w.short, Factor: math.Round(f*1e4) / 1e4})
	}
	return out
}

// Alerts returns the SLO's conditions: its own or, when it has none, Workbook(s.Period).
func (s SLO) Alerts() []Condition {
	if len(s.Conditions) > 0 {
		return s.Conditions
	}
	return Workbook(s.Period)
}

// Budget is the error budget ratio, 1 − Objective.
func (s SLO) Budget() float64 { return 1 - s.Objective }

// MinTraffic returns the minimum-traffic guard in requests.
func (s SLO) MinTraffic() float64 {
	if s.MinRequests > 0 {
		return s.MinRequests
	}
	return DefaultMinRequests
}

// Windows returns every window the SLO's alerts use, shortest first, without repeats.
func (s SLO) Windows() []time.Duration {
	var ws []time.Duration
	for _, c := range s.Alerts() {
		ws = append(ws, c.Short, c.Long)
	}
	slices.Sort(ws)
	return slices.Compact(ws)
}

// Option changes an SLO declared in Go.
type Option func(*SLO)

// WithName sets the SLO's name (default: service-kind-route, made a DNS label).
func WithName(name string) Option { return func(s *SLO) { s.Name = name } }

// WithDescription sets the description.
func WithDescription(d string) Option { return func(s *SLO) { s.Description = d } }

// WithRoutes adds routes to the indicator, for an SLO over several routes.
func WithRoutes(routes ...string) Option {
	return func(s *SLO) { s.Indicator.Routes = append(s.Indicator.Routes, routes...) }
}

// WithCalendar makes the window a calendar "week" or "month".
func WithCalendar(c string) Option { return func(s *SLO) { s.Calendar = c } }

// WithTimeslices budgets by timeslices of window w, good when their ratio is at least target.
func WithTimeslices(target float64, w time.Duration) Option {
	return func(s *SLO) { s.Budgeting, s.TimesliceTarget, s.TimesliceWindow = Timeslices, target, w }
}

// WithConditions replaces the workbook alerts.
func WithConditions(cs ...Condition) Option { return func(s *SLO) { s.Conditions = cs } }

// WithMinRequests sets the minimum-traffic guard.
func WithMinRequests(n float64) Option { return func(s *SLO) { s.MinRequests = n } }

// AvailabilitySLO declares an availability SLO for one route, next to the route in code:
//
//	slo.AvailabilitySLO("note", "/note.v1.Note/GetNote", 0.999, 30*slo.Day)
//
// The transport follows from the route: a gRPC full method starts with '/', an HTTP route
// with its method ("GET /v1/notes/{id}"). Call Validate on the result.
func AvailabilitySLO(service, route string, objective float64, period time.Duration, opts ...Option) SLO {
	return declare(Indicator{Kind: Availability, Service: service, Routes: []string{route}}, objective, period, opts)
}

// LatencySLO declares that a fraction objective of a route's requests finish within
// threshold, which must be one of kit/metric's bucket bounds.
func LatencySLO(service, route string, threshold time.Duration, objective float64, period time.Duration, opts ...Option) SLO {
	return declare(Indicator{Kind: Latency, Service: service, Routes: []string{route}, Threshold: threshold}, objective, period, opts)
}

func declare(ind Indicator, objective float64, period time.Duration, opts []Option) SLO {
	ind.Transport = HTTP
	if len(ind.Routes) > 0 && len(ind.Routes[0]) > 0 && ind.Routes[0][0] == '/' {
		ind.Transport = GRPC
	}
	s := SLO{Service: ind.Service, Indicator: ind, Objective: objective, Period: period, Budgeting: Occurrences}
	for _, o := range opts {
		o(&s)
	}
	if s.Name == "" {
		s.Name = dnsLabel(s.Service + "-" + string(ind.Kind) + "-" + ind.Routes[0])
	}
	return s
}

var nonDNS = regexp.MustCompile(`[^a-z0-9]+`)

func dnsLabel(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	out := nonDNS.ReplaceAllString(string(b), "-")
	for len(out) > 0 && out[0] == '-' {
		out = out[1:]
	}
	for len(out) > 0 && out[len(out)-1] == '-' {
		out = out[:len(out)-1]
	}
	if len(out) > 63 {
		out = out[:63]
	}
	return out
}

var dnsName = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// FieldError is one problem in an SLO spec: the file, the line (0 when unknown), the field
// path ("spec.objectives[0].target") and the reason. Its Error reads "file:line: field:
// reason". It is the strict spec decoder's, which chaos/drill's specs share.
type FieldError = specyaml.FieldError

// ErrInvalid is wrapped by every validation and parse error, for callers that branch.
var ErrInvalid = errors.New("invalid SLO spec")

// Validate checks an SLO and returns every problem, joined, each a *FieldError that wraps
// ErrInvalid. The field paths are those of the YAML form.
func (s SLO) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %w", ErrInvalid, &FieldError{File: s.File, Field: field, Reason: fmt.Sprintf(format, args...)}))
	}
	if !dnsName.MatchString(s.Name) {
		bad("metadata.name", "%q is not a DNS label (lowercase letters, digits and '-', at most 63)", s.Name)
	}
	if s.Service == "" {
		bad("spec.service", "required")
	}
	ind := s.Indicator
	src := "spec.indicator.spec.ratioMetric.total.metricSource.spec"
	switch ind.Kind {
	case Availability, Latency:
	default:
		bad("spec.indicator", "kind %q is neither availability nor latency", ind.Kind)
	}
	if ind.Transport != HTTP && ind.Transport != GRPC {
		bad(src+".transport", "%q is neither http nor grpc", ind.Transport)
	}
	if ind.Service == "" {
		bad(src+".service", "required")
	}
	for i, r := range ind.Routes {
		if r == "" || (ind.Transport == GRPC && r[0] != '/') || (ind.Transport == HTTP && r[0] == '/') {
			bad(fmt.Sprintf("%s.routes[%d]", src, i), "%q is not a %s route label", r, ind.Transport)
		}
	}
	if ind.Kind == Latency {
		if !slices.Contains(metric.Buckets, ind.Threshold.Seconds()) {
			bad(src+".le", "latency threshold %s is not a bucket bound of kit/metric (%v seconds)", ind.Threshold, metric.Buckets)
		}
	} else if ind.Threshold != 0 {
		bad(src+".le", "a threshold needs a latency indicator")
	}
	if !(s.Objective > 0 && s.Objective < 1) {
		bad("spec.objectives[0].target", "%v is not in (0, 1)", s.Objective)
	}
	if s.Period < 3*Day || s.Period > 400*Day {
		bad("spec.timeWindow[0].duration", "%s is outside [3d, 400d]", s.Period)
	}
	switch s.Calendar {
	case "":
	case "week", "month":
	default:
		bad("spec.timeWindow[0].calendar", "%q is neither week nor month", s.Calendar)
	}
	switch s.Budgeting {
	case Occurrences:
		if s.TimesliceTarget != 0 || s.TimesliceWindow != 0 {
			bad("spec.objectives[0].timeSliceTarget", "timeslices need budgetingMethod Timeslices")
		}
	case Timeslices:
		if !(s.TimesliceTarget > 0 && s.TimesliceTarget <= 1) {
			bad("spec.objectives[0].timeSliceTarget", "%v is not in (0, 1]", s.TimesliceTarget)
		}
		if s.TimesliceWindow < time.Minute || s.TimesliceWindow > time.Hour || time.Hour%s.TimesliceWindow != 0 {
			bad("spec.objectives[0].timeSliceWindow", "%s must divide 1h and be at least 1m", s.TimesliceWindow)
		}
	default:
		bad("spec.budgetingMethod", "%q is neither Occurrences nor Timeslices", s.Budgeting)
	}
	if s.MinRequests < 0 || math.IsNaN(s.MinRequests) {
		bad("metadata.annotations.redline/min-requests", "%v is negative", s.MinRequests)
	}
	for i, c := range s.Conditions {
		f := fmt.Sprintf("spec.alertPolicies[%d].spec.conditions[0].spec.condition", i)
		if c.Severity != Page && c.Severity != Ticket {
			bad(f+".severity", "%q is neither page nor ticket", c.Severity)
		}
		if c.Long < 2*time.Minute || c.Long > maxWindow {
			bad(f+".lookbackWindow", "%s is outside [2m, %s]", c.Long, maxWindow)
		}
		if c.Short <= 0 || c.Short > c.Long {
			bad(f+".lookbackWindow", "short window %s must be in (0, long window]", c.Short)
		}
		if c.For < 0 {
			bad(f+".alertAfter", "%s is negative", c.For)
		}
		if !(c.Factor > 0) || math.IsInf(c.Factor, 0) {
			bad(f+".threshold", "%v is not a positive burn rate", c.Factor)
		}
	}
	if s.Objective > 0 && s.Objective < 1 {
		for i, c := range s.Alerts() {
			if c.Factor*s.Budget() >= 1 {
				bad(fmt.Sprintf("spec.alertPolicies[%d]", i), "burn rate %v × budget %.4g ≥ 1: the alert can never fire; raise the target", c.Factor, s.Budget())
			}
		}
	}
	return errors.Join(errs...)
}

// maxWindow is the longest alert window the evaluator keeps.
const maxWindow = 3 * Day

// FormatDuration writes d as Prometheus does (1h, 5m, 3d, 30d), the form rule names use.
func FormatDuration(d time.Duration) string {
	switch {
	case d%Day == 0:
		return strconv.FormatInt(int64(d/Day), 10) + "d"
	case d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	}
	return strconv.FormatInt(int64(d/time.Second), 10) + "s"
}

// ParseDuration reads a Prometheus or OpenSLO duration: a whole number and one of s, m, h,
// d, w.
func ParseDuration(s string) (time.Duration, error) {
	if len(s) < 2 {
		return 0, fmt.Errorf("duration %q: want a number and a unit (s, m, h, d, w)", s)
	}
	n, err := strconv.ParseUint(s[:len(s)-1], 10, 32)
	if err != nil {
		return 0, fmt.Errorf("duration %q: want a whole number and a unit (s, m, h, d, w)", s)
	}
	unit := map[byte]time.Duration{'s': time.Second, 'm': time.Minute, 'h': time.Hour, 'd': Day, 'w': 7 * Day}[s[len(s)-1]]
	if unit == 0 {
		return 0, fmt.Errorf("duration %q: unit must be s, m, h, d or w", s)
	}
	if n > uint64(math.MaxInt64/int64(unit)) {
		return 0, fmt.Errorf("duration %q: too long", s)
	}
	return time.Duration(n) * unit, nil
}
