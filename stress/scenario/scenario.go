// Package scenario reads load-test scenarios from YAML and runs them as a load.Doer:
// weighted user journeys whose steps carry data from one response to the next request
// (a token, a note id, an order id).
//
// A scenario file:
//
//	name: shop
//	base_url: http://127.0.0.1:8080   # redline stress --target overrides it
//	data:                             # constants and lists for templates
//	  queries: [tea, coffee]
//	users:                            # sessions, logged in before the load starts
//	  count: 20
//	  vars: {username: 'user{{printf "%03d" .i}}'}
//	  steps:
//	    - {name: login, method: POST, path: /v1/sessions, expect: [201],
//	       body: '{"username": {{json .username}}, "password": "secret-pw"}',
//	       extract: {token: token}}
//	headers: {Authorization: 'Bearer {{.token}}'}   # on every journey request
//	journeys:
//	  - name: buy
//	    weight: 3                     # journeys are picked by weight
//	    steps:
//	      - {name: list, path: '/v1/products?limit=20', extract: {sku: 'products.*.skus.0.id'}}
//	      - name: order
//	        method: POST
//	        path: /v1/orders
//	        headers: {Idempotency-Key: '{{.run_id}}-{{uuid}}'}
//	        body: '{"items": [{"sku_id": {{json .sku}}, "quantity": 1}]}'
//	        expect: [201]             # default: any 2xx
//	        stop_on: [412]            # ends the journey, counted as a success
//
// Paths, headers, bodies and vars are text/template templates over the variables: data,
// run_id (the run's sentinel id), i (the user's index, in users), the user's session (its
// vars and extracts, in journeys), the journey's vars, and what earlier steps extracted.
// Functions: rand A B (an int in [A, B]), pick LIST, uuid, seq (a run-wide counter), add,
// mod, json (a JSON literal, for bodies), and text/template's printf, index, len, urlquery.
//
// extract takes a value from a JSON response by a dotted path: keys, indexes, and * for a
// random element (notes.*.id). A missing value fails the step (kind "extract").
//
// Parse validates everything before any traffic: YAML syntax and unknown fields, weights,
// methods, statuses, templates, variables used before any step defines them, and, with
// Routes, that every step's method and path is a known route. Errors name the file,
// journey and step, and say what to do.
package scenario

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"text/template"

	"go.yaml.in/yaml/v3"
)

//go:embed *.yaml
var builtins embed.FS

// Builtin lists the built-in scenarios, by name.
func Builtin() []string {
	ents, _ := builtins.ReadDir(".")
	var out []string
	for _, e := range ents {
		out = append(out, strings.TrimSuffix(e.Name(), ".yaml"))
	}
	return out
}

// ErrInvalid is wrapped by every validation error.
var ErrInvalid = errors.New("invalid scenario")

// File is a scenario file as written, before validation.
type File struct {
	Name     string            `yaml:"name"`
	BaseURL  string            `yaml:"base_url"`
	Data     map[string]any    `yaml:"data"`
	Users    *Users            `yaml:"users"`
	Headers  map[string]string `yaml:"headers"`
	Journeys []Journey         `yaml:"journeys"`
}

// Users are the sessions a scenario logs in before the load: Count users, each through
// Steps, with .i from 0 to Count-1. Their vars and extracts become the session a journey
// runs as, one picked at random per iteration.
type Users struct {
	Count int               `yaml:"count"`
	Vars  map[string]string `yaml:"vars"`
	Steps []Step            `yaml:"steps"`
}

// Journey is one kind of user visit: its steps run in order, each after the one before.
type Journey struct {
	Name   string            `yaml:"name"`
	Weight float64           `yaml:"weight"`
	Vars   map[string]string `yaml:"vars"`
	Steps  []Step            `yaml:"steps"`
}

