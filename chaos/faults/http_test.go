package faults

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/redline-dev/redline/internal/muxtest"
	"github.com/redline-dev/redline/kit/errs"
)

func serve(t *testing.T, e *env, method, path, body string) (int, []byte) {
	t.Helper()
	return muxtest.Serve(t, func(mux *http.ServeMux) { e.reg.Register(mux) }, method, path, body)
}

func decode[T any](t *testing.T, b []byte) T {
	t.Helper()
	return muxtest.Decode[T](t, b)
}

func TestHTTPAdd(t *testing.T) {
	e := newEnv(t)
	code, body := serve(t, e, "POST", "/chaos/faults", `{"type": "error", "service": "note", "code": 503, "ttl": "10m", "reason": "drill"}`)
	if code != http.StatusCreated {
		t.Fatalf("POST = %d %s; want 201", code, body)
	}
	f := decode[Fault](t, body)
	if f.ID == "" || f.Code != "503" || f.Source != SourceAPI || f.Percent != 100 || !f.ExpiresAt.Equal(e.clk.Now().Add(10*60e9)) {
		t.Errorf("POST answered %+v", f)
	}

	code, body = serve(t, e, "GET", "/chaos/faults", "")
	list := decode[struct{ Faults []Fault }](t, body)
	if code != http.StatusOK || len(list.Faults) != 1 || list.Faults[0].ID != f.ID {
		t.Errorf("GET = %d %s; want the fault", code, body)
	}
}

func TestHTTPAddRefused(t *testing.T) {
	for _, tt := range []struct {
		name, body, reason, field string
	}{
		{"bad percent", `{"type": "abort", "percent": 150}`, ReasonBadFault, "percent"},
		{"bad duration", `{"type": "delay", "delay": "abc"}`, ReasonBadFault, "delay"},
		{"drop", `{"type": "drop", "kind": "sql"}`, ReasonBadFault, "type"},
		{"ttl over max", `{"type": "abort", "ttl": "3h"}`, ReasonBadFault, "ttl"},
		{"unknown field", `{"type": "abort", "precent": 5}`, errs.ReasonUnknownField, "precent"},
		{"wrong type", `{"type": "abort", "percent": "5"}`, errs.ReasonInvalidArgument, "percent"},
		{"malformed", `{"type": `, errs.ReasonBadJSON, ""},
		{"too large", `{"reason": "` + strings.Repeat("x", MaxBody) + `"}`, errs.ReasonBodyTooLarge, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			code, body := serve(t, e, "POST", "/chaos/faults", tt.body)
			if code != http.StatusBadRequest {
				t.Fatalf("POST = %d %s; want 400", code, body)
			}
			b := decode[errs.Body](t, body)
			if b.Error.Reason != tt.reason || b.Error.Metadata["field"] != tt.field {
				t.Errorf("POST = %+v; want reason %s naming field %q", b.Error, tt.reason, tt.field)
			}
			if tt.field != "" && !strings.Contains(b.Error.Message, tt.field) {
				t.Errorf("message %q does not name %q", b.Error.Message, tt.field)
			}
			if l := e.reg.List(); len(l) != 0 {
				t.Errorf("a refused POST added %+v", l)
			}
		})
	}
}

func TestHTTPRemoveAndClear(t *testing.T) {
	e := newEnv(t)
	e.add(t, Spec{ID: "one", Type: TypeAbort})
	e.add(t, Spec{ID: "two", Type: TypeAbort})
	e.add(t, Spec{ID: "three", Type: TypeAbort})

	code, body := serve(t, e, "DELETE", "/chaos/faults/nope", "")
	if code != http.StatusNotFound || decode[errs.Body](t, body).Error.Reason != ReasonFaultNotFound {
		t.Errorf("DELETE unknown = %d %s; want 404 %s", code, body, ReasonFaultNotFound)
	}
	code, body = serve(t, e, "DELETE", "/chaos/faults/one", "")
	if code != http.StatusOK || decode[map[string]int](t, body)["removed"] != 1 {
		t.Errorf("DELETE one = %d %s; want 200 removed 1", code, body)
	}
	code, body = serve(t, e, "DELETE", "/chaos/faults", "")
	if code != http.StatusOK || decode[map[string]int](t, body)["removed"] != 2 {
		t.Errorf("DELETE all = %d %s; want 200 removed 2", code, body)
	}
	if l := e.reg.List(); len(l) != 0 {
		t.Errorf("List after clear = %+v", l)
	}
	_, body = serve(t, e, "GET", "/chaos/faults", "")
	if string(body) != "{\"faults\":[]}\n" {
		t.Errorf("GET empty = %s; want an empty list", body)
	}

	code, body = serve(t, e, "GET", "/chaos/events", "")
	ev := decode[struct{ Events []Event }](t, body)
	var types []string
	for _, x := range ev.Events {
		types = append(types, x.Type+" "+x.ID)
	}
	want := "[added one added two added three removed one cleared two cleared three]"
	if code != http.StatusOK || fmt.Sprint(types) != want {
		t.Errorf("GET events = %d %v; want %s", code, types, want)
	}
}
