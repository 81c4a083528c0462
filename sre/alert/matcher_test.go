package alert

import (
	"errors"
	"testing"
)

func TestParseMatchers(t *testing.T) {
	labels := map[string]string{"service": "order", "severity": "page", "env": "prod"}
	tests := []struct {
		in      string
		n       int
		matches bool
	}{
		{``, 0, true},
		{`service="order"`, 1, true},
		{`{service="order", severity=~"page|ticket"}`, 2, true},
		{`service=order,env!=dev`, 2, true},
		{`severity!~"pa.*"`, 1, false},
		{`severity=~pa`, 1, false}, // anchored
		{`missing=""`, 1, true},
		{`service="a \"quoted\", value"`, 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			ms, err := ParseMatchers(tt.in)
			if err != nil {
				t.Fatalf("ParseMatchers(%q): %v", tt.in, err)
			}
			if len(ms) != tt.n {
				t.Fatalf("ParseMatchers(%q) = %d matchers; want %d", tt.in, len(ms), tt.n)
			}
			if got := ms.Matches(labels); got != tt.matches {
				t.Errorf("ParseMatchers(%q).Matches = %v; want %v", tt.in, got, tt.matches)
			}
		})
	}
	for _, bad := range []string{`{a="b"`, `="b"`, `a`, `a=="b"`, `a="b" b="c"`, `a="b",`, `a=~"("`, `a="unterminated`, `1a="b"`} {
		if ms, err := ParseMatchers(bad); !errors.Is(err, ErrBadMatcher) {
			t.Errorf("ParseMatchers(%q) = %v, %v; want ErrBadMatcher", bad, ms, err)
		}
	}
}

func FuzzParseMatchers(f *testing.F) {
	for _, s := range []string{`service="order"`, `{a=~"x|y", b!="z"}`, `a=b,c!~d`, `a="\u00e9\""`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ms, err := ParseMatchers(s)
		if err != nil {
			if !errors.Is(err, ErrBadMatcher) {
				t.Fatalf("ParseMatchers(%q) error %v is not ErrBadMatcher", s, err)
			}
			return
		}
		// What parses renders back to the same matchers.
		var text string
		for i, m := range ms {
			if i > 0 {
				text += ","
			}
			text += m.String()
		}
		again, err := ParseMatchers(text)
		if err != nil || len(again) != len(ms) {
			t.Fatalf("ParseMatchers(%q) round trip via %q = %v, %v", s, text, again, err)
		}
		for i := range ms {
			if again[i].Name != ms[i].Name || again[i].Type != ms[i].Type || again[i].Value != ms[i].Value {
				t.Fatalf("round trip of %q: %v; want %v", s, again[i], ms[i])
			}
		}
	})
}
