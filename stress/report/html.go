package report

import (
	"fmt"
	"html/template"
	"io"
	"math"
	"strconv"
)

// WriteHTML writes d as a self-contained HTML page: inline CSS and SVG, no script, nothing
// fetched.
func WriteHTML(w io.Writer, d *Document) error {
	v := view{Document: d}
	if r := d.Run; r != nil {
		v.Throughput, v.OverTime, v.Distribution = runPlots(r)
	}
	if c := d.Capacity; c != nil {
		v.CapacityP99, v.CapacityRate = capacityPlots(c)
	}
	return page.Execute(w, v)
}

type view struct {
	*Document
	Throughput, OverTime, Distribution template.HTML
	CapacityP99, CapacityRate          template.HTML
}

func runPlots(r *Run) (throughput, overTime, distribution template.HTML) {
	ok, errs := line{name: "ok/s", color: colorOK}, line{name: "errors/s", color: colorErr}
	p50, p99, p999 := line{name: "p50", color: colorP50}, line{name: "p99", color: colorP99}, line{name: "p99.9", color: colorP999}
	for _, s := range r.Series {
		ok.x, ok.y = append(ok.x, s.T), append(ok.y, float64(s.OK))
		errs.x, errs.y = append(errs.x, s.T), append(errs.y, float64(s.Errors))
		if s.OK+s.Errors > 0 {
			p50.x, p50.y = append(p50.x, s.T), append(p50.y, s.P50)
			p99.x, p99.y = append(p99.x, s.T), append(p99.y, s.P99)
			p999.x, p999.y = append(p999.x, s.T), append(p999.y, s.P999)
		}
	}
	throughput = plot("Throughput: requests ended per second", axis{label: "seconds"}, axis{label: "requests/s"}, []line{ok, errs})
	overTime = plot("Latency percentiles per second (from the intended send time)", axis{label: "seconds"},
		axis{label: "ms (log)", log: true}, []line{p50, p99, p999})

	lat, svc := line{name: "latency (intended)", color: colorP99}, line{name: "service time", color: colorS}
	maxX := 0.0
	for _, pair := range []struct {
		l  *line
		ps []Percentile
	}{{&lat, r.Spectrum}, {&svc, r.ServiceSpec}} {
		for _, p := range pair.ps {
			if p.Percentile >= 100 {
				continue // the max is in the table; 1/(1−p) is infinite there
			}
			x := spectrumX(p.Percentile)
			pair.l.x, pair.l.y = append(pair.l.x, x), append(pair.l.y, p.Ms)
			maxX = math.Max(maxX, x)
		}
	}
	distribution = plot("Latency by percentile", axis{label: "percentile", ticks: spectrumTicks(maxX)},
		axis{label: "ms"}, []line{lat, svc})
	return throughput, overTime, distribution
}

func capacityPlots(c *Capacity) (p99, rate template.HTML) {
	lp99 := line{name: "p99", color: colorP99}
	got, asked := line{name: "achieved", color: colorOK}, line{name: "offered", color: "#9e9e9e"}
	for _, s := range c.Steps {
		lp99.x, lp99.y = append(lp99.x, s.Rate), append(lp99.y, s.P99)
		got.x, got.y = append(got.x, s.Rate), append(got.y, s.ActualRate*(1-s.ErrorRate))
		asked.x, asked.y = append(asked.x, s.Rate), append(asked.y, s.Rate)
	}
	p99 = plot("p99 by offered rate", axis{label: "offered rate (iterations/s)"}, axis{label: "ms"}, []line{lp99})
	rate = plot("Successful rate by offered rate", axis{label: "offered rate (iterations/s)"}, axis{label: "iterations/s"}, []line{asked, got})
	return p99, rate
}

var page = template.Must(template.New("report").Funcs(template.FuncMap{
	"ms": func(v float64) string {
		switch {
		case v >= 1000:
			return strconv.FormatFloat(v/1000, 'f', 3, 64) + " s"
		case v >= 1:
			return strconv.FormatFloat(v, 'f', 2, 64) + " ms"
		}
		return strconv.FormatFloat(v*1000, 'f', 0, 64) + " µs"
	},
	"pct":  func(v float64) string { return strconv.FormatFloat(100*v, 'f', 3, 64) + "%" },
	"rate": func(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) },
	"num":  func(v float64) string { return strconv.FormatFloat(v, 'f', 0, 64) },
	"secs": func(v float64) string { return fmt.Sprintf("%.1f s", v) },
}).Parse(pageHTML))

const pageHTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Redline stress {{.Scenario}} {{.RunID}}</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1000px;color:#212121;padding:0 12px}
h1{font-size:22px;margin-bottom:4px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:8px 0;font-variant-numeric:tabular-nums}
td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}th{background:#f5f5f5}
td.l,th.l{text-align:left}.pass{color:#2e7d32;font-weight:600}.fail{color:#c62828;font-weight:600}
.meta{color:#555}svg{display:block;margin:12px 0}svg .grid{stroke:#eee}svg .frame{fill:none;stroke:#bbb}
svg .tick,svg .legend{font-size:11px;fill:#444}svg .axis{font-size:12px;fill:#222}svg .title{font-size:13px;font-weight:600}
p.note{color:#555;max-width:760px}
</style></head><body>
<h1>Redline stress: {{.Scenario}} {{if .Passed}}<span class="pass">PASSED</span>{{else}}<span class="fail">FAILED</span>{{end}}</h1>
<div class="meta">run {{.RunID}} · target {{.Target}} · lane {{if .Lane}}{{.Lane}}{{else}}baseline (none){{end}} · started {{.StartedAt.Format "2006-01-02 15:04:05 UTC"}}{{if .Aborted}} · <span class="fail">aborted: {{.Aborted}}</span>{{end}}</div>
{{with .Run}}
<h2>Summary</h2>
<table>
<tr><th class="l">target rate</th><td>{{rate .TargetRate}}/s</td><th class="l">requests</th><td>{{.Requests}}</td><th class="l">iterations started</th><td>{{.Started}} of {{.Planned}}</td></tr>
<tr><th class="l">actual rate</th><td>{{rate .ActualRate}}/s</td><th class="l">ok</th><td>{{.OK}}</td><th class="l">delayed by the in-flight limit</th><td>{{.Delayed}}</td></tr>
<tr><th class="l">duration</th><td>{{secs .DurationS}}</td><th class="l">errors</th><td>{{.Errors}}</td><th class="l">dropped</th><td>{{.Dropped}}</td></tr>
<tr><th class="l">elapsed</th><td>{{secs .ElapsedS}}</td><th class="l">error rate</th><td>{{pct .ErrorRate}}</td><th class="l">most in flight</th><td>{{.MaxInFlight}}</td></tr>
</table>
<table>
<tr><th class="l"></th><th>count</th><th>min</th><th>mean</th><th>p50</th><th>p90</th><th>p95</th><th>p99</th><th>p99.9</th><th>p99.99</th><th>max</th></tr>
<tr><th class="l">latency (from intended send)</th>{{template "lat" .Latency}}</tr>
<tr><th class="l">service time (from actual send)</th>{{template "lat" .Service}}</tr>
<tr><th class="l">generator lag</th>{{template "lat" .Lag}}</tr>
</table>
<p class="note">Latency counts from when each request was meant to be sent, so a stall is charged to
every request it delayed (coordinated omission corrected); service time counts from the actual send,
as a closed-loop tool measures. Errors are included in both.</p>
{{end}}
{{if .Run}}
{{.Throughput}}
{{.OverTime}}
{{.Distribution}}
{{end}}
{{with .Run}}
<h2>Thresholds</h2>
{{if .Thresholds}}<table><tr><th class="l">threshold</th><th class="l">observed</th><th class="l">verdict</th></tr>
{{range .Thresholds}}<tr><td class="l">{{.Name}}</td><td class="l">{{.Observed}}</td><td class="l">{{if .Pass}}<span class="pass">held</span>{{else}}<span class="fail">broken at {{secs .At}}</span>{{end}}</td></tr>
{{end}}</table>{{else}}<p>none set</p>{{end}}
<h2>Steps</h2>
<table><tr><th class="l">step</th><th>requests</th><th>ok</th><th>errors</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th><th class="l">statuses</th></tr>
{{range .Steps}}<tr><td class="l">{{.Name}}</td><td>{{.Requests}}</td><td>{{.OK}}</td><td>{{.Errors}}</td><td>{{ms .Latency.P50}}</td><td>{{ms .Latency.P90}}</td><td>{{ms .Latency.P99}}</td><td>{{ms .Latency.P999}}</td><td>{{ms .Latency.Max}}</td><td class="l">{{range $code, $n := .Statuses}}{{$code}}: {{$n}} {{end}}</td></tr>
{{end}}</table>
<h2>Errors</h2>
{{if .ErrorKinds}}<table><tr><th class="l">step</th><th class="l">kind</th><th>status</th><th class="l">reason</th><th>count</th><th class="l">example</th></tr>
{{range .ErrorKinds}}<tr><td class="l">{{.Step}}</td><td class="l">{{.Kind}}</td><td>{{if .Status}}{{.Status}}{{end}}</td><td class="l">{{.Reason}}</td><td>{{.Count}}</td><td class="l">{{.Example}}</td></tr>
{{end}}</table>{{else}}<p>none</p>{{end}}
{{end}}
{{with .Capacity}}
<h2>Capacity</h2>
<table>
<tr><th class="l">max sustainable rate</th><td class="l">{{rate .MaxSustainable}}/s</td></tr>
<tr><th class="l">knee</th><td class="l">{{if .Knee}}{{rate .Knee}}/s (the first step whose p99 is over twice the lowest before it){{else}}not reached{{end}}</td></tr>
<tr><th class="l">bottleneck</th><td class="l">{{.Bottleneck}}{{if .BottleneckWhy}}: {{.BottleneckWhy}}{{end}}</td></tr>
<tr><th class="l">stopped</th><td class="l">{{.StoppedBy}}</td></tr>
</table>
{{end}}
{{if .Capacity}}
{{.CapacityP99}}
{{.CapacityRate}}
{{end}}
{{with .Capacity}}
<table><tr><th>offered/s</th><th>actual/s</th><th>requests</th><th>error rate</th><th>p50</th><th>p99</th><th class="l">verdict</th><th class="l">services: p99, requests, errors, shed</th></tr>
{{range .Steps}}<tr><td>{{rate .Rate}}</td><td>{{rate .ActualRate}}</td><td>{{.Requests}}</td><td>{{pct .ErrorRate}}</td><td>{{ms .P50}}</td><td>{{ms .P99}}</td><td class="l">{{if .Pass}}<span class="pass">pass</span>{{else}}<span class="fail">{{.Why}}</span>{{end}}</td>
<td class="l">{{range .Services}}{{.Service}} {{ms .P99}} {{num .Requests}} {{num .Errors}} {{num .Shed}}<br>{{end}}</td></tr>
{{end}}</table>
{{end}}
{{if .Budget}}<h2>Error budget</h2>
<p class="note">{{if .Lane}}What this run would have spent of each SLO's error budget had its lane traffic counted (lanes never count against SLOs).{{else}}What this run spent of each SLO's error budget: baseline traffic counts.{{end}}
Share of period = bad events ÷ (budget × the period's events, the run's included).</p>
<table><tr><th class="l">SLO</th><th class="l">service</th><th>events</th><th>bad</th><th>error ratio</th><th>burn rate</th><th>period events</th><th>share of period budget</th></tr>
{{range .Budget}}<tr><td class="l">{{.SLO}}</td><td class="l">{{.Service}}</td><td>{{num .Events}}</td><td>{{num .Bad}}</td><td>{{pct .ErrorRatio}}</td><td>{{rate .BurnRate}}</td><td>{{if .PeriodEvents}}{{num .PeriodEvents}}{{else}}unknown{{end}}</td><td>{{if .PeriodEvents}}{{pct .Spent}}{{else}}-{{end}}</td></tr>
{{end}}</table>{{end}}
<h2>Checks</h2>
{{if .Checks}}<table><tr><th class="l">check</th><th class="l">verdict</th><th class="l">detail</th></tr>
{{range .Checks}}<tr><td class="l">{{.Name}}</td><td class="l">{{if .Pass}}<span class="pass">pass</span>{{else}}<span class="fail">fail</span>{{end}}</td><td class="l">{{.Detail}}</td></tr>
{{end}}</table>{{else}}<p>none ran</p>{{end}}
</body></html>
{{define "lat"}}<td>{{.Count}}</td><td>{{ms .Min}}</td><td>{{ms .Mean}}</td><td>{{ms .P50}}</td><td>{{ms .P90}}</td><td>{{ms .P95}}</td><td>{{ms .P99}}</td><td>{{ms .P999}}</td><td>{{ms .P9999}}</td><td>{{ms .Max}}</td>{{end}}
`
