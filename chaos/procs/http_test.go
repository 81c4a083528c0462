package procs

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/redline-dev/redline/internal/muxtest"
	"github.com/redline-dev/redline/kit/errs"
)

func serve(t *testing.T, e *env, method, path, body string) (int, []byte) {
	t.Helper()
	return muxtest.Serve(t, func(mux *http.ServeMux) { e.s.Register(mux) }, method, path, body)
}

func decode[T any](t *testing.T, b []byte) T {
	t.Helper()
	return muxtest.Decode[T](t, b)
}

func TestHTTPFaults(t *testing.T) {
	needProc(t)
	e := newChildren(t, "a", "b")
	code, body := serve(t, e, "GET", "/chaos/procs", "")
	list := decode[struct{ Procs []Info }](t, body)
	if code != http.StatusOK || len(list.Procs) != 2 || list.Procs[0].Name != "a" || list.Procs[1].State != Running {
		t.Fatalf("GET = %d %s; want a and b running", code, body)
	}

	code, body = serve(t, e, "POST", "/chaos/procs/a/kill", `{"restart_after": "2s"}`)
	in := decode[Info](t, body)
	if code != http.StatusOK || in.State != Restarting {
		t.Fatalf("kill = %d %s; want 200 restarting", code, body)
	}
	e.waitFor(t, "a", "reaped", func(in Info) bool { return in.PID == 0 })
	if in := e.info(t, "a"); !in.NextStart.Equal(e.clk.Now().Add(2 * time.Second)) {
		t.Errorf("after kill with restart_after 2s: %+v", in)
	}

	code, body = serve(t, e, "POST", "/chaos/procs/b/pause", `{"for": "10s"}`)
	if in := decode[Info](t, body); code != http.StatusOK || in.State != Paused || !in.PausedUntil.Equal(e.clk.Now().Add(10*time.Second)) {
		t.Errorf("pause = %d %s; want paused for 10s", code, body)
	}
	for _, action := range []string{"resume", "stop", "start", "restart"} {
		// No body, an empty object: both fine.
		code, body = serve(t, e, "POST", "/chaos/procs/b/"+action, map[bool]string{true: "{}"}[action == "stop"])
		if code != http.StatusOK {
			t.Errorf("%s = %d %s; want 200", action, code, body)
		}
	}
}

func TestHTTPRefusals(t *testing.T) {
	needProc(t)
	e := newChildren(t, "a")
	if _, err := e.s.Stop("a"); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, path, body string
		status           int
		reason, field    string
	}{
		{"unknown process", "/chaos/procs/nope/kill", "", 404, ReasonNotFound, ""},
		{"unknown action", "/chaos/procs/a/explode", "", 404, ReasonNotFound, ""},
		{"bad duration", "/chaos/procs/a/kill", `{"restart_after": "soon"}`, 400, ReasonBadRequest, "restart_after"},
		{"negative", "/chaos/procs/a/kill", `{"restart_after": "-1s"}`, 400, ReasonBadRequest, "restart_after"},
		{"too long a pause", "/chaos/procs/a/pause", `{"for": "11m"}`, 400, ReasonBadRequest, "for"},
		{"a number", "/chaos/procs/a/pause", `{"for": 10}`, 400, errs.ReasonInvalidArgument, "for"},
		{"unknown field", "/chaos/procs/a/stop", `{"force": true}`, 400, errs.ReasonUnknownField, "force"},
		{"not JSON", "/chaos/procs/a/start", `stop`, 400, errs.ReasonBadJSON, ""},
		{"not running", "/chaos/procs/a/kill", "", 412, ReasonState, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, body := serve(t, e, "POST", tt.path, tt.body)
			b := decode[errs.Body](t, body)
			if code != tt.status || b.Error.Reason != tt.reason || b.Error.Metadata["field"] != tt.field {
				t.Errorf("POST %s %s = %d %s; want %d %s naming %q", tt.path, tt.body, code, body, tt.status, tt.reason, tt.field)
			}
		})
	}
}

// TestInfoReportsAdmin: a process's admin address, when its Proc has one, is in its Info
// and the API's JSON, and stays with it across a restart; without one there is no key.
func TestInfoReportsAdmin(t *testing.T) {
	dir := t.TempDir()
	withAdmin := childProc(dir, "a")
	withAdmin.Admin = "127.0.0.1:9101"
	e := newEnv(t, []Proc{withAdmin, childProc(dir, "b")})
	code, body := serve(t, e, "GET", "/chaos/procs", "")
	if code != http.StatusOK || !strings.Contains(string(body), `"admin":"127.0.0.1:9101"`) || strings.Count(string(body), `"admin"`) != 1 {
		t.Fatalf("GET = %d %s; want a's admin address, and no admin key for b", code, body)
	}
	before := e.info(t, "a")
	if _, err := e.s.Kill("a", 0); err != nil {
		t.Fatal(err)
	}
	in := e.waitFor(t, "a", "restarted", func(in Info) bool { return in.State == Running && in.PID != 0 && in.PID != before.PID })
	if in.Admin != "127.0.0.1:9101" {
		t.Errorf("after a restart: %+v; want admin 127.0.0.1:9101", in)
	}
}
