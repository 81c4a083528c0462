package drill

import (
	"errors"
	"testing"
)

// FuzzParse: Parse never panics; what it refuses is a *FieldError wrapping ErrInvalid, and
// what it accepts passes Validate and survives Scale.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		goodDrill,
		"name: d\nsteady_state: {window: 5s, slis: [{name: e, service: bff, max_error_ratio: 0.01}]}\n" +
			"load: {scenario: rednote, rate: 1, duration: 10s}\nfaults: [{at: 0s, for: 5s, spec: {type: abort}}]\n",
		"name: [", "- a\n- b\n", "a: &x 1\nb: *x\n", "---\n---\n", "faults: {}\n", "expect: [1, [2]]\n",
		"steady_state: {slis: [{max_p99: 1e400}]}\n", "load: {rate: .nan}\n", "guard_interval: 9223372036854775807ns\n",
		"faults: [{at: 1s, for: 2s, proc: {name: order, action: kill}}, {at: 2s, for: 1s, proc: {name: order, action: pause}}]\n",
		"expect: [{audit: checkout, settle: -1s}, {metric: m, max_share: 0.5, of: {}}, {metric: m, max_rate: .inf}]\n",
	} {
		f.Add([]byte(s))
	}
	for _, name := range Builtin() {
		b, err := BuiltinSource(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := Parse("f.yaml", data)
		if err != nil {
			var fe *FieldError
			if !errors.Is(err, ErrInvalid) || !errors.As(err, &fe) {
				t.Fatalf("Parse = %v; want *FieldError wrapping ErrInvalid", err)
			}
			return
		}
		if err := d.Validate(); err != nil {
			t.Fatalf("Parse accepted a drill Validate refuses: %v", err)
		}
		if err := d.Scale(0.5); err != nil && !errors.Is(err, ErrInvalid) {
			t.Fatalf("Scale(0.5) = %v; want nil or ErrInvalid", err)
		}
	})
}
