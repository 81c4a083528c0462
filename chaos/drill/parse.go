package drill

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/redline-dev/redline/chaos/faults"
	"github.com/redline-dev/redline/chaos/netfault"
	"github.com/redline-dev/redline/internal/specyaml"
	"github.com/redline-dev/redline/sre/slo"
	"github.com/redline-dev/redline/stress/scenario"
)

// MaxBytes bounds a drill file.
const MaxBytes = 1 << 20

//go:embed builtin/*.yaml
var builtins embed.FS

// builtinPrefix names the file of a built-in drill in errors and reports.
const builtinPrefix = "builtin:"

// Builtin lists the built-in drills, by name: the demo's game days (package doc).
func Builtin() []string {
	ents, _ := builtins.ReadDir("builtin")
	var out []string
	for _, e := range ents {
		out = append(out, strings.TrimSuffix(e.Name(), ".yaml"))
	}
	return out
}

// BuiltinSource returns the YAML of the built-in drill name.
func BuiltinSource(name string) ([]byte, error) {
	if !slices.Contains(Builtin(), name) {
		return nil, fmt.Errorf("%w: %q is not a built-in drill (%s)", ErrInvalid, name, strings.Join(Builtin(), ", "))
	}
	return builtins.ReadFile("builtin/" + name + ".yaml")
}

