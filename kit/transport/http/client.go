package http

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/redline-dev/redline/ha"
	"github.com/redline-dev/redline/kit/errs"
	"github.com/redline-dev/redline/kit/fault"
	"github.com/redline-dev/redline/kit/meta"
	"github.com/redline-dev/redline/kit/middleware"
)

// DefaultClientTimeout is the budget of a call made without a deadline in its ctx.
const DefaultClientTimeout = time.Second

// Client calls JSON endpoints of one base URL through the kit's client chain. It sends the
// ctx deadline as X-Redline-Timeout and decodes error bodies back into *errs.Error.
type Client struct {
	base    string
	service string
	hc      *http.Client
	chain   middleware.Middleware
}

type clientOptions struct {
	ha       *ha.Client
	logger   *slog.Logger
	deadline middleware.DeadlineConfig
	extra    []middleware.Middleware
	defaults bool
	hc       *http.Client
}

// ClientOption configures a Client.
type ClientOption func(*clientOptions)

// ClientLogger sets the logger for failed calls.
func ClientLogger(l *slog.Logger) ClientOption { return func(o *clientOptions) { o.logger = l } }

// ClientDeadline sets the deadline policy; the default is DefaultClientTimeout.
func ClientDeadline(cfg middleware.DeadlineConfig) ClientOption {
	return func(o *clientOptions) { o.deadline = cfg }
}

// ClientMiddleware appends ms after the default client chain.
func ClientMiddleware(ms ...middleware.Middleware) ClientOption {
	return func(o *clientOptions) { o.extra = append(o.extra, ms...) }
}

// ClientHA sets the client's HA parts, built by the caller with ha.NewClient. Without it
// the client builds its own from ha.Default().
func ClientHA(h *ha.Client) ClientOption { return func(o *clientOptions) { o.ha = h } }

// HTTPClient sets the underlying *http.Client.
func HTTPClient(hc *http.Client) ClientOption { return func(o *clientOptions) { o.hc = hc } }

// NewClient returns a client of the named service at base ("http://127.0.0.1:8080").
func NewClient(service, base string, opts ...ClientOption) *Client {
	o := clientOptions{logger: slog.Default(), defaults: true, hc: http.DefaultClient,
		deadline: middleware.DeadlineConfig{Default: DefaultClientTimeout}}
	for _, opt := range opts {
		opt(&o)
	}
	var ms []middleware.Middleware
	if o.defaults {
		ms = middleware.ClientDefaults(o.logger, o.deadline)
		if o.ha == nil {
			o.ha = ha.NewClient(ha.Default(), nil, nil)
		}
		ms = append(ms, o.ha.Middleware()...)
		// Innermost: an injected fault is a failing or slow remote to retries and breakers.
		ms = append(ms, middleware.Fault(fault.HTTP, fault.Client, ""))
	}
	return &Client{base: strings.TrimRight(base, "/"), service: service, hc: o.hc,
		chain: middleware.Chain(append(ms, o.extra...)...)}
}

// Do calls method path with in as the JSON body (nil for none) and decodes the answer into
// out (nil to discard). Header h, if not nil, adds request headers (such as Authorization).
// A non-2xx answer returns its *errs.Error.
func (c *Client) Do(ctx context.Context, method, path string, h http.Header, in, out any) error {
	hdr := http.Header{}
	for k, v := range h {
		hdr[k] = v
	}
	info := &middleware.Info{Kind: middleware.HTTP, Side: middleware.Client, Service: c.service,
		Operation: method + " " + PathShape(path), Method: method, Header: Header(hdr), Start: time.Now()}
	call := c.chain(func(ctx context.Context, _ any) (any, error) {
		return nil, c.send(ctx, method, path, hdr, in, out)
	})
	_, err := call(middleware.NewContext(ctx, info), in)
	return err
}

func (c *Client) send(ctx context.Context, method, path string, hdr http.Header, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return errs.InvalidArgument(errs.ReasonInvalidArgument, "encode request: %v", err)
		}
		body = bytes.NewReader(b)
		hdr.Set("Content-Type", "application/json")
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return errs.InvalidArgument(errs.ReasonInvalidArgument, "build request: %v", err)
	}
	req.Header = hdr
	if dl, ok := ctx.Deadline(); ok {
		req.Header.Set(meta.HeaderTimeout, time.Until(dl).String())
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return errs.From(ctx.Err())
		}
		return errs.New(codes.Unavailable, errs.ReasonUnavailable, fmt.Sprintf("%s %s: %v", method, path, err)).WithCause(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		var b errs.Body
		if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&b); err != nil || b.Error.Reason == "" {
			return errs.New(errs.CodeFromHTTP(resp.StatusCode), "HTTP_"+fmt.Sprint(resp.StatusCode), resp.Status)
		}
		return errs.FromBody(resp.StatusCode, b)
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return errs.New(codes.Unavailable, "BAD_RESPONSE", fmt.Sprintf("decode %s %s: %v", method, path, err))
	}
	return nil
}

// PathShape is the shape of a request path, for metric labels and breaker keys: the query is
// dropped and id-like segments (all digits, or 8+ characters holding a digit, as UUIDs and
// hashes do) become {id}, so /v1/notes/123?x=1 is /v1/notes/{id} and one route is one
// series, not one per resource.
func PathShape(path string) string {
	path, _, _ = strings.Cut(path, "?")
	segs := strings.Split(path, "/")
	for i, seg := range segs {
		digits := strings.Trim(seg, "0123456789") == "" && seg != ""
		if digits || len(seg) >= 8 && strings.ContainsAny(seg, "0123456789") {
			segs[i] = "{id}"
		}
	}
	return strings.Join(segs, "/")
}
