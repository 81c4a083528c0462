package report

import (
	"fmt"
	"html"
	"html/template"
	"math"
	"strconv"
	"strings"
)

// A line plot drawn as inline SVG, so the report needs nothing from outside.

const (
	plotW, plotH                        = 760, 280
	padL, padR, padT, padB              = 64, 16, 28, 44
	innerW, innerH                      = plotW - padL - padR, plotH - padT - padB
	colorOK, colorErr, colorP50, colorS = "#2e7d32", "#c62828", "#1565c0", "#6a1b9a"
	colorP99, colorP999                 = "#ef6c00", "#c62828"
)

// line is one plotted series.
type line struct {
	name, color string
	x, y        []float64
}

// axis says how one axis is scaled and labelled. With ticks set they are used as they
// are; otherwise they are chosen: powers of ten on a log axis, round steps on a linear one.
type axis struct {
	label string
	log   bool
	min   float64 // the lowest value shown (ignored when it exceeds the data's)
	ticks []tick
	spans []span // x axis only: stretches shaded, or instants marked, behind the lines
}

// span is a shaded stretch [from, to] of the x axis, or a vertical line when to == from.
type span struct {
	from, to     float64
	label, color string
}

type tick struct {
	v     float64
	label string
}

// plot renders lines as an SVG line chart.
func plot(title string, xa, ya axis, lines []line) template.HTML {
	xmin, xmax, ymin, ymax := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
	for _, l := range lines {
		for i := range l.x {
			if ya.log && l.y[i] <= 0 {
				continue
			}
			xmin, xmax = math.Min(xmin, l.x[i]), math.Max(xmax, l.x[i])
			ymin, ymax = math.Min(ymin, l.y[i]), math.Max(ymax, l.y[i])
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="%s">`,
		plotW, plotH, plotW, plotH, html.EscapeString(title))
	fmt.Fprintf(&b, `<text x="%d" y="18" class="title">%s</text>`, padL, html.EscapeString(title))
	if math.IsInf(xmin, 1) {
		fmt.Fprintf(&b, `<text x="%d" y="%d">no data</text></svg>`, plotW/2-30, plotH/2)
		return template.HTML(b.String())
	}
	if !ya.log {
		ymin = math.Min(ymin, ya.min)
	}
	if n := len(xa.ticks); n > 0 { // explicit ticks span the axis
		xmin, xmax = math.Min(xmin, xa.ticks[0].v), math.Max(xmax, xa.ticks[n-1].v)
	}
	for _, s := range xa.spans {
		xmin, xmax = math.Min(xmin, s.from), math.Max(xmax, s.to)
	}
	if xmax == xmin {
		xmax = xmin + 1
	}
	ty := func(v float64) float64 { return v }
	if ya.log {
		ymin, ymax = math.Pow(10, math.Floor(math.Log10(ymin))), math.Pow(10, math.Ceil(math.Log10(ymax)))
		ty = math.Log10
	} else if ymax == ymin {
		ymax = ymin + 1
	}
	if !ya.log {
		ymax = niceCeil(ymax)
	}
	px := func(v float64) float64 { return padL + (v-xmin)/(xmax-xmin)*innerW }
	py := func(v float64) float64 { return padT + innerH - (ty(v)-ty(ymin))/(ty(ymax)-ty(ymin))*innerH }

	// Grid, ticks and axis labels.
	xt, yt := xa.ticks, ya.ticks
	if xt == nil {
		xt = linearTicks(xmin, xmax)
	}
	if yt == nil {
		if ya.log {
			yt = logTicks(ymin, ymax)
		} else {
			yt = linearTicks(ymin, ymax)
		}
	}
	for _, t := range xt {
		if t.v < xmin || t.v > xmax {
			continue
		}
		x := px(t.v)
		anchor := "middle"
		if x > padL+innerW-20 { // the last label would run past the edge
			anchor = "end"
		}
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" class="grid"/><text x="%.1f" y="%d" class="tick" text-anchor="%s">%s</text>`,
			x, padT, x, padT+innerH, x, padT+innerH+16, anchor, html.EscapeString(t.label))
	}
	for _, t := range yt {
		if t.v < ymin || t.v > ymax {
			continue
		}
		y := py(t.v)
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" class="grid"/><text x="%d" y="%.1f" class="tick" text-anchor="end">%s</text>`,
			padL, y, padL+innerW, y, padL-6, y+4, html.EscapeString(t.label))
	}
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" class="frame"/>`, padL, padT, innerW, innerH)
	fmt.Fprintf(&b, `<text x="%d" y="%d" class="axis" text-anchor="middle">%s</text>`, padL+innerW/2, plotH-6, html.EscapeString(xa.label))
	fmt.Fprintf(&b, `<text x="14" y="%d" class="axis" text-anchor="middle" transform="rotate(-90 14 %d)">%s</text>`,
		padT+innerH/2, padT+innerH/2, html.EscapeString(ya.label))

	// Spans, behind the lines; each label at the top of its span, inside the frame, in the
	// first of three rows where it does not run into the label before it.
	var rowEnd [3]float64
	for _, s := range xa.spans {
		x0, x1 := px(s.from), px(math.Max(s.to, s.from))
		if x1-x0 < 0.5 {
			fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="%s" stroke-width="1.5" stroke-dasharray="4 3"/>`,
				x0, padT, x0, padT+innerH, s.color)
		} else {
			fmt.Fprintf(&b, `<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s" fill-opacity="0.14"/>`, x0, padT, x1-x0, innerH, s.color)
		}
		if s.label != "" {
			w := 6.5 * float64(len([]rune(s.label)))
			tx, anchor, start := x0+3, "start", x0
			if tx+w > padL+innerW { // it would run past the frame: end it at the span instead
				tx, anchor, start = x0-3, "end", x0-6-w
			}
			row := 0
			for r := range rowEnd {
				if rowEnd[r] <= start {
					row = r
					break
				}
				if rowEnd[r] < rowEnd[row] {
					row = r
				}
			}
			rowEnd[row] = start + w + 6
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" class="tick" text-anchor="%s" style="fill:%s">%s</text>`,
				tx, padT+12+12*row, anchor, s.color, html.EscapeString(s.label))
		}
	}

	// The lines, then the legend.
	for _, l := range lines {
		var pts []string
		for i := range l.x {
			if ya.log && l.y[i] <= 0 {
				continue
			}
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(l.x[i]), py(l.y[i])))
		}
		if len(pts) == 1 {
			pts = append(pts, pts[0])
		}
		fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="1.8"/>`, strings.Join(pts, " "), l.color)
	}
	// The legend sits in the title row, right-aligned, one entry after another.
	lx := padL + innerW
	for i := len(lines) - 1; i >= 0; i-- {
		l := lines[i]
		lx -= 30 + 7*len([]rune(l.name))
		fmt.Fprintf(&b, `<line x1="%d" y1="14" x2="%d" y2="14" stroke="%s" stroke-width="3"/><text x="%d" y="18" class="legend">%s</text>`,
			lx, lx+18, l.color, lx+24, html.EscapeString(l.name))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

// linearTicks returns about five round ticks from lo to hi.
func linearTicks(lo, hi float64) []tick {
	step := niceCeil((hi - lo) / 5)
	var out []tick
	for v := math.Ceil(lo/step) * step; v <= hi+step/1e6 && len(out) < 20; v += step {
		out = append(out, tick{v, strconv.FormatFloat(v, 'g', 6, 64)})
	}
	return out
}

// logTicks returns the powers of ten from lo to hi.
func logTicks(lo, hi float64) []tick {
	var out []tick
	for e := math.Floor(math.Log10(lo)); e <= math.Ceil(math.Log10(hi)) && len(out) < 20; e++ {
		out = append(out, tick{math.Pow(10, e), strconv.FormatFloat(math.Pow(10, e), 'g', 6, 64)})
	}
	return out
}

// spectrumX places percentile p (0–100) on HdrHistogram's axis: log10(1/(1−p)), so 90% is
// 1, 99% is 2, 99.9% is 3.
func spectrumX(p float64) float64 { return math.Log10(1 / (1 - p/100)) }

// spectrumTicks label the spectrum's x axis, 0% to 99.99999%, up to maxX.
func spectrumTicks(maxX float64) []tick {
	out := []tick{{0, "0%"}, {1, "90%"}, {2, "99%"}}
	for e := 3; e <= 7; e++ {
		out = append(out, tick{float64(e), "99." + strings.Repeat("9", e-2) + "%"})
	}
	n := 0
	for n < len(out) && out[n].v <= math.Ceil(maxX) {
		n++
	}
	return out[:max(n, 2)]
}
