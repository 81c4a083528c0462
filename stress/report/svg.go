package report

import "html/template"

// Series is one line of a Plot: points (X[i], Y[i]) joined in order.
type Series struct {
	Name, Color string
	X, Y        []float64
}

// Axis scales one axis of a Plot. Spans apply to the x axis only.
type Axis struct {
	Label string
	// Log makes the axis logarithmic (powers of ten); points ≤ 0 are left out.
	Log bool
	// Min is the lowest value a linear axis shows, so 0 can stay in view.
	Min float64
	// Spans are stretches of the x axis shaded behind the lines, or instants marked with a
	// dashed vertical line (To == From), each with its label at the top.
	Spans []Span
}

// Span is a stretch [From, To] of a Plot's x axis, or one instant when To == From.
type Span struct {
	From, To     float64
	Label, Color string
}

// Plot renders series as a self-contained SVG line chart, the one the stress report
// draws; PlotCSS styles its grid, ticks and labels.
func Plot(title string, x, y Axis, series []Series) template.HTML {
	lines := make([]line, len(series))
	for i, s := range series {
		lines[i] = line{name: s.Name, color: s.Color, x: s.X, y: s.Y}
	}
	return plot(title, x.axis(), y.axis(), lines)
}

func (a Axis) axis() axis {
	out := axis{label: a.Label, log: a.Log, min: a.Min}
	for _, s := range a.Spans {
		out.spans = append(out.spans, span{from: s.From, to: max(s.To, s.From), label: s.Label, color: s.Color})
	}
	return out
}

// PlotCSS is the style sheet Plot's SVG expects, for pages other than the stress report.
const PlotCSS = `svg{display:block;margin:12px 0}svg .grid{stroke:#eee}svg .frame{fill:none;stroke:#bbb}
svg .tick,svg .legend{font-size:11px;fill:#444}svg .axis{font-size:12px;fill:#222}svg .title{font-size:13px;font-weight:600}`
