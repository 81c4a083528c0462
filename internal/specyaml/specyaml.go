// Package specyaml decodes YAML specs strictly: every error names file:line, the dotted
// field path ("spec.objectives[0].target") and the reason, and a key the parser does not
// read is an error ("unknown field"), as are duplicate keys, anchors and aliases.
//
// A parser opens each YAML mapping with Decoder.Mapping, reads its keys with the Mapping
// methods (Str, Float, Bool, Duration, Child, List), and calls End when done, which reports
// the keys it never asked for. No method stops at the first problem: each reports it to the
// Decoder's report function and returns a zero value, so one parse lists every mistake.
package specyaml

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// FieldError is one problem in a spec: the file, the line, the field path and the reason.
type FieldError struct {
	File string
	// Line is the 1-based line in File, 0 when unknown.
	Line   int
	Field  string
	Reason string
}

// Error reads "file:line: field: reason", leaving out the line when unknown and the field
// when empty; a nameless file is "<input>".
func (e *FieldError) Error() string {
	file := e.File
	if file == "" {
		file = "<input>"
	}
	if e.Line > 0 {
		file += ":" + strconv.Itoa(e.Line)
	}
	if e.Field == "" {
		return file + ": " + e.Reason
	}
	return file + ": " + e.Field + ": " + e.Reason
}

// Decoder reads the mappings of one file and reports their problems.
type Decoder struct {
	file   string
	report func(*FieldError)
	o      options
}

type options struct {
	duration     func(string) (time.Duration, error)
	nullIsAbsent bool
	lines        map[string]int
	notMapping   string
	notScalar    string
}

// Option configures a Decoder.
type Option func(*options)

// Durations sets how Mapping.Duration parses a value; the error's text is the reason
// reported. The default is time.ParseDuration.
func Durations(parse func(string) (time.Duration, error)) Option {
	return func(o *options) { o.duration = parse }
}

// NullIsAbsent makes a null value (key: ~, key: null, or key: with nothing) read as if the
// key were left out. By default a null is a scalar whose value is its text.
func NullIsAbsent() Option {
	return func(o *options) { o.nullIsAbsent = true }
}

// Lines makes the Decoder record in lines the line of every mapping opened (but the
// top-level one) and every non-absent value read, by field path, so checks made after
// decoding can name lines too. By default nothing is recorded.
func Lines(lines map[string]int) Option {
	return func(o *options) { o.lines = lines }
}

// Reasons sets the reasons reported for a value that is not a mapping where one is wanted,
// and for one that is not a scalar. The defaults are "want a mapping" and "want a scalar".
func Reasons(notMapping, notScalar string) Option {
	return func(o *options) { o.notMapping, o.notScalar = notMapping, notScalar }
}

// New returns a Decoder for file, which names it in errors; report receives every
// problem, in the order found.
func New(file string, report func(*FieldError), opts ...Option) *Decoder {
	d := &Decoder{file: file, report: report, o: options{
		duration:   time.ParseDuration,
		notMapping: "want a mapping",
		notScalar:  "want a scalar",
	}}
	for _, opt := range opts {
		opt(&d.o)
	}
	return d
}

// Failf reports a problem with field at node n; n may be nil, for no line.
func (d *Decoder) Failf(n *yaml.Node, field, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	d.report(&FieldError{File: d.file, Line: line, Field: field, Reason: fmt.Sprintf(format, args...)})
}

// Mapping opens n, at field path path ("" for the top level), as a mapping. It reports
// and returns nil when n is not a mapping or carries an anchor or alias; duplicate keys
// are reported and the first one kept.
func (d *Decoder) Mapping(n *yaml.Node, path string) *Mapping {
	if n.Kind == yaml.AliasNode || n.Anchor != "" {
		d.Failf(n, path, "YAML anchors and aliases are not supported")
		return nil
	}
	if n.Kind != yaml.MappingNode {
		d.Failf(n, path, "%s", d.o.notMapping)
		return nil
	}
	if path != "" && d.o.lines != nil {
		d.o.lines[path] = n.Line
	}
	m := &Mapping{d: d, path: path, n: n, keys: map[string]*yaml.Node{}, seen: map[string]bool{}}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		if _, dup := m.keys[k.Value]; dup {
			d.Failf(k, m.Join(k.Value), "duplicate field")
			continue
		}
		m.keys[k.Value] = n.Content[i+1]
	}
	return m
}

// Mapping walks one YAML mapping and remembers which keys were read, so End can report
// the others as unknown fields. A required key that is absent is reported as "required".
type Mapping struct {
	d    *Decoder
	path string
	n    *yaml.Node
	keys map[string]*yaml.Node
	seen map[string]bool
}

