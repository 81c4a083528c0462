package scenario

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
)

func TestRedNoteValidatesAgainstTheBFFRoutes(t *testing.T) {
	s, err := Load("rednote", Routes(RedNoteRoutes))
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "rednote" || s.BaseURL != "http://127.0.0.1:8080" || s.users == nil || s.users.count != 50 {
		t.Fatalf("scenario %q at %q with users %+v", s.Name, s.BaseURL, s.users)
	}
	weights := map[string]float64{}
	for _, j := range s.jour {
		weights[j.name] = j.weight
	}
	if s.total != 100 || weights["home_feed"]+weights["explore"] != 55 || weights["checkout"] != 3 {
		t.Errorf("weights %v (total %v); want reads to dominate and checkout at 3%%", weights, s.total)
	}
	if got := Builtin(); !slices.Equal(got, []string{"checkout", "compose", "rednote"}) {
		t.Errorf("Builtin() = %v; want [checkout compose rednote]", got)
	}
	for _, name := range Builtin() {
		if _, err := Load(name, Routes(RedNoteRoutes)); err != nil {
			t.Errorf("built-in %s: %v", name, err)
		}
	}
}

// minimal is a valid scenario that the bad cases below each break in one place.
const minimal = `
name: t
base_url: http://127.0.0.1:8080
data: {pw: secret}
users:
  count: 2
  steps:
    - {name: login, method: POST, path: /v1/sessions, body: '{"p": {{json .pw}}}', expect: [201], extract: {token: token}}
journeys:
  - name: read
    weight: 1
    steps:
      - {name: feed, path: /v1/feed, headers: {Authorization: 'Bearer {{.token}}'}, extract: {note_id: 'notes.*.id'}}
      - {name: note, path: '/v1/notes/{{.note_id}}'}
`

