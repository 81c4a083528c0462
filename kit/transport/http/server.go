// Package http provides the kit's HTTP server and client. JSON routes run the shared
// middleware chain (kit/middleware) behind the default server chain; the caller's deadline
// crosses the hop in the X-Redline-Timeout header; errors render as the errs JSON body.
//
// The default chains end in the HA parts and then middleware.Fault, the fault-injection
// hook (kit/fault): an injected error is a failing handler on a server and a failing
// remote on a client, and an abort injected at a server drops the connection unanswered.
// With no injector installed the hook costs one atomic load per request.
//
// Request bodies are size-limited and decoded strictly: malformed JSON, unknown fields,
// trailing data and oversized bodies are refused with 400 and a reason before the handler
// runs, so a bad request never half-applies a write.
package http

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/prometheus/client_golang/prometheus"
	"io"
	"log/slog"
	"net/http"
	"net/textproto"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/redline-dev/redline/ha"
	"github.com/redline-dev/redline/kit/errs"
	"github.com/redline-dev/redline/kit/fault"
	"github.com/redline-dev/redline/kit/internal/serve"
	"github.com/redline-dev/redline/kit/meta"
	"github.com/redline-dev/redline/kit/metric"
	"github.com/redline-dev/redline/kit/middleware"
)

// DefaultServerTimeout is the budget of an edge request: what users call gets up to 1 s.
const DefaultServerTimeout = time.Second

// DefaultMaxBody is the default request body limit.
const DefaultMaxBody = 1 << 20

// Server serves JSON routes on a net/http ServeMux (Go 1.22 patterns). It implements
// app.Component.
type Server struct {
	name string
	o    serverOptions
	mux  *http.ServeMux
	base []middleware.Middleware
	srv  *http.Server
	serve.Loop
	ownHA *ha.Server
}

type serverOptions struct {
	addr     string
	logger   *slog.Logger
	deadline middleware.DeadlineConfig
	extra    []middleware.Middleware
	defaults bool
	maxBody  int64
	edge     bool
	ha       *ha.Server

	laneVerify func(string) (string, error)
	laneReason func(error) string
}

// ServerOption configures a Server.
type ServerOption func(*serverOptions)

// Address sets the listen address; the default is "127.0.0.1:0".
func Address(addr string) ServerOption { return func(o *serverOptions) { o.addr = addr } }

// Logger sets the logger of the default chain; the default is slog.Default().
func Logger(l *slog.Logger) ServerOption { return func(o *serverOptions) { o.logger = l } }

// Deadline sets the deadline policy; the default is DefaultServerTimeout, 1 ms margin.
func Deadline(cfg middleware.DeadlineConfig) ServerOption {
	return func(o *serverOptions) { o.deadline = cfg }
}

// Middleware appends ms after the default chain for every route.
func Middleware(ms ...middleware.Middleware) ServerOption {
	return func(o *serverOptions) { o.extra = append(o.extra, ms...) }
}

// HA sets the server's HA parts, built by the caller with ha.NewServer (edge=true for an
// Edge server) so it can configure them and show their state; the caller closes it.
// Without this option the server builds its own from ha.Default() and closes it at Stop.
func HA(h *ha.Server) ServerOption { return func(o *serverOptions) { o.ha = h } }

// WithoutDefaults drops the default chain, HA and the fault hook included.
func WithoutDefaults() ServerOption { return func(o *serverOptions) { o.defaults = false } }

// MaxBody sets the request body limit in bytes; the default is DefaultMaxBody.
func MaxBody(n int64) ServerOption { return func(o *serverOptions) { o.maxBody = n } }

// Edge marks the server as the edge of the system: it accepts no lane from the outside
// (the lane header is stripped), since lanes enter only through a signed header.
func Edge() ServerOption { return func(o *serverOptions) { o.edge = true } }

// EdgeLanes lets an Edge server admit lanes: a request whose X-Redline-Lane token (or
// redline_lane query parameter, for webhooks) verify
// accepts is carried inside in its lane (as the baggage member "lane"); a token verify
// refuses is stripped, logged and counted in redline_lane_rejected_total{service,reason},
// with reason(err) as the label, and the request goes on in the baseline lane. Without
// this option every lane token is stripped (reason "no_key").
func EdgeLanes(verify func(token string) (string, error), reason func(error) string) ServerOption {
	return func(o *serverOptions) { o.laneVerify, o.laneReason = verify, reason }
}

var (
	lanesRejected = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "redline_lane_rejected_total",
		Help: "Lane tokens an edge refused and stripped, by reason."}, []string{"service", "reason"})
	lanesAdmitted = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "redline_lane_admitted_total",
		Help: "Requests an edge admitted into a lane."}, []string{"service", "lane"})
)

func init() { metric.Registry.MustRegister(lanesRejected, lanesAdmitted) }