// Load reads the drill at ref (Parse) and its load's scenario: a built-in name, or a file
// relative to the drill's directory, checked against the RedNote BFF's routes. ref is a
// file, or the name of a built-in drill (Builtin) when no such file exists. Nothing is
// sent.
func Load(ref string) (*Drill, error) {
	path := ref
	b, err := os.ReadFile(ref)
	if errors.Is(err, fs.ErrNotExist) && slices.Contains(Builtin(), ref) {
		path = builtinPrefix + ref
		b, err = BuiltinSource(ref)
	}
	if errors.Is(err, fs.ErrNotExist) && !strings.ContainsAny(ref, "/.") {
		return nil, fmt.Errorf("%w: %q is neither a drill file nor a built-in drill (%s)", ErrInvalid, ref, strings.Join(Builtin(), ", "))
	}
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
	if !slices.Contains(scenario.Builtin(), ref) && !filepath.IsAbs(ref) && d.File != "" && !strings.HasPrefix(d.File, builtinPrefix) {
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
	p.dec = specyaml.New(file, p.report, specyaml.Durations(parseDuration), specyaml.NullIsAbsent(), specyaml.Lines(p.lines),
		specyaml.Reasons("want a mapping of fields", "want a single value, not a list or mapping"))
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
	dec    *specyaml.Decoder
	errs   []*FieldError
	lines  map[string]int  // field path → line
	failed map[string]bool // fields already reported, so Validate does not repeat them
}

// report records one problem and its field, so Validate does not repeat it.
func (p *parser) report(fe *FieldError) {
	p.failed[fe.Field] = true
	p.errs = append(p.errs, fe)
}

// parseDuration reads a Go duration such as 250ms or 10s.
func parseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration such as 250ms or 10s", s)
	}
	return d, nil
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
		p.dec.Failf(nil, "", "larger than %d bytes", MaxBytes)
		return nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			p.dec.Failf(nil, "", "empty: a drill needs name, steady_state, load and faults")
		} else {
			p.dec.Failf(nil, "", "YAML: %v", strings.TrimPrefix(err.Error(), "yaml: "))
		}
		return nil
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		p.dec.Failf(&extra, "", "one drill per file: a second YAML document follows")
		return nil
	}
	if len(doc.Content) == 0 {
		p.dec.Failf(&doc, "", "empty: a drill needs name, steady_state, load and faults")
		return nil
	}
	o := p.dec.Mapping(doc.Content[0], "")
	if o == nil {
		return nil
	}
	d := &Drill{File: p.file}
	d.Name = o.Str("name", false)
	d.Description = o.Str("description", false)
	if t := o.Child("target", false); t != nil {
		d.Target.BFF, d.Target.Admin, d.Target.Procs = t.Str("bff", false), t.Str("admin", false), t.Str("procs", false)
		t.End()
	}
	if ss := o.Child("steady_state", false); ss != nil {
		d.SteadyState.Window, _ = ss.Duration("window", false)
		for i, n := range ss.List("slis", false) {
			s := p.dec.Mapping(n, fmt.Sprintf("%s[%d]", ss.Join("slis"), i))
			if s == nil {
				continue
			}
			sli := SLI{Name: s.Str("name", false), Service: s.Str("service", false), Transport: slo.Transport(s.Str("transport", false)),
				Routes: strs(s, "routes"), Lane: s.Str("lane", false)}
			if s.Get("transport") == nil {
				sli.Transport = slo.HTTP
			}
			sli.MaxErrorRatio, _ = s.Float("max_error_ratio", false)
			sli.MaxP99, _ = s.Duration("max_p99", false)
			s.End()
			d.SteadyState.SLIs = append(d.SteadyState.SLIs, sli)
		}
		ss.End()
	}
	if l := o.Child("load", false); l != nil {
		d.Load.Scenario = l.Str("scenario", false)
		d.Load.Rate, _ = l.Float("rate", false)
		d.Load.Duration, _ = l.Duration("duration", false)
		d.Load.Lane = l.Str("lane", false)
		l.End()
	}
	for i, n := range o.List("faults", false) {
		f := p.dec.Mapping(n, fmt.Sprintf("faults[%d]", i))
		if f == nil {
			continue
		}
		var fl Fault
		fl.At, _ = f.Duration("at", false)
		fl.For, _ = f.Duration("for", false)
		sn, pn, nn := f.Get("spec"), f.Get("proc"), f.Get("net")
		switch {
		case sn == nil && pn == nil && nn == nil:
			p.dec.Failf(f.Node(), f.Join("spec"), "required: the fault, as chaos/faults takes it (type, service, kind, ...), "+
				"or proc: {name, action} for a process fault, or net: {proxy, ...} for an L4 fault")
		case btoi(sn != nil)+btoi(pn != nil)+btoi(nn != nil) > 1:
			p.dec.Failf(f.Node(), f.Path(), "give one of spec (an in-process fault), proc (a process fault) and net (an L4 fault), not several")
		case nn != nil:
			if s := p.dec.Mapping(nn, f.Join("net")); s != nil {
				fl.Net = netFault(s)
			}
		case sn != nil:
			if s := p.dec.Mapping(sn, f.Join("spec")); s != nil {
				fl.Spec = faultSpec(s)
			}
		default:
			if s := p.dec.Mapping(pn, f.Join("proc")); s != nil {
				fl.Proc = &ProcFault{Name: s.Str("name", false), Action: s.Str("action", false)}
				s.End()
			}
		}
		f.End()
		d.Faults = append(d.Faults, fl)
	}
	for i, n := range o.List("expect", false) {
		e := p.dec.Mapping(n, fmt.Sprintf("expect[%d]", i))
		if e == nil {
			continue
		}
		var x Expectation
		x.SLI, x.During, x.Metric = e.Str("sli", false), e.Str("during", false), e.Str("metric", false)
		x.MaxErrorRatio, _ = e.Float("max_error_ratio", false)
		x.MaxP99, _ = e.Duration("max_p99", false)
		x.Labels = strMap(e, "labels")
		x.MaxRate, _ = e.Float("max_rate", false)
		x.MaxShare, _ = e.Float("max_share", false)
		x.Of = strMap(e, "of")
		bounded := e.Get("max_rate") != nil || e.Get("max_share") != nil
		var set bool
		x.Increases, set = e.Bool("increases")
		switch {
		case x.Metric != "" && !set && !bounded && !p.failed[e.Join("increases")]:
			p.dec.Failf(e.Node(), e.Join("increases"), "required for a metric expectation: true (it rises) or false (it stays put), "+
				"unless max_rate or max_share bounds it")
		case x.Metric != "" && set && bounded:
			p.dec.Failf(e.Get("increases"), e.Join("increases"), "give increases, max_rate or max_share: one check per expectation")
		case x.Metric == "" && set:
			p.dec.Failf(e.Get("increases"), e.Join("increases"), "only a metric expectation takes increases")
		}
		x.Within, _ = e.Duration("within", false)
		x.Goodput, _ = e.Float("goodput", false)
		x.Audit = e.Str("audit", false)
		x.Settle, _ = e.Duration("settle", false)
		e.End()
		d.Expect = append(d.Expect, x)
	}
	if a := o.Child("abort", false); a != nil {
		d.Abort.MaxErrorRatio, _ = a.Float("max_error_ratio", false)
		d.Abort.MaxP99, _ = a.Duration("max_p99", false)
		a.End()
	}
	var set bool
	if d.GuardInterval, set = o.Duration("guard_interval", false); !set {
		d.GuardInterval = DefaultGuardInterval
	}
	if d.RollbackCheck, set = o.Duration("rollback_check", false); !set {
		d.RollbackCheck = d.SteadyState.Window
	}
	o.End()
	return d
}

