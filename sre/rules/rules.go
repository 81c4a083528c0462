// Package rules generates Prometheus recording and alerting rules for the SLOs of package
// slo, with the rule names users know from sloth, and a `promtool test rules` file per SLO
// that proves the alerts fire: a full outage pages at the workbook's detection time and not
// before, and a slow 2× burn opens only a ticket, and only once the budget is being spent.
//
// Usage (what `redline slo rules --out DIR` does):
//
//	paths, err := rules.WriteDir(dir, slo.Defaults())
//	// promtool check rules DIR/*.rules.yaml && promtool test rules DIR/*.test.yaml
//
// # Rules
//
// Each SLO gets one group, slo:<name>, evaluated in order, every series labelled
// {slo=<name>, service=<service>}. The indicator reads the RED families of DESIGN.md in
// the baseline lane (lane=""): an availability SLO counts as bad the requests whose code
// is a server fault (5xx on HTTP; Internal, Unavailable, DeadlineExceeded, Unknown,
// DataLoss, Unimplemented on gRPC) in redline_{http,grpc}_server_requests_total; a
// latency SLO counts as bad the requests above its le bucket of
// redline_{http,grpc}_server_duration_seconds.
//
//	slo:sli_requests:rate5m                   requests per second (VALET's volume)
//	slo:sli_bad:rate5m                        bad events per second
//	slo:sli_error:ratio_rate<w>               bad/total over each alert window w
//	                                          (5m 30m 1h 2h 6h 1d 3d), from the raw counters
//	slo:sli_error:ratio_rate<period>          Σ bad rate / Σ request rate over the period:
//	                                          weighted by traffic, never a mean of ratios,
//	                                          and 0 (a full budget) with no traffic
//	slo:objective:ratio, slo:error_budget:ratio, slo:time_period:days
//	slo:current_burn_rate:ratio               ratio_rate5m ÷ budget
//	slo:period_burn_rate:ratio                ratio_rate<period> ÷ budget
//	slo:period_error_budget_remaining:ratio   1 − period burn rate
//
// Alerts: one rule per condition (slo.SLO.Alerts, the workbook's four by default), named
// SLOBurnRatePage or SLOBurnRateTicket, labelled severity=page|ticket and window=long/short.
// A condition fires when the error ratio over both windows is at least factor × budget and
// the short window saw at least the SLO's minimum traffic (the guard sloth and pyrra lack).
//
// Limits: a calendar window is written as the rolling one of the same length (30d for a
// month) and Timeslices budgeting as Occurrences, since PromQL has neither calendar
// alignment nor cheap per-slice ratios; the in-process evaluator of package slo does both.
package rules

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/redline-dev/redline/sre/slo"
)

// File is a Prometheus rule file.
type File struct {
	Groups []Group `yaml:"groups"`
}

// Group is a rule group.
type Group struct {
	Name  string `yaml:"name"`
	Rules []Rule `yaml:"rules"`
}

// Rule is a recording or an alerting rule.
type Rule struct {
	Record      string            `yaml:"record,omitempty"`
	Alert       string            `yaml:"alert,omitempty"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for,omitempty"`
	Labels      map[string]string `yaml:"labels,omitempty"`
	Annotations map[string]string `yaml:"annotations,omitempty"`
}

// Alert names, one per severity.
const (
	PageAlert   = "SLOBurnRatePage"
	TicketAlert = "SLOBurnRateTicket"
)

// AlertName returns the alert name of a severity.
func AlertName(s slo.Severity) string {
	if s == slo.Page {
		return PageAlert
	}
	return TicketAlert
}

// ErrUnsupported is returned for an SLO the rules cannot express.
var ErrUnsupported = errors.New("rules: unsupported SLO")

// indicator holds the PromQL pieces of one SLO's indicator.
type indicator struct {
	s slo.SLO
}

