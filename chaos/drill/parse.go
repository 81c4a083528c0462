package drill

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/redline-dev/redline/chaos/faults"
	"github.com/redline-dev/redline/sre/slo"
	"github.com/redline-dev/redline/stress/scenario"
)

// MaxBytes bounds a drill file.
const MaxBytes = 1 << 20

// Load reads the drill at path (Parse) and its load's scenario: a built-in name, or a file
// relative to the drill's directory, checked against the RedNote BFF's routes. Nothing is
// sent.
func Load(path string) (*Drill, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	d, err := Parse(path, b)
	if err != nil {
		return nil, err
	}
	if err := d.loadScenario(); err != nil {
		return nil, err
	}
	return d, nil
}

// loadScenario resolves d.Load.Scenario into d.Scenario.
func (d *Drill) loadScenario() error {
	if d.Scenario != nil {
		return nil
	}
	ref := d.Load.Scenario
	if !slices.Contains(scenario.Builtin(), ref) && !filepath.IsAbs(ref) && d.File != "" {
		ref = filepath.Join(filepath.Dir(d.File), ref)
	}
	s, err := scenario.Load(ref, scenario.Routes(scenario.RedNoteRoutes))
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, &FieldError{File: d.File, Field: "load.scenario", Reason: err.Error()})
	}
	d.Scenario = s
	return nil
}

// Parse reads a drill from YAML, strictly: unknown fields, wrong types and every rule of
// Validate are errors, all reported, joined, each a *FieldError naming the file, line and
// field path and wrapping ErrInvalid. file names the input in errors. Parse does not read
// the scenario (Load does).
func Parse(file string, data []byte) (*Drill, error) {
	p := &parser{file: file, lines: map[string]int{}, failed: map[string]bool{}}
	d := p.parse(data)
	if d == nil {
		return nil, joinErrors(p.errs)
	}
	for _, fe := range d.check(p.lines) {
		if !p.covered(fe.Field) {
			p.errs = append(p.errs, fe)
		}
	}
	slices.SortStableFunc(p.errs, func(a, b *FieldError) int {
		switch {
		case a.Line == b.Line:
			return 0
		case a.Line == 0:
			return 1
		case b.Line == 0:
			return -1
		}
		return a.Line - b.Line
	})
	if err := joinErrors(p.errs); err != nil {
		return nil, err
	}
	return d, nil
}

type parser struct {
	file   string
	errs   []*FieldError
	lines  map[string]int  // field path → line
	failed map[string]bool // fields already reported, so Validate does not repeat them
}

func (p *parser) fail(n *yaml.Node, field, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	p.failed[field] = true
	p.errs = append(p.errs, &FieldError{File: p.file, Line: line, Field: field, Reason: fmt.Sprintf(format, args...)})
}

// covered reports whether field, or a field above or below it, was already reported.
func (p *parser) covered(field string) bool {
	for f := range p.failed {
		if f == field || strings.HasPrefix(field, f+".") || strings.HasPrefix(field, f+"[") ||
			strings.HasPrefix(f, field+".") || strings.HasPrefix(f, field+"[") {
			return true
		}
	}
	return false
}

