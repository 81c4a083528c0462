package middleware

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"strconv"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	oteltrace "go.opentelemetry.io/otel/trace"
	grpccodes "google.golang.org/grpc/codes"

	"github.com/redline-dev/redline/kit/errs"
	"github.com/redline-dev/redline/kit/meta"
	"github.com/redline-dev/redline/kit/metric"
	"github.com/redline-dev/redline/kit/trace"
)

// Recovery turns a panic in the handler into an Internal error with reason PANIC and logs
// the stack, so one bad request never takes the process down. On an HTTP server a panic
// with http.ErrAbortHandler goes on to net/http, which drops the connection without an
// answer, as that sentinel asks.
func Recovery(logger *slog.Logger) Middleware {
	return func(next Handler) Handler {
		return func(ctx context.Context, req any) (resp any, err error) {
			defer func() {
				if p := recover(); p != nil {
					if p == http.ErrAbortHandler {
						if info := FromContext(ctx); info != nil && info.Kind == HTTP && info.Side == Server {
							panic(p)
						}
					}
					buf := make([]byte, 16<<10)
					buf = buf[:runtime.Stack(buf, false)]
					logger.ErrorContext(ctx, "panic in handler", "panic", fmt.Sprint(p), "stack", string(buf))
					resp, err = nil, errs.New(grpccodes.Internal, errs.ReasonPanic, "internal error")
				}
			}()
			return next(ctx, req)
		}
	}
}

var (
	idPrefix  = newIDPrefix()
	idCounter atomic.Uint64
)

func newIDPrefix() string {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		binary.BigEndian.PutUint32(b[:], uint32(time.Now().UnixNano()))
	}
	return hex.EncodeToString(b[:]) + "-"
}

// NewRequestID returns a process-unique request id: a random per-process prefix and a counter.
func NewRequestID() string {
	var buf [32]byte
	b := append(buf[:0], idPrefix...)
	b = strconv.AppendUint(b, idCounter.Add(1), 36)
	return string(b)
}

// Metadata moves kit/meta across the hop. On a server it reads the request id,
// criticality, attempt and lane from the inbound header, generating a request id when
// there is none. On a client it writes them to the outbound header, generating a request id
// for calls that start outside any request.
func Metadata() Middleware {
	return func(next Handler) Handler {
		return func(ctx context.Context, req any) (any, error) {
			info := FromContext(ctx)
			if info == nil || info.Header == nil {
				return next(ctx, req)
			}
			if info.Side == Server {
				md := meta.Extract(info.Header)
				if md.RequestID == "" {
					md.RequestID = NewRequestID()
				}
				if info.Reply != nil {
					info.Reply.Set(meta.HeaderRequestID, md.RequestID)
				}
				return next(meta.NewContext(ctx, md), req)
			}
			md := meta.FromContext(ctx)
			if md.RequestID == "" {
				md.RequestID = NewRequestID()
				ctx = meta.NewContext(ctx, md)
			}
			meta.Inject(ctx, info.Header)
			return next(ctx, req)
		}
	}
}

// Tracing starts a span for the request: a server span continuing the caller's W3C trace
// context, or a client span whose context is injected into the outbound header. Before
// trace.Setup it makes no span and only passes the caller's trace context on.
func Tracing() Middleware {
	tracer := trace.Tracer("github.com/redline-dev/redline/kit")
	// Built once: a fresh option per request would allocate.
	serverSpan := []oteltrace.SpanStartOption{oteltrace.WithSpanKind(oteltrace.SpanKindServer)}
	clientSpan := []oteltrace.SpanStartOption{oteltrace.WithSpanKind(oteltrace.SpanKindClient)}
	return func(next Handler) Handler {
		return func(ctx context.Context, req any) (any, error) {
			info := FromContext(ctx)
			if info == nil {
				return next(ctx, req)
			}
			opts := clientSpan
			if info.Side == Server {
				opts = serverSpan
				if info.Header != nil {
					ctx = trace.Extract(ctx, info.Header)
				}
			}
			if !trace.Enabled() { // pass the caller's context on, make no span
				if info.Side == Client && info.Header != nil {
					trace.Inject(ctx, info.Header)
				}
				return next(ctx, req)
			}
			ctx, span := tracer.Start(ctx, info.Operation, opts...)
			defer span.End()
			if info.Side == Client && info.Header != nil {
				trace.Inject(ctx, info.Header)
			}
			if span.IsRecording() {
				span.SetAttributes(attribute.String("rpc.system", string(info.Kind)),
					attribute.String("redline.service", info.Service))
				if lane := meta.Lane(ctx); lane != "" {
					span.SetAttributes(attribute.String("redline.lane", lane))
				}
			}
			resp, err := next(ctx, req)
			if err != nil {
				e := errs.From(err)
				span.SetStatus(codes.Error, e.Reason)
			}
			return resp, err
		}
	}
}

