package slo

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
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
	node      *obj
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

func (p *parser) fail(file string, n *yaml.Node, field, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	p.errs = append(p.errs, fmt.Errorf("%w: %w", ErrInvalid, &FieldError{File: file, Line: line, Field: field, Reason: fmt.Sprintf(format, args...)}))
}

func (p *parser) file(file string, data []byte) {
	if len(data) > MaxSpecBytes {
		p.fail(file, nil, "", "larger than %d bytes", MaxSpecBytes)
		return
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for i := 0; ; i++ {
		if i == maxDocuments {
			p.fail(file, nil, "", "more than %d YAML documents", maxDocuments)
			return
		}
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			if i == 0 {
				p.fail(file, nil, "", "no YAML documents")
			}
			return
		}
		if err != nil {
			p.fail(file, nil, "", "YAML: %v", err)
			return
		}
		if len(doc.Content) == 0 {
			continue
		}
		p.document(file, doc.Content[0])
	}
}

func (p *parser) document(file string, n *yaml.Node) {
	o := p.mapping(file, n, "")
	if o == nil {
		return
	}
	defer o.end()
	if v := o.str("apiVersion", true); v != "" && v != "openslo/v1" {
		p.fail(file, o.get("apiVersion"), "apiVersion", "%q is not openslo/v1", v)
	}
	kind := o.str("kind", true)
	md := o.child("metadata", true)
	name := ""
	var minReq float64
	if md != nil {
		name = md.str("name", true)
		md.str("displayName", false)
		if name != "" && !dnsName.MatchString(name) {
			p.fail(file, md.get("name"), "metadata.name", "%q is not a DNS label (lowercase letters, digits and '-', at most 63)", name)
		}
		if an := md.child("annotations", false); an != nil {
			if v := an.str("redline/min-requests", false); v != "" {
				f, err := strconv.ParseFloat(v, 64)
				if err != nil || f < 0 || math.IsNaN(f) || math.IsInf(f, 0) {
					p.fail(file, an.get("redline/min-requests"), "metadata.annotations.redline/min-requests", "%q is not a non-negative number", v)
				}
				minReq = f
			}
			an.end()
		}
		md.end()
	}
	if name != "" && kind != "" {
		key := kind + "/" + name
		if prev, dup := p.names[key]; dup {
			p.fail(file, n, "metadata.name", "%s %q is already defined in %s", kind, name, prev)
		}
		p.names[key] = file
	}
	spec := o.child("spec", true)
	if spec == nil {
		return
	}
	errsBefore := len(p.errs)
	defer spec.end()
	switch kind {
	case "Service":
		spec.str("description", false)
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
		p.fail(file, o.get("kind"), "kind", "%q is not one of Service, SLI, SLO, AlertPolicy", kind)
	}
}

func (p *parser) sli(spec *obj) (Indicator, bool, bool) {
	spec.str("description", false)
	ratio, thr := spec.child("ratioMetric", false), spec.child("thresholdMetric", false)
	switch {
	case ratio != nil && thr != nil:
		p.fail(spec.file, spec.n, spec.path, "has both ratioMetric and thresholdMetric")
		return Indicator{}, false, false
	case thr != nil:
		defer thr.end()
		src := thr.child("metricSource", true)
		if src == nil {
			return Indicator{}, false, false
		}
		ind, ok := p.source(src, "")
		if ind.Threshold != 0 {
			p.fail(spec.file, src.n, src.path+".spec.le", "a thresholdMetric takes its bound from the objective's value")
			ok = false
		}
		ind.Kind = Latency
		return ind, true, ok
	case ratio != nil:
		defer ratio.end()
		if v, set := ratio.boolean("counter"); set && !v {
			p.fail(spec.file, ratio.get("counter"), ratio.path+".counter", "must be true: the redline metrics are counters")
		}
		good, bad := ratio.child("good", false), ratio.child("bad", false)
		total := ratio.child("total", true)
		if (good == nil) == (bad == nil) {
			p.fail(spec.file, ratio.n, ratio.path, "needs exactly one of good and bad")
			return Indicator{}, false, false
		}
		if total == nil {
			return Indicator{}, false, false
		}
		defer total.end()
		tsrc := total.child("metricSource", true)
		if tsrc == nil {
			return Indicator{}, false, false
		}
		ind, ok := p.source(tsrc, "")
		if ind.Threshold != 0 {
			p.fail(spec.file, tsrc.n, tsrc.path+".spec.le", "total counts every request: no le")
			ok = false
		}
		part, want := good, "le"
		ind.Kind = Latency
		if bad != nil {
			part, want, ind.Kind = bad, "outcome", Availability
		}
		defer part.end()
		psrc := part.child("metricSource", true)
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
				p.fail(spec.file, psrc.n, psrc.path+".spec."+f.name, "must match total's (%v) or be left out", f.base)
				pok = false
			}
		}
		return ind, false, ok && pok
	}
	p.fail(spec.file, spec.n, spec.path, "needs ratioMetric or thresholdMetric")
	return Indicator{}, false, false
}

