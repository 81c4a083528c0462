package specyaml

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// decode parses src, opens its top mapping with opts and runs read on it; it returns the
// problems reported, as their Error texts.
func decode(t *testing.T, src string, read func(m *Mapping), opts ...Option) []string {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatalf("yaml.Unmarshal(%q): %v", src, err)
	}
	var got []string
	d := New("s.yaml", func(fe *FieldError) { got = append(got, fe.Error()) }, opts...)
	if m := d.Mapping(doc.Content[0], ""); m != nil {
		read(m)
		m.End()
	}
	return got
}

func TestMappingReportsEveryProblem(t *testing.T) {
	days := Durations(func(s string) (time.Duration, error) {
		if s == "1d" {
			return 24 * time.Hour, nil
		}
		return 0, fmt.Errorf("%q is not 1d", s)
	})
	for _, tc := range []struct {
		name string
		src  string
		read func(m *Mapping)
		opts []Option
		want []string
	}{
		{"unknown keys, sorted", "b: 1\na: 2\nc: 3\n", func(m *Mapping) { m.Str("c", true) },
			nil, []string{"s.yaml:2: a: unknown field", "s.yaml:1: b: unknown field"}},
		{"nested path", "spec:\n  x: 1\n", func(m *Mapping) { m.Child("spec", true).End() },
			nil, []string{"s.yaml:2: spec.x: unknown field"}},
		{"duplicate key", "a: 1\na: 2\n", func(m *Mapping) { m.Str("a", false) },
			nil, []string{"s.yaml:2: a: duplicate field"}},
		{"anchor", "a: &x {b: 1}\n", func(m *Mapping) { m.Child("a", false) },
			nil, []string{"s.yaml:1: a: YAML anchors and aliases are not supported"}},
		{"required", "a: 1\n", func(m *Mapping) {
			m.Str("a", true)
			m.Str("s", true)
			m.Float("f", true)
			m.Duration("d", true)
			m.Child("c", true)
			m.List("l", true)
		}, nil, []string{"s.yaml:1: s: required", "s.yaml:1: f: required", "s.yaml:1: d: required",
			"s.yaml:1: c: required", "s.yaml:1: l: required"}},
		{"optional", "a: 1\n", func(m *Mapping) {
			m.Str("a", false)
			m.Str("s", false)
			m.Float("f", false)
			m.Bool("b")
			m.Duration("d", false)
			m.Child("c", false)
			m.List("l", false)
		}, nil, nil},
		{"empty required string and list", "s: ''\nl: []\n", func(m *Mapping) {
			m.Str("s", true)
			if l := m.List("l", true); l == nil || len(l) != 0 {
				t.Errorf("List(empty) = %#v; want a non-nil empty slice", l)
			}
		}, nil, []string{"s.yaml:1: s: required", "s.yaml:2: l: must not be empty"}},
		{"wrong kinds", "s: [1]\nc: 1\nl: {a: 1}\n", func(m *Mapping) {
			m.Str("s", true)
			m.Child("c", true)
			m.List("l", true)
		}, nil, []string{"s.yaml:1: s: want a scalar", "s.yaml:2: c: want a mapping", "s.yaml:3: l: want a list"}},
		{"own reasons", "s: [1]\nc: 1\n", func(m *Mapping) {
			m.Str("s", false)
			m.Child("c", false)
		}, []Option{Reasons("not a map", "not one value")}, []string{"s.yaml:1: s: not one value", "s.yaml:2: c: not a map"}},
		{"bad values", "f: .nan\nb: yes\nd: 10x\n", func(m *Mapping) {
			m.Float("f", true)
			m.Bool("b")
			m.Duration("d", true)
		}, nil, []string{`s.yaml:1: f: ".nan" is not a number`, `s.yaml:2: b: "yes" is not true or false`,
			`s.yaml:3: d: time: unknown unit "x" in duration "10x"`}},
		{"own durations", "a: 1d\nb: 1h\n", func(m *Mapping) {
			if d, ok := m.Duration("a", true); d != 24*time.Hour || !ok {
				t.Errorf("Duration(a) = %v, %v; want 24h, true", d, ok)
			}
			if d, ok := m.Duration("b", true); d != 0 || ok {
				t.Errorf("Duration(b) = %v, %v; want 0, false", d, ok)
			}
		}, []Option{days}, []string{`s.yaml:2: b: "1h" is not 1d`}},
		{"null is a value", "s: ~\nc: ~\n", func(m *Mapping) {
			m.Str("s", true)
			m.Child("c", false)
		}, nil, []string{"s.yaml:2: c: want a mapping"}},
		{"null is absent", "s: ~\nc: ~\n", func(m *Mapping) {
			m.Str("s", true)
			m.Child("c", false)
		}, []Option{NullIsAbsent()}, []string{"s.yaml:1: s: required"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := decode(t, tc.src, tc.read, tc.opts...)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("problems =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

func TestLines(t *testing.T) {
	lines := map[string]int{}
	got := decode(t, "a: 1\nb:\n  c: x\nn: ~\n", func(m *Mapping) {
		m.Str("a", false)
		b := m.Child("b", false)
		b.Str("c", false)
		b.End()
		m.Str("n", false)
		m.Str("absent", false)
	}, Lines(lines), NullIsAbsent())
	want := map[string]int{"a": 1, "b": 3, "b.c": 3}
	if len(got) != 0 || !reflect.DeepEqual(lines, want) {
		t.Fatalf("lines = %v, problems %v; want %v, none", lines, got, want)
	}
}

func TestKeys(t *testing.T) {
	got := decode(t, "b: 1\na: 2\n", func(m *Mapping) {
		if k := m.Keys(); !reflect.DeepEqual(k, []string{"a", "b"}) {
			t.Errorf("Keys() = %v; want [a b]", k)
		}
	})
	if want := []string{"s.yaml:2: a: unknown field", "s.yaml:1: b: unknown field"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Keys marked keys read: problems = %v; want %v", got, want)
	}
}

func TestFieldError(t *testing.T) {
	for _, tc := range []struct {
		fe   FieldError
		want string
	}{
		{FieldError{File: "a.yaml", Line: 3, Field: "spec.x", Reason: "bad"}, "a.yaml:3: spec.x: bad"},
		{FieldError{File: "a.yaml", Field: "spec.x", Reason: "bad"}, "a.yaml: spec.x: bad"},
		{FieldError{Line: 2, Reason: "bad"}, "<input>:2: bad"},
	} {
		if got := tc.fe.Error(); got != tc.want {
			t.Errorf("%+v.Error() = %q; want %q", tc.fe, got, tc.want)
		}
	}
}
