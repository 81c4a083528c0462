// Package stacktest starts the demo stack inside a test, on embedded stores in a temp dir
// and free loopback ports, and gives a small JSON client for the BFF's API.
package stacktest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/redline-dev/redline/kit/app"
	"github.com/redline-dev/redline/kit/log"
	"github.com/redline-dev/redline/services/stack"
)

// Running is a started stack.
type Running struct {
	*stack.Stack
	BFF   string // base URL of the BFF
	Admin string // base URL of the admin endpoint
	stop  func()
}

// Stop stops the stack now, as its cleanup would: for tests that start another on the same
// data directory (a restart). Calling it again does nothing.
func (r *Running) Stop() { r.stop() }

// Start runs all services until the test ends. edit may change the configuration first.
func Start(t testing.TB, edit func(*stack.Config)) *Running {
	t.Helper()
	return StartOnly(t, edit)
}

// StartOnly runs the named services (all when none) until the test ends.
func StartOnly(t testing.TB, edit func(*stack.Config), services ...string) *Running {
	t.Helper()
	cfg := stack.Default()
	cfg.DataDir = t.TempDir()
	cfg.Admin.Addr, cfg.BFF.Addr, cfg.Quota.Addr, cfg.Provider.Addr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.SRE.Addr = "127.0.0.1:0"
	cfg.User.BcryptCost = 4 // bcrypt.MinCost: tests check logic, not hashing strength
	cfg.StopTimeout = 5 * time.Second
	// Generous budgets: the race detector on 2 cores is slow, and these tests are about
	// behavior, not speed.
	cfg.Timeouts.Internal = 5 * time.Second
	cfg.Timeouts.Edge = 10 * time.Second
	if edit != nil {
		edit(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	st, err := stack.New(ctx, cfg, log.Discard(), services...)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	started := make(chan struct{})
	comps := append(st.Components(), app.Hook("started", func(context.Context) error { close(started); return nil }, nil))
	a := app.New(app.Components(comps...), app.Drainers(st.Admin), app.Logger(log.Discard()), app.Signals())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	select {
	case <-started:
	case err := <-done:
		cancel()
		t.Fatalf("stack did not start: %v", err)
	}
	stop := sync.OnceFunc(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("stack stop: %v", err)
		}
	})
	t.Cleanup(stop)
	return &Running{Stack: st, BFF: st.BFFURL(), Admin: st.AdminURL(), stop: stop}
}

// Response is an HTTP answer with its body.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into v, failing the test on error.
func (r Response) JSON(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %s: %v", r.Body, err)
	}
}

// Reason returns the error reason in the body, or "".
func (r Response) Reason() string {
	var b struct {
		Error struct {
			Reason string `json:"reason"`
		} `json:"error"`
	}
	_ = json.Unmarshal(r.Body, &b)
	return b.Error.Reason
}

// Do sends method url with body (a string or []byte is sent as is, anything else as
// JSON) and headers given as key, value pairs.
func Do(t testing.TB, method, url string, body any, headers ...string) Response {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = bytes.NewReader([]byte(b))
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
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
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: raw}
}

// Session registers username with a password and logs in, returning the bearer header
// value and the user id. headers go with both requests (a lane token, say).
func Session(t testing.TB, bff, username string, headers ...string) (bearer, userID string) {
	t.Helper()
	r := Do(t, "POST", bff+"/v1/users", map[string]string{"username": username, "password": "correct horse battery"}, headers...)
	if r.Status != http.StatusCreated {
		t.Fatalf("register %s = %d %s", username, r.Status, r.Body)
	}
	r = Do(t, "POST", bff+"/v1/sessions", map[string]string{"username": username, "password": "correct horse battery"}, headers...)
	if r.Status != http.StatusCreated {
		t.Fatalf("login %s = %d %s", username, r.Status, r.Body)
	}
	var s struct {
		Token string `json:"token"`
		User  struct {
			ID string `json:"id"`
		} `json:"user"`
	}
	r.JSON(t, &s)
	return "Bearer " + s.Token, s.User.ID
}

// Conn dials a service of the stack directly over gRPC (no HA middleware), for tests that
// drive a service's own API. It is closed when the test ends.
func (r *Running) Conn(t testing.TB, service string) *grpc.ClientConn {
	t.Helper()
	addr := r.GRPCAddr(service)
	if addr == "" {
		t.Fatalf("stacktest: %s does not run in this stack", service)
	}
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

// Eventually polls check every 20ms until it reports done, failing the test after 20s with
// what the last check said. For work that happens after an answer: fan-out, queued
// writes, provider callbacks.
func Eventually(t testing.TB, what string, check func() (done bool, last string)) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		done, last := check()
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 20s; last: %s", what, last)
		}
		<-tick.C
	}
}

// SignupSLO is an SLO no real sign-up can meet: 99.99% of POST /v1/users within 0.5 ms (it
// hashes a password and writes through gRPC). Every sign-up is a bad event, a full outage
// of the SLO, and at 99.99% a full outage pages after 14.4 × 0.0001 × 1 h = 5.2 s of it —
// so the whole chain from real requests to a page runs in seconds, on the real clock. Write
// it to a file, set sre.slos to it and sre.eval_interval to 1s, and sign up a dozen users.
const SignupSLO = `apiVersion: openslo/v1
kind: Service
metadata: {name: bff}
spec: {description: The BFF gateway.}
---
apiVersion: openslo/v1
kind: SLO
metadata:
  name: bff-signup-latency
  annotations: {redline/min-requests: "5"}
spec:
  service: bff
  indicator:
    metadata: {name: bff-signup-fast}
    spec:
      thresholdMetric:
        metricSource: {type: redline, spec: {transport: http, service: bff, routes: ["POST /v1/users"]}}
  timeWindow: [{duration: 30d, isRolling: true}]
  budgetingMethod: Occurrences
  objectives: [{op: lte, value: 0.0005, target: 0.9999}]
`
