package drill

import (
	"fmt"
	"html/template"
	"io"
	"strings"
	"time"

	"github.com/redline-dev/redline/stress/report"
)

// Colors of the plots.
const (
	colorValue     = "#1565c0"
	colorBound     = "#2e7d32"
	colorAbort     = "#c62828"
	colorFault     = "#c62828"
	colorRehearsal = "#ef6c00"
	colorPhase     = "#757575"
	colorOK        = "#2e7d32"
	colorErrors    = "#c62828"
)

// WriteHTML writes r as a self-contained HTML page (inline CSS and SVG, no script,
// nothing fetched): the verdict, the phases, the expectations, the guard's decisions, the
// faults, and a plot of each SLI over the drill with the faults shaded on the time axis.
func WriteHTML(w io.Writer, r *Report) error {
	v := htmlView{Report: r, CSS: template.CSS(report.PlotCSS)}
	spans := timeSpans(r)
	end := r.Ended.Sub(r.Started).Seconds()
	for _, s := range r.SLIs {
		// A p99 is plotted on a log axis, so that a bound and an abort bound far above the
		// values leave them readable.
		scale, yaxis := 100.0, report.Axis{Label: "error ratio over the window (%)"}
		if s.Kind == P99 {
			scale, yaxis = 1000, report.Axis{Label: "p99 over the window (ms, log)", Log: true}
		}
		val := report.Series{Name: s.SLI, Color: colorValue}
		for _, p := range s.Points {
			val.X, val.Y = append(val.X, p.T), append(val.Y, p.V*scale)
		}
		flat := func(name, color string, y float64) report.Series {
			return report.Series{Name: name, Color: color, X: []float64{0, end}, Y: []float64{y * scale, y * scale}}
		}
		title := fmt.Sprintf("%s: %s over the trailing %gs", s.SLI, strings.ReplaceAll(s.Kind, "_", " "), r.Window)
		v.Plots = append(v.Plots, report.Plot(title, report.Axis{Label: "seconds since the drill began", Spans: spans},
			yaxis, []report.Series{val, flat("bound", colorBound, s.Bound), flat("abort", colorAbort, s.AbortBound)}))
	}
	if l := r.Load; l != nil && len(l.Seconds) > 0 {
		ok, errs := report.Series{Name: "ok/s", Color: colorOK}, report.Series{Name: "errors/s", Color: colorErrors}
		for _, s := range l.Seconds {
			ok.X, ok.Y = append(ok.X, s.T), append(ok.Y, float64(s.OK))
			errs.X, errs.Y = append(errs.X, s.T), append(errs.Y, float64(s.Errors))
		}
		v.Plots = append(v.Plots, report.Plot("The experiment's load, as the client saw it",
			report.Axis{Label: "seconds since the drill began", Spans: spans}, report.Axis{Label: "requests/s"}, []report.Series{ok, errs}))
	}
	return page.Execute(w, v)
}

type htmlView struct {
	*Report
	CSS   template.CSS
	Plots []template.HTML
}

// timeSpans marks the phases' starts, the faults (shaded) and the abort on the time axis.
func timeSpans(r *Report) []report.Span {
	var out []report.Span
	t := func(at time.Time) float64 { return at.Sub(r.Started).Seconds() }
	for _, p := range r.Phases {
		out = append(out, report.Span{From: t(p.Started), To: t(p.Started), Label: p.Name, Color: colorPhase})
	}
	for _, f := range r.Faults {
		if f.AddedAt.IsZero() {
			continue
		}
		end := f.RemovedAt
		if end.IsZero() {
			end = r.Ended
		}
		color, label := colorFault, fmt.Sprintf("fault %d", f.Index)
		if f.Phase == PhaseRehearsal {
			color, label = colorRehearsal, fmt.Sprintf("rehearsal %d", f.Index)
		}
		out = append(out, report.Span{From: t(f.AddedAt), To: t(end), Label: label, Color: color})
	}
	if a := r.Guard.Abort; a != nil {
		out = append(out, report.Span{From: t(a.ActedAt), To: t(a.ActedAt), Label: "abort", Color: "#000000"})
	}
	// Every plot spans the whole drill.
	return append(out, report.Span{From: t(r.Ended), To: t(r.Ended), Label: "end", Color: colorPhase})
}

var page = template.Must(template.New("drill").Funcs(template.FuncMap{
	"value": func(kind string, v float64) string { return format(kind, v) },
	"secs":  func(v float64) string { return fmt.Sprintf("%.1f s", v) },
	"at": func(start, t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return fmt.Sprintf("%.2f s", t.Sub(start).Seconds())
	},
	"upper":  strings.ToUpper,
	"passed": func(v Verdict) bool { return v == Passed },
}).Parse(pageHTML))

const pageHTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Redline drill {{.Drill}} {{.RunID}}</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1000px;color:#212121;padding:0 12px}
h1{font-size:22px;margin-bottom:4px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:8px 0;font-variant-numeric:tabular-nums}
td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}th{background:#f5f5f5}
.pass{color:#2e7d32;font-weight:600}.fail{color:#c62828;font-weight:600}.meta{color:#555}p.note{color:#555;max-width:760px}
{{.CSS}}
</style></head><body>
<h1>Redline drill: {{.Drill}} {{if passed .Verdict}}<span class="pass">PASSED</span>{{else}}<span class="fail">{{upper (print .Verdict)}}</span>{{end}}</h1>
<div class="meta">run {{.RunID}} · BFF {{.BFF}} · admin {{.Admin}} · lane {{if .Lane}}{{.Lane}}{{else}}baseline{{end}} · load {{.Rate}}/s · started {{.Started.Format "2006-01-02 15:04:05 MST"}} · {{secs (.Ended.Sub .Started).Seconds}}{{if .Incident}} · incident {{.Incident}}{{end}}</div>
{{if .Description}}<p>{{.Description}}</p>{{end}}
<p><b>{{.Reason}}</b></p>
<h2>SLIs over time</h2>
<p class="note">Each point is the SLI over the trailing steady-state window, as the guard sampled it; the
green line is the SLI's bound, the red one the guard's abort bound. Grey dashed lines mark where each
phase began; shaded stretches are the faults (orange in the rollback rehearsal, red in the experiment); a
black dashed line marks the guard's abort.</p>
{{range .Plots}}{{.}}
{{end}}
<h2>Phases</h2>
<table><tr><th>phase</th><th>from</th><th>to</th><th>verdict</th><th>detail</th></tr>
{{range .Phases}}<tr><td>{{.Name}}</td><td>{{at $.Started .Started}}</td><td>{{at $.Started .Ended}}</td><td>{{if .Pass}}<span class="pass">ok</span>{{else}}<span class="fail">failed</span>{{end}}</td><td>{{.Detail}}</td></tr>
{{end}}</table>
<h2>Expectations</h2>
{{if .Expectations}}<table><tr><th>#</th><th>expected</th><th>observed</th><th>verdict</th></tr>
{{range .Expectations}}<tr><td>{{.Index}}</td><td>{{.Expect}}</td><td>{{.Observed}}</td><td>{{if .Pass}}<span class="pass">held</span>{{else}}<span class="fail">failed</span>{{end}}</td></tr>
{{end}}</table>{{else}}<p>none declared</p>{{end}}
<h2>Guard</h2>
<p class="note">The guard sampled the metrics every {{secs .Guard.Interval}} ({{.Guard.Samples}} samples, {{.Guard.Checks}} judged while armed).
{{with .Guard.Abort}}It aborted: the sample at {{at $.Started .BreachAt}} breached ({{.Reason}}); the last sample within bounds was at {{at $.Started .LastOKAt}};
the load was stopped and DELETE /chaos/faults answered at {{at $.Started .ActedAt}}{{if .ClearError}}, <span class="fail">with an error: {{.ClearError}}</span>{{else}}, removing {{.Cleared}} faults{{end}}.{{else}}It never tripped.{{end}}</p>
<table><tr><th>at</th><th>decision</th><th>detail</th></tr>
{{range .Guard.Decisions}}<tr><td>{{secs .T}}</td><td>{{.Action}}</td><td>{{.Detail}}</td></tr>
{{end}}</table>
<h2>Faults</h2>
<table><tr><th>#</th><th>phase</th><th>id</th><th>fault</th><th>added</th><th>removed</th><th>by</th><th>ttl</th><th>note</th></tr>
{{range .Faults}}<tr><td>{{.Index}}</td><td>{{.Phase}}</td><td>{{.ID}}</td><td>{{.What}}</td><td>{{at $.Started .AddedAt}}</td><td>{{at $.Started .RemovedAt}}</td><td>{{.RemovedBy}}</td><td>{{.TTL}}</td><td>{{.Error}}</td></tr>
{{end}}</table>
{{with .Load}}<h2>Load (the experiment)</h2>
<table><tr><th>planned</th><th>started</th><th>requests</th><th>ok</th><th>errors</th><th>p50</th><th>p99</th><th>elapsed</th><th>stopped</th></tr>
<tr><td>{{.Planned}}</td><td>{{.Started}}</td><td>{{.Requests}}</td><td>{{.OK}}</td><td>{{.Errors}}</td><td>{{printf "%.2f" .P50Ms}} ms</td><td>{{printf "%.2f" .P99Ms}} ms</td><td>{{secs .Elapsed}}</td><td>{{.Stopped}}</td></tr></table>{{end}}
{{if .Warnings}}<h2>Warnings</h2><ul>{{range .Warnings}}<li>{{.}}</li>{{end}}</ul>{{end}}
</body></html>
`
