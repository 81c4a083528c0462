package alert

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// MatchType is the operator of a Matcher.
type MatchType string

// The four operators of Prometheus and Alertmanager matchers.
const (
	MatchEqual     MatchType = "="
	MatchNotEqual  MatchType = "!="
	MatchRegexp    MatchType = "=~"
	MatchNotRegexp MatchType = "!~"
)

// ErrBadMatcher is returned for a matcher that does not parse or whose regexp is invalid.
var ErrBadMatcher = errors.New("alert: bad matcher")

// Matcher tests one label. A missing label has the value "", as in Alertmanager.
type Matcher struct {
	Name  string
	Type  MatchType
	Value string
	re    *regexp.Regexp
}

// NewMatcher returns a Matcher; for the regexp operators value is anchored at both ends.
func NewMatcher(name string, t MatchType, value string) (Matcher, error) {
	if !labelName.MatchString(name) {
		return Matcher{}, fmt.Errorf("%w: label name %q is not [a-zA-Z_][a-zA-Z0-9_]*", ErrBadMatcher, name)
	}
	m := Matcher{Name: name, Type: t, Value: value}
	switch t {
	case MatchEqual, MatchNotEqual:
	case MatchRegexp, MatchNotRegexp:
		re, err := regexp.Compile("^(?:" + value + ")$")
		if err != nil {
			return Matcher{}, fmt.Errorf("%w: %s%s%q: %w", ErrBadMatcher, name, t, value, err)
		}
		m.re = re
	default:
		return Matcher{}, fmt.Errorf("%w: operator %q, want =, !=, =~ or !~", ErrBadMatcher, t)
	}
	return m, nil
}

// Matches reports whether labels satisfy m.
func (m Matcher) Matches(labels map[string]string) bool {
	v := labels[m.Name]
	switch m.Type {
	case MatchEqual:
		return v == m.Value
	case MatchNotEqual:
		return v != m.Value
	case MatchRegexp:
		return m.re != nil && m.re.MatchString(v)
	case MatchNotRegexp:
		return m.re != nil && !m.re.MatchString(v)
	}
	return false
}

// String renders m so that ParseMatchers reads it back.
func (m Matcher) String() string { return m.Name + string(m.Type) + strconv.Quote(m.Value) }

// Matchers is a conjunction: all must match.
type Matchers []Matcher

// Matches reports whether every matcher matches labels; an empty list matches everything.
func (ms Matchers) Matches(labels map[string]string) bool {
	for _, m := range ms {
		if !m.Matches(labels) {
			return false
		}
	}
	return true
}

// ParseMatchers parses a comma-separated list such as
// `service="order", severity=~"page|ticket", env!=dev`, optionally wrapped in braces.
// Values are Go-quoted strings or bare words without commas, quotes or spaces.
func ParseMatchers(s string) (Matchers, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "{") {
		if !strings.HasSuffix(s, "}") {
			return nil, fmt.Errorf("%w: %q: '{' without '}'", ErrBadMatcher, s)
		}
		s = strings.TrimSpace(s[1 : len(s)-1])
	}
	var ms Matchers
	for s != "" {
		i := 0
		for i < len(s) && (s[i] == '_' || s[i] >= 'a' && s[i] <= 'z' || s[i] >= 'A' && s[i] <= 'Z' || i > 0 && s[i] >= '0' && s[i] <= '9') {
			i++
		}
		name := s[:i]
		rest := strings.TrimLeft(s[i:], " ")
		var t MatchType
		for _, op := range []MatchType{MatchRegexp, MatchNotRegexp, MatchNotEqual, MatchEqual} {
			if strings.HasPrefix(rest, string(op)) {
				t = op
				break
			}
		}
		if name == "" || t == "" {
			return nil, fmt.Errorf("%w: %q: want name followed by =, !=, =~ or !~", ErrBadMatcher, s)
		}
		rest = strings.TrimLeft(rest[len(t):], " ")
		var value string
		if strings.HasPrefix(rest, `"`) {
			q, err := strconv.QuotedPrefix(rest)
			if err != nil {
				return nil, fmt.Errorf("%w: %q: unterminated or malformed quoted value", ErrBadMatcher, rest)
			}
			value, _ = strconv.Unquote(q)
			rest = rest[len(q):]
		} else {
			j := strings.IndexAny(rest, `, "`)
			if j < 0 {
				j = len(rest)
			}
			value, rest = rest[:j], rest[j:]
		}
		m, err := NewMatcher(name, t, value)
		if err != nil {
			return nil, err
		}
		ms = append(ms, m)
		rest = strings.TrimLeft(rest, " ")
		if rest != "" {
			if rest[0] != ',' {
				return nil, fmt.Errorf("%w: %q: want ',' between matchers", ErrBadMatcher, rest)
			}
			rest = strings.TrimLeft(rest[1:], " ")
			if rest == "" {
				return nil, fmt.Errorf("%w: trailing ','", ErrBadMatcher)
			}
		}
		s = rest
	}
	return ms, nil
}

// MustMatchers is ParseMatchers for constant configuration; it panics on an error.
func MustMatchers(s string) Matchers {
	ms, err := ParseMatchers(s)
	if err != nil {
		panic(err)
	}
	return ms
}