func TestParseRejectsBadScenarios(t *testing.T) {
	if _, err := Parse("ok.yaml", []byte(minimal), Routes(RedNoteRoutes)); err != nil {
		t.Fatalf("the minimal scenario: %v", err)
	}
	for _, tc := range []struct {
		name, old, new, want string
	}{
		{"yaml syntax", "journeys:", "journeys: [", "ok.yaml: "},
		{"unknown field", "weight: 1", "weight: 1\n    wieght: 2", `line 12: field wieght not found`},
		{"no journeys", "journeys:", "journeyz_removed: 1\nx:", "field journeyz_removed not found"},
		{"weight zero", "weight: 1", "weight: 0", `journey 1 "read": weight must be above 0, got 0`},
		{"weight negative", "weight: 1", "weight: -3", "weight must be above 0, got -3"},
		{"bad method", "{name: feed, path", "{name: feed, method: FETCH, path", `journey 1 "read" step 1 "feed": method "FETCH" is not one of GET`},
		{"template does not parse", "'/v1/notes/{{.note_id}}'", "'/v1/notes/{{.note_id'", `step 2 "note" path: template:`},
		{"unknown function", "'/v1/notes/{{.note_id}}'", "'/v1/notes/{{shout .note_id}}'", `function "shout" not defined`},
		{"variable before extraction", "extract: {note_id: 'notes.*.id'}", "extract: {other: 'notes.*.id'}", `step 2 "note" path: uses {{.note_id}}, which nothing defines before it`},
		{"variable used in its own users", "{{json .pw}}", "{{json .token}}", `users step 1 "login" body: uses {{.token}}`},
		{"unknown route", "path: /v1/feed,", "path: /v1/nope,", `step 1 "feed": GET /v1/nope is not a known route`},
		{"wrong method for route", "{name: feed, path", "{name: feed, method: DELETE, path", "DELETE /v1/feed is not a known route"},
		{"bad status", "expect: [201]", "expect: [2010]", "status 2010 is not an HTTP status"},
		{"status in expect and stop_on", "expect: [201]", "expect: [201], stop_on: [201]", "in both expect and stop_on"},
		{"bad extract path", "{token: token}", "{token: 'a..b'}", `has an empty segment`},
		{"bad variable name", "{token: token}", "{tok-en: token}", "a variable name is letters"},
		{"no users", "count: 2", "count: 0", "users.count: must be 1 to 100000, got 0"},
		{"bad data", "data: {pw: secret}", "data: {pw: {nested: map}}", "data.pw: a value is a string"},
		{"bad base url", "http://127.0.0.1:8080", "127.0.0.1:8080", `base_url: "127.0.0.1:8080" is not an http(s) URL`},
		{"relative path", "path: /v1/feed,", "path: v1/feed,", `path "v1/feed" must start with /`},
		{"duplicate journey", "journeys:\n", "journeys:\n  - {name: read, weight: 1, steps: [{name: a, path: /v1/feed}]}\n", "a second journey with this name"},
		{"two documents", "name: t\n", "name: t\n---\nname: u\n", "more than one YAML document"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			text := strings.Replace(minimal, tc.old, tc.new, 1)
			if text == minimal {
				t.Fatalf("the case did not change the scenario: %q not found", tc.old)
			}
			_, err := Parse("ok.yaml", []byte(text), Routes(RedNoteRoutes))
			if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse = %v; want ErrInvalid with %q", err, tc.want)
			}
			if !strings.Contains(err.Error(), "ok.yaml") {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
}

func TestParseCollectsEveryProblem(t *testing.T) {
	text := strings.Replace(strings.Replace(minimal, "weight: 1", "weight: 0", 1), "path: /v1/feed,", "path: /v1/nope,", 1)
	_, err := Parse("two.yaml", []byte(text), Routes(RedNoteRoutes))
	if err == nil || !strings.Contains(err.Error(), "weight must be above 0") || !strings.Contains(err.Error(), "/v1/nope is not a known route") {
		t.Fatalf("Parse = %v; want both problems", err)
	}
}

func TestParseWithoutRoutesAcceptsAnyPath(t *testing.T) {
	text := strings.Replace(minimal, "path: /v1/feed,", "path: /v1/nope,", 1)
	if _, err := Parse("any.yaml", []byte(text)); err != nil {
		t.Fatalf("without Routes: %v", err)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "mine.yaml")
	if err := os.WriteFile(p, []byte(minimal), 0o600); err != nil {
		t.Fatal(err)
	}
	if s, err := Load(p); err != nil || s.Name != "t" {
		t.Fatalf("Load(%s) = %v, %v", p, s, err)
	}
	for name, want := range map[string]string{
		"nosuch":                       `"nosuch" is neither a built-in scenario (checkout, compose, rednote) nor a file`,
		filepath.Join(dir, "x.yaml"):   "no such file",
		filepath.Join(dir, "bad.yaml"): "bad.yaml",
	} {
		if strings.HasSuffix(name, "bad.yaml") {
			_ = os.WriteFile(name, []byte("journeys: ["), 0o600)
		}
		if _, err := Load(name); err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), want) {
			t.Errorf("Load(%q) = %v; want ErrInvalid with %q", name, err, want)
		}
	}
}

func TestMatchRoute(t *testing.T) {
	var routes []route
	for _, p := range RedNoteRoutes {
		routes = append(routes, parseRoute(p))
	}
	for _, tc := range []struct {
		method, path string
		want         bool
	}{
		{"GET", "/v1/notes/{{.id}}", true},
		{"GET", "/v1/notes/123", true},
		{"GET", "/v1/notes/{{.id}}/comments?order=hot", true},
		{"PUT", "/v1/cart/items/{{.sku}}", true},
		{"GET", "/v1/search?q={{pick .q | urlquery}}", true},
		{"GET", "/v1/{{.what}}", false}, // a literal segment must be spelled out
		{"GET", "/v1/notes", false},
		{"GET", "/v1/notes/", false},
		{"POST", "/v1/notes/{{.id}}", false},
		{"GET", "/v1/users/{{.id}}/notes/extra", false},
	} {
		if got := matchRoute(routes, tc.method, tc.path); got != tc.want {
			t.Errorf("matchRoute(%s %s) = %v; want %v", tc.method, tc.path, got, tc.want)
		}
	}
}

func TestReferences(t *testing.T) {
	for text, want := range map[string]string{
		"/v1/notes/{{.note_id}}":                                "note_id",
		`{{$n := add .i 1}}{{index .handles (mod $n 20)}}`:      "i handles",
		`{{json (printf "%s [%s]" (pick .comments) $.run_id)}}`: "comments run_id",
		`{{if .a}}{{.b}}{{else}}{{.c}}{{end}}`:                  "a b c",
		`{{range .list}}{{.field}}{{end}}`:                      "list",
		`plain`:                                                 "",
	} {
		got, err := references(text)
		if err != nil || strings.Join(got, " ") != want {
			t.Errorf("references(%q) = %v, %v; want %q", text, got, err, want)
		}
	}
}

