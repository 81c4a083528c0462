package load

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"time"
)

// DefaultMaxConns is NewClient's default bound on connections per host.
const DefaultMaxConns = 1024

// NewClient returns an HTTP client tuned for load generation: keep-alive connections, at
// most maxConns per host (0: DefaultMaxConns) and all of them kept idle between requests,
// no compression, no proxy from the environment, HTTP/1.1, and timeout as every request's
// deadline. A request that finds every connection busy waits for one, and the wait counts
// in its latency: the bound keeps a stalled server from costing thousands of sockets.
func NewClient(timeout time.Duration, maxConns int) *http.Client {
	if maxConns <= 0 {
		maxConns = DefaultMaxConns
	}
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			DialContext:           dialer.DialContext,
			MaxConnsPerHost:       maxConns,
			MaxIdleConns:          maxConns,
			MaxIdleConnsPerHost:   maxConns,
			IdleConnTimeout:       90 * time.Second,
			DisableCompression:    true,
			ForceAttemptHTTP2:     false,
			TLSHandshakeTimeout:   5 * time.Second,
			ExpectContinueTimeout: time.Second,
		},
		// A load test measures the answer it got; it does not chase redirects.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// MaxBody bounds how much of a response Send reads; the rest is discarded.
const MaxBody = 4 << 20

// Send sends req with c and reads its body (up to MaxBody bytes). A status for which
// expect returns false is an *Error of KindStatus carrying the server's error reason when
// the body is Redline's error shape ({"error":{"reason":...}}); expect nil accepts 2xx.
func Send(c *http.Client, req *http.Request, expect func(status int) bool) (status int, body []byte, err error) {
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err = io.ReadAll(io.LimitReader(resp.Body, MaxBody))
	if err != nil {
		return resp.StatusCode, nil, err
	}
	_, _ = io.Copy(io.Discard, resp.Body) // so the connection is reused
	if expect == nil {
		expect = Success
	}
	if !expect(resp.StatusCode) {
		return resp.StatusCode, body, StatusError(req, resp.StatusCode, body)
	}
	return resp.StatusCode, body, nil
}

// Success accepts 2xx statuses.
func Success(status int) bool { return status >= 200 && status < 300 }

// StatusError is the *Error for an unexpected status: it reads Redline's error reason
// from body when there is one.
func StatusError(req *http.Request, status int, body []byte) *Error {
	var shape struct {
		Error struct {
			Reason  string `json:"reason"`
			Message string `json:"message"`
		} `json:"error"`
	}
	_ = json.Unmarshal(body, &shape)
	detail := fmt.Sprintf("%s %s: %d", req.Method, req.URL.Path, status)
	if m := shape.Error.Message; m != "" {
		detail += ": " + m
	}
	return &Error{Kind: KindStatus, Status: status, Reason: shape.Error.Reason, Detail: detail}
}

// Request is one HTTP request for HTTPDoer.
type Request struct {
	Name   string // the step name in the result; default "METHOD path"
	Method string
	URL    string
	Header http.Header
	Body   []byte
	// Expect lists the statuses that count as success; empty means 2xx.
	Expect []int
}

// HTTPDoer returns a Doer that sends r once per iteration with c.
func HTTPDoer(c *http.Client, r Request) Doer {
	name := r.Name
	if name == "" {
		name = r.Method + " " + r.URL
		if u, err := url.Parse(r.URL); err == nil {
			name = r.Method + " " + u.Path
		}
	}
	expect := Success
	if len(r.Expect) > 0 {
		expect = func(s int) bool { return slices.Contains(r.Expect, s) }
	}
	return DoerFunc(func(ctx context.Context, it *Iteration) {
		_ = it.Step(name, func() (int, error) {
			req, err := http.NewRequestWithContext(ctx, r.Method, r.URL, bytes.NewReader(r.Body))
			if err != nil {
				return 0, err
			}
			for k, v := range r.Header {
				req.Header[k] = v
			}
			status, _, err := Send(c, req, expect)
			return status, err
		})
	})
}
