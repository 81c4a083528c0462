package middleware

import (
	"context"
	"errors"

	"github.com/redline-dev/redline/kit/fault"
)

// Fault asks kit/fault, once per request, whether to fail or slow it, and returns the
// injected error instead of calling next. kind and side are the Point's (fault.HTTP,
// fault.Server, ...); the operation is Info.Operation. On a server service is the server's
// name. On a client the Point's Target is the called service (Info.Service) and its Service
// is service or, when service is "", the service whose request the call is made for (the
// server whose Info the ctx carries), "" for calls made outside any request.
//
// The transports put it innermost in their default chains, after the HA parts: on a server
// a fault looks like a failing or slow handler to admission, shedding, metrics and logging;
// on a client it looks like a failing or slow remote to retries, breakers and degradation.
// An abort (fault.ErrAbort) injected at an HTTP server comes back marked, so the server
// drops the connection instead of answering (see Aborted).
//
// With no injector installed it costs one atomic load.
func Fault(kind, side, service string) Middleware { return faultAt(kind, side, service, "") }

// ServerFault is Fault on a server (side fault.Server) that runs as a named instance of
// service: its Points carry Instance, so a fault scoped to one replica ("note-2") slows or
// fails that server only while the others of the same service go on. An empty instance
// makes it Fault(kind, fault.Server, service).
func ServerFault(kind, service, instance string) Middleware {
	return faultAt(kind, fault.Server, service, instance)
}

func faultAt(kind, side, service, instance string) Middleware {
	abortable := kind == fault.HTTP && side == fault.Server
	return func(next Handler) Handler {
		return func(ctx context.Context, req any) (any, error) {
			if !fault.Enabled() {
				return next(ctx, req)
			}
			p := fault.Point{Kind: kind, Side: side, Service: service, Instance: instance}
			if info := FromContext(ctx); info != nil {
				p.Op = info.Operation
				switch {
				case side == fault.Client:
					p.Target = info.Service
				case p.Service == "":
					p.Service = info.Service
				}
			}
			if p.Service == "" && side == fault.Client {
				if caller, _ := ctx.Value(serverInfoKey{}).(*Info); caller != nil {
					p.Service = caller.Service
				}
			}
			if err := fault.Inject(ctx, p); err != nil {
				if abortable && errors.Is(err, fault.ErrAbort) {
					return nil, abortError{err}
				}
				return nil, err
			}
			return next(ctx, req)
		}
	}
}

// abortError marks an abort injected at this HTTP server by Fault. Only Fault makes it, so
// an abort injected at one of the server's clients, which its handler may pass up, does not
// cut the server's own connection.
type abortError struct{ error }

func (e abortError) Unwrap() error { return e.error }

// Aborted reports whether err is an abort that Fault injected at an HTTP server: the server
// then drops the connection (panicking with http.ErrAbortHandler) instead of answering.
func Aborted(err error) bool {
	var a abortError
	return errors.As(err, &a)
}