// Decoder returns the Decoder that opened m, to open the mappings of its lists.
func (m *Mapping) Decoder() *Decoder { return m.d }

// Path returns m's field path, "" at the top level.
func (m *Mapping) Path() string { return m.path }

// Node returns m's YAML node.
func (m *Mapping) Node() *yaml.Node { return m.n }

// Failf reports a problem with field at node n, as Decoder.Failf.
func (m *Mapping) Failf(n *yaml.Node, field, format string, args ...any) {
	m.d.Failf(n, field, format, args...)
}

// Join returns the field path of key in m.
func (m *Mapping) Join(key string) string {
	if m.path == "" {
		return key
	}
	return m.path + "." + key
}

// Keys returns m's keys, sorted, without marking them read.
func (m *Mapping) Keys() []string {
	return slices.Sorted(maps.Keys(m.keys))
}

// Get returns the value of key, nil when absent (or null, with NullIsAbsent), and marks
// it read.
func (m *Mapping) Get(key string) *yaml.Node {
	m.seen[key] = true
	n := m.keys[key]
	if n == nil || m.d.o.nullIsAbsent && n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil
	}
	if m.d.o.lines != nil {
		m.d.o.lines[m.Join(key)] = n.Line
	}
	return n
}

// End reports every key of m not read, in sorted order, as an unknown field.
func (m *Mapping) End() {
	var unknown []string
	for k := range m.keys {
		if !m.seen[k] {
			unknown = append(unknown, k)
		}
	}
	slices.Sort(unknown)
	for _, k := range unknown {
		m.d.Failf(m.keys[k], m.Join(k), "unknown field")
	}
}

// get is Get, reporting an absent required key.
func (m *Mapping) get(key string, required bool) *yaml.Node {
	n := m.Get(key)
	if n == nil && required {
		m.d.Failf(m.n, m.Join(key), "required")
	}
	return n
}

// Scalar returns the value of key, which must be a scalar; nil when absent or not one.
func (m *Mapping) Scalar(key string, required bool) *yaml.Node {
	n := m.get(key, required)
	if n == nil {
		return nil
	}
	if n.Kind != yaml.ScalarNode {
		m.d.Failf(n, m.Join(key), "%s", m.d.o.notScalar)
		return nil
	}
	return n
}

// Str returns the string value of key; a required key must not be empty.
func (m *Mapping) Str(key string, required bool) string {
	n := m.Scalar(key, required)
	if n == nil {
		return ""
	}
	if n.Value == "" && required {
		m.d.Failf(n, m.Join(key), "required")
	}
	return n.Value
}

// Float returns the finite number value of key and whether it is set and valid.
func (m *Mapping) Float(key string, required bool) (float64, bool) {
	n := m.Scalar(key, required)
	if n == nil {
		return 0, false
	}
	v, err := strconv.ParseFloat(n.Value, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		m.d.Failf(n, m.Join(key), "%q is not a number", n.Value)
		return 0, false
	}
	return v, true
}

// Bool returns the value of the optional key, true or false in any case, and whether it
// is set and valid.
func (m *Mapping) Bool(key string) (value, set bool) {
	n := m.Scalar(key, false)
	if n == nil {
		return false, false
	}
	switch strings.ToLower(n.Value) {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	m.d.Failf(n, m.Join(key), "%q is not true or false", n.Value)
	return false, false
}

// Duration returns the duration value of key, parsed as the Durations option says, and
// whether it is set and valid.
func (m *Mapping) Duration(key string, required bool) (time.Duration, bool) {
	n := m.Scalar(key, required)
	if n == nil {
		return 0, false
	}
	d, err := m.d.o.duration(n.Value)
	if err != nil {
		m.d.Failf(n, m.Join(key), "%s", err.Error())
		return 0, false
	}
	return d, true
}

// Child opens the mapping value of key; nil when absent or not a mapping.
func (m *Mapping) Child(key string, required bool) *Mapping {
	n := m.get(key, required)
	if n == nil {
		return nil
	}
	return m.d.Mapping(n, m.Join(key))
}

// List returns the items of the list value of key; nil when absent or not a list. A
// required list must not be empty; an empty one is a non-nil empty slice.
func (m *Mapping) List(key string, required bool) []*yaml.Node {
	n := m.get(key, required)
	if n == nil {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		m.d.Failf(n, m.Join(key), "want a list")
		return nil
	}
	if len(n.Content) == 0 {
		if required {
			m.d.Failf(n, m.Join(key), "must not be empty")
		}
		return []*yaml.Node{}
	}
	return n.Content
}
