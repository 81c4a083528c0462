package load

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// TestHTTPDoer drives a real loopback server: counts and error classification only, no
// timing assertions.
func TestHTTPDoer(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Test") != "yes" {
			http.Error(w, "no header", http.StatusBadRequest)
			return
		}
		if n.Add(1)%4 == 0 {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"error":{"code":"Unavailable","reason":"OVERLOADED","message":"try later"}}`))
			return
		}
		_, _ = w.Write([]byte("ok"))
	}))
	defer srv.Close()
	client := NewClient(5*time.Second, 0)
	defer client.CloseIdleConnections()
	s, _ := Constant(200, 200*time.Millisecond)
	res, err := Run(context.Background(), s, HTTPDoer(client, Request{Method: "GET", URL: srv.URL + "/v1/x?y=1",
		Header: http.Header{"X-Test": {"yes"}}}))
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 40 || res.OK != 30 || res.Errors != 10 {
		t.Fatalf("%d requests, %d ok, %d errors; want 40, 30, 10", res.Requests, res.OK, res.Errors)
	}
	if len(res.Steps) != 1 || res.Steps[0].Name != "GET /v1/x" || res.Steps[0].Statuses[503] != 10 {
		t.Fatalf("steps %+v; want GET /v1/x with ten 503s", res.Steps)
	}
	e := res.ErrorKinds
	if len(e) != 1 || e[0].Kind != KindStatus || e[0].Status != 503 || e[0].Reason != "OVERLOADED" || e[0].Example != "GET /v1/x: 503: try later" {
		t.Fatalf("errors %+v; want ten 503 OVERLOADED", e)
	}

	// A closed port is a transport error, not a crash.
	srv.Close()
	res, err = Run(context.Background(), s, HTTPDoer(client, Request{Method: "GET", URL: srv.URL}))
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors != 40 || res.ErrorKinds[0].Kind != KindTransport {
		t.Fatalf("%d errors %+v; want 40 transport errors", res.Errors, res.ErrorKinds)
	}
}
