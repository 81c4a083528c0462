package slo

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/redline-dev/redline/internal/specyaml"
)

// MaxSpecBytes bounds one spec file.
const MaxSpecBytes = 1 << 20

// maxDocuments bounds the documents of one file, so every parse ends.
const maxDocuments = 10000

// ParseFiles reads SLO specs from files; references (indicatorRef, alertPolicyRef, service)
// resolve across all of them. It returns every problem found, joined.
func ParseFiles(paths ...string) ([]SLO, error) {
	p := newParser()
	for _, path := range paths {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("slo: %w", err)
		}
		p.file(path, b)
	}
	return p.resolve()
}

// Parse reads SLO specs from one YAML stream of one or more documents; file names it in
// errors.
func Parse(file string, data []byte) ([]SLO, error) {
	p := newParser()
	p.file(file, data)
	return p.resolve()
}

type sloDoc struct {
	slo       SLO
	node      *specyaml.Mapping
	indRef    string
	indInline *yaml.Node
	policies  []string
	threshold *float64 // objective value of a thresholdMetric SLI
	// broken is set when its document already had errors: Validate would only repeat them
	// as zero values.
	broken bool
}

type sliDoc struct {
	file string
	ind  Indicator
	// threshold is true for a thresholdMetric SLI: the SLO's objective op/value sets the
	// latency bound.
	threshold bool
}

type parser struct {
	errs     []error
	services map[string]bool
	slis     map[string]sliDoc
	policies map[string]Condition
	slos     []*sloDoc
	names    map[string]string // kind/name → file, for duplicates
}

func newParser() *parser {
	return &parser{services: map[string]bool{}, slis: map[string]sliDoc{}, policies: map[string]Condition{}, names: map[string]string{}}
}

// report records one problem, wrapping ErrInvalid.
func (p *parser) report(fe *FieldError) {
	p.errs = append(p.errs, fmt.Errorf("%w: %w", ErrInvalid, fe))
}

func (p *parser) file(file string, data []byte) {
	w := specyaml.New(file, p.report, specyaml.Durations(ParseDuration))
	if len(data) > MaxSpecBytes {
		w.Failf(nil, "", "larger than %d bytes", MaxSpecBytes)
		return
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for i := 0; ; i++ {
		if i == maxDocuments {
			w.Failf(nil, "", "more than %d YAML documents", maxDocuments)
			return
		}
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			if i == 0 {
				w.Failf(nil, "", "no YAML documents")
			}
			return
		}
		if err != nil {
			w.Failf(nil, "", "YAML: %v", err)
			return
		}
		if len(doc.Content) == 0 {
			continue
		}
		p.document(file, w, doc.Content[0])
	}
}

func (p *parser) document(file string, w *specyaml.Decoder, n *yaml.Node) {
	o := w.Mapping(n, "")
	if o == nil {
		return
	}
	defer o.End()
	if v := o.Str("apiVersion", true); v != "" && v != "openslo/v1" {
		w.Failf(o.Get("apiVersion"), "apiVersion", "%q is not openslo/v1", v)
	}
	kind := o.Str("kind", true)
	md := o.Child("metadata", true)
	name := ""
	var minReq float64
	if md != nil {
		name = md.Str("name", true)
		md.Str("displayName", false)
		if name != "" && !dnsName.MatchString(name) {
			w.Failf(md.Get("name"), "metadata.name", "%q is not a DNS label (lowercase letters, digits and '-', at most 63)", name)
		}
		if an := md.Child("annotations", false); an != nil {
			if v := an.Str("redline/min-requests", false); v != "" {
				f, err := strconv.ParseFloat(v, 64)
				if err != nil || f < 0 || math.IsNaN(f) || math.IsInf(f, 0) {
					w.Failf(an.Get("redline/min-requests"), "metadata.annotations.redline/min-requests", "%q is not a non-negative number", v)
				}
				minReq = f
			}
			an.End()
		}
		md.End()
	}
	if name != "" && kind != "" {
		key := kind + "/" + name
		if prev, dup := p.names[key]; dup {
			w.Failf(n, "metadata.name", "%s %q is already defined in %s", kind, name, prev)
		}
		p.names[key] = file
	}
	spec := o.Child("spec", true)
	if spec == nil {
		return
	}
	errsBefore := len(p.errs)
	defer spec.End()
	switch kind {
	case "Service":
		spec.Str("description", false)
		p.services[name] = true
	case "SLI":
		ind, thr, ok := p.sli(spec)
		if ok {
			p.slis[name] = sliDoc{file: file, ind: ind, threshold: thr}
		}
	case "AlertPolicy":
		if c, ok := p.policy(spec); ok {
			p.policies[name] = c
		}
	case "SLO":
		d := p.slo(spec)
		d.slo.Name, d.slo.File, d.slo.MinRequests = name, file, minReq
		d.broken = len(p.errs) > errsBefore
		p.slos = append(p.slos, d)
	case "":
	default:
		w.Failf(o.Get("kind"), "kind", "%q is not one of Service, SLI, SLO, AlertPolicy", kind)
	}
}