// admitLane runs at an Edge server after the outside's baggage was stripped: a valid lane
// token becomes the request's lane; anything else is dropped and counted. It reports
// whether the request is now in a lane.
func (s *Server) admitLane(r *http.Request) bool {
	tok := r.Header.Get(meta.HeaderLaneToken)
	if tok == "" {
		// A webhook (the payment provider's callback) cannot set headers: its URL can
		// carry the token instead.
		q := r.URL.Query()
		if tok = q.Get(meta.QueryLaneToken); tok == "" {
			return false
		}
		q.Del(meta.QueryLaneToken)
		r.URL.RawQuery = q.Encode()
	}
	r.Header.Del(meta.HeaderLaneToken)
	if s.o.laneVerify == nil {
		lanesRejected.WithLabelValues(s.name, "no_key").Inc()
		s.o.logger.Warn("lane token stripped: this edge admits no lanes (no stress key)", "service", s.name)
		return false
	}
	lane, err := s.o.laneVerify(tok)
	if err != nil {
		reason := "invalid"
		if s.o.laneReason != nil {
			reason = s.o.laneReason(err)
		}
		lanesRejected.WithLabelValues(s.name, reason).Inc()
		s.o.logger.Warn("lane token stripped", "service", s.name, "reason", reason)
		return false
	}
	lanesAdmitted.WithLabelValues(s.name, lane).Inc()
	r.Header.Set(meta.HeaderBaggage, meta.BaggageLane+"="+lane)
	return true
}

// NewServer returns a server for the named service.
func NewServer(name string, opts ...ServerOption) *Server {
	o := serverOptions{addr: "127.0.0.1:0", logger: slog.Default(), defaults: true, maxBody: DefaultMaxBody,
		deadline: middleware.DeadlineConfig{Default: DefaultServerTimeout, Margin: time.Millisecond}}
	for _, opt := range opts {
		opt(&o)
	}
	s := &Server{name: name, o: o, mux: http.NewServeMux()}
	if o.defaults {
		s.base = middleware.ServerDefaults(o.logger, o.deadline)
		h, owned, err := ha.Own(o.ha, name, o.edge)
		if err != nil {
			o.logger.Error("HA parts disabled: they failed to start", "service", name, "error", err)
		}
		s.ownHA = owned
		if h != nil {
			s.base = append(s.base, h.Middleware()...)
		}
		// Innermost: an injected fault is a failing or slow handler to everything above.
		s.base = append(s.base, middleware.Fault(fault.HTTP, fault.Server, name))
	}
	s.base = append(s.base, o.extra...)
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second,
		IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10,
		ErrorLog: slog.NewLogLogger(o.logger.Handler(), slog.LevelWarn)}
	return s
}

// Handle registers a plain http.Handler, outside the middleware chain (for static files
// and the like).
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Binder is implemented by request types that read path and query parameters.
type Binder interface {
	Bind(r *http.Request) error
}

// Raw is implemented by request types that take the body as it came, undecoded: a webhook
// whose signature covers the exact bytes. The body limit still applies.
type Raw interface {
	SetRaw(body []byte)
}

// Bodiless is implemented by request types of POST routes that act on their path alone
// (POST /v1/orders/{id}/pay): an empty body is accepted, and any body is still decoded
// strictly.
type Bodiless interface {
	Bodiless()
}

// Validator is implemented by request types that check themselves after decoding.
type Validator interface {
	Validate() error
}

// Created is implemented by responses that answer 201 instead of 200.
type Created interface {
	Created() bool
}

// Accepted is implemented by responses that answer 202 instead of 200: the work is queued,
// not done (a comment written through the queue).
type Accepted interface {
	Accepted() bool
}