// faultSpec reads a fault spec; the drill's own validation (faults.Spec.Validate) follows.
func faultSpec(o *specyaml.Mapping) faults.Spec {
	var s faults.Spec
	for k, dst := range map[string]*string{"id": &s.ID, "type": &s.Type, "service": &s.Service, "kind": &s.Kind,
		"side": &s.Side, "instance": &s.Instance, "target": &s.Target, "op": &s.Op, "lane": &s.Lane, "delay": &s.Delay, "jitter": &s.Jitter,
		"message": &s.Message, "max_wait": &s.MaxWait, "reason": &s.Reason} {
		*dst = o.Str(k, false)
	}
	s.Code = faults.ErrorCode(o.Str("code", false))
	s.Percent, _ = o.Float("percent", false)
	for _, k := range []string{"ttl", "until"} {
		if n := o.Get(k); n != nil {
			o.Failf(n, o.Join(k), "the drill sets each fault's ttl (for + %v, so it expires by itself): leave ttl and until out", TTLMargin)
		}
	}
	o.End()
	return s
}

// netFault reads a net fault: proxy, and outage: true or a toxic (type, stream, toxicity,
// attributes); ttl and reason are the drill's.
func netFault(o *specyaml.Mapping) *NetFault {
	n := &NetFault{Proxy: o.Str("proxy", false)}
	n.Outage, _ = o.Bool("outage")
	if o.Get("type") != nil || o.Get("attributes") != nil || o.Get("stream") != nil || o.Get("toxicity") != nil {
		t := &netfault.ToxicSpec{Type: o.Str("type", false), Stream: o.Str("stream", false)}
		if v, ok := o.Float("toxicity", false); ok {
			t.Toxicity = &v
		}
		if a := o.Child("attributes", false); a != nil {
			t.Attributes.Latency, t.Attributes.Jitter = a.Str("latency", false), a.Str("jitter", false)
			t.Attributes.Timeout, t.Attributes.Delay = a.Str("timeout", false), a.Str("delay", false)
			num := func(key string) float64 {
				v, ok := a.Float(key, false)
				if ok && (v != math.Trunc(v) || math.Abs(v) > 1<<53) {
					a.Failf(a.Get(key), a.Join(key), "%v: want a whole number", v)
					return 0
				}
				return v
			}
			t.Attributes.Rate, t.Attributes.Bytes = int64(num("rate")), int64(num("bytes"))
			t.Attributes.AverageSize, t.Attributes.SizeVariation = int(num("average_size")), int(num("size_variation"))
			a.End()
		}
		n.Toxic = t
	}
	for _, k := range []string{"ttl", "reason", "id"} {
		if v := o.Get(k); v != nil {
			o.Failf(v, o.Join(k), "the drill sets a net fault's %s: leave it out", k)
		}
	}
	o.End()
	return n
}

// strs reads the list of strings at key of o.
func strs(o *specyaml.Mapping, key string) []string {
	var out []string
	for i, n := range o.List(key, false) {
		if n.Kind != yaml.ScalarNode {
			o.Failf(n, fmt.Sprintf("%s[%d]", o.Join(key), i), "want a string")
			continue
		}
		out = append(out, n.Value)
	}
	return out
}

// strMap reads the mapping of strings at key of o.
func strMap(o *specyaml.Mapping, key string) map[string]string {
	m := o.Child(key, false)
	if m == nil {
		return nil
	}
	out := map[string]string{}
	for _, k := range m.Keys() {
		out[k] = m.Str(k, false)
	}
	return out
}