func (p *parser) sli(spec *specyaml.Mapping) (Indicator, bool, bool) {
	spec.Str("description", false)
	ratio, thr := spec.Child("ratioMetric", false), spec.Child("thresholdMetric", false)
	switch {
	case ratio != nil && thr != nil:
		spec.Failf(spec.Node(), spec.Path(), "has both ratioMetric and thresholdMetric")
		return Indicator{}, false, false
	case thr != nil:
		defer thr.End()
		src := thr.Child("metricSource", true)
		if src == nil {
			return Indicator{}, false, false
		}
		ind, ok := p.source(src, "")
		if ind.Threshold != 0 {
			spec.Failf(src.Node(), src.Path()+".spec.le", "a thresholdMetric takes its bound from the objective's value")
			ok = false
		}
		ind.Kind = Latency
		return ind, true, ok
	case ratio != nil:
		defer ratio.End()
		if v, set := ratio.Bool("counter"); set && !v {
			spec.Failf(ratio.Get("counter"), ratio.Path()+".counter", "must be true: the redline metrics are counters")
		}
		good, bad := ratio.Child("good", false), ratio.Child("bad", false)
		total := ratio.Child("total", true)
		if (good == nil) == (bad == nil) {
			spec.Failf(ratio.Node(), ratio.Path(), "needs exactly one of good and bad")
			return Indicator{}, false, false
		}
		if total == nil {
			return Indicator{}, false, false
		}
		defer total.End()
		tsrc := total.Child("metricSource", true)
		if tsrc == nil {
			return Indicator{}, false, false
		}
		ind, ok := p.source(tsrc, "")
		if ind.Threshold != 0 {
			spec.Failf(tsrc.Node(), tsrc.Path()+".spec.le", "total counts every request: no le")
			ok = false
		}
		part, want := good, "le"
		ind.Kind = Latency
		if bad != nil {
			part, want, ind.Kind = bad, "outcome", Availability
		}
		defer part.End()
		psrc := part.Child("metricSource", true)
		if psrc == nil {
			return Indicator{}, false, false
		}
		pind, pok := p.source(psrc, want)
		ind.Threshold = pind.Threshold
		for _, f := range []struct {
			name      string
			got, base any
			set       bool
		}{
			{"transport", pind.Transport, ind.Transport, pind.Transport != ""},
			{"service", pind.Service, ind.Service, pind.Service != ""},
			{"routes", fmt.Sprint(pind.Routes), fmt.Sprint(ind.Routes), pind.Routes != nil},
		} {
			if f.set && f.got != f.base {
				spec.Failf(psrc.Node(), psrc.Path()+".spec."+f.name, "must match total's (%v) or be left out", f.base)
				pok = false
			}
		}
		return ind, false, ok && pok
	}
	spec.Failf(spec.Node(), spec.Path(), "needs ratioMetric or thresholdMetric")
	return Indicator{}, false, false
}