func TestTemplateFuncs(t *testing.T) {
	var seq atomic.Int64
	uuid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	for text, check := range map[string]func(string) bool{
		`{{rand 3 5}}`:                func(s string) bool { return s == "3" || s == "4" || s == "5" },
		`{{pick .list}}`:              func(s string) bool { return s == "a" || s == "b" },
		`{{uuid}}`:                    uuid.MatchString,
		`{{seq}},{{seq}}`:             func(s string) bool { return s == "1,2" || s == "3,4" },
		`{{json .quote}}`:             func(s string) bool { return s == `"say \"hi\"\n"` },
		`{{add 2 3}} {{mod 7 3}}`:     func(s string) bool { return s == "5 1" },
		`{{printf "%03d" 7}}`:         func(s string) bool { return s == "007" },
		`{{"a b&c" | urlquery}}`:      func(s string) bool { return s == "a+b%26c" },
		`{{index .list 1}}-{{.list}}`: func(s string) bool { return s == "b-[a b]" },
	} {
		tm, err := newTemplate("t", text, &seq)
		if err != nil {
			t.Fatalf("%s: %v", text, err)
		}
		for range 20 {
			got, err := render(tm, map[string]any{"list": []any{"a", "b"}, "quote": "say \"hi\"\n"})
			if err != nil || !check(got) {
				t.Fatalf("%s = %q, %v", text, got, err)
			}
			if strings.Contains(text, "seq") {
				break
			}
		}
	}
	for _, text := range []string{`{{rand 5 3}}`, `{{mod 1 0}}`, `{{pick .missing}}`, `{{.missing}}`} {
		tm, _ := newTemplate("t", text, &seq)
		if got, err := render(tm, map[string]any{}); err == nil {
			t.Errorf("%s = %q; want an error", text, got)
		}
	}
}

func TestExtract(t *testing.T) {
	doc, err := decode([]byte(`{"token":"abc","user":{"id":"42","n":7,"ok":true,"tags":["x"]},"notes":[{"id":"1"},{"id":"2"}],"none":null,"empty":[]}`))
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		"token": "abc", "user.id": "42", "user.n": "7", "user.ok": "true", "user.tags": `["x"]`, "notes.1.id": "2",
	} {
		segs, _ := parsePath(path)
		if got, err := extract(doc, segs); err != nil || got != want {
			t.Errorf("extract(%s) = %q, %v; want %q", path, got, err, want)
		}
	}
	for range 20 {
		if got, _ := extract(doc, []string{"notes", "*", "id"}); got != "1" && got != "2" {
			t.Fatalf("extract(notes.*.id) = %q; want 1 or 2", got)
		}
	}
	for path, want := range map[string]string{
		"missing": "missing: no such field", "notes.5.id": "notes.5: want an index below 2", "empty.*": "empty.*: the list is empty",
		"token.x": "token.x: token has no fields", "none": "none: null", "none.id": "none.id: none is null",
	} {
		segs, _ := parsePath(path)
		if _, err := extract(doc, segs); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("extract(%s) = %v; want %q", path, err, want)
		}
	}
	if _, err := decode([]byte("<html>")); err == nil {
		t.Error("decode(<html>) = nil error")
	}
}

func FuzzParse(f *testing.F) {
	rednote, err := builtins.ReadFile("rednote.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(rednote))
	f.Add(minimal)
	f.Add("journeys: [")
	f.Add("journeys:\n  - name: a\n    weight: 1\n    steps: [{name: s, path: '/v1/notes/{{.x'}]\n")
	f.Add("data: {a: [1, 2]}\njourneys: [{name: a, weight: 1, steps: [{name: s, path: '/{{index .a 0}}'}]}]\n")
	f.Fuzz(func(t *testing.T, text string) {
		s, err := Parse("fuzz.yaml", []byte(text), Routes(RedNoteRoutes))
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Parse error %v does not wrap ErrInvalid", err)
			}
			return
		}
		if len(s.jour) == 0 || s.total <= 0 {
			t.Fatalf("a valid scenario with %d journeys, weight %v", len(s.jour), s.total)
		}
		if _, err := s.NewRunner(Env{BaseURL: "http://127.0.0.1:1"}); err != nil {
			t.Fatalf("NewRunner: %v", err)
		}
	})
}
