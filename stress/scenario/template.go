package scenario

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"reflect"
	"strings"
	"sync/atomic"
	"text/template"
	"text/template/parse"
)

// funcs is the template function map. It gives templates no access to files, the network
// or the environment.
func funcs(seq *atomic.Int64) template.FuncMap {
	return template.FuncMap{
		"rand": func(lo, hi int) (int, error) {
			if hi < lo {
				return 0, fmt.Errorf("rand %d %d: the second bound is below the first", lo, hi)
			}
			return lo + mrand.IntN(hi-lo+1), nil
		},
		"pick": func(list any) (any, error) {
			v := reflect.ValueOf(list)
			if v.Kind() != reflect.Slice || v.Len() == 0 {
				return nil, fmt.Errorf("pick: want a non-empty list, got %T", list)
			}
			return v.Index(mrand.IntN(v.Len())).Interface(), nil
		},
		"uuid": func() string {
			var b [16]byte
			_, _ = rand.Read(b[:])
			b[6] = b[6]&0x0f | 0x40 // version 4
			b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
			return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
		},
		"seq": func() int64 { return seq.Add(1) },
		"add": func(a, b int) int { return a + b },
		"mod": func(a, b int) (int, error) {
			if b == 0 {
				return 0, errors.New("mod by zero")
			}
			return a % b, nil
		},
		"json": func(v any) (string, error) {
			b, err := json.Marshal(v)
			return string(b), err
		},
	}
}

// newTemplate parses text; a missing variable is an error when it runs.
func newTemplate(name, text string, seq *atomic.Int64) (*template.Template, error) {
	return template.New(name).Option("missingkey=error").Funcs(funcs(seq)).Parse(text)
}

// references lists the top-level variables text uses: {{.x}}, {{$.x}}, {{index .x 0}}.
// Fields inside range and with bodies, where dot is something else, are not variables.
func references(text string) ([]string, error) {
	var seq atomic.Int64
	t, err := newTemplate("refs", text, &seq)
	if err != nil {
		return nil, err
	}
	var out []string
	var walk func(n parse.Node, dot bool)
	walk = func(n parse.Node, dot bool) {
		switch n := n.(type) {
		case *parse.ListNode:
			if n == nil {
				return
			}
			for _, c := range n.Nodes {
				walk(c, dot)
			}
		case *parse.ActionNode:
			walk(n.Pipe, dot)
		case *parse.PipeNode:
			if n == nil {
				return
			}
			for _, c := range n.Cmds {
				walk(c, dot)
			}
		case *parse.CommandNode:
			for _, a := range n.Args {
				walk(a, dot)
			}
		case *parse.FieldNode:
			if dot {
				out = append(out, n.Ident[0])
			}
		case *parse.VariableNode:
			if len(n.Ident) > 1 && n.Ident[0] == "$" {
				out = append(out, n.Ident[1])
			}
		case *parse.ChainNode:
			walk(n.Node, dot)
		case *parse.IfNode:
			walk(n.Pipe, dot)
			walk(n.List, dot)
			walk(n.ElseList, dot)
		case *parse.RangeNode:
			walk(n.Pipe, dot)
			walk(n.List, false)
			walk(n.ElseList, dot)
		case *parse.WithNode:
			walk(n.Pipe, dot)
			walk(n.List, false)
			walk(n.ElseList, dot)
		case *parse.TemplateNode:
			walk(n.Pipe, dot)
		}
	}
	if t.Tree != nil {
		walk(t.Tree.Root, true)
	}
	return out, nil
}

// dynamic marks, in a path with its template actions replaced, a segment that is not
// known before the run.
const dynamic = "\x00"

// staticPath replaces every template action of a path with the dynamic mark and drops the
// query, for matching against routes.
func staticPath(text string) string {
	var b strings.Builder
	for {
		i := strings.Index(text, "{{")
		if i < 0 {
			b.WriteString(text)
			break
		}
		b.WriteString(text[:i])
		j := strings.Index(text[i:], "}}")
		if j < 0 {
			b.WriteString(dynamic)
			break
		}
		b.WriteString(dynamic)
		text = text[i+j+2:]
	}
	p, _, _ := strings.Cut(b.String(), "?")
	return p
}