func (p *parser) parse(data []byte) *Drill {
	if len(data) > MaxBytes {
		p.fail(nil, "", "larger than %d bytes", MaxBytes)
		return nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			p.fail(nil, "", "empty: a drill needs name, steady_state, load and faults")
		} else {
			p.fail(nil, "", "YAML: %v", strings.TrimPrefix(err.Error(), "yaml: "))
		}
		return nil
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		p.fail(&extra, "", "one drill per file: a second YAML document follows")
		return nil
	}
	if len(doc.Content) == 0 {
		p.fail(&doc, "", "empty: a drill needs name, steady_state, load and faults")
		return nil
	}
	o := p.mapping(doc.Content[0], "")
	if o == nil {
		return nil
	}
	d := &Drill{File: p.file}
	d.Name = o.str("name")
	d.Description = o.str("description")
	if t := o.child("target"); t != nil {
		d.Target.BFF, d.Target.Admin = t.str("bff"), t.str("admin")
		t.end()
	}
	if ss := o.child("steady_state"); ss != nil {
		d.SteadyState.Window, _ = ss.duration("window")
		for i, n := range ss.list("slis") {
			s := p.mapping(n, fmt.Sprintf("%s[%d]", ss.join("slis"), i))
			if s == nil {
				continue
			}
			sli := SLI{Name: s.str("name"), Service: s.str("service"), Transport: slo.Transport(s.str("transport")),
				Routes: s.strs("routes"), Lane: s.str("lane")}
			if s.get("transport") == nil {
				sli.Transport = slo.HTTP
			}
			sli.MaxErrorRatio, _ = s.float("max_error_ratio")
			sli.MaxP99, _ = s.duration("max_p99")
			s.end()
			d.SteadyState.SLIs = append(d.SteadyState.SLIs, sli)
		}
		ss.end()
	}
	if l := o.child("load"); l != nil {
		d.Load.Scenario = l.str("scenario")
		d.Load.Rate, _ = l.float("rate")
		d.Load.Duration, _ = l.duration("duration")
		d.Load.Lane = l.str("lane")
		l.end()
	}
	for i, n := range o.list("faults") {
		f := p.mapping(n, fmt.Sprintf("faults[%d]", i))
		if f == nil {
			continue
		}
		var fl Fault
		fl.At, _ = f.duration("at")
		fl.For, _ = f.duration("for")
		if n := f.get("spec"); n == nil {
			p.fail(f.n, f.join("spec"), "required: the fault, as chaos/faults takes it (type, service, kind, ...)")
		} else if s := p.mapping(n, f.join("spec")); s != nil {
			fl.Spec = s.spec()
		}
		f.end()
		d.Faults = append(d.Faults, fl)
	}
	for i, n := range o.list("expect") {
		e := p.mapping(n, fmt.Sprintf("expect[%d]", i))
		if e == nil {
			continue
		}
		var x Expectation
		x.SLI, x.During, x.Metric = e.str("sli"), e.str("during"), e.str("metric")
		x.MaxErrorRatio, _ = e.float("max_error_ratio")
		x.MaxP99, _ = e.duration("max_p99")
		x.Labels = e.strMap("labels")
		var set bool
		x.Increases, set = e.boolean("increases")
		if x.Metric != "" && !set && !p.failed[e.join("increases")] {
			p.fail(e.n, e.join("increases"), "required for a metric expectation: true (it rises) or false (it stays put)")
		} else if x.Metric == "" && set {
			p.fail(e.get("increases"), e.join("increases"), "only a metric expectation takes increases")
		}
		x.Within, _ = e.duration("within")
		x.Goodput, _ = e.float("goodput")
		e.end()
		d.Expect = append(d.Expect, x)
	}
	if a := o.child("abort"); a != nil {
		d.Abort.MaxErrorRatio, _ = a.float("max_error_ratio")
		d.Abort.MaxP99, _ = a.duration("max_p99")
		a.end()
	}
	var set bool
	if d.GuardInterval, set = o.duration("guard_interval"); !set {
		d.GuardInterval = DefaultGuardInterval
	}
	if d.RollbackCheck, set = o.duration("rollback_check"); !set {
		d.RollbackCheck = d.SteadyState.Window
	}
	o.end()
	return d
}

// spec reads a fault spec; the drill's own validation (faults.Spec.Validate) follows.
func (o *obj) spec() faults.Spec {
	var s faults.Spec
	for k, dst := range map[string]*string{"id": &s.ID, "type": &s.Type, "service": &s.Service, "kind": &s.Kind,
		"side": &s.Side, "target": &s.Target, "op": &s.Op, "lane": &s.Lane, "delay": &s.Delay, "jitter": &s.Jitter,
		"message": &s.Message, "max_wait": &s.MaxWait, "reason": &s.Reason} {
		*dst = o.str(k)
	}
	s.Code = faults.ErrorCode(o.str("code"))
	s.Percent, _ = o.float("percent")
	for _, k := range []string{"ttl", "until"} {
		if n := o.get(k); n != nil {
			o.p.fail(n, o.join(k), "the drill sets each fault's ttl (for + %v, so it expires by itself): leave ttl and until out", TTLMargin)
		}
	}
	o.end()
	return s
}