func (in indicator) selector(extra string) string {
	ind := in.s.Indicator
	parts := []string{"service=" + strconv.Quote(ind.Service), `lane=""`}
	switch len(ind.Routes) {
	case 0:
	case 1:
		parts = append(parts, "route="+strconv.Quote(ind.Routes[0]))
	default:
		quoted := make([]string, len(ind.Routes))
		for i, r := range ind.Routes {
			quoted[i] = regexp.QuoteMeta(r)
		}
		parts = append(parts, "route=~`"+strings.Join(quoted, "|")+"`")
	}
	if extra != "" {
		parts = append(parts, extra)
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// totalSeries is the counter of all requests.
func (in indicator) totalSeries() string {
	if in.s.Indicator.Kind == slo.Latency {
		return slo.DurationFamily(in.s.Indicator.Transport) + "_count"
	}
	return slo.RequestsFamily(in.s.Indicator.Transport)
}

func (in indicator) total(fn, w string) string {
	return fmt.Sprintf("sum(%s(%s%s[%s]))", fn, in.totalSeries(), in.selector(""), w)
}

// leMatcher matches the bucket label however the exposition wrote the bound ("1" or "1.0").
func leMatcher(d time.Duration) string {
	v := strconv.FormatFloat(d.Seconds(), 'f', -1, 64)
	if !strings.Contains(v, ".") {
		return "le=~`" + v + `(\.0)?` + "`"
	}
	return "le=" + strconv.Quote(v)
}

func (in indicator) bad(w string) string {
	ind := in.s.Indicator
	if ind.Kind == slo.Latency {
		good := fmt.Sprintf("sum(rate(%s_bucket%s[%s]))", slo.DurationFamily(ind.Transport), in.selector(leMatcher(ind.Threshold)), w)
		return "(" + in.total("rate", w) + " - " + good + ")"
	}
	codes := `code=~"5.."`
	if ind.Transport == slo.GRPC {
		codes = `code=~"5..|` + strings.Join(slo.ServerErrorCodes, "|") + `"`
	}
	return fmt.Sprintf("(sum(rate(%s%s[%s])) or vector(0))", slo.RequestsFamily(ind.Transport), in.selector(codes), w)
}

func num(v float64) string { return strconv.FormatFloat(v, 'g', 10, 64) }

// Generate returns the rule file of one SLO.
func Generate(s slo.SLO) (File, error) {
	if err := s.Validate(); err != nil {
		return File{}, err
	}
	for _, r := range s.Indicator.Routes {
		if strings.ContainsAny(r, "`\n") {
			return File{}, fmt.Errorf("%w: %s: route %q holds a backtick or newline", ErrUnsupported, s.Name, r)
		}
	}
	in := indicator{s}
	labels := func() map[string]string { return map[string]string{"slo": s.Name, "service": s.Service} }
	ref := func(name string) string { return name + "{slo=" + strconv.Quote(s.Name) + "}" }
	budget := math.Round(s.Budget()*1e12) / 1e12
	period := slo.FormatDuration(s.Period)
	rec := func(name, expr string) Rule { return Rule{Record: name, Expr: expr, Labels: labels()} }

	rs := []Rule{
		rec("slo:sli_requests:rate5m", in.total("rate", "5m")),
		rec("slo:sli_bad:rate5m", in.bad("5m")),
	}
	for _, w := range s.Windows() {
		ws := slo.FormatDuration(w)
		rs = append(rs, rec("slo:sli_error:ratio_rate"+ws, in.bad(ws)+"\n/\n"+in.total("rate", ws)))
	}
	rs = append(rs,
		rec("slo:sli_error:ratio_rate"+period, fmt.Sprintf("sum_over_time(%s[%s])\n/\nclamp_min(sum_over_time(%s[%s]), 1e-12)",
			ref("slo:sli_bad:rate5m"), period, ref("slo:sli_requests:rate5m"), period)),
		rec("slo:objective:ratio", "vector("+num(s.Objective)+")"),
		rec("slo:error_budget:ratio", "vector("+num(budget)+")"),
		rec("slo:time_period:days", "vector("+num(s.Period.Hours()/24)+")"),
		rec("slo:current_burn_rate:ratio", ref("slo:sli_error:ratio_rate5m")+" / "+num(budget)),
		rec("slo:period_burn_rate:ratio", ref("slo:sli_error:ratio_rate"+period)+" / "+num(budget)),
		rec("slo:period_error_budget_remaining:ratio", "1 - "+ref("slo:period_burn_rate:ratio")),
	)
	for _, c := range s.Alerts() {
		rs = append(rs, alertRule(s, in, c, budget))
	}
	return File{Groups: []Group{{Name: "slo:" + s.Name, Rules: rs}}}, nil
}

func windowLabel(c slo.Condition) string {
	return slo.FormatDuration(c.Long) + "/" + slo.FormatDuration(c.Short)
}

// AlertLabels are the labels of an SLO's burn-rate alert, the same whether Prometheus fires
// it from these rules or the in-process evaluator does (without alertname, which AlertName
// gives): slo, service, severity and window ("1h/5m").
func AlertLabels(sloName, service string, c slo.Condition) map[string]string {
	return map[string]string{"slo": sloName, "service": service, "severity": string(c.Severity), "window": windowLabel(c)}
}

func alertRule(s slo.SLO, in indicator, c slo.Condition, budget float64) Rule {
	limit := num(c.Factor * budget)
	sel := "{slo=" + strconv.Quote(s.Name) + "}"
	long, short := slo.FormatDuration(c.Long), slo.FormatDuration(c.Short)
	expr := fmt.Sprintf("slo:sli_error:ratio_rate%s%s >= %s\nand\nslo:sli_error:ratio_rate%s%s >= %s\nand on()\n%s >= %s",
		long, sel, limit, short, sel, limit, in.total("increase", short), num(s.MinTraffic()))
	r := Rule{
		Alert:       AlertName(c.Severity),
		Expr:        expr,
		Labels:      AlertLabels(s.Name, s.Service, c),
		Annotations: annotations(s, c),
	}
	if c.For > 0 {
		r.For = slo.FormatDuration(c.For)
	}
	return r
}

func annotations(s slo.SLO, c slo.Condition) map[string]string {
	return map[string]string{
		"summary": fmt.Sprintf("%s burns its error budget at %sx or more over %s and %s", s.Name, num(c.Factor),
			slo.FormatDuration(c.Long), slo.FormatDuration(c.Short)),
		"description": fmt.Sprintf("SLO %s (%s of %s %s over %s) would spend %.0f%% of its budget in %s at this rate.",
			s.Name, num(s.Objective), s.Indicator.Service, s.Indicator.Kind, slo.FormatDuration(s.Period),
			100*c.Factor*c.Long.Hours()/s.Period.Hours(), slo.FormatDuration(c.Long)),
	}
}

// Marshal writes a rule or test file as YAML.
func Marshal(v any) ([]byte, error) {
	b, err := yaml.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("rules: %w", err)
	}
	return b, nil
}

// WriteDir writes <slo>.rules.yaml, <slo>.outage.test.yaml and <slo>.slowburn.test.yaml
// for each SLO into dir (created if missing) and returns the paths written, rule files
// first. Run `promtool check rules` on the rule files and `promtool test rules` on the
// test files, from dir.
func WriteDir(dir string, slos []slo.SLO) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("rules: %w", err)
	}
	var rulePaths, testPaths []string
	for _, s := range slos {
		f, err := Generate(s)
		if err != nil {
			return nil, err
		}
		ruleFile := s.Name + ".rules.yaml"
		files := map[string]any{ruleFile: f}
		outage, slow, err := Tests(s, ruleFile)
		if err != nil {
			return nil, err
		}
		files[s.Name+".outage.test.yaml"] = outage
		files[s.Name+".slowburn.test.yaml"] = slow
		for _, name := range []string{ruleFile, s.Name + ".outage.test.yaml", s.Name + ".slowburn.test.yaml"} {
			b, err := Marshal(files[name])
			if err != nil {
				return nil, err
			}
			p := filepath.Join(dir, name)
			if err := os.WriteFile(p, b, 0o644); err != nil {
				return nil, fmt.Errorf("rules: %w", err)
			}
			if name == ruleFile {
				rulePaths = append(rulePaths, p)
			} else {
				testPaths = append(testPaths, p)
			}
		}
	}
	return append(rulePaths, testPaths...), nil
}