// Route registers a JSON route. The request body (for methods that have one) is decoded
// strictly into Req, then Bind and Validate run if Req implements them, then fn. ms run
// after the server's chain, for this route only. On an HTTP server the middleware see the
// *http.Request as req; fn gets the decoded *Req.
func Route[Req, Resp any](s *Server, pattern string, fn func(ctx context.Context, req *Req) (*Resp, error), ms ...middleware.Middleware) {
	method, _, _ := strings.Cut(pattern, " ")
	hasBody := method == http.MethodPost || method == http.MethodPut || method == http.MethodPatch
	maxBody := s.o.maxBody
	terminal := func(ctx context.Context, raw any) (any, error) {
		r := raw.(*http.Request)
		in := new(Req)
		// A PUT may carry nothing but its path (PUT /v1/me/following/{id}).
		if raw, ok := any(in).(Raw); ok && hasBody {
			b, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
			switch {
			case int64(len(b)) > maxBody:
				return nil, errs.InvalidArgument(errs.ReasonBodyTooLarge, "request body is larger than %d bytes", maxBody)
			case err != nil:
				return nil, jsonError(err)
			}
			raw.SetRaw(b)
		} else if _, ok := any(in).(Bodiless); hasBody && !((method == http.MethodPut || ok) && r.ContentLength == 0) {
			if err := DecodeJSON(r.Body, maxBody, in); err != nil {
				return nil, err
			}
		}
		if b, ok := any(in).(Binder); ok {
			if err := b.Bind(r); err != nil {
				return nil, asInvalid(err)
			}
		}
		if v, ok := any(in).(Validator); ok {
			if err := v.Validate(); err != nil {
				return nil, asInvalid(err)
			}
		}
		out, err := fn(ctx, in)
		if err == nil {
			if c, ok := any(out).(Created); ok && c.Created() {
				middleware.FromContext(ctx).Status = http.StatusCreated
			} else if a, ok := any(out).(Accepted); ok && a.Accepted() {
				middleware.FromContext(ctx).Status = http.StatusAccepted
			}
		}
		return out, err
	}
	h := middleware.Chain(append(append([]middleware.Middleware{}, s.base...), ms...)...)(terminal)
	s.mux.Handle(pattern, &route{s: s, op: pattern, h: h})
}

func asInvalid(err error) error {
	var e *errs.Error
	if errors.As(err, &e) {
		return err
	}
	return errs.InvalidArgument(errs.ReasonInvalidArgument, "%s", err.Error())
}

type route struct {
	s  *Server
	op string
	h  middleware.Handler
}

func (rt *route) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	info := &middleware.Info{Kind: middleware.HTTP, Side: middleware.Server, Service: rt.s.name,
		Operation: rt.op, Method: r.Method, Header: Header(r.Header), Reply: Header(w.Header()), Start: time.Now()}
	if rt.s.o.edge {
		// Nothing from the outside may steer the inside: no lane (lanes enter signed), no
		// retry attempt (it would stop our retries), no trace context (it would force
		// sampling), no self-chosen client id (it would dodge per-caller limits).
		clientID := r.Header[canon("x-client-id")]
		for _, k := range edgeStripped {
			delete(r.Header, k)
		}
		if rt.s.admitLane(r) && clientID != nil {
			// A signed lane is our own load generator: its x-client-id names the virtual
			// user, so per-caller limits apply per simulated user, not to the whole run.
			r.Header[canon("x-client-id")] = clientID
		}
	}
	if budget := rt.budget(); budget > 0 && r.ContentLength != 0 {
		// A body trickled in slowly must not hold an admitted slot past the request's budget.
		_ = http.NewResponseController(w).SetReadDeadline(info.Start.Add(budget))
	}
	var resp any
	var err error
	if v := r.Header.Get(meta.HeaderTimeout); v != "" {
		d, perr := ParseTimeout(v)
		if perr != nil {
			err = perr
		} else {
			info.Timeout = d
		}
	}
	if err == nil {
		if info.Timeout < 0 { // the caller's deadline passed in transit: refused on arrival
			info.Timeout = time.Nanosecond
		}
		resp, err = rt.h(middleware.NewContext(r.Context(), info), r)
	}
	if err != nil {
		if middleware.Aborted(err) {
			// An abort injected at this server: the chain saw a failed request; the caller
			// sees the connection drop with no answer. net/http closes the connection (or
			// resets the HTTP/2 stream) and logs nothing for this panic.
			panic(http.ErrAbortHandler)
		}
		if rt.s.o.edge {
			err = errs.From(err).Public()
		}
		WriteError(w, err)
		return
	}
	status := http.StatusOK
	if info.Status != 0 {
		status = info.Status
	}
	WriteJSON(w, status, resp)
}

// edgeStripped are the canonical names of the headers an Edge server drops on arrival.
var edgeStripped = []string{canon(meta.HeaderBaggage), canon(meta.HeaderAttempt), canon("traceparent"),
	canon("tracestate"), canon("x-client-id")}

// budget is the most a request on this route may take: its operation's budget or the
// server default.
func (rt *route) budget() time.Duration {
	if d, ok := rt.s.o.deadline.Operations[rt.op]; ok {
		return d
	}
	return rt.s.o.deadline.Default
}

// ParseTimeout parses the X-Redline-Timeout header: a Go duration such as "49.5ms". A
// value of zero or less means the caller's deadline has already passed.
func ParseTimeout(v string) (time.Duration, error) {
	if len(v) > 32 {
		return 0, errs.InvalidArgument("BAD_TIMEOUT", "header %s is too long", meta.HeaderTimeout)
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, errs.InvalidArgument("BAD_TIMEOUT", "header %s: %q is not a duration like 250ms", meta.HeaderTimeout, v)
	}
	if d <= 0 {
		return -1, nil
	}
	return d, nil
}