// source reads a metricSource; want is "" for total, "le" for good, "outcome" for bad.
func (p *parser) source(src *specyaml.Mapping, want string) (Indicator, bool) {
	defer src.End()
	ok := true
	if t := src.Str("type", true); t != "" && t != "redline" {
		src.Failf(src.Get("type"), src.Path()+".type", "%q is not redline (the only data source)", t)
		ok = false
	}
	src.Str("metricSourceRef", false)
	s := src.Child("spec", true)
	if s == nil {
		return Indicator{}, false
	}
	defer s.End()
	var ind Indicator
	ind.Transport = Transport(s.Str("transport", want == ""))
	ind.Service = s.Str("service", want == "")
	if rs := s.List("routes", false); rs != nil {
		ind.Routes = []string{}
		for i, r := range rs {
			if r.Kind != yaml.ScalarNode || r.Value == "" {
				src.Failf(r, fmt.Sprintf("%s.routes[%d]", s.Path(), i), "want a route label string")
				ok = false
				continue
			}
			ind.Routes = append(ind.Routes, r.Value)
		}
	}
	switch want {
	case "le":
		if v, set := s.Float("le", true); set {
			ind.Threshold = secondsDuration(v)
		}
	case "outcome":
		if o := s.Str("outcome", true); o != "" && o != "server_error" {
			src.Failf(s.Get("outcome"), s.Path()+".outcome", "%q is not server_error", o)
			ok = false
		}
	default:
		if v, set := s.Float("le", false); set {
			ind.Threshold = secondsDuration(v)
		}
	}
	return ind, ok
}

func secondsDuration(v float64) time.Duration {
	if !(v > 0 && v < 1e6) {
		return -1
	}
	return time.Duration(math.Round(v * 1e9))
}

func (p *parser) policy(spec *specyaml.Mapping) (Condition, bool) {
	spec.Str("description", false)
	if v, set := spec.Bool("alertWhenBreaching"); set && !v {
		spec.Failf(spec.Get("alertWhenBreaching"), spec.Path()+".alertWhenBreaching", "must be true: only breaching alerts are supported")
	}
	conds := spec.List("conditions", true)
	if len(conds) != 1 {
		if conds != nil {
			spec.Failf(spec.Get("conditions"), spec.Path()+".conditions", "want exactly one condition, got %d", len(conds))
		}
		return Condition{}, false
	}
	c := spec.Decoder().Mapping(conds[0], spec.Path()+".conditions[0]")
	if c == nil {
		return Condition{}, false
	}
	defer c.End()
	if k := c.Str("kind", true); k != "" && k != "AlertCondition" {
		spec.Failf(c.Get("kind"), c.Path()+".kind", "%q is not AlertCondition", k)
	}
	if md := c.Child("metadata", false); md != nil {
		md.Str("name", false)
		md.Str("displayName", false)
		md.End()
	}
	cs := c.Child("spec", true)
	if cs == nil {
		return Condition{}, false
	}
	defer cs.End()
	cs.Str("description", false)
	out := Condition{Severity: Severity(cs.Str("severity", true))}
	cond := cs.Child("condition", true)
	if cond == nil {
		return Condition{}, false
	}
	defer cond.End()
	if k := cond.Str("kind", true); k != "" && k != "burnrate" {
		spec.Failf(cond.Get("kind"), cond.Path()+".kind", "%q is not burnrate", k)
	}
	if op := cond.Str("op", true); op != "" && op != "gte" {
		spec.Failf(cond.Get("op"), cond.Path()+".op", "%q is not gte (fire when the burn rate is at least threshold)", op)
	}
	out.Factor, _ = cond.Float("threshold", true)
	out.Long, _ = cond.Duration("lookbackWindow", true)
	out.Short = out.Long / 12
	out.For, _ = cond.Duration("alertAfter", false)
	return out, true
}