// Step is one HTTP request.
type Step struct {
	Name    string            `yaml:"name"`
	Method  string            `yaml:"method"` // default GET
	Path    string            `yaml:"path"`
	Headers map[string]string `yaml:"headers"`
	Body    string            `yaml:"body"`
	Expect  []int             `yaml:"expect"`  // default: any 2xx
	StopOn  []int             `yaml:"stop_on"` // statuses that end the journey as a success
	Extract map[string]string `yaml:"extract"` // variable: JSON path
}

// Scenario is a validated scenario, ready to run.
type Scenario struct {
	Name    string
	BaseURL string
	file    string
	data    map[string]any
	users   *users
	headers []header
	jour    []*journey
	total   float64 // sum of weights
	seq     atomic.Int64
}

type users struct {
	count int
	vars  []variable
	steps []*step
}

type journey struct {
	name   string
	weight float64
	vars   []variable
	steps  []*step
}

type variable struct {
	name string
	tmpl *template.Template
}

type header struct {
	name string
	tmpl *template.Template
}

type step struct {
	name, method string
	path, body   *template.Template
	headers      []header
	expect       []int
	stopOn       []int
	extract      []extraction
}

type extraction struct {
	name string
	path []string
}

// Option configures Parse.
type Option func(*options)

type options struct{ routes []route }

// Routes makes Parse check every step against known routes, written as Go 1.22 mux
// patterns ("GET /v1/notes/{id}"); a {wildcard} segment matches one path segment.
func Routes(patterns []string) Option {
	return func(o *options) {
		for _, p := range patterns {
			o.routes = append(o.routes, parseRoute(p))
		}
	}
}

// Load reads a built-in scenario by name (see Builtin), or else a file by path.
func Load(nameOrPath string, opts ...Option) (*Scenario, error) {
	plain := !strings.ContainsAny(nameOrPath, "/.\\")
	if plain {
		if b, err := builtins.ReadFile(nameOrPath + ".yaml"); err == nil {
			return Parse(nameOrPath+".yaml (built in)", b, opts...)
		}
	}
	b, err := os.ReadFile(nameOrPath)
	switch {
	case err != nil && plain && errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("%w: %q is neither a built-in scenario (%s) nor a file", ErrInvalid, nameOrPath, strings.Join(Builtin(), ", "))
	case err != nil:
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return Parse(nameOrPath, b, opts...)
}

// Parse validates a scenario file's content; file names it in errors. Every problem is
// reported, joined in one error wrapping ErrInvalid.
func Parse(file string, data []byte, opts ...Option) (*Scenario, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	var f File
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		msg = strings.ReplaceAll(msg, "unmarshal errors:\n  ", "")
		return nil, fmt.Errorf("%w: %s: %s (fix the YAML; go doc github.com/redline-dev/redline/stress/scenario lists the fields)", ErrInvalid, file, msg)
	}
	var more yaml.Node
	if err := dec.Decode(&more); err == nil {
		return nil, fmt.Errorf("%w: %s: more than one YAML document: keep one scenario per file", ErrInvalid, file)
	}
	c := &compiler{file: file, routes: o.routes}
	s := c.scenario(&f)
	if len(c.errs) > 0 {
		return nil, fmt.Errorf("%w: %s:\n  %s", ErrInvalid, file, strings.Join(c.errs, "\n  "))
	}
	return s, nil
}

// compiler validates and compiles, collecting every error.
type compiler struct {
	file   string
	routes []route
	errs   []string
	s      *Scenario
}

func (c *compiler) fail(where, format string, args ...any) {
	c.errs = append(c.errs, where+": "+fmt.Sprintf(format, args...))
}

var ident = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Reserved variables, defined by the runner.
const (
	VarRunID = "run_id" // the run's sentinel id
	VarUser  = "i"      // the user's index, in users steps
)