// DecodeOptionalJSON is DecodeJSON for a body that may be left out: an empty (or blank)
// body leaves dst as it is.
func DecodeOptionalJSON(body io.Reader, max int64, dst any) error {
	b, err := io.ReadAll(io.LimitReader(body, max+1))
	if err != nil {
		return errs.InvalidArgument(errs.ReasonBadJSON, "request body: %v", err)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	return DecodeJSON(bytes.NewReader(b), max, dst)
}

// DecodeJSON decodes exactly one JSON value from body into dst, refusing bodies over max
// bytes, unknown fields, trailing data and malformed JSON, each with its own reason.
func DecodeJSON(body io.Reader, max int64, dst any) error {
	lr := &io.LimitedReader{R: body, N: max + 1}
	dec := json.NewDecoder(lr)
	dec.DisallowUnknownFields()
	err := dec.Decode(dst)
	if lr.N <= 0 {
		return errs.InvalidArgument(errs.ReasonBodyTooLarge, "request body is larger than %d bytes", max)
	}
	if err != nil {
		return jsonError(err)
	}
	if dec.More() {
		return errs.InvalidArgument(errs.ReasonBadJSON, "request body has data after the JSON object")
	}
	if _, err := dec.Token(); err != io.EOF {
		if lr.N <= 0 {
			return errs.InvalidArgument(errs.ReasonBodyTooLarge, "request body is larger than %d bytes", max)
		}
		return errs.InvalidArgument(errs.ReasonBadJSON, "request body has data after the JSON object")
	}
	return nil
}

func jsonError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return errs.New(codes.DeadlineExceeded, errs.ReasonDeadline, "request body did not arrive within the request's budget")
	case errors.Is(err, io.EOF):
		return errs.InvalidArgument(errs.ReasonBadJSON, "request body is empty: send a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errs.InvalidArgument(errs.ReasonBadJSON, "request body ends in the middle of the JSON")
	case errors.As(err, &syn):
		return errs.InvalidArgument(errs.ReasonBadJSON, "malformed JSON at byte %d: %s", syn.Offset, syn.Error())
	case errors.As(err, &typ):
		return errs.InvalidArgument(errs.ReasonInvalidArgument, "field %q: want %s, got %s", typ.Field, typ.Type, typ.Value).
			WithMetadata("field", typ.Field)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return errs.InvalidArgument(errs.ReasonUnknownField, "unknown field %q", field).WithMetadata("field", field)
	}
	return errs.InvalidArgument(errs.ReasonBadJSON, "malformed JSON: %s", err.Error())
}

// WriteJSON writes v as a JSON response with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// WriteError writes err as the errs JSON body with its HTTP status. Internal causes stay
// out of the body.
func WriteError(w http.ResponseWriter, err error) {
	e := errs.From(err)
	WriteJSON(w, e.HTTPStatus(), e.ToBody(w.Header().Get(meta.HeaderRequestID)))
}

// Header adapts http.Header to middleware.Header and meta.Carrier.
type Header http.Header

// canonical holds the canonical forms of the keys the kit reads on every request, so
// looking them up does not allocate a canonicalized copy each time.
var canonical = func() map[string]string {
	m := map[string]string{}
	for _, k := range []string{meta.HeaderRequestID, meta.HeaderCriticality, meta.HeaderAttempt,
		meta.HeaderTimeout, meta.HeaderBaggage, "traceparent", "tracestate", "authorization", "x-client-id"} {
		m[k] = textproto.CanonicalMIMEHeaderKey(k)
	}
	return m
}()

func canon(key string) string {
	if c, ok := canonical[key]; ok {
		return c
	}
	return textproto.CanonicalMIMEHeaderKey(key)
}

// Get returns the first value of key.
func (h Header) Get(key string) string {
	if v := h[canon(key)]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// Set replaces the values of key.
func (h Header) Set(key, value string) { h[canon(key)] = []string{value} }

// Keys lists the keys, so a Header can serve as an OpenTelemetry carrier.
func (h Header) Keys() []string {
	out := make([]string, 0, len(h))
	for k := range h {
		out = append(out, k)
	}
	return out
}

// Start listens and serves in the background; it returns once the listener is bound, so
// Endpoint is valid afterwards.
func (s *Server) Start(ctx context.Context) error {
	return s.Loop.Start(ctx, "http "+s.name, s.o.addr, s.srv.Serve)
}

// Stop stops accepting, lets in-flight requests finish, and closes the rest when ctx ends.
func (s *Server) Stop(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if err != nil {
		_ = s.srv.Close()
		err = fmt.Errorf("http %s: drain cut short: %w", s.name, err)
	}
	var haErr error
	if s.ownHA != nil {
		haErr = s.ownHA.Close()
	}
	return errors.Join(s.Loop.Wait(http.ErrServerClosed), err, haErr)
}