// obj walks one YAML mapping and remembers which keys were read, so end can report the
// others as unknown fields.
type obj struct {
	p    *parser
	path string
	n    *yaml.Node
	keys map[string]*yaml.Node
	seen map[string]bool
}

func (p *parser) mapping(n *yaml.Node, path string) *obj {
	if n.Kind == yaml.AliasNode || n.Anchor != "" {
		p.fail(n, path, "YAML anchors and aliases are not supported")
		return nil
	}
	if n.Kind != yaml.MappingNode {
		p.fail(n, path, "want a mapping of fields")
		return nil
	}
	if path != "" {
		p.lines[path] = n.Line
	}
	o := &obj{p: p, path: path, n: n, keys: map[string]*yaml.Node{}, seen: map[string]bool{}}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		if _, dup := o.keys[k.Value]; dup {
			p.fail(k, o.join(k.Value), "duplicate field")
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

// get returns the value of key, nil when absent (or null), and marks it read.
func (o *obj) get(key string) *yaml.Node {
	o.seen[key] = true
	n := o.keys[key]
	if n == nil || n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil
	}
	o.p.lines[o.join(key)] = n.Line
	return n
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
		o.p.fail(o.keys[k], o.join(k), "unknown field")
	}
}

func (o *obj) scalar(key string) *yaml.Node {
	n := o.get(key)
	if n == nil {
		return nil
	}
	if n.Kind != yaml.ScalarNode {
		o.p.fail(n, o.join(key), "want a single value, not a list or mapping")
		return nil
	}
	return n
}

func (o *obj) str(key string) string {
	if n := o.scalar(key); n != nil {
		return n.Value
	}
	return ""
}

func (o *obj) float(key string) (float64, bool) {
	n := o.scalar(key)
	if n == nil {
		return 0, false
	}
	v, err := strconv.ParseFloat(n.Value, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		o.p.fail(n, o.join(key), "%q is not a number", n.Value)
		return 0, false
	}
	return v, true
}

func (o *obj) duration(key string) (time.Duration, bool) {
	n := o.scalar(key)
	if n == nil {
		return 0, false
	}
	d, err := time.ParseDuration(strings.TrimSpace(n.Value))
	if err != nil {
		o.p.fail(n, o.join(key), "%q is not a duration such as 250ms or 10s", n.Value)
		return 0, false
	}
	return d, true
}

func (o *obj) boolean(key string) (value, set bool) {
	n := o.scalar(key)
	if n == nil {
		return false, false
	}
	switch strings.ToLower(n.Value) {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	o.p.fail(n, o.join(key), "%q is not true or false", n.Value)
	return false, false
}

func (o *obj) child(key string) *obj {
	n := o.get(key)
	if n == nil {
		return nil
	}
	return o.p.mapping(n, o.join(key))
}

func (o *obj) list(key string) []*yaml.Node {
	n := o.get(key)
	if n == nil {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		o.p.fail(n, o.join(key), "want a list")
		return nil
	}
	return n.Content
}

func (o *obj) strs(key string) []string {
	var out []string
	for i, n := range o.list(key) {
		if n.Kind != yaml.ScalarNode {
			o.p.fail(n, fmt.Sprintf("%s[%d]", o.join(key), i), "want a string")
			continue
		}
		out = append(out, n.Value)
	}
	return out
}

func (o *obj) strMap(key string) map[string]string {
	m := o.child(key)
	if m == nil {
		return nil
	}
	out := map[string]string{}
	for k := range m.keys {
		out[k] = m.str(k)
	}
	return out
}