func (p *parser) slo(spec *specyaml.Mapping) *sloDoc {
	d := &sloDoc{node: spec}
	s := &d.slo
	s.Description = spec.Str("description", false)
	s.Service = spec.Str("service", true)
	d.indRef = spec.Str("indicatorRef", false)
	d.indInline = spec.Get("indicator")
	if (d.indRef == "") == (d.indInline == nil) {
		spec.Failf(spec.Node(), spec.Path()+".indicatorRef", "needs exactly one of indicatorRef and indicator")
	}
	if tw := spec.List("timeWindow", true); tw != nil {
		if len(tw) != 1 {
			spec.Failf(spec.Get("timeWindow"), "spec.timeWindow", "want exactly one window, got %d", len(tw))
		} else if w := spec.Decoder().Mapping(tw[0], "spec.timeWindow[0]"); w != nil {
			rolling, set := w.Bool("isRolling")
			if !set {
				spec.Failf(w.Node(), "spec.timeWindow[0].isRolling", "required")
			}
			dur := w.Str("duration", true)
			if cal := w.Child("calendar", false); cal != nil {
				if tz := cal.Str("timeZone", false); tz != "" && tz != "UTC" {
					spec.Failf(cal.Get("timeZone"), cal.Path()+".timeZone", "%q: only UTC is supported", tz)
				}
				cal.End()
			}
			switch {
			case rolling:
				s.Period, _ = w.Duration("duration", true)
			case dur == "1w":
				s.Calendar, s.Period = "week", 7*Day
			case dur == "1M":
				s.Calendar, s.Period = "month", 30*Day
			case dur != "":
				spec.Failf(w.Get("duration"), "spec.timeWindow[0].duration", "a calendar window is 1w or 1M, not %q", dur)
			}
			w.End()
		}
	}
	s.Budgeting = Budgeting(spec.Str("budgetingMethod", true))
	if objs := spec.List("objectives", true); objs != nil {
		if len(objs) != 1 {
			spec.Failf(spec.Get("objectives"), "spec.objectives", "want exactly one objective, got %d", len(objs))
		} else if o := spec.Decoder().Mapping(objs[0], "spec.objectives[0]"); o != nil {
			o.Str("displayName", false)
			s.Objective, _ = o.Float("target", true)
			if op := o.Str("op", false); op != "" && op != "lte" {
				spec.Failf(o.Get("op"), "spec.objectives[0].op", "%q is not lte", op)
			}
			if v, set := o.Float("value", false); set {
				d.threshold = &v
			}
			s.TimesliceTarget, _ = o.Float("timeSliceTarget", false)
			s.TimesliceWindow, _ = o.Duration("timeSliceWindow", false)
			o.End()
		}
	}
	for i, ap := range spec.List("alertPolicies", false) {
		a := spec.Decoder().Mapping(ap, fmt.Sprintf("spec.alertPolicies[%d]", i))
		if a == nil {
			continue
		}
		if ref := a.Str("alertPolicyRef", true); ref != "" {
			d.policies = append(d.policies, ref)
		}
		a.End()
	}
	return d
}

// resolve joins SLOs with their SLIs and policies and validates them.
func (p *parser) resolve() ([]SLO, error) {
	var out []SLO
	for _, d := range p.slos {
		s, spec := d.slo, d.node
		if !p.services[s.Service] && s.Service != "" {
			spec.Failf(spec.Get("service"), "spec.service", "no Service named %q", s.Service)
		}
		var sli sliDoc
		var found bool
		switch {
		case d.indRef != "":
			if sli, found = p.slis[d.indRef]; !found {
				spec.Failf(spec.Get("indicatorRef"), "spec.indicatorRef", "no SLI named %q", d.indRef)
			}
		case d.indInline != nil:
			if o := spec.Decoder().Mapping(d.indInline, "spec.indicator"); o != nil {
				if md := o.Child("metadata", false); md != nil {
					md.Str("name", false)
					md.Str("displayName", false)
					md.End()
				}
				if is := o.Child("spec", true); is != nil {
					var thr, ok bool
					sli.ind, thr, ok = p.sli(is)
					sli.threshold, found = thr, ok
					is.End()
				}
				o.End()
			}
		}
		if found {
			s.Indicator = sli.ind
			switch {
			case sli.threshold && d.threshold == nil:
				spec.Failf(spec.Get("objectives"), "spec.objectives[0].value", "a thresholdMetric SLI needs op lte and a value in seconds")
			case sli.threshold:
				s.Indicator.Threshold = secondsDuration(*d.threshold)
			case d.threshold != nil:
				spec.Failf(spec.Get("objectives"), "spec.objectives[0].value", "only a thresholdMetric SLI takes a value")
			}
		}
		for i, ref := range d.policies {
			c, ok := p.policies[ref]
			if !ok {
				spec.Failf(spec.Get("alertPolicies"), fmt.Sprintf("spec.alertPolicies[%d].alertPolicyRef", i), "no AlertPolicy named %q", ref)
				continue
			}
			s.Conditions = append(s.Conditions, c)
		}
		if found && !d.broken {
			if err := s.Validate(); err != nil {
				p.errs = append(p.errs, err)
			}
		}
		out = append(out, s)
	}
	if len(p.errs) > 0 {
		return nil, errors.Join(p.errs...)
	}
	return out, nil
}