// source reads a metricSource; want is "" for total, "le" for good, "outcome" for bad.
func (p *parser) source(src *obj, want string) (Indicator, bool) {
	defer src.end()
	ok := true
	if t := src.str("type", true); t != "" && t != "redline" {
		p.fail(src.file, src.get("type"), src.path+".type", "%q is not redline (the only data source)", t)
		ok = false
	}
	src.str("metricSourceRef", false)
	s := src.child("spec", true)
	if s == nil {
		return Indicator{}, false
	}
	defer s.end()
	var ind Indicator
	ind.Transport = Transport(s.str("transport", want == ""))
	ind.Service = s.str("service", want == "")
	if rs := s.list("routes", false); rs != nil {
		ind.Routes = []string{}
		for i, r := range rs {
			if r.Kind != yaml.ScalarNode || r.Value == "" {
				p.fail(src.file, r, fmt.Sprintf("%s.routes[%d]", s.path, i), "want a route label string")
				ok = false
				continue
			}
			ind.Routes = append(ind.Routes, r.Value)
		}
	}
	switch want {
	case "le":
		if v, set := s.float("le", true); set {
			ind.Threshold = secondsDuration(v)
		}
	case "outcome":
		if o := s.str("outcome", true); o != "" && o != "server_error" {
			p.fail(src.file, s.get("outcome"), s.path+".outcome", "%q is not server_error", o)
			ok = false
		}
	default:
		if v, set := s.float("le", false); set {
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

func (p *parser) policy(spec *obj) (Condition, bool) {
	spec.str("description", false)
	if v, set := spec.boolean("alertWhenBreaching"); set && !v {
		p.fail(spec.file, spec.get("alertWhenBreaching"), spec.path+".alertWhenBreaching", "must be true: only breaching alerts are supported")
	}
	conds := spec.list("conditions", true)
	if len(conds) != 1 {
		if conds != nil {
			p.fail(spec.file, spec.get("conditions"), spec.path+".conditions", "want exactly one condition, got %d", len(conds))
		}
		return Condition{}, false
	}
	c := p.mapping(spec.file, conds[0], spec.path+".conditions[0]")
	if c == nil {
		return Condition{}, false
	}
	defer c.end()
	if k := c.str("kind", true); k != "" && k != "AlertCondition" {
		p.fail(spec.file, c.get("kind"), c.path+".kind", "%q is not AlertCondition", k)
	}
	if md := c.child("metadata", false); md != nil {
		md.str("name", false)
		md.str("displayName", false)
		md.end()
	}
	cs := c.child("spec", true)
	if cs == nil {
		return Condition{}, false
	}
	defer cs.end()
	cs.str("description", false)
	out := Condition{Severity: Severity(cs.str("severity", true))}
	cond := cs.child("condition", true)
	if cond == nil {
		return Condition{}, false
	}
	defer cond.end()
	if k := cond.str("kind", true); k != "" && k != "burnrate" {
		p.fail(spec.file, cond.get("kind"), cond.path+".kind", "%q is not burnrate", k)
	}
	if op := cond.str("op", true); op != "" && op != "gte" {
		p.fail(spec.file, cond.get("op"), cond.path+".op", "%q is not gte (fire when the burn rate is at least threshold)", op)
	}
	out.Factor, _ = cond.float("threshold", true)
	out.Long = cond.duration("lookbackWindow", true)
	out.Short = out.Long / 12
	out.For = cond.duration("alertAfter", false)
	return out, true
}

func (p *parser) slo(spec *obj) *sloDoc {
	d := &sloDoc{node: spec}
	s := &d.slo
	s.Description = spec.str("description", false)
	s.Service = spec.str("service", true)
	d.indRef = spec.str("indicatorRef", false)
	d.indInline = spec.get("indicator")
	if (d.indRef == "") == (d.indInline == nil) {
		p.fail(spec.file, spec.n, spec.path+".indicatorRef", "needs exactly one of indicatorRef and indicator")
	}
	if tw := spec.list("timeWindow", true); tw != nil {
		if len(tw) != 1 {
			p.fail(spec.file, spec.get("timeWindow"), "spec.timeWindow", "want exactly one window, got %d", len(tw))
		} else if w := p.mapping(spec.file, tw[0], "spec.timeWindow[0]"); w != nil {
			rolling, set := w.boolean("isRolling")
			if !set {
				p.fail(spec.file, w.n, "spec.timeWindow[0].isRolling", "required")
			}
			dur := w.str("duration", true)
			if cal := w.child("calendar", false); cal != nil {
				if tz := cal.str("timeZone", false); tz != "" && tz != "UTC" {
					p.fail(spec.file, cal.get("timeZone"), cal.path+".timeZone", "%q: only UTC is supported", tz)
				}
				cal.end()
			}
			switch {
			case rolling:
				s.Period = w.duration("duration", true)
			case dur == "1w":
				s.Calendar, s.Period = "week", 7*Day
			case dur == "1M":
				s.Calendar, s.Period = "month", 30*Day
			case dur != "":
				p.fail(spec.file, w.get("duration"), "spec.timeWindow[0].duration", "a calendar window is 1w or 1M, not %q", dur)
			}
			w.end()
		}
	}
	s.Budgeting = Budgeting(spec.str("budgetingMethod", true))
	if objs := spec.list("objectives", true); objs != nil {
		if len(objs) != 1 {
			p.fail(spec.file, spec.get("objectives"), "spec.objectives", "want exactly one objective, got %d", len(objs))
		} else if o := p.mapping(spec.file, objs[0], "spec.objectives[0]"); o != nil {
			o.str("displayName", false)
			s.Objective, _ = o.float("target", true)
			if op := o.str("op", false); op != "" && op != "lte" {
				p.fail(spec.file, o.get("op"), "spec.objectives[0].op", "%q is not lte", op)
			}
			if v, set := o.float("value", false); set {
				d.threshold = &v
			}
			s.TimesliceTarget, _ = o.float("timeSliceTarget", false)
			s.TimesliceWindow = o.duration("timeSliceWindow", false)
			o.end()
		}
	}
	for i, ap := range spec.list("alertPolicies", false) {
		a := p.mapping(spec.file, ap, fmt.Sprintf("spec.alertPolicies[%d]", i))
		if a == nil {
			continue
		}
		if ref := a.str("alertPolicyRef", true); ref != "" {
			d.policies = append(d.policies, ref)
		}
		a.end()
	}
	return d
}

// resolve joins SLOs with their SLIs and policies and validates them.
func (p *parser) resolve() ([]SLO, error) {
	var out []SLO
	for _, d := range p.slos {
		s, spec := d.slo, d.node
		if !p.services[s.Service] && s.Service != "" {
			p.fail(spec.file, spec.get("service"), "spec.service", "no Service named %q", s.Service)
		}
		var sli sliDoc
		var found bool
		switch {
		case d.indRef != "":
			if sli, found = p.slis[d.indRef]; !found {
				p.fail(spec.file, spec.get("indicatorRef"), "spec.indicatorRef", "no SLI named %q", d.indRef)
			}
		case d.indInline != nil:
			if o := p.mapping(spec.file, d.indInline, "spec.indicator"); o != nil {
				if md := o.child("metadata", false); md != nil {
					md.str("name", false)
					md.str("displayName", false)
					md.end()
				}
				if is := o.child("spec", true); is != nil {
					var thr, ok bool
					sli.ind, thr, ok = p.sli(is)
					sli.threshold, found = thr, ok
					is.end()
				}
				o.end()
			}
		}
		if found {
			s.Indicator = sli.ind
			switch {
			case sli.threshold && d.threshold == nil:
				p.fail(spec.file, spec.get("objectives"), "spec.objectives[0].value", "a thresholdMetric SLI needs op lte and a value in seconds")
			case sli.threshold:
				s.Indicator.Threshold = secondsDuration(*d.threshold)
			case d.threshold != nil:
				p.fail(spec.file, spec.get("objectives"), "spec.objectives[0].value", "only a thresholdMetric SLI takes a value")
			}
		}
		for i, ref := range d.policies {
			c, ok := p.policies[ref]
			if !ok {
				p.fail(spec.file, spec.get("alertPolicies"), fmt.Sprintf("spec.alertPolicies[%d].alertPolicyRef", i), "no AlertPolicy named %q", ref)
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

// obj walks one YAML mapping and remembers which keys were read, so end can report the
// others as unknown fields.
type obj struct {
	p    *parser
	file string
	path string
	n    *yaml.Node
	keys map[string]*yaml.Node
	seen map[string]bool
}

func (p *parser) mapping(file string, n *yaml.Node, path string) *obj {
	field := path
	if n.Kind == yaml.AliasNode || n.Anchor != "" {
		p.fail(file, n, field, "YAML anchors and aliases are not supported")
		return nil
	}
	if n.Kind != yaml.MappingNode {
		p.fail(file, n, field, "want a mapping")
		return nil
	}
	o := &obj{p: p, file: file, path: path, n: n, keys: map[string]*yaml.Node{}, seen: map[string]bool{}}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		if _, dup := o.keys[k.Value]; dup {
			p.fail(file, k, o.join(k.Value), "duplicate field")
			continue
		}
		o.keys[k.Value] = n.Content[i+1]
	}
	return o
}

func (o *obj) join(key string) string {
	if o.path == "" {
		return key
	}
	return o.path + "." + key
}

func (o *obj) get(key string) *yaml.Node {
	o.seen[key] = true
	return o.keys[key]
}

func (o *obj) end() {
	var unknown []string
	for k := range o.keys {
		if !o.seen[k] {
			unknown = append(unknown, k)
		}
	}
	slices.Sort(unknown)
	for _, k := range unknown {
		o.p.fail(o.file, o.keys[k], o.join(k), "unknown field")
	}
}

func (o *obj) scalar(key string, required bool) *yaml.Node {
	n := o.get(key)
	if n == nil {
		if required {
			o.p.fail(o.file, o.n, o.join(key), "required")
		}
		return nil
	}
	if n.Kind != yaml.ScalarNode {
		o.p.fail(o.file, n, o.join(key), "want a scalar")
		return nil
	}
	return n
}

func (o *obj) str(key string, required bool) string {
	n := o.scalar(key, required)
	if n == nil {
		return ""
	}
	if n.Value == "" && required {
		o.p.fail(o.file, n, o.join(key), "required")
	}
	return n.Value
}

func (o *obj) float(key string, required bool) (float64, bool) {
	n := o.scalar(key, required)
	if n == nil {
		return 0, false
	}
	v, err := strconv.ParseFloat(n.Value, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		o.p.fail(o.file, n, o.join(key), "%q is not a number", n.Value)
		return 0, false
	}
	return v, true
}

func (o *obj) boolean(key string) (value, set bool) {
	n := o.scalar(key, false)
	if n == nil {
		return false, false
	}
	switch strings.ToLower(n.Value) {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	o.p.fail(o.file, n, o.join(key), "%q is not true or false", n.Value)
	return false, false
}

func (o *obj) duration(key string, required bool) time.Duration {
	n := o.scalar(key, required)
	if n == nil {
		return 0
	}
	d, err := ParseDuration(n.Value)
	if err != nil {
		o.p.fail(o.file, n, o.join(key), "%v", err)
	}
	return d
}

func (o *obj) child(key string, required bool) *obj {
	n := o.get(key)
	if n == nil {
		if required {
			o.p.fail(o.file, o.n, o.join(key), "required")
		}
		return nil
	}
	return o.p.mapping(o.file, n, o.join(key))
}

func (o *obj) list(key string, required bool) []*yaml.Node {
	n := o.get(key)
	if n == nil {
		if required {
			o.p.fail(o.file, o.n, o.join(key), "required")
		}
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		o.p.fail(o.file, n, o.join(key), "want a list")
		return nil
	}
	if len(n.Content) == 0 {
		if required {
			o.p.fail(o.file, n, o.join(key), "must not be empty")
		}
		return []*yaml.Node{}
	}
	return n.Content
}