var methods = []string{"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}

func (c *compiler) scenario(f *File) *Scenario {
	s := &Scenario{Name: f.Name, BaseURL: f.BaseURL, file: c.file, data: map[string]any{}}
	c.s = s
	if s.Name == "" {
		s.Name = strings.TrimSuffix(c.file, filepath.Ext(c.file))
	}
	if s.BaseURL != "" {
		if u, err := url.Parse(s.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			c.fail("base_url", "%q is not an http(s) URL such as http://127.0.0.1:8080", s.BaseURL)
		}
	}
	known := map[string]bool{VarRunID: true}
	for k, v := range f.Data {
		switch {
		case !ident.MatchString(k) || k == VarRunID || k == VarUser:
			c.fail("data."+k, "a variable name is letters, digits and _, not %s or %s", VarRunID, VarUser)
		case !dataValue(v):
			c.fail("data."+k, "a value is a string, a number, a bool or a non-empty list of those")
		}
		s.data[k] = v
		known[k] = true
	}

	// Users: their vars see data, run_id and i; steps add their extracts in order.
	session := map[string]bool{}
	if u := f.Users; u != nil {
		s.users = &users{count: u.Count}
		if u.Count < 1 || u.Count > 100000 {
			c.fail("users.count", "must be 1 to 100000, got %d", u.Count)
		}
		if len(u.Steps) == 0 {
			c.fail("users.steps", "no steps: list the requests that log a user in, or remove users")
		}
		scope := clone(known)
		scope[VarUser] = true
		s.users.vars = c.vars("users.vars", u.Vars, scope)
		for k := range u.Vars {
			scope[k], session[k] = true, true
		}
		for i := range u.Steps {
			st := c.step(fmt.Sprintf("users step %d %q", i+1, u.Steps[i].Name), &u.Steps[i], scope)
			s.users.steps = append(s.users.steps, st)
			for _, e := range st.extract {
				scope[e.name], session[e.name] = true, true
			}
		}
	}

	// Journeys see data, run_id, the session, their vars and earlier extracts.
	if len(f.Journeys) == 0 {
		c.fail("journeys", "none: a scenario needs at least one journey with steps")
	}
	base := clone(known)
	for k := range session {
		base[k] = true
	}
	seen := map[string]bool{}
	for i := range f.Journeys {
		j := &f.Journeys[i]
		where := fmt.Sprintf("journey %d %q", i+1, j.Name)
		if j.Name == "" || strings.Contains(j.Name, "/") {
			c.fail(where, "needs a name, without /")
		}
		if seen[j.Name] {
			c.fail(where, "a second journey with this name: names must be unique")
		}
		seen[j.Name] = true
		if !(j.Weight > 0) {
			c.fail(where, "weight must be above 0, got %v", j.Weight)
		}
		if len(j.Steps) == 0 {
			c.fail(where, "no steps")
		}
		scope := clone(base)
		jv := c.vars(where+" vars", j.Vars, scope)
		for k := range j.Vars {
			scope[k] = true
		}
		// Scenario headers go on every journey request: they may use the session and the
		// journey's vars, not what a step extracts.
		cj := &journey{name: j.Name, weight: j.Weight, vars: jv}
		for _, k := range sortedKeys(f.Headers) {
			c.uses(where+" (scenario header "+k+")", f.Headers[k], scope)
		}
		names := map[string]bool{}
		for k := range j.Steps {
			st := &j.Steps[k]
			swhere := fmt.Sprintf("%s step %d %q", where, k+1, st.Name)
			if names[st.Name] {
				c.fail(swhere, "a second step with this name in the journey: names must be unique")
			}
			names[st.Name] = true
			cs := c.step(swhere, st, scope)
			cj.steps = append(cj.steps, cs)
			for _, e := range cs.extract {
				scope[e.name] = true
			}
		}
		s.jour = append(s.jour, cj)
		s.total += j.Weight
	}
	for _, k := range sortedKeys(f.Headers) {
		s.headers = append(s.headers, header{name: k, tmpl: c.parse("headers."+k, f.Headers[k])})
	}
	return s
}

func (c *compiler) vars(where string, vs map[string]string, scope map[string]bool) []variable {
	var out []variable
	for _, k := range sortedKeys(vs) {
		if !ident.MatchString(k) || k == VarRunID || k == VarUser {
			c.fail(where+"."+k, "a variable name is letters, digits and _, not %s or %s", VarRunID, VarUser)
		}
		// A var sees the scope it is declared in, not its sibling vars.
		c.uses(where+"."+k, vs[k], scope)
		out = append(out, variable{name: k, tmpl: c.parse(where+"."+k, vs[k])})
	}
	return out
}

func (c *compiler) step(where string, st *Step, scope map[string]bool) *step {
	if st.Name == "" || strings.Contains(st.Name, "/") {
		c.fail(where, "needs a name, without /")
	}
	method := strings.ToUpper(st.Method)
	if method == "" {
		method = "GET"
	}
	if !slices.Contains(methods, method) {
		c.fail(where, "method %q is not one of %s", st.Method, strings.Join(methods, ", "))
	}
	if !strings.HasPrefix(st.Path, "/") {
		c.fail(where, "path %q must start with / (the base URL comes from base_url or --target)", st.Path)
	}
	out := &step{name: st.Name, method: method, expect: st.Expect, stopOn: st.StopOn,
		path: c.parse(where+" path", st.Path), body: c.parse(where+" body", st.Body)}
	c.uses(where+" path", st.Path, scope)
	c.uses(where+" body", st.Body, scope)
	for _, k := range sortedKeys(st.Headers) {
		c.uses(where+" header "+k, st.Headers[k], scope)
		out.headers = append(out.headers, header{name: k, tmpl: c.parse(where+" header "+k, st.Headers[k])})
	}
	for _, code := range append(slices.Clone(st.Expect), st.StopOn...) {
		if code < 100 || code > 599 {
			c.fail(where, "status %d is not an HTTP status (100-599)", code)
		}
	}
	for _, code := range st.StopOn {
		if slices.Contains(st.Expect, code) {
			c.fail(where, "status %d is in both expect and stop_on: pick one", code)
		}
	}
	for _, k := range sortedKeys(st.Extract) {
		p := st.Extract[k]
		if !ident.MatchString(k) || k == VarRunID || k == VarUser {
			c.fail(where+" extract "+k, "a variable name is letters, digits and _, not %s or %s", VarRunID, VarUser)
		}
		segs, err := parsePath(p)
		if err != nil {
			c.fail(where+" extract "+k, "%v", err)
		}
		out.extract = append(out.extract, extraction{name: k, path: segs})
	}
	if len(c.routes) > 0 && strings.HasPrefix(st.Path, "/") {
		if !matchRoute(c.routes, method, st.Path) {
			c.fail(where, "%s %s is not a known route of the target: check the method and path against its API (the README's route table)", method, st.Path)
		}
	}
	return out
}

func (c *compiler) parse(where, text string) *template.Template {
	t, err := newTemplate(where, text, &c.s.seq)
	if err != nil {
		c.fail(where, "template: %v", strings.TrimPrefix(err.Error(), "template: "))
	}
	return t
}

// uses checks that text refers only to variables in scope.
func (c *compiler) uses(where, text string, scope map[string]bool) {
	refs, err := references(text)
	if err != nil {
		return // parse reports it
	}
	for _, r := range refs {
		if !scope[r] {
			c.fail(where, "uses {{.%s}}, which nothing defines before it: define it in data or vars, or extract it in an earlier step", r)
		}
	}
}

func dataValue(v any) bool {
	switch v := v.(type) {
	case string, int, int64, float64, bool:
		return true
	case []any:
		if len(v) == 0 {
			return false
		}
		for _, e := range v {
			switch e.(type) {
			case string, int, int64, float64, bool:
			default:
				return false
			}
		}
		return true
	}
	return false
}

func clone(m map[string]bool) map[string]bool {
	out := make(map[string]bool, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