// Logging writes one access record per server request: success at info on HTTP servers
// (the edge, where requests come from outside) and at debug on gRPC servers (internal hops:
// one page is a dozen of them, and metrics and traces already count them), warn for client
// errors, error for server errors. On a client it logs failed calls only, at warn, since the
// server logs the rest. Bodies are never logged: they may hold secrets.
func Logging(logger *slog.Logger) Middleware {
	return func(next Handler) Handler {
		return func(ctx context.Context, req any) (any, error) {
			resp, err := next(ctx, req)
			info := FromContext(ctx)
			if info == nil {
				return resp, err
			}
			level := slog.LevelInfo
			if info.Kind == GRPC {
				level = slog.LevelDebug
			}
			if err != nil {
				level = slog.LevelWarn
				if st := errs.HTTPStatus(errs.Code(err)); st >= 500 || st == 499 && info.Side == Client {
					level = slog.LevelError
				}
			} else if info.Side == Client {
				return resp, err
			}
			h := logger.Handler()
			if !h.Enabled(ctx, level) {
				return resp, err
			}
			msg := "request"
			if info.Side == Client {
				msg = "call failed"
			}
			// A record built by hand skips slog's caller lookup (the source line would
			// always be this one), and four attributes plus the request id fit in the
			// record's inline storage.
			r := slog.NewRecord(time.Now(), level, msg, 0)
			r.AddAttrs(slog.String("service", info.Service), slog.String("op", info.Operation),
				slog.String("code", CodeLabel(info, err)), slog.Duration("latency", time.Since(info.Start)))
			if err != nil {
				e := errs.From(err)
				r.AddAttrs(slog.String("reason", e.Reason), slog.String("error", e.Error()))
			}
			_ = h.Handle(ctx, r)
			return resp, err
		}
	}
}

// Metrics records the RED metrics and the in-flight gauge of the request in the family of
// its transport and side.
func Metrics() Middleware {
	return func(next Handler) Handler {
		return func(ctx context.Context, req any) (any, error) {
			info := FromContext(ctx)
			if info == nil {
				return next(ctx, req)
			}
			fam := family(info)
			g := fam.Inflight(info.Service, info.Operation)
			g.Inc()
			defer g.Dec() // even when a panic unwinds through here
			resp, err := next(ctx, req)
			fam.Observe(info.Service, info.Operation, info.Method, CodeLabel(info, err),
				meta.Lane(ctx), time.Since(info.Start))
			return resp, err
		}
	}
}

func family(info *Info) *metric.RED {
	switch {
	case info.Kind == HTTP && info.Side == Server:
		return metric.HTTPServer
	case info.Kind == HTTP:
		return metric.HTTPClient
	case info.Side == Server:
		return metric.GRPCServer
	}
	return metric.GRPCClient
}

var (
	grpcCodeNames   [17]string
	httpStatusNames = map[int]string{}
)

func init() {
	for c := grpccodes.OK; c <= grpccodes.Unauthenticated; c++ {
		grpcCodeNames[c] = c.String()
		st := errs.HTTPStatus(c)
		httpStatusNames[st] = strconv.Itoa(st)
	}
	for _, st := range []int{http.StatusCreated, http.StatusNoContent} {
		httpStatusNames[st] = strconv.Itoa(st)
	}
}

