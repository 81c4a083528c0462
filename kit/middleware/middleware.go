// Package middleware provides the one middleware type that the HTTP and gRPC transports
// share, on both the server and the client side, with chaining and per-operation selection.
//
// A middleware learns where it runs from Info in the context: the transport kind, the side,
// the service and the operation (the gRPC full method, or the HTTP route pattern).
//
// Fault is the transports' fault-injection hook (kit/fault), innermost in their default
// chains.
package middleware

import (
	"context"
	"strings"
	"time"
)

// Handler handles one request. On a server req is the decoded request, or nil when
// decoding failed (the handler then returns the decode error, so outer middleware still
// see and count it). On a client req is the request message.
type Handler func(ctx context.Context, req any) (any, error)

// Middleware wraps a Handler.
type Middleware func(Handler) Handler

// Chain composes ms so that ms[0] is the outermost.
func Chain(ms ...Middleware) Middleware {
	return func(next Handler) Handler {
		for i := len(ms) - 1; i >= 0; i-- {
			next = ms[i](next)
		}
		return next
	}
}

// Kind is a transport kind.
type Kind string

// Transport kinds.
const (
	HTTP Kind = "http"
	GRPC Kind = "grpc"
)

// Side says whether a middleware runs in a server or a client.
type Side uint8

// Sides.
const (
	Server Side = iota
	Client
)

// Header is the wire metadata of a request; it matches meta.Carrier.
type Header interface {
	Get(key string) string
	Set(key, value string)
}

// Info describes the request a middleware runs for.
type Info struct {
	Kind Kind
	Side Side
	// Service is the local service name on a server, the target service on a client.
	Service string
	// Operation is the gRPC full method ("/note.v1.Note/GetNote") or the HTTP route
	// pattern ("POST /v1/notes").
	Operation string
	// Method is the HTTP method, or "unary" for gRPC.
	Method string
	// Header is the inbound metadata on a server, the outbound one on a client.
	Header Header
	// Reply is the response header of an HTTP server; nil elsewhere.
	Reply Header
	// Timeout is the caller's remaining budget as read from the wire by an HTTP server;
	// 0 when the caller sent none. gRPC servers get theirs as the ctx deadline.
	Timeout time.Duration
	// Start is when the transport received the request, or began the call.
	Start time.Time
	// Status is the HTTP status of a successful response when it is not 200 (201 for a
	// create); set by the HTTP server's route before the chain unwinds.
	Status int
	// Next is the transport's innermost handler for this request, which the chain (built
	// once per server) ends in. Middleware never call it themselves.
	Next Handler
}

type (
	infoKey       struct{}
	serverInfoKey struct{}
)

// infoCtx carries an Info. Besides the Info itself (infoKey) it answers serverInfoKey with
// the innermost server-side Info, so a client's Fault learns which service's request a call
// is made for, although the client's own Info hides the server's.
type infoCtx struct {
	context.Context
	info *Info
}

func (c *infoCtx) Value(key any) any {
	switch key.(type) {
	case infoKey:
		return c.info
	case serverInfoKey:
		if c.info != nil && c.info.Side == Server {
			return c.info
		}
	}
	return c.Context.Value(key)
}

// NewContext returns ctx carrying info.
func NewContext(ctx context.Context, info *Info) context.Context {
	return &infoCtx{ctx, info}
}

// FromContext returns the Info in ctx, or nil.
func FromContext(ctx context.Context) *Info {
	info, _ := ctx.Value(infoKey{}).(*Info)
	return info
}

// Matcher selects operations.
type Matcher func(operation string) bool

// Operations matches exactly the given operations.
func Operations(ops ...string) Matcher {
	set := make(map[string]bool, len(ops))
	for _, op := range ops {
		set[op] = true
	}
	return func(op string) bool { return set[op] }
}

// Prefix matches operations that start with prefix, such as "/note.v1.Note/" or "GET /v1/".
func Prefix(prefix string) Matcher {
	return func(op string) bool { return strings.HasPrefix(op, prefix) }
}

// Select applies ms only to requests whose operation matches m.
func Select(m Matcher, ms ...Middleware) Middleware {
	chain := Chain(ms...)
	return func(next Handler) Handler {
		wrapped := chain(next)
		return func(ctx context.Context, req any) (any, error) {
			if info := FromContext(ctx); info != nil && m(info.Operation) {
				return wrapped(ctx, req)
			}
			return next(ctx, req)
		}
	}
}
