package rules

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redline-dev/redline/sre/slo"
)

// TestFile is a `promtool test rules` file.
type TestFile struct {
	RuleFiles          []string    `yaml:"rule_files"`
	EvaluationInterval string      `yaml:"evaluation_interval"`
	Tests              []TestGroup `yaml:"tests"`
}

// TestGroup is one test of a TestFile: input series and what to expect.
type TestGroup struct {
	Name        string      `yaml:"name"`
	Interval    string      `yaml:"interval"`
	InputSeries []Series    `yaml:"input_series"`
	AlertTests  []AlertTest `yaml:"alert_rule_test,omitempty"`
	ExprTests   []ExprTest  `yaml:"promql_expr_test,omitempty"`
}

// Series is one input series in promtool's expanding notation.
type Series struct {
	Series string `yaml:"series"`
	Values string `yaml:"values"`
}

// AlertTest expects exactly ExpAlerts of Alertname to be firing at EvalTime.
type AlertTest struct {
	EvalTime  string     `yaml:"eval_time"`
	Alertname string     `yaml:"alertname"`
	ExpAlerts []ExpAlert `yaml:"exp_alerts"`
}

// ExpAlert is one expected alert.
type ExpAlert struct {
	ExpLabels      map[string]string `yaml:"exp_labels"`
	ExpAnnotations map[string]string `yaml:"exp_annotations"`
}

// ExprTest expects Expr to evaluate to ExpSamples at EvalTime.
type ExprTest struct {
	Expr       string   `yaml:"expr"`
	EvalTime   string   `yaml:"eval_time"`
	ExpSamples []Sample `yaml:"exp_samples"`
}

// Sample is one expected sample.
type Sample struct {
	Labels string  `yaml:"labels"`
	Value  float64 `yaml:"value"`
}

// Scenario timing.
const (
	outageStep  = 10 * time.Second // sample interval of the outage test
	outageEval  = 30 * time.Second // rule interval of the outage test
	slowStep    = time.Minute      // sample interval of the slow-burn test
	slowEval    = 15 * time.Minute // rule interval of the slow-burn test
	outageRate  = 100              // requests per outage step
	slowRate    = 1000             // requests per slow step
	burnFactor  = 2.0              // the slow burn, in budgets
	slowMargin  = time.Hour        // checked this far either side of the expected ticket
	seriesSteps = 3                // extra samples after the last check
)

func secs(d time.Duration) string { return strconv.FormatInt(int64(d/time.Second), 10) + "s" }