// CodeLabel is the code label of a result: the HTTP status for HTTP, the gRPC code name for
// gRPC. It does not allocate for known codes.
func CodeLabel(info *Info, err error) string {
	c := errs.Code(err)
	if info.Kind == HTTP {
		st := errs.HTTPStatus(c)
		if err == nil && info.Status != 0 {
			st = info.Status
		}
		if s, ok := httpStatusNames[st]; ok {
			return s
		}
		return strconv.Itoa(st)
	}
	if int(c) < len(grpcCodeNames) {
		return grpcCodeNames[c]
	}
	return c.String()
}

// DeadlineConfig sets the timeouts of the Deadline middleware.
type DeadlineConfig struct {
	// Default is the budget of a request whose caller set none, and the most any request
	// gets. 0 means no default.
	Default time.Duration `koanf:"default"`
	// Margin is taken off an inbound deadline for the transit back to the caller, so the
	// caller gets our answer before it gives up.
	Margin time.Duration `koanf:"margin"`
	// Operations overrides Default per operation.
	Operations map[string]time.Duration `koanf:"operations"`
}

// ErrDeadlineConsumed is returned when a request arrives, or a call would start, with no
// time left. It is never retryable.
var ErrDeadlineConsumed = errs.New(grpccodes.DeadlineExceeded, errs.ReasonDeadlineConsumed,
	"deadline already expired: no time left to serve or send the request")

// Deadline bounds every request by a deadline. On a server the budget is the smallest of
// the default, the caller's remaining deadline less the transit margin; a request with no
// time left is refused on arrival. On a client a call without a deadline gets the default
// and a call with none left fails before sending; a call whose caller allows more than its
// own budget (Default or per operation) gets its own budget. The handler's ctx is cancelled
// when the deadline passes.
func Deadline(cfg DeadlineConfig) Middleware {
	return func(next Handler) Handler {
		return func(ctx context.Context, req any) (any, error) {
			info := FromContext(ctx)
			budget := cfg.Default
			if info != nil {
				if d, ok := cfg.Operations[info.Operation]; ok {
					budget = d
				}
			}
			now := time.Now()
			if info != nil && info.Side == Server {
				var inbound time.Duration
				has := info.Timeout > 0
				if has {
					inbound = info.Timeout - now.Sub(info.Start)
				}
				if dl, ok := ctx.Deadline(); ok {
					if rem := dl.Sub(now); !has || rem < inbound {
						inbound, has = rem, true
					}
				}
				if has {
					inbound -= cfg.Margin
					if inbound <= 0 {
						return nil, ErrDeadlineConsumed
					}
					if budget <= 0 || inbound < budget {
						budget = inbound
					}
				}
			} else if dl, ok := ctx.Deadline(); ok {
				rem := dl.Sub(now)
				if rem <= 0 {
					return nil, ErrDeadlineConsumed
				}
				if budget <= 0 || rem <= budget {
					return next(ctx, req) // the caller's deadline is the tighter one
				}
				// Otherwise the call's own budget applies: one hung dependency must not take
				// the whole of its caller's budget, so the caller can still degrade.
			}
			if budget <= 0 {
				return next(ctx, req)
			}
			ctx, cancel := context.WithTimeout(ctx, budget)
			defer cancel()
			resp, err := next(ctx, req)
			if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) && errs.Code(err) == grpccodes.Canceled {
				// The handler saw our timer fire as a cancellation; report what happened. A
				// caller hanging up stays Canceled: it is not the server's timeout.
				err = errs.From(context.DeadlineExceeded)
			}
			return resp, err
		}
	}
}

// ServerDefaults is the default server chain, outermost first: recovery, metadata and
// request id, tracing, logging, metrics, deadline. The transports follow it with the HA
// parts and then Fault, innermost.
func ServerDefaults(logger *slog.Logger, dl DeadlineConfig) []Middleware {
	return []Middleware{Recovery(logger), Metadata(), Tracing(), Logging(logger), Metrics(), Deadline(dl)}
}

// ClientDefaults is the default client chain, outermost first: metadata and request id,
// tracing, logging of failures, metrics, deadline. The transports follow it with the HA
// parts and then Fault, innermost.
func ClientDefaults(logger *slog.Logger, dl DeadlineConfig) []Middleware {
	return []Middleware{Metadata(), Tracing(), Logging(logger), Metrics(), Deadline(dl)}
}
