package netfault

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// api serves e's admin API on a test server.
func (e *env) api(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	e.px.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func call(t *testing.T, method, url, body string, out any) int {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: decode %s: %v", method, url, raw, err)
		}
	}
	return resp.StatusCode
}

type errBody struct {
	Error struct {
		Reason   string            `json:"reason"`
		Message  string            `json:"message"`
		Metadata map[string]string `json:"metadata"`
	} `json:"error"`
}

func TestAPIBadSpecsName400(t *testing.T) {
	e := newEnv(t)
	srv := e.api(t)
	for _, tc := range []struct{ body, field string }{
		{`{"type": "timeout"}`, "proxy"},
		{`{"proxy": "nope", "type": "timeout"}`, "proxy"},
		{`{"proxy": "echo", "type": "latency", "attributes": {"latency": "-5ms"}}`, "attributes.latency"},
		{`{"proxy": "echo", "type": "timeout", "ttl": "3h"}`, "ttl"},
		{`{"proxy": "echo", "type": "timeout", "colour": "red"}`, "colour"},
		{`{"proxy": "echo", "type": "timeout", "toxicity": "all"}`, "toxicity"},
	} {
		var b errBody
		if code := call(t, "POST", srv.URL+"/chaos/net/toxics", tc.body, &b); code != http.StatusBadRequest {
			t.Errorf("POST %s = %d; want 400", tc.body, code)
		}
		if b.Error.Metadata["field"] != tc.field {
			t.Errorf("POST %s names field %q (%s); want %q", tc.body, b.Error.Metadata["field"], b.Error.Message, tc.field)
		}
	}
	var b errBody
	if code := call(t, "POST", srv.URL+"/chaos/net/proxies/echo/disable", `{"ttl": "forever"}`, &b); code != http.StatusBadRequest || b.Error.Metadata["field"] != "ttl" {
		t.Errorf("disable with a bad ttl = %d %+v; want 400 naming ttl", code, b)
	}
	if code := call(t, "POST", srv.URL+"/chaos/net/proxies/nope/disable", "", nil); code != http.StatusNotFound {
		t.Errorf("disable an unknown proxy = %d; want 404", code)
	}
	if code := call(t, "DELETE", srv.URL+"/chaos/net/toxics/nope", "", nil); code != http.StatusNotFound {
		t.Errorf("DELETE an unknown toxic = %d; want 404", code)
	}
}

func TestAPIRoundTrip(t *testing.T) {
	e := newEnv(t)
	srv := e.api(t)
	var tox Toxic
	if code := call(t, "POST", srv.URL+"/chaos/net/toxics",
		`{"proxy": "echo", "type": "latency", "attributes": {"latency": "10ms"}, "ttl": "1m", "reason": "api test"}`, &tox); code != http.StatusCreated {
		t.Fatalf("POST toxic = %d", code)
	}
	if tox.ID == "" || tox.Stream != Downstream || tox.Toxicity == nil || *tox.Toxicity != 1 || tox.TTL != "1m0s" ||
		!tox.ExpiresAt.Equal(e.clk.Now().Add(time.Minute)) {
		t.Fatalf("POST toxic = %+v; want defaults filled in and a 1m expiry", tox)
	}
	var disabled Proxy
	if code := call(t, "POST", srv.URL+"/chaos/net/proxies/echo/disable", `{"ttl": "30s"}`, &disabled); code != http.StatusOK || disabled.Enabled {
		t.Fatalf("disable = %d %+v", code, disabled)
	}
	var list struct{ Proxies []Proxy }
	call(t, "GET", srv.URL+"/chaos/net", "", &list)
	if len(list.Proxies) != 1 || list.Proxies[0].Enabled || list.Proxies[0].Outage == nil ||
		len(list.Proxies[0].Toxics) != 1 || list.Proxies[0].Toxics[0].ID != tox.ID || list.Proxies[0].Upstream != e.up.addr() {
		t.Fatalf("GET /chaos/net = %+v; want echo disabled with the toxic", list)
	}
	var enabled Proxy
	if code := call(t, "POST", srv.URL+"/chaos/net/proxies/echo/enable", "", &enabled); code != http.StatusOK || !enabled.Enabled {
		t.Fatalf("enable = %d %+v", code, enabled)
	}
	var removed map[string]int
	if code := call(t, "DELETE", srv.URL+"/chaos/net/toxics/"+tox.ID, "", &removed); code != http.StatusOK || removed["removed"] != 1 {
		t.Fatalf("DELETE toxic = %d %v", code, removed)
	}
}

func TestAPIDeleteAllClearsEverything(t *testing.T) {
	e := newEnv(t)
	srv := e.api(t)
	for _, body := range []string{
		`{"proxy": "echo", "type": "timeout"}`,
		`{"proxy": "echo", "type": "reset_peer", "stream": "upstream"}`,
	} {
		if code := call(t, "POST", srv.URL+"/chaos/net/toxics", body, nil); code != http.StatusCreated {
			t.Fatalf("POST %s = %d", body, code)
		}
	}
	if code := call(t, "POST", srv.URL+"/chaos/net/proxies/echo/disable", "", nil); code != http.StatusOK {
		t.Fatalf("disable = %d", code)
	}
	var got map[string]int
	if code := call(t, "DELETE", srv.URL+"/chaos/net", "", &got); code != http.StatusOK || got["removed"] != 2 || got["enabled"] != 1 {
		t.Fatalf("DELETE /chaos/net = %d %v; want removed 2, enabled 1", code, got)
	}
	var list struct{ Proxies []Proxy }
	call(t, "GET", srv.URL+"/chaos/net", "", &list)
	if p := list.Proxies[0]; !p.Enabled || p.Outage != nil || len(p.Toxics) != 0 || e.px.libraryToxicCount("echo") != 0 {
		t.Fatalf("after DELETE /chaos/net: %+v; want echo enabled and clean", p)
	}
	if err := roundTrip(e.dial(t), "clean"); err != nil {
		t.Fatalf("round trip after DELETE /chaos/net: %v", err)
	}
}