// Tests returns the two promtool test files of an SLO whose rules are in ruleFile.
//
// Outage: steady traffic for the longest page window (6h), then every request fails. A
// page condition (long L, factor f) sees the long window's error ratio grow one sample's
// share at a time, k/(L/10s) after k samples, so it fires at the first sample where that
// reaches f × budget: the workbook's 14.4 × 0.001 × 1h = 51.84 s becomes 60 s with 10 s
// samples. The test expects the page at that sample and none at the sample before.
//
// Slow burn: three clean days, then an error ratio of 2 × budget. A condition fires once
// its long window's ratio, 2 × budget × elapsed ÷ L, reaches f × budget, i.e. after
// f × L ÷ 2, and never when f ≥ 2: the workbook's 3d/6h ticket (f = 1) after 36 h, no page
// (14.4, 6) and not the 1d/2h ticket (3). The test expects that an hour after and nothing
// an hour before.
func Tests(s slo.SLO, ruleFile string) (outage, slow TestFile, err error) {
	if err := s.Validate(); err != nil {
		return TestFile{}, TestFile{}, err
	}
	conds := s.Alerts()
	budget := s.Budget()

	// Outage.
	var warm time.Duration
	for _, c := range conds {
		if c.Severity == slo.Page {
			warm = max(warm, c.Long)
		}
	}
	warm = max(warm, time.Hour)
	fireStep := func(c slo.Condition) int { // samples into the outage when c fires
		n := float64(c.Long / outageStep)
		k := int(math.Ceil(c.Factor*budget*n - 1e-9))
		short := int(math.Ceil(s.MinTraffic() / outageRate))
		return max(k, 1, short) + int((c.For+outageStep-1)/outageStep)
	}
	first := math.MaxInt
	for _, c := range conds {
		if c.Severity == slo.Page {
			first = min(first, fireStep(c))
		}
	}
	if first == math.MaxInt {
		return TestFile{}, TestFile{}, fmt.Errorf("%w: %s has no page condition to test", ErrUnsupported, s.Name)
	}
	warmN := int(warm / outageStep)
	// The rules run every outageEval (fewer evaluations keep promtool fast): the page shows
	// at the first evaluation at or after the sample that crosses the limit.
	fireAt := (time.Duration(first)*outageStep + outageEval - 1).Truncate(outageEval)
	outN := int(fireAt/outageStep) + seriesSteps
	good, bad := seriesPair(s, warmN, outN, outageRate, outageRate, 0)
	t0 := time.Duration(warmN) * outageStep
	var firing []ExpAlert
	for _, c := range conds {
		if c.Severity == slo.Page && time.Duration(fireStep(c))*outageStep <= fireAt {
			firing = append(firing, expAlert(s, c))
		}
	}
	det := conds[0].Factor * budget * conds[0].Long.Seconds()
	for _, c := range conds {
		if c.Severity == slo.Page && fireStep(c) == first {
			det = c.Factor * budget * c.Long.Seconds()
			break
		}
	}
	outage = TestFile{
		RuleFiles:          []string{ruleFile},
		EvaluationInterval: secs(outageEval),
		Tests: []TestGroup{{
			Name: fmt.Sprintf("full outage of %s from %s: the page is due %.2fs in, after the sample at %s; rules run every %s, so it shows at %s and not at %s",
				s.Name, slo.FormatDuration(t0), det, secs(time.Duration(first)*outageStep), secs(outageEval), secs(fireAt), secs(fireAt-outageEval)),
			Interval:    secs(outageStep),
			InputSeries: append(good, bad...),
			AlertTests: []AlertTest{
				{EvalTime: secs(t0 + fireAt - outageEval), Alertname: PageAlert, ExpAlerts: []ExpAlert{}},
				{EvalTime: secs(t0 + fireAt), Alertname: PageAlert, ExpAlerts: firing},
			},
			ExprTests: []ExprTest{{
				Expr:       `slo:period_error_budget_remaining:ratio{slo="` + s.Name + `"}`,
				EvalTime:   secs(t0),
				ExpSamples: []Sample{{Labels: `slo:period_error_budget_remaining:ratio{service="` + s.Service + `",slo="` + s.Name + `"}`, Value: 1}},
			}},
		}},
	}

	// Slow burn.
	warm = 0
	for _, c := range conds {
		warm = max(warm, c.Long)
	}
	badPerStep := math.Round(burnFactor*budget*slowRate*1e6) / 1e6
	due := func(c slo.Condition) (time.Duration, bool) {
		if c.Factor >= burnFactor {
			return 0, false
		}
		return time.Duration(c.Factor * float64(c.Long) / burnFactor), true
	}
	var dues []time.Duration
	for _, c := range conds {
		if d, ok := due(c); ok {
			dues = append(dues, d)
		}
	}
	check := 36 * time.Hour // nothing is due: look where the workbook ticket would be
	if len(dues) > 0 {
		check = slices.Min(dues)
	}
	before, after := check-slowMargin, check+slowMargin
	before, after = before.Truncate(slowEval), (after + slowEval - 1).Truncate(slowEval)
	if before < slowEval {
		before = slowEval
	}
	warmN = int(warm / slowStep)
	t0 = time.Duration(warmN) * slowStep
	burnN := int(after/slowStep) + seriesSteps
	good, bad = seriesPair(s, warmN, burnN, slowRate, badPerStep, slowRate-badPerStep)
	expect := map[string][]ExpAlert{PageAlert: {}, TicketAlert: {}}
	for _, c := range conds {
		if d, ok := due(c); ok && d <= after-slowEval {
			expect[AlertName(c.Severity)] = append(expect[AlertName(c.Severity)], expAlert(s, c))
		}
	}
	slowTest := TestGroup{
		Name: fmt.Sprintf("slow %gx burn of %s from %s: the first alert is due %s in; nothing an hour before, only what is due an hour after",
			burnFactor, s.Name, slo.FormatDuration(t0), check),
		Interval:    secs(slowStep),
		InputSeries: append(good, bad...),
	}
	for _, name := range []string{PageAlert, TicketAlert} {
		slowTest.AlertTests = append(slowTest.AlertTests,
			AlertTest{EvalTime: secs(t0 + before), Alertname: name, ExpAlerts: []ExpAlert{}},
			AlertTest{EvalTime: secs(t0 + after), Alertname: name, ExpAlerts: expect[name]})
	}
	slow = TestFile{RuleFiles: []string{ruleFile}, EvaluationInterval: secs(slowEval), Tests: []TestGroup{slowTest}}
	return outage, slow, nil
}

func expAlert(s slo.SLO, c slo.Condition) ExpAlert {
	return ExpAlert{
		ExpLabels: map[string]string{"slo": s.Name, "service": s.Service, "severity": string(c.Severity),
			"window": windowLabel(c)},
		ExpAnnotations: annotations(s, c),
	}
}

// seriesPair returns input series for warmN clean steps of warmTotal requests, then burnN
// steps of burnBad bad and burnGood good ones, on the SLO's first route.
func seriesPair(s slo.SLO, warmN, burnN int, warmTotal, burnBad, burnGood float64) (good, bad []Series) {
	ind := s.Indicator
	route := ""
	if len(ind.Routes) > 0 {
		route = ind.Routes[0]
	}
	method := "unary"
	if ind.Transport == slo.HTTP {
		method, _, _ = strings.Cut(route, " ")
	}
	labels := func(extra string) string {
		l := fmt.Sprintf(`service=%q,route=%q,method=%q`, ind.Service, route, method)
		return "{" + l + "," + extra + "}"
	}
	// counter returns the values of a counter growing a per step for warmN steps, then b.
	counter := func(a, b float64) string {
		end := a * float64(warmN)
		return fmt.Sprintf("0+%sx%d %s+%sx%d", num(a), warmN, num(end+b), num(b), burnN-1)
	}
	if ind.Kind == slo.Latency {
		fam := slo.DurationFamily(ind.Transport)
		le := strconv.FormatFloat(ind.Threshold.Seconds(), 'f', -1, 64)
		return []Series{{Series: fam + "_count" + labels(`code="`+okCode(ind)+`"`), Values: counter(warmTotal, burnBad+burnGood)}},
			[]Series{{Series: fam + "_bucket" + labels(`code="`+okCode(ind)+`",le="`+le+`"`), Values: counter(warmTotal, burnGood)}}
	}
	fam := slo.RequestsFamily(ind.Transport)
	badCode := "500"
	if ind.Transport == slo.GRPC {
		badCode = "Internal"
	}
	return []Series{{Series: fam + labels(`code="`+okCode(ind)+`"`), Values: counter(warmTotal, burnGood)}},
		[]Series{{Series: fam + labels(`code="`+badCode+`"`), Values: counter(0, burnBad)}}
}

func okCode(ind slo.Indicator) string {
	if ind.Transport == slo.GRPC {
		return "OK"
	}
	return "200"
}
